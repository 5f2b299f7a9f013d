import Foundation

/// One archive target's uploads, off the follower's loop: while a segment
/// goes to a slow target (the cloud, seconds), the follower keeps reading the
/// WAL, swapping its read transaction and shipping to the other targets. The
/// actor owns its target; nothing else touches it.
actor SegmentShipper {
    private let target: Target
    private let level: Int
    /// Whether its target encrypts (segment keys end in `.enc` there).
    nonisolated let encrypts: Bool

    init(target: sending Target, level: Int) {
        encrypts = target.encrypts
        self.target = target
        self.level = level
    }

    /// Writes one segment (`BOSWAL03`, a gzip member per page); returns its stored size,
    /// SHA-256 and index (the object is durable when this returns).
    func upload(_ segment: PreparedSegment) async throws -> (bytes: Int64, sha256: String, index: SegmentIndexRef) {
        let encoded = try SegmentFormatV3.encode(segment.commits.map(\.commit), pageSize: segment.pageSize, link: segment.link, level: level)
        // Through a writer, not `put`: an encrypting target encrypts what goes through its writers.
        try await Repository(target: target).writeObject(key: segment.key) { writer in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: encoded.data.count, alignment: 16)
            defer { buffer.deallocate() }
            encoded.data.copyBytes(to: buffer)
            try await writer.write(UnsafeRawBufferPointer(buffer))
        }
        return (Int64(encoded.data.count), SHA256Stream.hex(of: encoded.data), encoded.index)
    }
}

/// A segment ready to upload: its key, its commits and its link.
struct PreparedSegment: Sendable {
    var target: String
    var key: String
    var generation: String
    var commits: [QueuedCommit]
    var pageSize: Int
    var link: SegmentLink

    /// Its catalog row, once stored.
    func record(bytes: Int64, sha256: String, index: SegmentIndexRef?, shippedAt: Date) -> WALSegmentRecord {
        let first = commits[0].commit, last = commits[commits.count - 1]
        return WALSegmentRecord(generation: generation, target: target, objectKey: key, firstTxid: first.txid, lastTxid: last.commit.txid,
                                firstSeen: first.seenAt, lastSeen: last.commit.seenAt, position: last.after,
                                pageCount: Int64(last.commit.pageCount), bytes: bytes, sha256: sha256, shippedAt: shippedAt, index: index)
    }
}
