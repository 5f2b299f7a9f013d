import Foundation

/// What retention decided for one snapshot, and why.
public struct RetentionDecision: Sendable {
    public var snapshot: SnapshotRecord
    public var keep: Bool
    public var reasons: [String]
}

/// keep_last / keep_daily / keep_weekly / keep_monthly with restic's meaning
/// (and never a snapshot an incremental that is kept depends on):
/// `keep_daily: n` keeps, for each of the last n days that have snapshots, the
/// newest snapshot of that day (days in the policy's time zone); the same for
/// ISO weeks and months. A snapshot kept by any rule is kept. The job's newest
/// snapshot, its newest verified one and the one just taken are always kept. No
/// rule at all keeps everything.
///
/// "Newest" is the catalog's order, not `taken_at`: after the clock stepped back,
/// the snapshot just taken has an older stamp than the one before it, and
/// `keep_last: 1` must keep it. Days, weeks and months are still those of `taken_at`.
public struct RetentionPlanner {
    public let rules: Policy.Retention
    public let timeZone: TimeZone

    public init(rules: Policy.Retention, timeZone: TimeZone) {
        self.rules = rules
        self.timeZone = timeZone
    }

    /// `snapshots` in the order they were cataloged, oldest first (`Catalog.snapshotsInCatalogOrder`).
    public func plan(_ snapshots: [SnapshotRecord], newestVerified: String?, justTaken: String? = nil) -> [RetentionDecision] {
        let newestFirst = Array(snapshots.reversed())
        var reasons: [String: [String]] = [:]
        func keep(_ id: String, _ why: String) { reasons[id, default: []].append(why) }

        if rules.isEmpty { newestFirst.forEach { keep($0.id, "no retention rules") } }
        if let n = rules.keepLast { newestFirst.prefix(n).forEach { keep($0.id, "last \(n)") } }
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = timeZone
        let buckets: [(Int?, String, (Date) -> String)] = [
            (rules.keepDaily, "daily", { d in let c = calendar.dateComponents([.year, .month, .day], from: d); return String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!) }),
            (rules.keepWeekly, "weekly", { d in let c = calendar.dateComponents([.yearForWeekOfYear, .weekOfYear], from: d); return String(format: "%04d-W%02d", c.yearForWeekOfYear!, c.weekOfYear!) }),
            (rules.keepMonthly, "monthly", { d in let c = calendar.dateComponents([.year, .month], from: d); return String(format: "%04d-%02d", c.year!, c.month!) }),
        ]
        for (count, label, bucketOf) in buckets {
            guard let count, count > 0 else { continue }
            var seen: [String] = []
            for snapshot in newestFirst {
                let bucket = bucketOf(snapshot.takenAt)
                if seen.contains(bucket) { continue }
                seen.append(bucket)
                if seen.count > count { break }
                keep(snapshot.id, "\(label) \(bucket)")
            }
        }
        if let newest = newestFirst.first { keep(newest.id, "newest snapshot of the job") }
        if let newestVerified { keep(newestVerified, "newest verified snapshot") }
        if let justTaken { keep(justTaken, "the snapshot just taken") }
        // An incremental is restored through its parents: whatever is kept keeps its
        // chain. Newest first, so a parent kept for its child keeps its own parent in turn.
        let byID = Dictionary(newestFirst.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for snapshot in newestFirst where reasons[snapshot.id] != nil {
            if let parent = snapshot.layout.parentID, byID[parent] != nil, reasons[parent] == nil {
                keep(parent, "parent of \(SnapshotID.short(snapshot.id))")
            }
        }
        return newestFirst.map { RetentionDecision(snapshot: $0, keep: reasons[$0.id] != nil,
                                                   reasons: reasons[$0.id] ?? ["not kept by any rule"]) }
    }
}

