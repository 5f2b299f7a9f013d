import Foundation

/// Pages of a database image by number: the image as it is now, or as it was
/// before the commit being applied (the timeline compares the two).
protocol PageSource {
    /// Bytes per page, and how many of them b-tree cells may use (page size less the reserved bytes).
    var pageSize: Int { get }
    var usableSize: Int { get }
    func page(_ number: UInt32) throws -> [UInt8]
}

struct BTreeFormatError: Error, CustomStringConvertible {
    let description: String
}

/// One b-tree page read from its bytes, as SQLite lays it out
/// (sqlite.org/fileformat2.html, "B-tree Pages"): a header (at byte 100 on
/// page 1), the cell pointer array, and cells. Table b-trees hold rows by rowid
/// in their leaves; index b-trees (and WITHOUT ROWID tables) hold records in
/// every page, interior ones too.
struct BTreePage {
    enum Kind: UInt8 {
        case interiorIndex = 2, interiorTable = 5, leafIndex = 10, leafTable = 13
    }

    /// A cell's payload: where its local part is, its whole size, and its first overflow page.
    struct Payload {
        var local: Range<Int>
        var size: Int
        var overflow: UInt32?
    }

    let number: UInt32
    let bytes: [UInt8]
    let kind: Kind
    private let header: Int

    /// Nil when the bytes are not a b-tree page (a freelist, overflow or zeroed page).
    init?(number: UInt32, bytes: [UInt8]) {
        header = number == 1 ? 100 : 0
        guard bytes.count >= header + 12, let kind = Kind(rawValue: bytes[header]) else { return nil }
        self.number = number
        self.bytes = bytes
        self.kind = kind
    }

    var isLeaf: Bool { kind == .leafTable || kind == .leafIndex }
    var isTable: Bool { kind == .leafTable || kind == .interiorTable }
    var cellCount: Int { Int(u16(header + 3)) }

    /// The children of an interior page, left to right (the right-most pointer last).
    func children() throws -> [UInt32] {
        guard !isLeaf else { return [] }
        var result: [UInt32] = []
        result.reserveCapacity(cellCount + 1)
        for index in 0..<cellCount { result.append(u32(try cellStart(index))) }
        result.append(u32(header + 8))
        return result
    }

    /// Where cell `index` starts (checked to lie in the page).
    func cellStart(_ index: Int) throws -> Int {
        let offset = Int(u16(header + (isLeaf ? 8 : 12) + 2 * index))
        guard offset >= header + 8, offset < bytes.count - 4 else {
            throw BTreeFormatError(description: "page \(number): cell \(index) points outside the page")
        }
        return offset
    }

    /// The child of a table interior page whose subtree holds `rowid`: the left child of the
    /// first cell whose key is at least it (a left child holds the keys up to its cell's),
    /// else the right-most pointer.
    func child(forRowid rowid: Int64) throws -> UInt32 {
        var (low, high) = (0, cellCount)
        while low < high {
            let middle = (low + high) / 2
            var at = try cellStart(middle) + 4
            if Int64(bitPattern: varint(&at)) >= rowid { high = middle } else { low = middle + 1 }
        }
        return low < cellCount ? u32(try cellStart(low)) : u32(header + 8)
    }

    /// The rowid of a table leaf's cell.
    func rowid(_ index: Int) throws -> Int64 {
        var at = try cellStart(index)
        _ = varint(&at)
        return Int64(bitPattern: varint(&at))
    }

    /// The cell of a table leaf that holds `rowid` (cells lie in rowid order), nil when none does.
    func cell(forRowid rowid: Int64) throws -> Int? {
        var (low, high) = (0, cellCount)
        while low < high {
            let middle = (low + high) / 2
            let found = try self.rowid(middle)
            if found == rowid { return middle }
            if found < rowid { low = middle + 1 } else { high = middle }
        }
        return nil
    }

    /// The payload of a leaf cell (table or index) or of an index interior cell.
    func payload(_ index: Int, usableSize: Int) throws -> Payload {
        var at = try cellStart(index)
        if kind == .interiorIndex { at += 4 }
        let size = Int(varint(&at))
        if kind == .leafTable { _ = varint(&at) }
        // How much stays on the page (fileformat2.html, "Cell Payload Overflow Pages").
        let maxLocal = kind == .leafTable ? usableSize - 35 : (usableSize - 12) * 64 / 255 - 23
        let minLocal = (usableSize - 12) * 32 / 255 - 23
        var local = size
        if size > maxLocal {
            let k = minLocal + (size - minLocal) % (usableSize - 4)
            local = k <= maxLocal ? k : minLocal
        }
        let end = at + local
        guard end + (local < size ? 4 : 0) <= bytes.count else {
            throw BTreeFormatError(description: "page \(number): cell \(index) runs past the page")
        }
        return Payload(local: at..<end, size: size, overflow: local < size ? u32(end) : nil)
    }

    /// A cell's whole payload: its local part and the overflow pages after it.
    func fullPayload(_ index: Int, from source: PageSource) throws -> [UInt8] {
        let payload = try payload(index, usableSize: source.usableSize)
        var result = Array(bytes[payload.local])
        try overflow(payload, of: index, from: source) { _, page, take in result.append(contentsOf: page[4..<(4 + take)]) }
        return result
    }

    /// The overflow pages a cell's payload continues on, in order (none for a cell that fits).
    func overflowPages(_ index: Int, from source: PageSource) throws -> [UInt32] {
        var pages: [UInt32] = []
        try overflow(try payload(index, usableSize: source.usableSize), of: index, from: source) { number, _, _ in pages.append(number) }
        return pages
    }

    /// Follows a payload's overflow chain: each page's number, bytes, and how many payload bytes it holds.
    private func overflow(_ payload: Payload, of index: Int, from source: PageSource, _ visit: (UInt32, [UInt8], Int) throws -> Void) throws {
        var next = payload.overflow
        var left = payload.size - payload.local.count
        var pages = 0
        while let page = next, left > 0 {
            pages += 1
            guard page != 0, pages <= 1 << 20 else { throw BTreeFormatError(description: "page \(number): cell \(index) has a broken overflow chain") }
            let bytes = try source.page(page)
            let take = min(left, source.usableSize - 4)
            guard bytes.count >= 4 + take else { throw BTreeFormatError(description: "overflow page \(page) is short") }
            try visit(page, bytes, take)
            left -= take
            next = UInt32(bytes[0]) << 24 | UInt32(bytes[1]) << 16 | UInt32(bytes[2]) << 8 | UInt32(bytes[3])
        }
    }

    private func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) }
    private func u32(_ at: Int) -> UInt32 {
        UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
    }
    private func varint(_ at: inout Int) -> UInt64 { SQLiteVarint.read(bytes, &at) }
}

/// SQLite's variable-length integer: big-endian groups of 7 bits, the ninth byte whole.
enum SQLiteVarint {
    static func read(_ bytes: [UInt8], _ at: inout Int) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<9 {
            guard at < bytes.count else { return value }
            let byte = bytes[at]
            at += 1
            if i == 8 { return value << 8 | UInt64(byte) }
            value = value << 7 | UInt64(byte & 0x7f)
            if byte < 0x80 { return value }
        }
        return value
    }
}
