import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A WAL file read directly (sqlite.org/fileformat2.html §4): the 32-byte
/// header, then frames of a 24-byte header and one page. A frame is part of
/// the log only when its salts are the header's and its checksum — chained
/// from the header through every frame before it — matches; SQLite reads
/// frames the same way, so what it would replay is exactly what we archive.
/// A transaction is committed when its last frame has a non-zero commit size.
struct WALHeader: Equatable, Sendable {
    let pageSize: Int
    let checkpointSequence: UInt32
    let salt1: UInt32
    let salt2: UInt32
    /// True when checksums are computed on big-endian words (magic 0x377f0683).
    let bigEndianChecksums: Bool
    /// The running checksum after the header: the first frame's starts from it.
    let checksum: WALChecksum

    static let size = 32
    static let magicLittle: UInt32 = 0x377F_0682
    static let magicBig: UInt32 = 0x377F_0683

    /// nil when the bytes are no valid WAL header (an empty or reset WAL).
    init?(_ bytes: [UInt8]) {
        guard bytes.count >= Self.size else { return nil }
        let magic = WALFile.bigEndian(bytes, 0)
        guard magic == Self.magicLittle || magic == Self.magicBig, WALFile.bigEndian(bytes, 4) == 3_007_000 else { return nil }
        bigEndianChecksums = magic == Self.magicBig
        let rawSize = Int(WALFile.bigEndian(bytes, 8))
        pageSize = rawSize == 1 ? 65_536 : rawSize
        guard pageSize >= 512, pageSize <= 65_536, pageSize & (pageSize - 1) == 0 else { return nil }
        checkpointSequence = WALFile.bigEndian(bytes, 12)
        salt1 = WALFile.bigEndian(bytes, 16)
        salt2 = WALFile.bigEndian(bytes, 20)
        let computed = WALChecksum.zero.adding(bytes[0..<24], bigEndian: bigEndianChecksums)
        guard computed == WALChecksum(s0: WALFile.bigEndian(bytes, 24), s1: WALFile.bigEndian(bytes, 28)) else { return nil }
        checksum = computed
    }
}

/// SQLite's WAL checksum: two 32-bit sums over pairs of words.
public struct WALChecksum: Equatable, Sendable, Codable {
    public var s0: UInt32
    public var s1: UInt32
    static let zero = WALChecksum(s0: 0, s1: 0)

    func adding<C: Collection>(_ bytes: C, bigEndian: Bool) -> WALChecksum where C.Element == UInt8, C.Index == Int {
        var (s0, s1) = (self.s0, self.s1)
        var i = bytes.startIndex
        func word(_ at: Int) -> UInt32 {
            let b0 = UInt32(bytes[at]), b1 = UInt32(bytes[at + 1]), b2 = UInt32(bytes[at + 2]), b3 = UInt32(bytes[at + 3])
            return bigEndian ? b0 << 24 | b1 << 16 | b2 << 8 | b3 : b3 << 24 | b2 << 16 | b1 << 8 | b0
        }
        while i + 8 <= bytes.endIndex {
            s0 = s0 &+ word(i) &+ s1
            s1 = s1 &+ word(i + 4) &+ s0
            i += 8
        }
        return WALChecksum(s0: s0, s1: s1)
    }
}

/// One committed transaction as found in the WAL.
struct WALCommit: Sendable {
    /// The frames of the transaction, in order: page number and page bytes.
    var pages: [(number: UInt32, bytes: [UInt8])]
    /// Database size in pages after the commit.
    var pageCount: UInt32
    /// The last frame of the commit (1-based) and the checksum after it.
    var lastFrame: Int
    var checksum: WALChecksum
}

/// Where the archiver is in a WAL: the frames up to `frame` of the WAL with
/// these salts are archived; the next frame's checksum starts from `checksum`.
public struct WALPosition: Equatable, Sendable, Codable {
    public var salt1: UInt32
    public var salt2: UInt32
    public var frame: Int
    public var checksum: WALChecksum
}

