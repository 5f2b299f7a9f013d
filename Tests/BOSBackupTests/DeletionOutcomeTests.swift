@testable import BOSBackup
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Issue #12 items 1 and 9: a deletion that cannot finish is its target's problem. Every
/// later run still runs every job; the failure is reported (stderr after the jobs, exit 1,
/// `status`, metrics, `snapshots`) and retried; `run --json` always prints one document.
final class DeletionOutcomeTests: ScheduleCLITestCase {
    // MARK: item 1 (and 9): a deletion that cannot finish

    /// A WORM bucket answers 403 AccessDenied to every DeleteObject. The cloud job's backups
    /// still succeed, every later run still runs both jobs, the failed deletion is one line on
    /// stderr naming target and snapshot (exit 1, after the jobs), `status`, its JSON and the
    /// metrics file report it, `snapshots` shows it as deleting, and once deletes are allowed
    /// again the next run finishes it (exit 0).
    func testBucketThatDeniesDeletesNeverSilencesTheSchedule() throws {
        let s3 = try s3ThroughProxy()
        s3.proxy.inject(.status(403, code: "AccessDenied"), when: Self.isDeleteObject)
        try writePolicy(cloudURL: s3.url)

        let first = try run("run", "--config", config, "--now", "2026-11-29T00:05:00+08:00")
        XCTAssertEqual(first.status, 0, first.stdout + first.stderr)
        let firstCloud = try XCTUnwrap(try catalog().snapshots(job: "cloud-daily").first)

        // cloud-daily's second backup succeeds; keep_last 1 then tries to delete the first one.
        let second = try run("run", "--config", config, "--now", "2026-11-29T22:05:00+08:00")
        XCTAssertEqual(second.status, 1, "a deletion failed: " + second.stdout + second.stderr)
        let secondCloud = try XCTUnwrap(try catalog().snapshots(job: "cloud-daily").last)
        XCTAssertNotEqual(secondCloud.id, firstCloud.id)
        XCTAssertTrue(second.stdout.contains("cloud-daily") && second.stdout.contains("snapshot \(secondCloud.shortID)"),
                      "the backup itself is reported as done: " + second.stdout)
        let warning = second.stderr.split(separator: "\n").filter { $0.contains(firstCloud.shortID) }
        XCTAssertEqual(warning.count, 1, "one line names the snapshot that could not be deleted: " + second.stderr)
        XCTAssertTrue(warning.first?.contains("cloud") == true && warning.first?.contains("AccessDenied") == true, second.stderr)
        XCTAssertEqual(try catalog().runs(job: "cloud-daily").first?.status, .success, "the backup succeeded")

        // A week later: both jobs run despite the stuck deletion; JSON says what happened.
        let third = try run("run", "--config", config, "--now", "2026-12-06T00:05:00+08:00", "--json")
        XCTAssertEqual(third.status, 1, third.stdout + third.stderr)
        let report = try jsonObject(third.stdout)
        let jobs = try XCTUnwrap(report["jobs"] as? [[String: Any]])
        XCTAssertEqual(jobs.filter { $0["due"] as? Bool == true }.map { $0["ok"] as? Bool }, [true, true], "\(jobs)")
        let failures = try XCTUnwrap(report["deletion_failures"] as? [[String: Any]], "\(report)")
        XCTAssertEqual(Set(failures.compactMap { $0["snapshot_id"] as? String }), [firstCloud.id, secondCloud.id])
        XCTAssertEqual(Set(failures.compactMap { $0["target"] as? String }), ["cloud"])
        XCTAssertEqual(try catalog().runs(job: "local-weekly").map(\.status), [.success, .success])
        XCTAssertEqual(try catalog().runs(job: "cloud-daily").map(\.status), [.success, .success, .success])
        XCTAssertTrue(third.stderr.contains(firstCloud.shortID) && third.stderr.contains(secondCloud.shortID), third.stderr)

        // status: the jobs are fine, the target has two deletions it could not finish.
        let status = try statusJSON(at: "2026-12-06T00:10:00+08:00")
        XCTAssertEqual(status.status, 1, "a failed deletion needs attention: \(status.json)")
        let statusJobs = try XCTUnwrap(status.json["jobs"] as? [[String: Any]])
        XCTAssertEqual(statusJobs.map { $0["overdue"] as? Bool }, [false, false])
        let pending = try XCTUnwrap(status.json["pending_deletions"] as? [[String: Any]], "\(status.json)")
        let cloudPending = try XCTUnwrap(pending.first { $0["target"] as? String == "cloud" })
        XCTAssertEqual(Set((cloudPending["snapshots"] as? [String]) ?? []), [firstCloud.id, secondCloud.id])
        XCTAssertTrue((cloudPending["error"] as? String)?.contains("AccessDenied") == true, "\(cloudPending)")
        XCTAssertTrue(status.metrics.contains("bosbackup_pending_deletions{target=\"cloud\"} 2\n"), status.metrics)
        XCTAssertTrue(status.metrics.contains("bosbackup_pending_deletions{target=\"nas\"} 0\n"), status.metrics)
        let text = try run("status", "--config", config, "--now", "2026-12-06T00:10:00+08:00")
        XCTAssertTrue(text.stdout.contains("cloud") && text.stdout.contains(firstCloud.shortID), text.stdout)

        // snapshots: the stuck ones are listed, as deleting.
        let listing = try run("snapshots", "--config", config)
        let stuckLine = listing.stdout.split(separator: "\n").first { $0.contains(firstCloud.shortID) }
        XCTAssertTrue(stuckLine?.contains("deleting") == true, listing.stdout)

        // Deletes allowed again: the next run finishes both, and all is well.
        s3.proxy.clearFaults()
        let fourth = try run("run", "--config", config, "--now", "2026-12-06T00:15:00+08:00")
        XCTAssertEqual(fourth.status, 0, fourth.stdout + fourth.stderr)
        XCTAssertTrue(try catalog().pendingDeletions().isEmpty)
        let keys = try runAsync { try await MotoServer.shared().target(bucket: s3.bucket, prefix: "prod").list(prefix: "") }.map(\.key)
        XCTAssertFalse(keys.contains { $0.contains(firstCloud.name) || $0.contains(secondCloud.name) }, "\(keys)")
        let healthy = try statusJSON(at: "2026-12-06T00:20:00+08:00")
        XCTAssertEqual(healthy.status, 0, "\(healthy.json)")
        XCTAssertTrue(healthy.metrics.contains("bosbackup_pending_deletions{target=\"cloud\"} 0\n"), healthy.metrics)
    }

