@testable import BOSBackup
import Foundation
import XCTest

/// A live WAL database with a ledger (order k, running total 1+…+k), a
/// policy archiving it to a file target, and the CLI calls the archive tests
/// make. Holds no tests itself.
class ArchiveTestCase: XCTestCase {
    var dir: TempDir!
    var live: String { dir.file("live.db") }
    var config: String { dir.file("bos.yml") }
    /// The BOS's own connection, open for the whole test (closing the last
    /// connection would checkpoint and remove the WAL); no auto-checkpoint, so
    /// only the test decides when the WAL restarts.
    var bos: Database!

    override func setUpWithError() throws {
        dir = TempDir()
        try Fixtures.sampleDatabase(at: live, orders: 300)
        bos = try Database(path: live)
        try bos.execute("PRAGMA wal_autocheckpoint = 0; CREATE TABLE ledger(k INTEGER PRIMARY KEY, total INTEGER NOT NULL)")
        try writePolicy(archiveTargets: "nas: 1s")
    }

    /// Two file targets, nas and far; the archive ships to `archiveTargets`, with `options` (e.g. `retain: 7d`).
    func writePolicy(archiveTargets: String, options: String = "") throws {
        try """
            timezone: UTC
            host: store-0421
            databases: { bos: { path: \(live) } }
            catalog: \(dir.file("catalog.db"))
            scratch: \(dir.file("scratch"))
            targets: { nas: { url: "file://\(dir.file("nas"))" }, far: { url: "file://\(dir.file("far"))" } }
            jobs: { daily: { target: nas, cron: "0 22 * * *" } }
            archive: { bos: { targets: { \(archiveTargets) }\(options.isEmpty ? "" : ", " + options) } }
            """.write(toFile: config, atomically: true, encoding: .utf8)
    }

    override func tearDown() { bos = nil }

    /// Commit k: order k of the ledger and the running total 1+…+k.
    func commit(_ k: Int) throws {
        try bos.execute("INSERT INTO ledger(k, total) VALUES (\(k), \(k * (k + 1) / 2))")
    }

    func at(_ minute: Int) -> String { String(format: "2026-12-01T10:%02d:00Z", minute) }

    func archive(at minute: Int) throws -> ProcessResult {
        let result = try bosbackup("archive", "--once", "--config", config, "--now", at(minute))
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        return result
    }

    func restored(at time: String) throws -> (ProcessResult, [Int64]) { try restored(["--at", time]) }

    /// `restore <selection> --into` a new file: the result, and the orders restored (each total checked).
    func restored(_ selection: [String], environment: [String: String]? = nil) throws -> (ProcessResult, [Int64]) {
        let into = dir.file("at-\(UUID().uuidString.prefix(6)).db")
        let result = try bosbackup(["restore"] + selection + ["--into", into, "--config", config], environment: environment)
        if result.status != 0 { XCTAssertFalse(FileManager.default.fileExists(atPath: into), "a refused restore left \(into)") }
        guard result.status == 0 else { return (result, []) }
        let db = try Database(path: into, mode: .readOnly)
        XCTAssertEqual(try db.scalar("PRAGMA integrity_check")?.string, "ok")
        let rows = try db.rows("SELECT k, total FROM ledger ORDER BY k")
        for row in rows { XCTAssertEqual(row[1].int, (row[0].int ?? 0) * ((row[0].int ?? 0) + 1) / 2, "the running total of order \(row[0])") }
        return (result, rows.compactMap { $0[0].int })
    }

    /// Commit 1 in the base snapshot (10:00), then commits 2…6 one segment each (10:02…10:06).
    func archiveSixCommits() throws -> [WALSegmentRecord] {
        try commit(1)
        _ = try archive(at: 0)
        for k in 2...6 {
            try commit(k)
            _ = try archive(at: k)
        }
        let catalog = try Catalog(readingAt: dir.file("catalog.db"))
        let generation = try XCTUnwrap(try catalog.generations(database: "bos", host: "store-0421").last)
        let segments = try catalog.segments(generation: generation.id, target: "nas")
        XCTAssertEqual(segments.map(\.firstTxid), [1, 2, 3, 4, 5])
        return segments
    }

