import Foundation

/// What `verify --chain` found in a database's WAL archive.
public struct ArchiveChainReport: Sendable {
    /// A segment that is missing, flipped, cut short or out of its chain; a restore across it is refused.
    public struct Damage: Sendable {
        public var target: String
        public var generation: String
        public var key: String
        public var why: String
        /// The commits a restore can no longer reach past it.
        public var txids: ClosedRange<Int64>
        public var seen: ClosedRange<Date>
    }
    /// A span between generations no archive covers (a lost position): not damage, but named.
    public struct Gap: Sendable {
        public var target: String
        public var from: Date
        public var to: Date
        public var why: String
    }
    /// One generation's archive on one target, as checked.
    public struct Chain: Sendable {
        public var target: String
        public var generation: String
        public var segments = 0
        public var commits: Int64 = 0
        public var bytes: Int64 = 0
        public var coveredFrom: Date
        public var coveredTo: Date
    }
    public var chains: [Chain] = []
    public var damage: [Damage] = []
    public var gaps: [Gap] = []
    public var ok: Bool { damage.isEmpty }
}

/// `verify --chain`: every segment of every generation on every archive
/// target read back and checked — its SHA-256 against the catalog, its gzip,
/// its format, its link (generation, previous segment's SHA-256, the WAL
/// position it resumes from), txid continuity within and across segments —
/// and the spans between generations listed. A target that cannot be read
/// is an error ("could not check"), never damage.
public struct ArchiveChainVerifier {
    public let catalog: Catalog
    public let openTarget: (String) throws -> Target

    public init(catalog: Catalog, openTarget: @escaping (String) throws -> Target) {
        self.catalog = catalog
        self.openTarget = openTarget
    }

    public func verify(database: String, host: String, targets: [String]) async throws -> ArchiveChainReport {
        var report = ArchiveChainReport()
        let generations = try catalog.generations(database: database, host: host)
        for target in targets {
            let repository = Repository(target: try openTarget(target))
            var previousEnd: (Date, WALGeneration)?
            for generation in generations {
                let chain = try await check(generation, on: target, repository, &report)
                if let (end, before) = previousEnd, chain.coveredFrom > end {
                    report.gaps.append(.init(target: target, from: end, to: chain.coveredFrom,
                                             why: before.endReason ?? "generation \(SnapshotID.short(before.id)) ended"))
                }
                previousEnd = (chain.coveredTo, generation)
                report.chains.append(chain)
            }
        }
        return report
    }

    private func check(_ generation: WALGeneration, on target: String, _ repository: Repository,
                       _ report: inout ArchiveChainReport) async throws -> ArchiveChainReport.Chain {
        let records = try catalog.segments(generation: generation.id, target: target)
        let checked = try catalog.archiveCheck(generation: generation.id, target: target)
        var chain = ArchiveChainReport.Chain(target: target, generation: generation.id, coveredFrom: generation.startedAt,
                                             coveredTo: max(records.last?.lastSeen ?? generation.startedAt, checked ?? generation.startedAt))
        let base = try catalog.base(of: generation, target: target)
        var previous: WALSegmentRecord?
        var expected = base.baseTxid + 1
        for record in records {
            func damaged(_ why: String) {
                report.damage.append(.init(target: target, generation: generation.id, key: record.objectKey, why: why,
                                           txids: record.firstTxid...max(record.firstTxid, record.lastTxid),
                                           seen: record.firstSeen...max(record.firstSeen, record.lastSeen)))
            }
            defer { previous = record; expected = record.lastTxid + 1 }
            if record.firstTxid != expected {
                damaged("txids \(expected)…\(record.firstTxid - 1) are in no segment before it")
            }
            let decoded: ReadSegment
            do { decoded = try await repository.segment(record) } catch let error as PointInTimeError {
                damaged(error.reason)
                continue
            }
            chain.segments += 1
            chain.bytes += record.bytes
            chain.commits += Int64(decoded.commits.count)
            if let problem = Self.linkProblem(decoded, record: record, previous: previous, base: base) { damaged(problem) }
        }
        return chain
    }

    /// What is wrong with a segment's own account of where it sits, if anything.
    static func linkProblem(_ segment: ReadSegment, record: WALSegmentRecord, previous: WALSegmentRecord?,
                            base: WALBase) -> String? {
        let txids = segment.commits.map(\.txid)
        guard let first = txids.first, let last = txids.last else { return "it holds no commit" }
        if first != record.firstTxid || last != record.lastTxid || txids != Array(first...last) {
            return "it holds txids \(first)…\(last) (not one after another, or not the \(record.firstTxid)…\(record.lastTxid) its name and catalog row say)"
        }
        if zip(segment.commits, segment.commits.dropFirst()).contains(where: { $0.seenAt > $1.seenAt }) {
            return "its commits' seen-at times go backwards"
        }
        if Int64(segment.commits[segment.commits.count - 1].pageCount) != record.pageCount {
            return "its last commit leaves \(segment.commits.last!.pageCount) pages, the catalog says \(record.pageCount)"
        }
        guard let link = segment.link else { return nil }   // a BOSWAL01 segment carries no link
        if link.generation != record.generation { return "it belongs to generation \(SnapshotID.short(link.generation))" }
        if link.previousSHA256 != previous?.sha256 {
            return previous.map { "it does not follow \($0.objectKey) (its previous-segment SHA-256 differs)" } ?? "it names a previous segment, but is the first"
        }
        if previous == nil, link.from.salt1 != base.salt1 || link.from.salt2 != base.salt2 || link.from.frame != base.frame {
            return "it resumes from WAL frame \(link.from.frame), the base snapshot it follows pinned frame \(base.frame)"
        }
        if let previous, link.from.salt1 != previous.position.salt1 || link.from.salt2 != previous.position.salt2
            || link.from.frame != previous.position.frame {
            return "it resumes from WAL frame \(link.from.frame), the segment before it ended at frame \(previous.position.frame)"
        }
        if link.to != record.position { return "it ends at WAL frame \(link.to.frame), the catalog says \(record.position.frame)" }
        return nil
    }
}
