import Foundation

/// A point-in-time restore in a drill: a random second of the newest archive
/// generation restored from one target alone (its base snapshot and segments),
/// timed; the incident a WAL archive is for.
public struct PointInTimeSample: Sendable {
    public var database: String
    public var at: Date
    public var generation: String?
    public var txid: Int64 = 0
    public var seconds: Double = 0
    public var rows: Int64 = 0
    /// What kept it from passing (nil: passed).
    public var problem: String?
    /// Damage found (a segment or base that is not what was stored), not "could not check".
    public var damaged = false
    public var ok: Bool { problem == nil }
}

public struct PointInTimeDrill {
    public let catalog: Catalog
    public let policy: Policy
    public let restorer: SnapshotRestorer
    public let scratch: String
    public let openTarget: (String) throws -> Target
    public let openSnapshotTarget: (SnapshotRecord) throws -> Target

    public init(catalog: Catalog, policy: Policy, restorer: SnapshotRestorer, scratch: String,
                openTarget: @escaping (String) throws -> Target, openSnapshotTarget: @escaping (SnapshotRecord) throws -> Target) {
        (self.catalog, self.policy, self.restorer, self.scratch) = (catalog, policy, restorer, scratch)
        (self.openTarget, self.openSnapshotTarget) = (openTarget, openSnapshotTarget)
    }

    /// One sample per database archived to `target`; one whose archive holds nothing yet fails.
    public func samples<R: RandomNumberGenerator>(target: String, using rng: inout R) async throws -> [PointInTimeSample] {
        var samples: [PointInTimeSample] = []
        let pitr = PointInTimeRestore(catalog: catalog)
        for archive in policy.archives where archive.targets.contains(where: { $0.target == target }) {
            guard let generation = try catalog.generations(database: archive.database, host: policy.host).last else {
                samples.append(PointInTimeSample(database: archive.database, at: Date(), problem: "the archive of \(archive.database) holds nothing yet"))
                continue
            }
            let end = try pitr.latest(database: archive.database, host: policy.host, targets: [target]) ?? generation.startedAt
            let span = max(0, end.timeIntervalSince(generation.startedAt))
            var sample = PointInTimeSample(database: archive.database,
                                           at: generation.startedAt.addingTimeInterval(Double.random(in: 0...span, using: &rng)),
                                           generation: generation.id)
            let started = Date()
            let path = scratch + "/drill-at-\(UInt32.random(in: 0...UInt32.max, using: &rng)).db"
            do {
                try PrivateFolder.prepare(scratch)
                defer { unlink(path) }
                let plans = try pitr.plans(at: sample.at, database: archive.database, host: policy.host, targets: [target])
                let restored = try await pitr.restore(plans, into: path, force: false, using: restorer,
                                                      segmentsOn: openTarget, baseOn: openSnapshotTarget)
                sample.txid = restored.applied.txid
                sample.rows = restored.outcome.tables.values.reduce(0, +)
            } catch {
                sample.problem = "\(error)"
                sample.damaged = (error as? CategorizedError)?.category == .mismatch
            }
            sample.seconds = Date().timeIntervalSince(started)
            samples.append(sample)
        }
        return samples
    }
}
