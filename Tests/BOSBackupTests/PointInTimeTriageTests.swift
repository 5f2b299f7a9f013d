@testable import BOSBackup
import Foundation
import XCTest

/// Triage across time (issue #16, first step): `diff --at` and `recover --at`
/// against the state of a second of the archive, restored once into scratch
/// and reused by every command of the incident.
final class PointInTimeTriageTests: ArchiveTestCase {
    func testDiffAndRecoverAtASecondPutBackWhatABadScriptDeletedAndKeepNewerRows() throws {
        _ = try archiveSixCommits()
        try bos.execute("DELETE FROM ledger WHERE k BETWEEN 3 AND 5")   // the bad script, at 10:07
        _ = try archive(at: 7)
        try commit(7)                                                     // orders keep arriving
        _ = try archive(at: 8)
        let before = "2026-12-01T10:06:30Z"

        let diff = try bosbackup("diff", "--at", before, "--live", live, "--table", "ledger", "--config", config)
        XCTAssertEqual(diff.status, 0, diff.stdout + diff.stderr)
        XCTAssertTrue(diff.stdout.contains("bos as of txid 5 of generation"), diff.stdout)
        XCTAssertTrue(diff.stdout.contains("ledger missing in live: 3, 4, 5"), diff.stdout)
        let state = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: dir.file("scratch/restored")).first { $0.hasSuffix(".state.json") })
        let stamp = try FileManager.default.attributesOfItem(atPath: dir.file("scratch/restored/" + state))[.modificationDate] as? Date

        let review = dir.file("review.sql")
        let planned = try bosbackup("recover", "--at", before, "--live", live, "--table", "ledger", "--sql", review, "--config", config)
        XCTAssertEqual(planned.status, 0, planned.stdout + planned.stderr)
        XCTAssertTrue(planned.stdout.contains("ledger: +3 rows"), planned.stdout)
        let reused = try FileManager.default.attributesOfItem(atPath: dir.file("scratch/restored/" + state))[.modificationDate] as? Date
        XCTAssertEqual(stamp, reused, "the incident's commands share one restored copy")

        let applied = try bosbackup("recover", "--at", before, "--live", live, "--table", "ledger", "--apply", "--json", "--config", config)
        XCTAssertEqual(applied.status, 0, applied.stdout + applied.stderr)
        XCTAssertEqual(try jsonObject(applied.stdout)["txid"] as? Int, 5)
        XCTAssertEqual(try bos.rows("SELECT k FROM ledger ORDER BY k").compactMap { $0[0].int }, Array(1...7), "the lost rows back, the newer one kept")
        XCTAssertEqual(try bos.scalar("PRAGMA integrity_check")?.string, "ok")
        let audit = try Catalog(readingAt: dir.file("catalog.db")).db.rows("SELECT detail FROM audit WHERE action = 'recover'").compactMap { $0[0].string }
        XCTAssertTrue(audit.contains { $0.contains("from txid 5 of archive generation") && $0.contains("ledger +3") }, "\(audit)")

        // A changed copy in scratch is not trusted: restored again.
        let copy = dir.file("scratch/restored/" + state.replacingOccurrences(of: ".state.json", with: ""))
        try Database(path: copy).execute("DELETE FROM ledger")
        let again = try bosbackup("diff", "--at", before, "--live", live, "--table", "ledger", "--config", config)
        XCTAssertTrue(again.stdout.contains("ledger") && !again.stdout.contains("missing in live: 3"), "after the repair live lacks nothing: " + again.stdout)
        XCTAssertEqual(try Database(path: copy, mode: .readOnly).int("SELECT count(*) FROM ledger"), 6, "the copy was restored again")

        let both = try bosbackup("diff", "--at", before, "--snapshot", "x", "--live", live, "--config", config)
        XCTAssertEqual(both.status, 2, both.stderr)
    }

    /// Snapshot triage says how far past the newest snapshot the archive reaches.
    func testSnapshotTriageNamesHowFarTheArchiveReaches() throws {
        try commit(1)
        _ = try archive(at: 0)
        try commit(2)
        _ = try archive(at: 5)
        try bos.execute("DELETE FROM ledger WHERE k = 1")   // rows go missing: the timeline is the next step
        let triage = try bosbackup("restore", "--latest", "3", "--live", live, "--config", config, "--now", "2026-12-01T10:05:30Z")
        XCTAssertEqual(triage.status, 0, triage.stdout + triage.stderr)
        XCTAssertTrue(triage.stdout.contains("archive bos → nas: every commit up to 2026-12-01T10:05:00Z (lag 30s); any second since its start: bosbackup restore --at TIME --live"),
                      triage.stdout)
        XCTAssertTrue(triage.stdout.contains("rows are missing from ledger: find the commit that deleted them with bosbackup timeline --table ledger --lost --live \(live)"),
                      triage.stdout)
    }
}
