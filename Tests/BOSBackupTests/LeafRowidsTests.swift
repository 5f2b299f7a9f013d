@testable import BOSBackup
import XCTest

/// `timeline --lost` passes a commit only when the leaves it wrote lost no rowid and
/// brought back none deleted before (`LeafRowids.keeps`).
final class LeafRowidsTests: XCTestCase {
    func testALeafKeepsItsRowidsOnlyWhenNoneWentAndNoWatchedOneCame() {
        let none: (Int64) -> Bool = { _ in false }
        XCTAssertTrue(LeafRowids.keeps([1, 2, 5], [1, 2, 5, 6], bringingBackNoneOf: none), "one appended")
        XCTAssertTrue(LeafRowids.keeps([1, 5], [1, 3, 5], bringingBackNoneOf: none), "one inserted between")
        XCTAssertTrue(LeafRowids.keeps([], [7], bringingBackNoneOf: none))
        XCTAssertFalse(LeafRowids.keeps([1, 2, 5], [1, 5, 6], bringingBackNoneOf: none), "2 went, though as many came")
        XCTAssertFalse(LeafRowids.keeps([1, 2, 5], [1, 2], bringingBackNoneOf: none), "the last went")
        XCTAssertFalse(LeafRowids.keeps([3], [], bringingBackNoneOf: none))
        XCTAssertFalse(LeafRowids.keeps([1, 5], [1, 3, 5], bringingBackNoneOf: { $0 == 3 }), "3 was deleted before: its return is told")
        XCTAssertFalse(LeafRowids.keeps([1, 5], [1, 5, 9], bringingBackNoneOf: { $0 == 9 }), "after the last old rowid too")
        XCTAssertTrue(LeafRowids.keeps([1, 5], [1, 5, 9], bringingBackNoneOf: { $0 == 5 }), "kept, not brought back")
    }
}
