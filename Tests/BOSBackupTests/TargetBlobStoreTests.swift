@testable import BOSBackup
import Foundation
import XCTest

/// The blob-store side of `Target`: ranged reads and the streaming listing, on real folders
/// and a real moto server, plain and encrypted. Every range is checked against the bytes
/// written.
final class TargetBlobStoreTests: XCTestCase {
    /// The chunk size of the small-chunk encrypted objects: a 50,000-byte object has 13 chunks.
    static let chunk = 4096
    static let size = 50_000

    var dir: TempDir!
    let key = EncryptionKey.generate()

    // Made when the test starts, so that it is removed when the test finishes (TempDir).
    override func setUp() { dir = TempDir() }

    func fileTarget() throws -> FileTarget { try FileTarget(url: "file://" + dir.file("nas")) }

    func s3Target(prefix: String = "prod", options: S3Target.Options = .init()) async throws -> S3Target {
        let moto = try MotoServer.shared()
        return try moto.target(bucket: try await moto.makeBucket(), prefix: prefix, options: options)
    }

    // MARK: - Ranged reads

    func testRangedReadsOnAFolder() async throws {
        let target = try fileTarget()
        let data = S3TargetTests.bytes(Self.size, seed: 1)
        try await target.put(key: "2026/snap.db.gz", data: data)
        try await assertRanges(target, key: "2026/snap.db.gz", data: data, chunk: Self.chunk)
        try await assertEmptyObject(target)
        await assertMissing(target)
    }

    func testRangedReadsOnS3() async throws {
        let target = try await s3Target()
        let data = S3TargetTests.bytes(Self.size, seed: 2)
        try await target.put(key: "2026/snap.db.gz", data: data)
        try await assertRanges(target, key: "2026/snap.db.gz", data: data, chunk: Self.chunk)
        try await assertEmptyObject(target)
        await assertMissing(target)
    }

    func testRangedReadsOfEncryptedObjectsOnAFolder() async throws {
        try await assertEncryptedRanges(over: try fileTarget())
    }

    func testRangedReadsOfEncryptedObjectsOnS3() async throws {
        try await assertEncryptedRanges(over: try await s3Target())
    }

    /// An encrypted range is read as the header plus the records that hold it: two GETs
    /// whatever the object's size, and a GET cut short resumes within the range.
    func testRangedReadsOnS3AreTwoRequestsAndResume() async throws {
        let moto = try MotoServer.shared()
        let bucket = try await moto.makeBucket()
        let proxy = try FaultProxy(upstreamPort: moto.port)
        addTeardownBlock { proxy.stop() }
        let retry = S3RetryPolicy(maxAttempts: 5, sleep: { _ in })
        let s3 = try moto.target(bucket: bucket, port: proxy.port, options: .init(retry: retry))
        let data = S3TargetTests.bytes(Self.size, seed: 3)
        try await writeEncrypted(data, to: s3, key: "e.bin", chunkSize: Self.chunk)
        let encrypted = EncryptedTarget(s3, key: key)

        proxy.resetLog()
        let got = try await read(encrypted, "e.bin", offset: 3 * Int64(Self.chunk) + 9, length: 2 * Int64(Self.chunk))
        XCTAssertEqual(got, data.subdata(in: (3 * Self.chunk + 9) ..< (5 * Self.chunk + 9)))
        XCTAssertEqual(proxy.requests { $0.method == "GET" }.count, 2, "the header, then chunks 3 ... 5")

        try await s3.put(key: "plain.bin", data: data)
        proxy.resetLog()
        proxy.inject(.truncateResponse(after: 1000), times: 1) { $0.method == "GET" }
        let resumed = try await read(s3, "plain.bin", offset: 7, length: 30_000)
        XCTAssertEqual(resumed, data.subdata(in: 7 ..< 30_007))
        XCTAssertEqual(proxy.requests { $0.method == "GET" }.count, 2, "cut once, resumed once")
    }

