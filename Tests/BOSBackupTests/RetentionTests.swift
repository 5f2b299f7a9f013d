@testable import BOSBackup
import Foundation
import XCTest

final class RetentionTests: XCTestCase {
    let zone = TimeZone(identifier: "Asia/Shanghai")!

    func snapshot(_ local: String) -> SnapshotRecord {
        let at = ISO8601.parse(local + "+08:00")!
        return SnapshotRecord(id: local, name: local, job: "j", target: "nas", targetURL: "file:///x", objectKey: "", manifestKey: "",
                              takenAt: at, source: "", bytes: 0, storedBytes: 0, sha256: "", databaseSHA256: "", pageSize: 4096,
                              blockSize: 0, level: 6, encrypted: false, tables: [:])
    }

    func kept(_ rules: Policy.Retention, _ stamps: [String], verified: String? = nil) -> Set<String> {
        Set(RetentionPlanner(rules: rules, timeZone: zone).plan(stamps.map(snapshot), newestVerified: verified)
            .filter(\.keep).map(\.snapshot.id))
    }

    /// Reasons read as dates are written: `daily 2026-12-01`, not `2026-12-1`.
    func testReasonsNameZeroPaddedDaysWeeksAndMonths() {
        let plan = RetentionPlanner(rules: .init(keepDaily: 2, keepWeekly: 1, keepMonthly: 1), timeZone: zone)
            .plan(["2026-12-01T22:00:00", "2026-02-03T22:00:00"].map(snapshot), newestVerified: nil)   // the last cataloged is the newest
        let reasons = plan.flatMap(\.reasons)
        for expected in ["daily 2026-12-01", "daily 2026-02-03", "weekly 2026-W06", "monthly 2026-02"] {
            XCTAssertTrue(reasons.contains(expected), "\(expected) in \(reasons)")
        }
    }

    func testKeepLast() {
        let stamps = (1...10).map { String(format: "2026-12-%02dT22:00:00", $0) }
        XCTAssertEqual(kept(.init(keepLast: 3), stamps), Set(stamps.suffix(3)))
    }

    func testKeepDailyKeepsNewestOfEachOfTheLastNDaysWithSnapshots() {
        let stamps = ["2026-12-01T09:00:00", "2026-12-01T22:00:00", "2026-12-03T01:00:00", "2026-12-03T23:30:00",
                      "2026-12-07T22:00:00", "2026-12-08T22:00:00"]
        // Days with snapshots, newest first: 8th, 7th, 3rd, 1st → the last 3 of them.
        XCTAssertEqual(kept(.init(keepDaily: 3), stamps), ["2026-12-08T22:00:00", "2026-12-07T22:00:00", "2026-12-03T23:30:00"])
    }

    func testDaysAreThePolicysLocalDays() {
        // 23:30 Shanghai on the 3rd is 15:30 UTC; 00:30 Shanghai on the 4th is 16:30 UTC on the 3rd.
        let stamps = ["2026-12-03T23:30:00", "2026-12-04T00:30:00"]
        XCTAssertEqual(kept(.init(keepDaily: 2), stamps), Set(stamps))
    }

    func testKeepWeeklyUsesISOWeeksAndMonthlyCalendarMonths() {
        let stamps = ["2026-11-30T22:00:00", "2026-12-05T22:00:00", "2026-12-06T22:00:00",  // ISO week 49 (Mon 30 Nov – Sun 6 Dec)
                      "2026-12-07T22:00:00", "2027-01-02T22:00:00"]
        XCTAssertEqual(kept(.init(keepWeekly: 2), stamps), ["2027-01-02T22:00:00", "2026-12-07T22:00:00"])
        XCTAssertEqual(kept(.init(keepMonthly: 3), stamps), ["2027-01-02T22:00:00", "2026-12-07T22:00:00", "2026-11-30T22:00:00"])
    }

    func testRulesAddUpAndNewestAndNewestVerifiedAreAlwaysKept() {
        let stamps = (1...20).map { String(format: "2026-12-%02dT22:00:00", $0) }
        XCTAssertEqual(kept(.init(keepLast: 1), stamps, verified: "2026-12-04T22:00:00"),
                       ["2026-12-20T22:00:00", "2026-12-04T22:00:00"])
        XCTAssertEqual(kept(.init(keepLast: 2, keepMonthly: 1), stamps).count, 2)
        XCTAssertEqual(kept(.init(keepLast: 0), stamps), ["2026-12-20T22:00:00"], "the newest is never deleted")
        XCTAssertEqual(kept(.init(), stamps).count, 20, "no rules keep everything")
    }
}
