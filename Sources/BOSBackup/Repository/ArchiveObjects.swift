import Foundation

/// `<host>/<database>/wal/<generation>/generation.json`: what a generation is
/// built on, on every target it ships to, so the archive can be re-cataloged
/// from a target alone (the host and its catalog lost).
public struct GenerationMarker: Codable, Equatable, Sendable {
    public var format = 1
    public var generation: String
    public var host: String
    public var database: String
    public var baseSnapshot: String
    public var salt1: UInt32
    public var salt2: UInt32
    public var baseFrame: Int
    /// Unix seconds, to the microsecond (coverage starts here).
    public var startedAt: Double
    public var reason: String
    /// This target's own base snapshot: it holds txids 1…`targetBaseTxid`, pinned at `targetBaseFrame`.
    public var target: String
    public var targetBaseSnapshot: String
    public var targetBaseTxid: Int64
    public var targetBaseFrame: Int
    /// When this generation continues an older one: this target's base is the state
    /// right after txid `continuesTxid` of generation `continuesGeneration` (a pinned checksum of it).
    public var continuesGeneration: String?
    public var continuesTxid: Int64?

    enum CodingKeys: String, CodingKey {
        case format, generation, host, database, salt1, salt2, reason, target
        case baseSnapshot = "base_snapshot", baseFrame = "base_frame", startedAt = "started_at"
        case targetBaseSnapshot = "target_base_snapshot", targetBaseTxid = "target_base_txid", targetBaseFrame = "target_base_frame"
        case continuesGeneration = "continues_generation", continuesTxid = "continues_txid"
    }

    public init(_ g: WALGeneration, base: WALBase, reason: String, continues: (generation: String, txid: Int64)? = nil) {
        continuesGeneration = continues?.generation
        continuesTxid = continues.map { $0.txid + base.baseTxid }
        (generation, host, database, baseSnapshot) = (g.id, g.host, g.database, g.baseSnapshot)
        (salt1, salt2, baseFrame, startedAt, self.reason) = (g.salt1, g.salt2, g.baseFrame, g.startedAt.timeIntervalSince1970, reason)
        (target, targetBaseSnapshot, targetBaseTxid, targetBaseFrame) = (base.target, base.snapshot, base.baseTxid, base.frame)
    }

    /// This target's base, under the target name it is re-cataloged as.
    public func base(target name: String) -> WALBase {
        WALBase(generation: generation, target: name, snapshot: targetBaseSnapshot, baseTxid: targetBaseTxid, salt1: salt1, salt2: salt2,
                frame: targetBaseFrame)
    }

    public var walGeneration: WALGeneration {
        WALGeneration(id: generation, database: database, host: host, baseSnapshot: baseSnapshot, salt1: salt1, salt2: salt2,
                      baseFrame: baseFrame, startedAt: Date(timeIntervalSince1970: startedAt), endedAt: nil, endReason: nil)
    }
}

extension RepositoryNamespace {
    public var walPrefix: String { "\(host)/\(database)/wal/" }

    public func generationMarkerKey(_ generation: String) -> String { walPrefix + generation + "/generation.json" }

    /// The generation and txids a segment key names (nil: not a segment key of this namespace).
    func parseSegmentKey(_ key: String) -> (generation: String, first: Int64, last: Int64)? {
        guard key.hasPrefix(walPrefix) else { return nil }
        let parts = key.dropFirst(walPrefix.count).split(separator: "/")
        guard parts.count == 2, parts[1].hasSuffix(".wal.gz") || parts[1].hasSuffix(".wal.gz.enc") else { return nil }
        let txids = parts[1].prefix(33).split(separator: "-")
        guard txids.count == 2, let first = Int64(txids[0]), let last = Int64(txids[1]) else { return nil }
        return (String(parts[0]), first, last)
    }
}

/// A segment as read back: its page size, link and commits (without their pages
/// unless asked for), and the SHA-256 and size of the stored gzip stream.
struct ReadSegment {
    var pageSize: Int
    var link: SegmentLink?
    var commits: [ArchivedCommit]
    var storedSHA256: String
    var storedBytes: Int64
    /// `BOSWAL03`: the segment has an index (`segmentIndexRef` finds it).
    var indexed = false
}

extension Repository {
    public func putGenerationMarker(_ marker: GenerationMarker) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let key = RepositoryNamespace(host: marker.host, database: marker.database).generationMarkerKey(marker.generation)
        try await target.put(key: key, data: try encoder.encode(marker))
    }

    public func generationMarker(key: String) async throws -> GenerationMarker {
        let data = try await target.get(key: key)
        do { return try JSONDecoder().decode(GenerationMarker.self, from: data) } catch {
            throw RepositoryError.unreadableManifest("\(key) is not a readable generation marker: \(error)")
        }
    }

    /// Reads and decodes a segment as it arrives, handing each commit (with its pages)
    /// to `commit` when given, else keeping the commits without pages. Missing, not gzip,
    /// or not a segment: `segmentDamaged` naming it (found damage, not "could not check").
    func readSegment(key: String, commit: ((ArchivedCommit) throws -> Void)? = nil) async throws -> ReadSegment {
        var stored = SHA256Stream()
        var size: Int64 = 0
        var stream = WALSegment.Stream()
        stream.keepPages = commit != nil
        var kept: [ArchivedCommit] = []
        let inflater = try GzipMemberInflater { raw in try stream.feed(raw) { try commit?($0) ?? kept.append($0) } }
        do {
            try await target.read(key: key) { chunk in
                stored.update(chunk)
                size += Int64(chunk.count)
                try inflater.feed(chunk)
            }
            try inflater.finish()
            try stream.finish()
        } catch TargetError.notFound {
            throw PointInTimeError.segmentDamaged(key: key, why: "it is missing")
        } catch let error as GzipStreamInflater.Failure {
            throw PointInTimeError.segmentDamaged(key: key, why: "\(error)")
        } catch let error as EncryptionError where error.category == .mismatch {
            throw PointInTimeError.segmentDamaged(key: key, why: "\(error)")
        } catch let error as WALSegment.FormatError {
            throw PointInTimeError.segmentDamaged(key: key, why: "\(error)")
        }
        return ReadSegment(pageSize: stream.pageSize ?? 0, link: stream.link, commits: kept, storedSHA256: stored.hex(), storedBytes: size,
                           indexed: stream.tagged)
    }

    /// A cataloged segment, refused unless its stored bytes are the ones shipped. With
    /// `commit`, each commit is handed over as it arrives, before the SHA-256 is known:
    /// the caller must throw its work away when this throws (a restore writes a temporary file).
    func segment(_ record: WALSegmentRecord, commit: ((ArchivedCommit) throws -> Void)? = nil) async throws -> ReadSegment {
        let read = try await readSegment(key: record.objectKey, commit: commit)
        guard read.storedSHA256 == record.sha256 else {
            throw PointInTimeError.segmentDamaged(key: record.objectKey, why: "its SHA-256 is not the one recorded when it was shipped")
        }
        return read
    }
}
