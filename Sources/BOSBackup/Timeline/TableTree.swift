import Foundation

/// Which pages make up one table's b-tree: the interior pages (its shape) and
/// the pages that hold its rows (the leaves of a rowid table; every page of a
/// WITHOUT ROWID table, whose interior cells are rows too). A commit that
/// writes none of the interior pages leaves the shape as it was, so the
/// shape is read again only when one of them (or the root) changed.
struct TreeShape: Equatable {
    var interior: Set<UInt32> = []
    var rowPages: Set<UInt32> = []

    /// Reads the shape down from `root`. A b-tree's leaves are all at one depth, so each
    /// level's pages are read only until the first of them turns out to be a leaf.
    static func read(root: UInt32, withoutRowid: Bool, from source: PageSource) throws -> TreeShape {
        var shape = TreeShape()
        var level: [UInt32] = [root]
        var depth = 0
        while !level.isEmpty {
            depth += 1
            guard depth <= 64 else { throw BTreeFormatError(description: "the b-tree at page \(root) is deeper than SQLite makes one") }
            guard let first = BTreePage(number: level[0], bytes: try source.page(level[0])) else {
                throw BTreeFormatError(description: "page \(level[0]) of the b-tree at page \(root) is not a b-tree page")
            }
            if first.isLeaf {
                shape.rowPages.formUnion(level)
                return shape
            }
            var next: [UInt32] = []
            for number in level {
                let page = number == first.number ? first : BTreePage(number: number, bytes: try source.page(number))
                guard let page, !page.isLeaf else { throw BTreeFormatError(description: "page \(number) of the b-tree at page \(root) is not an interior page") }
                shape.interior.insert(number)
                if withoutRowid { shape.rowPages.insert(number) }
                next.append(contentsOf: try page.children())
            }
            level = next
        }
        return shape
    }
}

/// A table the timeline follows: where its b-tree is, how its records are laid
/// out, and which values name a row.
struct TrackedTable {
    var name: String
    var root: UInt32
    var withoutRowid: Bool
    /// Column names in record order (a WITHOUT ROWID table stores its key columns first).
    var columns: [String]
    /// Record positions of the key columns; empty: the row is named by its rowid.
    var keyPositions: [Int]
    /// The record position of an INTEGER PRIMARY KEY (stored as NULL: its value is the rowid).
    var rowidAlias: Int?
    var shape = TreeShape()

    /// The names of the key, as the timeline prints them ("rowid" for a table without one).
    var keyNames: [String] { keyPositions.isEmpty ? (rowidAlias.map { [columns[$0]] } ?? ["rowid"]) : keyPositions.map { columns[$0] } }

    /// A row's values in column order, the alias filled in from the rowid and
    /// columns added after the row was written as NULL.
    func row(_ record: [SQLValue], rowid: Int64?) -> [SQLValue] {
        var values = Array(record.prefix(columns.count))
        while values.count < columns.count { values.append(.null) }
        if let alias = rowidAlias, let rowid { values[alias] = .integer(rowid) }
        return values
    }

    /// What names the row: its key columns' values, else its rowid.
    func key(_ values: [SQLValue], rowid: Int64?) -> [SQLValue] {
        if keyPositions.isEmpty { return [rowidAlias.map { values[$0] } ?? .integer(rowid ?? 0)] }
        return keyPositions.map { values[$0] }
    }

    /// Every table of the image (not SQLite's own), read through SQLite: roots, columns, keys.
    static func all(in path: String) throws -> [TrackedTable] {
        let db = try Database.immutable(path)
        db.standInForUnknownCollations()
        var tables: [TrackedTable] = []
        let listed = try db.rows("SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")
        for row in listed {
            guard let name = row[0].string else { continue }
            let withoutRowid = (row[1].int ?? 0) != 0
            guard let root = try db.scalar("SELECT rootpage FROM sqlite_schema WHERE type = 'table' AND name = ?", .text(name))?.int, root > 0 else { continue }
            let key = try TableKey.of(name, schema: "main", in: db)
            let declared = key.columnNames
            let keyNames = key.kind == .primaryKey ? key.columns.map(Database.unquote) : []
            // WITHOUT ROWID: the key columns first, then the rest in declaration order.
            let columns = withoutRowid ? keyNames + declared.filter { !keyNames.contains($0) } : declared
            var table = TrackedTable(name: name, root: UInt32(root), withoutRowid: withoutRowid, columns: columns,
                                     keyPositions: keyNames.compactMap { columns.firstIndex(of: $0) }, rowidAlias: nil)
            if key.kind == .rowid, let alias = key.columns.first.map(Database.unquote) { table.rowidAlias = columns.firstIndex(of: alias) }
            tables.append(table)
        }
        return tables
    }
}
