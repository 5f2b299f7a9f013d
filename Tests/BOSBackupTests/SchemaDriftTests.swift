@testable import BOSBackup
import Foundation
import XCTest

/// Issue #12 item 11: live's schema moved on since the snapshot (a column
/// added, one dropped, a table rebuilt). diff and recover work on the columns
/// both have, say what differs, and refuse (exit 2, one line) only where
/// putting rows back cannot be right.
final class SchemaDriftTests: XCTestCase {
    /// An order (with an item) the snapshot has; `drift` then runs on live, which loses the order.
    func scenario(drift: String) throws -> (dir: TempDir, live: String, snapshot: String) {
        let dir = TempDir()
        let live = dir.file("live.db"), snapshot = dir.file("snapshot.db")
        try Fixtures.sampleDatabase(at: live, orders: 200)
        let db = try Database(path: live)
        try db.execute(Self.newOrder)
        try ConsistentCopy.copy(source: ConsistentCopy.openSource(live), to: snapshot)
        try db.execute(drift + Self.loseNewOrder)
        return (dir, live, snapshot)
    }

    static let newOrder = """
        INSERT INTO orders (id, customer_id, employee_id, placed_at, status, total_cents, note) VALUES (90001, 1, 1, '2026-11-27T10:05:00Z', 'paid', 1999, 'ring first');
        INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents) VALUES (90001, 3, 1, 1999);
        """
    static let loseNewOrder = "DELETE FROM order_items WHERE order_id = 90001; DELETE FROM orders WHERE id = 90001;"
    static let addColumns = "ALTER TABLE orders ADD COLUMN channel TEXT; ALTER TABLE orders ADD COLUMN source TEXT NOT NULL DEFAULT 'pos';"
    /// A table rebuild (the only way to add a NOT NULL column without a default).
    static let rebuildOrdersRequiringChannel = """
        PRAGMA foreign_keys = OFF;
        BEGIN;
        CREATE TABLE orders_new (
            id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
            employee_id INTEGER REFERENCES employees(id), placed_at TEXT NOT NULL,
            status TEXT NOT NULL, total_cents INTEGER NOT NULL, note TEXT, channel TEXT NOT NULL);
        INSERT INTO orders_new SELECT *, 'store' FROM orders;
        DROP TABLE orders;
        ALTER TABLE orders_new RENAME TO orders;
        COMMIT;
        """

    func testRecoverAfterLiveAddedColumnsGivesTheRecoveredRowsTheirDefaults() throws {
        let f = try scenario(drift: Self.addColumns)
        let plan = try RowRecovery(snapshotPath: f.snapshot, livePath: f.live, table: "orders").apply { _ in }
        XCTAssertEqual(plan.totalRows, 2)
        XCTAssertEqual(plan.schema, ["live has a column the snapshot lacks: orders.channel (recovered rows get its default)",
                                     "live has a column the snapshot lacks: orders.source (recovered rows get its default)"])
        let live = try Database(path: f.live)
        XCTAssertEqual(try live.rows("SELECT status, note, channel, source FROM orders WHERE id = 90001"), [["paid", "ring first", nil, "pos"]])
        XCTAssertEqual(try live.int("SELECT count(*) FROM order_items WHERE order_id = 90001"), 1)
    }

