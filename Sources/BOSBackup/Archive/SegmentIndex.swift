import CLibDeflate
import Crypto
import Foundation

/// Where a segment's index lies in the stored object, and the SHA-256 of its
/// bytes there: the catalog keeps this, so a restore that reads only the index
/// and the pages it needs still reads nothing but what was shipped.
public struct SegmentIndexRef: Equatable, Sendable {
    public var offset: Int64
    public var length: Int64
    public var sha256: String
}

/// One commit as the index of a `BOSWAL03` segment gives it: each page's
/// number, where its gzip member lies in the object (in the archiver's spool:
/// in the spool file), and the SHA-256 of the page.
struct IndexedCommit: Sendable {
    struct Page: Sendable {
        var number: UInt32
        var offset: Int64
        var length: UInt32
        var sha256: PageDigest
    }
    var txid: Int64
    var seenAt: Date
    var pageCount: UInt32
    var pages: [Page]
}

/// The bytes of a `BOSWAL03` segment (docs/DESIGN.md "WAL segments"): gzip
/// members, so `gunzip` still reads it, but one member per page, so a restore
/// can read the index and inflate only the newest version of each page:
///
///   header member   `BOSWAL03`, page size, link (as `BOSWAL02`)
///   per commit      a member `C`, txid, seen-at, page count, n, n page numbers;
///                   then n members, one page each
///   index member    `I`, commits, then per commit: txid, seen-at, page count, n,
///                   and per page: number, member offset (UInt64), member length
///                   (UInt32), SHA-256 of the page
///   trailer member  `T`, index offset, index length (UInt64), `BOSWAL3T`: a
///                   stored (uncompressed) member of fixed size, read from the end.
///
/// All integers little-endian.
enum SegmentFormatV3 {
    static let magic = Array("BOSWAL03".utf8)
    static let trailerMagic = Array("BOSWAL3T".utf8)
    static let trailerPayload = 1 + 8 + 8 + 8
    /// gzip header (10) + stored block header (5) + payload + CRC-32 and size (8).
    static let trailerSize = 10 + 5 + trailerPayload + 8

    struct Encoded {
        var data: Data
        var index: SegmentIndexRef
    }

    /// A whole segment in memory (tests; `archive --once` and the follower build theirs
    /// with `Builder` from members compressed once, as they read the WAL).
    static func encode(_ commits: [ArchivedCommit], pageSize: Int, link: SegmentLink, level: Int) throws -> Encoded {
        var builder = try Builder(pageSize: pageSize, link: link, level: level,
                                  commits: commits.count, pages: commits.reduce(0) { $0 + $1.pages.count })
        let pages = try PageCompressor(pageSize: pageSize, level: level)
        var data = Data(builder.take())
        for commit in commits {
            data.append(contentsOf: try builder.commit(txid: commit.txid, seenAt: commit.seenAt, pageCount: commit.pageCount,
                                                       pages: commit.pages.map(\.number)))
            for page in commit.pages {
                let member = try pages.compress(page.bytes)
                builder.page(page.number, length: UInt32(member.bytes.count), sha256: member.sha256)
                data.append(contentsOf: member.bytes)
            }
        }
        let end = try builder.finish()
        data.append(contentsOf: end.bytes)
        return Encoded(data: data, index: end.index)
    }

    /// Lays out a segment member by member: the caller appends what each call
    /// returns (and each page's member, compressed elsewhere, right after it is
    /// announced with `page`), in order; the builder keeps the offsets and the index.
    struct Builder {
        private let level: Int
        private var offset: Int64 = 0
        private var index = LittleEndianWriter()
        private var commits: UInt32 = 0
        private var pending: [UInt8] = []
        /// Compresses the members the builder makes (header, commit heads, index), sized
        /// for the largest so far: a busy segment's index is far larger than a page.
        private var heads: GzipBlockCompressor
        private var headBound: Int

        /// `commits` and `pages`: how many the segment will hold (its index is allocated once,
        /// not grown by doubling: 52 bytes a page, a megabyte or more).
        init(pageSize: Int, link: SegmentLink, level: Int, commits: Int, pages: Int) throws {
            self.level = level
            headBound = max(pageSize, 1 << 12)
            heads = try GzipBlockCompressor(level: level, blockSize: headBound)
            index.bytes.reserveCapacity(5 + commits * Self.commitHeadBytes + pages * Self.pageEntryBytes)
            index.bytes.append(UInt8(ascii: "I"))
            index.put(UInt32(0))   // the commit count, set at the end
            pending = try member(Array(WALSegment.encode([], pageSize: pageSize, link: link, magic: magic)))
        }

