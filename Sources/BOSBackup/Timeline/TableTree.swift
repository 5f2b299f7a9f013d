import Foundation

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

    /// The table without its shape: what a comparison needs, and no share in the
    /// shape's sets (which are then updated in place, not copied).
    var schemaOnly: TrackedTable {
        var table = self
        table.shape = TreeShape()
        return table
    }

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
