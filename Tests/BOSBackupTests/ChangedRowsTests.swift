@testable import BOSBackup
import Foundation
import XCTest

/// Issue #12 item 10: a row whose key is in live with other contents is a
/// row live lost too. 200 orders deleted and 20 new ones given their ids
/// must not look like "orders −180".
final class ChangedRowsTests: XCTestCase {
    func testTriageCountsOrdersWhoseIdsNewOrdersReused() throws {
        let incident = try Incident(orders: 400)
        let id = try incident.backup()
        // A bad script deletes the newest 200 orders; the BOS goes on, and its
        // next 20 orders get the freed ids (INTEGER PRIMARY KEY takes max + 1).
        try incident.onLive(Incident.deleteOrders(where: "id > 200"))
        let reused = try SampleBOS.addOrders(to: incident.live, count: 20, at: Date(timeIntervalSince1970: 1_795_780_800), seed: 77)
        XCTAssertEqual(reused, Array(201...220), "the new orders took lost orders' ids (the scenario is real)")

        let triage = try incident.run("restore", "--latest", "1", "--live", incident.live, "--json")
        XCTAssertEqual(triage.status, 0, triage.stderr)
        let snapshot = try XCTUnwrap((try jsonObject(triage.stdout)["snapshots"] as? [[String: Any]])?.first)
        let orders = try XCTUnwrap((snapshot["tables"] as? [[String: Any]])?.first { $0["name"] as? String == "orders" })
        XCTAssertEqual(orders["delta"] as? Int, -180)
        XCTAssertEqual(orders["missing_in_live"] as? Int, 180)
        XCTAssertEqual(orders["changed"] as? Int, 20, "\(orders)")
        XCTAssertEqual(orders["only_in_live"] as? Int, 0)
        XCTAssertTrue((snapshot["verdict"] as? String ?? "").contains("orders \u{2212}200 (180 missing, 20 changed)"), "\(snapshot["verdict"] ?? "")")
        XCTAssertGreaterThanOrEqual(snapshot["lost_rows"] as? Int ?? 0, 200, "lost = missing + changed")

        let human = try incident.run("restore", "--latest", "1", "--live", incident.live)
        XCTAssertEqual(human.status, 0, human.stderr)
        XCTAssertEqual(triageCells(human.stdout, table: "TABLE"), ["TABLE", "CATALOG", "RESTORED", "LIVE", "DELTA", "LOST", "NEWER", "CHANGED"], human.stdout)
        XCTAssertEqual(triageCells(human.stdout, table: "orders"), ["orders", "400", "400", "220", "\u{2212}180", "180", "0", "20"], human.stdout)
        XCTAssertTrue(human.stdout.contains("snapshot \(SnapshotID.short(id)) holds the most rows live lost"), human.stdout)
    }

    /// The snapshot whose prices a bad script overwrote since holds 20 rows live
    /// lost; the newer one holds 1 (a customer deleted). Counting missing rows
    /// alone would point at the newer one.
    func testTriagePicksTheSnapshotHoldingTheMostRowsLostCountingChangedOnes() throws {
        let incident = try Incident()
        let before = try incident.backup()
        try incident.onLive("""
            UPDATE products SET price_cents = 0;
            INSERT INTO customers VALUES (90001, 'Ann New', 'ann.new@example.com', 'Suzhou', '1 Lake Rd', '2026-11-27T10:00:00Z');
            """)
        let after = try incident.backup()
        try incident.onLive("DELETE FROM customers WHERE id = 90001")

        let triage = try incident.run("restore", "--latest", "2", "--live", incident.live, "--json")
        XCTAssertEqual(triage.status, 0, triage.stderr)
        let results = try XCTUnwrap(try jsonObject(triage.stdout)["snapshots"] as? [[String: Any]])
        XCTAssertEqual(results.map { $0["id"] as? String }, [after, before])
        XCTAssertEqual(results.map { $0["missing_rows"] as? Int }, [1, 0])
        XCTAssertEqual(results.map { $0["lost_rows"] as? Int }, [1, 20])
        let human = try incident.run("restore", "--latest", "2", "--live", incident.live)
        XCTAssertTrue(human.stdout.contains("snapshot \(SnapshotID.short(before)) holds the most rows live lost (products \u{2212}20 (20 changed) vs live)"), human.stdout)
    }

    func testDiffListsChangedRowsWithTheColumnsThatChanged() throws {
        let incident = try Incident()
        let id = try incident.backup()
        try incident.onLive("""
            UPDATE orders SET status = 'voided by script', note = 'oops' WHERE id = 5;
            UPDATE orders SET total_cents = total_cents + 1 WHERE id = 9;
            UPDATE settings SET value = 'EUR' WHERE key = 'currency';
            """)
        let diff = try incident.run("diff", "--snapshot", id, "--live", incident.live, "--json")
        XCTAssertEqual(diff.status, 0, diff.stderr)
        let tables = try XCTUnwrap(try jsonObject(diff.stdout)["tables"] as? [[String: Any]])
        /// "key: column, column" per changed row.
        func changedRows(_ table: String) -> [String]? {
            (tables.first { $0["name"] as? String == table }?["changed_rows"] as? [[String: Any]])?
                .map { "\($0["key"] ?? "?"): " + ($0["columns"] as? [String] ?? []).joined(separator: ", ") }
        }
        XCTAssertEqual(changedRows("orders"), ["5: status, note", "9: total_cents"])
        XCTAssertEqual(changedRows("settings"), ["currency: value"], "a WITHOUT ROWID table, keyed by text")

        let human = try incident.run("diff", "--snapshot", id, "--live", incident.live, "--table", "orders")
        XCTAssertEqual(human.status, 0, human.stderr)
        XCTAssertTrue(human.stdout.contains("orders changed: 5 (status, note), 9 (total_cents)"), human.stdout)
    }

    /// A NOCASE column compares 'ann' equal to 'Ann'; the stored row still changed.
    func testACaseOnlyChangeIsAChange() throws {
        let dir = TempDir()
        let live = dir.file("live.db"), snapshot = dir.file("snapshot.db")
        try Fixtures.sampleDatabase(at: live, orders: 200)
        let db = try Database(path: live)
        try db.execute("""
            CREATE TABLE labels (id INTEGER PRIMARY KEY, label TEXT COLLATE NOCASE);
            CREATE TABLE codes (code TEXT PRIMARY KEY, label TEXT COLLATE NOCASE) WITHOUT ROWID;
            INSERT INTO labels VALUES (1, 'ann'), (2, 'bob'); INSERT INTO codes VALUES ('a', 'ann'), ('b', 'bob');
            """)
        try ConsistentCopy.copy(source: ConsistentCopy.openSource(live), to: snapshot)
        try db.execute("UPDATE labels SET label = 'Ann' WHERE id = 1; UPDATE codes SET label = 'Ann' WHERE code = 'a';")
        let rows = try RowDiff(snapshotPath: snapshot, livePath: live)
        XCTAssertEqual(try rows.diff(table: "labels", limit: nil).changedRows, [.init(key: [.integer(1)], columns: ["label"])], "the rowid merge")
        XCTAssertEqual(try rows.diff(table: "codes", limit: nil).changedRows, [.init(key: ["a"], columns: ["label"])], "the key join")
        XCTAssertEqual(try rows.diff(table: "labels").changed, 1, "counted without listing too")
    }
}
