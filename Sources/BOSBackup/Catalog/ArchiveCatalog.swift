import Foundation

/// One unbroken run of archived commits on top of a base snapshot.
public struct WALGeneration: Equatable, Sendable {
    public var id: String
    public var database: String
    public var host: String
    public var baseSnapshot: String
    /// The WAL commit the base snapshot pinned: the first archived commit follows frame `baseFrame`.
    public var salt1: UInt32
    public var salt2: UInt32
    public var baseFrame: Int
    public var startedAt: Date
    public var endedAt: Date?
    public var endReason: String?
}

/// The base snapshot one target's archive of a generation starts from: it
/// holds txids 1…`baseTxid` (0 on the generation's first target), pinned at
/// WAL frame `frame` with these salts.
public struct WALBase: Equatable, Sendable {
    public var generation: String
    public var target: String
    public var snapshot: String
    public var baseTxid: Int64
    public var salt1: UInt32
    public var salt2: UInt32
    public var frame: Int
}

/// One shipped segment: whole commits `firstTxid…lastTxid` of a generation on one target.
public struct WALSegmentRecord: Equatable, Sendable {
    public var generation: String
    public var target: String
    public var objectKey: String
    public var firstTxid: Int64
    public var lastTxid: Int64
    public var firstSeen: Date
    public var lastSeen: Date
    /// Where the next segment to this target resumes: after this frame of the WAL with
    /// these salts, with this running checksum (a WAL restart the archiver followed
    /// changes the salts within one generation).
    public var position: WALPosition
    public var lastFrame: Int { position.frame }
    /// Database size in pages after the last commit.
    public var pageCount: Int64
    public var bytes: Int64
    /// Of the gzip stream (before encryption), like a snapshot's.
    public var sha256: String
    public var shippedAt: Date
    /// A `BOSWAL03` segment's index (nil: an older format, read whole).
    public var index: SegmentIndexRef? = nil
}

extension Catalog {
    public func insert(_ g: WALGeneration) throws {
        try db.run("""
            INSERT INTO wal_generations (id, database_name, host, base_snapshot, salt1, salt2, base_frame, started_at)
            VALUES (?,?,?,?,?,?,?,?)
            """, .text(g.id), .text(g.database), .text(g.host), .text(g.baseSnapshot), .integer(Int64(g.salt1)),
                 .integer(Int64(g.salt2)), .integer(Int64(g.baseFrame)), .real(g.startedAt.timeIntervalSince1970))
    }

    public func insert(_ b: WALBase) throws {
        try db.run("""
            INSERT INTO wal_bases (generation, target, snapshot_id, base_txid, salt1, salt2, frame) VALUES (?,?,?,?,?,?,?)
            ON CONFLICT(generation, target) DO NOTHING
            """, .text(b.generation), .text(b.target), .text(b.snapshot), .integer(b.baseTxid), .integer(Int64(b.salt1)),
                 .integer(Int64(b.salt2)), .integer(Int64(b.frame)))
    }

    /// Where `target`'s archive of the generation starts. A generation from
    /// before schema 8 has one base, the generation's own, for every target.
    public func base(of g: WALGeneration, target: String) throws -> WALBase {
        guard let r = try db.rows("SELECT snapshot_id, base_txid, salt1, salt2, frame FROM wal_bases WHERE generation = ? AND target = ?",
                                  .text(g.id), .text(target)).first else {
            return WALBase(generation: g.id, target: target, snapshot: g.baseSnapshot, baseTxid: 0, salt1: g.salt1, salt2: g.salt2, frame: g.baseFrame)
        }
        return WALBase(generation: g.id, target: target, snapshot: r[0].string ?? "", baseTxid: r[1].int ?? 0,
                       salt1: UInt32(truncatingIfNeeded: r[2].int ?? 0), salt2: UInt32(truncatingIfNeeded: r[3].int ?? 0), frame: Int(r[4].int ?? 0))
    }

    /// The state right after `txid` of `generation` is the image of `snapshot` (a later generation's base).
    public func recordCheck(generation: String, txid: Int64, snapshot: String) throws {
        try db.run("INSERT INTO wal_checks (generation, txid, snapshot_id) VALUES (?,?,?) ON CONFLICT DO NOTHING",
                   .text(generation), .integer(txid), .text(snapshot))
    }

