@testable import BOSBackup
import Foundation
import XCTest

/// The story the project is judged by: a retailer lost 3,000 of today's
/// orders while new ones kept arriving. `restore --latest 3 --live` shows
/// which snapshot holds them, `diff` lists exactly their keys, and
/// `recover --apply` puts exactly them back with their child rows, keeping
/// every newer order.
final class LostOrdersStoryTests: XCTestCase {
    func testLostOrdersAreFoundListedAndRecovered() throws {
        let dir = TempDir()
        let live = dir.file("live.db"), catalog = dir.file("catalog.db"), nas = "file://" + dir.file("nas")
        let today = Date(timeIntervalSince1970: 1_795_780_800)             // 27 Nov 2026 12:00 UTC
        try Fixtures.sampleDatabase(at: live, orders: 4_000)
        let before = try Database(path: live).int("SELECT max(id) FROM orders")

        // The day goes on: three backups, 1,200 new orders before each.
        var snapshotIDs: [String] = []
        for round in 0..<3 {
            _ = try SampleBOS.addOrders(to: live, count: 1_200, at: today.addingTimeInterval(Double(round) * 3_600), seed: UInt64(round + 10))
            let backup = try bosbackup("backup", "--source", live, "--target", nas, "--catalog", catalog, "--json")
            XCTAssertEqual(backup.status, 0, backup.stderr)
            snapshotIDs.append(try XCTUnwrap(try jsonObject(backup.stdout)["id"] as? String))
        }
        // A bad script deletes 3,000 of today's orders (not the newest ones) while new orders keep arriving.
        let lost = Array((before + 1)...(before + 3_000))
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: Fixtures.binary)
        writer.arguments = ["sample", "add-orders", live, "--count", "200", "--seed", "99"]
        writer.standardOutput = FileHandle.nullDevice
        try writer.run()
        let db = try Database(path: live, busyTimeoutMs: 30_000)
        for chunk in stride(from: 0, to: lost.count, by: 500) {
            let ids = lost[chunk..<min(lost.count, chunk + 500)].map(String.init).joined(separator: ",")
            try db.execute("""
                BEGIN IMMEDIATE;
                DELETE FROM order_items WHERE order_id IN (\(ids)); DELETE FROM payments WHERE order_id IN (\(ids));
                DELETE FROM shipments WHERE order_id IN (\(ids)); DELETE FROM inventory_movements WHERE order_id IN (\(ids));
                DELETE FROM orders WHERE id IN (\(ids));
                COMMIT;
                """)
        }
        writer.waitUntilExit()
        XCTAssertEqual(writer.terminationStatus, 0)
        let newer = try Set(db.rows("SELECT id FROM orders WHERE id > ?", .integer(before + 3_600)).compactMap { $0[0].int })
        XCTAssertEqual(newer.count, 200, "orders that arrived after the last snapshot")

        // 1. Triage: the newest snapshot holds all 3,000; the older ones fewer.
        let triage = try bosbackup("restore", "--latest", "3", "--live", live, "--catalog", catalog, "--json")
        XCTAssertEqual(triage.status, 0, triage.stderr)
        let results = try XCTUnwrap(try jsonObject(triage.stdout)["snapshots"] as? [[String: Any]])
        XCTAssertEqual(results.map { $0["id"] as? String }, snapshotIDs.reversed().map { $0 }, "newest first")
        func orders(_ r: [String: Any]) throws -> [String: Any] {
            try XCTUnwrap((r["tables"] as? [[String: Any]])?.first { $0["name"] as? String == "orders" })
        }
        XCTAssertEqual(try results.map { try orders($0)["missing_in_live"] as? Int }, [3_000, 2_400, 1_200])
        let newest = try orders(results[0])
        XCTAssertEqual(newest["delta"] as? Int, (newest["live"] as! Int) - (newest["restored"] as! Int))
        XCTAssertEqual(newest["only_in_live"] as? Int, 200)
        XCTAssertTrue((results[0]["verdict"] as? String ?? "").contains("orders \u{2212}3000"), "\(results[0]["verdict"] ?? "")")
        let human = try bosbackup("restore", "--latest", "3", "--live", live, "--catalog", catalog)
        XCTAssertTrue(human.stdout.contains("snapshot \(SnapshotID.short(snapshotIDs[2])) holds the most rows live lost"), human.stdout)

