import CSQLite
import Foundation

/// Row-level differences of one table between a snapshot and the live database.
public struct TableRowDiff: Sendable {
    /// A row whose key both copies have, with other contents.
    public struct ChangedRow: Sendable, Equatable {
        public var key: [SQLValue]
        /// The columns whose values differ (as declared in the snapshot).
        public var columns: [String]
    }

    public var table: String
    public var keyColumns: [String]
    /// Rows the snapshot has and live does not (lost rows).
    public var missingInLive: Int64
    /// Rows only live has (newer than the snapshot).
    public var onlyInLive: Int64
    /// Rows present in both whose contents differ: what the snapshot holds of
    /// them is lost too (a new order that took a deleted order's id).
    public var changed: Int64
    public var missingKeys: [[SQLValue]] = []
    public var newKeys: [[SQLValue]] = []
    public var changedRows: [ChangedRow] = []
    public var changedKeys: [[SQLValue]] { changedRows.map(\.key) }
    /// Rows of the snapshot live does not hold as they were: missing or changed.
    public var lost: Int64 { missingInLive + changed }
    /// The table has no key: rows were compared whole, as multisets, and the
    /// key lists hold whole rows (one entry per missing copy).
    public var wholeRow = false
}

/// Compares a restored snapshot with the live database by key (see TableKey;
/// whole rows as multisets for a table without one),
/// entirely inside SQLite (ATTACH and set queries): nothing is loaded into
/// memory but the keys asked for. The live database is attached read-only.
public final class RowDiff {
    let db: Database
    public let snapshotPath: String
    public let livePath: String

    public init(snapshotPath: String, livePath: String) throws {
        self.snapshotPath = snapshotPath
        self.livePath = livePath
        _ = try ConsistentCopy.openSource(livePath)          // clear errors for a missing or non-database live path
        db = try Database(path: "file:\(Self.uriPath(snapshotPath))?mode=ro", mode: .readOnly)
        try db.run("ATTACH DATABASE ? AS live", .text("file:\(Self.uriPath(livePath))?mode=ro"))
        // One read transaction: every count and key list describes the same moment of live.
        try db.execute("BEGIN")
    }

    deinit { try? db.execute("COMMIT") }

