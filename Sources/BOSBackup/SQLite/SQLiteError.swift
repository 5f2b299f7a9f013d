import CSQLite

/// An SQLite failure with the context needed to act on it: the result code,
/// SQLite's own message, and the SQL or file that caused it (as GRDB does).
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    public let code: Int32
    public let message: String
    public let sql: String?
    public let path: String?

    public init(code: Int32, message: String, sql: String? = nil, path: String? = nil) {
        self.code = code
        self.message = message
        self.sql = sql
        self.path = path
    }

    /// The primary result code (extended codes carry the primary one in the low byte).
    public var primaryCode: Int32 { code & 0xff }

    /// True for "file is not a database" and "database disk image is malformed".
    public var isCorruptOrNotADatabase: Bool {
        primaryCode == SQLITE_NOTADB || primaryCode == SQLITE_CORRUPT
    }

    public var isBusyOrLocked: Bool {
        primaryCode == SQLITE_BUSY || primaryCode == SQLITE_LOCKED
    }

    public var description: String {
        var text = "SQLite error \(code): \(message)"
        if let path { text += " (\(path))" }
        if let sql { text += " in `\(sql.count > 200 ? String(sql.prefix(200)) + "…" : sql)`" }
        return text
    }
}