        // 2. diff lists exactly those 3,000 keys.
        let diff = try bosbackup("diff", "--snapshot", snapshotIDs[2], "--live", live, "--table", "orders", "--limit", "10000",
                                 "--catalog", catalog, "--json")
        XCTAssertEqual(diff.status, 0, diff.stderr)
        let table = try XCTUnwrap((try jsonObject(diff.stdout)["tables"] as? [[String: Any]])?.first)
        XCTAssertEqual((table["missing_keys"] as? [Int])?.map(Int64.init), lost)
        XCTAssertEqual(Set((table["new_keys"] as? [Int] ?? []).map(Int64.init)), newer)
        XCTAssertEqual(table["changed"] as? Int, 0)

        // 3. While the BOS holds a write lock, recover refuses and changes nothing.
        let blocker = try Database(path: live)
        try blocker.execute("BEGIN IMMEDIATE")
        let refused = try bosbackup("recover", "--snapshot", snapshotIDs[2], "--live", live, "--table", "orders", "--apply", "--catalog", catalog)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("locked"), refused.stderr)
        try blocker.execute("ROLLBACK")

        // 4. The statements for review, then the recovery itself.
        let sql = dir.file("review.sql")
        let review = try bosbackup("recover", "--snapshot", snapshotIDs[2], "--live", live, "--table", "orders", "--sql", sql, "--catalog", catalog)
        XCTAssertEqual(review.status, 0, review.stderr)
        let statements = try String(contentsOfFile: sql, encoding: .utf8)
        XCTAssertEqual(statements.components(separatedBy: "INSERT INTO \"orders\"").count - 1, 3_000)
        XCTAssertEqual(try db.int("SELECT count(*) FROM orders WHERE id BETWEEN ? AND ?", .integer(lost[0]), .integer(lost.last!)), 0, "--sql changes nothing")

        let applied = try bosbackup("recover", "--snapshot", snapshotIDs[2], "--live", live, "--table", "orders", "--apply", "--catalog", catalog, "--json")
        XCTAssertEqual(applied.status, 0, applied.stderr)
        let report = try jsonObject(applied.stdout)
        let restoredTables = Dictionary(uniqueKeysWithValues: (report["tables"] as? [[String: Any]] ?? []).map { ($0["name"] as! String, $0["rows"] as! Int) })
        XCTAssertEqual(restoredTables["orders"], 3_000)
        XCTAssertTrue(FileManager.default.fileExists(atPath: try XCTUnwrap(report["safety_copy"] as? String)))

        // Exactly the lost orders came back, with every child row the snapshot had; newer orders kept.
        let snapshot = try Database(path: dir.file("scratch/restored/") + (try Catalog(path: catalog).snapshot(snapshotIDs[2]).name) + ".db", mode: .readOnly)
        let idList = lost.map(String.init).joined(separator: ",")
        XCTAssertEqual(try db.int("SELECT count(*) FROM orders WHERE id IN (\(idList))"), 3_000)
        for child in ["order_items", "payments", "shipments", "inventory_movements"] {
            let want = try snapshot.int("SELECT count(*) FROM \(child) WHERE order_id IN (\(idList))")
            XCTAssertEqual(try db.int("SELECT count(*) FROM \(child) WHERE order_id IN (\(idList))"), want, child)
            XCTAssertEqual(restoredTables[child].map(Int64.init), want, child)
        }
        XCTAssertEqual(try Set(db.rows("SELECT id FROM orders WHERE id > ?", .integer(before + 3_600)).compactMap { $0[0].int }), newer)
        XCTAssertEqual(try db.int("SELECT count(*) FROM orders"), try snapshot.int("SELECT count(*) FROM orders") + 200)
        XCTAssertEqual(try db.scalar("PRAGMA integrity_check")?.string, "ok")
        XCTAssertEqual(try db.rows("PRAGMA foreign_key_check").count, 0)
        XCTAssertEqual(try Catalog(path: catalog).auditTrail().first?.action, "recover")

        // Running it again finds nothing left to put back.
        let again = try bosbackup("recover", "--snapshot", snapshotIDs[2], "--live", live, "--table", "orders", "--apply", "--catalog", catalog, "--json")
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual((try jsonObject(again.stdout)["tables"] as? [[String: Any]])?.first?["rows"] as? Int, 0)
    }
}
