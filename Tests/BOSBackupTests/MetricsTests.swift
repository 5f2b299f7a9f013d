@testable import BOSBackup
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Issue #13 item 3: the Prometheus textfile, written by `run` after every run (from the
/// policy's metrics.textfile), by the daemon, and by `status --metrics FILE`.
final class MetricsTests: MonitoringTestCase {
    func testTheParserRefusesWhatPrometheusWould() throws {
        let good = """
            # A plain comment.
            # HELP a_seconds Help with \\\\ and \\n.
            # TYPE a_seconds gauge
            a_seconds{backup_job="x",target="y\\"z"} 1.5e-05
            a_seconds{backup_job="x2"} -Inf

            b 3 1700000000000
            """ + "\n"
        let parsed = try TextExposition.parse(good)
        XCTAssertEqual(parsed.value("a_seconds", ["backup_job": "x", "target": "y\"z"]), 1.5e-05)
        XCTAssertEqual(parsed.value("b"), 3)
        let bad = [
            "a 1",                                          // no final newline
            "a 1\na 2\n",                                   // duplicate series
            "a 1\n# TYPE a gauge\n",                        // TYPE after samples
            "# HELP a x\n# HELP a y\na 1\n",                // HELP twice
            "a 1\nb 1\na{l=\"2\"} 1\n",                      // a family's samples apart
            "a{job=\"x\",job=\"y\"} 1\n",                   // a label twice
            "a{__name=\"x\"} 1\n",                          // reserved label name
            "a{l=x} 1\n",                                   // unquoted value
            "a one\n",                                      // not a number
            "9a 1\n",                                       // bad metric name
            "a  \n",                                        // no value
            "# TYPE a gauge gauge\na 1\n",                  // bad TYPE
        ]
        for text in bad {
            XCTAssertThrowsError(try TextExposition.parse(text), "accepted: \(text.debugDescription)")
        }
    }

