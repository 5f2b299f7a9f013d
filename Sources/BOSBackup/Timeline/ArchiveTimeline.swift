import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The stretch of the archive a timeline walked on one target: from a restored
/// state through the generations that continue one another, to the newest
/// commit that target holds.
public struct TimelineSpan: Sendable {
    public var generation: String
    public var target: String
    public var base: String
    /// The state the walk started from (txid 0: the base snapshot) and when it was seen.
    public var fromTxid: Int64
    public var fromSeen: Date?
    /// The last commit walked (nil: none after the start).
    public var to: CommitMoment?
    public var commits: Int = 0
    /// The last generation walked (rotated generations follow on from one another).
    public var lastGeneration: String = ""
    /// The walk stopped before the newest generation: the next one does not continue
    /// the last walked (the archive lost its position in between), or it could not be read.
    public var endedBeforeNewest: Bool = false
    /// How long restoring the starting state took, walking the commits after it, and
    /// (within the walk) what was done once at its end (`--lost`: the newest state set
    /// against live): what grows with the commits is the walk without its end.
    public var restoreSeconds: Double = 0
    public var walkSeconds: Double = 0
    public var endSeconds: Double = 0
}

/// `timeline`: the state at `--since` (a generation's base by default) is
/// restored once into scratch, then every later archived commit on the same
/// target is applied to it in order — across rotations into the generations
/// that continue it — and `visit` is told what each did (see `TimelineWalk`),
/// but for the commits `passes` says it would not look at (among those that
/// leave the schema and the kept shapes alone): those are only written.
/// `segmentStarts` is told a folder's segment's commits before they are walked.
/// The image is removed afterwards. `end` sees it as the walk left it, the pages
/// held in memory not yet in the file (`image.flush()` first, to read it
/// through SQLite).
public struct ArchiveTimeline {
    public let catalog: Catalog
    public let scratch: String

    public init(catalog: Catalog, scratch: String) {
        self.catalog = catalog
        self.scratch = scratch
    }