    /// A generation's pinned checksums: (txid, the snapshot whose image that state is), in txid order.
    public func checks(generation: String) throws -> [(txid: Int64, snapshot: String)] {
        try db.rows("SELECT txid, snapshot_id FROM wal_checks WHERE generation = ? ORDER BY txid", .text(generation))
            .map { ($0[0].int ?? 0, $0[1].string ?? "") }
    }

    public func containsGeneration(id: String) throws -> Bool {
        try db.scalar("SELECT count(*) FROM wal_generations WHERE id = ?", .text(id))?.int ?? 0 > 0
    }

    public func endGeneration(_ id: String, at: Date, reason: String) throws {
        try db.run("UPDATE wal_generations SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL",
                   .real(at.timeIntervalSince1970), .text(reason), .text(id))
    }

    /// A database's generations, oldest first.
    public func generations(database: String, host: String) throws -> [WALGeneration] {
        try db.rows("""
            SELECT id, database_name, host, base_snapshot, salt1, salt2, base_frame, started_at, ended_at, end_reason
            FROM wal_generations WHERE database_name = ? AND host = ? ORDER BY started_at, rowid
            """, .text(database), .text(host)).map { r in
            WALGeneration(id: r[0].string ?? "", database: r[1].string ?? "", host: r[2].string ?? "", baseSnapshot: r[3].string ?? "",
                          salt1: UInt32(truncatingIfNeeded: r[4].int ?? 0), salt2: UInt32(truncatingIfNeeded: r[5].int ?? 0),
                          baseFrame: Int(r[6].int ?? 0), startedAt: Date(timeIntervalSince1970: r[7].double ?? 0),
                          endedAt: r[8].double.map(Date.init(timeIntervalSince1970:)), endReason: r[9].string)
        }
    }

    public func insert(_ s: WALSegmentRecord) throws {
        try db.run("""
            INSERT INTO wal_segments (generation, target, object_key, first_txid, last_txid, first_seen, last_seen, salt1, salt2, last_frame,
              checksum_s0, checksum_s1, page_count, bytes, sha256, shipped_at, index_offset, index_length, index_sha256)
              VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
            """, .text(s.generation), .text(s.target), .text(s.objectKey), .integer(s.firstTxid), .integer(s.lastTxid),
                 .real(s.firstSeen.timeIntervalSince1970), .real(s.lastSeen.timeIntervalSince1970),
                 .integer(Int64(s.position.salt1)), .integer(Int64(s.position.salt2)), .integer(Int64(s.position.frame)),
                 .integer(Int64(s.position.checksum.s0)), .integer(Int64(s.position.checksum.s1)), .integer(s.pageCount), .integer(s.bytes),
                 .text(s.sha256), .real(s.shippedAt.timeIntervalSince1970),
                 SQLValue(s.index?.offset), SQLValue(s.index?.length), SQLValue(s.index?.sha256))
    }

    /// `target` holds every commit of the generation the WAL held at `at`.
    public func recordArchiveCheck(generation: String, target: String, at: Date) throws {
        try db.run("""
            INSERT INTO wal_progress (generation, target, checked_at) VALUES (?,?,?)
            ON CONFLICT(generation, target) DO UPDATE SET checked_at = excluded.checked_at
            """, .text(generation), .text(target), .real(at.timeIntervalSince1970))
    }

    public func archiveCheck(generation: String, target: String) throws -> Date? {
        try db.scalar("SELECT checked_at FROM wal_progress WHERE generation = ? AND target = ?", .text(generation), .text(target))?
            .double.map(Date.init(timeIntervalSince1970:))
    }

    /// A generation's segments on one target, in txid order.
    public func segments(generation: String, target: String) throws -> [WALSegmentRecord] {
        try segmentRows("WHERE generation = ? AND target = ? ORDER BY first_txid", .text(generation), .text(target))
    }

