@testable import BOSBackup
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Issue #13 item 7: the policy's notify.command hears every failure `run` (or the daemon)
/// meets, with the failure as JSON on stdin, and never holds the run up for long. All of it
/// is new: on the old code the policy key itself was refused (exit 2).
final class NotifyTests: MonitoringTestCase {
    func testAFailedJobRunsTheCommandWithItsJSONOnStdin() throws {
        let env = dir.file("env.txt")
        try writeMonitoredPolicy(cloudURL: Self.badBucket, extra: """
            notify: { command: "cat >> '\(events)'; echo \\"$BOSBACKUP_EVENT $BOSBACKUP_JOB\\" >> '\(env)'" }
            """)
        let result = try run("run", "--config", config, "--now", "2026-11-29T00:05:00+08:00")
        XCTAssertEqual(result.status, 1)
        let sent = try notified()
        XCTAssertEqual(sent.count, 1, "\(sent)")
        let event = try XCTUnwrap(sent.first)
        XCTAssertEqual(event["event"] as? String, "job-failed")
        XCTAssertEqual(event["job"] as? String, "cloud-daily")
        XCTAssertEqual(event["target"] as? String, "cloud")
        XCTAssertTrue((event["error"] as? String)?.contains("invalid bucket name 'bad_bucket'") == true, "\(event)")
        XCTAssertEqual(event["exit_code"] as? Int, 2, "a bad URL is a configuration error")
        XCTAssertEqual(event["host"] as? String, ProcessInfo.processInfo.hostName)
        XCTAssertEqual(event["time"] as? String, "2026-11-28T16:05:00Z", "the run's clock (--now)")
        XCTAssertTrue(event["snapshot_id"] is NSNull && event["unit"] is NSNull, "every key, null when it does not apply: \(event)")
        XCTAssertTrue((event["message"] as? String)?.hasPrefix("bosbackup on \(ProcessInfo.processInfo.hostName): job cloud-daily failed (target cloud): ") == true, "\(event)")
        XCTAssertEqual(try String(contentsOfFile: env, encoding: .utf8), "job-failed cloud-daily\n")

        try writeMonitoredPolicy(extra: recordingNotify)
        XCTAssertEqual(try run("run", "--config", config, "--now", "2026-11-29T00:15:00+08:00").status, 0)
        XCTAssertEqual(try notified().count, 1, "a run without failures tells no one anything")
    }

    /// A damaged live database is still stored, and its failed check at backup is a failed verification.
    func testADamagedSourceIsAFailedVerificationNamingTheSnapshot() throws {
        try FileManager.default.removeItem(atPath: dir.file("live.db"))
        let live = dir.file("live.db")
        try Fixtures.sampleDatabase(at: live, orders: 3_000, wal: false)
        try Fixtures.breakEmployeesPage(live)
        try writeMonitoredPolicy(extra: recordingNotify)
        let result = try run("run", "--config", config, "--now", "2026-11-29T00:05:00+08:00")
        XCTAssertEqual(result.status, 1, result.stdout + result.stderr)
        let sent = try notified()
        XCTAssertEqual(sent.map { $0["event"] as? String }, ["verification-failed", "verification-failed"], "\(sent)")
        for event in sent {
            let job = try XCTUnwrap(event["job"] as? String)
            XCTAssertEqual(event["snapshot_id"] as? String, try catalog().snapshots(job: job).first?.id, "\(event)")
            XCTAssertEqual(event["exit_code"] as? Int, 4)
            XCTAssertTrue((event["error"] as? String)?.contains("employees") == true, "\(event)")
        }
        XCTAssertEqual(try metrics().value("bosbackup_last_verify_ok", ["backup_job": "local-weekly", "target": "nas"]), 0)
    }