    /// The process is SIGKILLed while its DeleteObject is on the wire (a crash mid-prune),
    /// then S3 becomes unreachable. The next run still does the NAS job; the deletion waits.
    func testS3UnreachableAfterACrashMidPruneNeverStopsTheNASJob() throws {
        let s3 = try s3ThroughProxy()
        // retry_for=5s: each S3 call gives up on the gone server in seconds, not ~15 s (what is
        // tested is that the NAS job runs anyway, not how long the retries last).
        try writePolicy(cloudURL: s3.url + "&retry_for=5s")
        let first = try run("run", "--config", config, "--now", "2026-11-29T00:05:00+08:00")
        XCTAssertEqual(first.status, 0, first.stdout + first.stderr)
        let firstCloud = try XCTUnwrap(try catalog().snapshots(job: "cloud-daily").first)

        final class Child: @unchecked Sendable { var pid: pid_t = 0; let started = DispatchSemaphore(value: 0) }
        let child = Child()
        s3.proxy.inject(.status(503, code: "ServiceUnavailable")) { request in
            guard Self.isDeleteObject(request) else { return false }
            // The request is here, so the process marked the snapshot and waits for the answer.
            // Its pid is known once it was started (bounded wait; signalled right after).
            if child.started.wait(timeout: .now() + 30) == .success {
                kill(child.pid, SIGKILL)
                child.started.signal()  // later DELETEs (none expected) find it set too
            }
            return true
        }
        let prune = Process()
        prune.executableURL = URL(fileURLWithPath: Fixtures.binary)
        prune.arguments = ["run", "--config", config, "--now", "2026-11-29T22:05:00+08:00"]
        prune.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        prune.standardOutput = FileHandle.nullDevice
        prune.standardError = FileHandle.nullDevice
        try prune.run()
        child.pid = prune.processIdentifier
        child.started.signal()
        prune.waitUntilExit()
        XCTAssertEqual(prune.terminationReason, .uncaughtSignal, "killed mid-prune")
        XCTAssertEqual(try catalog().pendingDeletions().map(\.id), [firstCloud.id], "the crash left the deletion half done")

        s3.proxy.stop()  // S3 is unreachable from now on
        let third = try run("run", "--config", config, "--now", "2026-12-06T00:05:00+08:00")
        XCTAssertEqual(third.status, 1, third.stdout + third.stderr)
        XCTAssertEqual(try catalog().runs(job: "local-weekly").map(\.status), [.success, .success], "the NAS job ran: " + third.stdout + third.stderr)
        XCTAssertEqual(try catalog().snapshots(job: "local-weekly").count, 1, "and its retention still applies")
        let lines = third.stderr.split(separator: "\n")
        XCTAssertTrue(lines.contains { $0.contains(firstCloud.shortID) && $0.contains("cloud") }, third.stderr)
        let listing = try run("snapshots", "--config", config, "--json")
        let listed = try XCTUnwrap(try jsonObject(listing.stdout)["deleting"] as? [[String: Any]], listing.stdout)
        XCTAssertEqual(listed.map { $0["id"] as? String }, [firstCloud.id], "\(listed)")
        XCTAssertEqual(listed.first?["state"] as? String, "deleting", "\(listed)")

        // S3 back (the same bucket, reached directly): the cloud job catches up, the deletion finishes.
        try writePolicy(cloudURL: "s3://\(s3.bucket)/prod?endpoint=http://127.0.0.1:\(try MotoServer.shared().port)")
        let fourth = try run("run", "--config", config, "--now", "2026-12-06T00:10:00+08:00")
        XCTAssertEqual(fourth.status, 0, fourth.stdout + fourth.stderr)
        XCTAssertTrue(try catalog().pendingDeletions().isEmpty)
        XCTAssertEqual(try catalog().snapshots(job: "cloud-daily").count, 1)
    }

