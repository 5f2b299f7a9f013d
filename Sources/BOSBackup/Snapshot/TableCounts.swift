import Foundation

/// Per-table row counts of a database: what the catalog records and what
/// every restore is checked against.
public enum TableCounts {
    /// Names of the ordinary user tables (no sqlite_* internals, no virtual tables).
    public static func tableNames(in db: Database) throws -> [String] {
        try db.rows("""
            SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
              AND coalesce(sql, '') NOT LIKE 'CREATE VIRTUAL%' ORDER BY name
            """).compactMap { $0.first?.string }
    }

    /// Row count of every user table, read in one transaction so they belong
    /// to one point in time even if the database is being written.
    public static func count(in db: Database) throws -> [String: Int64] {
        try db.transaction("DEFERRED") { try countInOpenTransaction(db) }
    }

    /// The same inside a transaction the caller holds (a pinned snapshot).
    public static func countInOpenTransaction(_ db: Database) throws -> [String: Int64] {
        // count(*) scans the smallest index, never comparing keys: an index with
        // the application's own collation must not make a BOS unbackupable.
        db.standInForUnknownCollations()
        var counts: [String: Int64] = [:]
        for name in try tableNames(in: db) {
            counts[name] = try db.int("SELECT count(*) FROM \(Database.quote(name))")
        }
        return counts
    }

    /// The counts of a snapshot being taken: a table SQLite reports damaged is
    /// left out and named in `damage` instead of failing the backup — the image
    /// is still the best copy there is, and is stored marked damaged. Runs in
    /// the caller's read transaction (the pinned commit), or on a private copy
    /// nobody writes.
    static func countStoring(_ db: Database) throws -> (counts: [String: Int64], damage: [String]) {
        db.standInForUnknownCollations()
        // Each count reads its index once, so a page cache only fills: at SQLite's default
        // (2 MB) it was 2 MB of the archiver's peak, while a base snapshot was taken.
        let cacheSize = try db.int("PRAGMA cache_size")
        try db.execute("PRAGMA cache_size = \(Self.countingCacheSize)")
        defer { try? db.execute("PRAGMA cache_size = \(cacheSize)") }   // the connection's own setting again; failing that, a smaller cache
        let names: [String]
        do { names = try tableNames(in: db) } catch let error as SQLiteError where error.isCorruptOrNotADatabase {
            return ([:], ["schema: \(error.message)"])
        }
        var counts: [String: Int64] = [:], damage: [String] = []
        for name in names {
            do { counts[name] = try db.int("SELECT count(*) FROM \(Database.quote(name))") } catch let error as SQLiteError where error.isCorruptOrNotADatabase {
                damage.append("table \(name): \(error.message)")
            }
        }
        return (counts, damage)
    }

    /// The page cache while counting: -256 is 256 KiB, room for the interior pages of any index.
    static let countingCacheSize = -256

    public static func count(atPath path: String) throws -> [String: Int64] {
        try count(in: Database(path: path, mode: .readOnly))
    }
}
