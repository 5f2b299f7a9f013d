import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum PointInTimeError: Error, CustomStringConvertible, CategorizedError, Sendable {
    /// No generation covers the time; the nearest restorable points before and after it.
    case notCovered(at: Date, before: Date?, after: Date?)
    case segmentDamaged(key: String, why: String)
    /// `--txid N`: no target holds commit N of the generation.
    case txidNotArchived(txid: Int64, generation: String, newest: Int64)
    case noGeneration(String)

    public var description: String {
        switch self {
        case .notCovered(let at, let before, let after):
            let near = [before.map { "before it: \(ISO8601.string($0))" }, after.map { "after it: \(ISO8601.string($0))" }].compactMap { $0 }
            return "no archive covers \(ISO8601.string(at))" + (near.isEmpty ? " (nothing is archived yet)" : "; the nearest restorable points are \(near.joined(separator: ", "))")
        case .segmentDamaged(let key, let why): return "archived WAL segment \(key) is damaged: \(why); nothing was restored"
        case .txidNotArchived(let txid, let generation, let newest):
            return "txid \(txid) is not in the archive of generation \(SnapshotID.short(generation)) (it holds txids 1…\(newest); 0 is its base snapshot)"
        case .noGeneration(let what): return what
        }
    }
    /// Why a segment is damaged (without the key).
    public var reason: String {
        switch self {
        case .segmentDamaged(_, let why): return why
        default: return description
        }
    }
    public var category: ErrorCategory {
        switch self {
        case .notCovered, .txidNotArchived, .noGeneration: return .input
        case .segmentDamaged: return .mismatch
        }
    }
}

/// What a point-in-time restore will read: a generation's base snapshot,
/// then its archived commits seen at or before `at`, from one target.
public struct PointInTimePlan: Sendable {
    public var generation: WALGeneration
    public var base: SnapshotRecord
    public var target: String
    public var segments: [WALSegmentRecord]
    public var at: Date
    /// The last commit the restore includes (0: the base snapshot alone).
    public var lastTxid: Int64
    public var lastSeen: Date?
}

/// `restore --at TIME`: the state of the last commit the archiver saw at or
/// before TIME. Never a commit seen after it; a time no generation covers is
/// refused with the nearest restorable points.
public struct PointInTimeRestore {
    public let catalog: Catalog

    public init(catalog: Catalog) { self.catalog = catalog }

    /// The newest time any of `targets` covers: what `restore --at latest` restores
    /// (after a host is lost, the last commit that reached a target).
    public func latest(database: String, host: String, targets: [String]) throws -> Date? {
        guard let generation = try catalog.generations(database: database, host: host).last else { return nil }
        var newest: Date?
        for target in targets {
            let end = max(try catalog.lastSegment(generation: generation.id, target: target)?.lastSeen ?? generation.startedAt,
                          try catalog.archiveCheck(generation: generation.id, target: target) ?? generation.startedAt)
            newest = max(newest ?? end, end)
        }
        return newest
    }

    /// Every target's way to the state at `at`, in the order of `targets`: each
    /// target holds a base snapshot of its own, so when one cannot be read the
    /// next can restore the same state.
    public func plans(at: Date, database: String, host: String, targets: [String]) throws -> [PointInTimePlan] {
        var before: Date?, after: Date?
        for generation in try catalog.generations(database: database, host: host).reversed() {
            var found: [PointInTimePlan] = []
            // From when the generation started (after its base snapshots were stored, to the
            // microsecond), not a snapshot's own time: that is kept to the second, and
            // commits a fraction of a second after it are in the base image.
            let start = generation.startedAt
            for target in targets {
                let base = try catalog.base(of: generation, target: target)
                guard let snapshot = try catalog.snapshot(id: base.snapshot) else { continue }
                let segments = try catalog.segments(generation: generation.id, target: target)
                // Covered: up to the last time the target had everything the WAL held.
                let end = max(segments.last?.lastSeen ?? start, try catalog.archiveCheck(generation: generation.id, target: target) ?? start)
                if start <= at && at <= end {
                    let used = segments.filter { $0.firstSeen <= at }
                    let last = used.last
                    found.append(PointInTimePlan(generation: generation, base: snapshot, target: target, segments: used, at: at,
                                                 lastTxid: last?.lastTxid ?? base.baseTxid, lastSeen: last?.lastSeen))
                    continue
                }
                if end <= at { before = max(before ?? end, end) }
                if start >= at { after = min(after ?? start, start) }
            }
            if !found.isEmpty { return found }
        }
        throw PointInTimeError.notCovered(at: at, before: before, after: after)
    }

