@testable import BOSBackup
import Foundation
import XCTest

/// The timeline asks for the segments ahead of its walk (`SegmentReadAhead`):
/// each once, no further than its window, whatever the walk skips.
final class SegmentReadAheadTests: XCTestCase {
    /// Records what it is asked to read ahead.
    final class AskedTarget: ReadsRangesNow, @unchecked Sendable {
        private let lock = NSLock()
        private var keys: [String] = []
        var asked: [String] { lock.withLock { keys } }
        func rangeReader(key: String) throws -> RangeReader { throw TargetError.notFound(key: key, target: "asked") }
        func readAhead(key: String) { lock.withLock { keys.append(key) } }
    }

    func segment(_ n: Int, megabytes: Int64) -> WALSegmentRecord {
        WALSegmentRecord(generation: "g", target: "nas", objectKey: "s\(n)", firstTxid: Int64(n), lastTxid: Int64(n),
                         firstSeen: Date(), lastSeen: Date(), position: WALPosition(salt1: 0, salt2: 0, frame: 0, checksum: .zero),
                         pageCount: 1, bytes: megabytes << 20, sha256: "", shippedAt: Date())
    }

    func testAsksForEachSegmentOnceWithinItsWindowAhead() {
        let target = AskedTarget()
        let ahead = SegmentReadAhead(target: target, segments: (0..<10).map { segment($0, megabytes: 10) }, window: 25 << 20)
        ahead.reached(0)
        ahead.settle()
        XCTAssertEqual(target.asked, ["s0", "s1", "s2"], "25 MB ahead of the start: the segment reached and two more")
        ahead.reached(1)
        ahead.reached(1)
        ahead.settle()
        XCTAssertEqual(target.asked, ["s0", "s1", "s2", "s3"], "one step on: only the one new segment, asked once")
        ahead.reached(6)
        ahead.reached(9)
        ahead.settle()
        XCTAssertEqual(target.asked, ["s0", "s1", "s2", "s3", "s6", "s7", "s8", "s9"], "a jump asks from where the walk is, up to the last segment")
    }

    func testAFolderTargetTakesAdviceForAMissingSegmentSilently() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("readahead-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("segment".utf8).write(to: dir.appendingPathComponent("there"))
        guard let target = try TargetFactory.open(url: "file://" + dir.path) as? ReadsRangesNow else { return XCTFail("a folder reads ranges") }
        target.readAhead(key: "missing")   // nothing to say: the read that needs it says it is missing
        target.readAhead(key: "there")
        XCTAssertEqual(try target.rangeReader(key: "there").read(0, 7), Array("segment".utf8))
        XCTAssertThrowsError(try target.rangeReader(key: "missing"))
    }
}
