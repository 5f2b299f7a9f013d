@testable import BOSBackup
import Foundation
import XCTest

/// Issue #12 items 2 and 3: a run stamped after now never covers a fire time, and a clock
/// stepping back never makes retention delete the backup just taken.
final class ClockJumpTests: ScheduleCLITestCase {
    // MARK: item 2: a clock ahead

    func testRunFromTheFutureNeverCoversAFireTime() throws {
        try writePolicy()
        let ahead = try run("run", "--config", config, "--now", "2035-01-01T00:00:00+08:00")
        XCTAssertEqual(ahead.status, 0, ahead.stdout + ahead.stderr)

        // The clock is right again: both jobs are due, not "up to date" until 2035.
        let back = try run("run", "--config", config, "--now", "2026-11-29T00:05:00+08:00", "--json")
        XCTAssertEqual(back.status, 0, back.stdout + back.stderr)
        let jobs = try XCTUnwrap(try jsonObject(back.stdout)["jobs"] as? [[String: Any]])
        XCTAssertEqual(jobs.map { $0["due"] as? Bool }, [true, true], "\(jobs)")
        XCTAssertTrue(jobs.allSatisfy { ($0["reason"] as? String)?.contains("recorded in the future") == true }, "\(jobs)")
        XCTAssertEqual(try catalog().runs(job: "local-weekly").count, 2)

        let later = try run("run", "--config", config, "--now", "2026-11-29T00:20:00+08:00")
        XCTAssertEqual(later.status, 0, later.stdout)
        XCTAssertTrue(later.stdout.contains("local-weekly: not due — up to date (last success for the fire at 2026-11-29T00:00:00+08:00)"),
                      later.stdout)

        // status flags the run from the future, and judges the jobs by the runs up to now.
        let status = try run("status", "--config", config, "--now", "2026-11-29T00:30:00+08:00", "--json")
        let statusJobs = try XCTUnwrap(try jsonObject(status.stdout)["jobs"] as? [[String: Any]])
        for job in statusJobs {
            XCTAssertEqual((job["future_runs"] as? [String])?.first, "2034-12-31T16:00:00Z", "\(job)")
            XCTAssertEqual(job["last_success"] as? String, "2026-11-28T16:05:00Z", "\(job)")
        }
        let text = try run("status", "--config", config, "--now", "2026-11-29T00:30:00+08:00")
        XCTAssertTrue(text.stdout.contains("recorded in the future") && text.stdout.contains("clock jumped?"), text.stdout)
        // A week on, without the fix the 2035 run would still make it "ok": it must be overdue.
        let overdue = try run("status", "--config", config, "--now", "2026-12-13T12:00:00+08:00", "--json")
        XCTAssertEqual(overdue.status, 1)
        XCTAssertEqual((try jsonObject(overdue.stdout)["jobs"] as? [[String: Any]])?.map { $0["overdue"] as? Bool }, [true, true])
    }

    // MARK: item 3: a clock stepping back

    func testClockSteppingBackNeverDeletesTheBackupJustTaken() throws {
        try writePolicy()
        XCTAssertEqual(try run("run", "--config", config, "--now", "2026-12-02T22:30:00+08:00").status, 0)
        // The clock steps back a day; the run is due (a later-stamped run is from the future).
        let back = try run("run", "--config", config, "--now", "2026-12-01T22:30:00+08:00")
        XCTAssertEqual(back.status, 0, back.stdout + back.stderr)
        let justTaken = try XCTUnwrap(try catalog().runs(job: "cloud-daily").first { $0.startedAt == ISO8601.parse("2026-12-01T22:30:00+08:00") }?.snapshotID,
                                      back.stdout)
        XCTAssertEqual(try catalog().snapshots(job: "cloud-daily").map(\.id), [justTaken], "keep_last 1 kept the backup just taken")
    }

    /// `backup` with the clock behind, then `prune`: newest means last cataloged, not latest stamp.
    func testPruneKeepsTheLastCatalogedSnapshotNotTheLatestStamped() throws {
        try writePolicy()
        XCTAssertEqual(try run("run", "--config", config, "--now", "2026-12-02T22:30:00+08:00").status, 0)
        let manual = try run("backup", "--config", config, "--job", "cloud-daily", "--now", "2026-11-30T10:00:00+08:00", "--json")
        XCTAssertEqual(manual.status, 0, manual.stderr)
        let manualID = try XCTUnwrap(try jsonObject(manual.stdout)["id"] as? String)
        XCTAssertEqual(try run("prune", "--config", config, "--job", "cloud-daily").status, 0)
        XCTAssertEqual(try catalog().snapshots(job: "cloud-daily").map(\.id), [manualID])
    }
}