    /// Only the chunks a range covers are authenticated, and each of them is: a damaged
    /// chunk fails the ranges over it and no other; a cut object fails ranges past the cut
    /// (even one that starts beyond it, which must not pass for "past the end").
    func testEncryptedRangesAuthenticateWhatTheyRead() async throws {
        let folder = try fileTarget()
        let data = S3TargetTests.bytes(Self.size, seed: 4)
        try await writeEncrypted(data, to: folder, key: "e.bin", chunkSize: Self.chunk)
        let target = EncryptedTarget(folder, key: key)
        let path = folder.path(for: "e.bin")
        let layout = ChunkLayout(header: try EncryptedStreamHeader.parse(try Data(contentsOf: URL(fileURLWithPath: path))))
        let c = Int64(Self.chunk)

        // One bit flipped in chunk 1's ciphertext: ranges after it still read (so they did not
        // decrypt from the start), ranges over it fail.
        var damaged = try Data(contentsOf: URL(fileURLWithPath: path))
        damaged[Int(layout.recordOffset(ofChunk: 1)) + 14] ^= 0x01
        try damaged.write(to: URL(fileURLWithPath: path))
        let elsewhere = try await read(target, "e.bin", offset: 3 * c + 1, length: 2 * c)
        XCTAssertEqual(elsewhere, data.subdata(in: 3 * Self.chunk + 1 ..< 5 * Self.chunk + 1))
        await assertThrows(EncryptionError.authenticationFailed(chunk: 1)) {
            _ = try await self.read(target, "e.bin", offset: c - 100, length: 2 * c)
        }

        // Cut after chunk 6 (no final chunk any more).
        try Data(damaged.prefix(Int(layout.recordOffset(ofChunk: 7)))).write(to: URL(fileURLWithPath: path))
        let before = try await read(target, "e.bin", offset: 6 * c, length: 10)
        XCTAssertEqual(before, data.subdata(in: 6 * Self.chunk ..< 6 * Self.chunk + 10))
        for (offset, length) in [(6 * c + 10, 3 * c), (9 * c, 10), (40 * c, 1)] {
            do {
                _ = try await read(target, "e.bin", offset: offset, length: length)
                XCTFail("a range past the cut at \(offset) must fail")
            } catch let error as EncryptionError {
                guard case .truncated = error else { return XCTFail("\(error)") }
            }
        }

        // Another key: said so, not "corrupted".
        let other = EncryptedTarget(folder, key: EncryptionKey.generate())
        do {
            _ = try await read(other, "e.bin", offset: 2 * c, length: 10)
            XCTFail("a wrong key must fail")
        } catch let error as EncryptionError {
            guard case .keyMismatch = error else { return XCTFail("\(error)") }
        }
    }

    /// The traits a caller needs instead of casts.
    func testTraits() async throws {
        let folder = try fileTarget()
        let bucket = try await s3Target()
        XCTAssertTrue(folder.isLocal)
        XCTAssertFalse(folder.encrypts)
        XCTAssertFalse(bucket.isLocal)
        XCTAssertFalse(bucket.encrypts)
        XCTAssertTrue(EncryptedTarget(folder, key: key).isLocal)
        XCTAssertTrue(EncryptedTarget(folder, key: key).encrypts)
        XCTAssertFalse(EncryptedTarget(bucket, key: key).isLocal)
        XCTAssertTrue(EncryptedTarget(bucket, key: key).encrypts)
        // A folder's ranged read is a syscall, S3's a round trip, an encrypted one whole chunks.
        XCTAssertLessThan(folder.readThroughGap, bucket.readThroughGap)
        XCTAssertGreaterThanOrEqual(EncryptedTarget(folder, key: key).readThroughGap, Int64(EncryptedStreamFormat.defaultChunkSize))
        XCTAssertGreaterThanOrEqual(EncryptedTarget(bucket, key: key).readThroughGap, bucket.readThroughGap)
    }

    // MARK: - Streaming listing

