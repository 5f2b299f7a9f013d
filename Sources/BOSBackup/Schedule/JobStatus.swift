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
    /// The newest run that ended (success, failed or abandoned), for "did the last run work".
    public var lastFinishedRun: RunRecord?
    /// The job's most recent verification, of any of its snapshots (the metrics' view).
    public var lastVerificationOfJob: VerificationRecord?

    /// The newest run is in progress: its row says running and its process is alive.
    public var running: RunRecord? { lastRun.flatMap { $0.isInProgress ? $0 : nil } }
    /// The newest run says running but its process is gone (killed): the next run marks it abandoned.
    public var interrupted: Bool { lastRun?.status == .running && running == nil }
    public var lastRunFailed: Bool { lastRun.map { $0.status == .failed || $0.status == .abandoned } ?? false || interrupted }
}

extension RunRecord {
    /// Says running, and its process is alive: in progress, not left behind by a killed one.
    /// (A row from before schema 5 names no process: take its word.)
    public var isInProgress: Bool { status == .running && (process?.isAlive ?? true) }
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
                             next: job.cron.next(after: now, in: policy.timeZone), overdue: overdue, futureRuns: runs.future,
                             lastFinishedRun: runs.past.first { $0.status != .running },
                             lastVerificationOfJob: try catalog.lastVerification(job: job.name))
        }
    }

    /// The drill, when its newest run is in progress.
    public func drillInProgress() throws -> RunRecord? {
        try RunHistory(catalog.runs(job: DrillJob.runName, limit: 10), at: clock.now()).past.first.flatMap { $0.isInProgress ? $0 : nil }
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