        /// The header member (once, first).
        mutating func take() -> [UInt8] { defer { pending = [] }; return pending }

        private mutating func member(_ raw: [UInt8]) throws -> [UInt8] {
            if raw.count > headBound {
                heads = try GzipBlockCompressor(level: level, blockSize: raw.count)
                headBound = raw.count
            }
            let bytes = try raw.withUnsafeBytes { Array(try heads.compress($0)) }
            offset += Int64(bytes.count)
            return bytes
        }

        /// A commit's head member; its pages follow, each announced with `page`.
        mutating func commit(txid: Int64, seenAt: Date, pageCount: UInt32, pages: [UInt32]) throws -> [UInt8] {
            var head = LittleEndianWriter()
            head.bytes.append(UInt8(ascii: "C"))
            head.putCommitHead(txid: txid, seenAt: seenAt, pageCount: pageCount, pages: pages.count)
            for number in pages { head.put(number) }
            index.putCommitHead(txid: txid, seenAt: seenAt, pageCount: pageCount, pages: pages.count)
            commits += 1
            return try member(head.bytes)
        }

        /// An index entry's bytes: a commit's head (txid, seen-at, page count, pages), a page
        /// (number, offset, length, SHA-256).
        static let commitHeadBytes = 8 + 8 + 4 + 4
        static let pageEntryBytes = 4 + 8 + 4 + 32

        /// A page member of `length` bytes goes next, at the current offset.
        mutating func page(_ number: UInt32, length: UInt32, sha256: PageDigest) {
            index.put(number)
            index.put(UInt64(offset))
            index.put(length)
            sha256.append(to: &index.bytes)
            offset += Int64(length)
        }

        /// The index member and the trailer, and where the index lies.
        mutating func finish() throws -> (bytes: [UInt8], index: SegmentIndexRef) {
            withUnsafeBytes(of: commits.littleEndian) { index.bytes.replaceSubrange(1..<5, with: $0) }
            let at = offset
            let stored = try member(index.bytes)
            let ref = SegmentIndexRef(offset: at, length: Int64(stored.count), sha256: SHA256.hash(data: stored).hex)
            var trailer = LittleEndianWriter()
            trailer.bytes.append(UInt8(ascii: "T"))
            trailer.put(UInt64(at))
            trailer.put(UInt64(stored.count))
            trailer.bytes.append(contentsOf: trailerMagic)
            return (stored + storedMember(trailer.bytes), ref)
        }
    }

    /// A page as its gzip member, and the SHA-256 of the page (what the index keeps).
    final class PageCompressor {
        private let compressor: GzipBlockCompressor
        init(pageSize: Int, level: Int) throws { compressor = try GzipBlockCompressor(level: level, blockSize: pageSize) }
        func compress(_ page: [UInt8]) throws -> (bytes: [UInt8], sha256: PageDigest) {
            try page.withUnsafeBytes { try compress($0) }
        }
        func compress(_ page: UnsafeRawBufferPointer) throws -> (bytes: [UInt8], sha256: PageDigest) {
            (Array(try compressor.compress(page)), PageDigest(of: page))
        }
    }

