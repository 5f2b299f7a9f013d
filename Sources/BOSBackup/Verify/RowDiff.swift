import Foundation

/// Row-level differences of one table between a snapshot and the live database.
public struct TableRowDiff: Sendable {
    public var table: String
    public var keyColumns: [String]
    /// Rows the snapshot has and live does not (lost rows).
    public var missingInLive: Int64
    /// Rows only live has (newer than the snapshot).
    public var onlyInLive: Int64
    /// Rows present in both whose contents differ.
    public var changed: Int64
    public var missingKeys: [[SQLValue]] = []
    public var newKeys: [[SQLValue]] = []
    public var changedKeys: [[SQLValue]] = []
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

    /// Tables present in both databases.
    public func commonTables() throws -> [String] {
        let live = Set(try db.rows("SELECT name FROM live.sqlite_schema WHERE type = 'table'").compactMap { $0.first?.string })
        return try TableCounts.tableNames(in: db).filter { live.contains($0) }
    }

    /// Diffs one table. `limit` caps each key list (0: counts only, nil: all keys).
    public func diff(table: String, limit: Int? = 0, includeChanged: Bool = true) throws -> TableRowDiff {
        let key = try TableKey.of(table, schema: "main", in: db)
        let liveKey = try TableKey.of(table, schema: "live", in: db)
        guard key.columns == liveKey.columns else {
            throw SQLiteError(code: 1, message: "table \(table) has a different key in live (\(liveKey.list)) than in the snapshot (\(key.list))", path: livePath)
        }
        if key.kind == .wholeRow { return try diffWholeRows(table, snapshot: key, live: liveKey, limit: limit) }
        let t = Database.quote(table)
        // Anti-joins and joins on the key: lookups in each table's own b-tree,
        // no temporary copy of millions of keys (EXCEPT would build one).
        let s = key.columns.map { "s.\($0)" }.joined(separator: ", ")
        let l = key.columns.map { "l.\($0)" }.joined(separator: ", ")
        let missing = "SELECT \(s) FROM main.\(t) s WHERE NOT EXISTS (SELECT 1 FROM live.\(t) l WHERE \(key.match("l", "s")))"
        let newer = "SELECT \(l) FROM live.\(t) l WHERE NOT EXISTS (SELECT 1 FROM main.\(t) s WHERE \(key.match("s", "l")))"
        // Same key, other contents: compare the columns both copies have.
        let liveColumns = Set(liveKey.allColumns)
        let differs = key.allColumns.filter(liveColumns.contains).map { "s.\($0) IS NOT l.\($0)" }.joined(separator: " OR ")
        let changed = "SELECT \(s) FROM main.\(t) s JOIN live.\(t) l ON \(key.match("s", "l")) WHERE \(differs.isEmpty ? "0" : differs)"
        var result = TableRowDiff(table: table, keyColumns: key.columns, missingInLive: 0, onlyInLive: 0,
                                  changed: includeChanged ? try count(changed) : 0)
        // Comparing rowids is only comparing keys when the key is the rowid in both copies.
        if key.kind == .rowid && liveKey.kind == .rowid {
            try mergeRowids(table, limit: limit, into: &result)
        } else {
            result.missingInLive = try count(missing)
            result.onlyInLive = try count(newer)
            if limit != 0 {
                result.missingKeys = try keys(missing, limit: limit)
                result.newKeys = try keys(newer, limit: limit)
            }
        }
        if limit != 0 { result.changedKeys = try keys(changed, limit: limit) }
        return result
    }

    /// A table without a key, compared as two multisets of whole rows: per
    /// distinct row, the copies the snapshot has beyond live's are lost, and
    /// the other way round newer. One sort of both tables, no rowids (VACUUM
    /// renumbers them). Compares the columns both copies have.
    func diffWholeRows(_ table: String, snapshot: TableKey, live: TableKey, limit: Int?) throws -> TableRowDiff {
        let t = Database.quote(table)
        let liveColumns = Set(live.allColumns)
        let cols = snapshot.allColumns.filter(liveColumns.contains).joined(separator: ", ")
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
    /// sequential scans instead of millions of lookups.
    func mergeRowids(_ table: String, limit: Int?, into result: inout TableRowDiff) throws {
        let t = Database.quote(table)
        let snapshot = try db.prepare("SELECT rowid FROM main.\(t) ORDER BY rowid")
        let live = try db.prepare("SELECT rowid FROM live.\(t) ORDER BY rowid")
        var s: Int64? = try snapshot.step() ? snapshot.int(at: 0) : nil
        var l: Int64? = try live.step() ? live.int(at: 0) : nil
        func wanted(_ list: [[SQLValue]]) -> Bool { limit.map { list.count < $0 } ?? true }
        while s != nil || l != nil {
            if let sv = s, l == nil || sv < l! {
                result.missingInLive += 1
                if wanted(result.missingKeys) { result.missingKeys.append([.integer(sv)]) }
                s = try snapshot.step() ? snapshot.int(at: 0) : nil
            } else if let lv = l, s == nil || lv < s! {
                result.onlyInLive += 1
                if wanted(result.newKeys) { result.newKeys.append([.integer(lv)]) }
                l = try live.step() ? live.int(at: 0) : nil
            } else {
                s = try snapshot.step() ? snapshot.int(at: 0) : nil
                l = try live.step() ? live.int(at: 0) : nil
            }
        }
    }

    private func count(_ query: String) throws -> Int64 { try db.int("SELECT count(*) FROM (\(query))") }

    private func keys(_ query: String, limit: Int?) throws -> [[SQLValue]] {
        let statement = try db.prepare("\(query) ORDER BY 1" + (limit.map { " LIMIT \($0)" } ?? ""))
        var result: [[SQLValue]] = []
        while try statement.step() { result.append(statement.row()) }
        return result
    }
}
