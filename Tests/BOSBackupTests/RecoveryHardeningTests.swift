@testable import BOSBackup
import Foundation
import XCTest

/// Issue #11, "data at risk": recovery against the things a real live
/// database has — triggers, tables keyed other than by rowid, UNIQUE columns
/// besides the key, text with NUL bytes. Real SQLite files throughout; the
/// review SQL is run with the real sqlite3 shell, as its header tells the operator.
final class RecoveryHardeningTests: XCTestCase {
    /// The sample BOS with `setup` run on it, copied as the snapshot, then `loss` run on live.
    func scenario(setup: String, loss: String) throws -> (dir: TempDir, live: String, snapshot: String) {
        let dir = TempDir()
        let live = dir.file("live.db")
        try Fixtures.sampleDatabase(at: live, orders: 200)
        let db = try Database(path: live)
        try db.execute(setup)
        let snapshot = dir.file("snapshot.db")
        try ConsistentCopy.copy(source: ConsistentCopy.openSource(live), to: snapshot)
        try db.execute(loss)
        return (dir, live, snapshot)
    }

    /// Runs a review file exactly as its header says: `sqlite3 LIVE < FILE`.
    func runInShell(_ sql: String, on live: String) throws -> ProcessResult {
        try runProcess("/bin/sh", ["-c", "exec /usr/bin/sqlite3 \"$0\" < \"$1\"", live, sql])
    }

    /// A backup with the real CLI into a file target; returns the snapshot id.
    func backup(_ live: String, catalog: String, target: String) throws -> String {
        let result = try bosbackup("backup", "--source", live, "--target", target, "--catalog", catalog, "--json")
        XCTAssertEqual(result.status, 0, result.stderr)
        return try XCTUnwrap(try jsonObject(result.stdout)["id"] as? String)
    }

    // MARK: 6. Triggers of the live database are not run by a recovery

    static let stockTrigger = """
        CREATE TRIGGER order_items_stock AFTER INSERT ON order_items
        BEGIN UPDATE products SET stock = stock - NEW.quantity WHERE id = NEW.product_id; END;
        """
    /// An audit log that keeps its entries when orders are deleted: re-running
    /// its trigger for a recovered order clashes with the entry it made the first time.
    static let auditTrigger = """
        CREATE TABLE audit_log (order_id INTEGER NOT NULL UNIQUE, event TEXT NOT NULL);
        CREATE TRIGGER orders_audit AFTER INSERT ON orders
        BEGIN INSERT INTO audit_log VALUES (NEW.id, 'created'); END;
        """
    static let newOrder = """
        INSERT INTO orders (id, customer_id, employee_id, placed_at, status, total_cents) VALUES (90001, 1, 1, '2026-11-27T10:05:00Z', 'paid', 4975);
        INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents) VALUES (90001, 3, 25, 199);
        """
    static let loseNewOrder = "DELETE FROM order_items WHERE order_id = 90001; DELETE FROM orders WHERE id = 90001;"

    func testApplyDoesNotRunTheStockTrigger() throws {
        let f = try scenario(setup: Self.stockTrigger + Self.newOrder, loss: Self.loseNewOrder)
        let live = try Database(path: f.live)
        let stock = try live.int("SELECT stock FROM products WHERE id = 3")
        let plan = try RowRecovery(snapshotPath: f.snapshot, livePath: f.live, table: "orders").apply { _ in }
        XCTAssertEqual(plan.totalRows, 2)
        XCTAssertEqual(plan.triggersNotRun, ["order_items_stock"])
        XCTAssertEqual(try live.int("SELECT count(*) FROM order_items WHERE order_id = 90001"), 1)
        XCTAssertEqual(try live.int("SELECT stock FROM products WHERE id = 3"), stock, "the plan lists no products: their stock must not change")
        XCTAssertEqual(try live.int("SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'"), 1, "the trigger stays")
    }

