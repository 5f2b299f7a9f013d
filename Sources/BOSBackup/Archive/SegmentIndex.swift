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
/// number, where its gzip member lies in the object, and the SHA-256 of the page.
struct IndexedCommit: Sendable {
    struct Page: Sendable {
        var number: UInt32
        var offset: Int64
        var length: UInt32
        var sha256: [UInt8]
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

    static func encode(_ commits: [ArchivedCommit], pageSize: Int, link: SegmentLink, level: Int) throws -> Encoded {
        // Bound for the largest member: a page, a commit's header, or the index (all its entries).
        let pages = commits.reduce(0) { $0 + $1.pages.count }
        let largest = max(pageSize, 1 + 24 + 4 * (commits.map(\.pages.count).max() ?? 0), 5 + 24 * commits.count + 48 * pages, 1 << 12)
        let compressor = try GzipBlockCompressor(level: level, blockSize: largest)
        var data = Data()
        func member(_ raw: [UInt8]) throws -> (offset: Int64, length: UInt32) {
            let offset = Int64(data.count)
            try raw.withUnsafeBytes { data.append(contentsOf: try compressor.compress($0)) }
            return (offset, UInt32(Int64(data.count) - offset))
        }
        _ = try member(Array(WALSegment.encode([], pageSize: pageSize, link: link, magic: magic)))
        var index = LittleEndianWriter()
        index.bytes.append(UInt8(ascii: "I"))
        index.put(UInt32(commits.count))
        for commit in commits {
            var head = LittleEndianWriter()
            head.bytes.append(UInt8(ascii: "C"))
            head.putCommitHead(commit)
            for page in commit.pages { head.put(page.number) }
            _ = try member(head.bytes)
            index.putCommitHead(commit)
            for page in commit.pages {
                let stored = try member(page.bytes)
                index.put(page.number)
                index.put(UInt64(stored.offset))
                index.put(stored.length)
                index.bytes.append(contentsOf: SHA256.hash(data: page.bytes))
            }
        }
        let indexAt = try member(index.bytes)
        let indexRef = SegmentIndexRef(offset: indexAt.offset, length: Int64(indexAt.length),
                                       sha256: SHA256Stream.hex(of: data.subdata(in: Int(indexAt.offset)..<data.count)))
        var trailer = LittleEndianWriter()
        trailer.bytes.append(UInt8(ascii: "T"))
        trailer.put(UInt64(indexAt.offset))
        trailer.put(UInt64(indexAt.length))
        trailer.bytes.append(contentsOf: trailerMagic)
        data.append(contentsOf: storedMember(trailer.bytes))
        return Encoded(data: data, index: indexRef)
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
    static func decodeIndex(_ raw: [UInt8], pageSize: Int? = nil) throws -> [IndexedCommit] {
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
                pages.append(.init(number: reader.uint32(), offset: Int64(reader.uint64()), length: reader.uint32(), sha256: reader.bytes(32)))
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
        mutating func bytes(_ n: Int) -> [UInt8] { defer { at += n }; return Array(bytes[at..<at + n]) }
        mutating func uint32() -> UInt32 { defer { at += 4 }; return peekUInt32() }
        func peekUInt32() -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) } }
        mutating func uint64() -> UInt64 {
            defer { at += 8 }
            return (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * $1) }
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
        put(commit.txid)
        put(commit.seenAt.timeIntervalSince1970.bitPattern)
        put(commit.pageCount)
        put(UInt32(commit.pages.count))
    }
}
