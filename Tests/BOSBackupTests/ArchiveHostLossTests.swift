@testable import BOSBackup
import Foundation
import XCTest

/// The BOS host dies (issue #15): the BOS and the archiver are SIGKILLed at
/// the same moment, the database, its WAL and the catalog are gone. A new
/// catalog rebuilt from the S3 target alone (a real moto server on loopback)
/// restores every commit older than interval + 5 s, and no commit that was
/// not made.
final class ArchiveHostLossTests: ArchiveTestCase {
    func testKillingTheHostLosesNoCommitOlderThanTheIntervalPlusFiveSeconds() throws {
        bos = nil   // the writer process is the BOS
        let moto = try MotoServer.shared()
        let bucket = try runAsync { try await moto.makeBucket() }
        let catalog = dir.file("catalog.db")
        let interval = 1.0
        XCTAssertEqual(try bosbackup("key", "generate", dir.file("cloud.key")).status, 0)
        try """
            timezone: UTC
            host: store-0421
            databases: { bos: { path: \(live) } }
            catalog: \(catalog)
            scratch: \(dir.file("scratch"))
            targets:
              cloud: { url: "s3://\(bucket)/prod?endpoint=http://127.0.0.1:\(moto.port)", encryption_key_file: \(dir.file("cloud.key")) }
            jobs: { cloud-daily: { target: cloud, cron: "0 22 * * *" } }
            archive: { bos: { targets: { cloud: \(Int(interval))s } } }
            """.write(toFile: config, atomically: true, encoding: .utf8)

        let writer = try ledgerWriter(seconds: nil)
        let archiver = try ChildProcess(Fixtures.binary, ["archive", "--config", config], environment: MotoServer.environment)
        // Until a few seconds of commits are archived (bounded), then the host dies: both at once.
        let deadline = Date().addingTimeInterval(90)
        func archivedTxids() -> Int64 {
            guard let c = try? Catalog(readingAt: catalog), let g = try? c.generations(database: "bos", host: "store-0421").last else { return 0 }
            return (try? c.lastSegment(generation: g.id, target: "cloud"))?.lastTxid ?? 0
        }
        while archivedTxids() < 1_200, Date() < deadline, archiver.isRunning { usleep(100_000) }
        usleep(UInt32.random(in: 0...1_500_000))   // not right after a shipment: at any moment of the interval
        kill(writer.pid, SIGKILL)
        kill(archiver.pid, SIGKILL)
        let killedAt = Date().timeIntervalSince1970
        _ = try writer.wait(timeout: 30)
        let archived = try archiver.wait(timeout: 30)
        XCTAssertGreaterThanOrEqual(archivedTxids(), 1_200, "the archive kept up before the kill: " + archived.stderr)

        let commits = try commitLog()
        for file in [live, live + "-wal", live + "-shm", catalog, catalog + "-wal", catalog + "-shm"] { unlink(file) }

        // A new host: the catalog rebuilt from the bucket alone, then the newest state the archive holds.
        let rebuilt = try bosbackup(["catalog", "rebuild", "--target", "cloud", "--config", config], environment: MotoServer.environment)
        XCTAssertEqual(rebuilt.status, 0, rebuilt.stdout + rebuilt.stderr)
        XCTAssertTrue(rebuilt.stdout.contains("WAL archive: 1 generations"), rebuilt.stdout)
        let into = dir.file("restored.db")
        let restore = try bosbackup(["restore", "--at", "latest", "--into", into, "--config", config], environment: MotoServer.environment)
        XCTAssertEqual(restore.status, 0, restore.stdout + restore.stderr)
        let db = try Database(path: into, mode: .readOnly)
        XCTAssertEqual(try db.scalar("PRAGMA integrity_check")?.string, "ok")
        let rows = try db.rows("SELECT k, total FROM ledger ORDER BY k")
        let ks = rows.compactMap { $0[0].int }
        let k = ks.last ?? 0
        XCTAssertEqual(ks, Array(1...max(1, k)), "a contiguous prefix of the orders")
        for row in rows { XCTAssertEqual(row[1].int, (row[0].int ?? 0) * ((row[0].int ?? 0) + 1) / 2) }
        let mustHave = commits.filter { $0.began < killedAt - (interval + 5) }.map(\.k).max() ?? 0
        XCTAssertGreaterThan(mustHave, 0, "the run was long enough to test the bound")
        XCTAssertGreaterThanOrEqual(k, mustHave, "commit \(mustHave) was made more than \(interval + 5) s before the host died")
        // The writer logs after each commit: SIGKILL may take it between the two.
        XCTAssertLessThanOrEqual(k, (commits.last?.k ?? 0) + 1, "no commit that was not made")
        let lostSeconds = killedAt - (commits.first { $0.k == k }?.began ?? 0)
        print("host loss: \(commits.count) commits made, \(k) restored from S3 after rebuilding the catalog; the newest restored was begun \(String(format: "%.2f", lostSeconds)) s before the kill")
    }
}
