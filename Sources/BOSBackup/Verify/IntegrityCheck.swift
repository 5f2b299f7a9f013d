import Foundation

/// SQLite's own structural check of a database file.
public enum IntegrityCheck {
    /// Returns the problems found, empty when the database is sound.
    ///
    /// Full check (the default): `PRAGMA integrity_check(T)` for every table
    /// (its b-tree and every index's contents) spread over `jobs` read
    /// connections, plus one `PRAGMA quick_check` for what only a whole-file
    /// pass sees (pages used twice or never, the freelist). Together they
    /// check what `integrity_check` does, on all cores. `quick: true` runs
    /// `quick_check` alone (no index-content check; several times faster).
    public static func run(path: String, quick: Bool = false, jobs: Int = BlockGzipWriter.defaultJobs,
                           weights: [String: Int64] = [:], maxErrors: Int = 20) -> [String] {
        if quick { return pragma("quick_check(\(maxErrors))", path: path) }
        let tables: [String]
        do { tables = try TableCounts.tableNames(in: Database(path: path, mode: .readOnly)) + (try systemTables(path)) } catch {
            return ["\(error)"]
        }
        // Biggest tables first, each taken by the next free connection: row counts
        // say little about how long a table takes (an index whose order differs
        // from the table's costs a random seek per row), so no static split.
        let whole = "quick_check(\(maxErrors))"
        let work = ([(whole, weights.values.reduce(0, +) / 8)] + tables.map { ("integrity_check(\(Database.quote($0)))", weights[$0] ?? 0) })
            .sorted { $0.1 > $1.1 }.map(\.0)
        let next = Locked(0)
        let results = Locked([String]())
        DispatchQueue.concurrentPerform(iterations: max(1, min(jobs, work.count))) { _ in
            while true {
                let i = next.withValue { value -> Int in defer { value += 1 }; return value }
                guard i < work.count else { return }
                let problems = pragma(work[i], path: path)
                results.withValue { $0 += problems }
            }
        }
        return Array(Set(results.value)).sorted().prefix(maxErrors).map { $0 }
    }

    static func systemTables(_ path: String) throws -> [String] {
        try Database(path: path, mode: .readOnly).rows("SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'sqlite\\_%' ESCAPE '\\'")
            .compactMap { $0.first?.string }
    }

    static func pragma(_ pragma: String, path: String) -> [String] {
        do {
            let messages = try Database(path: path, mode: .readOnly).rows("PRAGMA \(pragma)").compactMap { $0.first?.string }
            return messages == ["ok"] ? [] : messages
        } catch {
            return ["\(error)"]
        }
    }
}

/// A value shared between threads behind a lock.
final class Locked<Value>: @unchecked Sendable {
    private var stored: Value
    private let lock = NSLock()
    init(_ value: Value) { stored = value }
    var value: Value { lock.lock(); defer { lock.unlock() }; return stored }
    func withValue<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock(); defer { lock.unlock() }
        return try body(&stored)
    }
}