    static func uriPath(_ path: String) -> String {
        path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "?#"))) ?? path
    }

    /// User tables of one copy ("main": the snapshot, "live").
    func tableNames(_ schema: String) throws -> [String] {
        try db.rows("""
            SELECT name FROM \(schema).sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
              AND coalesce(sql, '') NOT LIKE 'CREATE VIRTUAL%' ORDER BY name
            """).compactMap { $0.first?.string }
    }

    /// Tables present in both databases (SQLite matches names without regard to case).
    public func commonTables() throws -> [String] {
        let live = Set(try tableNames("live").map { $0.lowercased() })
        return try tableNames("main").filter { live.contains($0.lowercased()) }
    }

    /// Tables only one copy has, one line each.
    public func tableDifferences() throws -> [String] {
        let snapshot = try tableNames("main"), live = try tableNames("live")
        let (inSnapshot, inLive) = (Set(snapshot.map { $0.lowercased() }), Set(live.map { $0.lowercased() }))
        return snapshot.filter { !inLive.contains($0.lowercased()) }.map(Self.notInLive)
            + live.filter { !inSnapshot.contains($0.lowercased()) }.map { "live has a table the snapshot lacks: \($0) (newer than the snapshot)" }
    }

    static func notInLive(_ table: String) -> String {
        "live has no table \(table) (the snapshot has it: dropped or renamed since)"
    }

    /// How `table` differs between the copies (it must be in both).
    public func drift(_ table: String) throws -> SchemaDrift {
        let names = try commonTables().map { $0.lowercased() }
        guard names.contains(table.lowercased()) else {
            throw SchemaDriftError(try tableNames("main").contains { $0.lowercased() == table.lowercased() }
                                   ? Self.notInLive(table) : "the snapshot has no table \(table)")
        }
        return SchemaDrift(snapshot: try TableKey.of(table, schema: "main", in: db), live: try TableKey.of(table, schema: "live", in: db))
    }

    /// Every table both copies have, compared on the columns both have; a
    /// table whose key changed cannot be matched row by row and is left out.
    /// `schema` names every difference of schema, tables and columns.
    public func diffAll(limit: Int? = 0, progress: ProgressHandler? = nil) throws -> (tables: [TableRowDiff], schema: [String]) {
        var tables: [TableRowDiff] = [], schema = try tableDifferences()
        let common = try commonTables()
        for (done, table) in common.enumerated() {
            progress?(ProgressUpdate(phase: "comparing tables with live", done: Int64(done), total: Int64(common.count), unit: .items))
            let drift = try drift(table)
            schema += drift.notes()
            if drift.cannotMatch == nil { tables.append(try diff(table: table, limit: limit)) }
        }
        return (tables, schema)
    }

    /// Diffs one table on the columns both copies have. `limit` caps each key
    /// list (0: counts only, nil: all keys). A table one copy lacks, or whose
    /// key changed, is a SchemaDriftError. `contents: false` sets only the keys
    /// against each other (rows missing and new; `changed` stays 0): a caller
    /// that asks only which rows are gone reads no column of millions of rows.
    public func diff(table: String, limit: Int? = 0, contents: Bool = true) throws -> TableRowDiff {
        let drift = try drift(table)
        if let reason = drift.cannotMatch { throw SchemaDriftError(reason) }
        let key = try TableKey.of(table, schema: "main", in: db)
        let liveKey = try TableKey.of(table, schema: "live", in: db)
        if key.kind == .wholeRow { return try diffWholeRows(table, columns: drift.common, limit: limit) }
        // Same key, other contents: compared on the columns both copies have, the key aside.
        let compared = !contents ? [] : key.columnNames.filter { drift.common.contains(Database.quote($0)) && !key.columns.contains(Database.quote($0)) }
        var result = TableRowDiff(table: table, keyColumns: key.columns, missingInLive: 0, onlyInLive: 0, changed: 0)
        // Comparing rowids is only comparing keys when the key is the rowid in both copies.
        if key.kind == .rowid && liveKey.kind == .rowid {
            try mergeRowids(table, key: key.columns[0], compared: compared, limit: limit, into: &result)
            return result
        }
        let t = Database.quote(table)
        // Anti-joins and joins on the key: lookups in each table's own b-tree,
        // no temporary copy of millions of keys (EXCEPT would build one).
        let s = key.columns.map { "s.\($0)" }.joined(separator: ", ")
        let l = key.columns.map { "l.\($0)" }.joined(separator: ", ")
        let missing = "SELECT \(s) FROM main.\(t) s WHERE NOT EXISTS (SELECT 1 FROM live.\(t) l WHERE \(key.match("l", "s")))"
        let newer = "SELECT \(l) FROM live.\(t) l WHERE NOT EXISTS (SELECT 1 FROM main.\(t) s WHERE \(key.match("s", "l")))"
        let flags = compared.map { Self.differs(Database.quote($0), "s", "l") }
        let changed = "FROM main.\(t) s JOIN live.\(t) l ON \(key.match("s", "l")) WHERE \(flags.isEmpty ? "0" : flags.joined(separator: " OR "))"
        result.missingInLive = try count(missing)
        result.onlyInLive = try count(newer)
        if contents { result.changed = try db.int("SELECT count(*) \(changed)") }
        guard limit != 0 else { return result }
        result.missingKeys = try keys(missing, limit: limit)
        result.newKeys = try keys(newer, limit: limit)
        guard contents else { return result }
        // Each changed row with one flag per compared column: which ones differ.
        let order = key.columns.indices.map { String($0 + 1) }.joined(separator: ", ")
        let statement = try db.prepare("SELECT \(s), \(flags.joined(separator: ", ")) \(changed) ORDER BY \(order)" + (limit.map { " LIMIT \($0)" } ?? ""))
        while try statement.step() {
            let row = statement.row()
            let differing = compared.indices.filter { row[key.columns.count + $0] == .integer(1) }.map { compared[$0] }
            result.changedRows.append(.init(key: Array(row.prefix(key.columns.count)), columns: differing))
        }
        return result
    }

    /// `s.c IS NOT l.c COLLATE BINARY`: a value that differs in any way
    /// counts, also where the column's own collation (NOCASE) calls 'ann' and
    /// 'Ann' equal. The rowid merge compares the same way (see sameValue).
    static func differs(_ column: String, _ left: String, _ right: String) -> String {
        "\(left).\(column) IS NOT \(right).\(column) COLLATE BINARY"
    }

    /// A table without a key, compared as two multisets of whole rows: per
    /// distinct row, the copies the snapshot has beyond live's are lost, and
    /// the other way round newer. One sort of both tables, no rowids (VACUUM
    /// renumbers them). Compares the columns both copies have.
    func diffWholeRows(_ table: String, columns: [String], limit: Int?) throws -> TableRowDiff {
        let t = Database.quote(table)
        let cols = columns.joined(separator: ", ")
        let copies = """
            SELECT \(cols), sum(bosbackup_in_snapshot) AS bosbackup_s, count(*) - sum(bosbackup_in_snapshot) AS bosbackup_l
            FROM (SELECT \(cols), 1 AS bosbackup_in_snapshot FROM main.\(t) UNION ALL SELECT \(cols), 0 FROM live.\(t)) GROUP BY \(cols)
            """
        let counts = try db.rows("SELECT total(max(bosbackup_s - bosbackup_l, 0)), total(max(bosbackup_l - bosbackup_s, 0)) FROM (\(copies))")[0]
        var result = TableRowDiff(table: table, keyColumns: [], missingInLive: Int64(counts[0].double ?? 0),
                                  onlyInLive: Int64(counts[1].double ?? 0), changed: 0, wholeRow: true)
        guard limit != 0 else { return result }
        func rows(_ surplus: String) throws -> [[SQLValue]] {
            let statement = try db.prepare("SELECT \(surplus), \(cols) FROM (\(copies)) WHERE \(surplus) > 0 ORDER BY \(cols)")
            var list: [[SQLValue]] = []
            while limit.map({ list.count < $0 }) ?? true, try statement.step() {
                let row = Array(statement.row().dropFirst())
                for _ in 0..<statement.int(at: 0) where limit.map({ list.count < $0 }) ?? true { list.append(row) }
            }
            return list
        }
        result.missingKeys = try rows("bosbackup_s - bosbackup_l")
        result.newKeys = try rows("bosbackup_l - bosbackup_s")
        return result
    }

    /// Both tables walked once in rowid order, side by side (a merge): two
    /// sequential scans instead of millions of lookups. Where both have a
    /// rowid, the two rows are compared column by column in place.
    func mergeRowids(_ table: String, key: String, compared: [String], limit: Int?, into result: inout TableRowDiff) throws {
        func wanted(_ count: Int) -> Bool { limit.map { count < $0 } ?? true }
        var found = result
        try RowidMerge(db: db, snapshot: "main", live: "live").run(table, key: key, compared: compared.map(Database.quote)) { row in
            switch row {
            case .missingInLive(let rowid):
                found.missingInLive += 1
                if wanted(found.missingKeys.count) { found.missingKeys.append([.integer(rowid)]) }
            case .onlyInLive(let rowid):
                found.onlyInLive += 1
                if wanted(found.newKeys.count) { found.newKeys.append([.integer(rowid)]) }
            case .changed(let rowid, let differing):
                found.changed += 1
                if wanted(found.changedRows.count) {
                    found.changedRows.append(.init(key: [.integer(rowid)], columns: try differing().map { compared[$0] }))
                }
            }
        }
        result = found
    }

    /// Column `i` of the current rows of `a` and `b` holds the same value, by
    /// the rule of `differs`: NULL is NULL, numbers by value (1 = 1.0), text
    /// and blobs byte for byte. Read in place: no copies per row.
    static func sameValue(_ a: Statement, _ b: Statement, _ i: Int32) throws -> Bool {
        let (x, y) = (a.handle, b.handle)
        switch (sqlite3_column_type(x, i), sqlite3_column_type(y, i)) {
        case (SQLITE_NULL, SQLITE_NULL): return true
        case (SQLITE_INTEGER, SQLITE_INTEGER): return sqlite3_column_int64(x, i) == sqlite3_column_int64(y, i)
        case (SQLITE_FLOAT, SQLITE_FLOAT): return sqlite3_column_double(x, i) == sqlite3_column_double(y, i)
        case (SQLITE_INTEGER, SQLITE_FLOAT): return same(sqlite3_column_int64(x, i), sqlite3_column_double(y, i))
        case (SQLITE_FLOAT, SQLITE_INTEGER): return same(sqlite3_column_int64(y, i), sqlite3_column_double(x, i))
        case (SQLITE_TEXT, SQLITE_TEXT), (SQLITE_BLOB, SQLITE_BLOB):
            // sqlite3_column_blob gives the bytes of text too, without converting them.
            let (p, q) = (sqlite3_column_blob(x, i), sqlite3_column_blob(y, i))
            let (n, m) = (sqlite3_column_bytes(x, i), sqlite3_column_bytes(y, i))
            guard n == m else { return false }
            guard n > 0 else { return true }
            // No pointer to bytes that are there: SQLite ran out of memory reading them.
            guard let p, let q else { throw SQLiteError(code: SQLITE_NOMEM, message: "out of memory reading a value to compare", path: a.database.path) }
            return memcmp(p, q, Int(n)) == 0
        default: return false
        }
    }

    /// An integer and a real are the same number (exactly, as SQLite compares them).
    private static func same(_ integer: Int64, _ real: Double) -> Bool {
        real.rounded() == real && real >= -0x1p63 && real < 0x1p63 && Int64(real) == integer
    }

    private func count(_ query: String) throws -> Int64 { try db.int("SELECT count(*) FROM (\(query))") }

    private func keys(_ query: String, limit: Int?) throws -> [[SQLValue]] {
        let statement = try db.prepare("\(query) ORDER BY 1" + (limit.map { " LIMIT \($0)" } ?? ""))
        var result: [[SQLValue]] = []
        while try statement.step() { result.append(statement.row()) }
        return result
    }
}
