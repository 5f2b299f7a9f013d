@testable import BOSBackup
import Foundation
import XCTest

/// `run`, `daemon` and `status` as cron, systemd and monitoring use them:
/// real child processes, real locks, SIGKILL and SIGTERM.
final class RunCLITests: XCTestCase {
    var dir: TempDir!
    var config: String { dir.file("bos.yml") }

    override func setUpWithError() throws {
        dir = TempDir()
        try Fixtures.sampleDatabase(at: dir.file("live.db"), orders: 300)
        try writePolicy()
    }

    func writePolicy(source: String = "live.db") throws {
        try """
            timezone: Asia/Shanghai
            source: { database: \(source) }
            catalog: catalog.db
            scratch: scratch
            compression: { level: 6, block_size: 256KiB }
            targets:
              nas:   { url: nas }
              cloud: { url: cloud }
            jobs:
              local-weekly: { target: nas,   cron: "0 0 * * 0",  retention: { keep_last: 8 } }
              cloud-daily:  { target: cloud, cron: "0 22 * * *", retention: { keep_daily: 30, keep_monthly: 12 } }
            """.write(toFile: config, atomically: true, encoding: .utf8)
    }

    func catalog() throws -> Catalog { try Catalog(path: dir.file("catalog.db")) }

    func testRunNowDecidesCatchesUpAndReportsJSON() throws {
        let dry = try bosbackup("run", "--config", config, "--now", "2026-11-29T00:05:00+08:00", "--dry-run", "--json")
        XCTAssertEqual(dry.status, 0, dry.stderr)
        XCTAssertEqual((try jsonObject(dry.stdout)["jobs"] as? [[String: Any]])?.map { $0["due"] as? Bool }, [true, true])
        XCTAssertTrue(try catalog().snapshots().isEmpty, "a dry run changes nothing")

        let first = try bosbackup("run", "--config", config, "--now", "2026-11-29T00:05:00+08:00", "--json")
        XCTAssertEqual(first.status, 0, first.stderr)
        let snapshots = try catalog().snapshots()
        XCTAssertEqual(snapshots.map(\.job).sorted(), ["cloud-daily", "local-weekly"])
        XCTAssertEqual(snapshots.map { ISO8601.string($0.takenAt) }, ["2026-11-28T16:05:00Z", "2026-11-28T16:05:00Z"], "--now names the snapshots")

        // Four fires later (29 Nov – 2 Dec 22:00): one catch-up run for cloud-daily; local-weekly is up to date.
        let later = try bosbackup("run", "--config", config, "--now", "2026-12-02T23:00:00+08:00", "--json")
        let jobs = try XCTUnwrap(try jsonObject(later.stdout)["jobs"] as? [[String: Any]])
        XCTAssertEqual(jobs.first { $0["job"] as? String == "cloud-daily" }?["reason"] as? String, "missed 4 fire times: one catch-up run")
        XCTAssertEqual(jobs.first { $0["job"] as? String == "local-weekly" }?["due"] as? Bool, false)
        XCTAssertEqual(try catalog().runs(job: "cloud-daily").count, 2)
    }

    func testSecondRunExits3AtOnceWhileTheLockIsHeld() throws {
        do {
            let lock = try RunLock(path: dir.file("catalog.db.lock"))
            let second = try bosbackup("run", "--config", config)
            XCTAssertEqual(second.status, 3)
            XCTAssertEqual(second.stderr.split(separator: "\n").count, 1, second.stderr)
            XCTAssertTrue(second.stderr.contains("another bosbackup run holds the lock"), second.stderr)
            XCTAssertTrue(try catalog().snapshots().isEmpty)
            withExtendedLifetime(lock) {}
        }
        XCTAssertEqual(try bosbackup("run", "--config", config).status, 0, "the lock is gone with its holder")
    }

    func testTwoRunsStartedTogetherNeverBothSnapshot() throws {
        let processes = (0..<2).map { _ -> Process in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Fixtures.binary)
            p.arguments = ["run", "--config", config, "--now", "2026-11-29T00:05:00+08:00"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            return p
        }
        try processes.forEach { try $0.run() }
        processes.forEach { $0.waitUntilExit() }
        XCTAssertEqual(Set(processes.map(\.terminationStatus)).subtracting([0, 3]), [], "each either ran or found the lock")
        XCTAssertEqual(try catalog().snapshots().map(\.job).sorted(), ["cloud-daily", "local-weekly"], "one snapshot per job, never two")
        XCTAssertEqual(try catalog().runs().count, 2)
    }