    /// The state right after commit `txid` of a generation (default: the newest
    /// generation; txids count from 1 in each, 0 is its base snapshot).
    public func plans(txid: Int64, generation id: String?, database: String, host: String, targets: [String]) throws -> [PointInTimePlan] {
        let generations = try catalog.generations(database: database, host: host)
        let chosen: WALGeneration?
        if let id {
            let matching = generations.filter { $0.id.hasPrefix(id.lowercased()) }
            guard matching.count <= 1 else { throw PointInTimeError.noGeneration("generation \(id) is ambiguous: give more of its id") }
            chosen = matching.first
        } else {
            chosen = generations.last
        }
        guard let generation = chosen else {
            throw PointInTimeError.noGeneration(id.map { "no archive generation \($0) of database \(database)" } ?? "database \(database) has no WAL archive yet")
        }
        var newest: Int64 = 0
        var found: [PointInTimePlan] = []
        for target in targets {
            let base = try catalog.base(of: generation, target: target)
            guard let snapshot = try catalog.snapshot(id: base.snapshot) else { continue }
            let segments = try catalog.segments(generation: generation.id, target: target)
            newest = max(newest, segments.last?.lastTxid ?? base.baseTxid)
            // This target's base holds txids up to its own; it restores nothing before that.
            guard txid >= base.baseTxid, txid <= segments.last?.lastTxid ?? base.baseTxid else { continue }
            let used = segments.filter { $0.firstTxid <= txid }
            found.append(PointInTimePlan(generation: generation, base: snapshot, target: target, segments: used, at: .distantFuture,
                                         lastTxid: txid, lastSeen: used.last?.lastSeen))
        }
        guard found.isEmpty else { return found }
        throw PointInTimeError.txidNotArchived(txid: txid, generation: generation.id, newest: newest)
    }

    /// The last commit a roll-forward applied (txid 0: none, the base snapshot alone).
    public struct Applied: Sendable {
        public var txid: Int64 = 0
        public var seenAt: Date?
        public init() {}
        init(txid: Int64, seenAt: Date?) { (self.txid, self.seenAt) = (txid, seenAt) }
    }

    /// Whether every segment of the plan has an index to choose pages from.
    static func readsNewestFirst(_ plan: PointInTimePlan) -> Bool {
        !plan.segments.isEmpty && plan.segments.allSatisfy { $0.index != nil }
    }

    /// Every commit of every segment, in order (the formats without an index).
    func rollForwardWhole(_ plan: PointInTimePlan, target: Target, onto path: String) async throws -> Applied {
        var applied = Applied()
        let file = try FileHandleFD(updating: path)
        var pageCount: UInt32?
        let repository = Repository(target: target)
        // Each page written once (its last version) until 16 MiB of them are held, across
        // segments; a database that shrank is cut when it did (see HeldPages).
        let pages = HeldPages(file: file, pageSize: plan.base.pageSize, limit: 16 << 20)
        for segment in plan.segments {
            // Streamed: one commit in memory at a time; a segment whose SHA-256 turns out wrong at
            // its end throws, and the caller throws the whole file away.
            _ = try await repository.segment(segment) { commit in
                guard commit.txid <= plan.lastTxid && commit.seenAt <= plan.at else { return }
                if let size = pageCount, commit.pageCount < size { try pages.cut(to: commit.pageCount) }
                for page in commit.pages { pages.put(page.number, page.bytes) }
                pageCount = commit.pageCount
                applied = Applied(txid: commit.txid, seenAt: commit.seenAt)
                try pages.flushIfFull()
            }
        }
        try pages.flush()
        if let pageCount { try pages.cut(to: pageCount) }
        try file.sync()
        return applied
    }
}