    /// Pages are fetched as the consumer gets to them, not ahead, and every key arrives.
    func testS3ListingStreamsPageByPage() async throws {
        let moto = try MotoServer.shared()
        let bucket = try await moto.makeBucket()
        let proxy = try FaultProxy(upstreamPort: moto.port)
        addTeardownBlock { proxy.stop() }
        let target = try moto.target(bucket: bucket, prefix: "prod", port: proxy.port, options: .init(listPageSize: 3))
        let keys = (0..<10).map { String(format: "p/snap-%02d", $0) }
        for key in keys { try await target.put(key: key, data: Data(key.utf8)) }
        try await target.put(key: "q/other", data: Data("q".utf8))
        func listRequests() -> Int { proxy.requests { $0.method == "GET" && $0.query.contains("list-type=2") }.count }

        proxy.resetLog()
        var objects = target.objects(prefix: "p/").makeAsyncIterator()
        var seen: [ObjectInfo] = []
        for expectedRequests in [1, 1, 1, 2] {
            let object = try await objects.next()
            seen.append(try XCTUnwrap(object))
            XCTAssertEqual(listRequests(), expectedRequests, "after \(seen.count) objects")
        }
        while let object = try await objects.next() { seen.append(object) }
        XCTAssertEqual(listRequests(), 4, "10 keys in pages of 3")
        XCTAssertEqual(seen.map(\.key), keys)
        XCTAssertEqual(seen.map(\.size), keys.map { Int64($0.utf8.count) })

        let listed = try await EncryptedTarget(target, key: key).list(prefix: "")
        XCTAssertEqual(listed.map(\.key), keys + ["q/other"])
    }

    func testFolderListingStreamsFolderByFolder() async throws {
        let target = try fileTarget()
        let keys = ["a/1", "a/b/2", "a/b/c/3", "ab/4", "z", ".hidden"]
        for key in keys { try await target.put(key: key, data: Data(key.utf8)) }
        // A writer at work: its temporary file is no object.
        let writer = try await target.makeWriter(key: "a/b/pending")
        defer { withExtendedLifetime(writer) {} }

        func streamed(_ prefix: String) async throws -> [String] {
            var keys: [String] = []
            for try await object in target.objects(prefix: prefix) { keys.append(object.key) }
            return keys.sorted()
        }
        let all = try await streamed("")
        XCTAssertEqual(all, keys.sorted())
        let underA = try await streamed("a/")
        XCTAssertEqual(underA, ["a/1", "a/b/2", "a/b/c/3"])
        let startingWithA = try await streamed("a")
        XCTAssertEqual(startingWithA, ["a/1", "a/b/2", "a/b/c/3", "ab/4"])
        let deep = try await streamed("a/b/c/")
        XCTAssertEqual(deep, ["a/b/c/3"])
        let listed = try await target.list(prefix: "a/b")
        XCTAssertEqual(listed, [ObjectInfo(key: "a/b/2", size: 5), ObjectInfo(key: "a/b/c/3", size: 7)])

        let nowhere = try FileTarget(url: "file://" + dir.file("not-made-yet"))
        let none = try await nowhere.list(prefix: "")
        XCTAssertEqual(none, [])
    }

    // MARK: - Helpers

    /// Ranges of every kind on an object of `data`, each compared with the bytes themselves.
    func assertRanges(_ target: Target, key: String, data: Data, chunk: Int,
                      file: StaticString = #filePath, line: UInt = #line) async throws {
        let n = Int64(data.count), c = Int64(chunk)
        let cases: [(String, Int64, Int64)] = [
            ("start", 0, 10), ("the first chunk", 0, c), ("across a chunk boundary", c - 5, 10),
            ("one whole chunk", c, c), ("middle, over four chunks", 2 * c + 7, 3 * c),
            ("end", n - 10, 10), ("running past the end", n - 10, 1000), ("starting at the end", n, 5),
            ("far past the end", n + 5 * c, 10), ("zero length", 17, 0), ("zero length past the end", n + 1, 0),
            ("whole", 0, n), ("to the end", 5, .max),
        ]
        for (name, offset, length) in cases {
            let got = try await read(target, key, offset: offset, length: length)
            let lower = Int(min(offset, n))
            let upper = Int(length >= n - offset ? n : max(offset, min(n, offset + length)))
            XCTAssertEqual(got, data.subdata(in: lower ..< max(lower, upper)), "\(name) (\(offset), \(length)) on \(target.displayURL)",
                           file: file, line: line)
        }
    }

