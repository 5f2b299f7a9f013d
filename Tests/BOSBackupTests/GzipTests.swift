@testable import BOSBackup
import Foundation
import XCTest

final class GzipTests: XCTestCase {
    /// Compresses `data` with the block writer into a file target object; returns (path, summary).
    func compress(_ data: Data, blockSize: Int, in dir: TempDir) throws -> (String, CompressedObject) {
        let input = dir.file("input.bin")
        try data.write(to: URL(fileURLWithPath: input))
        let target = try FileTarget(url: "file://" + dir.file("t"))
        let summary: CompressedObject = try runAsync {
            let writer = try await target.makeWriter(key: "x.gz")
            let summary = try await BlockGzipWriter(level: 6, blockSize: blockSize).write(file: input, to: writer)
            try await writer.commit()
            return summary
        }
        return (dir.file("t/x.gz"), summary)
    }

    func inflate(_ data: Data) throws -> Data {
        var out = Data()
        let inflater = try GzipStreamInflater { out.append(contentsOf: $0) }
        // Feed in odd-sized chunks to exercise member boundaries inside a chunk.
        var offset = 0
        while offset < data.count {
            let end = min(data.count, offset + 7_777)
            try data[offset..<end].withUnsafeBytes { try inflater.feed($0) }
            offset = end
        }
        try inflater.finish()
        return out
    }

    func testBlocksAreGzipMembersThatGunzipReads() throws {
        let dir = TempDir()
        var rng = SeededRandom(seed: 1)
        let data = Data((0..<300_000).map { _ in UInt8.random(in: 0...15, using: &rng) })
        let (path, summary) = try compress(data, blockSize: 64 << 10, in: dir)
        XCTAssertEqual(summary.blocks.count, 5, "300 000 bytes in 64 KiB blocks")
        XCTAssertEqual(summary.rawBytes, Int64(data.count))
        XCTAssertEqual(summary.storedBytes, DurableFile.fileSize(path))
        XCTAssertEqual(summary.storedSHA256, try SHA256Stream.hex(ofFile: path))
        // Every block offset starts a gzip member.
        let stored = try Data(contentsOf: URL(fileURLWithPath: path))
        for block in summary.blocks {
            XCTAssertEqual(stored[Int(block.offset)], 0x1f)
            XCTAssertEqual(stored[Int(block.offset) + 1], 0x8b)
        }
        // The real gunzip reads the concatenated members as one stream.
        let gunzip = try runProcess("/bin/sh", ["-c", "gunzip -c '\(path)' > '\(dir.file("out.bin"))'"])
        XCTAssertEqual(gunzip.status, 0, gunzip.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir.file("out.bin"))), data)
        XCTAssertEqual(try inflate(stored), data)
    }

    func testEmptyInputIsAValidGzipFile() throws {
        let dir = TempDir()
        let (path, summary) = try compress(Data(), blockSize: 1 << 16, in: dir)
        XCTAssertEqual(summary.rawBytes, 0)
        XCTAssertEqual(try runProcess("/bin/sh", ["-c", "gunzip -t '\(path)'"]).status, 0)
    }

    func testTruncatedStreamIsReported() throws {
        let dir = TempDir()
        let data = Data(repeating: 65, count: 200_000)
        let (path, _) = try compress(data, blockSize: 64 << 10, in: dir)
        let stored = try Data(contentsOf: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try inflate(stored.prefix(stored.count - 3))) { error in
            guard case GzipStreamInflater.Failure.truncated = error else { return XCTFail("\(error)") }
        }
    }

    func testBitFlipIsReportedAsCorruption() throws {
        let dir = TempDir()
        var rng = SeededRandom(seed: 2)
        let data = Data((0..<200_000).map { _ in UInt8.random(in: 0...3, using: &rng) })
        let (path, _) = try compress(data, blockSize: 64 << 10, in: dir)
        var stored = try Data(contentsOf: URL(fileURLWithPath: path))
        stored[stored.count / 2] ^= 0x10
        XCTAssertThrowsError(try inflate(stored)) { error in
            guard case GzipStreamInflater.Failure.corrupt = error else { return XCTFail("\(error)") }
        }
    }

    func testNotGzipIsReported() throws {
        XCTAssertThrowsError(try inflate(Data("SQLite format 3\u{0}".utf8))) { error in
            guard case GzipStreamInflater.Failure.notGzip = error else { return XCTFail("\(error)") }
        }
    }

    func testLevelOutsideOneToNineIsRefused() {
        XCTAssertThrowsError(try GzipBlockCompressor(level: 0, blockSize: 1024))
        XCTAssertThrowsError(try GzipBlockCompressor(level: 10, blockSize: 1024))
    }
}
