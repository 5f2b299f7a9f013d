@testable import BOSBackup
import Foundation
import XCTest

final class CatalogTests: XCTestCase {
    func record(_ id: String, job: String = "manual", at: TimeInterval = 1_800_000_000) -> SnapshotRecord {
        SnapshotRecord(id: id, name: "\(job)-\(id)", job: job, target: "nas", targetURL: "file:///nas", objectKey: "k/\(id).db.gz",
                       manifestKey: "k/\(id).manifest.json", takenAt: Date(timeIntervalSince1970: at), source: "/live.db",
                       bytes: 100, storedBytes: 40, sha256: "aa", databaseSHA256: "bb", pageSize: 4096, blockSize: 4 << 20,
                       level: 6, encrypted: false, tables: ["orders": 3, "order_items": 9])
    }

    /// Three snapshots of one second (the catalog keeps the second) are named job-T,
    /// job-T-<id>, job-T-<id>: the newest first is their catalog order, not their names'
    /// (by name, the random ids ordered the last two, and `restore --latest` once listed an
    /// older snapshot first).
    func testTheNewestOfSnapshotsTakenInOneSecondIsTheLastCataloged() {
        var first = record("a"), second = record("b"), third = record("c")
        (first.name, second.name, third.name) = ("manual-T", "manual-T-ffff", "manual-T-0000")
        (first.databaseSHA256, second.databaseSHA256, third.databaseSHA256) = ("1", "2", "3")
        XCTAssertEqual(Triage.newest(3, from: [first, second, third]).map(\.id), ["c", "b", "a"])
        XCTAssertEqual(Triage.newest(2, from: [first, second, third]).map(\.id), ["c", "b"])
    }

    func testNewCatalogIsMigratedWALAndPrivate() throws {
        let dir = TempDir()
        let path = dir.file("sub/catalog.db")
        let catalog = try Catalog(path: path)
        XCTAssertEqual(catalog.schemaVersion, CatalogSchema.currentVersion)
        XCTAssertEqual(fileMode(path), 0o600)
        XCTAssertEqual(fileMode(dir.file("sub")), 0o700)
        XCTAssertEqual(try catalog.db.scalar("PRAGMA journal_mode")?.string, "wal")
    }

    func testSnapshotsRoundTripWithTableCounts() throws {
        let dir = TempDir()
        let catalog = try Catalog(path: dir.file("c.db"))
        try catalog.insert(record("0000aaaa", at: 1_800_000_000))
        try catalog.insert(record("0000bbbb", job: "cloud", at: 1_800_000_100))
        let all = try catalog.snapshots()
        XCTAssertEqual(all.map(\.id), ["0000aaaa", "0000bbbb"])
        XCTAssertEqual(all[0], record("0000aaaa", at: 1_800_000_000))
        XCTAssertEqual(try catalog.latest(1).map(\.id), ["0000bbbb"])
        XCTAssertEqual(try catalog.snapshots(job: "cloud").count, 1)
        XCTAssertEqual(try catalog.snapshot("0000b").id, "0000bbbb", "unique prefix")
        XCTAssertThrowsError(try catalog.snapshot("0000")) { error in
            guard case CatalogError.ambiguousSnapshot = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try catalog.snapshot("ffff")) { error in
            guard case CatalogError.unknownSnapshot = error else { return XCTFail("\(error)") }
        }
    }

    func testDeletionIsMarkedThenConfirmedAndAudited() throws {
        let dir = TempDir()
        let catalog = try Catalog(path: dir.file("c.db"), actor: "tester@host")
        try catalog.insert(record("0000aaaa"))
        try catalog.markDeleting("0000aaaa", reason: "test")
        XCTAssertTrue(try catalog.snapshots().isEmpty, "a snapshot being deleted is no longer offered")
        XCTAssertEqual(try catalog.pendingDeletions().map(\.id), ["0000aaaa"])
        try catalog.confirmDeleted("0000aaaa", reason: "retention keep_last 8")
        XCTAssertTrue(try catalog.pendingDeletions().isEmpty)
        let audit = try catalog.auditTrail()
        XCTAssertEqual(audit.first?.action, "delete")
        XCTAssertEqual(audit.first?.actor, "tester@host")
    }

    func testCatalogFromANewerVersionIsRefused() throws {
        let dir = TempDir()
        let path = dir.file("c.db")
        _ = try Catalog(path: path)
        try Database(path: path).execute("PRAGMA user_version = 99")
        XCTAssertThrowsError(try Catalog(path: path)) { error in
            guard case CatalogError.newerSchema(_, 99, _) = error else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("upgrade bosbackup"))
        }
    }

    func testRunsAreRecordedAndStaleOnesAbandoned() throws {
        let dir = TempDir()
        let catalog = try Catalog(path: dir.file("c.db"))
        let finished = try catalog.startRun(job: "nas", scheduledFor: Date(timeIntervalSince1970: 1_800_000_000), at: Date())
        try catalog.finishRun(finished, status: .success, error: nil, snapshotID: "0000aaaa", seconds: 1.5, at: Date())
        _ = try catalog.startRun(job: "nas", scheduledFor: nil, at: Date())
        XCTAssertEqual(try catalog.abandonStaleRuns(), 1)
        let runs = try catalog.runs(job: "nas")
        XCTAssertEqual(Set(runs.map(\.status)), [.success, .abandoned])
        XCTAssertEqual(runs.first { $0.status == .success }?.snapshotID, "0000aaaa")
    }
}
