@testable import BOSBackup
import Foundation
import XCTest

/// Index damage that keeps every entry but breaks their order, against
/// SQLite's own `integrity_check`: our verdict must be its verdict.
final class IndexOrderTests: XCTestCase {
    /// A table whose values sort differently under BINARY, NOCASE and RTRIM, and
    /// mixes integers, reals, text and NULL; 600 rows, so indexes span pages.
    func makeDatabase(_ path: String, index: String) throws {
        let db = try Database(path: path, mode: .readWriteCreate)
        try db.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, code TEXT, n, grp INTEGER, pad TEXT)")
        let words = ["apple", "Banana", "cherry", "Date", "elder", "Fig", "grape", "Hazel", "iris", "Juniper"]
        let insert = try db.prepare("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)")
        try db.transaction {
            for i in 1...600 {
                let word = words[i % words.count]
                let n: SQLValue = i % 11 == 0 ? .null : (i % 3 == 0 ? .real(Double(600 - i) + 0.5) : (i % 7 == 0 ? .text("t\(i)") : .integer(Int64(600 - i))))
                try insert.bind([.integer(Int64(i)), .text((i % 3 == 0 ? word.uppercased() : word.lowercased()) + "\(i % 13)"),
                                 .text("\(word)-\(i)"), n, .integer(Int64(i % 7)), .text("k\(i % 40)" + (i % 3 == 0 ? " " : "\t"))])
                _ = try insert.step()
                insert.reset()
            }
        }
        try db.execute(index)
    }

    /// Rewrites an index's declaration in the schema, leaving its b-tree as it was.
    func redeclare(_ path: String, index: String, as sql: String) throws {
        try Database(path: path).execute("""
            PRAGMA writable_schema = ON;
            UPDATE sqlite_schema SET sql = '\(sql)' WHERE name = '\(index)';
            PRAGMA writable_schema = OFF;
            """)
    }

    func sqliteSaysSound(_ path: String) throws -> Bool {
        try Database(path: path, mode: .readOnly).rows("PRAGMA integrity_check").compactMap { $0.first?.string } == ["ok"]
    }

    func testOurVerdictIsIntegrityChecksForIndexesOfEveryKind() throws {
        // (what the b-tree was built as, what the schema says now — nil: healthy)
        let cases: [(built: String, declared: String?)] = [
            ("CREATE INDEX i ON t(name)", nil),
            ("CREATE INDEX i ON t(name)", "CREATE INDEX i ON t(name COLLATE NOCASE)"),
            ("CREATE INDEX i ON t(name COLLATE NOCASE)", nil),
            ("CREATE INDEX i ON t(name COLLATE NOCASE)", "CREATE INDEX i ON t(name)"),
            ("CREATE UNIQUE INDEX i ON t(code)", nil),
            ("CREATE UNIQUE INDEX i ON t(code)", "CREATE UNIQUE INDEX i ON t(code COLLATE NOCASE)"),
            ("CREATE INDEX i ON t(n)", nil),
            ("CREATE INDEX i ON t(n DESC)", nil),
            ("CREATE INDEX i ON t(n DESC)", "CREATE INDEX i ON t(n)"),
            ("CREATE INDEX i ON t(grp, n)", nil),
            ("CREATE INDEX i ON t(grp, n)", "CREATE INDEX i ON t(grp, n DESC)"),
            ("CREATE INDEX i ON t(pad)", nil),
            ("CREATE INDEX i ON t(pad COLLATE RTRIM)", nil),
            ("CREATE INDEX i ON t(pad)", "CREATE INDEX i ON t(pad COLLATE RTRIM)"),
            ("CREATE UNIQUE INDEX i ON t(name, code)", nil),
            ("CREATE UNIQUE INDEX i ON t(name, code)", "CREATE UNIQUE INDEX i ON t(name COLLATE NOCASE, code DESC)"),
        ]
        var damaged = 0
        for (built, declared) in cases {
            let dir = TempDir()
            let path = dir.file("t.db")
            try makeDatabase(path, index: built)
            if let declared { try redeclare(path, index: "i", as: declared) }
            let label = "built as \(built), declared \(declared ?? "the same")"
            let sqlite = try sqliteSaysSound(path)
            if declared != nil { XCTAssertFalse(sqlite, "the damage is real: \(label)") }
            let ours = IntegrityCheck.run(path: path, jobs: 2)
            XCTAssertEqual(ours.sound, sqlite, "\(label): \(ours)")
            XCTAssertEqual(ours.unchecked, [], label)
            if declared != nil {
                damaged += 1
                XCTAssertTrue(ours.problems.contains { $0.contains("index i ") && $0.contains("out of order") }, "\(label): \(ours.problems)")
            }
        }
        XCTAssertEqual(damaged, 7)
    }

    /// Cells swapped on one leaf page: the same entries, two of them in the wrong place.
    func testSwappedEntriesOnAPageAreFound() throws {
        let dir = TempDir()
        let path = dir.file("t.db")
        try makeDatabase(path, index: "CREATE INDEX i ON t(code)")
        let page = try XCTUnwrap(try Database(path: path, mode: .readOnly)
            .int("SELECT pageno FROM dbstat WHERE name = 'i' AND pagetype = 'leaf' LIMIT 1"))
        let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: path))
        let start = UInt64((Int(page) - 1) * 4096)
        try handle.seek(toOffset: start)
        var bytes = [UInt8](try XCTUnwrap(try handle.read(upToCount: 4096)))
        // The cell pointer array follows the 8-byte leaf header: swap the first two pointers.
        bytes.swapAt(8, 10)
        bytes.swapAt(9, 11)
        try handle.seek(toOffset: start)
        try handle.write(contentsOf: bytes)
        try handle.close()
        XCTAssertFalse(try sqliteSaysSound(path))
        let ours = IntegrityCheck.run(path: path)
        XCTAssertFalse(ours.sound)
        XCTAssertTrue(ours.problems.contains { $0.contains("out of order") }, "\(ours)")
    }

    /// The order function against SQLite's own ORDER BY, value pair by value
    /// pair, under each built-in collation.
    func testEntryOrderIsSQLitesOrder() throws {
        let values: [SQLValue] = [
            .null, .integer(0), .integer(-1), .integer(1), .integer(Int64.max), .integer(Int64.min),
            .integer(9_007_199_254_740_993), .real(9_007_199_254_740_992), .real(0.5), .real(-0.0), .real(1e19), .real(-1e19),
            .real(1), .text(""), .text("a"), .text("A"), .text("b"), .text("B"), .text("a "), .text("a\t"), .text("ab"),
            .text("aB"), .text("é"), .text("E"), .text("[]"), .text("_"), .blob([]), .blob([0]), .blob([0x61]), .blob([0x61, 0]),
        ]
        let db = try Database(path: ":memory:", mode: .readWriteCreate)
        IndexOrder.register(on: db)
        var pairs = 0
        for (letter, collation) in [("B", "BINARY"), ("N", "NOCASE"), ("R", "RTRIM")] {
            let ours = try db.prepare("SELECT bos_index_order('-\(letter)', v, r) FROM (SELECT column1 AS v, column2 AS r FROM (VALUES (?1, 1), (?2, 2)))")
            let sqlite = try db.prepare("SELECT column2 FROM (VALUES (?1, 1), (?2, 2)) ORDER BY column1 COLLATE \(collation), column2 LIMIT 1")
            for a in values {
                for b in values {
                    try ours.bind([a, b]); _ = try ours.step()
                    let inOrder = ours.int(at: 0) == IndexOrder.Verdict.inOrder.rawValue
                    ours.reset()
                    try sqlite.bind([a, b]); _ = try sqlite.step()
                    let sqliteFirst = sqlite.int(at: 0)
                    sqlite.reset()
                    XCTAssertEqual(inOrder, sqliteFirst == 1, "\(collation): \(a) then \(b)")
                    pairs += 1
                }
            }
        }
        XCTAssertEqual(pairs, 3 * 30 * 30)
    }

    /// A UNIQUE index with NULL keys twice is sound; the same non-NULL key twice is not.
    func testUniqueIndexesAllowRepeatedNullsOnly() throws {
        let db = try Database(path: ":memory:", mode: .readWriteCreate)
        IndexOrder.register(on: db)
        let nulls = try db.int("SELECT bos_index_order('UB', v, r) FROM (SELECT column1 AS v, column2 AS r FROM (VALUES (NULL, 1), (NULL, 2), ('x', 3)))")
        XCTAssertEqual(nulls, IndexOrder.Verdict.inOrder.rawValue)
        let twice = try db.int("SELECT bos_index_order('UB', v, r) FROM (SELECT column1 AS v, column2 AS r FROM (VALUES ('x', 1), ('x', 2)))")
        XCTAssertEqual(twice, IndexOrder.Verdict.duplicateKey.rawValue)
    }
}

