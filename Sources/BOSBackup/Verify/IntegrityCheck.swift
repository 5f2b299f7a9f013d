import Foundation

/// SQLite's own structural check of a database file.
public enum IntegrityCheck {
    /// Returns the problems found, empty when the database is sound.
    ///
    /// Full check (the default): what `PRAGMA integrity_check` checks, on all
    /// cores — one `PRAGMA quick_check` (every b-tree's structure, pages used
    /// twice or never, the freelist, NOT NULL and CHECK constraints) plus index
    /// contents and UNIQUE keys: by `IndexContentCheck`'s sequential scans for
    /// plain-column indexes, by `integrity_check(T)` for any other table. The
    /// pieces run on `jobs` read connections, biggest first, each taken by the
    /// next free connection. `quick: true` runs `quick_check` alone.
    public static func run(path: String, quick: Bool = false, jobs: Int = BlockGzipWriter.defaultJobs,
                           weights: [String: Int64] = [:], maxErrors: Int = 20) -> [String] {
        if quick { return pragma("quick_check(\(maxErrors))", path: path) }
        let plans: [(table: String, indexes: [IndexContentCheck.Index]?)]
        do {
            let db = try Database(path: path, mode: .readOnly)
            plans = try (TableCounts.tableNames(in: db) + systemTables(in: db)).map { ($0, try IndexContentCheck.plan(table: $0, in: db)) }
        } catch {
            return ["\(error)"]
        }
        let results = Locked(Findings())
        var work: [(weight: Int64, run: () -> Void)] = [(weights.values.reduce(0, +) / 8, {
            let problems = pragma("quick_check(\(maxErrors))", path: path)
            results.withValue { $0.problems += problems }
        })]
        for (table, indexes) in plans {
            let rows = max(weights[table] ?? 0, 1)
            guard let indexes else {
                work.append((rows * 2, {
                    let problems = pragma("integrity_check(\(Database.quote(table)))", path: path)
                    results.withValue { $0.problems += problems }
                }))
                continue
            }
            guard !indexes.isEmpty else { continue }
            work.append((rows, { record(results, table) { try IndexContentCheck.hashes(table: table, indexes: indexes, side: .table, path: path) } }))
            for index in indexes {
                work.append((rows / 2, {
                    record(results, table) {
                        let hash = try IndexContentCheck.hashes(table: table, indexes: [index], side: .index, path: path)
                        let duplicate = try index.unique && IndexContentCheck.duplicateKey(table: table, index: index, path: path)
                        results.withValue {
                            $0.indexHashes[index.name] = hash.first
                            if duplicate { $0.problems.append("UNIQUE index \(index.name) holds a key twice") }
                        }
                        return nil
                    }
                }))
            }
        }
        work.sort { $0.weight > $1.weight }
        let next = Locked(0)
        DispatchQueue.concurrentPerform(iterations: max(1, min(jobs, work.count))) { _ in
            while true {
                let i = next.withValue { value -> Int in defer { value += 1 }; return value }
                guard i < work.count else { return }
                work[i].run()
            }
        }
        var findings = results.value
        for (table, indexes) in plans {
            guard let indexes, let expected = findings.tableHashes[table] else { continue }
            for (index, hash) in zip(indexes, expected) where findings.indexHashes[index.name] != hash {
                findings.problems.append("index \(index.name) does not hold exactly the rows of table \(table) (PRAGMA integrity_check lists them)")
            }
        }
        return Array(Set(findings.problems)).sorted().prefix(maxErrors).map { $0 }
    }

    private struct Findings {
        var problems: [String] = []
        var tableHashes: [String: [Int64]] = [:]
        var indexHashes: [String: Int64] = [:]
    }

    /// Runs one scan; a table-side result is stored, an error becomes a problem.
    private static func record(_ results: Locked<Findings>, _ table: String, _ scan: () throws -> [Int64]?) {
        do {
            if let hashes = try scan() { results.withValue { $0.tableHashes[table] = hashes } }
        } catch {
            results.withValue { $0.problems.append("\(table): \(error)") }
        }
    }

    static func systemTables(in db: Database) throws -> [String] {
        try db.rows("SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'sqlite\\_%' ESCAPE '\\'")
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