extension PointInTimeRestore {
    /// How many segments' pages a roll fetches at once (`write`).
    static let segmentsAtOnce = 4

    /// How many segment indexes are read, checked and inflated at once while choosing
    /// pages: a day's archive has thousands, and one core did that for a third of a
    /// `restore --at`.
    static let indexesAtOnce = 8

    /// What the newest-first roll writes: each page's last version at or before the
    /// plan's end (by the segment it is read from), and the sizes the commits left.
    struct ChosenPages: Sendable {
        var applied: Applied?
        /// The size the last applied commit left.
        var finalCount: UInt32 = 0
        /// The smallest size any applied commit left: pages past it not written again after are zeros.
        var floor = UInt32.max
        var wanted: [Int: [IndexedCommit.Page]] = [:]
    }

    /// The newest-first roll's choice, from the indexes alone (newest segment, newest
    /// commit first): each page's last version at or before the plan's end. Indexes are
    /// read a few at a time and taken in order; it needs no base image, so a restore
    /// runs it while the base is fetched. The work is the pages the archive changed, not
    /// every version of them. A page past a size some later commit cut the database to,
    /// and not written again after, ends as zeros, as the forward roll leaves it.
    static func choosePages(_ plan: PointInTimePlan, _ repository: Repository) async throws -> ChosenPages {
        var chosen = ChosenPages()
        var decided = PageNumberSet()
        func take(_ index: [IndexedCommit], of number: Int) {
            for commit in index.reversed() where commit.txid <= plan.lastTxid && commit.seenAt <= plan.at {
                if chosen.applied == nil {
                    chosen.applied = Applied(txid: commit.txid, seenAt: commit.seenAt)
                    chosen.finalCount = commit.pageCount
                }
                // A page past the smallest size a newer commit left ends as zeros whatever older
                // commits wrote (the floor only falls), so it is neither chosen nor kept in the set.
                for page in commit.pages where page.number <= min(chosen.floor, chosen.finalCount) && decided.insert(page.number) {
                    chosen.wanted[number, default: []].append(page)
                }
                chosen.floor = min(chosen.floor, commit.pageCount)
            }
        }
        let order = Array(plan.segments.indices.reversed())
        try await withThrowingTaskGroup(of: (Int, [IndexedCommit]).self) { group in
            var started = 0, inFlight = 0
            var ready: [Int: [IndexedCommit]] = [:]
            // Never more than `indexesAtOnce` read or waiting to be taken: memory stays a few indexes.
            func fill() {
                while started < order.count, inFlight + ready.count < indexesAtOnce {
                    let segment = plan.segments[order[started]], number = order[started]
                    started += 1
                    inFlight += 1
                    group.addTask { (number, try await repository.segmentIndex(segment, segment.index!)) }
                }
            }
            fill()
            for number in order {
                try Task.checkCancellation()   // the base could not be restored: nothing to choose for
                while ready[number] == nil, let (done, index) = try await group.next() {
                    inFlight -= 1
                    ready[done] = index
                }
                take(ready.removeValue(forKey: number) ?? [], of: number)
                fill()
            }
        }
        return chosen
    }