/// An index with a collation only the application defines: nobody but the
/// application can check its order — that is "could not check", never damage.
final class ApplicationCollationTests: XCTestCase {
    /// Built by Python's sqlite3, which can register a collation, as a BOS would.
    static func makeDatabase(_ path: String, rows: Int = 200) throws {
        let script = """
            import sqlite3, sys
            c = sqlite3.connect(sys.argv[1])
            c.create_collation('reverse', lambda a, b: (a < b) - (a > b))
            c.executescript("CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT, city TEXT); CREATE INDEX cust_name ON customers(name COLLATE reverse); CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER, total REAL); CREATE INDEX orders_customer ON orders(customer);")
            c.executemany("INSERT INTO customers(name, city) VALUES (?, ?)", [("customer %d" % i, "city %d" % (i % 17)) for i in range(\(rows))])
            c.executemany("INSERT INTO orders(customer, total) VALUES (?, ?)", [(i % 50, i * 1.5) for i in range(\(rows))])
            c.commit()
            """
        let result = try runProcess("/usr/bin/env", ["python3", "-c", script, path])
        XCTAssertEqual(result.status, 0, result.stderr)
    }

    func testItsOrderIsUncheckedEverythingElseIsChecked() throws {
        let dir = TempDir()
        let path = dir.file("app.db")
        try Self.makeDatabase(path)
        XCTAssertThrowsError(try Database(path: path, mode: .readOnly).rows("PRAGMA quick_check"),
                             "SQLite itself cannot even quick_check it without the collation")
        XCTAssertEqual(IntegrityCheck.run(path: path, quick: true), IntegrityReport(), "structure is checked with a stand-in")
        let full = IntegrityCheck.run(path: path, jobs: 2)
        XCTAssertEqual(full.problems, [])
        XCTAssertEqual(full.unchecked.count, 1, "\(full)")
        XCTAssertTrue(full.unchecked[0].contains("cust_name") && full.unchecked[0].contains("reverse"), full.unchecked[0])
    }