    /// A gzip member holding `payload` in one stored deflate block: its size is
    /// fixed, so a reader finds it at the object's end without a search.
    static func storedMember(_ payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 0x01]
        let length = UInt16(payload.count)
        out += [UInt8(length & 0xff), UInt8(length >> 8), UInt8(~length & 0xff), UInt8(~length >> 8)]
        out += payload
        var writer = LittleEndianWriter()
        writer.put(crc32(payload))
        writer.put(UInt32(payload.count))
        return out + writer.bytes
    }

    /// The index's place, from the trailer member (the object's last `trailerSize` bytes).
    static func indexPlace(trailer bytes: [UInt8]) throws -> (offset: Int64, length: Int64) {
        guard bytes.count == trailerSize, bytes[0] == 0x1f, bytes[1] == 0x8b, bytes[10] == 0x01 else {
            throw WALSegment.FormatError(description: "no BOSWAL03 trailer at the end of the segment")
        }
        let payload = Array(bytes[15..<15 + trailerPayload])
        var reader = Reader(payload)
        let crc = Reader(Array(bytes[(15 + trailerPayload)...])).peekUInt32()
        guard payload[0] == UInt8(ascii: "T"), Array(payload[17...]) == trailerMagic, crc == crc32(payload) else {
            throw WALSegment.FormatError(description: "the segment's trailer is damaged")
        }
        reader.at = 1
        return (Int64(reader.uint64()), Int64(reader.uint64()))
    }

    /// The commits of an inflated index member.
    static func decodeIndex(_ raw: [UInt8]) throws -> [IndexedCommit] {
        var reader = Reader(raw)
        guard reader.remaining >= 5, reader.byte() == UInt8(ascii: "I") else { throw WALSegment.FormatError(description: "not a segment index") }
        let count = Int(reader.uint32())
        var commits: [IndexedCommit] = []
        commits.reserveCapacity(min(count, 1 << 16))
        for _ in 0..<count {
            guard reader.remaining >= 24 else { throw WALSegment.FormatError(description: "segment index cut short") }
            let txid = Int64(bitPattern: reader.uint64())
            let seen = Date(timeIntervalSince1970: Double(bitPattern: reader.uint64()))
            let pageCount = reader.uint32()
            let n = Int(reader.uint32())
            guard reader.remaining >= n * 48 else { throw WALSegment.FormatError(description: "segment index cut short in txid \(txid)") }
            var pages: [IndexedCommit.Page] = []
            pages.reserveCapacity(n)
            for _ in 0..<n {
                pages.append(.init(number: reader.uint32(), offset: Int64(reader.uint64()), length: reader.uint32(), sha256: reader.digest()))
            }
            commits.append(IndexedCommit(txid: txid, seenAt: seen, pageCount: pageCount, pages: pages))
        }
        guard reader.remaining == 0 else { throw WALSegment.FormatError(description: "segment index has bytes after its last commit") }
        return commits
    }

    struct Reader {
        let bytes: [UInt8]
        var at = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }
        var remaining: Int { bytes.count - at }
        mutating func byte() -> UInt8 { defer { at += 1 }; return bytes[at] }
        mutating func digest() -> PageDigest {
            defer { at += 32 }
            return bytes.withUnsafeBytes { PageDigest(UnsafeRawBufferPointer(rebasing: $0[at..<at + 32])) }
        }
        mutating func uint32() -> UInt32 { defer { at += 4 }; return peekUInt32() }
        func peekUInt32() -> UInt32 {
            precondition(at + 4 <= bytes.count)
            return bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
        }
        mutating func uint64() -> UInt64 {
            precondition(at + 8 <= bytes.count)
            defer { at += 8 }
            return bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        }
    }
}

private func crc32(_ bytes: [UInt8]) -> UInt32 {
    bytes.withUnsafeBytes { UInt32(libdeflate_crc32(0, $0.baseAddress, $0.count)) }
}

/// Bytes of the segment formats, little-endian (`BOSWAL02` and `BOSWAL03` alike).
struct LittleEndianWriter {
    var bytes: [UInt8] = []
    mutating func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    /// A commit's head in both formats: txid, seen-at (Float64 bits), page count after it, number of pages.
    mutating func putCommitHead(_ commit: ArchivedCommit) {
        putCommitHead(txid: commit.txid, seenAt: commit.seenAt, pageCount: commit.pageCount, pages: commit.pages.count)
    }
    mutating func putCommitHead(txid: Int64, seenAt: Date, pageCount: UInt32, pages: Int) {
        put(txid)
        put(seenAt.timeIntervalSince1970.bitPattern)
        put(pageCount)
        put(UInt32(pages))
    }
}

/// A page's SHA-256 as the index keeps it: 32 bytes by value (an index holds
/// one per page version, a day's archive millions; an array each was an
/// allocation each).
struct PageDigest: Equatable, Sendable {
    private var words: (UInt64, UInt64, UInt64, UInt64)

    init(_ bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count == 32)
        words = (bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self), bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                 bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self), bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
    }

    init(of page: UnsafeRawBufferPointer) {
        self = SHA256.hash(data: page).withUnsafeBytes { PageDigest($0) }
    }

    func append(to bytes: inout [UInt8]) {
        withUnsafeBytes(of: words) { bytes.append(contentsOf: $0) }
    }

    static func == (a: PageDigest, b: PageDigest) -> Bool {
        a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.words.3 == b.words.3
    }
}
