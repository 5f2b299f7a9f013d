@testable import BOSBackup
import Foundation
import XCTest

/// Retention's "newest" is the catalog's order (issue #12 item 3), with real catalog rows.
final class RetentionOrderTests: XCTestCase {
    func record(_ id: String, takenAt: String) -> SnapshotRecord {
        SnapshotRecord(id: id, name: "j-" + id, job: "j", target: "nas", targetURL: "file:///x", objectKey: id, manifestKey: id + ".m",
                       takenAt: ISO8601.parse(takenAt)!, source: "", bytes: 0, storedBytes: 0, sha256: "", databaseSHA256: "",
                       pageSize: 4096, blockSize: 0, level: 6, encrypted: false, tables: [:])
    }

    func testNewestIsTheLastCatalogedAndTheSnapshotJustTakenIsAlwaysKept() throws {
        let dir = TempDir()
        let catalog = try Catalog(path: dir.file("c.db"))
        // Cataloged in this order; the clock stepped back before the third.
        for (id, at) in [("aaaa0001", "2026-12-01T22:00:00Z"), ("aaaa0002", "2026-12-03T22:00:00Z"), ("aaaa0003", "2026-12-02T22:00:00Z")] {
            try catalog.insert(record(id, takenAt: at))
        }
        let ordered = try catalog.snapshotsInCatalogOrder(job: "j")
        XCTAssertEqual(ordered.map(\.id), ["aaaa0001", "aaaa0002", "aaaa0003"])
        let planner = RetentionPlanner(rules: .init(keepLast: 1), timeZone: TimeZone(identifier: "UTC")!)
        let plan = planner.plan(ordered, newestVerified: nil)
        XCTAssertEqual(plan.filter(\.keep).map(\.snapshot.id), ["aaaa0003"])
        let keepingOld = planner.plan(ordered, newestVerified: nil, justTaken: "aaaa0001")
        XCTAssertEqual(Set(keepingOld.filter(\.keep).map(\.snapshot.id)), ["aaaa0003", "aaaa0001"])
        XCTAssertEqual(keepingOld.first { $0.snapshot.id == "aaaa0001" }?.reasons, ["the snapshot just taken"])
    }
}
