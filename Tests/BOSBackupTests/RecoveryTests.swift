@testable import BOSBackup
import Foundation
import XCTest

/// Row diff and recovery on the library level: WITHOUT ROWID tables, a
/// parent that live lost too, rows never overwritten.
final class RecoveryTests: XCTestCase {
    func fixture() throws -> (dir: TempDir, live: String, snapshot: String) {
        let dir = TempDir()
        let live = dir.file("live.db")
        try Fixtures.sampleDatabase(at: live, orders: 200)
        let db = try Database(path: live)
        // A new customer whose only order is about to be lost with them.
        try db.execute("""
            INSERT INTO customers VALUES (90001, 'New Customer', 'new@example.com', 'Suzhou', '1 Lake Rd', '2026-11-27T10:00:00Z');
            INSERT INTO orders (id, customer_id, employee_id, placed_at, status, total_cents) VALUES (90001, 90001, 1, '2026-11-27T10:05:00Z', 'paid', 1999);
            INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents) VALUES (90001, 3, 1, 1999);
            INSERT INTO settings VALUES ('opening_hours', '9-21');
            """)
        let snapshot = dir.file("snapshot.db")
        try ConsistentCopy.copy(source: ConsistentCopy.openSource(live), to: snapshot)
        try db.execute("""
            PRAGMA foreign_keys = ON;
            DELETE FROM order_items WHERE order_id = 90001; DELETE FROM orders WHERE id = 90001; DELETE FROM customers WHERE id = 90001;
            DELETE FROM settings WHERE key = 'opening_hours'; UPDATE settings SET value = 'EUR' WHERE key = 'currency';
            """)
        return (dir, live, snapshot)
    }

    func testDiffOnWithoutRowidTableByDeclaredKey() throws {
        let f = try fixture()
        let diff = try RowDiff(snapshotPath: f.snapshot, livePath: f.live).diff(table: "settings", limit: nil)
        XCTAssertEqual(diff.keyColumns, ["\"key\""])
        XCTAssertEqual(diff.missingKeys, [[.text("opening_hours")]])
        XCTAssertEqual(diff.changedKeys, [[.text("currency")]])
        XCTAssertEqual(diff.onlyInLive, 0)
    }

    /// Orders keyed by their rowid are planned in one pass over both copies (`RowidMerge`):
    /// lost, changed and newer rows interleaved in rowid order, each counted as what it is.
    func testARowidTablesLostAndChangedRowsAreToldApartInOnePass() throws {
        let f = try fixture()
        let live = try Database(path: f.live)
        try live.execute("""
            DELETE FROM order_items WHERE order_id IN (3, 50, 200); DELETE FROM payments WHERE order_id IN (3, 50, 200);
            DELETE FROM shipments WHERE order_id IN (3, 50, 200); DELETE FROM inventory_movements WHERE order_id IN (3, 50, 200);
            DELETE FROM orders WHERE id IN (3, 50, 200);
            UPDATE orders SET status = 'disputed' WHERE id IN (4, 199); UPDATE orders SET status = status, total_cents = total_cents + 0 WHERE id = 7;
            INSERT INTO orders (id, customer_id, employee_id, placed_at, status, total_cents) VALUES (100000, 1, 1, '2026-11-28T09:00:00Z', 'paid', 500);
            """)
        let plan = try RowRecovery(snapshotPath: f.snapshot, livePath: f.live, table: "orders").apply { _ in }
        XCTAssertEqual(plan.tables.first { $0.table == "orders" }?.rows, 4, "3, 50, 200 and 90001")
        XCTAssertEqual(plan.tables.first { $0.table == "orders" }?.role, "asked for")
        XCTAssertEqual(plan.conflicts, 2, "orders 4 and 199 differ in live; an update to the same value is no change")
        XCTAssertEqual(try live.int("SELECT count(*) FROM orders WHERE id IN (3, 50, 200, 90001, 100000)"), 5)
        XCTAssertEqual(try live.int("SELECT count(*) FROM orders WHERE id IN (4, 199) AND status = 'disputed'"), 2, "never overwritten")
        XCTAssertEqual(try live.rows("PRAGMA foreign_key_check").count, 0)
    }

    func testRecoverBringsBackTheLostParentAndNeverOverwrites() throws {
        let f = try fixture()
        let plan = try RowRecovery(snapshotPath: f.snapshot, livePath: f.live, table: "orders").apply { _ in }
        let rows = Dictionary(uniqueKeysWithValues: plan.tables.map { ($0.table, $0.rows) })
        XCTAssertEqual(rows["orders"], 1)
        XCTAssertEqual(rows["order_items"], 1)
        XCTAssertEqual(rows["customers"], 1, "the customer live lost comes back, or the order's foreign key would break")
        XCTAssertEqual(plan.tables.first { $0.table == "customers" }?.role, "parent of orders")
        let live = try Database(path: f.live)
        XCTAssertEqual(try live.int("SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = 90001"), 1)
        XCTAssertEqual(try live.rows("PRAGMA foreign_key_check").count, 0)

        let settings = try RowRecovery(snapshotPath: f.snapshot, livePath: f.live, table: "settings").apply { _ in }
        XCTAssertEqual(settings.tables.first?.rows, 1)
        XCTAssertEqual(settings.conflicts, 1, "currency differs in live")
        XCTAssertEqual(try live.scalar("SELECT value FROM settings WHERE key = 'currency'")?.string, "EUR", "never overwritten")
        XCTAssertEqual(try live.scalar("SELECT value FROM settings WHERE key = 'opening_hours'")?.string, "9-21")
    }

    func testUnknownTableIsAnInputError() throws {
        let f = try fixture()
        XCTAssertThrowsError(try RowRecovery(snapshotPath: f.snapshot, livePath: f.live, table: "nope").apply { _ in }) { error in
            XCTAssertEqual((error as? CategorizedError)?.category, .input)
        }
    }
}