    /// The newest segment of a generation on one target (where its archive resumes).
    public func lastSegment(generation: String, target: String) throws -> WALSegmentRecord? {
        try segmentRows("WHERE generation = ? AND target = ? ORDER BY first_txid DESC LIMIT 1", .text(generation), .text(target)).first
    }

    public func containsSegment(objectKey: String, target: String) throws -> Bool {
        try db.scalar("SELECT count(*) FROM wal_segments WHERE object_key = ? AND target = ?", .text(objectKey), .text(target))?.int ?? 0 > 0
    }

    private func segmentRows(_ filter: String, _ values: SQLValue...) throws -> [WALSegmentRecord] {
        try db.rows("""
            SELECT generation, target, object_key, first_txid, last_txid, first_seen, last_seen, salt1, salt2, last_frame, checksum_s0, checksum_s1,
              page_count, bytes, sha256, shipped_at, index_offset, index_length, index_sha256 FROM wal_segments
            """ + " " + filter, arguments: values).map { r in
            WALSegmentRecord(generation: r[0].string ?? "", target: r[1].string ?? "", objectKey: r[2].string ?? "",
                             firstTxid: r[3].int ?? 0, lastTxid: r[4].int ?? 0,
                             firstSeen: Date(timeIntervalSince1970: r[5].double ?? 0), lastSeen: Date(timeIntervalSince1970: r[6].double ?? 0),
                             position: WALPosition(salt1: UInt32(truncatingIfNeeded: r[7].int ?? 0), salt2: UInt32(truncatingIfNeeded: r[8].int ?? 0),
                                                   frame: Int(r[9].int ?? 0),
                                                   checksum: WALChecksum(s0: UInt32(truncatingIfNeeded: r[10].int ?? 0), s1: UInt32(truncatingIfNeeded: r[11].int ?? 0))),
                             pageCount: r[12].int ?? 0, bytes: r[13].int ?? 0, sha256: r[14].string ?? "",
                             shippedAt: Date(timeIntervalSince1970: r[15].double ?? 0),
                             index: r[16].int.flatMap { offset in r[17].int.flatMap { length in r[18].string.map {
                                 SegmentIndexRef(offset: offset, length: length, sha256: $0) } } })
        }
    }

    /// Targets holding segments of a generation.
    public func segmentTargets(generation: String) throws -> [String] {
        try db.rows("SELECT DISTINCT target FROM wal_segments WHERE generation = ? ORDER BY target", .text(generation)).compactMap { $0[0].string }
    }

    /// Every base snapshot a cataloged generation starts from, on any target.
    public func baseSnapshotIDs() throws -> Set<String> {
        Set(try db.rows("SELECT base_snapshot FROM wal_generations UNION SELECT snapshot_id FROM wal_bases").compactMap { $0[0].string })
    }

    /// The base snapshots of one generation, on any target.
    public func baseSnapshotIDs(generation: String) throws -> Set<String> {
        Set(try db.rows("SELECT base_snapshot FROM wal_generations WHERE id = ? UNION SELECT snapshot_id FROM wal_bases WHERE generation = ?",
                        .text(generation), .text(generation)).compactMap { $0[0].string })
    }

    /// The newest time the generation covers on any target.
    public func coverageEnd(of g: WALGeneration) throws -> Date {
        let segments = try db.scalar("SELECT max(last_seen) FROM wal_segments WHERE generation = ?", .text(g.id))?.double
        let checked = try db.scalar("SELECT max(checked_at) FROM wal_progress WHERE generation = ?", .text(g.id))?.double
        return Date(timeIntervalSince1970: max(segments ?? 0, checked ?? 0, g.startedAt.timeIntervalSince1970))
    }

    /// Forgets a generation and its segments (their objects are deleted after this, so a
    /// crash half way leaves unlisted objects, never a catalog row whose segment is gone).
    public func removeGeneration(_ id: String) throws {
        try db.transaction {
            for table in ["wal_segments", "wal_progress", "wal_bases", "wal_checks"] { try db.run("DELETE FROM \(table) WHERE generation = ?", .text(id)) }
            try db.run("DELETE FROM wal_generations WHERE id = ?", .text(id))
        }
    }
}