/// A snapshot its target did not delete (a bucket that denies DeleteObject, a target
/// that cannot be reached or opened). It stays marked `deleting` in the catalog, with
/// the error, and later runs try again: the target's problem, never the schedule's.
public struct DeletionFailure: Sendable {
    public var snapshot: SnapshotRecord
    public var error: String
    public var category: ErrorCategory
}

/// A snapshot retention would delete, left in place because its target still locks some
/// version of its objects (Object Lock): its catalog row stays as it was, and a later prune
/// deletes it once the lock has run out. Reported, never an error.
public struct LockedSnapshot: Sendable {
    public var snapshot: SnapshotRecord
    public var lockedUntil: Date
}

/// What retention did to one job.
public struct RetentionOutcome: Sendable {
    public var plan: [RetentionDecision] = []
    public var deleted: [SnapshotRecord] = []
    public var failed: [DeletionFailure] = []
    public var locked: [LockedSnapshot] = []
    /// Objects of kept snapshots whose lock was pushed out, and why some could not be.
    public var locksExtended = 0
    public var lockProblems: [String] = []
}

/// Deletes snapshots crash-safely: the catalog marks the row, the objects are
/// deleted from the target, then the row is removed (with an audit entry). A
/// crash or a failure in between leaves a marked row that later runs finish.
public struct Pruner {
    public let catalog: Catalog
    /// The target that holds a snapshot (the CLI falls back to the URL the catalog
    /// recorded when its target is no longer in the policy).
    public let openTarget: (SnapshotRecord) throws -> Target

    public init(catalog: Catalog, openTarget: @escaping (SnapshotRecord) throws -> Target) {
        self.catalog = catalog
        self.openTarget = openTarget
    }

    /// What deleting one snapshot came to.
    public enum Result: Sendable {
        case deleted
        case locked(until: Date)
        case failed(DeletionFailure)
    }

    /// Deletes one snapshot unless its target still locks part of it (then nothing is
    /// marked or deleted: the row stays honest). A lock that cannot be read is left to the
    /// deletion itself, which then fails and reports why.
    public func deleteUnlessLocked(_ snapshot: SnapshotRecord, reason: String) async throws -> Result {
        if let target = try? openTarget(snapshot),
           let until = try? await Repository(target: target).lockedUntil(snapshot, now: Date()) {
            return .locked(until: until)
        }
        return try await delete(snapshot, reason: reason).map(Result.failed) ?? .deleted
    }

    /// Deletes one snapshot. Returns nil when it is gone, or why its target did not
    /// delete it. Throws only when the catalog itself fails.
    public func delete(_ snapshot: SnapshotRecord, reason: String) async throws -> DeletionFailure? {
        try catalog.markDeleting(snapshot.id, reason: reason)
        return try await finish(snapshot, reason: reason)
    }

    /// Tries again every deletion left marked by an earlier run (crashed or refused),
    /// except those in `skipping` (already tried in this run); only `jobs`' when given.
    public func resumePending(skipping: Set<String> = [], jobs: Set<String>? = nil) async throws
        -> (finished: [SnapshotRecord], failed: [DeletionFailure]) {
        var finished: [SnapshotRecord] = []
        var failed: [DeletionFailure] = []
        for pending in try catalog.pendingDeletions()
        where !skipping.contains(pending.id) && jobs.map({ $0.contains(pending.snapshot.job) }) ?? true {
            if let failure = try await finish(pending.snapshot, reason: "deletion resumed after an interrupted or failed attempt") {
                failed.append(failure)
            } else {
                finished.append(pending.snapshot)
            }
        }
        return (finished, failed)
    }

    private func finish(_ snapshot: SnapshotRecord, reason: String) async throws -> DeletionFailure? {
        do {
            try await Repository(target: try openTarget(snapshot)).delete(snapshot)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            try catalog.recordDeletionFailure(snapshot.id, error: "\(error)")
            return DeletionFailure(snapshot: snapshot, error: "\(error)", category: (error as? CategorizedError)?.category ?? .failure)
        }
        try catalog.confirmDeleted(snapshot.id, reason: reason)
        return nil
    }
}