    func walk(_ plans: [PointInTimePlan], using restorer: SnapshotRestorer, segmentsOn: (String) throws -> Target,
              baseOn: (SnapshotRecord) throws -> Target,
              begin: (TimelineWalk) throws -> Void = { _ in },
              watching: TimelineWalk.Shapes = .every,
              passes: @escaping (TimelineCommit) throws -> Bool = { _ in false },
              segmentStarts: ([TimelineCommit]) throws -> Void = { _ in },
              visit: @escaping (TimelineWalk, TimelineWalk.Effect) throws -> Void,
              end: (TimelineWalk) throws -> Void = { _ in }) async throws -> TimelineSpan {
        let started = DispatchTime.now().uptimeNanoseconds
        func since(_ start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        let folder = scratch + "/restored"
        try PrivateFolder.prepare(folder)
        let path = folder + "/timeline-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).db"
        defer { unlink(path) }
        // Only the walk reads this image, page by page, each page checked as it is parsed:
        // its bytes are proven (SHA-256), and a quick_check of the whole was 2–3 s of every
        // timeline on a day's archive.
        let restored = try await PointInTimeRestore(catalog: catalog).restore(plans, into: path, force: false, using: restorer, asDatabase: false,
                                                                              segmentsOn: segmentsOn, baseOn: baseOn)
        let plan = restored.plan
        var span = TimelineSpan(generation: plan.generation.id, target: plan.target, base: plan.base.id,
                                fromTxid: restored.applied.txid, fromSeen: restored.applied.seenAt ?? plan.generation.startedAt)
        span.restoreSeconds = since(started)
        let walking = DispatchTime.now().uptimeNanoseconds
        let walk = try TimelineWalk(imagePath: path, startSeen: span.fromSeen, watching: watching)
        // Each page the walk reads is checked (SHA-256) on the other core, and every check is
        // done before anything is returned: a damaged segment is the answer, whatever else failed.
        let verifier = PageVerifier()
        walk.image.verifier = verifier
        do {
            try begin(walk)
            let segmentTarget = try segmentsOn(plan.target)
            let repository = Repository(target: segmentTarget)
            // A folder's segments are read by their indexes, a page when the walk reads it.
            let stored = (segmentTarget as? ReadsRangesNow).map(StoredPages.init)
            walk.image.stored = stored
            let indexes = (segmentTarget as? ReadsRangesNow).map { SegmentIndexAhead(target: $0, repository: repository) }
            defer { indexes?.stop() }
            let generations = try catalog.generations(database: plan.generation.database, host: plan.generation.host)
            var generation = plan.generation
            var after = restored.applied.txid
            while true {
                // A rotated generation continues in the next: its base on this target is the state
                // right after a txid of this one (the archive's own pinned checksum), so the walk
                // stops there and goes on with the next generation's commits, on the same image.
                let next = generations.drop { $0.id != generation.id }.dropFirst().first
                let nextBase = try next.map { try catalog.base(of: $0, target: plan.target) }
                let handOver = try nextBase.flatMap { base in try catalog.checks(generation: generation.id).first { $0.snapshot == base.snapshot }?.txid }
                let last = handOver ?? .max
                let segments = try catalog.segments(generation: generation.id, target: plan.target).filter { $0.lastTxid > after && $0.firstTxid <= last }
                let readAhead = (segmentTarget as? ReadsRangesNow).map { SegmentReadAhead(target: $0, segments: segments) }
                for (number, segment) in segments.enumerated() {
                    readAhead?.reached(number)
                    let index = try indexes?.take(segment)
                    if number + 1 < segments.count { indexes?.prefetch(segments[number + 1]) }
                    let id = generation.id
                    try await repository.timelineCommits(of: segment, pageSize: plan.base.pageSize, stored: stored, index: index,
                                                         starting: segmentStarts) { commit in
                        guard commit.txid > after, commit.txid <= last else { return }
                        after = commit.txid
                        span.commits += 1
                        // A commit the visitor will not look at that leaves the schema and the kept
                        // shapes alone is only written.
                        if walk.leavesShapesAlone(commit), try passes(commit) {
                            span.to = try walk.pass(commit, generation: id)
                            return
                        }
                        let effect = try walk.apply(commit, generation: id)
                        span.to = effect.moment
                        try visit(walk, effect)
                    }
                }
                span.lastGeneration = generation.id
                guard let next, let nextBase, let handOver, after == handOver else { break }
                (generation, after) = (next, nextBase.baseTxid)
            }
            span.endedBeforeNewest = generations.last?.id != generation.id
            let ending = DispatchTime.now().uptimeNanoseconds
            try end(walk)
            span.endSeconds = since(ending)
            try verifier.finish()
        } catch {
            try verifier.finish()
            throw error
        }
        span.walkSeconds = since(walking)
        return span
    }
}

extension TrackedTable {
    /// Whether a row's key is the one asked for, each part as the operator typed it.
    func matches(_ key: [SQLValue], _ asked: [String]) -> Bool {
        key.count == asked.count && zip(key, asked).allSatisfy { value, text in
            switch value {
            case .blob(let bytes): return bytes.hex == text.lowercased()
            case .null: return text.uppercased() == "NULL"
            case .real(let v): return Double(text) == v
            default: return value.string == text
            }
        }
    }

    /// `WHERE "a" = ? AND "b" = ?` (or `rowid = ?`) for this table's key, and its columns in order.
    var selectByKey: String {
        let condition = keyPositions.isEmpty && rowidAlias == nil ? "rowid = ?"
            : keyNames.map { Database.quote($0) + " = ?" }.joined(separator: " AND ")
        return "SELECT \(columns.map(Database.quote).joined(separator: ", ")) FROM \(Database.quote(name)) WHERE \(condition)"
    }
}

/// Unknown table or a key of the wrong shape: the operator's input, exit 2.
public struct TimelineInputError: Error, CustomStringConvertible, CategorizedError, Sendable {
    public let description: String
    public var category: ErrorCategory { .input }
}