    /// A target renamed in the policy (same folder, new name) and one removed (its job moved
    /// to a new folder): the old snapshots are deleted where the catalog recorded them, and
    /// no later run is stopped.
    func testTargetRenamedOrRemovedFromThePolicyStillLetsRetentionDelete() throws {
        try writePolicy()
        XCTAssertEqual(try run("run", "--config", config, "--now", "2026-11-29T00:05:00+08:00").status, 0)
        let old = try catalog().snapshots()
        XCTAssertEqual(old.count, 2)

        // nas is now called "home-nas"; "cloud" is gone, cloud-daily writes to "cloud2".
        try """
            timezone: Asia/Shanghai
            source: { database: live.db }
            catalog: catalog.db
            scratch: scratch
            targets:
              home-nas: { url: nas }
              cloud2:   { url: cloud2 }
            jobs:
              local-weekly: { target: home-nas, cron: "0 0 * * 0",  retention: { keep_last: 1 } }
              cloud-daily:  { target: cloud2,   cron: "0 22 * * *", retention: { keep_last: 1 } }
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let second = try run("run", "--config", config, "--now", "2026-12-06T00:05:00+08:00")
        XCTAssertEqual(second.status, 0, second.stdout + second.stderr)
        XCTAssertTrue(try catalog().pendingDeletions().isEmpty)
        XCTAssertEqual(Set(try catalog().snapshots().map(\.target)), ["home-nas", "cloud2"])
        for snapshot in old {
            let file = (try FileTarget(url: snapshot.targetURL)).path(for: snapshot.objectKey)
            XCTAssertFalse(FileManager.default.fileExists(atPath: file), "deleted where it was stored: \(file)")
        }
        let third = try run("run", "--config", config, "--now", "2026-12-13T00:05:00+08:00")
        XCTAssertEqual(third.status, 0, third.stdout + third.stderr)
        XCTAssertEqual(try catalog().runs(job: "local-weekly").map(\.status), [.success, .success, .success])
    }

    // MARK: item 9: run --json always answers

    func testRunJSONIsOneDocumentEvenWhenTheRunCannotStart() throws {
        try writePolicy()
        do {
            let lock = try RunLock(path: dir.file("catalog.db.lock"))
            let busy = try run("run", "--config", config, "--json")
            XCTAssertEqual(busy.status, 3)
            let document = try jsonObject(busy.stdout)
            XCTAssertTrue((document["error"] as? String)?.contains("another bosbackup run holds the lock") == true, busy.stdout)
            withExtendedLifetime(lock) {}
        }
        try "jobs: { broken: { target: nas, cron: \"61 * * * *\" } }\n".write(toFile: config, atomically: true, encoding: .utf8)
        let bad = try run("run", "--config", config, "--json")
        XCTAssertEqual(bad.status, 2, bad.stderr)
        XCTAssertNotNil(try jsonObject(bad.stdout)["error"] as? String, bad.stdout)
    }
}
