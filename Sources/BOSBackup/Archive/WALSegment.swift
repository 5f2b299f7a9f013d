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

/// The bytes of a WAL segment before gzip (docs/DESIGN.md "WAL segments"):
/// `BOSWAL01`, the page size (UInt32), then per commit: txid (Int64), seen-at
/// (Float64 Unix seconds), page count after the commit (UInt32), number of
/// pages (UInt32), and that many (page number UInt32, page bytes). All
/// little-endian. A segment holds whole commits only.
enum WALSegment {
    static let magic = Array("BOSWAL01".utf8)

    static func encode(_ commits: [ArchivedCommit], pageSize: Int) -> Data {
        var data = Data(magic)
        func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
        put(UInt32(pageSize))
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

    static func decode(_ data: Data) throws -> (pageSize: Int, commits: [ArchivedCommit]) {
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
        guard bytes.count >= 12, Array(bytes[0..<8]) == magic else { throw FormatError(description: "not a WAL segment (no BOSWAL01 header)") }
        at = 8
        let pageSize = Int(try take(UInt32.self))
        guard pageSize >= 512, pageSize <= 65_536 else { throw FormatError(description: "segment page size \(pageSize)") }
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
        return (pageSize, commits)
    }
}
