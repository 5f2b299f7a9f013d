import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One version of a page: its bytes, or the gzip member it was shipped as in a
/// `BOSWAL03` segment, inflated (and checked against its index's SHA-256) only
/// when somebody reads it. The timeline passes every version of every page a
/// commit wrote, and most are overwritten by the next commit unread (an index's
/// right-most leaf, a busy table's last page).
enum PageVersion: Sendable {
    case bytes([UInt8])
    /// The member in memory (a segment streamed from a target that does not read ranges now).
    case member(PageMember)
    /// Where its member lies in a segment read by ranges (`StoredPages`): nothing of it is
    /// read until somebody reads the page.
    case stored(StoredPage)

    /// What it holds in memory.
    var size: Int {
        switch self {
        case .bytes(let b): return b.count
        case .member(let m): return m.bytes.count
        case .stored: return MemoryLayout<StoredPage>.stride
        }
    }
}

/// A page's gzip member, the SHA-256 its (checked) index gives for the page, and
/// where it lies (named when it turns out damaged).
struct PageMember: Sendable {
    var bytes: [UInt8]
    var digest: PageDigest
    var key: String
    var offset: Int64
}

/// A page member's place in one of the segments `StoredPages` reads, and the
/// SHA-256 its index gives for the page.
struct StoredPage: Sendable {
    var segment: Int32
    var offset: Int64
    var length: UInt32
    var digest: PageDigest
}

/// The segments a timeline walks by their indexes, on a target that reads ranges
/// without waiting: a page member is read when the walk reads that page, and
/// checked against the SHA-256 its (checked) index gives. A walk that follows
/// one row reads the few pages on its way, not the day's archive.
final class StoredPages {
    private let target: ReadsRangesNow
    private var keys: [String] = []
    /// The segments read from lately, open (a walk reads mostly from the one it is in).
    private var open: [Int32: RangeReader] = [:]

    init(_ target: ReadsRangesNow) { self.target = target }

    func add(_ record: WALSegmentRecord) -> Int32 {
        keys.append(record.objectKey)
        return Int32(keys.count - 1)
    }

    func member(_ page: StoredPage) throws -> PageMember {
        let key = keys[Int(page.segment)]
        let bytes: [UInt8]
        do {
            if open[page.segment] == nil {
                if open.count >= 16 { open.removeAll() }
                open[page.segment] = try target.rangeReader(key: key)
            }
            bytes = try open[page.segment]!.read(page.offset, Int(page.length))
        } catch TargetError.notFound {
            throw PointInTimeError.segmentDamaged(key: key, why: "it is missing")
        }
        guard bytes.count == page.length else { throw PointInTimeError.segmentDamaged(key: key, why: "it ends before byte \(page.offset + Int64(page.length)) (cut short)") }
        return PageMember(bytes: bytes, digest: page.digest, key: key, offset: page.offset)
    }
}

/// Inflates page members, each checked against its index's SHA-256: one
/// decompressor, reused; a stored page is read first (`stored`).
final class PageInflater {
    let pageSize: Int
    var stored: StoredPages?
    /// Checks the pages' SHA-256 on another core (the timeline); nil: each before it is returned.
    var verifier: PageVerifier?
    private lazy var decompressor: GzipBlockDecompressor? = try? GzipBlockDecompressor()

    init(pageSize: Int) { self.pageSize = pageSize }

    func bytes(_ version: PageVersion, page number: UInt32) throws -> [UInt8] {
        switch version {
        case .bytes(let bytes): return bytes
        case .member(let member): return try inflate(member, page: number)
        case .stored(let place):
            guard let stored else { throw CompressionError("page \(number): a stored page with no segments to read it from") }
            return try inflate(try stored.member(place), page: number)
        }
    }

    private func inflate(_ member: PageMember, page number: UInt32) throws -> [UInt8] {
        guard let decompressor else { throw CompressionError("libdeflate: out of memory") }
        var page = [UInt8](repeating: 0, count: pageSize)
        let produced: Int
        do {
            produced = try page.withUnsafeMutableBytes { out in try member.bytes.withUnsafeBytes { try decompressor.decompress($0, into: out) } }
        } catch let error as CompressionError {
            throw PointInTimeError.segmentDamaged(key: member.key, why: "page \(number) at byte \(member.offset): \(error)")
        }
        guard produced == pageSize else {
            throw PointInTimeError.segmentDamaged(key: member.key, why: "page \(number) at byte \(member.offset) inflates to \(produced) bytes, not \(pageSize)")
        }
        if let verifier {
            try verifier.check(page, member, number: number)
        } else if page.withUnsafeBytes({ PageDigest(of: $0) }) != member.digest {
            throw PointInTimeError.segmentDamaged(key: member.key, why: "page \(number) at byte \(member.offset) is not the page shipped")
        }
        return page
    }
}

/// Pages written onto a database file, each held in memory (its last version)
/// until `limit` bytes of them are, then written to the file: a BOS rewrites
/// the same pages commit after commit, and writing each through was a large
/// part of rolling an archive forward. Used by `restore --at` and the timeline.
final class HeldPages {
    let file: FileHandleFD
    let pageSize: Int
    let limit: Int
    let inflater: PageInflater
    private var held: [UInt32: PageVersion] = [:]
    private var size = 0

    init(file: FileHandleFD, pageSize: Int, limit: Int) {
        (self.file, self.pageSize, self.limit) = (file, pageSize, limit)
        inflater = PageInflater(pageSize: pageSize)
    }

    /// The version held, as it is (a member stays one).
    func version(_ number: UInt32) -> PageVersion? { held[number] }

    /// The bytes held, a member inflated (and kept so: it is being read).
    func bytes(_ number: UInt32) throws -> [UInt8]? {
        switch held[number] {
        case nil: return nil
        case .bytes(let bytes)?: return bytes
        case let member?:
            let bytes = try inflater.bytes(member, page: number)
            put(number, .bytes(bytes))
            return bytes
        }
    }

    func put(_ number: UInt32, _ bytes: [UInt8]) { put(number, .bytes(bytes)) }

    func put(_ number: UInt32, _ version: PageVersion) {
        size += version.size - (held.updateValue(version, forKey: number)?.size ?? 0)
    }

    /// Writes what is held once it passes the limit (memory stays flat on any archive).
    func flushIfFull() throws {
        if size > limit { try flush() }
    }

    /// The database shrank to `count` pages: pages past it are dropped and the file is cut
    /// (a page it later grows back into is then zeros, as in SQLite's own file).
    func cut(to count: UInt32) throws {
        held = held.filter { $0.key <= count }
        size = held.values.reduce(0) { $0 + $1.size }
        guard ftruncate(file.fd, off_t(count) * off_t(pageSize)) == 0 else { throw FileError("size", file.path) }
    }

    /// Writes every held page at its offset. Stored pages are read in the order they lie in
    /// their segments (the held pages of a day's walk lie all over its archive; taken in the
    /// dictionary's order, each was a read somewhere else on the disk).
    func flush() throws {
        let order = held.map { number, version in
            if case .stored(let page) = version { return (page.segment, page.offset, number) }
            return (-1, 0, number)
        }.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
        for (_, _, number) in order {
            guard let version = held[number] else { continue }
            try inflater.bytes(version, page: number).withUnsafeBytes { try file.write($0, at: Int64(number - 1) * Int64(pageSize)) }
        }
        held.removeAll(keepingCapacity: true)
        size = 0
    }
}
