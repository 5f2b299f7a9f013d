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

    public static func count(atPath path: String) throws -> [String: Int64] {
        try count(in: Database(path: path, mode: .readOnly))
    }
}
