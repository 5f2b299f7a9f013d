@testable import BOSBackup
import Foundation
import XCTest

/// `sample day`: the business day the incremental-backup benchmarks start from.
final class SampleDayTests: XCTestCase {
    func testADayAddsOnePercentOrdersChangesSomeRowsAndIsDeterministic() throws {
        let dir = TempDir()
        try Fixtures.sampleDatabase(at: dir.file("a.db"), orders: 2_000)
        try FileManager.default.copyItem(atPath: dir.file("a.db"), toPath: dir.file("b.db"))
        let before = try Database(path: dir.file("a.db"), mode: .readOnly).rows("SELECT id, address FROM customers ORDER BY id")
        let result = try bosbackup("sample", "day", dir.file("a.db"), "--seed", "3", "--at", "2026-12-01T08:00:00Z")
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("+20 orders, 20 order updates"), result.stdout)
        let db = try Database(path: dir.file("a.db"), mode: .readOnly)
        XCTAssertEqual(try db.int("SELECT count(*) FROM orders"), 2_020)
        XCTAssertEqual(try db.int("SELECT count(*) FROM orders WHERE placed_at >= '2026-12-01'"), 20)
        XCTAssertEqual(try db.rows("PRAGMA foreign_key_check").count, 0)
        let after = try db.rows("SELECT id, address FROM customers ORDER BY id")
        XCTAssertGreaterThan(zip(before, after).filter { $0 != $1 }.count, 0, "some customers moved")
        let same = try SampleDay.simulate(on: dir.file("b.db"), at: ISO8601.parse("2026-12-01T08:00:00Z")!, seed: 3)
        XCTAssertEqual(same.newOrders, 20)
        let dump = "SELECT group_concat(id || status || total_cents) FROM orders"
        XCTAssertEqual(try Database(path: dir.file("b.db"), mode: .readOnly).rows(dump), try db.rows(dump), "the same seed and time give the same day")
    }
}
