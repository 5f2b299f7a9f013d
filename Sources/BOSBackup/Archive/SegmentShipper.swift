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
        let pages = segment.commits.reduce(0) { $0 + $1.commit.pages.count }
        var builder = try SegmentFormatV3.Builder(pageSize: segment.pageSize, link: segment.link, level: level,
                                                  commits: segment.commits.count, pages: pages)
        // Through a writer, not `put`: an encrypting target encrypts what goes through its writers.
        let out = OutBuffer()
        let index = try await Repository(target: target).writeObject(key: segment.key) { writer in
            try await out.append(builder.take(), to: writer)
            for spooled in segment.commits {
                let commit = spooled.commit
                try await out.append(try builder.commit(txid: commit.txid, seenAt: commit.seenAt, pageCount: commit.pageCount,
                                                        pages: commit.pages.map(\.number)), to: writer)
                for page in commit.pages { builder.page(page.number, length: page.length, sha256: page.sha256) }
                try await out.append(spooled.file, from: spooled.offset, to: spooled.end, to: writer)
            }
            let end = try builder.finish()
            try await out.append(end.bytes, to: writer)
            try await out.flush(to: writer)
            return end.index
        }
        return (out.stored.count, out.stored.hex(), index)
    }
}

/// Gathers a segment's pieces into one megabyte of memory per `write`, the spooled pages
/// read straight into it, and hashes what it writes. A spool read into an array of its own,
/// appended to a growing array and copied for the write had a segment's upload hold up to
/// 5 MB beside its part (heaptrack of the archiver with a cloud target).
private final class OutBuffer {
    static let size = 1 << 20
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: OutBuffer.size, alignment: 16)
    private var filled = 0
    /// The SHA-256 of everything written (the stored object's, before a target encrypts it).
    private(set) var stored = SHA256Stream()

    deinit { buffer.deallocate() }

    func append(_ bytes: [UInt8], to writer: ObjectWriter) async throws {
        var at = 0
        while at < bytes.count {
            if filled == Self.size { try await flush(to: writer) }
            let n = min(Self.size - filled, bytes.count - at)
            bytes.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buffer[filled..<(filled + n)]).copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[at..<(at + n)])) }
            filled += n
            at += n
        }
    }

    /// `offset..<end` of a spool file, read into the buffer.
    func append(_ file: SpoolFile, from offset: Int64, to end: Int64, to writer: ObjectWriter) async throws {
        var at = offset
        while at < end {
            if filled == Self.size { try await flush(to: writer) }
            let n = Int(min(Int64(Self.size - filled), end - at))
            try file.read(at, into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled..<(filled + n)]))
            filled += n
            at += Int64(n)
        }
    }

    func flush(to writer: ObjectWriter) async throws {
        guard filled > 0 else { return }
        let bytes = UnsafeRawBufferPointer(rebasing: buffer[..<filled])
        stored.update(bytes)
        try await writer.write(bytes)
        filled = 0
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
