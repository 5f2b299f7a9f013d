@testable import BOSBackup
import XCTest

final class DatabaseTests: XCTestCase {
    /// `scalar` once answered "no row" with `.null` (a nil literal turned into
    /// SQLValue), so "does a row exist" checks were always yes.
    func testScalarTellsNoRowFromANullValue() throws {
        let db = try Database(path: ":memory:", mode: .readWriteCreate)
        try db.execute("CREATE TABLE t(a); INSERT INTO t VALUES (NULL)")
        XCTAssertNil(try db.scalar("SELECT a FROM t WHERE 0"))
        XCTAssertEqual(try db.scalar("SELECT a FROM t"), .null)
        XCTAssertEqual(try db.scalar("SELECT 7"), .integer(7))
    }
}