    /// Writes the chosen pages onto `path`, a few segments at a time: on a NAS or a cold
    /// disk much of it is waiting for reads, and inflating and checking pages can use
    /// every core. Each page is in one segment's list only, so the writes never overlap.
    static func write(_ chosen: ChosenPages, _ plan: PointInTimePlan, target: Target, onto path: String) async throws -> Applied {
        guard let applied = chosen.applied else { return Applied() }
        let repository = Repository(target: target)
        let file = try FileHandleFD(updating: path)
        let pageSize = plan.base.pageSize
        guard ftruncate(file.fd, off_t(chosen.floor) * off_t(pageSize)) == 0 else { throw FileError("size", file.path) }
        let jobs = chosen.wanted.sorted { $0.key < $1.key }
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            func start() {
                let (segment, pages) = (plan.segments[jobs[next].key], jobs[next].value)
                next += 1
                group.addTask {
                    try await repository.segmentPages(segment, pages, pageSize: pageSize) { page, bytes in
                        try file.write(bytes, at: Int64(page - 1) * Int64(pageSize))
                    }
                }
            }
            while next < min(segmentsAtOnce, jobs.count) { start() }
            while try await group.next() != nil {
                if next < jobs.count { start() }
            }
        }
        guard ftruncate(file.fd, off_t(chosen.finalCount) * off_t(pageSize)) == 0 else { throw FileError("size", file.path) }
        try file.sync()
        return applied
    }

    /// What `restore(_:…)` gave, and each target that could not give it first.
    public struct Restored: Sendable {
        public var plan: PointInTimePlan
        public var outcome: RestoreOutcome
        public var applied: Applied
        public var unusable: [(target: String, error: String)] = []
        /// The time of the state restored: the last applied commit's, else its base snapshot's.
        public var asOf: Date { applied.seenAt ?? plan.base.takenAt }
    }

    /// Restores the first of `plans` that can be restored: each archive target holds a
    /// base snapshot of its own, so when one is damaged or unreachable the next gives
    /// the same state. An attempt that fails writes nothing at `path`. A mistake in
    /// what was asked (`.input`) is the answer at once; so is the last target's failure.
    /// The plan's commits are written onto the verified copy of the base, each page at its
    /// offset, and the file gets the size the last commit left: segments with an index
    /// (`BOSWAL03`) newest first, each page's last version only (`choosePages`, `write`);
    /// older formats whole, forward (`rollForwardWhole`).
    /// `asDatabase: false`: a scratch image for the timeline (see `SnapshotRestorer`).
    public func restore(_ plans: [PointInTimePlan], into path: String, force: Bool, using restorer: SnapshotRestorer, fullCheck: Bool = false,
                        asDatabase: Bool = true,
                        segmentsOn: (String) throws -> Target, baseOn: (SnapshotRecord) throws -> Target) async throws -> Restored {
        var unusable: [(target: String, error: String)] = []
        for (index, plan) in plans.enumerated() {
            do {
                let segments = try segmentsOn(plan.target)
                var applied = Applied()
                // The pages to write are chosen from the indexes while the base is fetched
                // (both are mostly inflating and checking, and a fetch leaves a core idle).
                let choosing = Self.readsNewestFirst(plan) ? Task { try await Self.choosePages(plan, Repository(target: segments)) } : nil
                defer { choosing?.cancel() }
                let outcome = try await restorer.restore(plan.base, from: try baseOn(plan.base), into: path, force: force, fullCheck: fullCheck,
                                                         asDatabase: asDatabase) { copy in
                    if let choosing {
                        applied = try await Self.write(try await choosing.value, plan, target: segments, onto: copy)
                    } else {
                        applied = try await rollForwardWhole(plan, target: segments, onto: copy)
                    }
                }
                return Restored(plan: plan, outcome: outcome, applied: applied, unusable: unusable)
            } catch {
                guard (error as? CategorizedError)?.category != .input, index + 1 < plans.count else { throw error }
                unusable.append((plan.target, "\(error)"))
            }
        }
        throw PointInTimeError.noGeneration("nothing to restore from")
    }
}
