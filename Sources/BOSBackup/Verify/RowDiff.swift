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
}

/// Compares a restored snapshot with the live database by primary key,
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
            throw SQLiteError(code: 1, message: "table \(table) has a different primary key in live (\(liveKey.list)) than in the snapshot (\(key.list))", path: livePath)
        }
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
        var result = TableRowDiff(table: table, keyColumns: key.columns,
                                  missingInLive: try count(missing), onlyInLive: try count(newer),
                                  changed: includeChanged ? try count(changed) : 0)
        if limit != 0 {
            result.missingKeys = try keys(missing, limit: limit)
            result.newKeys = try keys(newer, limit: limit)
            result.changedKeys = try keys(changed, limit: limit)
        }
        return result
    }

    private func count(_ query: String) throws -> Int64 { try db.int("SELECT count(*) FROM (\(query))") }

    private func keys(_ query: String, limit: Int?) throws -> [[SQLValue]] {
        let statement = try db.prepare("\(query) ORDER BY 1" + (limit.map { " LIMIT \($0)" } ?? ""))
        var result: [[SQLValue]] = []
        while try statement.step() { result.append(statement.row()) }
        return result
    }
}