    /// SIGKILL in the middle of a snapshot: nothing partial is cataloged, and
    /// the next run cleans up and does the job.
    func testRunKilledMidSnapshotLeavesNothingCatalogedAndNextRunDoesTheJob() throws {
        try FileManager.default.removeItem(atPath: dir.file("live.db"))
        try Fixtures.sampleDatabase(at: dir.file("live.db"), orders: 20_000)
        let run = Process()
        run.executableURL = URL(fileURLWithPath: Fixtures.binary)
        run.arguments = ["run", "--config", config, "--now", "2026-11-29T00:05:00+08:00"]
        run.standardOutput = FileHandle.nullDevice
        run.standardError = FileHandle.nullDevice
        try run.run()
        // Wait (bounded) until the snapshot is being written to the target, then kill.
        let deadline = Date().addingTimeInterval(60)
        var sawTemporary = false
        while Date() < deadline && run.isRunning {
            if !(try FileTarget(url: "file://" + dir.file("nas")).staleTemporaryFiles()).isEmpty { sawTemporary = true; break }
        }
        XCTAssertTrue(sawTemporary, "the run never started writing")
        kill(run.processIdentifier, SIGKILL)
        run.waitUntilExit()
        XCTAssertEqual(run.terminationReason, .uncaughtSignal)
        XCTAssertTrue(try catalog().snapshots().isEmpty, "no partial snapshot cataloged")
        XCTAssertEqual(try catalog().runs().first?.status, .running)

        let next = try bosbackup("run", "--config", config, "--now", "2026-11-29T00:20:00+08:00")
        XCTAssertEqual(next.status, 0, next.stderr)
        XCTAssertTrue(next.stdout.contains("recovered from an interrupted run"), next.stdout)
        XCTAssertEqual(try catalog().snapshots().map(\.job).sorted(), ["cloud-daily", "local-weekly"])
        XCTAssertEqual(try FileTarget(url: "file://" + dir.file("nas")).staleTemporaryFiles(), [])
        XCTAssertEqual(try catalog().runs(job: "local-weekly").map(\.status), [.success, .abandoned])
        let verify = try bosbackup("verify", "--latest", "2", "--config", config)
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)
    }

    func testFailedJobIsRecordedExits1AndIsRetriedByTheNextRun() throws {
        try writePolicy(source: "missing.db")
        let failed = try bosbackup("run", "--config", config, "--now", "2026-11-29T00:05:00+08:00")
        XCTAssertEqual(failed.status, 1)
        XCTAssertTrue(failed.stdout.contains("FAILED"), failed.stdout)
        XCTAssertEqual(try catalog().runs().map(\.status), [.failed, .failed])
        let status = try bosbackup("status", "--config", config, "--now", "2026-11-29T00:06:00+08:00", "--json")
        XCTAssertEqual(status.status, 1)
        XCTAssertEqual((try jsonObject(status.stdout)["jobs"] as? [[String: Any]])?.compactMap { $0["last_run_failed"] as? Bool }, [true, true])
        try writePolicy()
        XCTAssertEqual(try bosbackup("run", "--config", config, "--now", "2026-11-29T00:10:00+08:00").status, 0)
        XCTAssertEqual(try catalog().snapshots().count, 2)
    }

    func testStatusOverdueAndMetricsFile() throws {
        XCTAssertEqual(try bosbackup("run", "--config", config, "--now", "2026-11-29T00:05:00+08:00").status, 0)
        let metrics = dir.file("bosbackup.prom")
        // 30 Nov 23:30: cloud-daily's 22:00 fire (older than the 1 h grace? no: 1.5 h) has no run → overdue.
        let status = try bosbackup("status", "--config", config, "--now", "2026-11-30T23:30:00+08:00", "--json", "--metrics", metrics)
        XCTAssertEqual(status.status, 1)
        let jobs = try XCTUnwrap(try jsonObject(status.stdout)["jobs"] as? [[String: Any]])
        XCTAssertEqual(jobs.first { $0["job"] as? String == "cloud-daily" }?["overdue"] as? Bool, true)
        XCTAssertEqual(jobs.first { $0["job"] as? String == "local-weekly" }?["overdue"] as? Bool, false)
        let text = try String(contentsOfFile: metrics, encoding: .utf8)
        XCTAssertTrue(text.contains("bosbackup_overdue{backup_job=\"cloud-daily\",target=\"cloud\"} 1\n"), text)
        XCTAssertTrue(text.contains("bosbackup_overdue{backup_job=\"local-weekly\",target=\"nas\"} 0\n"), text)
        XCTAssertTrue(text.contains("# TYPE bosbackup_last_success_timestamp_seconds gauge"), text)
        let ok = try bosbackup("status", "--config", config, "--now", "2026-11-29T00:30:00+08:00")
        XCTAssertEqual(ok.status, 0, ok.stdout)
    }

    func testPruneDryRunShowsWhatGoesAndWhy() throws {
        for day in 1...4 {
            XCTAssertEqual(try bosbackup("run", "--config", config, "--now", "2026-12-0\(day)T22:30:00+08:00").status, 0)
        }
        try """
            timezone: Asia/Shanghai
            source: { database: live.db }
            catalog: catalog.db
            targets: { nas: { url: nas }, cloud: { url: cloud } }
            jobs:
              local-weekly: { target: nas,   cron: "0 0 * * 0", retention: { keep_last: 8 } }
              cloud-daily:  { target: cloud, cron: "0 22 * * *", retention: { keep_last: 2 } }
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let dry = try bosbackup("prune", "--config", config, "--job", "cloud-daily", "--dry-run", "--json")
        XCTAssertEqual(dry.status, 0, dry.stderr)
        let plan = try XCTUnwrap(((try jsonObject(dry.stdout)["jobs"] as? [[String: Any]])?.first?["snapshots"]) as? [[String: Any]])
        XCTAssertEqual(plan.map { $0["keep"] as? Bool }, [true, true, false, false])
        XCTAssertEqual((plan[2]["reasons"] as? [String]), ["not kept by any rule"])
        XCTAssertEqual(try catalog().snapshots(job: "cloud-daily").count, 4, "dry run deletes nothing")
        XCTAssertEqual(try bosbackup("prune", "--config", config, "--job", "cloud-daily").status, 0)
        XCTAssertEqual(try catalog().snapshots(job: "cloud-daily").count, 2)
    }

    func testDaemonRunsDueJobsThenStopsCleanlyOnSIGTERM() throws {
        let (daemon, err, started) = try startDaemonUntilSleeping(config: config)
        var log = started
        XCTAssertTrue(log.contains("sleeping until"), log)
        XCTAssertEqual(try catalog().snapshots().count, 2, "never-run jobs ran at once")
        daemon.terminate()
        daemon.waitUntilExit()
        log += String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(daemon.terminationStatus, 0, log)
        XCTAssertTrue(log.contains("received SIGTERM, stopping") && log.contains("stopped"), log)
    }

    /// SIGTERM while a snapshot is being written: the daemon abandons it,
    /// nothing partial is cataloged or left on the target, and it exits 0.
    func testDaemonStoppedMidSnapshotAbandonsIt() throws {
        try FileManager.default.removeItem(atPath: dir.file("live.db"))
        try Fixtures.sampleDatabase(at: dir.file("live.db"), orders: 20_000)
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: Fixtures.binary)
        daemon.arguments = ["daemon", "--config", config]
        daemon.standardError = FileHandle.nullDevice
        daemon.standardOutput = FileHandle.nullDevice
        try daemon.run()
        let nas = try FileTarget(url: "file://" + dir.file("nas"))
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && daemon.isRunning && nas.staleTemporaryFiles().isEmpty {}
        XCTAssertFalse(nas.staleTemporaryFiles().isEmpty, "the daemon never started writing")
        daemon.terminate()
        daemon.waitUntilExit()
        XCTAssertEqual(daemon.terminationStatus, 0)
        XCTAssertEqual(nas.staleTemporaryFiles(), [], "the abandoned upload was removed")
        let weekly = try catalog().runs(job: "local-weekly")
        if try catalog().snapshots(job: "local-weekly").isEmpty {
            XCTAssertEqual(weekly.first?.status, .abandoned)
        } else {
            XCTAssertEqual(weekly.first?.status, .success, "finished before the signal: then it must be complete")
        }
        XCTAssertTrue(try catalog().runs().allSatisfy { $0.status != .running }, "no run left 'running'")
    }

    func testScheduleNextJSON() throws {
        let result = try bosbackup("schedule", "next", "--cron", "0 0 * * 0", "--tz", "Asia/Shanghai", "--after", "2026-11-27T12:00:00Z", "-n", "2", "--json")
        XCTAssertEqual(try jsonObject(result.stdout)["times"] as? [String], ["2026-11-29T00:00:00+08:00", "2026-12-06T00:00:00+08:00"])
        let bad = try bosbackup("schedule", "next", "--cron", "0 0 31 2 *")
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("day-of-month"), bad.stderr)
    }

    func testScheduleShowGivesRPOPerTargetAndOverall() throws {
        let show = try bosbackup("schedule", "show", "--config", Fixtures.repoRoot + "/schedules/bos.yml", "--now", "2026-11-27T12:00:00Z", "--json")
        XCTAssertEqual(show.status, 0, show.stderr)
        let rpo = try XCTUnwrap(try jsonObject(show.stdout)["rpo_seconds"] as? [String: Any])
        XCTAssertEqual((rpo["targets"] as? [String: Any])?["nas"] as? Double, 7 * 86_400)
        XCTAssertEqual((rpo["targets"] as? [String: Any])?["cloud"] as? Double, 86_400)
        XCTAssertEqual(rpo["overall"] as? Double, 86_400)
        let install = try bosbackup("schedule", "install", "--systemd", "--config", config)
        XCTAssertTrue(install.stdout.contains("Persistent=true") && install.stdout.contains("run --config \(config)"), install.stdout)
    }
}
