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

    /// Two file targets, nas and far; the archive ships to `archiveTargets`.
    func writePolicy(archiveTargets: String) throws {
        try """
            timezone: UTC
            host: store-0421
            databases: { bos: { path: \(live) } }
            catalog: \(dir.file("catalog.db"))
            scratch: \(dir.file("scratch"))
            targets: { nas: { url: "file://\(dir.file("nas"))" }, far: { url: "file://\(dir.file("far"))" } }
            jobs: { daily: { target: nas, cron: "0 22 * * *" } }
            archive: { bos: { targets: { \(archiveTargets) } } }
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
}
