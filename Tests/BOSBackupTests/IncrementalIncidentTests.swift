@testable import BOSBackup
import Foundation
import XCTest

/// The incident commands on an incremental snapshot (issue #14 item 6):
/// `restore --latest 3`, `diff`, `recover` and `drill` rebuild it from its chain.
final class IncrementalIncidentTests: XCTestCase {
    func testTriageDiffRecoverAndDrillWorkOnAnIncremental() throws {
        let dir = TempDir()
        let live = dir.file("live.db")
        try Fixtures.sampleDatabase(at: live, orders: 2_000)
        let config = dir.file("bos.yml")
        try """
            timezone: UTC
            host: store-0421
            databases: { bos: { path: \(live) } }
            catalog: \(dir.file("catalog.db"))
            scratch: \(dir.file("scratch"))
            targets: { nas: { url: "file://\(dir.file("nas"))" } }
            jobs:
              daily: { target: nas, cron: "0 22 * * *", incremental: { full_every: 7 } }
            drill: { cron: "0 3 1 1,4,7,10 *", rto: 4h }
            """.write(toFile: config, atomically: true, encoding: .utf8)
        func run(_ arguments: String...) throws -> ProcessResult { try bosbackup(arguments + ["--config", config]) }

        XCTAssertEqual(try run("backup", "--job", "daily").status, 0)
        XCTAssertEqual(try bosbackup("sample", "day", live, "--seed", "3").status, 0)
        let second = try run("backup", "--job", "daily", "--json")
        XCTAssertEqual(second.status, 0, second.stderr)
        let incremental = try jsonObject(second.stdout)
        XCTAssertEqual(incremental["kind"] as? String, "incremental")
        let id = try XCTUnwrap(incremental["id"] as? String)

        // A bad script deletes the newest 30 orders (with what hangs off them).
        try Database(path: live).execute("""
            PRAGMA foreign_keys = OFF;
            CREATE TEMP TABLE gone AS SELECT id FROM orders ORDER BY id DESC LIMIT 30;
            DELETE FROM order_items WHERE order_id IN gone; DELETE FROM payments WHERE order_id IN gone;
            DELETE FROM shipments WHERE order_id IN gone; DELETE FROM inventory_movements WHERE order_id IN gone;
            DELETE FROM orders WHERE id IN gone;
            """)
        let triage = try run("restore", "--latest", "3", "--live", live, "--json")
        XCTAssertEqual(triage.status, 0, triage.stderr)
        let results = try XCTUnwrap(try jsonObject(triage.stdout)["snapshots"] as? [[String: Any]])
        XCTAssertEqual(results.first?["id"] as? String, id, "the incremental is the newest")
        XCTAssertEqual(results.first?["ok"] as? Bool, true)
        let tables = try XCTUnwrap(results.first?["tables"] as? [[String: Any]])
        XCTAssertEqual(tables.first { $0["name"] as? String == "orders" }?["missing_in_live"] as? Int, 30)

        let diff = try run("diff", "--snapshot", id, "--live", live, "--table", "orders", "--json")
        XCTAssertEqual(diff.status, 0, diff.stderr)
        XCTAssertTrue(diff.stdout.contains("\"missing_in_live\""), diff.stdout)

        let recover = try run("recover", "--snapshot", id, "--live", live, "--table", "orders", "--apply")
        XCTAssertEqual(recover.status, 0, recover.stdout + recover.stderr)
        let cataloged = try XCTUnwrap((incremental["tables"] as? [String: Any])?["orders"] as? Int)
        XCTAssertEqual(try TableCounts.count(atPath: live)["orders"], Int64(cataloged))

        let drill = try run("drill", "--json")
        XCTAssertEqual(drill.status, 0, drill.stdout + drill.stderr)
    }
}