    func testApplyIsNotStoppedByTheAuditTrigger() throws {
        let f = try scenario(setup: Self.auditTrigger + Self.newOrder, loss: Self.loseNewOrder)
        let plan = try RowRecovery(snapshotPath: f.snapshot, livePath: f.live, table: "orders").apply { _ in }
        XCTAssertEqual(plan.triggersNotRun, ["orders_audit"])
        let live = try Database(path: f.live)
        XCTAssertEqual(try live.int("SELECT count(*) FROM orders WHERE id = 90001"), 1)
        XCTAssertEqual(try live.int("SELECT count(*) FROM audit_log"), 1, "the log entry of the first insert stays the only one")
    }

    func testReviewFileNamesTheTriggersAndRunningItFiresNone() throws {
        let f = try scenario(setup: Self.stockTrigger + Self.auditTrigger + Self.newOrder, loss: Self.loseNewOrder)
        let live = try Database(path: f.live)
        let stock = try live.int("SELECT stock FROM products WHERE id = 3")
        let triggersBefore = try live.rows("SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' ORDER BY name")
        let sql = f.dir.file("review.sql")
        let recovery = try RowRecovery(snapshotPath: f.snapshot, livePath: f.live, table: "orders")
        _ = try recovery.planForReview()
        try recovery.writeSQL(to: sql, header: "test")
        let text = try String(contentsOfFile: sql, encoding: .utf8)
        let header = text.split(separator: "\n").prefix { $0.hasPrefix("--") }.joined(separator: "\n")
        XCTAssertTrue(header.contains("order_items_stock") && header.contains("orders_audit"), header)

        let run = try runInShell(sql, on: f.live)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(run.stderr, "")
        XCTAssertEqual(try live.int("SELECT count(*) FROM order_items WHERE order_id = 90001"), 1)
        XCTAssertEqual(try live.int("SELECT stock FROM products WHERE id = 3"), stock)
        XCTAssertEqual(try live.int("SELECT count(*) FROM audit_log"), 1)
        XCTAssertEqual(try live.rows("SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' ORDER BY name"), triggersBefore,
                       "the triggers are there afterwards, unchanged")
    }

    func testRecoverCommandSaysWhichTriggersItDidNotRun() throws {
        let dir = TempDir()
        let live = dir.file("live.db"), catalog = dir.file("catalog.db")
        try Fixtures.sampleDatabase(at: live, orders: 200)
        let db = try Database(path: live)
        try db.execute(Self.stockTrigger + Self.auditTrigger + Self.newOrder)
        let id = try backup(live, catalog: catalog, target: "file://" + dir.file("nas"))
        try db.execute(Self.loseNewOrder)

        let review = try bosbackup("recover", "--snapshot", id, "--live", live, "--table", "orders", "--sql", dir.file("review.sql"), "--catalog", catalog)
        XCTAssertEqual(review.status, 0, review.stderr)
        XCTAssertTrue(review.stdout.contains("triggers not run (the rows come back as they were, not as new events): order_items_stock, orders_audit; the file drops and recreates them"), review.stdout)
        let applied = try bosbackup("recover", "--snapshot", id, "--live", live, "--table", "orders", "--apply", "--catalog", catalog, "--json")
        XCTAssertEqual(applied.status, 0, applied.stderr)
        XCTAssertEqual(try jsonObject(applied.stdout)["triggers_not_run"] as? [String], ["order_items_stock", "orders_audit"])
        XCTAssertEqual(try db.int("SELECT count(*) FROM audit_log"), 1)
    }

    // MARK: 7. Tables keyed other than by an INTEGER PRIMARY KEY