enum WALFile {
    static func bigEndian<C: Collection>(_ bytes: C, _ at: Int) -> UInt32 where C.Element == UInt8, C.Index == Int {
        let base = bytes.startIndex + at
        return UInt32(bytes[base]) << 24 | UInt32(bytes[base + 1]) << 16 | UInt32(bytes[base + 2]) << 8 | UInt32(bytes[base + 3])
    }

    /// The header of the WAL at `path`, nil when there is none (no file, empty, reset).
    static func header(path: String) throws -> WALHeader? {
        // No WAL file is "no header"; one we cannot read is an error (could not check), never a reset WAL.
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let file = try FileHandleFD(readingFrom: path)
        var bytes = [UInt8](repeating: 0, count: WALHeader.size)
        let n = try bytes.withUnsafeMutableBytes { try BlockGzipWriter.pread(fd: file.fd, path: path, into: $0, at: 0) }
        return n == WALHeader.size ? WALHeader(bytes) : nil
    }

    /// The committed transactions after `position` (which must be in this WAL:
    /// same salts), in order, and at most `limit` frames of them. Frames after
    /// the last commit frame (a transaction still being written, or leftovers of
    /// an earlier log) are not returned.
    static func commits(path: String, header: WALHeader, after position: WALPosition, limit: Int = .max) throws -> [WALCommit] {
        var commits: [WALCommit] = []
        try walk(path: path, header: header, after: position, limit: limit, keepPages: true) { commits.append($0) }
        return commits
    }

    /// How many commits end in the frames after `position` up to frame `frame`,
    /// or nil when those frames are not all valid or do not end with a commit.
    static func commitCount(path: String, header: WALHeader, after position: WALPosition, throughFrame frame: Int) throws -> Int? {
        var count = 0, last = position.frame
        try walk(path: path, header: header, after: position, limit: frame - position.frame, keepPages: false) { commit in
            count += 1
            last = commit.lastFrame
        }
        return last == frame ? count : nil
    }

    /// Whether a valid frame (salts and chained checksum) follows `position`: more log to read.
    static func hasFrame(path: String, header: WALHeader, after position: WALPosition) throws -> Bool {
        guard position.salt1 == header.salt1 && position.salt2 == header.salt2 else { return false }
        let file = try FileHandleFD(readingFrom: path)
        let frameSize = 24 + header.pageSize
        var buffer = [UInt8](repeating: 0, count: frameSize)
        let offset = Int64(WALHeader.size) + Int64(position.frame) * Int64(frameSize)
        let n = try buffer.withUnsafeMutableBytes { try BlockGzipWriter.pread(fd: file.fd, path: path, into: $0, at: offset) }
        guard n == frameSize, bigEndian(buffer, 8) == header.salt1, bigEndian(buffer, 12) == header.salt2 else { return false }
        let next = position.checksum.adding(buffer[0..<8], bigEndian: header.bigEndianChecksums)
            .adding(buffer[24..<frameSize], bigEndian: header.bigEndianChecksums)
        return next == WALChecksum(s0: bigEndian(buffer, 16), s1: bigEndian(buffer, 20))
    }

    /// Calls `commit` for each committed transaction after `position`, in
    /// order. `keepPages: false` keeps no page bytes (the commits' pages are
    /// empty): a WAL of any size walked in constant memory.
    private static func walk(path: String, header: WALHeader, after position: WALPosition, limit: Int, keepPages: Bool,
                             _ commit: (WALCommit) throws -> Void) throws {
        var pending: [(number: UInt32, bytes: [UInt8])] = []
        try frames(path: path, header: header, after: position, limit: limit) { number, page in
            if keepPages { pending.append((number, Array(page))) }
        } commit: { pageCount, after in
            try commit(WALCommit(pages: pending, pageCount: pageCount, lastFrame: after.frame, checksum: after.checksum))
            pending = []
        }
    }

