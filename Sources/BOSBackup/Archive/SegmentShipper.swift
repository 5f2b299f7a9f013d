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

    /// Writes one segment (`BOSWAL03`) streamed: the members the builder makes around
    /// the page members copied from the spool, compressed when they were read. Returns
    /// its stored size, SHA-256 and index (the object is durable when this returns).
    func upload(_ segment: PreparedSegment) async throws -> (bytes: Int64, sha256: String, index: SegmentIndexRef) {
        // Its pages' members, and about 52 bytes of head and index per page (uncompressed).
        target.useLeastMemory(objectsUpTo: segment.commits.reduce(0) { $0 + $1.length + 64 * Int64($1.commit.pages.count + 1) })
        var builder = try SegmentFormatV3.Builder(pageSize: segment.pageSize, link: segment.link, level: level)
        var stored = SHA256Stream()
        // Through a writer, not `put`: an encrypting target encrypts what goes through its writers.
        let index = try await Repository(target: target).writeObject(key: segment.key) { writer in
            var out = OutBuffer(writer: writer)
            try await out.append(builder.take(), &stored)
            for spooled in segment.commits {
                let commit = spooled.commit
                try await out.append(try builder.commit(txid: commit.txid, seenAt: commit.seenAt, pageCount: commit.pageCount,
                                                        pages: commit.pages.map(\.number)), &stored)
                for page in commit.pages { builder.page(page.number, length: page.length, sha256: page.sha256) }
                var at = spooled.offset
                while at < spooled.end {
                    let length = Int(min(spooled.end - at, 1 << 20))
                    try await out.append(try spooled.file.read(at, length), &stored)
                    at += Int64(length)
                }
            }
            let end = try builder.finish()
            try await out.append(end.bytes, &stored)
            try await out.flush()
            return end.index
        }
        return (stored.count, stored.hex(), index)
    }
}

/// Gathers small writes into about a megabyte per `write`.
private struct OutBuffer {
    let writer: ObjectWriter
    var bytes: [UInt8] = []

    mutating func append(_ more: [UInt8], _ hash: inout SHA256Stream) async throws {
        more.withUnsafeBytes { hash.update($0) }
        bytes += more
        if bytes.count >= 1 << 20 { try await flush() }
    }

    mutating func flush() async throws {
        guard !bytes.isEmpty else { return }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
        defer { buffer.deallocate() }
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
        try await writer.write(UnsafeRawBufferPointer(buffer))
        bytes.removeAll(keepingCapacity: true)
    }
}

/// A segment ready to upload: its key, its commits (their pages in the spool) and its link.
struct PreparedSegment: Sendable {
    var target: String
    var key: String
    var generation: String
    var commits: [SpooledCommit]
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
