import Foundation

/// SQLite's own structural check of a database file.
public enum IntegrityCheck {
    /// `PRAGMA integrity_check` (or `quick_check`); returns the problems, empty when ok.
    public static func run(path: String, quick: Bool = false, maxErrors: Int = 20) -> [String] {
        do {
            let db = try Database(path: path, mode: .readOnly)
            let rows = try db.rows("PRAGMA \(quick ? "quick_check" : "integrity_check")(\(maxErrors))")
            let messages = rows.compactMap { $0.first?.string }
            return messages == ["ok"] ? [] : messages
        } catch {
            return ["\(error)"]
        }
    }
}