    /// No job can run at all (no source.database): the most urgent failure, and the
    /// notify command's own failure changes nothing about run's exit code (2, not 1).
    func testARunThatCannotStartIsARunFailedAndAFailingCommandChangesNoExitCode() throws {
        try writeMonitoredPolicy(source: "", extra: """
            notify: { command: "cat >> '\(events)'; echo 'mail: no route to host' >&2; exit 5" }
            """)
        let result = try run("run", "--config", config, "--now", "2026-11-29T00:05:00+08:00")
        XCTAssertEqual(result.status, 2, result.stderr)
        let lines = result.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 2, result.stderr)
        XCTAssertTrue(lines.contains { $0 == "bosbackup: notify command (run-failed) exited 5 after 0.0 s: mail: no route to host" }
                      || lines.contains { $0.hasPrefix("bosbackup: notify command (run-failed) exited 5 after ") && $0.hasSuffix(": mail: no route to host") },
                      result.stderr)
        XCTAssertTrue(lines.contains { $0.contains("source.database: missing") }, result.stderr)
        let event = try XCTUnwrap(try notified().first)
        XCTAssertEqual(event["event"] as? String, "run-failed")
        XCTAssertEqual(event["exit_code"] as? Int, 2)
        XCTAssertTrue(event["job"] is NSNull)
    }

    /// A command that hangs is stopped at its timeout (its whole process group), and one
    /// that leaves a child in the background holding its output is not waited for.
    func testTheCommandNeverHoldsTheRunUp() throws {
        try writeMonitoredPolicy(cloudURL: Self.badBucket, extra: "notify: { command: \"sleep 120\", timeout: 1s }")
        var began = Date()
        let hung = try run("run", "--config", config, "--now", "2026-11-29T00:05:00+08:00", "--quiet")
        XCTAssertLessThan(Date().timeIntervalSince(began), 60)
        XCTAssertEqual(hung.status, 1, "the job's failure, unchanged")
        let notifyLines = hung.stderr.split(separator: "\n").filter { $0.contains("notify command") }
        XCTAssertEqual(notifyLines.count, 1, hung.stderr)
        XCTAssertTrue(try XCTUnwrap(notifyLines.first).contains("notify command (job-failed cloud-daily) did not finish within 1s and was stopped (no output)"), hung.stderr)

        let pidFile = dir.file("background.pid")
        try writeMonitoredPolicy(cloudURL: Self.badBucket, extra: """
            notify: { command: "sleep 120 & echo $! > '\(pidFile)'; echo sent", timeout: 120s }
            """)
        began = Date()
        let backgrounded = try run("run", "--config", config, "--now", "2026-11-29T00:15:00+08:00", "--quiet")
        XCTAssertLessThan(Date().timeIntervalSince(began), 60, "the background sleep keeps the output pipe open for 120 s")
        XCTAssertEqual(backgrounded.status, 1)
        XCTAssertFalse(backgrounded.stderr.contains("notify command"), "the shell exited 0: " + backgrounded.stderr)
        let background = try XCTUnwrap(Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        kill(background, SIGKILL)
    }

    /// The interface the systemd units use: OnFailure= runs `bosbackup notify --event unit-failed --unit %n`.
    func testNotifySubcommandForSystemdOnFailure() throws {
        try writeMonitoredPolicy(extra: recordingNotify)
        let sent = try run("notify", "--config", config, "--event", "unit-failed", "--unit", "bosbackup.service", "--now", "2026-11-29T00:05:00+08:00")
        XCTAssertEqual(sent.status, 0, sent.stderr)
        let event = try XCTUnwrap(try notified().first)
        XCTAssertEqual(event["event"] as? String, "unit-failed")
        XCTAssertEqual(event["unit"] as? String, "bosbackup.service")
        XCTAssertEqual(event["time"] as? String, "2026-11-28T16:05:00Z")
        XCTAssertEqual(event["error"] as? String, "systemd unit bosbackup.service failed; see journalctl -u bosbackup.service")
        XCTAssertTrue(event["exit_code"] is NSNull && event["job"] is NSNull, "\(event)")

        XCTAssertEqual(try run("notify", "--config", config, "--event", "test").status, 0)
        XCTAssertEqual(try notified().last?["event"] as? String, "test")
        for bad in [["--event", "unit-failed"], ["--event", "unit-failed", "--unit", ""], ["--event", "job-failed"], ["--event", "test", "--unit", "x"]] {
            let refused = try run(["notify", "--config", config] + bad)
            XCTAssertEqual(refused.status, 2, "\(bad): " + refused.stderr)
        }
        XCTAssertEqual(try notified().count, 2, "usage errors send nothing")

        try writeMonitoredPolicy(extra: "notify: { command: \"echo 'webhook said 503' >&2; exit 1\" }")
        let failing = try run("notify", "--config", config, "--event", "unit-failed", "--unit", "bosbackup.service")
        XCTAssertEqual(failing.status, 1)
        XCTAssertTrue(failing.stderr.hasPrefix("bosbackup: notify command (unit-failed) exited 1 after ") && failing.stderr.hasSuffix(": webhook said 503\n"),
                      failing.stderr)

        try writeMonitoredPolicy()
        let unconfigured = try run("notify", "--config", config, "--event", "unit-failed", "--unit", "bosbackup.service")
        XCTAssertEqual(unconfigured.status, 0, "nothing to tell anyone with is no failure of the hook")
        XCTAssertEqual(unconfigured.stderr, "bosbackup: the policy has no notify.command: nothing was sent about unit bosbackup.service\n")
        XCTAssertEqual(try run("notify", "--config", config, "--event", "test").status, 2)
    }

    /// The daemon, like run: metrics after its pass, the notify command after a failure.
    func testTheDaemonWritesMetricsAndNotifies() throws {
        try writeMonitoredPolicy(cloudURL: Self.badBucket, extra: recordingNotify)
        // Its log, until it sleeps: by then the pass, its metrics and its notifications are done.
        let (daemon, _, log) = try startDaemonUntilSleeping(config: config)
        daemon.terminate()
        daemon.waitUntilExit()
        XCTAssertTrue(log.contains("sleeping until"), log)
        XCTAssertTrue(log.split(separator: "\n").contains { $0.contains(" bosbackup daemon: cloud-daily: FAILED: bad target URL") }, log)
        XCTAssertEqual(try notified().map { $0["event"] as? String }, ["job-failed"])
        XCTAssertEqual(try metrics().value("bosbackup_target_up", ["target": "cloud"]), 0)
        XCTAssertEqual(try metrics().value("bosbackup_last_run_success", ["backup_job": "local-weekly", "target": "nas"]), 1)
    }

    func testPolicyRefusesBadNotifyValues() throws {
        for (yaml, message) in [
            ("notify: { command: \"  \" }", "notify.command: is empty"),
            ("notify: { timeout: 5s }", "notify: missing command"),
            ("notify: { command: x, timeout: 2h }", "notify.timeout: must be at most 1h"),
            ("notify: { command: x, timeout: soon }", "notify.timeout: bad duration \"soon\""),
            ("notify: { command: x, retries: 3 }", "notify.retries: unknown key (expected one of: command, timeout)"),
            ("notify: \"mail ops\"", "notify: expected a mapping of keys"),
        ] {
            XCTAssertThrowsError(try PolicyLoader.parse(yaml, file: "p.yml")) { error in
                XCTAssertTrue("\(error)".contains(message), "\(yaml): \(error)")
            }
        }
        let policy = try PolicyLoader.parse("notify: { command: \"mail -s \\\"$BOSBACKUP_MESSAGE\\\" ops\" }", file: "p.yml")
        XCTAssertEqual(policy.notify?.command, "mail -s \"$BOSBACKUP_MESSAGE\" ops")
        XCTAssertEqual(policy.notify?.timeout, 30)
        try writeMonitoredPolicy(extra: "notify: { command: \"\" }")
        let refused = try run("run", "--config", config)
        XCTAssertEqual(refused.status, 2)
        XCTAssertTrue(refused.stderr.contains("bos.yml:13: notify.command: is empty"), refused.stderr)
    }
}
