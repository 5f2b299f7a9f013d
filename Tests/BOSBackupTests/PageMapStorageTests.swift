@testable import BOSBackup
import Foundation
import XCTest

/// A page map is stored in 1 MiB gzip members (a 1 GB database's is 4 MB): its reader
/// and gunzip take them whole, and it comes back as it went.
final class PageMapStorageTests: XCTestCase {
    func testABigPageMapIsStoredInMembersThatItsReaderAndGunzipTakeWhole() throws {
        let dir = TempDir()
        let target = try TargetFactory.open(url: "file://" + dir.path)
        // 100,000 pages (a 400 MB database): 1.6 MB of hashes, so two members and part of a third.
        let hashes = (0..<100_000 * PageMap.hashBytes).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 11) }
        let map = PageMap(pageSize: 4096, hashes: hashes)
        let encoded = map.encoded()
        XCTAssertEqual(encoded.count, 16 + hashes.count)
        let stored = try runAsync { try await Repository(target: target).putPageMap(encoded, key: "m.pagemap.gz", level: 6) }
        XCTAssertEqual(stored.ref.sha256, SHA256Stream.hex(of: encoded))

        let file = try Data(contentsOf: URL(fileURLWithPath: dir.file("m.pagemap.gz")))
        var raw = Data()
        let inflater = try GzipStreamInflater { raw.append(contentsOf: $0) }
        try file.withUnsafeBytes { try inflater.feed($0) }
        try inflater.finish()
        XCTAssertEqual(try PageMap.decode(raw), map)

        let gunzip = try runProcess("/bin/sh", ["-c", "gzip -dc < '\(dir.file("m.pagemap.gz"))' > '\(dir.file("m.raw"))'"])
        XCTAssertEqual(gunzip.status, 0, gunzip.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir.file("m.raw"))), encoded)
        // More than one member: the last one's length (its trailer's ISIZE) is not the whole map's.
        let last = file.suffix(4).reversed().reduce(0) { $0 << 8 | Int($1) }
        XCTAssertEqual(last, encoded.count % (1 << 20), "1 MiB members, the last one the rest")
    }
}
