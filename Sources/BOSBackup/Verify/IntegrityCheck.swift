import Foundation

/// What a structural check found: damage, and what it could not check.
/// "Could not check" (an application-defined collation, an I/O error, no
/// memory) is never damage: the caller answers it with exit 1, not 4.
public struct IntegrityReport: Sendable, Equatable {
    /// Damage: the database is not sound.
    public var problems: [String] = []
    /// Parts that could not be checked, each with the reason.
    public var unchecked: [String] = []
    public var sound: Bool { problems.isEmpty }

    public init(problems: [String] = [], unchecked: [String] = []) {
        self.problems = problems
        self.unchecked = unchecked
    }

    /// Files an error of a check under damage (SQLite says corrupt / not a
    /// database) or under could-not-check (anything else).
    mutating func add(_ error: Error, what: String? = nil) {
        let text = (what.map { "\($0): " } ?? "") + "\(error)"
        if let sqlite = error as? SQLiteError, sqlite.isCorruptOrNotADatabase { problems.append(text) } else { unchecked.append(text) }
    }

    mutating func formUnion(_ other: IntegrityReport) {
        problems += other.problems
        unchecked += other.unchecked
    }
}

/// SQLite's own structural check of a database file.
public enum IntegrityCheck {
    /// What the check found.
    ///
    /// Full check (the default): what `PRAGMA integrity_check` checks, on all
    /// cores — one `PRAGMA quick_check` (every b-tree's structure, pages used
    /// twice or never, the freelist, NOT NULL and CHECK constraints) plus index
    /// contents, order and UNIQUE keys: by `IndexContentCheck`'s sequential
    /// scans for plain-column indexes, by `integrity_check(T)` for any other
    /// table. The pieces run on `jobs` read connections, biggest first, each
    /// taken by the next free connection. `quick: true` runs `quick_check` alone.
    public static func run(path: String, quick: Bool = false, jobs: Int = BlockGzipWriter.defaultJobs,
                           weights: [String: Int64] = [:], maxErrors: Int = 20,
                           progress: ProgressHandler? = nil, phase: String = "checking integrity") -> IntegrityReport {
        if quick { return pragma("quick_check(\(maxErrors))", path: path, standIn: true) }
        let plans: [(table: String, indexes: [IndexContentCheck.Index]?)]
        do {
            let db = try Database(path: path, mode: .readOnly)
            plans = try (TableCounts.tableNames(in: db) + systemTables(in: db)).map { ($0, try IndexContentCheck.plan(table: $0, in: db)) }
        } catch {
            var report = IntegrityReport()
            report.add(error)
            return report
        }
        let results = Locked(Findings())
        var work: [(weight: Int64, run: () -> Void)] = [(weights.values.reduce(0, +) / 8, {
            let report = pragma("quick_check(\(maxErrors))", path: path, standIn: true)
            results.withValue { $0.report.formUnion(report) }
        })]
        for (table, indexes) in plans {
            let rows = max(weights[table] ?? 0, 1)
            guard let indexes else {
                work.append((rows * 2, {
                    let report = pragma("integrity_check(\(Database.quote(table)))", path: path, what: "table \(table)")
                    results.withValue { $0.report.formUnion(report) }
                }))
                continue
            }
            guard !indexes.isEmpty else { continue }
            work.append((rows, {
                scan(results, table) {
                    let hashes = try IndexContentCheck.tableHashes(table: table, indexes: indexes, path: path)
                    results.withValue { $0.tableHashes[table] = hashes }
                }
            }))
            for index in indexes {
                work.append((rows / 2, {
                    scan(results, table) {
                        let found = try IndexContentCheck.scanIndex(table: table, index: index, path: path)
                        results.withValue {
                            $0.indexHashes[index.name] = found.hash
                            switch found.order {
                            case nil:
                                $0.report.unchecked.append("order of index \(index.name) of table \(table): its collation \(index.foreignCollations.joined(separator: ", ")) is the application's own (its entries were checked, their order could not be)")
                            case .inOrder?: break
                            case .outOfOrder?:
                                $0.report.problems.append("index \(index.name) of table \(table) holds its entries out of order: lookups through it miss rows (PRAGMA integrity_check lists them)")
                            case .duplicateKey?: $0.report.problems.append("UNIQUE index \(index.name) holds a key twice")
                            }
                        }
                    }
                }))
            }
        }
        work.sort { $0.weight > $1.weight }
        let next = Locked(0), finished = Locked(Int64(0))
        let total = Int64(work.count)
        DispatchQueue.concurrentPerform(iterations: max(1, min(jobs, work.count))) { _ in
            while true {
                let i = next.withValue { value -> Int in defer { value += 1 }; return value }
                guard i < work.count else { return }
                work[i].run()
                let done = finished.withValue { value -> Int64 in value += 1; return value }
                progress?(ProgressUpdate(phase: phase, done: done, total: total, unit: .items))
            }
        }
        var findings = results.value
        for (table, indexes) in plans {
            guard let indexes, let expected = findings.tableHashes[table] else { continue }
            for (index, hash) in zip(indexes, expected) where findings.indexHashes[index.name].map({ $0 != hash }) ?? false {
                findings.report.problems.append("index \(index.name) does not hold exactly the rows of table \(table) (PRAGMA integrity_check lists them)")
            }
        }
        var report = findings.report
        report.problems = Array(Array(Set(report.problems)).sorted().prefix(maxErrors))
        report.unchecked = Array(Set(report.unchecked)).sorted()
        return report
    }

    private struct Findings {
        var report = IntegrityReport()
        var tableHashes: [String: [Int64]] = [:]
        var indexHashes: [String: Int64] = [:]
    }

    /// Runs one scan; its error is damage or could-not-check, as `IntegrityReport.add` decides.
    private static func scan(_ results: Locked<Findings>, _ table: String, _ body: () throws -> Void) {
        do { try body() } catch { results.withValue { $0.report.add(error, what: "table \(table)") } }
    }

    static func systemTables(in db: Database) throws -> [String] {
        try db.rows("SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'sqlite\\_%' ESCAPE '\\'")
            .compactMap { $0.first?.string }
    }

    /// `standIn`: for `quick_check`, which checks structure and never compares
    /// index keys, application-defined collations get a stand-in (see
    /// `IndexContentCheck.scanConnection`); `integrity_check` compares them, so
    /// it must fail (could not check) rather than use a wrong one.
    static func pragma(_ pragma: String, path: String, what: String? = nil, standIn: Bool = false) -> IntegrityReport {
        var report = IntegrityReport()
        do {
            let db = try Database(path: path, mode: .readOnly)
            if standIn { db.standInForUnknownCollations() }
            let messages = try db.rows("PRAGMA \(pragma)").compactMap { $0.first?.string }
            if messages != ["ok"] { report.problems = messages }
        } catch {
            report.add(error, what: what)
        }
        return report
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