    /// The pages commit `txid` of the newest generation wrote, as the nas target's segment index has them.
    func archivedPages(txid: Int64) throws -> Set<UInt32> {
        let catalog = try Catalog(readingAt: dir.file("catalog.db"))
        let generation = try XCTUnwrap(try catalog.generations(database: "bos", host: "store-0421").last)
        let segment = try XCTUnwrap(try catalog.segments(generation: generation.id, target: "nas").first { $0.firstTxid <= txid && txid <= $0.lastTxid })
        let index = try runAsync {
            try await Repository(target: try TargetFactory.open(url: "file://" + self.dir.file("nas"))).segmentIndex(segment, try XCTUnwrap(segment.index))
        }
        return Set(try XCTUnwrap(index.first { $0.txid == txid }).pages.map(\.number))
    }

    /// The long-running archiver in this process, on the test's policy and catalog.
    func makeFollower(clock: Clock = SystemClock()) throws -> (WALFollower, Catalog) {
        let policy = try PolicyLoader.load(path: config)
        let catalog = try Catalog(path: dir.file("catalog.db"))
        let archiver = WALArchiver(catalog: catalog, clock: clock, policy: policy, archive: try XCTUnwrap(policy.archive(of: "bos")),
                                   scratch: dir.file("scratch")) { try TargetFactory.open(try XCTUnwrap(policy.target(named: $0))) }
        return (WALFollower(archiver), catalog)
    }

    // MARK: a writer process

    var commitLogPath: String { dir.file("commits.log") }

    /// A BOS process committing order k and the running total at about 200 tx/s, logging
    /// k and when its commit began (no archiver can see it earlier), for `seconds` (nil: until
    /// SIGTERM, which it obeys between commits; a SIGKILL may leave the last commit unlogged).
    func ledgerWriter(seconds: Double?) throws -> ChildProcess {
        try ChildProcess("/usr/bin/env", ["python3", "-c", """
            import signal, sqlite3, sys, time
            db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
            out = open(sys.argv[2], "w")
            end = time.time() + float(sys.argv[3]) if sys.argv[3] != "-" else float("inf")
            stopping = []
            signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))   # SIGTERM: after this commit is logged
            k = 0
            while time.time() < end and not stopping:
                k += 1
                began = time.time()
                db.execute("INSERT INTO ledger(k, total) VALUES (?, ?)", (k, k * (k + 1) // 2))
                out.write(f"{k} {began:.6f}\\n"); out.flush()
                time.sleep(0.004)
            """, live, commitLogPath, seconds.map { String($0) } ?? "-"])
    }

    /// The writer's log: (k, when its commit began), in order.
    func commitLog() throws -> [(k: Int64, began: Double)] {
        try String(contentsOfFile: commitLogPath, encoding: .utf8).split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 2, let k = Int64(parts[0]), let t = Double(parts[1]) else { return nil }
            return (k, t)
        }
    }

    /// `count` restores at random whole seconds between the first and last commit: each
    /// refused (no archive covers it) or exactly orders 1…k with k begun at or before T,
    /// and nothing begun `settled` seconds before T missing.
    func checkRandomRestores(_ count: Int, commits: [(k: Int64, began: Double)], settled: Double, using rng: inout SeededRandom)
        throws -> (exact: Int, refused: Int) {
        var exact = 0, refused = 0
        for _ in 0..<count {
            let at = Date(timeIntervalSince1970: Double.random(in: commits.first!.began...commits.last!.began, using: &rng).rounded(.down))
            let (result, rows) = try restored(at: ISO8601.string(at))
            if result.status == 2 {
                XCTAssertTrue(result.stderr.contains("no archive covers"), result.stderr)
                refused += 1
                continue
            }
            XCTAssertEqual(result.status, 0, result.stderr)
            let k = rows.last ?? 0
            XCTAssertEqual(rows, Array(1...max(1, k)).map { $0 }, "a contiguous prefix of the orders")
            let began = commits.first { $0.k == k }?.began ?? .infinity
            XCTAssertLessThanOrEqual(began, at.timeIntervalSince1970, "order \(k) was committed after \(ISO8601.string(at))")
            XCTAssertGreaterThanOrEqual(k, Int64(commits.filter { $0.began <= at.timeIntervalSince1970 - settled }.count), "at \(ISO8601.string(at))")
            exact += 1
        }
        return (exact, refused)
    }
}

/// A clock a test moves by hand.
final class SteppedClock: Clock, @unchecked Sendable {
    private let lock = NSLock()
    private var date: Date
    init(_ date: Date) { self.date = date }
    func now() -> Date { lock.withLock { date } }
    func advance(_ seconds: TimeInterval) { lock.withLock { date += seconds } }
}
