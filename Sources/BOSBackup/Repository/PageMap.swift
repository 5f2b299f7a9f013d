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
        guard pageCount > 0 else { return [] }
        guard parent.pageSize == pageSize else { return Array(1...pageCount) }
        var changed: [Int] = []
        hashes.withUnsafeBytes { mine in
            parent.hashes.withUnsafeBytes { theirs in
                for page in 1...pageCount {
                    let offset = (page - 1) * Self.hashBytes
                    if page > parent.pageCount || memcmp(mine.baseAddress! + offset, theirs.baseAddress! + offset, Self.hashBytes) != 0 {
                        changed.append(page)
                    }
                }
            }
        }
        return changed
    }

    /// The bytes stored (before gzip).
    public func encoded() -> Data {
        // Sized once: grown by appending, the 4 MB per GB of a big map was copied into twice its size.
        var data = Data(capacity: 16 + hashes.count)
        data.append(contentsOf: Self.magic)
        for value in [UInt32(pageSize), UInt32(pageCount)] { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
        data.append(contentsOf: hashes)
        return data
    }

    public static func decode(_ data: Data) throws -> PageMap {
        // One copy (the hashes), not three: a page map is 4 MB per GB of database.
        guard data.count >= 16, data.prefix(8).elementsEqual(magic) else { throw PageMapError("not a page map (no BOSPMAP1 header)") }
        func u32(_ at: Int) -> Int {
            let base = data.startIndex + at
            return Int(UInt32(data[base]) | UInt32(data[base + 1]) << 8 | UInt32(data[base + 2]) << 16 | UInt32(data[base + 3]) << 24)
        }
        let (pageSize, count) = (u32(8), u32(12))
        guard data.count == 16 + count * hashBytes else {
            throw PageMapError("page map says \(count) pages but holds \((data.count - 16) / hashBytes)")
        }
        return PageMap(pageSize: pageSize, hashes: [UInt8](data.dropFirst(16)))
    }
}

public struct PageMapError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Fills a page map from several compression workers at once: each writes
/// the hashes of the pages of its own block, a range no other worker touches.
final class PageMapBuilder: @unchecked Sendable {
    let pageSize: Int
    private var storage: UnsafeMutableRawBufferPointer?
    let pageCount: Int

    init(pageSize: Int, pageCount: Int) {
        self.pageSize = pageSize
        self.pageCount = pageCount
        storage = .allocate(byteCount: max(1, pageCount * PageMap.hashBytes), alignment: 16)
    }

    deinit { storage?.deallocate() }

    /// Hashes the pages in `bytes`, which start at byte `offset` of the database.
    func hashPages(_ bytes: UnsafeRawBufferPointer, at offset: Int64) {
        var position = 0
        var page = Int(offset / Int64(pageSize))
        while position < bytes.count, page < pageCount {
            let end = min(bytes.count, position + pageSize)
            let digest = SHA256.hash(data: UnsafeRawBufferPointer(rebasing: bytes[position..<end]))
            digest.withUnsafeBytes { full in
                (storage!.baseAddress! + page * PageMap.hashBytes).copyMemory(from: full.baseAddress!, byteCount: PageMap.hashBytes)
            }
            position = end
            page += 1
        }
    }

    /// The map, once every worker is done; the builder's own buffer is freed at once.
    func finish() -> PageMap {
        let map = PageMap(pageSize: pageSize, hashes: [UInt8](UnsafeRawBufferPointer(rebasing: storage![..<(pageCount * PageMap.hashBytes)])))
        storage?.deallocate()
        storage = nil
        return map
    }
}
