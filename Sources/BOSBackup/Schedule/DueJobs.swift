import Foundation

/// Why a job is, or is not, due at a given time.
public struct DueDecision: Sendable {
    public enum Reason: Sendable, Equatable {
        case neverRan
        /// Runs were tried, none succeeded: the last one's start and how it ended.
        case neverSucceeded(lastAttempt: Date, status: String)
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
    /// The latest run recorded after now (a clock that was ahead, or jumped): ignored.
    public var futureRun: Date?

    public var explanation: String { explanation(in: TimeZone(identifier: "UTC")!) }

    public func explanation(in zone: TimeZone) -> String {
        let ignored = futureRun.map { "; a run recorded in the future (\(ISO8601.string($0, in: zone))) is ignored: clock jumped?" } ?? ""
        return reasonText(in: zone) + ignored
    }

    func reasonText(in zone: TimeZone) -> String {
        switch reason {
        case .neverRan: return "never ran: due now"
        case .neverSucceeded(let at, let status): return "no successful run yet (the last, at \(ISO8601.string(at, in: zone)), \(status)): due now"
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
        let runs = try RunHistory(catalog.runs(job: name), at: now)
        func decision(_ due: Bool, _ scheduledFor: Date?, _ reason: DueDecision.Reason) -> DueDecision {
            DueDecision(job: name, due: due, scheduledFor: scheduledFor, reason: reason, next: next, futureRun: runs.future.first?.startedAt)
        }
        guard let covered = runs.coveredFire else {
            let reason = runs.past.first.map { DueDecision.Reason.neverSucceeded(lastAttempt: $0.startedAt, status: $0.status.rawValue) } ?? .neverRan
            return decision(true, latestFire ?? now, reason)
        }
        guard let latestFire else { return decision(false, nil, .notYetFired) }
        if covered >= latestFire { return decision(false, nil, .upToDate(lastSuccess: covered)) }
        return decision(true, latestFire, .missed(fires: missedFires(cron, after: covered, upTo: latestFire)))
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

/// A job's runs as of `now`. A run recorded after now was stamped by a clock that was
/// ahead (or jumped): it covers no fire time, or one run with `--now 2035-01-01` would
/// make every later run "up to date" for years. Such runs are kept apart, to be flagged.
struct RunHistory {
    /// Runs started at or before now, newest first.
    let past: [RunRecord]
    /// Runs started after now, newest first.
    let future: [RunRecord]

    init(_ runs: [RunRecord], at now: Date) {
        past = runs.filter { $0.startedAt <= now }
        future = runs.filter { $0.startedAt > now }
    }

    var lastSuccess: RunRecord? { past.first { $0.status == .success } }

    /// The latest fire time a successful run covered: its scheduled time, or (manual
    /// runs) when it started.
    var coveredFire: Date? {
        past.filter { $0.status == .success }.map { $0.scheduledFor ?? $0.startedAt }.max()
    }
}
