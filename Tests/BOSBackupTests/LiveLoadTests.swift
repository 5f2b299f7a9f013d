@testable import BOSBackup
import Foundation
import XCTest

/// Backups while a writer process runs a BOS workload (an order with items,
/// payment and shipment per transaction) in WAL and rollback-journal modes:
/// every snapshot is consistent, and the writer's commit latency during a
/// backup is reported next to its latency without one
/// (`live-load: …`; a report, not a timed assertion — see make bench).
final class LiveLoadTests: XCTestCase {
    struct Latency: Decodable { let commits: Int; let per_second: Double; let p50_ms: Double; let p99_ms: Double; let max_ms: Double }

    func writer(_ live: String, stopFile: String) throws -> (Process, Pipe) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Fixtures.binary)
        p.arguments = ["sample", "add-orders", live, "--count", "1000000", "--latency", "--stop-file", stopFile, "--seed", "11"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        return (p, out)
    }

    func finish(_ writer: (Process, Pipe), stopFile: String) throws -> Latency {
        FileManager.default.createFile(atPath: stopFile, contents: nil)
        let data = writer.1.fileHandleForReading.readDataToEndOfFile()
        writer.0.waitUntilExit()
        try? FileManager.default.removeItem(atPath: stopFile)
        return try JSONDecoder().decode(Latency.self, from: data)
    }

    /// Waits (bounded) until the writer has committed `more` orders beyond `from`.
    func waitForOrders(_ live: String, from: Int64, more: Int64) throws {
        let deadline = Date().addingTimeInterval(120)
        let db = try Database(path: live, mode: .readOnly, busyTimeoutMs: 60_000)
        while Date() < deadline, try db.int("SELECT count(*) FROM orders") < from + more {}
    }

    func testBackupsUnderAWritingBOSAreConsistentAndLatencyIsReported() throws {
        for wal in [true, false] {
            let dir = TempDir()
            let live = dir.file("live.db"), stop = dir.file("stop")
            try Fixtures.sampleDatabase(at: live, orders: 6_000, wal: wal)
            // Baseline: the same writer for 1,500 orders with no backup running.
            var orders = try Database(path: live, mode: .readOnly, busyTimeoutMs: 60_000).int("SELECT count(*) FROM orders")
            let baselineWriter = try writer(live, stopFile: stop)
            try waitForOrders(live, from: orders, more: 1_500)
            let baseline = try finish(baselineWriter, stopFile: stop)

            orders = try Database(path: live, mode: .readOnly, busyTimeoutMs: 60_000).int("SELECT count(*) FROM orders")
            let loaded = try writer(live, stopFile: stop)
            try waitForOrders(live, from: orders, more: 50)
            var snapshots: [[String: Any]] = []
            for _ in 0..<2 {
                let result = try bosbackup("backup", "--source", live, "--target", "file://" + dir.file("nas"), "--catalog", dir.file("c.db"), "--json")
                XCTAssertEqual(result.status, 0, result.stderr)
                snapshots.append(try jsonObject(result.stdout))
            }
            let during = try finish(loaded, stopFile: stop)
            XCTAssertGreaterThan(during.commits, 0)
            for snapshot in snapshots {
                let restored = dir.file("r-\(snapshot["id"]!).db")
                XCTAssertEqual(try bosbackup("restore", "--snapshot", snapshot["id"] as! String, "--into", restored, "--catalog", dir.file("c.db")).status, 0)
                let db = try Database(path: restored, mode: .readOnly)
                XCTAssertEqual(try db.scalar("PRAGMA integrity_check")?.string, "ok")
                XCTAssertEqual(try db.rows("PRAGMA foreign_key_check").count, 0)
                XCTAssertEqual(try db.int("SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id)"), 0, "torn order")
                XCTAssertEqual(try db.int("SELECT count(*) FROM orders WHERE status != 'cancelled' AND id NOT IN (SELECT order_id FROM payments)"), 0, "order without its payment")
            }
            print(String(format: "live-load (%@): %d commits at %.0f tx/s during 2 backups; p99 commit %.2f ms during vs %.2f ms without (%d commits, %.0f tx/s); max %.1f ms",
                         wal ? "WAL" : "rollback journal", during.commits, during.per_second, during.p99_ms, baseline.p99_ms,
                         baseline.commits, baseline.per_second, during.max_ms))
        }
    }
}