    func testTableWithoutKeyIsComparedAsAMultisetAfterVacuum() throws {
        let f = try scenario(
            setup: "CREATE TABLE notes (author TEXT, body TEXT); INSERT INTO notes VALUES ('ann', 'a'), ('bob', 'b'), ('cy', 'c'), ('dee', 'd'), ('dee', 'd');",
            loss: """
                DELETE FROM notes WHERE author = 'bob';
                DELETE FROM notes WHERE rowid = (SELECT max(rowid) FROM notes WHERE author = 'dee');
                VACUUM;
                """)
        let live = try Database(path: f.live)
        XCTAssertEqual(try live.int("SELECT max(rowid) FROM notes"), 3, "VACUUM renumbered the rowids (the scenario is real)")
        let diff = try RowDiff(snapshotPath: f.snapshot, livePath: f.live).diff(table: "notes", limit: nil)
        XCTAssertTrue(diff.wholeRow)
        XCTAssertEqual(diff.missingInLive, 2)
        XCTAssertEqual(diff.onlyInLive, 0)
        XCTAssertEqual(diff.missingKeys, [["bob", "b"], ["dee", "d"]])

        let plan = try RowRecovery(snapshotPath: f.snapshot, livePath: f.live, table: "notes").apply { _ in }
        XCTAssertEqual(plan.totalRows, 2)
        let multiset = "SELECT author, body, count(*) FROM notes GROUP BY 1, 2 ORDER BY 1, 2"
        XCTAssertEqual(try live.rows(multiset), try Database(path: f.snapshot, mode: .readOnly).rows(multiset),
                       "bob and the second dee are back, nothing is doubled")
        let again = try RowDiff(snapshotPath: f.snapshot, livePath: f.live).diff(table: "notes")
        XCTAssertEqual([again.missingInLive, again.onlyInLive], [0, 0])
    }