    func assertEmptyObject(_ target: Target, file: StaticString = #filePath, line: UInt = #line) async throws {
        let writer = try await target.makeWriter(key: "empty")
        try await writer.commit()
        for (offset, length) in [(0, 10), (0, 0), (3, 10)] as [(Int64, Int64)] {
            let got = try await read(target, "empty", offset: offset, length: length)
            XCTAssertEqual(got, Data(), "(\(offset), \(length))", file: file, line: line)
        }
    }

    func assertMissing(_ target: Target, file: StaticString = #filePath, line: UInt = #line) async {
        for length in [0, 10] as [Int64] {
            do {
                _ = try await read(target, "no/such", offset: 0, length: length)
                XCTFail("a missing object must throw", file: file, line: line)
            } catch let error as TargetError {
                guard case .notFound(let missing, _) = error else { return XCTFail("\(error)", file: file, line: line) }
                XCTAssertEqual(missing, "no/such", file: file, line: line)
            } catch {
                XCTFail("not a TargetError: \(error)", file: file, line: line)
            }
        }
    }

    /// Small chunks (13 of them, or an exact number and an empty final one) and the
    /// production default (1 MiB, written through `EncryptedTarget.makeWriter`).
    func assertEncryptedRanges(over inner: Target, file: StaticString = #filePath, line: UInt = #line) async throws {
        let target = EncryptedTarget(inner, key: key)
        let data = S3TargetTests.bytes(Self.size, seed: 5)
        try await writeEncrypted(data, to: inner, key: "small.enc", chunkSize: Self.chunk)
        try await assertRanges(target, key: "small.enc", data: data, chunk: Self.chunk, file: file, line: line)

        let whole = S3TargetTests.bytes(3 * Self.chunk, seed: 6)
        try await writeEncrypted(whole, to: inner, key: "exact.enc", chunkSize: Self.chunk)
        try await assertRanges(target, key: "exact.enc", data: whole, chunk: Self.chunk, file: file, line: line)

        let large = S3TargetTests.bytes(5 << 19, seed: 7)   // 2.5 MiB
        let writer = try await target.makeWriter(key: "large.enc")
        try await S3TargetTests.write(large, to: writer)
        try await writer.commit()
        try await assertRanges(target, key: "large.enc", data: large, chunk: EncryptedStreamFormat.defaultChunkSize, file: file, line: line)

        try await assertEmptyObject(target, file: file, line: line)
        await assertMissing(target, file: file, line: line)
    }

    func writeEncrypted(_ data: Data, to inner: Target, key objectKey: String, chunkSize: Int) async throws {
        let writer = try EncryptingObjectWriter(wrapping: try await inner.makeWriter(key: objectKey), key: key, chunkSize: chunkSize)
        try await S3TargetTests.write(data, to: writer, chunk: 7_001)
        try await writer.commit()
    }

    func read(_ target: Target, _ key: String, offset: Int64, length: Int64) async throws -> Data {
        var data = Data()
        try await target.read(key: key, offset: offset, length: length) { data.append(contentsOf: $0) }
        return data
    }

    func assertThrows<E: Error & Equatable>(_ expected: E, file: StaticString = #filePath, line: UInt = #line,
                                            _ body: () async throws -> Void) async {
        do {
            try await body()
            XCTFail("expected \(expected)", file: file, line: line)
        } catch {
            XCTAssertEqual(error as? E, expected, "\(error)", file: file, line: line)
        }
    }
}
