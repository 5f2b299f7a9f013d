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
    /// Columns an INSERT must give a value for: NOT NULL without a default
    /// (an INTEGER PRIMARY KEY that is the rowid gets one by itself).
    public var requiredColumns: [String] = []
    /// How to select the rowid of a table without a key (`rowid`, `_rowid_` or
    /// `oid`, whichever no column shadows); nil when all three are columns.
    public var rowidName: String?

    /// What names a row within one copy: the key, or for a table without one
    /// its rowid there (used for plans inside one file, never compared across copies).
    public var identity: [String] { columns.isEmpty ? [rowidName ?? "rowid"] : columns }

    /// Reads the key of `table` in `schema` ("main", "snap", "live").
    ///
    /// The schema goes in the pragma's argument: a prefix (`live.pragma_table_info`)
    /// is ignored and reads the first attached database that has the table.
    public static func of(_ table: String, schema: String, in db: Database) throws -> TableKey {
        let info = try db.rows("SELECT name, pk, \"notnull\", dflt_value FROM pragma_table_info(?, ?)", .text(table), .text(schema))
        let names = info.compactMap { $0[0].string }
        let notNull = Set(info.filter { ($0[2].int ?? 0) != 0 }.compactMap { $0[0].string })
        let pk = info.filter { ($0[1].int ?? 0) > 0 }.sorted { ($0[1].int ?? 0) < ($1[1].int ?? 0) }.compactMap { $0[0].string }
        let indexes = try db.rows("SELECT name, \"unique\", origin, partial FROM pragma_index_list(?, ?) ORDER BY name", .text(table), .text(schema))
        let rowidName = ["rowid", "_rowid_", "oid"].first { alias in !names.contains { $0.lowercased() == alias } }
        var key = TableKey(table: table, kind: .wholeRow, columns: [], columnNames: names, rowidName: rowidName)
        key.requiredColumns = info.filter { ($0[2].int ?? 0) != 0 && $0[3] == .null }.compactMap { $0[0].string }
        if !pk.isEmpty {
            // An INTEGER PRIMARY KEY aliasing the rowid has no index of its own;
            // every other primary key (DESC, WITHOUT ROWID, not INTEGER) gets one.
            let pkIndex = indexes.contains { $0[2].string == "pk" }
            key.kind = pk.count == 1 && !pkIndex ? .rowid : .primaryKey
            key.columns = pk.map(Database.quote)
            if key.kind == .rowid { key.requiredColumns.removeAll { $0 == pk[0] } }
            return key
        }
        // A full (not partial) UNIQUE index on plain NOT NULL columns identifies
        // rows as well as a primary key; the narrowest one is used.
        var best: (name: String, columns: [String])?
        for index in indexes where index[1].int == 1 && index[3].int == 0 {
            guard let name = index[0].string else { continue }
            let parts = try db.rows("SELECT cid, name FROM pragma_index_info(?, ?) ORDER BY seqno", .text(name), .text(schema))
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

/// How one table differs between a snapshot and live: the columns both have
/// (what rows are compared on and put back with), and what diff, triage and
/// recover must say about the rest, or refuse.
public struct SchemaDrift: Sendable, Equatable {
    public var table: String
    /// Columns both copies have, quoted, in the snapshot's order.
    public var common: [String]
    /// Columns only live has: recovered rows get their defaults.
    public var onlyInLive: [String]
    /// Of those, NOT NULL without a default: no row can be put back without a value.
    public var requiredOnlyInLive: [String]
    /// Columns only the snapshot has (live dropped or renamed them).
    public var onlyInSnapshot: [String]
    /// Why rows of this table cannot be matched across the copies (live
    /// identifies them by other columns: "the key of t changed: …"), so they
    /// are not compared or recovered; nil when they can.
    public var cannotMatch: String?

    public init(snapshot: TableKey, live: TableKey) {
        table = snapshot.table
        // SQLite matches column names without regard to case.
        let liveNames = Set(live.columnNames.map { $0.lowercased() })
        let snapshotNames = Set(snapshot.columnNames.map { $0.lowercased() })
        common = snapshot.columnNames.filter { liveNames.contains($0.lowercased()) }.map(Database.quote)
        onlyInSnapshot = snapshot.columnNames.filter { !liveNames.contains($0.lowercased()) }
        let added = live.columnNames.filter { !snapshotNames.contains($0.lowercased()) }
        let required = added.filter(live.requiredColumns.contains)
        requiredOnlyInLive = required
        onlyInLive = added.filter { !required.contains($0) }
        // A snapshot table without a key is compared by whole rows, which any key of live's allows.
        if snapshot.kind != .wholeRow && snapshot.columns.map({ $0.lowercased() }) != live.columns.map({ $0.lowercased() }) {
            cannotMatch = "the key of \(table) changed: \(snapshot.list) in the snapshot, \(live.list) in live (rows cannot be matched: not compared, not recovered)"
        } else if common.isEmpty {
            cannotMatch = "no column of \(table) is in both copies (rows cannot be matched: not compared, not recovered)"
        }
    }

    /// One line per difference. `leftOut`: per snapshot-only column, how many
    /// rows being put back hold a value in it (recover says what it leaves out).
    public func notes(leftOut: [String: Int64] = [:]) -> [String] {
        var notes = cannotMatch.map { [$0] } ?? []
        notes += onlyInLive.map { "live has a column the snapshot lacks: \(table).\($0) (recovered rows get its default)" }
        notes += requiredOnlyInLive.map {
            "live has a NOT NULL column without default the snapshot lacks: \(table).\($0) (no row of the snapshot can be put back into \(table))"
        }
        notes += onlyInSnapshot.map { column in
            let values = leftOut[column] ?? 0
            return "the snapshot has a column live lacks: \(table).\(column) (" + (values > 0
                ? "live dropped or renamed it: its values in \(values) \(values == 1 ? "row" : "rows") put back are left out)"
                : "compared without it)")
        }
        return notes
    }

    /// Why rows cannot be put back into this table, if they cannot.
    public var refusal: String? {
        if let cannotMatch { return cannotMatch }
        guard !requiredOnlyInLive.isEmpty else { return nil }
        return "cannot put rows back into \(table): live has a NOT NULL column without default the snapshot lacks ("
            + requiredOnlyInLive.map { "\(table).\($0)" }.joined(separator: ", ") + "): no row of the snapshot can go in without a value for it"
    }
}

/// The two copies' schemas differ in a way that rules the request out
/// (a table live does not have, a key that changed): input, exit 2.
public struct SchemaDriftError: Error, CustomStringConvertible, CategorizedError, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
    public var category: ErrorCategory { .input }
}
