import Foundation

/// How rows of a table are identified across two copies of a database: the
/// declared primary key (WITHOUT ROWID tables, composite keys, INTEGER
/// PRIMARY KEY), or the rowid for tables that declare none.
public struct TableKey: Sendable, Equatable {
    public var table: String
    /// Quoted column expressions that form the key.
    public var columns: [String]
    /// Column names of the table (quoted), in declaration order.
    public var allColumns: [String]

    /// Reads the key of `table` in `schema` ("main", "snap", "live").
    public static func of(_ table: String, schema: String, in db: Database) throws -> TableKey {
        let info = try db.rows("SELECT name, pk FROM \(schema).pragma_table_info(?)", .text(table))
        let all = info.compactMap { $0[0].string }.map(Database.quote)
        let pk = info.filter { ($0[1].int ?? 0) > 0 }.sorted { ($0[1].int ?? 0) < ($1[1].int ?? 0) }.compactMap { $0[0].string }
        return TableKey(table: table, columns: pk.isEmpty ? ["rowid"] : pk.map(Database.quote), allColumns: all)
    }

    /// `a.x = b.x AND a.y = b.y`: joins two aliases on the key, so SQLite
    /// looks rows up in the key's b-tree instead of building a temporary set.
    public func match(_ left: String, _ right: String) -> String {
        columns.map { "\(left).\($0) = \(right).\($0)" }.joined(separator: " AND ")
    }

    /// `a, b` for SELECT lists.
    public var list: String { columns.joined(separator: ", ") }

    /// `(a, b)` row value, or plain `a` for a single column.
    public func tuple(prefix: String = "") -> String {
        let cols = columns.map { prefix + $0 }
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
