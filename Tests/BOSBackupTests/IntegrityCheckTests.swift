@testable import BOSBackup
import Foundation
import XCTest

final class IntegrityCheckTests: XCTestCase {
    func testSoundDatabasePassesOnEveryNumberOfConnections() throws {
        let dir = TempDir()
        try Fixtures.sampleDatabase(at: dir.file("a.db"), orders: 300)
        for jobs in [1, 2, 4] { XCTAssertEqual(IntegrityCheck.run(path: dir.file("a.db"), jobs: jobs), IntegrityReport()) }
    }

    /// An index whose entries no longer match its table: only the full check
    /// (index contents) sees it — the per-table split must keep that.
    func testIndexContentDamageIsFoundByTheFullCheckOnly() throws {
        let dir = TempDir()
        let path = dir.file("a.db")
        try Fixtures.sampleDatabase(at: path, orders: 300)
        let db = try Database(path: path)
        try db.execute("""
            PRAGMA writable_schema = ON;
            UPDATE sqlite_schema SET sql = 'CREATE INDEX orders_placed ON orders(status)' WHERE name = 'orders_placed';
            PRAGMA writable_schema = OFF;
            """)
        let full = IntegrityCheck.run(path: path, jobs: 2).problems
        XCTAssertFalse(full.isEmpty)
        XCTAssertTrue(full.contains { $0.contains("orders_placed") }, "\(full)")
        XCTAssertEqual(IntegrityCheck.run(path: path, quick: true).problems, [], "quick_check does not look at index contents")
    }

    func testNotADatabaseIsAProblemNotACrash() throws {
        let dir = TempDir()
        try Data(repeating: 7, count: 8192).write(to: URL(fileURLWithPath: dir.file("x.db")))
        XCTAssertFalse(IntegrityCheck.run(path: dir.file("x.db")).sound, "not a database is damage, not could-not-check")
    }
}

/// The index-content part of the full check, done by scans instead of seeks,
/// must see what SQLite's own `integrity_check` sees.
final class IndexContentCheckTests: XCTestCase {
    /// Changes one digit of a value stored in a leaf page of `index`: the page
    /// stays well-formed (quick_check passes) but the entry no longer matches its row.
    func damageOneIndexValue(_ path: String, index: String) throws {
        let page = try XCTUnwrap(try Database(path: path, mode: .readOnly)
            .int("SELECT pageno FROM dbstat WHERE name = '\(index)' AND pagetype = 'leaf' LIMIT 1 OFFSET 1"))
        let pageSize = 4096
        let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: UInt64((Int(page) - 1) * pageSize))
        var bytes = [UInt8](try XCTUnwrap(try handle.read(upToCount: pageSize)))
        // The last cell's text ends the page: a date like 2026-…; change a digit near the end.
        let digit = try XCTUnwrap((0..<pageSize).reversed().first { (48...56).contains(bytes[$0]) && bytes[$0 - 1] == 45 })
        bytes[digit] += 1
        try handle.seek(toOffset: UInt64((Int(page) - 1) * pageSize))
        try handle.write(contentsOf: bytes)
        try handle.close()
    }

    func testAChangedIndexValueIsFoundLikeIntegrityCheckFindsIt() throws {
        let dir = TempDir()
        let path = dir.file("a.db")
        try Fixtures.sampleDatabase(at: path, orders: 3_000, wal: false)
        XCTAssertEqual(IntegrityCheck.run(path: path, jobs: 2), IntegrityReport())
        try damageOneIndexValue(path, index: "orders_placed")
        let sqlite = try Database(path: path, mode: .readOnly).rows("PRAGMA integrity_check").compactMap { $0.first?.string }
        XCTAssertNotEqual(sqlite, ["ok"], "the damage is real")
        XCTAssertEqual(IntegrityCheck.run(path: path, quick: true).problems, [], "and invisible to quick_check")
        for jobs in [1, 2] {
            let found = IntegrityCheck.run(path: path, jobs: jobs).problems
            XCTAssertTrue(found.contains("index orders_placed does not hold exactly the rows of table orders (PRAGMA integrity_check lists them)"), "\(found)")
            XCTAssertTrue(found.allSatisfy { $0.contains("orders_placed") }, "\(found)")
        }
    }

    func testDuplicateKeysInAUniqueIndexAreFound() throws {
        let dir = TempDir()
        let path = dir.file("u.db")
        let db = try Database(path: path, mode: .readWriteCreate)
        try db.execute("""
            CREATE TABLE t(a TEXT, b INTEGER); CREATE INDEX t_a ON t(a);
            INSERT INTO t VALUES ('x', 1), ('x', 2), (NULL, 3), (NULL, 4), ('y', 5);
            """)
        XCTAssertEqual(IntegrityCheck.run(path: path), IntegrityReport())
        try db.execute("""
            PRAGMA writable_schema = ON;
            UPDATE sqlite_schema SET sql = 'CREATE UNIQUE INDEX t_a ON t(a)' WHERE name = 't_a';
            PRAGMA writable_schema = OFF;
            """)
        XCTAssertEqual(IntegrityCheck.run(path: path).problems, ["UNIQUE index t_a holds a key twice"])
    }

    func testIndexesTheScansDoNotCoverFallBackToIntegrityCheckOfTheirTable() throws {
        let dir = TempDir()
        let path = dir.file("f.db")
        let db = try Database(path: path, mode: .readWriteCreate)
        try db.execute("""
            CREATE TABLE plain(a, b); CREATE INDEX plain_ab ON plain(a, b COLLATE NOCASE);
            CREATE TABLE expr(a TEXT); CREATE INDEX expr_lower ON expr(lower(a));
            CREATE TABLE part(a INTEGER); CREATE INDEX part_pos ON part(a) WHERE a > 0;
            CREATE TABLE wr(k TEXT PRIMARY KEY, v) WITHOUT ROWID;
            INSERT INTO plain VALUES (1, 'A'), (2.5, 'b'), (x'00ff', NULL), ('1', 'a');
            INSERT INTO expr VALUES ('Mixed'), ('CASE');
            INSERT INTO part VALUES (-1), (0), (7);
            INSERT INTO wr VALUES ('k', 1);
            """)
        XCTAssertEqual(try IndexContentCheck.plan(table: "plain", in: db)?.map(\.name), ["plain_ab"])
        for table in ["expr", "part", "wr"] { XCTAssertNil(try IndexContentCheck.plan(table: table, in: db), table) }
        XCTAssertEqual(IntegrityCheck.run(path: path), IntegrityReport())
    }

    func testMultisetHashIgnoresOrderButNotTypeOrMultiplicity() throws {
        let db = try Database(path: ":memory:", mode: .readWriteCreate)
        MultisetHash.register(on: db)
        func hash(_ values: String) throws -> Int64 {
            try db.int("SELECT bos_multiset_hash(column1, column2) FROM (VALUES \(values))")
        }
        XCTAssertEqual(try hash("(1, 'a'), (2, 'b')"), try hash("(2, 'b'), (1, 'a')"))
        XCTAssertNotEqual(try hash("(1, 'a'), (2, 'b')"), try hash("(1, 'b'), (2, 'a')"))
        XCTAssertNotEqual(try hash("(1, 'a')"), try hash("(1.0, 'a')"))
        XCTAssertNotEqual(try hash("(1, 'a')"), try hash("('1', 'a')"))
        XCTAssertNotEqual(try hash("(1, 'a')"), try hash("(1, 'a'), (1, 'a')"))
        XCTAssertNotEqual(try hash("(1, NULL)"), try hash("(1, '')"))
    }
}