    func testReviewFileAfterLiveAddedAColumnRunsInTheShell() throws {
        let f = try scenario(drift: Self.addColumns)
        let sql = f.dir.file("review.sql")
        let recovery = try RowRecovery(snapshotPath: f.snapshot, livePath: f.live, table: "orders")
        _ = try recovery.planForReview()
        try recovery.writeSQL(to: sql, header: "test")
        let run = try runProcess("/bin/sh", ["-c", "exec /usr/bin/sqlite3 \"$0\" < \"$1\"", f.live, sql])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try Database(path: f.live).rows("SELECT note, channel, source FROM orders WHERE id = 90001"), [["ring first", nil, "pos"]])
    }

    func testDiffAndRecoverAfterLiveDroppedAColumn() throws {
        let f = try scenario(drift: "ALTER TABLE orders DROP COLUMN note; UPDATE orders SET status = 'refunded' WHERE id = 7;")
        let diff = try RowDiff(snapshotPath: f.snapshot, livePath: f.live).diff(table: "orders", limit: nil)
        XCTAssertEqual(diff.missingKeys, [[.integer(90001)]])
        XCTAssertEqual(diff.changedKeys, [[.integer(7)]], "compared on the columns both have")
        let plan = try RowRecovery(snapshotPath: f.snapshot, livePath: f.live, table: "orders").apply { _ in }
        XCTAssertEqual(plan.totalRows, 2)
        XCTAssertEqual(plan.schema, ["the snapshot has a column live lacks: orders.note (live dropped or renamed it: its values in 1 row put back are left out)"])
        XCTAssertEqual(try Database(path: f.live).rows("SELECT status FROM orders WHERE id = 90001"), [["paid"]])
    }

    func testCommandsSayWhatLiveHasThatTheSnapshotLacks() throws {
        let incident = try Incident(setup: Self.newOrder)
        let id = try incident.backup()
        try incident.onLive("ALTER TABLE orders ADD COLUMN channel TEXT;" + Self.loseNewOrder)
        let note = "live has a column the snapshot lacks: orders.channel (recovered rows get its default)"

        let diff = try incident.run("diff", "--snapshot", id, "--live", incident.live)
        XCTAssertEqual(diff.status, 0, diff.stderr)
        XCTAssertTrue(diff.stdout.contains(note), diff.stdout)
        let diffJSON = try incident.run("diff", "--snapshot", id, "--live", incident.live, "--json")
        XCTAssertEqual(try jsonObject(diffJSON.stdout)["schema"] as? [String], [note])

        let triage = try incident.run("restore", "--latest", "1", "--live", incident.live)
        XCTAssertEqual(triage.status, 0, triage.stderr)
        XCTAssertTrue(triage.stdout.contains(note), triage.stdout)
        XCTAssertEqual(triageCells(triage.stdout, table: "orders")?[5], "1", triage.stdout)
        let triageJSON = try incident.run("restore", "--latest", "1", "--live", incident.live, "--json")
        XCTAssertEqual((try jsonObject(triageJSON.stdout)["snapshots"] as? [[String: Any]])?.first?["schema"] as? [String], [note])

        let recover = try incident.run("recover", "--snapshot", id, "--live", incident.live, "--table", "orders", "--apply")
        XCTAssertEqual(recover.status, 0, recover.stderr)
        XCTAssertTrue(recover.stdout.contains(note), recover.stdout)
        XCTAssertEqual(try Database(path: incident.live).rows("SELECT note, channel FROM orders WHERE id = 90001"), [["ring first", nil]])
    }

    func testRecoverRefusesWhenLiveRequiresAColumnTheSnapshotLacks() throws {
        let incident = try Incident(setup: Self.newOrder)
        let id = try incident.backup()
        try incident.onLive(Self.rebuildOrdersRequiringChannel + Self.loseNewOrder)
        let before = try Database(path: incident.live).int("SELECT count(*) FROM orders")

        for mode in [["--apply"], ["--sql", incident.dir.file("review.sql")]] {
            let recover = try bosbackup(["recover", "--snapshot", id, "--live", incident.live, "--table", "orders", "--catalog", incident.catalog] + mode)
            XCTAssertEqual(recover.status, 2, recover.stderr)
            XCTAssertEqual(recover.stderr.split(separator: "\n").count, 1, recover.stderr)
            XCTAssertTrue(recover.stderr.contains("orders.channel") && recover.stderr.contains("NOT NULL"), recover.stderr)
        }
        XCTAssertEqual(try Database(path: incident.live).int("SELECT count(*) FROM orders"), before, "nothing was changed")
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: incident.dir.path).contains { $0.contains("before-recover") }, "no safety copy either")
        XCTAssertFalse(FileManager.default.fileExists(atPath: incident.dir.file("review.sql")))

        // Comparing still works, and says why recovering cannot.
        let diff = try incident.run("diff", "--snapshot", id, "--live", incident.live, "--table", "orders")
        XCTAssertEqual(diff.status, 0, diff.stderr)
        XCTAssertTrue(diff.stdout.contains("live has a NOT NULL column without default the snapshot lacks: orders.channel"), diff.stdout)
    }

    func testAChangedKeyIsRefusedByDiffAndRecoverAndNamedByTriage() throws {
        let incident = try Incident(setup: "CREATE TABLE tags (code TEXT PRIMARY KEY, label TEXT); INSERT INTO tags VALUES ('a', 'A'), ('b', 'B'), ('c', 'C');")
        let id = try incident.backup()
        try incident.onLive("""
            CREATE TABLE tags_new (id INTEGER PRIMARY KEY, code TEXT, label TEXT);
            INSERT INTO tags_new (code, label) SELECT code, label FROM tags WHERE code <> 'b';
            DROP TABLE tags; ALTER TABLE tags_new RENAME TO tags;
            """)
        for command in [["diff", "--table", "tags"], ["recover", "--table", "tags", "--sql", incident.dir.file("review.sql")]] {
            let result = try bosbackup(command + ["--snapshot", id, "--live", incident.live, "--catalog", incident.catalog])
            XCTAssertEqual(result.status, 2, "\(command): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
            XCTAssertTrue(result.stderr.contains("the key of tags changed"), result.stderr)
        }
        let triage = try incident.run("restore", "--latest", "1", "--live", incident.live)
        XCTAssertEqual(triage.status, 0, triage.stderr)
        XCTAssertTrue(triage.stdout.contains("the key of tags changed"), triage.stdout)
        let all = try incident.run("diff", "--snapshot", id, "--live", incident.live)
        XCTAssertEqual(all.status, 0, all.stderr)
        XCTAssertTrue(all.stdout.contains("the key of tags changed"), all.stdout)
    }

    func testATableLiveNoLongerHasIsNamed() throws {
        let incident = try Incident(setup: "CREATE TABLE notes (author TEXT, body TEXT); INSERT INTO notes VALUES ('ann', 'a'), ('bob', 'b');")
        let id = try incident.backup()
        try incident.onLive("DROP TABLE notes")
        for command in [["diff", "--table", "notes"], ["recover", "--table", "notes", "--apply"]] {
            let result = try bosbackup(command + ["--snapshot", id, "--live", incident.live, "--catalog", incident.catalog])
            XCTAssertEqual(result.status, 2, "\(command): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
            XCTAssertTrue(result.stderr.contains("live has no table notes"), result.stderr)
        }
        let triage = try incident.run("restore", "--latest", "1", "--live", incident.live)
        XCTAssertEqual(triage.status, 0, triage.stderr)
        XCTAssertTrue(triage.stdout.contains("live has no table notes"), triage.stdout)
    }
}
