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

    /// zlib's streaming inflater, after checking that libdeflate's member inflater (which
    /// WAL segments are read with) gives the same bytes, or fails too.
    func inflate(_ data: Data) throws -> Data {
        var members = Data()
        let byMember = Result { try inflate(data, with: try GzipMemberInflater { members.append(contentsOf: $0) }) }
        var out = Data()
        let inflater = try GzipStreamInflater { out.append(contentsOf: $0) }
        do {
            try inflate(data, with: inflater)
        } catch {
            XCTAssertThrowsError(try byMember.get(), "zlib failed (\(error)); the member inflater must too")
            throw error
        }
        XCTAssertNoThrow(try byMember.get())
        XCTAssertEqual(members, out)
        return out
    }

    /// Feeds in odd-sized chunks to exercise member boundaries inside a chunk.
    func inflate(_ data: Data, with inflater: some GzipChunkInflater, chunk: Int = 7_777) throws {
        var offset = 0
        while offset < data.count {
            let end = min(data.count, offset + chunk)
            try data[offset..<end].withUnsafeBytes { try inflater.feed($0) }
            offset = end
        }
        try inflater.finish()
    }

    /// Random bytes compress to stored blocks: the gzip magic written into the data shows in
    /// the compressed stream, where the member inflater must not take it for a member's start.
    func testMemberInflaterIsNotFooledByTheMagicInsideCompressedData() throws {
        let dir = TempDir()
        var rng = SeededRandom(seed: 3)
        var bytes = (0..<400_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for at in stride(from: 100, to: bytes.count - 40, by: 997) {
            bytes.replaceSubrange(at..<(at + 3), with: [0x1f, 0x8b, 0x08])
        }
        let data = Data(bytes)
        let (path, summary) = try compress(data, blockSize: 64 << 10, in: dir)
        XCTAssertEqual(summary.blocks.count, 7)
        let stored = try Data(contentsOf: URL(fileURLWithPath: path))
        let magic = (0..<(stored.count - 2)).filter { stored[$0] == 0x1f && stored[$0 + 1] == 0x8b && stored[$0 + 2] == 0x08 }
        XCTAssertGreaterThan(magic.count, summary.blocks.count + 50, "the magic inside the compressed stream, not only at members' starts")
        for chunk in [1, 4_096, 7_777, stored.count] {
            var out = Data()
            let inflater = try GzipMemberInflater { out.append(contentsOf: $0) }
            try inflate(stored, with: inflater, chunk: chunk)
            XCTAssertEqual(out, data, "chunks of \(chunk)")
            XCTAssertEqual(inflater.members, 7)
        }
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
        XCTAssertThrowsError(try inflate(stored.prefix(stored.count - 3), with: try GzipMemberInflater { _ in })) { error in
            guard case GzipStreamInflater.Failure.corrupt(let why, _) = error, why.contains("cut short") else { return XCTFail("\(error)") }
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

/// Both gzip inflaters, fed alike in the tests.
protocol GzipChunkInflater {
    func feed(_ input: UnsafeRawBufferPointer) throws
    func finish() throws
}

extension GzipStreamInflater: GzipChunkInflater {}
extension GzipMemberInflater: GzipChunkInflater {}
