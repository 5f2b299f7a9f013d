import Foundation

/// One job's health as monitoring sees it.
public struct JobStatus: Sendable {
    public var job: String
    public var target: String
    public var lastRun: RunRecord?
    public var lastSuccess: RunRecord?
    public var lastSnapshot: SnapshotRecord?
    public var lastVerification: VerificationRecord?
    public var next: Date?
    /// No successful run covers the latest fire time that is older than the grace period.
    public var overdue: Bool
    /// Runs recorded after now, newest first (a clock that was ahead): ignored above, flagged.
    public var futureRuns: [RunRecord]
    public var lastRunFailed: Bool { lastRun.map { $0.status == .failed || $0.status == .abandoned } ?? false }
}

/// The deletions waiting on one target.
public struct TargetDeletions: Sendable {
    public var target: String
    /// Marked `deleting`, oldest first: a crash interrupted them or the target refused.
    public var pending: [PendingDeletion]
    /// Those whose last attempt failed: someone should look (a WORM bucket, a target gone).
    public var failing: [PendingDeletion] { pending.filter { $0.failures > 0 } }
    /// The most recent failure.
    public var lastFailure: PendingDeletion? { failing.max { ($0.lastFailedAt ?? .distantPast) < ($1.lastFailedAt ?? .distantPast) } }
}

/// Builds `status` for every job of the policy.
public struct StatusReport {
    public let policy: Policy
    public let catalog: Catalog
    public let clock: Clock

    public init(policy: Policy, catalog: Catalog, clock: Clock) {
        self.policy = policy
        self.catalog = catalog
        self.clock = clock
    }

    public func jobs() throws -> [JobStatus] {
        let now = clock.now()
        return try policy.jobs.map { job in
            let runs = RunHistory(try catalog.runs(job: job.name), at: now)
            let lastSnapshot = try catalog.snapshotsInCatalogOrder(job: job.name).last
            let verification = try lastSnapshot.flatMap { try catalog.lastVerification(of: $0.id) }
            var overdue = false
            if let mustHaveRun = job.cron.previous(atOrBefore: now.addingTimeInterval(-job.grace), in: policy.timeZone) {
                overdue = runs.coveredFire.map { $0 < mustHaveRun } ?? true
            }
            return JobStatus(job: job.name, target: job.target, lastRun: runs.past.first, lastSuccess: runs.lastSuccess,
                             lastSnapshot: lastSnapshot, lastVerification: verification,
                             next: job.cron.next(after: now, in: policy.timeZone), overdue: overdue, futureRuns: runs.future)
        }
    }

    /// Pending deletions per target: every policy target (none pending is news too, for a
    /// metric), then any other target the catalog still has marked snapshots on.
    public func deletions() throws -> [TargetDeletions] {
        let pending = try catalog.pendingDeletions()
        var names = policy.targets.map(\.name)
        for item in pending where !names.contains(item.target) { names.append(item.target) }
        return names.map { name in TargetDeletions(target: name, pending: pending.filter { $0.target == name }) }
    }
}

/// Prometheus textfile-collector format (node_exporter's --collector.textfile).
public enum StatusMetrics {
    public static func render(_ statuses: [JobStatus], deletions: [TargetDeletions] = []) -> String {
        var lines: [String] = []
        func metric(_ name: String, _ help: String, _ value: (JobStatus) -> Double?) {
            lines.append("# HELP bosbackup_\(name) \(help)")
            lines.append("# TYPE bosbackup_\(name) gauge")
            for status in statuses {
                guard let v = value(status) else { continue }
                lines.append("bosbackup_\(name){job=\"\(escape(status.job))\",target=\"\(escape(status.target))\"} \(format(v))")
            }
        }
        metric("last_success_timestamp_seconds", "Unix time the job last finished successfully.") {
            $0.lastSuccess.map { ($0.finishedAt ?? $0.startedAt).timeIntervalSince1970 }
        }
        metric("last_snapshot_bytes", "Size of the newest snapshot's database.") { $0.lastSnapshot.map { Double($0.bytes) } }
        metric("last_snapshot_stored_bytes", "Stored (compressed) size of the newest snapshot.") { $0.lastSnapshot.map { Double($0.storedBytes) } }
        metric("last_run_duration_seconds", "Duration of the job's last run.") { $0.lastRun?.seconds }
        metric("last_run_success", "1 if the job's last run succeeded.") { $0.lastRun.map { $0.status == .success ? 1 : 0 } }
        metric("overdue", "1 if no successful run covers the latest fire time past its grace period.") { $0.overdue ? 1 : 0 }
        metric("last_verify_ok", "1 if the newest snapshot's last verification passed, 0 if it failed.") {
            $0.lastVerification.map { $0.ok ? 1 : 0 }
        }
        metric("next_run_timestamp_seconds", "Unix time of the job's next fire.") { $0.next?.timeIntervalSince1970 }
        metric("future_runs", "Runs recorded after now (the clock was ahead or jumped); ignored for the schedule.") {
            Double($0.futureRuns.count)
        }
        func targetMetric(_ name: String, _ help: String, _ value: (TargetDeletions) -> Double) {
            lines.append("# HELP bosbackup_\(name) \(help)")
            lines.append("# TYPE bosbackup_\(name) gauge")
            for target in deletions { lines.append("bosbackup_\(name){target=\"\(escape(target.target))\"} \(format(value(target)))") }
        }
        targetMetric("pending_deletions", "Snapshots marked for deletion whose objects may still be on the target; every run retries them.") {
            Double($0.pending.count)
        }
        targetMetric("failed_deletions", "Pending deletions whose last attempt failed (the target refused or could not be reached).") {
            Double($0.failing.count)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    static func format(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }
}

/// The worst-case data-loss window (RPO) a schedule gives: the longest gap
/// between consecutive fire times over the coming year, for any set of jobs.
public enum RecoveryPointObjective {
    public static func worstGap(of crons: [CronExpression], in zone: TimeZone, from start: Date, horizon: TimeInterval = 366 * 86_400) -> TimeInterval? {
        var fires: [Date] = []
        for cron in crons {
            var cursor = start
            while let next = cron.next(after: cursor, in: zone), next.timeIntervalSince(start) <= horizon, fires.count < 200_000 {
                fires.append(next)
                cursor = next
            }
        }
        fires.sort()
        guard fires.count >= 2 else { return nil }
        return zip(fires, fires.dropFirst()).map { $1.timeIntervalSince($0) }.max()
    }
}
