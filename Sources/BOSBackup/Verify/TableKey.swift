import Foundation

/// How rows of a table are identified across two copies of a database. The
/// rowid is never compared across copies unless it is the declared key: VACUUM
/// renumbers it, and a BOS that rewrites a row gives it a new one.
public struct TableKey: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// An INTEGER PRIMARY KEY that is the rowid itself (not DESC, not WITHOUT ROWID).
        case rowid
        /// Any other declared PRIMARY KEY: composite, WITHOUT ROWID, text, INTEGER PRIMARY KEY DESC.
        case primaryKey
        /// No primary key, but a UNIQUE index over NOT NULL columns.
        case unique(index: String)
        /// No key at all: rows are compared whole, as a multiset (each copy of a duplicate counts).
        case wholeRow
    }

    public var table: String
    public var kind: Kind
    /// Quoted column expressions that form the key (empty for `.wholeRow`).
    public var columns: [String]
    /// Column names of the table as declared, in declaration order.
    public var columnNames: [String]
    /// The same, quoted for SQL.
    public var allColumns: [String] { columnNames.map(Database.quote) }
    /// How to select the rowid of a table without a key (`rowid`, `_rowid_` or
    /// `oid`, whichever no column shadows); nil when all three are columns.
    public var rowidName: String?

    /// What names a row within one copy: the key, or for a table without one
    /// its rowid there (used for plans inside one file, never compared across copies).
    public var identity: [String] { columns.isEmpty ? [rowidName ?? "rowid"] : columns }

    /// Reads the key of `table` in `schema` ("main", "snap", "live").
    public static func of(_ table: String, schema: String, in db: Database) throws -> TableKey {
        let info = try db.rows("SELECT name, pk, \"notnull\" FROM \(schema).pragma_table_info(?)", .text(table))
        let names = info.compactMap { $0[0].string }
        let notNull = Set(info.filter { ($0[2].int ?? 0) != 0 }.compactMap { $0[0].string })
        let pk = info.filter { ($0[1].int ?? 0) > 0 }.sorted { ($0[1].int ?? 0) < ($1[1].int ?? 0) }.compactMap { $0[0].string }
        let indexes = try db.rows("SELECT name, \"unique\", origin, partial FROM \(schema).pragma_index_list(?) ORDER BY name", .text(table))
        let rowidName = ["rowid", "_rowid_", "oid"].first { alias in !names.contains { $0.lowercased() == alias } }
        var key = TableKey(table: table, kind: .wholeRow, columns: [], columnNames: names, rowidName: rowidName)
        if !pk.isEmpty {
            // An INTEGER PRIMARY KEY aliasing the rowid has no index of its own;
            // every other primary key (DESC, WITHOUT ROWID, not INTEGER) gets one.
            let pkIndex = indexes.contains { $0[2].string == "pk" }
            key.kind = pk.count == 1 && !pkIndex ? .rowid : .primaryKey
            key.columns = pk.map(Database.quote)
            return key
        }
        // A full (not partial) UNIQUE index on plain NOT NULL columns identifies
        // rows as well as a primary key; the narrowest one is used.
        var best: (name: String, columns: [String])?
        for index in indexes where index[1].int == 1 && index[3].int == 0 {
            guard let name = index[0].string else { continue }
            let parts = try db.rows("SELECT cid, name FROM \(schema).pragma_index_info(?) ORDER BY seqno", .text(name))
            // cid -2 is an expression; NULLs would never be equal, so NOT NULL is required.
            let columns = parts.compactMap { ($0[0].int ?? -1) >= 0 ? $0[1].string : nil }
            guard columns.count == parts.count, columns.allSatisfy(notNull.contains) else { continue }
            if best == nil || columns.count < best!.columns.count { best = (name, columns) }
        }
        if let best {
            key.kind = .unique(index: best.name)
            key.columns = best.columns.map(Database.quote)
        }
        return key
    }

    /// `a.x = b.x AND a.y = b.y`: joins two aliases on the key, so SQLite
    /// looks rows up in the key's b-tree instead of building a temporary set.
    public func match(_ left: String, _ right: String) -> String {
        columns.map { "\(left).\($0) = \(right).\($0)" }.joined(separator: " AND ")
    }

    /// `a, b` for SELECT lists (the whole row for a table without a key).
    public var list: String { columns.isEmpty ? "(whole row)" : columns.joined(separator: ", ") }

    /// `(a, b)` row value of the identity, or plain `a` for a single column.
    public func tuple(prefix: String = "") -> String {
        let cols = identity.map { prefix + $0 }
        return cols.count == 1 ? cols[0] : "(" + cols.joined(separator: ", ") + ")"
    }

    /// A key read back from SQLite as JSON-friendly values.
    public static func keyValue(_ values: [SQLValue]) -> Any {
        let mapped: [Any] = values.map {
            switch $0 {
            case .integer(let v): return v
            case .real(let v): return v
            case .text(let v): return v
            case .blob(let v): return v.hex
            case .null: return NSNull()
            }
        }
        return mapped.count == 1 ? mapped[0] : mapped
    }
}