    func testTableWithoutKeyChildrenComeBackWithTheirOrder() throws {
        // Order notes without a key of their own: two identical ones for the lost order.
        let f = try scenario(
            setup: """
                CREATE TABLE order_notes (order_id INTEGER NOT NULL REFERENCES orders(id), note TEXT);
                INSERT INTO orders (id, customer_id, employee_id, placed_at, status, total_cents) VALUES (90001, 1, 1, '2026-11-27T10:05:00Z', 'paid', 1999);
                INSERT INTO order_notes VALUES (1, 'old'), (90001, 'call first'), (90001, 'call first');
                """,
            loss: "DELETE FROM order_notes WHERE order_id = 90001; DELETE FROM orders WHERE id = 90001; VACUUM;")
        let sql = f.dir.file("review.sql")
        let review = try RowRecovery(snapshotPath: f.snapshot, livePath: f.live, table: "orders")
        let planned = try review.planForReview()
        try review.writeSQL(to: sql, header: "test")
        XCTAssertEqual(planned.tables.first { $0.table == "order_notes" }?.rows, 2)
        let run = try runInShell(sql, on: f.live)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try Database(path: f.live).rows("SELECT order_id, note FROM order_notes ORDER BY rowid"),
                       [[1, "old"], [90001, "call first"], [90001, "call first"]])
    }

    func testUniqueNotNullColumnServesAsTheKey() throws {
        // `a` is rewritten (deleted and inserted again: a new rowid), `b` is lost.
        let f = try scenario(
            setup: "CREATE TABLE tags (code TEXT NOT NULL UNIQUE, label TEXT); INSERT INTO tags VALUES ('a', 'A'), ('b', 'B'), ('c', 'C');",
            loss: "DELETE FROM tags WHERE code IN ('a', 'b'); INSERT INTO tags VALUES ('a', 'A');")
        let diff = try RowDiff(snapshotPath: f.snapshot, livePath: f.live).diff(table: "tags", limit: nil)
        XCTAssertEqual(diff.keyColumns, ["\"code\""])
        XCTAssertFalse(diff.wholeRow)
        XCTAssertEqual(diff.missingKeys, [["b"]])
        XCTAssertEqual(diff.onlyInLive, 0)
        let plan = try RowRecovery(snapshotPath: f.snapshot, livePath: f.live, table: "tags").apply { _ in }
        XCTAssertEqual(plan.totalRows, 1)
        XCTAssertEqual(try Database(path: f.live).rows("SELECT code, label FROM tags ORDER BY code"), [["a", "A"], ["b", "B"], ["c", "C"]])
    }

    /// `INTEGER PRIMARY KEY DESC` is not an alias of the rowid: rows rewritten in
    /// live have new rowids and the same ids.
    static let ledger = """
        CREATE TABLE ledger (id INTEGER PRIMARY KEY DESC, amount INTEGER NOT NULL);
        INSERT INTO ledger VALUES (101, 10), (102, 20), (103, 30), (104, 40), (105, 50);
        """
    static let rewriteLedger = """
        INSERT INTO ledger VALUES (106, 60);
        CREATE TEMP TABLE kept AS SELECT * FROM ledger WHERE id <= 105;
        DELETE FROM ledger WHERE id <= 105; INSERT INTO ledger SELECT * FROM kept; DROP TABLE kept;
        """

    func testIntegerPrimaryKeyDescIsComparedByIdNotRowid() throws {
        let f = try scenario(setup: Self.ledger, loss: Self.rewriteLedger)
        XCTAssertEqual(try Database(path: f.live).int("SELECT min(rowid) FROM ledger WHERE id <= 105"), 7, "rowids moved (the scenario is real)")
        let diff = try RowDiff(snapshotPath: f.snapshot, livePath: f.live).diff(table: "ledger", limit: nil)
        XCTAssertEqual(diff.keyColumns, ["\"id\""])
        XCTAssertEqual(diff.missingInLive, 0, "live holds all five")
        XCTAssertEqual(diff.newKeys, [[.integer(106)]])
        XCTAssertEqual(diff.changed, 0)
    }

    func testTriageNamesTheSnapshotThatReallyHoldsTheLostOrder() throws {
        let dir = TempDir()
        let live = dir.file("live.db"), catalog = dir.file("catalog.db"), nas = "file://" + dir.file("nas")
        try Fixtures.sampleDatabase(at: live, orders: 200)
        let db = try Database(path: live)
        try db.execute(Self.ledger)
        let older = try backup(live, catalog: catalog, target: nas)
        try db.execute(Self.rewriteLedger + "INSERT INTO orders (id, customer_id, employee_id, placed_at, status, total_cents) VALUES (90001, 1, 1, '2026-11-27T10:05:00Z', 'paid', 1999);")
        let newer = try backup(live, catalog: catalog, target: nas)
        try db.execute("DELETE FROM orders WHERE id = 90001")

        let triage = try bosbackup("restore", "--latest", "2", "--live", live, "--catalog", catalog, "--json")
        XCTAssertEqual(triage.status, 0, triage.stderr)
        let results = try XCTUnwrap(try jsonObject(triage.stdout)["snapshots"] as? [[String: Any]])
        XCTAssertEqual(results.map { $0["id"] as? String }, [newer, older])
        XCTAssertEqual(results.map { $0["missing_rows"] as? Int }, [1, 0], "only the order is lost; the ledger rows are all in live")
        let human = try bosbackup("restore", "--latest", "2", "--live", live, "--catalog", catalog)
        XCTAssertTrue(human.stdout.contains("snapshot \(SnapshotID.short(newer)) holds the most rows live lost"), human.stdout)
    }

    // MARK: 8. A UNIQUE clash on a column besides the key

    /// Two new customers, each with an order and an item; Ann's order was taken
    /// by a new clerk. All of it is lost, then Ann registers again with her email.
    static let twoCustomers = """
        INSERT INTO employees VALUES (90001, 'New Clerk', 'clerk', '2026-11-01T08:00:00Z');
        INSERT INTO customers VALUES (90001, 'Ann New', 'ann.new@example.com', 'Suzhou', '1 Lake Rd', '2026-11-27T10:00:00Z'),
                                     (90002, 'Bo New', 'bo.new@example.com', 'Suzhou', '2 Lake Rd', '2026-11-27T10:00:00Z');
        INSERT INTO orders (id, customer_id, employee_id, placed_at, status, total_cents) VALUES
            (90001, 90001, 90001, '2026-11-27T10:05:00Z', 'paid', 1999), (90002, 90002, 1, '2026-11-27T10:06:00Z', 'paid', 2999);
        INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents) VALUES (90001, 3, 1, 1999), (90002, 4, 1, 2999);
        """
    static let loseBothAndReregisterAnn = """
        DELETE FROM order_items WHERE order_id IN (90001, 90002); DELETE FROM orders WHERE id IN (90001, 90002);
        DELETE FROM customers WHERE id IN (90001, 90002); DELETE FROM employees WHERE id = 90001;
        INSERT INTO customers VALUES (90003, 'Ann New', 'ann.new@example.com', 'Suzhou', '1 Lake Rd', '2026-11-28T09:00:00Z');
        """

    func testUniqueClashHoldsBackOnlyThatRowAndWhatDependsOnIt() throws {
        let f = try scenario(setup: Self.twoCustomers, loss: Self.loseBothAndReregisterAnn)
        let plan = try RowRecovery(snapshotPath: f.snapshot, livePath: f.live, table: "orders").apply { _ in }
        let counts = Dictionary(uniqueKeysWithValues: plan.tables.map { ($0.table, [$0.rows, $0.heldBack]) })
        XCTAssertEqual(counts, ["orders": [1, 1], "order_items": [1, 1], "customers": [1, 1], "employees": [0, 1]], "[put back, held back]")
        XCTAssertEqual(plan.clashes.count, 1)
        XCTAssertEqual(plan.clashes.first?.table, "customers")
        XCTAssertEqual(plan.clashes.first?.key, [.integer(90001)])
        XCTAssertEqual(plan.clashes.first?.columns, ["email"])
        XCTAssertEqual(plan.clashes.first?.values, ["ann.new@example.com"])
        let live = try Database(path: f.live)
        XCTAssertEqual(try live.int("SELECT count(*) FROM orders o JOIN order_items i ON i.order_id = o.id JOIN customers c ON c.id = o.customer_id WHERE o.id = 90002"), 1,
                       "Bo's order comes back with its item and Bo")
        XCTAssertEqual(try live.int("SELECT count(*) FROM orders WHERE id = 90001"), 0, "Ann's order would have no customer")
        XCTAssertEqual(try live.int("SELECT count(*) FROM order_items WHERE order_id = 90001"), 0)
        XCTAssertEqual(try live.int("SELECT count(*) FROM customers WHERE id = 90001"), 0)
        XCTAssertEqual(try live.int("SELECT count(*) FROM employees WHERE id = 90001"), 0, "the clerk came only as the parent of Ann's order")
        XCTAssertEqual(try live.rows("PRAGMA foreign_key_check").count, 0)
    }

    func testClashOnTheAskedTableHoldsBackItsChildren() throws {
        let f = try scenario(setup: Self.twoCustomers, loss: Self.loseBothAndReregisterAnn)
        let plan = try RowRecovery(snapshotPath: f.snapshot, livePath: f.live, table: "customers").apply { _ in }
        XCTAssertEqual(plan.tables.first { $0.table == "customers" }.map { [$0.rows, $0.heldBack] }, [1, 1])
        let live = try Database(path: f.live)
        XCTAssertEqual(try live.rows("SELECT id FROM customers WHERE id >= 90001 ORDER BY id"), [[.integer(90002)], [.integer(90003)]])
        XCTAssertEqual(try live.rows("PRAGMA foreign_key_check").count, 0)
    }

    func testConstraintThePlanCannotCheckStopsTheRecoveryCleanly() throws {
        // A partial UNIQUE index: which rows it covers is SQL the plan does not evaluate.
        let f = try scenario(setup: Self.twoCustomers, loss: """
            DELETE FROM order_items WHERE order_id IN (90001, 90002); DELETE FROM orders WHERE id IN (90001, 90002);
            DELETE FROM customers WHERE id IN (90001, 90002);
            CREATE UNIQUE INDEX one_new_customer_per_city ON customers(city) WHERE id > 90000;
            """)
        let live = try Database(path: f.live)
        let before = try live.int("SELECT count(*) FROM orders")
        XCTAssertThrowsError(try RowRecovery(snapshotPath: f.snapshot, livePath: f.live, table: "orders").apply { _ in }) { error in
            XCTAssertEqual((error as? CategorizedError)?.category, .failure)
            XCTAssertTrue("\(error)".contains("nothing was changed"), "\(error)")
            XCTAssertTrue("\(error)".contains("customers"), "\(error)")
        }
        XCTAssertEqual(try live.int("SELECT count(*) FROM orders"), before)
    }

    func testRecoverCommandListsTheClashes() throws {
        let dir = TempDir()
        let live = dir.file("live.db"), catalog = dir.file("catalog.db")
        try Fixtures.sampleDatabase(at: live, orders: 200)
        let db = try Database(path: live)
        try db.execute(Self.twoCustomers)
        let id = try backup(live, catalog: catalog, target: "file://" + dir.file("nas"))
        try db.execute(Self.loseBothAndReregisterAnn)
        let applied = try bosbackup("recover", "--snapshot", id, "--live", live, "--table", "orders", "--apply", "--catalog", catalog)
        XCTAssertEqual(applied.status, 0, applied.stderr)
        XCTAssertTrue(applied.stdout.contains("orders: +1 rows (asked for), 1 held back"), applied.stdout)
        XCTAssertTrue(applied.stdout.contains("4 rows held back: live has a UNIQUE value of theirs in another row"), applied.stdout)
        XCTAssertTrue(applied.stdout.contains("customers 90001: email = ann.new@example.com"), applied.stdout)
    }

    func testReviewFileLeavesTheClashingRowsOutAndRuns() throws {
        let f = try scenario(setup: Self.twoCustomers, loss: Self.loseBothAndReregisterAnn)
        let sql = f.dir.file("review.sql")
        let recovery = try RowRecovery(snapshotPath: f.snapshot, livePath: f.live, table: "orders")
        _ = try recovery.planForReview()
        try recovery.writeSQL(to: sql, header: "test")
        let text = try String(contentsOfFile: sql, encoding: .utf8)
        XCTAssertTrue(text.contains("-- Rows held back, not in this file (a UNIQUE value of theirs is in live in another row, or they depend on one): orders 1, order_items 1, employees 1, customers 1."), text)
        let run = try runInShell(sql, on: f.live)
        XCTAssertEqual(run.status, 0, run.stderr)
        let live = try Database(path: f.live)
        XCTAssertEqual(try live.rows("SELECT id FROM orders WHERE id >= 90001"), [[.integer(90002)]])
        XCTAssertEqual(try live.rows("PRAGMA foreign_key_check").count, 0)
    }

    // MARK: 9. The review SQL writes every value byte for byte

    func testReviewFileKeepsTextWithNULAndOtherOddValuesExact() throws {
        let f = try scenario(
            setup: """
                INSERT INTO orders (id, customer_id, employee_id, placed_at, status, total_cents, note) VALUES
                    (90001, 1, 1, '2026-11-27T10:05:00Z', 'paid', 1999, 'ref' || char(0) || 'tail'),
                    (90002, 1, 1, '2026-11-27T10:06:00Z', 'paid', 1999, CAST(X'63616665C3' AS TEXT)),
                    (90003, 1, 1, '2026-11-27T10:07:00Z', 'paid', 1999, char(0));
                CREATE TABLE readings (id INTEGER PRIMARY KEY, value REAL);
                INSERT INTO readings VALUES (1, 9e999), (2, -9e999), (3, 0.1 + 0.2);
                """,
            loss: "DELETE FROM orders WHERE id >= 90001; DELETE FROM readings;")
        let snapshot = try Database(path: f.snapshot, mode: .readOnly)
        let live = try Database(path: f.live)
        for (table, check) in [("orders", "SELECT id, typeof(note), hex(note) FROM orders WHERE id >= 90001 ORDER BY id"),
                               ("readings", "SELECT id, typeof(value), value FROM readings ORDER BY id")] {
            let sql = f.dir.file("\(table).sql")
            let recovery = try RowRecovery(snapshotPath: f.snapshot, livePath: f.live, table: table)
            _ = try recovery.planForReview()
            try recovery.writeSQL(to: sql, header: "test")
            let run = try runInShell(sql, on: f.live)
            XCTAssertEqual(run.status, 0, run.stderr)
            XCTAssertEqual(try live.rows(check), try snapshot.rows(check), table)
            if table == "orders" {
                let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: sql)), as: UTF8.self)
                XCTAssertTrue(text.contains("CAST(X'726566007461696C' AS TEXT)"), "'ref\\0tail' is written as its bytes: \(text)")
            }
        }
    }
}
