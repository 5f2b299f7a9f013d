import Foundation

/// `retain:` of an archive entry: a generation goes when the newest time it
/// covers is older than `retain` (never the newest generation), with its
/// segments and marker on every target; then the base snapshots (job
/// `archive`) no remaining generation starts from and no kept base's chain
/// needs. Whole generations only: `base_every` bounds how long one is.
public struct ArchiveRetention {
    public struct Outcome: Sendable {
        public var generations: [WALGeneration] = []
        public var segments = 0
        public var bases: [SnapshotRecord] = []
        public var failed: [DeletionFailure] = []
        /// Objects a target did not delete (unlisted garbage now), and why.
        public var leftovers: [(key: String, why: String)] = []
        /// Generations left in place because a target still locks their newest segment (Object
        /// Lock): kept, cataloged as they were, and removed by a later prune.
        public var locked: [(generation: WALGeneration, until: Date)] = []
        /// Locks of the base snapshots the remaining generations need that could not be extended.
        public var lockProblems: [String] = []
    }

    public let catalog: Catalog
    public let clock: Clock
    public let openTarget: (String) throws -> Target
    public let pruner: Pruner

    public init(catalog: Catalog, clock: Clock, openTarget: @escaping (String) throws -> Target, pruner: Pruner) {
        (self.catalog, self.clock, self.openTarget, self.pruner) = (catalog, clock, openTarget, pruner)
    }

    /// What would go (`dryRun`), or goes.
    public func apply(_ archive: Policy.Archive, host: String, dryRun: Bool = false) async throws -> Outcome {
        var outcome = Outcome()
        guard let retain = archive.retain else {
            if !dryRun { outcome.lockProblems = try await extendBaseLocks(needed: neededBases(), host: host, archive) }
            return outcome
        }
        let cutoff = clock.now().addingTimeInterval(-retain)
        let generations = try catalog.generations(database: archive.database, host: host)
        for generation in generations.dropLast() where generation.endedAt != nil {
            guard try catalog.coverageEnd(of: generation) < cutoff else { continue }
            var objects: [(target: String, key: String)] = []
            for target in try catalog.segmentTargets(generation: generation.id) {
                objects += try catalog.segments(generation: generation.id, target: target).map { (target, $0.objectKey) }
            }
            if let until = await lockedUntil(objects) {
                outcome.locked.append((generation, until))
                continue
            }
            outcome.generations.append(generation)
            outcome.segments += objects.count
            if dryRun { continue }
            let namespace = RepositoryNamespace(host: host, database: archive.database)
            let markerTargets = Set(objects.map(\.target) + archive.targets.map(\.target))
            try catalog.removeGeneration(generation.id)
            try catalog.addAudit(action: "prune", snapshotID: generation.baseSnapshot,
                                 detail: "archive generation \(generation.id) removed: it covers nothing newer than retain (\(Duration.format(retain)))")
            for (target, key) in objects + markerTargets.map({ ($0, namespace.generationMarkerKey(generation.id)) }) {
                do { try await Repository(target: openTarget(target)).deleteObject(key: key) } catch { outcome.leftovers.append((key, "\(error)")) }
            }
        }
        // Base snapshots nothing needs any more: not a remaining generation's base, not in
        // a remaining base's chain, and not newer than the newest one (the next base's parent).
        var remaining = try catalog.baseSnapshotIDs()
        if dryRun { for generation in outcome.generations { remaining.subtract(try catalog.baseSnapshotIDs(generation: generation.id)) } }
        let needed = try neededBases(remaining)
        let bases = try archiveBases(archive, host: host)
        let newestNeeded = bases.filter { needed.contains($0.id) }.map(\.takenAt).max() ?? .distantFuture
        for base in bases where !needed.contains(base.id) && base.takenAt < newestNeeded {
            outcome.bases.append(base)
            if dryRun { continue }
            if let failure = try await pruner.delete(base, reason: "no archive generation starts from it any more") { outcome.failed.append(failure) }
        }
        if !dryRun { outcome.lockProblems = try await extendBaseLocks(needed: needed, host: host, archive) }
        return outcome
    }

    /// The base snapshots the remaining generations start from, with their chains.
    private func neededBases(_ remaining: Set<String>? = nil) throws -> Set<String> {
        var needed = Set<String>()
        for id in try remaining ?? catalog.baseSnapshotIDs() {
            if let base = try catalog.snapshot(id: id) { needed.formUnion(try catalog.chain(of: base).map(\.id)) }
        }
        return needed
    }

    private func archiveBases(_ archive: Policy.Archive, host: String) throws -> [SnapshotRecord] {
        try catalog.snapshots(job: Policy.archiveJobName)
            .filter { ($0.layout.database ?? archive.database) == archive.database && ($0.layout.host ?? host) == host }
    }

    /// A needed base snapshot stays locked while it is needed, as a kept job snapshot does
    /// (segments are not extended one by one: see DESIGN "Immutable cloud copies").
    private func extendBaseLocks(needed: Set<String>, host: String, _ archive: Policy.Archive) async throws -> [String] {
        var problems: [String] = []
        for base in try archiveBases(archive, host: host) where needed.contains(base.id) {
            guard let target = try? pruner.openTarget(base), target.locksObjects else { continue }
            do {
                _ = try await Repository(target: target).extendLocks(of: base, now: Date())
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                problems.append("lock of base snapshot \(base.shortID) on \(base.target) not extended: \(error)")
            }
        }
        return problems
    }

    /// When the lock on a generation's segments ends, if any target still holds one: its last
    /// segment on each target is checked (segments are written in order, each locked for the
    /// same time, so the last is locked longest). A lock that cannot be read is left to the
    /// deletion, which then reports why.
    private func lockedUntil(_ objects: [(target: String, key: String)]) async -> Date? {
        var last: [String: String] = [:]
        for (target, key) in objects { last[target] = key }
        var latest: Date?
        for (target, key) in last {
            guard let store = try? openTarget(target), store.locksObjects,
                  let until = try? await Repository(target: store).lockedUntil(keys: [key], now: Date()) else { continue }
            latest = max(latest ?? until, until)
        }
        return latest
    }
}
