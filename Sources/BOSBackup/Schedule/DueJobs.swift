import Foundation

/// Why a job is, or is not, due at a given time.
public struct DueDecision: Sendable {
    public enum Reason: Sendable, Equatable {
        case neverRan
        case missed(fires: Int)      // latest fire time ≤ now has no successful run (fires: how many coalesce)
        case upToDate(lastSuccess: Date)
        case notYetFired
    }
    public var job: String
    public var due: Bool
    /// The fire time this run stands for (the latest one ≤ now).
    public var scheduledFor: Date?
    public var reason: Reason
    public var next: Date?

    public var explanation: String { explanation(in: TimeZone(identifier: "UTC")!) }

    public func explanation(in zone: TimeZone) -> String {
        switch reason {
        case .neverRan: return "never ran: due now"
        case .missed(let fires) where fires > 1: return "missed \(fires) fire times: one catch-up run"
        case .missed: return "fire time passed without a successful run: due"
        case .upToDate(let last): return "up to date (last success for the fire at \(ISO8601.string(last, in: zone)))"
        case .notYetFired: return "first fire time still ahead"
        }
    }
}

/// Decides which jobs are due from the policy and the catalog's runs:
/// a job is due when its latest fire time ≤ now has no successful run.
/// Several missed fires coalesce into one run; a job that never ran is due at once.
public struct DueJobs {
    public let policy: Policy
    public let catalog: Catalog

    public init(policy: Policy, catalog: Catalog) {
        self.policy = policy
        self.catalog = catalog
    }

    public func decide(at now: Date) throws -> [DueDecision] {
        try policy.jobs.map { try decide($0, at: now) }
    }

    public func decide(_ job: Policy.Job, at now: Date) throws -> DueDecision {
        try decide(name: job.name, cron: job.cron, at: now)
    }

    /// The quarterly drill is due when a fire time has passed since bosbackup
    /// first ran and no drill succeeded for it; it is not due at once on a
    /// fresh install (there is nothing to drill yet).
    public func decideDrill(at now: Date) throws -> DueDecision? {
        guard let drill = policy.drill else { return nil }
        let installed = try catalog.runs().last?.startedAt
        let latestFire = drill.cron.previous(atOrBefore: now, in: policy.timeZone)
        if let installed, let latestFire, latestFire > installed {
            return try decide(name: DrillJob.runName, cron: drill.cron, at: now)
        }
        return DueDecision(job: DrillJob.runName, due: false, scheduledFor: nil, reason: .notYetFired,
                           next: drill.cron.next(after: now, in: policy.timeZone))
    }

    func decide(name: String, cron: CronExpression, at now: Date) throws -> DueDecision {
        let zone = policy.timeZone
        let latestFire = cron.previous(atOrBefore: now, in: zone)
        let next = cron.next(after: now, in: zone)
        let successes = try catalog.runs(job: name).filter { $0.status == .success }
        guard let lastSuccess = successes.first else {
            return DueDecision(job: name, due: true, scheduledFor: latestFire ?? now, reason: .neverRan, next: next)
        }
        guard let latestFire else {
            return DueDecision(job: name, due: false, scheduledFor: nil, reason: .notYetFired, next: next)
        }
        // The fire a successful run covered: its scheduled time, or (manual runs) when it started.
        let covered = successes.map { $0.scheduledFor ?? $0.startedAt }.max() ?? lastSuccess.startedAt
        if covered >= latestFire {
            return DueDecision(job: name, due: false, scheduledFor: nil, reason: .upToDate(lastSuccess: covered), next: next)
        }
        return DueDecision(job: name, due: true, scheduledFor: latestFire,
                           reason: .missed(fires: missedFires(cron, after: covered, upTo: latestFire)), next: next)
    }

    /// How many fire times fell in (after, upTo], counted up to a cap (for the message only).
    func missedFires(_ cron: CronExpression, after: Date, upTo: Date) -> Int {
        var count = 0
        var cursor = after
        while count < 1000, let fire = cron.next(after: cursor, in: policy.timeZone), fire <= upTo {
            count += 1
            cursor = fire
        }
        return max(count, 1)
    }
}
