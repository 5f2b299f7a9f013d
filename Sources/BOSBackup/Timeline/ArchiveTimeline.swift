import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The stretch of the archive a timeline walked: one generation on one target,
/// from a restored state to the newest commit that target holds.
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
    /// The generation ended before the newest one began: later commits are in a later generation.
    public var endedBeforeNewest: Bool = false
    /// How long restoring the starting state took, and walking the commits after it.
    public var restoreSeconds: Double = 0
    public var walkSeconds: Double = 0
}

/// `timeline`: the state at `--since` (a generation's base by default) is
/// restored once into scratch, then every later archived commit of that
/// generation on the same target is applied to it in order, and `visit` is
/// told what each did (see `TimelineWalk`). The image is removed afterwards.
public struct ArchiveTimeline {
    public let catalog: Catalog
    public let scratch: String

    public init(catalog: Catalog, scratch: String) {
        self.catalog = catalog
        self.scratch = scratch
    }

    func walk(_ plans: [PointInTimePlan], using restorer: SnapshotRestorer, segmentsOn: (String) throws -> Target,
              baseOn: (SnapshotRecord) throws -> Target,
              begin: (TimelineWalk) throws -> Void,
              visit: @escaping (TimelineWalk, TimelineWalk.Effect) throws -> Void,
              end: (TimelineWalk) throws -> Void = { _ in }) async throws -> TimelineSpan {
        let started = DispatchTime.now().uptimeNanoseconds
        func since(_ start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        let folder = scratch + "/restored"
        try PrivateFolder.prepare(folder)
        let path = folder + "/timeline-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).db"
        defer { unlink(path) }
        let restored = try await PointInTimeRestore(catalog: catalog).restore(plans, into: path, force: false, using: restorer,
                                                                              segmentsOn: segmentsOn, baseOn: baseOn)
        let plan = restored.plan
        var span = TimelineSpan(generation: plan.generation.id, target: plan.target, base: plan.base.id,
                                fromTxid: restored.applied.txid, fromSeen: restored.applied.seenAt ?? plan.generation.startedAt)
        span.restoreSeconds = since(started)
        let walking = DispatchTime.now().uptimeNanoseconds
        let walk = try TimelineWalk(imagePath: path, startSeen: span.fromSeen)
        try begin(walk)
        let repository = Repository(target: try segmentsOn(plan.target))
        for segment in try catalog.segments(generation: plan.generation.id, target: plan.target) where segment.lastTxid > span.fromTxid {
            _ = try await repository.segment(segment) { commit in
                guard commit.txid > span.fromTxid, commit.txid > span.to?.txid ?? 0 else { return }
                let effect = try walk.apply(commit)
                span.to = effect.moment
                span.commits += 1
                try visit(walk, effect)
            }
        }
        let newest = try catalog.generations(database: plan.generation.database, host: plan.generation.host).last?.id
        span.endedBeforeNewest = plan.generation.endedAt != nil && newest != plan.generation.id
        try walk.image.flush()   // the end sees the file as the walk left it
        try end(walk)
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
