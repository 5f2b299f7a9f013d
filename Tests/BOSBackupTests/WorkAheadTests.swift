@testable import BOSBackup
import Foundation
import XCTest

/// The timeline's read-ahead on the other core: every result is the work's own, an error
/// reaches the one who takes that result, and a new batch drops the old one.
final class WorkAheadTests: XCTestCase {
    struct Damaged: Error, Equatable { let key: Int }

    func testResultsAreTakenInOrderAndErrorsReachTheTaker() throws {
        let ahead = WorkAhead<Int, Int>(label: "test.work-ahead")
        ahead.start((0..<50).map { key in (key, { if key == 7 { throw Damaged(key: key) }; return key * key }) })
        for key in 0..<50 where key != 7 {
            XCTAssertEqual(try ahead.take(key), key * key)
        }
        XCTAssertThrowsError(try ahead.take(7)) { XCTAssertEqual($0 as? Damaged, Damaged(key: 7)) }
        XCTAssertNil(try ahead.take(7), "a result is taken once")
        XCTAssertNil(try ahead.take(99), "a key not in the batch is the caller's to do")
    }

    func testANewBatchDropsTheOldOnesResultsAndWork() throws {
        let ahead = WorkAhead<Int, Int>(label: "test.work-ahead")
        let gate = DispatchSemaphore(value: 0)
        let ran = LockedCounter()
        ahead.start([(1, { gate.wait(); ran.add(); return 1 })] + (2..<20).map { key in (key, { ran.add(); return key }) })
        ahead.start([(100, { 100 })])   // replaces the batch while its first job waits
        gate.signal()
        XCTAssertEqual(try ahead.take(100), 100)
        XCTAssertNil(try ahead.take(1), "an old batch's result was kept")
        XCTAssertNil(try ahead.take(5))
        XCTAssertLessThanOrEqual(ran.value, 1, "the old batch went on after it was replaced")
    }
}
