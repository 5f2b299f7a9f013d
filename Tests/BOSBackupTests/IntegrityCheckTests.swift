@testable import BOSBackup
import Foundation
import XCTest

final class IntegrityCheckTests: XCTestCase {
    func testSoundDatabasePassesOnEveryNumberOfConnections() throws {
        let dir = TempDir()
        try Fixtures.sampleDatabase(at: dir.file("a.db"), orders: 300)
        for jobs in [1, 2, 4] { XCTAssertEqual(IntegrityCheck.run(path: dir.file("a.db"), jobs: jobs), []) }
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
        let full = IntegrityCheck.run(path: path, jobs: 2)
        XCTAssertFalse(full.isEmpty)
        XCTAssertTrue(full.contains { $0.contains("orders_placed") }, "\(full)")
        XCTAssertEqual(IntegrityCheck.run(path: path, quick: true), [], "quick_check does not look at index contents")
    }

    func testNotADatabaseIsAProblemNotACrash() throws {
        let dir = TempDir()
        try Data(repeating: 7, count: 8192).write(to: URL(fileURLWithPath: dir.file("x.db")))
        XCTAssertFalse(IntegrityCheck.run(path: dir.file("x.db")).isEmpty)
    }
}