    /// Failed on the old code: the policy key did not exist, and the label was `job`.
    func testRunWritesThePolicysMetricsFileAfterEveryRunAsStatusDoes() throws {
        try writeMonitoredPolicy()
        let first = try run("run", "--config", config, "--now", "2026-11-29T00:05:00+08:00")
        XCTAssertEqual(first.status, 0, first.stdout + first.stderr)
        XCTAssertEqual(fileMode(metricsFile), 0o644)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.file("textfile")), ["bosbackup.prom"], "no temporary file left")
        let written = try metrics()
        XCTAssertFalse(written.labelNames.contains("job"), "Prometheus would rename it exported_job")
        XCTAssertEqual(written.labelNames, ["backup_job", "target"])
        for job in [("local-weekly", "nas"), ("cloud-daily", "cloud")] {
            let labels = ["backup_job": job.0, "target": job.1]
            XCTAssertEqual(written.value("bosbackup_last_success_timestamp_seconds", labels), epoch("2026-11-29T00:05:00+08:00"))
            XCTAssertEqual(written.value("bosbackup_last_run_success", labels), 1)
            XCTAssertEqual(written.value("bosbackup_job_running", labels), 0)
            XCTAssertEqual(written.value("bosbackup_overdue", labels), 0)
            XCTAssertNil(written.value("bosbackup_last_verify_ok", labels), "nothing verified yet")
        }
        XCTAssertEqual(written.value("bosbackup_target_up", ["target": "nas"]), 1)
        XCTAssertEqual(written.value("bosbackup_target_up", ["target": "cloud"]), 1)
        XCTAssertTrue(written.series("bosbackup_archive_lag_seconds").isEmpty, "reserved until archiving exists")

        // Nothing due ten minutes later: the file is still rewritten (its time moves on), and
        // status, at the same time, writes the very same file.
        let idle = try run("run", "--config", config, "--now", "2026-11-29T00:15:00+08:00")
        XCTAssertEqual(idle.status, 0, idle.stdout + idle.stderr)
        XCTAssertEqual(try metrics().value("bosbackup_target_last_access_timestamp_seconds", ["target": "cloud"]),
                       epoch("2026-11-29T00:15:00+08:00"))
        let status = try run("status", "--config", config, "--now", "2026-11-29T00:15:00+08:00", "--metrics", dir.file("status.prom"))
        XCTAssertEqual(status.status, 0, status.stdout + status.stderr)
        XCTAssertEqual(try String(contentsOfFile: dir.file("status.prom"), encoding: .utf8), try String(contentsOfFile: metricsFile, encoding: .utf8))
        XCTAssertEqual(fileMode(dir.file("status.prom")), 0o644)

        // A run that finds the lock busy still refreshes the file (the holder may work for hours).
        try FileManager.default.removeItem(atPath: metricsFile)
        let lock = try RunLock(path: dir.file("catalog.db.lock"))
        let busy = try run("run", "--config", config, "--now", "2026-11-29T00:25:00+08:00", "--quiet")
        withExtendedLifetime(lock) {}
        XCTAssertEqual(busy.status, 3, busy.stderr)
        XCTAssertEqual(try metrics().value("bosbackup_overdue", ["backup_job": "cloud-daily", "target": "cloud"]), 0)
    }

    /// The drill's metrics (none existed), per-job verification time, and a drill that
    /// misses its objective inside `run`: negative margin, and the notify command hears it.
    func testDrillAndVerificationMetrics() throws {
        try writeMonitoredPolicy(extra: "drill: { cron: \"0 3 1 1,4,7,10 *\", rto: 4h }\n" + recordingNotify)
        XCTAssertEqual(try run("run", "--config", config, "--now", "2026-11-29T00:05:00+08:00").status, 0)
        let drill = try run("drill", "--config", config, "--now", "2026-11-29T01:00:00+08:00")
        XCTAssertEqual(drill.status, 0, drill.stdout + drill.stderr)
        let status = try run("status", "--config", config, "--now", "2026-11-29T01:05:00+08:00", "--metrics", dir.file("status.prom"))
        XCTAssertEqual(status.status, 0, status.stdout)
        let passed = try metrics(dir.file("status.prom"))
        XCTAssertEqual(passed.value("bosbackup_drill_last_ok"), 1)
        XCTAssertEqual(passed.value("bosbackup_drill_running"), 0)
        let margin = try XCTUnwrap(passed.value("bosbackup_drill_rto_margin_seconds"))
        XCTAssertTrue(margin > 0 && margin < 4 * 3600, "\(margin)")
        XCTAssertNotNil(passed.value("bosbackup_drill_last_duration_seconds"))
        XCTAssertNotNil(passed.value("bosbackup_drill_last_timestamp_seconds"))
        XCTAssertEqual(passed.value("bosbackup_drill_next_timestamp_seconds"), epoch("2027-01-01T03:00:00+08:00"))
        for job in [("local-weekly", "nas"), ("cloud-daily", "cloud")] {
            // The drill verified each target's newest snapshot.
            XCTAssertEqual(passed.value("bosbackup_last_verify_ok", ["backup_job": job.0, "target": job.1]), 1)
            XCTAssertEqual(passed.value("bosbackup_last_verify_timestamp_seconds", ["backup_job": job.0, "target": job.1]),
                           epoch("2026-11-29T01:00:00+08:00"))
        }

        // The quarterly drill, inside run, against an objective no restore can meet.
        try writeMonitoredPolicy(extra: "drill: { cron: \"0 3 1 1,4,7,10 *\", rto: 0.001s }\n" + recordingNotify)
        let quarterly = try run("run", "--config", config, "--now", "2027-01-01T03:05:00+08:00")
        XCTAssertEqual(quarterly.status, 1, quarterly.stdout + quarterly.stderr)
        let failed = try metrics()
        XCTAssertEqual(failed.value("bosbackup_drill_last_ok"), 0)
        XCTAssertLessThan(try XCTUnwrap(failed.value("bosbackup_drill_rto_margin_seconds")), 0)
        let event = try XCTUnwrap(try notified().last)
        XCTAssertEqual(event["event"] as? String, "drill-failed")
        XCTAssertEqual(event["job"] as? String, "drill")
        XCTAssertEqual(event["exit_code"] as? Int, 4)
        XCTAssertTrue((event["error"] as? String)?.contains("over the objective") == true, "\(event)")
        XCTAssertTrue((event["report"] as? String)?.hasSuffix(".html") == true, "\(event)")
        XCTAssertEqual(try notified().count, 1, "the jobs passed: only the drill was worth a word")
    }

    /// bosbackup_target_up comes from the run's own look at each target.
    func testATargetTheRunCouldNotOpenIsDown() throws {
        try writeMonitoredPolicy(cloudURL: Self.badBucket)
        let result = try run("run", "--config", config, "--now", "2026-11-29T00:05:00+08:00")
        XCTAssertEqual(result.status, 1)
        let written = try metrics()
        XCTAssertEqual(written.value("bosbackup_target_up", ["target": "nas"]), 1)
        XCTAssertEqual(written.value("bosbackup_target_up", ["target": "cloud"]), 0)
        let status = try run("status", "--config", config, "--now", "2026-11-29T00:06:00+08:00", "--json")
        let targets = try XCTUnwrap(try jsonObject(status.stdout)["targets"] as? [[String: Any]])
        XCTAssertEqual(targets.map { $0["up"] as? Bool }, [true, false])
        XCTAssertTrue((targets.last?["error"] as? String)?.contains("bad_bucket") == true, "\(targets)")
        let text = try run("status", "--config", config, "--now", "2026-11-29T00:06:00+08:00")
        XCTAssertTrue(text.stdout.contains("target cloud: the run at 2026-11-29T00:05:00+08:00 could not open or list it"), text.stdout)
    }

    func testPromtoolAcceptsTheFile() throws {
        let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first { FileManager.default.isExecutableFile(atPath: $0) }
        try XCTSkipIf(promtool == nil, "promtool is not installed (Debian package prometheus, installed by make test-deps)")
        try writeMonitoredPolicy(extra: "drill: { cron: \"0 3 1 1,4,7,10 *\", rto: 4h }")
        XCTAssertEqual(try run("run", "--config", config, "--now", "2026-11-29T00:05:00+08:00").status, 0)
        XCTAssertEqual(try run("drill", "--config", config, "--now", "2026-11-29T01:00:00+08:00").status, 0)
        XCTAssertEqual(try run("run", "--config", config, "--now", "2026-11-29T01:05:00+08:00").status, 0)
        let text = try String(contentsOfFile: metricsFile, encoding: .utf8)
        XCTAssertNotNil(try TextExposition.parse(text).value("bosbackup_drill_last_ok"))
        let check = try runProcess("/bin/sh", ["-c", "'\(promtool!)' check metrics < '\(metricsFile)'"])
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
        XCTAssertEqual(check.stdout + check.stderr, "", "no lint findings either")
    }

    func testPolicyRefusesBadMetricsValues() throws {
        try writeMonitoredPolicy()
        try String(contentsOfFile: config, encoding: .utf8)
            .replacingOccurrences(of: "textfile/bosbackup.prom", with: "textfile/bosbackup.txt")
            .write(toFile: config, atomically: true, encoding: .utf8)
        let refused = try run("run", "--config", config, "--now", "2026-11-29T00:05:00+08:00")
        XCTAssertEqual(refused.status, 2)
        XCTAssertEqual(refused.stderr.split(separator: "\n").count, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("bos.yml:12: metrics.textfile: must name a file ending in .prom"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.file("catalog.db")), "nothing ran")

        for (yaml, message) in [
            ("metrics: {}", "metrics: missing textfile"),
            ("metrics: { textfile: [a.prom] }", "metrics.textfile: expected a text value"),
            ("metrics: { textfile: dir/ }", "metrics.textfile: must name a file ending in .prom"),
            ("metrics: { textfile: .prom }", "metrics.textfile: must name a file ending in .prom"),
            ("metrics: { file: a.prom }", "metrics.file: unknown key (expected one of: textfile)"),
            ("metrics: a.prom", "metrics: expected a mapping of keys"),
        ] {
            XCTAssertThrowsError(try PolicyLoader.parse(yaml, file: "p.yml")) { error in
                XCTAssertTrue("\(error)".contains(message), "\(yaml): \(error)")
            }
        }
        let policy = try PolicyLoader.parse("metrics: { textfile: out/b.prom }", file: "p.yml", folder: "/etc/bosbackup")
        XCTAssertEqual(policy.metricsTextfile, "/etc/bosbackup/out/b.prom", "relative to the policy's folder")
    }
}