    /// Its entries are still proven: a changed one is damage.
    func testAMissingEntryInSuchAnIndexIsStillDamage() throws {
        let dir = TempDir()
        let path = dir.file("app.db")
        try Self.makeDatabase(path)
        // Point the index's declaration at another column: its entries no longer match the rows.
        try Database(path: path).execute("""
            PRAGMA writable_schema = ON;
            UPDATE sqlite_schema SET sql = 'CREATE INDEX cust_name ON customers(city COLLATE reverse)' WHERE name = 'cust_name';
            PRAGMA writable_schema = OFF;
            """)
        let full = IntegrityCheck.run(path: path)
        XCTAssertTrue(full.problems.contains { $0.contains("cust_name") }, "\(full)")
    }

    /// Through the CLI: verify says it could not check (exit 1) and records no
    /// verdict; restore puts the healthy snapshot back and says what it could not prove.
    func testVerifyCannotCheckAndRestoreRestores() throws {
        let dir = TempDir()
        let live = dir.file("app.db"), catalog = dir.file("catalog.db")
        try Self.makeDatabase(live)
        let backup = try bosbackup("backup", "--source", live, "--target", "file://" + dir.file("nas"), "--catalog", catalog, "--json")
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let id = try XCTUnwrap(try jsonObject(backup.stdout)["id"] as? String)
        let verify = try bosbackup("verify", "--snapshot", id, "--catalog", catalog, "--scratch", dir.file("scratch"))
        XCTAssertEqual(verify.status, 1, verify.stdout + verify.stderr)
        XCTAssertTrue(verify.stdout.contains("could not check order of index cust_name"), verify.stdout)
        XCTAssertFalse(verify.stdout.contains("FAILED"), verify.stdout)
        let listed = try bosbackup("snapshots", "--catalog", catalog)
        XCTAssertFalse(listed.stdout.contains("FAILED"), "no damage verdict recorded: \(listed.stdout)")
        let restore = try bosbackup("restore", "--snapshot", id, "--into", dir.file("back.db"), "--catalog", catalog, "--full-check")
        XCTAssertEqual(restore.status, 0, restore.stderr)
        XCTAssertTrue(restore.stdout.contains("not checked: order of index cust_name"), restore.stdout)
        let rows = "SELECT count(*), group_concat(name) FROM customers NOT INDEXED"
        XCTAssertEqual(try Database(path: dir.file("back.db"), mode: .readOnly).rows(rows), try Database(path: live, mode: .readOnly).rows(rows))
    }
}
