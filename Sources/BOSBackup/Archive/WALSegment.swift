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

    static func encode(_ commits: [ArchivedCommit], pageSize: Int, link: SegmentLink, magic: [UInt8] = WALSegment.magic) -> Data {
        var out = LittleEndianWriter(bytes: magic)
        func put(_ position: WALPosition) {
            out.put(position.salt1); out.put(position.salt2); out.put(UInt64(position.frame))
            out.put(position.checksum.s0); out.put(position.checksum.s1)
        }
        out.put(UInt32(pageSize))
        let generation = Array(link.generation.utf8.prefix(255))
        out.put(UInt8(generation.count))
        out.bytes.append(contentsOf: generation)
        out.bytes.append(contentsOf: link.previousSHA256.flatMap(bytes(ofHex:)) ?? [UInt8](repeating: 0, count: 32))
        put(link.from)
        put(link.to)
        for commit in commits {
            out.putCommitHead(commit)
            for page in commit.pages {
                out.put(page.number)
                out.bytes.append(contentsOf: page.bytes)
            }
        }
        return Data(out.bytes)
    }

    struct FormatError: Error, CustomStringConvertible {
        let description: String
    }

    /// A whole segment at once (small ones, tests); `Stream` reads one as it arrives.
    static func decode(_ data: Data) throws -> Decoded {
        var stream = Stream()
        var commits: [ArchivedCommit] = []
        try data.withUnsafeBytes { try stream.feed($0) { commits.append($0) } }
        try stream.finish()
        return Decoded(pageSize: stream.pageSize ?? 0, link: stream.link, commits: commits)
    }

    /// Decodes a segment as its bytes arrive, handing over each commit as soon as it is
    /// whole: memory holds one commit, not the segment (`keepPages: false` drops even its
    /// pages, for checks that need only txids, times and sizes).
    struct Stream {
        private(set) var pageSize: Int?
        private(set) var link: SegmentLink?
        var keepPages = true
        private var buffer: [UInt8] = []
        private var at = 0
        private var sawHeader = false
        /// `BOSWAL03`: records start with a tag (`C` commit, `I` index, `T` trailer) and a
        /// commit lists its page numbers before its pages.
        private(set) var tagged = false
        private var sawTrailer = false
        private var offset = 0   // of buffer[0] in the segment, for messages

        mutating func feed(_ chunk: UnsafeRawBufferPointer, _ commit: (ArchivedCommit) throws -> Void) throws {
            buffer.append(contentsOf: chunk)
            if !sawHeader {
                guard try parseHeader() else { return }
                sawHeader = true
            }
            while let next = try parseCommit() { try commit(next) }
            if at > 1 << 20 || at == buffer.count {   // drop what is consumed, now and then
                offset += at
                buffer.removeFirst(at)
                at = 0
            }
        }

        func finish() throws {
            guard sawHeader else { throw FormatError(description: "not a WAL segment (no BOSWAL header)") }
            guard !tagged || sawTrailer else { throw FormatError(description: "segment cut short: no index and trailer") }
            guard at == buffer.count else { throw FormatError(description: "segment cut short at byte \(offset + buffer.count)") }
        }

        private func has(_ count: Int, from start: Int) -> Bool { start + count <= buffer.count }

        private func read<T: FixedWidthInteger>(_: T.Type, _ position: inout Int) -> T {
            var value: T = 0
            for i in 0..<MemoryLayout<T>.size { value |= T(truncatingIfNeeded: buffer[position + i]) << (8 * i) }
            position += MemoryLayout<T>.size
            return value
        }

        private mutating func parseHeader() throws -> Bool {
            guard has(12, from: 0) else { return false }
            let head = Array(buffer[0..<8])
            tagged = head == SegmentFormatV3.magic
            let linked = tagged || head == WALSegment.magic
            guard linked || head == WALSegment.unlinkedMagic else { throw FormatError(description: "not a WAL segment (no BOSWAL header)") }
            var position = 8
            let size = Int(read(UInt32.self, &position))
            guard size >= 512, size <= 65_536 else { throw FormatError(description: "segment page size \(size)") }
            if linked {
                guard has(1, from: position) else { return false }
                let length = Int(buffer[position])
                let positionBytes = 2 * (4 + 4 + 8 + 4 + 4)
                guard has(1 + length + 32 + positionBytes, from: position) else { return false }
                position += 1
                let generation = String(decoding: buffer[position..<position + length], as: UTF8.self)
                position += length
                let previous = Array(buffer[position..<position + 32])
                position += 32
                func takePosition() -> WALPosition {
                    WALPosition(salt1: read(UInt32.self, &position), salt2: read(UInt32.self, &position), frame: Int(read(UInt64.self, &position)),
                                checksum: WALChecksum(s0: read(UInt32.self, &position), s1: read(UInt32.self, &position)))
                }
                let from = takePosition()
                link = SegmentLink(generation: generation, previousSHA256: previous.allSatisfy { $0 == 0 } ? nil : WALSegment.hex(previous),
                                   from: from, to: takePosition())
            }
            pageSize = size
            at = position
            return true
        }

        /// A commit whose bytes start at `position`: its head (txid, seen-at, page count, n), then
        /// its pages, either each after its number (`BOSWAL02`) or the n numbers first (`BOSWAL03`).
        /// Nil while the buffer does not hold it whole yet.
        private mutating func parseCommit(at start: Int, numbersFirst: Bool) throws -> ArchivedCommit? {
            guard let pageSize, has(24, from: start) else { return nil }
            var position = start
            let txid = read(Int64.self, &position)
            let seenAt = Date(timeIntervalSince1970: Double(bitPattern: read(UInt64.self, &position)))
            let pageCount = read(UInt32.self, &position)
            let count = Int(read(UInt32.self, &position))
            guard count <= 1 << 24 else { throw FormatError(description: "segment claims \(count) pages in txid \(txid)") }
            guard has(count * (4 + pageSize), from: position) else { return nil }
            var numbers: [UInt32] = []
            if numbersFirst { for _ in 0..<count { numbers.append(read(UInt32.self, &position)) } }
            var pages: [(number: UInt32, bytes: [UInt8])] = []
            if keepPages { pages.reserveCapacity(count) }
            for i in 0..<count {
                let number = numbersFirst ? numbers[i] : read(UInt32.self, &position)
                if keepPages { pages.append((number, Array(buffer[position..<position + pageSize]))) }
                position += pageSize
            }
            at = position
            return ArchivedCommit(txid: txid, seenAt: seenAt, pageCount: pageCount, pages: pages)
        }

        private mutating func parseCommit() throws -> ArchivedCommit? {
            tagged ? try parseTagged() : try parseCommit(at: at, numbersFirst: false)
        }

        /// A `BOSWAL03` record: a commit is returned; the index and trailer are checked for
        /// their shape and passed over (the index is read on its own by restores).
        private mutating func parseTagged() throws -> ArchivedCommit? {
            guard pageSize != nil, has(1, from: at), !sawTrailer else {
                if sawTrailer, at < buffer.count { throw FormatError(description: "bytes after the segment's trailer") }
                return nil
            }
            var position = at + 1
            switch buffer[at] {
            case UInt8(ascii: "C"):
                return try parseCommit(at: position, numbersFirst: true)
            case UInt8(ascii: "I"):
                guard has(4, from: position) else { return nil }
                let count = Int(read(UInt32.self, &position))
                for _ in 0..<count {
                    guard has(24, from: position) else { return nil }
                    position += 20
                    let pages = Int(read(UInt32.self, &position))
                    guard has(pages * 48, from: position) else { return nil }
                    position += pages * 48
                }
                at = position
                return try parseTagged()
            case UInt8(ascii: "T"):
                guard has(SegmentFormatV3.trailerPayload - 1, from: position) else { return nil }
                at = position + SegmentFormatV3.trailerPayload - 1
                sawTrailer = true
                return nil
            default:
                throw FormatError(description: "unknown record \(buffer[at]) at byte \(offset + at) of the segment")
            }
        }
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

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
