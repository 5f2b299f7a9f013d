@testable import BOSBackup
import Crypto
import Foundation
import XCTest

/// `BOSWAL03` (docs/DESIGN.md "WAL segments"): still gzip that gunzip reads, the
/// same commits read forward, and an index whose every entry points at a gzip
/// member holding exactly that page.
final class SegmentFormatTests: XCTestCase {
    func commits(_ count: Int = 7) -> [ArchivedCommit] {
        var rng = SystemRandomNumberGenerator()
        return (1...count).map { txid in
            let pages = (0..<(txid % 3 + 1)).map { i -> (number: UInt32, bytes: [UInt8]) in
                // Half random, half text: members of different sizes.
                let random = (0..<2_048).map { _ in UInt8.random(in: 0...255, using: &rng) }
                return (UInt32(txid * 10 + i), random + Array(String(repeating: "order \(txid) ", count: 400).utf8.prefix(2_048)))
            }
            return ArchivedCommit(txid: Int64(txid), seenAt: Date(timeIntervalSince1970: 1_800_000_000 + Double(txid) * 0.25),
                                  pageCount: UInt32(100 + txid), pages: pages)
        }
    }

    func testGunzipReadsItAndItReadsBackForwardAndByItsIndex() throws {
        let dir = TempDir()
        let link = SegmentLink(generation: "g1", previousSHA256: String(repeating: "ab", count: 32),
                               from: WALPosition(salt1: 1, salt2: 2, frame: 3, checksum: WALChecksum(s0: 4, s1: 5)),
                               to: WALPosition(salt1: 1, salt2: 2, frame: 30, checksum: WALChecksum(s0: 6, s1: 7)))
        let written = commits()
        let encoded = try SegmentFormatV3.encode(written, pageSize: 4_096, link: link, level: 5)
        let path = dir.file("s.wal.gz")
        try encoded.data.write(to: URL(fileURLWithPath: path))

        let gunzip = try runProcess("/bin/sh", ["-c", "gunzip -c '\(path)' > '\(dir.file("raw"))'"])
        XCTAssertEqual(gunzip.status, 0, gunzip.stderr)
        let raw = try Data(contentsOf: URL(fileURLWithPath: dir.file("raw")))
        XCTAssertEqual(Array(raw.prefix(8)), Array("BOSWAL03".utf8))

        let decoded = try WALSegment.decode(raw)
        XCTAssertEqual(decoded.link, link)
        XCTAssertEqual(decoded.commits.map(\.txid), written.map(\.txid))
        XCTAssertEqual(decoded.commits.map(\.seenAt), written.map(\.seenAt))
        XCTAssertEqual(decoded.commits.flatMap { $0.pages.map(\.bytes) }, written.flatMap { $0.pages.map(\.bytes) })

        let bytes = Array(encoded.data)
        let place = try SegmentFormatV3.indexPlace(trailer: Array(bytes.suffix(SegmentFormatV3.trailerSize)))
        XCTAssertEqual(place.offset, encoded.index.offset)
        XCTAssertEqual(place.length, encoded.index.length)
        let target = try TargetFactory.open(url: "file://" + dir.path)
        let record = WALSegmentRecord(generation: "g1", target: "nas", objectKey: "s.wal.gz", firstTxid: 1, lastTxid: 7,
                                      firstSeen: written[0].seenAt, lastSeen: written[6].seenAt, position: link.to, pageCount: 107,
                                      bytes: Int64(bytes.count), sha256: SHA256Stream.hex(of: encoded.data), shippedAt: Date(), index: encoded.index)
        let repository = Repository(target: target)
        let index = try runAsync { try await repository.segmentIndex(record, encoded.index) }
        XCTAssertEqual(index.map(\.pageCount), written.map(\.pageCount))
        var read: [UInt32: [UInt8]] = [:]
        try runAsync {
            try await repository.segmentPages(record, index.flatMap(\.pages).reversed(), pageSize: 4_096) { number, page in read[number] = Array(page) }
        }
        let expected = Dictionary(written.flatMap(\.pages).map { ($0.number, $0.bytes) }, uniquingKeysWith: { $1 })
        XCTAssertEqual(read, expected)
        XCTAssertEqual(try runAsync { try await repository.segmentIndexRef(key: "s.wal.gz", size: Int64(bytes.count)) }, encoded.index)
    }

    /// A busy second's segment: an index (and so its member) far larger than a page. The
    /// archiver's first version sized its compressor for pages and failed on such a segment.
    func testASegmentOfThousandsOfCommitsHasItsIndex() throws {
        let link = SegmentLink(generation: "g1", previousSHA256: nil,
                               from: WALPosition(salt1: 1, salt2: 2, frame: 0, checksum: WALChecksum(s0: 0, s1: 0)),
                               to: WALPosition(salt1: 1, salt2: 2, frame: 9, checksum: WALChecksum(s0: 0, s1: 0)))
        let written = commits(3_000)
        let encoded = try SegmentFormatV3.encode(written, pageSize: 4_096, link: link, level: 1)
        XCTAssertGreaterThan(encoded.index.length, 100_000)
        let raw = try WALSegment.decode(try gunzip(encoded.data))
        XCTAssertEqual(raw.commits.count, 3_000)
        let place = try SegmentFormatV3.indexPlace(trailer: Array(encoded.data.suffix(SegmentFormatV3.trailerSize)))
        XCTAssertEqual(place.length, encoded.index.length)
    }

    func gunzip(_ data: Data) throws -> Data {
        let dir = TempDir()
        try data.write(to: URL(fileURLWithPath: dir.file("s.gz")))
        XCTAssertEqual(try runProcess("/bin/sh", ["-c", "gunzip -c '\(dir.file("s.gz"))' > '\(dir.file("raw"))'"]).status, 0)
        return try Data(contentsOf: URL(fileURLWithPath: dir.file("raw")))
    }

    /// The bit set restore --at decides pages with answers as a `Set` does, across growth
    /// (page 0 and pages far past the last inserted included).
    func testPageNumberSetAnswersAsASet() {
        var rng = SeededRandom(seed: 42)
        var bits = PageNumberSet(), reference = Set<UInt32>()
        for _ in 0..<20_000 {
            let page = UInt32.random(in: 0...(UInt32.random(in: 0...1) == 0 ? 200 : 400_000), using: &rng)
            XCTAssertEqual(bits.insert(page), reference.insert(page).inserted, "page \(page)")
        }
        for page in [0, 1, 63, 64, 199, 200, 399_999, 400_000, 5_000_000] as [UInt32] {
            XCTAssertEqual(bits.contains(page), reference.contains(page), "page \(page)")
        }
    }
}
