import Foundation

/// One archived commit: its transaction id (counted from 1 in its
/// generation), the wall time the archiver saw it, the database size after
/// it, and the pages it wrote.
struct ArchivedCommit: Sendable {
    var txid: Int64
    var seenAt: Date
    var pageCount: UInt32
    var pages: [(number: UInt32, bytes: [UInt8])]
}

/// Where a segment sits in its generation's chain on one target: the
/// generation, the SHA-256 of the segment before it there (nil for the first),
/// and the WAL position it resumes from and ends at. A segment that carries
/// its link can be checked and re-cataloged from the target alone (after the
/// host and its catalog are lost).
public struct SegmentLink: Equatable, Sendable {
    public var generation: String
    public var previousSHA256: String?
    public var from: WALPosition
    public var to: WALPosition
}

/// The bytes of a WAL segment before gzip (docs/DESIGN.md "WAL segments"):
/// `BOSWAL02`, the page size (UInt32), the link (generation id: UInt8 length
/// and UTF-8; the previous segment's SHA-256: 32 bytes, zero for none; from
/// and to positions: salt1, salt2 (UInt32), frame (UInt64), checksum s0, s1
/// (UInt32)), then per commit: txid (Int64), seen-at (Float64 Unix seconds),
/// page count after the commit (UInt32), number of pages (UInt32), and that
/// many (page number UInt32, page bytes). All little-endian. A segment holds
/// whole commits only. `BOSWAL01` (no link) is still read.
enum WALSegment {
    static let magic = Array("BOSWAL02".utf8)
    static let unlinkedMagic = Array("BOSWAL01".utf8)

    struct Decoded {
        var pageSize: Int
        var link: SegmentLink?
        var commits: [ArchivedCommit]
    }

    static func encode(_ commits: [ArchivedCommit], pageSize: Int, link: SegmentLink) -> Data {
        var data = Data(magic)
        func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
        func put(_ position: WALPosition) {
            put(position.salt1); put(position.salt2); put(UInt64(position.frame)); put(position.checksum.s0); put(position.checksum.s1)
        }
        put(UInt32(pageSize))
        let generation = Array(link.generation.utf8.prefix(255))
        put(UInt8(generation.count))
        data.append(contentsOf: generation)
        data.append(contentsOf: link.previousSHA256.flatMap(bytes(ofHex:)) ?? [UInt8](repeating: 0, count: 32))
        put(link.from)
        put(link.to)
        for commit in commits {
            put(commit.txid)
            put(commit.seenAt.timeIntervalSince1970.bitPattern)
            put(commit.pageCount)
            put(UInt32(commit.pages.count))
            for page in commit.pages {
                put(page.number)
                data.append(contentsOf: page.bytes)
            }
        }
        return data
    }

    struct FormatError: Error, CustomStringConvertible {
        let description: String
    }

    static func decode(_ data: Data) throws -> Decoded {
        let bytes = [UInt8](data)
        var at = 0
        func take<T: FixedWidthInteger>(_: T.Type) throws -> T {
            let size = MemoryLayout<T>.size
            guard at + size <= bytes.count else { throw FormatError(description: "segment cut short at byte \(at)") }
            var value: T = 0
            for i in 0..<size { value |= T(truncatingIfNeeded: bytes[at + i]) << (8 * i) }
            at += size
            return value
        }
        func takeBytes(_ count: Int) throws -> [UInt8] {
            guard at + count <= bytes.count else { throw FormatError(description: "segment cut short at byte \(at)") }
            defer { at += count }
            return Array(bytes[at..<at + count])
        }
        func takePosition() throws -> WALPosition {
            WALPosition(salt1: try take(UInt32.self), salt2: try take(UInt32.self), frame: Int(try take(UInt64.self)),
                        checksum: WALChecksum(s0: try take(UInt32.self), s1: try take(UInt32.self)))
        }
        guard bytes.count >= 12 else { throw FormatError(description: "not a WAL segment (no BOSWAL header)") }
        let linked = Array(bytes[0..<8]) == magic
        guard linked || Array(bytes[0..<8]) == unlinkedMagic else { throw FormatError(description: "not a WAL segment (no BOSWAL header)") }
        at = 8
        let pageSize = Int(try take(UInt32.self))
        guard pageSize >= 512, pageSize <= 65_536 else { throw FormatError(description: "segment page size \(pageSize)") }
        var link: SegmentLink?
        if linked {
            let generation = String(decoding: try takeBytes(Int(try take(UInt8.self))), as: UTF8.self)
            let previous = try takeBytes(32)
            link = SegmentLink(generation: generation, previousSHA256: previous.allSatisfy { $0 == 0 } ? nil : hex(previous),
                               from: try takePosition(), to: try takePosition())
        }
        var commits: [ArchivedCommit] = []
        while at < bytes.count {
            let txid = try take(Int64.self)
            let seenAt = Date(timeIntervalSince1970: Double(bitPattern: try take(UInt64.self)))
            let pageCount = try take(UInt32.self)
            let count = Int(try take(UInt32.self))
            var pages: [(number: UInt32, bytes: [UInt8])] = []
            for _ in 0..<count {
                let number = try take(UInt32.self)
                guard at + pageSize <= bytes.count else { throw FormatError(description: "segment cut short in txid \(txid)") }
                pages.append((number, Array(bytes[at..<at + pageSize])))
                at += pageSize
            }
            commits.append(ArchivedCommit(txid: txid, seenAt: seenAt, pageCount: pageCount, pages: pages))
        }
        return Decoded(pageSize: pageSize, link: link, commits: commits)
    }

    private static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    private static func bytes(ofHex text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count == 64 else { return nil }
        var out: [UInt8] = []
        for i in stride(from: 0, to: 64, by: 2) {
            guard let byte = UInt8(String(decoding: digits[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
            out.append(byte)
        }
        return out
    }
}
