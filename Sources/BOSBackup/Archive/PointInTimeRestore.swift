import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum PointInTimeError: Error, CustomStringConvertible, CategorizedError, Sendable {
    /// No generation covers the time; the nearest restorable points before and after it.
    case notCovered(at: Date, before: Date?, after: Date?)
    case segmentDamaged(key: String, why: String)

    public var description: String {
        switch self {
        case .notCovered(let at, let before, let after):
            let near = [before.map { "before it: \(ISO8601.string($0))" }, after.map { "after it: \(ISO8601.string($0))" }].compactMap { $0 }
            return "no archive covers \(ISO8601.string(at))" + (near.isEmpty ? " (nothing is archived yet)" : "; the nearest restorable points are \(near.joined(separator: ", "))")
        case .segmentDamaged(let key, let why): return "archived WAL segment \(key) is damaged: \(why); nothing was restored"
        }
    }
    public var category: ErrorCategory {
        switch self {
        case .notCovered: return .input
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

    public func plan(at: Date, database: String, host: String, targets: [String]) throws -> PointInTimePlan {
        var before: Date?, after: Date?
        for generation in try catalog.generations(database: database, host: host).reversed() {
            guard let base = try catalog.snapshot(id: generation.baseSnapshot) else { continue }
            // From when the generation started (after its base snapshot was stored, to the
            // microsecond), not the snapshot's own time: that is kept to the second, and
            // commits a fraction of a second after it are in the base image.
            let start = generation.startedAt
            for target in targets {
                let segments = try catalog.segments(generation: generation.id, target: target)
                // Covered: up to the last time the target had everything the WAL held.
                let end = max(segments.last?.lastSeen ?? start, try catalog.archiveCheck(generation: generation.id, target: target) ?? start)
                if start <= at && at <= end {
                    let used = segments.filter { $0.firstSeen <= at }
                    let last = used.last
                    return PointInTimePlan(generation: generation, base: base, target: target, segments: used, at: at,
                                           lastTxid: last?.lastTxid ?? 0, lastSeen: last?.lastSeen)
                }
                if end <= at { before = max(before ?? end, end) }
                if start >= at { after = min(after ?? start, start) }
            }
        }
        throw PointInTimeError.notCovered(at: at, before: before, after: after)
    }

    /// Writes the plan's commits onto `path` (a verified copy of the base snapshot),
    /// each page at its offset, and sets the size the last commit left.
    public func rollForward(_ plan: PointInTimePlan, target: Target, onto path: String) async throws {
        let file = try FileHandleFD(updating: path)
        var pageCount: UInt32?
        var pageSize = plan.base.pageSize
        for segment in plan.segments {
            var stored = SHA256Stream()
            var raw = Data()
            let inflater = try GzipStreamInflater { raw.append(contentsOf: $0) }
            do {
                try await target.read(key: segment.objectKey) { chunk in
                    stored.update(chunk)
                    try inflater.feed(chunk)
                }
                try inflater.finish()
            } catch TargetError.notFound {
                throw PointInTimeError.segmentDamaged(key: segment.objectKey, why: "it is missing")
            } catch let error as GzipStreamInflater.Failure {
                throw PointInTimeError.segmentDamaged(key: segment.objectKey, why: "\(error)")
            }
            guard stored.hex() == segment.sha256 else {
                throw PointInTimeError.segmentDamaged(key: segment.objectKey, why: "its SHA-256 is not the one recorded when it was shipped")
            }
            let decoded: (pageSize: Int, commits: [ArchivedCommit])
            do { decoded = try WALSegment.decode(raw) } catch { throw PointInTimeError.segmentDamaged(key: segment.objectKey, why: "\(error)") }
            pageSize = decoded.pageSize
            for commit in decoded.commits where commit.txid <= plan.lastTxid && commit.seenAt <= plan.at {
                for page in commit.pages {
                    try page.bytes.withUnsafeBytes { try file.write($0, at: Int64(page.number - 1) * Int64(decoded.pageSize)) }
                }
                pageCount = commit.pageCount
            }
        }
        if let pageCount {
            guard ftruncate(file.fd, off_t(pageCount) * off_t(pageSize)) == 0 else { throw FileError("size", path) }
        }
        try file.sync()
    }
}
