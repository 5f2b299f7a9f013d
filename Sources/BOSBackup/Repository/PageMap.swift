import Crypto
import Foundation

/// One hash per database page: what an incremental snapshot compares with
/// its parent's to find the pages that changed. SHA-256 truncated to 128
/// bits, never a CRC: a change the hash misses is a page silently left out
/// of every later restore.
///
/// Stored as `<name>.pagemap.gz` (gzip of): the 8 bytes `BOSPMAP1`, the page
/// size and the page count as little-endian UInt32, then `pageCount` hashes
/// of 16 bytes, page 1 first.
public struct PageMap: Equatable, Sendable {
    public static let hashBytes = 16
    static let magic = Array("BOSPMAP1".utf8)

    public let pageSize: Int
    public private(set) var hashes: [UInt8]
    public var pageCount: Int { hashes.count / Self.hashBytes }

    public init(pageSize: Int, pageCount: Int) {
        self.pageSize = pageSize
        hashes = [UInt8](repeating: 0, count: pageCount * Self.hashBytes)
    }

    init(pageSize: Int, hashes: [UInt8]) {
        self.pageSize = pageSize
        self.hashes = hashes
    }

    /// The hash of page `page` (1-based), or nil past the end.
    public func hash(ofPage page: Int) -> ArraySlice<UInt8>? {
        guard page >= 1, page <= pageCount else { return nil }
        let start = (page - 1) * Self.hashBytes
        return hashes[start..<start + Self.hashBytes]
    }

    /// Pages of `self` whose hash differs from `parent`'s, or that `parent` lacks.
    public func changedPages(since parent: PageMap) -> [Int] {
        hashes.withUnsafeBytes { Self.changedPages(hashes: $0, pageSize: pageSize, since: parent) }
    }

    /// Pages whose hash in `hashes` (page 1 first) differs from `parent`'s, or that `parent` lacks.
    static func changedPages(hashes mine: UnsafeRawBufferPointer, pageSize: Int, since parent: PageMap) -> [Int] {
        let pageCount = mine.count / hashBytes
        guard pageCount > 0 else { return [] }
        guard parent.pageSize == pageSize else { return Array(1...pageCount) }
        var changed: [Int] = []
        parent.hashes.withUnsafeBytes { theirs in
            for page in 1...pageCount {
                let offset = (page - 1) * hashBytes
                if page > parent.pageCount || memcmp(mine.baseAddress! + offset, theirs.baseAddress! + offset, hashBytes) != 0 {
                    changed.append(page)
                }
            }
        }
        return changed
    }

    /// The bytes stored (before gzip).
    public func encoded() -> Data {
        // Sized once: grown by appending, the 4 MB per GB of a big map was copied into twice its size.
        var data = Data(capacity: Self.headerBytes + hashes.count)
        data.append(contentsOf: Self.header(pageSize: pageSize, pageCount: pageCount))
        data.append(contentsOf: hashes)
        return data
    }

    static let headerBytes = 16

    /// What the hashes follow: the magic, the page size and the page count.
    static func header(pageSize: Int, pageCount: Int) -> [UInt8] {
        var header = magic
        for value in [UInt32(pageSize), UInt32(pageCount)] { withUnsafeBytes(of: value.littleEndian) { header.append(contentsOf: $0) } }
        return header
    }

    public static func decode(_ data: Data) throws -> PageMap {
        // One copy (the hashes), not three: a page map is 4 MB per GB of database.
        guard data.count >= headerBytes, data.prefix(8).elementsEqual(magic) else { throw PageMapError("not a page map (no BOSPMAP1 header)") }
        func u32(_ at: Int) -> Int {
            let base = data.startIndex + at
            return Int(UInt32(data[base]) | UInt32(data[base + 1]) << 8 | UInt32(data[base + 2]) << 16 | UInt32(data[base + 3]) << 24)
        }
        let (pageSize, count) = (u32(8), u32(12))
        guard data.count == headerBytes + count * hashBytes else {
            throw PageMapError("page map says \(count) pages but holds \((data.count - headerBytes) / hashBytes)")
        }
        return PageMap(pageSize: pageSize, hashes: [UInt8](data.dropFirst(headerBytes)))
    }
}

public struct PageMapError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Fills a page map from several compression workers at once: each writes
/// the hashes of the pages of its own block, a range no other worker touches.
/// The hashes are written where the stored map has them, after room for its
/// header, so the map is stored without a copy (4 MB per GB of database: the
/// copy into a `PageMap` and then into its encoding were two more at the end of
/// every base snapshot, beside the last part of its upload).
final class PageMapBuilder: @unchecked Sendable {
    let pageSize: Int
    private var storage: UnsafeMutableRawBufferPointer?
    let pageCount: Int

    init(pageSize: Int, pageCount: Int) {
        self.pageSize = pageSize
        self.pageCount = pageCount
        storage = .allocate(byteCount: PageMap.headerBytes + pageCount * PageMap.hashBytes, alignment: 16)
    }

    deinit { storage?.deallocate() }

    private var hashes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(rebasing: storage![PageMap.headerBytes...]) }

    /// Hashes the pages in `bytes`, which start at byte `offset` of the database.
    func hashPages(_ bytes: UnsafeRawBufferPointer, at offset: Int64) {
        var position = 0
        var page = Int(offset / Int64(pageSize))
        let hashes = self.hashes
        while position < bytes.count, page < pageCount {
            let end = min(bytes.count, position + pageSize)
            let digest = SHA256.hash(data: UnsafeRawBufferPointer(rebasing: bytes[position..<end]))
            digest.withUnsafeBytes { full in
                (hashes.baseAddress! + page * PageMap.hashBytes).copyMemory(from: full.baseAddress!, byteCount: PageMap.hashBytes)
            }
            position = end
            page += 1
        }
    }

    /// Pages whose hash differs from `parent`'s, or that `parent` lacks (once every worker is done).
    func changedPages(since parent: PageMap) -> [Int] {
        PageMap.changedPages(hashes: UnsafeRawBufferPointer(hashes), pageSize: pageSize, since: parent)
    }

    /// The stored map's bytes (before gzip), once every worker is done: the builder's own
    /// memory, handed over (the builder holds nothing after).
    func encoded() -> Data {
        let memory = storage!
        storage = nil
        PageMap.header(pageSize: pageSize, pageCount: pageCount).withUnsafeBytes { memory.copyMemory(from: $0) }
        return Data(bytesNoCopy: memory.baseAddress!, count: memory.count, deallocator: .custom { pointer, _ in pointer.deallocate() })
    }
}
