import Foundation

/// Where the WAL archive of one database stands on one target: for `status`
/// and the metrics. The lag is how long ago the target last had every commit
/// the WAL held — the commits of that span would be lost with the host now.
public struct ArchiveTargetStatus: Sendable {
    public var database: String
    public var target: String
    public var interval: TimeInterval
    public var generation: String?
    public var lastTxid: Int64?
    public var lastCommitSeen: Date?
    /// The last time the target had everything (nil: never, e.g. no generation yet).
    public var completeUpTo: Date?
    public var lag: TimeInterval?
    /// The newest span between two generations no archive covers (a lost position), and why.
    public var lastGap: (from: Date, to: Date, why: String)?

    /// Behind by more than five intervals (at least a minute): the archiver is not
    /// running, or cannot ship. `status` exits 1 for it, as for an overdue job.
    public var behind: Bool { (lag ?? 0) > max(60, interval * 5) }
}

extension Policy {
    /// Every archive target's state, from the catalog alone (no request to any target).
    public func archiveStatus(catalog: Catalog, now: Date) throws -> [ArchiveTargetStatus] {
        try archives.flatMap { archive in
            let generations = try catalog.generations(database: archive.database, host: host)
            let generation = generations.last
            var lastGap: (from: Date, to: Date, why: String)?
            for (old, new) in zip(generations, generations.dropFirst()) {
                let end = try catalog.coverageEnd(of: old)
                if end < new.startedAt { lastGap = (end, new.startedAt, old.endReason ?? "generation \(SnapshotID.short(old.id)) ended") }
            }
            return try archive.targets.map { destination in
                var status = ArchiveTargetStatus(database: archive.database, target: destination.target, interval: destination.interval)
                status.lastGap = lastGap
                guard let generation else { return status }
                status.generation = generation.id
                let last = try catalog.lastSegment(generation: generation.id, target: destination.target)
                status.lastTxid = last?.lastTxid ?? 0
                status.lastCommitSeen = last?.lastSeen
                status.completeUpTo = generation.endedAt == nil ? try catalog.archiveCheck(generation: generation.id, target: destination.target) : nil
                status.lag = status.completeUpTo.map { max(0, now.timeIntervalSince($0)) }
                return status
            }
        }
    }
}
