@testable import BOSBackup
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Issue #13 item 4: `status` shows a job in progress (the policy has no metrics key, so an old bosbackup runs it too). The cloud job's upload is held at
/// the fault proxy (its rule waits on a semaphore), so the run is in progress for exactly
/// as long as the test needs; no sleeps. Both tests failed on the old code: a run in
/// progress showed as "ok", one whose process was killed too.
final class RunningStatusTests: MonitoringTestCase {
    /// Holds the first object upload until released; says when it arrived.
    final class Hold: @unchecked Sendable {
        let arrived = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        private let lock = NSLock()
        private var taken = false

        func take(_ request: FaultProxy.Request) -> Bool {
            guard request.method == "PUT" else { return false }
            let first: Bool = lock.withLock {
                defer { taken = true }
                return !taken
            }
            guard first else { return false }
            arrived.signal()
            _ = release.wait(timeout: .now() + 120)  // bounded: the proxy never hangs for ever
            return false  // then it goes upstream unchanged
        }
    }

    func startHeldRun() throws -> (child: ChildProcess, hold: Hold, proxy: FaultProxy) {
        let s3 = try s3ThroughProxy()
        try writePolicy(cloudURL: s3.url)
        let hold = Hold()
        s3.proxy.inject(.status(500, code: "InternalError"), when: hold.take)
        let child = try ChildProcess(Fixtures.binary, ["run", "--config", config, "--now", "2026-11-29T00:05:00+08:00"],
                                     environment: environment)
        XCTAssertEqual(hold.arrived.wait(timeout: .now() + 120), .success, "the cloud upload never started")
        return (child, hold, s3.proxy)
    }

    func testStatusShowsTheJobInProgressAndItsMetric() throws {
        let (child, hold, proxy) = try startHeldRun()
        defer { withExtendedLifetime(proxy) {} }
        let status = try statusJSON(at: "2026-11-29T00:06:00+08:00")
        hold.release.signal()
        let jobs = try XCTUnwrap(status.json["jobs"] as? [[String: Any]])
        let cloud = try XCTUnwrap(jobs.first { $0["job"] as? String == "cloud-daily" })
        XCTAssertEqual(cloud["running_since"] as? String, "2026-11-28T16:05:00Z", "\(cloud)")
        XCTAssertEqual(cloud["running_pid"] as? Int, Int(child.pid))
        XCTAssertEqual(cloud["last_run_failed"] as? Bool, false)
        XCTAssertNil(jobs.first { $0["job"] as? String == "local-weekly" }?["running_since"] as? String)
        let exposition = try TextExposition.parse(status.metrics)
        XCTAssertEqual(exposition.value("bosbackup_job_running", ["backup_job": "cloud-daily", "target": "cloud"]), 1)
        XCTAssertEqual(exposition.value("bosbackup_job_running", ["backup_job": "local-weekly", "target": "nas"]), 0)
        XCTAssertNil(exposition.value("bosbackup_last_run_success", ["backup_job": "cloud-daily", "target": "cloud"]),
                     "no run of it has finished yet: not a failure")

        let text = try run("status", "--config", config, "--now", "2026-11-29T00:06:00+08:00")
        XCTAssertTrue(text.stdout.split(separator: "\n").contains { $0.hasPrefix("cloud-daily") && $0.contains("RUNNING since 2026-11-29T00:05:00+08:00") },
                      text.stdout)

        let finished = try child.wait()
        XCTAssertEqual(finished.status, 0, finished.stdout + finished.stderr)
        let after = try statusJSON(at: "2026-11-29T00:07:00+08:00")
        XCTAssertEqual(after.status, 0)
        let done = try TextExposition.parse(after.metrics)
        XCTAssertEqual(done.value("bosbackup_job_running", ["backup_job": "cloud-daily", "target": "cloud"]), 0)
        XCTAssertEqual(done.value("bosbackup_last_run_success", ["backup_job": "cloud-daily", "target": "cloud"]), 1)
    }

    func testARunWhoseProcessWasKilledIsInterruptedNotRunning() throws {
        let (child, hold, proxy) = try startHeldRun()
        defer { withExtendedLifetime(proxy) {} }
        kill(child.pid, SIGKILL)
        _ = try child.wait()
        hold.release.signal()
        XCTAssertEqual(try catalog().runs(job: "cloud-daily").first?.status, .running, "the row still says running")

        let status = try statusJSON(at: "2026-11-29T00:06:00+08:00")
        XCTAssertEqual(status.status, 1, "an interrupted run is a failed one")
        let cloud = try XCTUnwrap((status.json["jobs"] as? [[String: Any]])?.first { $0["job"] as? String == "cloud-daily" })
        XCTAssertEqual(cloud["interrupted"] as? Bool, true)
        XCTAssertEqual(cloud["last_run_failed"] as? Bool, true)
        XCTAssertNil(cloud["running_since"] as? String)
        XCTAssertEqual(try TextExposition.parse(status.metrics).value("bosbackup_job_running", ["backup_job": "cloud-daily", "target": "cloud"]), 0)
        let text = try run("status", "--config", config, "--now", "2026-11-29T00:06:00+08:00")
        XCTAssertFalse(text.stdout.contains("RUNNING"), text.stdout)
        XCTAssertTrue(text.stdout.contains("cloud-daily: last run (started 2026-11-29T00:05:00+08:00) interrupted: process \(child.pid) is gone"), text.stdout)
    }
}