    /// Hands over each valid frame after `position` (at most `limit`), in order: `page`
    /// its page (the bytes valid for the call only), and after a transaction's last
    /// frame `commit` the database's size then and the position after it. The frames
    /// after the last commit (a transaction still being written, or leftovers of an
    /// earlier log) go to `page` with no `commit` after them: the caller drops them.
    /// `wholeTransactions`: past `limit`, the transaction in progress is read to its end
    /// (the follower's reads: one cut inside a transaction longer than the limit was
    /// dropped and read again from its start at every poll, forever).
    static func frames(path: String, header: WALHeader, after position: WALPosition, limit: Int, wholeTransactions: Bool = false,
                       page: (UInt32, UnsafeRawBufferPointer) throws -> Void,
                       commit: (UInt32, WALPosition) throws -> Void) throws {
        precondition(position.salt1 == header.salt1 && position.salt2 == header.salt2, "the position belongs to another WAL")
        let file = try FileHandleFD(readingFrom: path)
        let frameSize = 24 + header.pageSize
        var buffer = [UInt8](repeating: 0, count: frameSize)
        var checksum = position.checksum
        var frame = position.frame
        var read = 0
        var inTransaction = false
        while read < limit || (wholeTransactions && inTransaction) {
            let offset = Int64(WALHeader.size) + Int64(frame) * Int64(frameSize)
            let n = try buffer.withUnsafeMutableBytes { try BlockGzipWriter.pread(fd: file.fd, path: path, into: $0, at: offset) }
            guard n == frameSize, bigEndian(buffer, 8) == header.salt1, bigEndian(buffer, 12) == header.salt2 else { break }
            let next = checksum.adding(buffer[0..<8], bigEndian: header.bigEndianChecksums)
                .adding(buffer[24..<frameSize], bigEndian: header.bigEndianChecksums)
            guard next == WALChecksum(s0: bigEndian(buffer, 16), s1: bigEndian(buffer, 20)) else { break }
            checksum = next
            frame += 1
            read += 1
            try buffer.withUnsafeBytes { try page(bigEndian(buffer, 0), UnsafeRawBufferPointer(rebasing: $0[24..<frameSize])) }
            let commitSize = bigEndian(buffer, 4)
            inTransaction = commitSize == 0
            if commitSize != 0 {
                try commit(commitSize, WALPosition(salt1: header.salt1, salt2: header.salt2, frame: frame, checksum: checksum))
            }
        }
    }

    /// How long the log in the file is now, in bytes: the header and the frames that carry
    /// its salts. SQLite does not shrink the file when the log restarts, so the file's size
    /// says nothing of the log's (frames past the log's end are an earlier log's, with
    /// other salts); and the log's frames come first, so a binary search on the salts
    /// finds its end in a few reads, without reading it.
    static func logBytes(path: String, header: WALHeader) throws -> Int64 {
        let frameSize = Int64(24 + header.pageSize)
        let frames = max(0, ((DurableFile.fileSize(path) ?? 0) - Int64(WALHeader.size)) / frameSize)
        let file = try FileHandleFD(readingFrom: path)
        var salts = [UInt8](repeating: 0, count: 8)
        func ours(_ frame: Int64) throws -> Bool {   // frame counted from 1
            let n = try salts.withUnsafeMutableBytes {
                try BlockGzipWriter.pread(fd: file.fd, path: path, into: $0, at: Int64(WALHeader.size) + (frame - 1) * frameSize + 8)
            }
            return n == 8 && bigEndian(salts, 0) == header.salt1 && bigEndian(salts, 4) == header.salt2
        }
        var (low, high) = (Int64(0), frames)   // frames 1…low are the log's; past high none is
        while low < high {
            let middle = (low + high + 1) / 2
            if try ours(middle) { low = middle } else { high = middle - 1 }
        }
        return Int64(WALHeader.size) + low * frameSize
    }

    /// The position after frame `frame` of this WAL (its checksum chained
    /// from the header), or nil when those frames are not all valid.
    static func position(path: String, header: WALHeader, afterFrame frame: Int) throws -> WALPosition? {
        let start = WALPosition(salt1: header.salt1, salt2: header.salt2, frame: 0, checksum: header.checksum)
        guard frame > 0 else { return start }
        var last: WALCommit?
        try walk(path: path, header: header, after: start, limit: frame, keepPages: false) { last = $0 }
        guard let last, last.lastFrame == frame else { return nil }
        return WALPosition(salt1: header.salt1, salt2: header.salt2, frame: frame, checksum: last.checksum)
    }
}
