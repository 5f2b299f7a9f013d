import CSQLite
import Foundation

// SQLITE_TRANSIENT tells SQLite to copy bound text/blobs before the call returns.
let SQLITE_TRANSIENT = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// One SQLite connection. Closed when the value goes out of scope, so a
/// failed operation never leaks a file handle or a lock.
public final class Database {
    public enum Mode { case readOnly, readWrite, readWriteCreate }

    public let path: String
    let handle: OpaquePointer

    public init(path: String, mode: Mode = .readWrite, busyTimeoutMs: Int32 = 5000) throws {
        self.path = path
        var flags: Int32 = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI
        switch mode {
        case .readOnly: flags |= SQLITE_OPEN_READONLY
        case .readWrite: flags |= SQLITE_OPEN_READWRITE
        case .readWriteCreate: flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
        }
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            var message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            // "unable to open database file" hides the reason the system gave (permission denied, no such folder).
            if let db, sqlite3_system_errno(db) != 0 { message += ": " + String(cString: strerror(sqlite3_system_errno(db))) }
            if let db { sqlite3_close_v2(db) }
            throw SQLiteError(code: rc, message: message, path: path)
        }
        self.handle = db
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, busyTimeoutMs)
    }

    deinit { sqlite3_close_v2(handle) }

    /// Waits for a lock by trying again every `quickRetryMicroseconds`, up to `timeoutMs`,
    /// instead of SQLite's busy timeout, which sleeps 1, 2, 5 … 50, 100 ms between tries: a
    /// connection that must get the write lock between two commits of a writer committing
    /// back to back almost never lands in those microseconds that way (the archiver's
    /// barrier waited 767 ms while the BOS caught up, and the WAL passed its bound).
    public func retryBusyQuickly(timeoutMs: Int) {
        let tries = max(1, timeoutMs * 1000 / Self.quickRetryMicroseconds)
        sqlite3_busy_handler(handle, { context, count in
            guard Int(count) < Int(bitPattern: context) else { return 0 }
            usleep(UInt32(Database.quickRetryMicroseconds))
            return 1
        }, UnsafeMutableRawPointer(bitPattern: tries))
    }

    static let quickRetryMicroseconds = 150

    func error(_ rc: Int32, sql: String? = nil) -> SQLiteError {
        SQLiteError(code: rc, message: String(cString: sqlite3_errmsg(handle)), sql: sql, path: path)
    }

    /// Runs one or more statements that return no rows we need.
    public func execute(_ sql: String) throws {
        var errmsg: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &errmsg)
        if rc != SQLITE_OK {
            let message = errmsg.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(errmsg)
            throw SQLiteError(code: rc, message: message, sql: sql, path: path)
        }
    }

    public func prepare(_ sql: String) throws -> Statement {
        try Statement(database: self, sql: sql)
    }

    /// Runs a statement with arguments, stepping it to completion.
    public func run(_ sql: String, _ arguments: SQLValue...) throws {
        let statement = try prepare(sql)
        try statement.bind(arguments)
        while try statement.step() {}
    }

    /// All rows of a query, each as an array of values. Use for small results only.
    public func rows(_ sql: String, _ arguments: SQLValue...) throws -> [[SQLValue]] {
        try rows(sql, arguments: arguments)
    }

    public func rows(_ sql: String, arguments: [SQLValue]) throws -> [[SQLValue]] {
        let statement = try prepare(sql)
        try statement.bind(arguments)
        var result: [[SQLValue]] = []
        while try statement.step() { result.append(statement.row()) }
        return result
    }

    /// The first column of the first row, or nil when there is no row.
    public func scalar(_ sql: String, _ arguments: SQLValue...) throws -> SQLValue? {
        let statement = try prepare(sql)
        try statement.bind(arguments)
        // Not `step() ? value : nil`: SQLValue is nil-literal convertible, so that nil would be `.null`.
        guard try statement.step() else { return nil }
        return statement.value(at: 0)
    }

    public func int(_ sql: String, _ arguments: SQLValue...) throws -> Int64 {
        let statement = try prepare(sql)
        try statement.bind(arguments)
        guard try statement.step() else { throw SQLiteError(code: SQLITE_ERROR, message: "query returned no row", sql: sql, path: path) }
        return statement.int(at: 0)
    }

    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    /// True inside BEGIN … COMMIT (a statement now would join that transaction).
    public var inTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }
    public var changes: Int { Int(sqlite3_changes(handle)) }

    /// Runs `body` in a transaction; commits on return, rolls back on throw.
    public func transaction<T>(_ kind: String = "IMMEDIATE", _ body: () throws -> T) throws -> T {
        try execute("BEGIN \(kind)")
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Answers SQLite's request for a collation it does not know (one the
    /// application registers on its own connections) with a byte-order
    /// stand-in. Only for reading work that never compares keys with it:
    /// full scans, `quick_check`. Anything that seeks or sorts would get wrong
    /// answers.
    func standInForUnknownCollations() {
        sqlite3_collation_needed(handle, nil) { _, db, _, name in
            sqlite3_create_collation_v2(db, name, SQLITE_UTF8, nil, { _, n1, p1, n2, p2 in
                let n = Int(min(n1, n2))
                let c = n > 0 ? memcmp(p1!, p2!, n) : 0
                return c != 0 ? c : n1 - n2
            }, nil)
        }
    }

    /// Opens a file nobody writes while it is read (a copy in scratch, a catalog no
    /// writer holds) read-only and immutable: no -shm file, no locks, no WAL looked for.
    public static func immutable(_ path: String) throws -> Database {
        try Database(path: "file:" + (path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? path) + "?immutable=1", mode: .readOnly)
    }

    /// Quotes an identifier for SQL ("my ""table"").
    public static func quote(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// The identifier a `quote`d one names (`"my ""table"""` → `my "table"`); others as they are.
    public static func unquote(_ quoted: String) -> String {
        guard quoted.count >= 2, quoted.hasPrefix("\""), quoted.hasSuffix("\"") else { return quoted }
        return String(quoted.dropFirst().dropLast()).replacingOccurrences(of: "\"\"", with: "\"")
    }
}
