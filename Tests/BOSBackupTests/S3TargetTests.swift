import AsyncHTTPClient
@testable import BOSBackup
import Crypto
import Foundation
import XCTest

/// The S3 target against a real moto server on 127.0.0.1, with a fault-injecting proxy in
/// front of it for the failure cases. moto missing is a test failure, never a skip.
final class S3TargetTests: XCTestCase {
    static let mib = 1 << 20

    /// Retries without waiting, recording each backoff.
    final class SleepLog: @unchecked Sendable {
        private let lock = NSLock()
        private var delays: [Double] = []
        var all: [Double] { lock.lock(); defer { lock.unlock() }; return delays }
        func record(_ delay: Double) { lock.lock(); delays.append(delay); lock.unlock() }
    }

    func fastRetry(_ log: SleepLog = SleepLog(), attempts: Int = 5) -> S3RetryPolicy {
        S3RetryPolicy(maxAttempts: attempts, sleep: { log.record($0) })
    }

    /// Deterministic pseudo-random bytes (xorshift), quick to make in debug builds.
    static func bytes(_ count: Int, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> Data {
        var state = seed | 1
        var data = Data(count: count)
        data.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for i in 0..<words.count {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17
                words[i] = state
            }
            for i in (words.count * 8)..<count { raw[i] = UInt8(truncatingIfNeeded: i &* 31) }
        }
        return data
    }

    static func sha256(_ data: Data) -> String { SHA256.hash(data: data).hex }

    /// Writes `data` through a writer in uneven chunks.
    static func write(_ data: Data, to writer: ObjectWriter, chunk: Int = 1_000_003) async throws {
        var offset = 0
        while offset < data.count {
            let end = min(offset + chunk, data.count)
            try await writeChunk(data[offset..<end], to: writer)
            offset = end
        }
    }

    /// Hands `chunk` to the writer from a buffer of its own (the pointer must live across the await).
    static func writeChunk(_ chunk: Data, to writer: ObjectWriter) async throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(chunk.count, 1), alignment: 8)
        defer { buffer.deallocate() }
        chunk.copyBytes(to: buffer)
        try await writer.write(UnsafeRawBufferPointer(rebasing: buffer[..<chunk.count]))
    }

    /// Every error must be free of the secret and the session token.
    func assertNoCredentials(_ error: Error, file: StaticString = #filePath, line: UInt = #line) {
        let texts = ["\(error)", String(reflecting: error), error.localizedDescription]
        for text in texts {
            XCTAssertFalse(text.contains(MotoServer.credentials.secretAccessKey), "secret in: \(text)", file: file, line: line)
            XCTAssertFalse(text.contains(MotoServer.credentials.sessionToken!), "token in: \(text)", file: file, line: line)
            XCTAssertFalse(text.contains("DO-NOT-PRINT") || text.contains("NEVER-SHOWN"), "credential in: \(text)",
                           file: file, line: line)
        }
    }

    func makeProxy(_ moto: MotoServer) throws -> FaultProxy {
        let proxy = try FaultProxy(upstreamPort: moto.port)
        addTeardownBlock { proxy.stop() }
        return proxy
    }

    // MARK: - Basic operations

    func testPutGetHeadListDelete() async throws {
        let moto = try MotoServer.shared()
        let bucket = try await moto.makeBucket()
        let target = try moto.target(bucket: bucket, prefix: "shop/main", options: .init(listPageSize: 7))

        let manifest = Data("{\"id\":\"abc\"}".utf8)
        try await target.put(key: "2026/01/a.manifest.json", data: manifest)
        let got1 = try await target.get(key: "2026/01/a.manifest.json")
        XCTAssertEqual(got1, manifest)
        let got2 = try await target.head(key: "2026/01/a.manifest.json")
        XCTAssertEqual(got2, ObjectInfo(key: "2026/01/a.manifest.json", size: Int64(manifest.count)))
        let missingHead = try await target.head(key: "2026/01/nope")
        XCTAssertNil(missingHead)
        do {
            _ = try await target.get(key: "2026/01/nope")
            XCTFail("get of a missing object must throw")
        } catch let error as TargetError {
            guard case .notFound(let key, let where_) = error else { return XCTFail("wrong error \(error)") }
            XCTAssertEqual(key, "2026/01/nope")
            XCTAssertTrue(where_.hasPrefix("s3://\(bucket)/shop/main"))
        }

        // Odd keys: spaces, +, =, &, unicode, and an empty object.
        let odd = ["odd/a b+c=d&e.txt", "odd/ünïcødé €.bin", "odd/tilde~and'quote", "odd/empty"]
        for (i, key) in odd.enumerated() {
            try await target.put(key: key, data: i == 3 ? Data() : Data(key.utf8))
        }
        for (i, key) in odd.enumerated() {
            let got3 = try await target.get(key: key)
            XCTAssertEqual(got3, i == 3 ? Data() : Data(key.utf8), key)
        }

        // 33 more keys, listed in pages of 7 (continuation tokens); a sibling prefix is not listed.
        let many = (0..<33).map { String(format: "2026/02/snap-%03d.db.gz", $0) }
        for key in many { try await target.put(key: key, data: Data(key.utf8)) }
        let sibling = try moto.target(bucket: bucket, prefix: "shop/mainx")
        try await sibling.put(key: "2026/02/other", data: Data("x".utf8))

        let listed = try await target.list(prefix: "2026/02/")
        XCTAssertEqual(listed.map(\.key), many)
        XCTAssertEqual(listed.map(\.size), many.map { Int64($0.utf8.count) })
        let all = try await target.list(prefix: "")
        XCTAssertEqual(all.count, 1 + odd.count + many.count)
        XCTAssertEqual(Set(all.map(\.key)), Set(["2026/01/a.manifest.json"] + odd + many))
        let got4 = try await target.list(prefix: "odd/").map(\.key).sorted()
        XCTAssertEqual(got4, odd.sorted())

        try await target.delete(key: many[0])
        try await target.delete(key: many[0])  // already gone: not an error
        try await target.delete(key: "never/was")
        let afterDelete = try await target.head(key: many[0])
        XCTAssertNil(afterDelete)
        let got5 = try await target.list(prefix: "2026/02/").map(\.key)
        XCTAssertEqual(got5, Array(many.dropFirst()))
    }

    func testListBeyondOneThousandKeysWithServerDefaultPages() async throws {
        let moto = try MotoServer.shared()
        let bucket = try await moto.makeBucket()
        let target = try moto.target(bucket: bucket)
        // 1,005 keys: moto (like S3) pages at 1,000.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for i in stride(from: worker, to: 1005, by: 8) {
                        try await target.put(key: String(format: "k/%05d", i), data: Data([UInt8(i & 0xFF)]))
                    }
                }
            }
            try await group.waitForAll()
        }
        let listed = try await target.list(prefix: "k/")
        XCTAssertEqual(listed.count, 1005)
        XCTAssertEqual(listed.first?.key, "k/00000")
        XCTAssertEqual(listed.last?.key, "k/01004")
    }

    func testDisplayURLHasNoCredentialsAndReopensTheSameLocation() throws {
        let urls = [
            "s3://my-bucket/shop/main?region=eu-west-1&endpoint=http://127.0.0.1:9000&profile=backup",
            "s3://my-bucket",
            "s3://my.dotted.bucket/p?region=eu-central-1",
            "s3://bucket-x/a%20b?endpoint=https://minio.example.com&addressing=virtual&credentials_file=/etc/bos/creds",
        ]
        for url in urls {
            let location = try S3Location(parsing: url)
            let target = S3Target(location: location, credentials: MotoServer.credentials)
            XCTAssertEqual(try S3Location(parsing: target.displayURL), location, target.displayURL)
            XCTAssertFalse(target.displayURL.contains(MotoServer.credentials.secretAccessKey))
            XCTAssertFalse(target.displayURL.contains(MotoServer.credentials.accessKeyID))
        }
        XCTAssertEqual(S3Target(location: try S3Location(parsing: "s3://my-bucket/x"), credentials: MotoServer.credentials).displayURL,
                       "s3://my-bucket/x")
    }

    func testOpenFromURLResolvesCredentialsAndReportsBadURLs() throws {
        let env = ["AWS_ACCESS_KEY_ID": "AKIAOPENTEST00000000", "AWS_SECRET_ACCESS_KEY": "open-secret-value"]
        let target = try S3Target.open(url: "s3://open-bucket/pre?endpoint=http://127.0.0.1:1", environment: env)
        XCTAssertEqual(target.credentials.accessKeyID, "AKIAOPENTEST00000000")
        XCTAssertEqual(target.displayURL, "s3://open-bucket/pre?endpoint=http://127.0.0.1:1")
        XCTAssertThrowsError(try S3Target.open(url: "s3://Bad_Bucket/x", environment: env)) { error in
            guard case TargetError.badURL = error else { return XCTFail("\(error)") }
            XCTAssertEqual((error as? CategorizedError)?.category, .input)
        }
        XCTAssertThrowsError(try S3Target.open(url: "s3://good-bucket/x", environment: [:])) { error in
            XCTAssertEqual((error as? CategorizedError)?.category, .input, "\(error)")
        }
    }

    /// Every kind of request, checked by a server that verifies SigV4 signatures: what is
    /// sent is exactly what was signed (path, query of list/multipart calls, payload hash,
    /// Content-MD5, session-less credentials). moto's checker rejects even botocore's
    /// requests when a query value holds `/` (`prefix=a%2F`), so this target has no prefix
    /// and lists without a slash; such queries are covered by the signer's botocore oracle.
    func testSignaturesAreVerifiedByARealServer() async throws {
        let moto = try MotoServer.sharedVerifyingSignatures()
        let credentials = try XCTUnwrap(moto.verifiedCredentials)
        let bucket = try await moto.makeBucket()
        let target = try moto.target(bucket: bucket, options: .init(partSize: 5 * Self.mib, listPageSize: 2))
        let keys = ["a", "with space/b c.json", "tilde~dash-under_score.dot", "deep/er/still"]
        for key in keys { try await target.put(key: key, data: Data(key.utf8)) }
        for key in keys {
            let got = try await target.get(key: key)
            XCTAssertEqual(got, Data(key.utf8))
            let info = try await target.head(key: key)
            XCTAssertEqual(info?.size, Int64(key.utf8.count))
        }
        let listed = try await target.list(prefix: "")
        XCTAssertEqual(listed.map(\.key), keys.sorted())
        let spaced = try await target.list(prefix: "with sp")
        XCTAssertEqual(spaced.map(\.key), ["with space/b c.json"])

        let data = Self.bytes(11 * Self.mib, seed: 21)
        let writer = try await target.makeWriter(key: "multi part.gz")
        try await Self.write(data, to: writer)
        try await writer.commit()
        var stream = SHA256Stream()
        try await target.read(key: "multi part.gz") { stream.update($0) }
        XCTAssertEqual(stream.hex(), Self.sha256(data))
        let aborted = try await target.makeWriter(key: "aborted")
        try await Self.write(data, to: aborted)
        await aborted.abort()
        let uploads = try await target.multipartUploads()
        XCTAssertTrue(uploads.isEmpty)
        for key in keys { try await target.delete(key: key) }
        let left = try await target.list(prefix: "")
        XCTAssertEqual(left.map(\.key), ["multi part.gz"])

        // A wrong secret: SignatureDoesNotMatch from the server, at once, secret-free message.
        let wrongSecret = "wrong-\(UUID().uuidString)-secret"
        let sleeps = SleepLog()
        let forged = try moto.target(bucket: bucket, credentials: AWSCredentials(accessKeyID: credentials.accessKeyID,
                                                                                  secretAccessKey: wrongSecret),
                                     options: .init(retry: fastRetry(sleeps)))
        do {
            try await forged.put(key: "x", data: Data("x".utf8))
            XCTFail("must fail")
        } catch {
            let text = "\(error)"
            XCTAssertTrue(text.contains("403") && text.contains("SignatureDoesNotMatch"), text)
            XCTAssertTrue(text.contains("s3://\(bucket)/x"), text)
            XCTAssertFalse(text.contains(wrongSecret) || text.contains(credentials.secretAccessKey), text)
        }
        XCTAssertEqual(sleeps.all.count, 0, "no retry")

        // An unknown key ID: InvalidAccessKeyId.
        let stranger = try moto.target(bucket: bucket, credentials: AWSCredentials(accessKeyID: "AKIANOBODY0000000000",
                                                                                    secretAccessKey: wrongSecret),
                                       options: .init(retry: fastRetry(sleeps)))
        do {
            _ = try await stranger.get(key: "a")
            XCTFail("must fail")
        } catch {
            XCTAssertTrue("\(error)".contains("InvalidAccessKeyId"), "\(error)")
            XCTAssertFalse("\(error)".contains(wrongSecret))
        }
        XCTAssertEqual(sleeps.all.count, 0, "no retry")
    }

    // MARK: - Streaming and multipart

    func testStreamingReadOfAnObjectLargerThanAPart() async throws {
        let moto = try MotoServer.shared()
        let bucket = try await moto.makeBucket()
        let target = try moto.target(bucket: bucket, options: .init(partSize: 5 * Self.mib))
        let data = Self.bytes(7 * Self.mib + 12_345, seed: 7)
        try await target.put(key: "big.bin", data: data)

        var stream = SHA256Stream()
        var chunks = 0
        var largest = 0
        try await target.read(key: "big.bin") { chunk in
            stream.update(chunk)
            chunks += 1
            largest = max(largest, chunk.count)
        }
        XCTAssertEqual(stream.count, Int64(data.count))
        XCTAssertEqual(stream.hex(), Self.sha256(data))
        // Handed over as the bytes arrive, not as one object-sized buffer.
        XCTAssertGreaterThan(chunks, 10)
        XCTAssertLessThan(largest, 2 * Self.mib)
    }

    func testMultipartUploadOfMoreThanTwoPartsRoundTrips() async throws {
        try await checkMultipartUploadOfThreeParts(overlapping: true)
    }

    /// The archiver's way (`useLeastMemory`): one part buffer, each part's upload waited for.
    func testMultipartUploadOnePartAtATimeRoundTrips() async throws {
        try await checkMultipartUploadOfThreeParts(overlapping: false)
    }

    /// The archiver's parts are the smallest that fit the object into S3's 10,000: 5 MiB for
    /// a segment, more for the base of a big database (at 5 MiB always, a base of more than
    /// 48 GiB could not be uploaded), one at a time either way; an encrypting target too.
    func testTheArchiversPartsAreTheSmallestThatFitTheObject() async throws {
        let moto = try MotoServer.shared()
        let bucket = try await moto.makeBucket()
        let target = try moto.target(bucket: bucket)
        target.useLeastMemory(objectsUpTo: 3 << 20)
        XCTAssertEqual(target.options.partSize, S3Target.Options.minimumPartSize)
        XCTAssertFalse(target.options.overlapsParts)
        let big: Int64 = 200 << 30
        EncryptedTarget(target, key: EncryptionKey.generate()).useLeastMemory(objectsUpTo: big)
        XCTAssertGreaterThan(Int64(target.options.partSize) * Int64(S3Target.Options.maximumParts), big)
        XCTAssertLessThan(target.options.partSize, 32 << 20, "not much more than it needs")
    }

    func checkMultipartUploadOfThreeParts(overlapping: Bool) async throws {
        let moto = try MotoServer.shared()
        let bucket = try await moto.makeBucket()
        let proxy = try makeProxy(moto)  // pass-through, to count the calls
        var options = S3Target.Options(partSize: 5 * Self.mib)
        options.overlapsParts = overlapping
        let target = try moto.target(bucket: bucket, prefix: "mp", port: proxy.port, options: options)
        let data = Self.bytes(13 * Self.mib + 777, seed: 13)  // 5 + 5 + 3 MiB parts

        let writer = try await target.makeWriter(key: "2026/snap.db.gz")
        try await Self.write(data, to: writer)
        let beforeCommit = try await target.head(key: "2026/snap.db.gz")
        XCTAssertNil(beforeCommit, "nothing is visible before commit")
        try await writer.commit()

        let parts = proxy.requests { $0.isUploadPart }
        XCTAssertEqual(parts.map(\.contentLength), [5 * Self.mib, 5 * Self.mib, 3 * Self.mib + 777])
        XCTAssertEqual(proxy.requests { $0.method == "POST" && $0.query == "uploads" }.count, 1)
        XCTAssertEqual(proxy.requests { $0.isCompleteMultipart }.count, 1)

        let got6 = try await target.head(key: "2026/snap.db.gz")?.size
        XCTAssertEqual(got6, Int64(data.count))
        let uploads = try await target.multipartUploads()
        XCTAssertTrue(uploads.isEmpty)
        var stream = SHA256Stream()
        try await target.read(key: "2026/snap.db.gz") { stream.update($0) }
        XCTAssertEqual(stream.hex(), Self.sha256(data))
        XCTAssertEqual(stream.count, Int64(data.count))
    }

    func testSmallObjectThroughAWriterIsOnePut() async throws {
        let moto = try MotoServer.shared()
        let bucket = try await moto.makeBucket()
        let proxy = try makeProxy(moto)
        let target = try moto.target(bucket: bucket, port: proxy.port, options: .init(partSize: 5 * Self.mib))
        let data = Self.bytes(5 * Self.mib - 1, seed: 3)
        let writer = try await target.makeWriter(key: "small.gz")
        try await Self.write(data, to: writer, chunk: 65_536)
        try await writer.commit()
        XCTAssertEqual(proxy.requests { $0.method == "POST" }.count, 0, "no multipart upload for less than a part")
        XCTAssertEqual(proxy.requests { $0.method == "PUT" }.map(\.contentLength), [data.count])
        let got7 = try await target.get(key: "small.gz")
        XCTAssertEqual(got7, data)

        // An empty object works too, and a writer cannot be used after commit.
        let empty = try await target.makeWriter(key: "empty")
        try await empty.commit()
        let got8 = try await target.head(key: "empty")?.size
        XCTAssertEqual(got8, 0)
        do {
            try await Self.writeChunk(Data([1]), to: empty)
            XCTFail("write after commit")
        } catch {}
    }

    func testAbortRemovesTheMultipartUpload() async throws {
        let moto = try MotoServer.shared()
        let bucket = try await moto.makeBucket()
        let target = try moto.target(bucket: bucket, options: .init(partSize: 5 * Self.mib))
        let writer = try await target.makeWriter(key: "aborted.gz")
        try await Self.write(Self.bytes(11 * Self.mib), to: writer)
        let inProgress = try await target.multipartUploads()
        XCTAssertEqual(inProgress.map(\.key), ["aborted.gz"])
        await writer.abort()
        let afterAbort = try await target.multipartUploads()
        XCTAssertTrue(afterAbort.isEmpty)
        let head = try await target.head(key: "aborted.gz")
        XCTAssertNil(head)
    }

    // MARK: - Retries and failures

    func testTransient500sThenSuccess() async throws {
        let moto = try MotoServer.shared()
        let bucket = try await moto.makeBucket()
        let proxy = try makeProxy(moto)
        let sleeps = SleepLog()
        let target = try moto.target(bucket: bucket, port: proxy.port, options: .init(retry: fastRetry(sleeps)))
        proxy.inject(.status(500, code: "InternalError"), times: 3) { $0.method == "PUT" }
        try await target.put(key: "retried", data: Data("hello".utf8))
        XCTAssertEqual(proxy.requests { $0.method == "PUT" }.count, 4)
        XCTAssertEqual(sleeps.all.count, 3)
        // Full jitter: each pause within [0, base × 2^(n-1)].
        for (i, delay) in sleeps.all.enumerated() {
            XCTAssertGreaterThanOrEqual(delay, 0)
            XCTAssertLessThanOrEqual(delay, 0.25 * pow(2, Double(i)))
        }

        // 503 SlowDown and 429 are retried as well, on reads too.
        proxy.inject(.status(503, code: "SlowDown"), times: 2) { $0.method == "GET" }
        proxy.inject(.status(429, code: "TooManyRequests"), times: 1) { $0.method == "GET" }
        let got9 = try await target.get(key: "retried")
        XCTAssertEqual(got9, Data("hello".utf8))
        XCTAssertEqual(proxy.requests { $0.method == "GET" }.count, 4)
    }

    func testPermanent500FailsAfterTheAttemptBound() async throws {
        let moto = try MotoServer.shared()
        let bucket = try await moto.makeBucket()
        let proxy = try makeProxy(moto)
        let target = try moto.target(bucket: bucket, prefix: "pre", port: proxy.port, options: .init(retry: fastRetry()))
        proxy.inject(.status(500, code: "InternalError"))
        do {
            try await target.put(key: "doomed.json", data: Data("{}".utf8))
            XCTFail("must fail")
        } catch {
            XCTAssertEqual((error as? CategorizedError)?.category, .failure)
            XCTAssertTrue(error is TargetError)
            let text = "\(error)"
            XCTAssertTrue(text.contains("s3://\(bucket)/pre/doomed.json"), text)
            XCTAssertTrue(text.contains("500") && text.contains("InternalError"), text)
            XCTAssertTrue(text.contains("after 5 attempts"), text)
            XCTAssertFalse(text.contains("\n"))
            assertNoCredentials(error)
        }
        XCTAssertEqual(proxy.requests { $0.method == "PUT" }.count, 5)
    }

    func testTimeBoundStopsRetriesBeforeTheAttemptBound() async throws {
        // A fake clock that advances by each backoff: 1 s base, 2.5 s budget.
        final class FakeClock: @unchecked Sendable {
            private let lock = NSLock()
            private var time = 0.0
            func advance(_ by: Double) { lock.lock(); time += by; lock.unlock() }
            func read() -> Double { lock.lock(); defer { lock.unlock() }; return time }
        }
        let clock = FakeClock()
        let policy = S3RetryPolicy(maxAttempts: 10, maxTotalTime: 2.5, baseDelay: 1, maxDelay: 8,
                                   sleep: { clock.advance($0) },
                                   random: { $0 },  // no jitter: 1, 2, 4, ...
                                   now: { clock.read() })
        var attempts = 0
        do {
            try await policy.run(operation: "PUT", resource: "s3://b/k") { _ in
                attempts += 1
                throw S3Failure.http(status: 503, code: "SlowDown", message: nil)
            }
            XCTFail("must fail")
        } catch {
            XCTAssertTrue("\(error)".contains("retry time limit"), "\(error)")
        }
        XCTAssertEqual(attempts, 2)  // t=0, sleep 1 → t=1; the next pause (2 s) would end past 2.5 s

        // Cancellation and the caller's own errors are not retried.
        struct Mine: Error {}
        attempts = 0
        do {
            try await policy.run(operation: "GET", resource: "s3://b/k") { _ in attempts += 1; throw Mine() }
        } catch is Mine {}
        XCTAssertEqual(attempts, 1)
    }

    /// An upload's chunks are slices of the part's own memory (a copy per chunk doubled the
    /// archiver's part at its peak), and a chunk held across a refill keeps what it had.
    func testPartChunksShareThePartsMemoryAndOutliveARefill() async throws {
        let part = S3PartBuffer(capacity: 3 * S3PartChunks.chunkSize)
        let first = Self.bytes(part.capacity, seed: 1)
        XCTAssertEqual(first.withUnsafeBytes { part.append($0) }, part.capacity)
        XCTAssertTrue(part.isFull)
        var chunks = S3PartChunks(part: part, generation: part.generation, length: part.count).makeAsyncIterator()
        let chunk = try await chunks.next()!
        XCTAssertEqual(chunk.readableBytes, S3PartChunks.chunkSize)
        let partStart = part.withBytes { UInt(bitPattern: $0.baseAddress) }
        XCTAssertEqual(chunk.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }, partStart, "a chunk is a copy")

        part.reset()
        let second = Self.bytes(part.capacity, seed: 2)
        XCTAssertEqual(second.withUnsafeBytes { part.append($0) }, part.capacity)
        XCTAssertEqual(Data(chunk.readableBytesView), first.prefix(S3PartChunks.chunkSize), "the held chunk was overwritten by the refill")
        XCTAssertEqual(part.withBytes { Data($0) }, second)
        do {
            _ = try await chunks.next()
            XCTFail("an abandoned attempt read the refilled part")
        } catch is S3PartRecycled {}
    }

    func testRetryClassification() {
        XCTAssertTrue(S3Failure.isRetryable(status: 500, code: "InternalError"))
        XCTAssertTrue(S3Failure.isRetryable(status: 503, code: "SlowDown"))
        XCTAssertTrue(S3Failure.isRetryable(status: 429, code: nil))
        XCTAssertTrue(S3Failure.isRetryable(status: 400, code: "RequestTimeout"))
        XCTAssertTrue(S3Failure.isRetryable(status: 400, code: "BadDigest"))
        XCTAssertFalse(S3Failure.isRetryable(status: 501, code: "NotImplemented"))
        for (status, code) in [(400, "InvalidArgument"), (403, "AccessDenied"), (403, "SignatureDoesNotMatch"),
                               (403, "InvalidAccessKeyId"), (400, "ExpiredToken"), (404, "NoSuchKey"), (404, "NoSuchBucket")] {
            XCTAssertFalse(S3Failure.isRetryable(status: status, code: code), code)
        }
        XCTAssertFalse(S3Failure.isRetryable(status: 403, code: nil))
        XCTAssertTrue(S3Failure.network("reset").retryable)
    }

    func testForbiddenAndSignatureErrorsFailAtOnce() async throws {
        let moto = try MotoServer.shared()
        let bucket = try await moto.makeBucket()
        let proxy = try makeProxy(moto)
        let target = try moto.target(bucket: bucket, port: proxy.port, options: .init(retry: fastRetry()))

        for (status, code) in [(403, "AccessDenied"), (403, "SignatureDoesNotMatch"), (403, "InvalidAccessKeyId"),
                               (400, "ExpiredToken"), (400, "InvalidArgument")] {
            proxy.clearFaults()
            proxy.resetLog()
            proxy.inject(.status(status, code: code))
            do {
                try await target.put(key: "k.json", data: Data("{}".utf8))
                XCTFail("must fail")
            } catch {
                let text = "\(error)"
                XCTAssertTrue(text.contains("HTTP \(status) \(code)") && text.contains("s3://\(bucket)/k.json"), text)
                XCTAssertFalse(text.contains("attempts"), text)
                XCTAssertEqual((error as? CategorizedError)?.category, .failure)
                assertNoCredentials(error)
            }
            XCTAssertEqual(proxy.requests().count, 1, "\(code): exactly one attempt")
        }

        // HEAD answers carry no body: the status alone decides.
        proxy.clearFaults()
        proxy.resetLog()
        proxy.inject(.status(403, code: "AccessDenied"))
        do {
            _ = try await target.head(key: "k.json")
            XCTFail("must fail")
        } catch {
            XCTAssertTrue("\(error)".contains("HTTP 403"), "\(error)")
            assertNoCredentials(error)
        }
        XCTAssertEqual(proxy.requests().count, 1)
    }

    func testConnectionDropMidUploadFailsAndLeavesNothing() async throws {
        let moto = try MotoServer.shared()
        let bucket = try await moto.makeBucket()
        let proxy = try makeProxy(moto)
        let direct = try moto.target(bucket: bucket)
        let target = try moto.target(bucket: bucket, port: proxy.port,
                                     options: .init(partSize: 5 * Self.mib, retry: fastRetry()))
        proxy.inject(.dropRequestBody(after: Self.mib))

        // Multipart: every part upload is cut off mid-body.
        let writer = try await target.makeWriter(key: "dropped.gz")
        var failed: Error?
        do {
            try await Self.write(Self.bytes(12 * Self.mib), to: writer)
            try await writer.commit()
        } catch {
            failed = error
        }
        await writer.abort()
        let error = try XCTUnwrap(failed, "upload through a dropping connection must fail")
        XCTAssertEqual((error as? CategorizedError)?.category, .failure)
        XCTAssertTrue("\(error)".contains("UploadPart 1") && "\(error)".contains("s3://\(bucket)/dropped.gz"), "\(error)")
        assertNoCredentials(error)
        XCTAssertEqual(proxy.requests { $0.isUploadPart }.count, 5, "bounded retries of the part")
        let uploads = try await direct.listMultipartUploads(fullPrefix: "")
        XCTAssertTrue(uploads.isEmpty, "no multipart upload left: \(uploads)")
        let head = try await direct.head(key: "dropped.gz")
        XCTAssertNil(head)
        let got10 = try await direct.list(prefix: "")
        XCTAssertEqual(got10, [])

        // Single PUT at commit: same outcome.
        let small = try await target.makeWriter(key: "small-dropped.gz")
        try await Self.write(Self.bytes(2 * Self.mib), to: small)
        do {
            try await small.commit()
            XCTFail("must fail")
        } catch {
            assertNoCredentials(error)
        }
        await small.abort()
        let got11 = try await direct.list(prefix: "")
        XCTAssertEqual(got11, [])

        // A drop once is just retried.
        proxy.clearFaults()
        proxy.inject(.dropRequestBody(after: Self.mib), times: 1)
        let data = Self.bytes(11 * Self.mib, seed: 5)
        let retried = try await target.makeWriter(key: "survives.gz")
        try await Self.write(data, to: retried)
        try await retried.commit()
        var stream = SHA256Stream()
        try await direct.read(key: "survives.gz") { stream.update($0) }
        XCTAssertEqual(stream.hex(), Self.sha256(data))
    }

    /// The server process killed mid-upload: the operation gives up after its bounded retries
    /// (refused connections are retried: a server may be restarting), then the cleanup tries
    /// the abort once rather than spend a second retry budget on a server that is gone.
    func testServerKilledMidUploadFailsAfterOneRoundOfRetries() async throws {
        let moto = try MotoServer.startPrivate()
        defer { try? moto.kill() }
        let bucket = try await moto.makeBucket()
        // The client keeps trying a refused connection until its connect timeout: keep it short.
        let client = HTTPClient(eventLoopGroupProvider: .singleton,
                                configuration: .init(timeout: .init(connect: .milliseconds(300))))
        let sleeps = SleepLog()
        let target = try moto.target(bucket: bucket, options: .init(partSize: 5 * Self.mib, retry: fastRetry(sleeps),
                                                                    httpClient: client))
        let writer = try await target.makeWriter(key: "cut.gz")
        try await Self.write(Self.bytes(11 * Self.mib), to: writer)  // part 1 stored, part 2 on its way
        let uploads = try await target.multipartUploads()
        XCTAssertEqual(uploads.map(\.key), ["cut.gz"])
        try moto.kill()
        do {
            try await writer.commit()
            XCTFail("must fail")
        } catch {
            guard case TargetError.unreachable(let text)? = error as? TargetError else { return XCTFail("\(error)") }
            XCTAssertTrue(text.contains("UploadPart") && text.contains("after 5 attempts") && text.contains("s3://\(bucket)/cut.gz"), text)
            assertNoCredentials(error)
        }
        await writer.abort()
        XCTAssertEqual(sleeps.all.count, 4, "the part's 5 attempts (4 backoffs), then one abort attempt")
        try await client.shutdown()
    }

    func testCompleteAnswering200WithAnError() async throws {
        let moto = try MotoServer.shared()
        let bucket = try await moto.makeBucket()
        let proxy = try makeProxy(moto)
        let target = try moto.target(bucket: bucket, port: proxy.port,
                                     options: .init(partSize: 5 * Self.mib, retry: fastRetry()))
        let data = Self.bytes(6 * Self.mib, seed: 9)

        // Transient error in a 200 answer: retried, then fine.
        proxy.inject(.okWithError(code: "InternalError"), times: 1) { $0.isCompleteMultipart }
        let first = try await target.makeWriter(key: "ok.gz")
        try await Self.write(data, to: first)
        try await first.commit()
        XCTAssertEqual(proxy.requests { $0.isCompleteMultipart }.count, 2)
        let got12 = try await target.get(key: "ok.gz")
        XCTAssertEqual(got12, data)

        // Permanent error in a 200 answer: commit fails, nothing left behind.
        proxy.inject(.okWithError(code: "InvalidPart")) { $0.isCompleteMultipart }
        let second = try await target.makeWriter(key: "bad.gz")
        try await Self.write(data, to: second)
        do {
            try await second.commit()
            XCTFail("must fail")
        } catch {
            XCTAssertTrue("\(error)".contains("InvalidPart"), "\(error)")
        }
        await second.abort()
        let uploads = try await target.multipartUploads()
        XCTAssertTrue(uploads.isEmpty)
        let head = try await target.head(key: "bad.gz")
        XCTAssertNil(head)
    }

    func testTruncatedDownload() async throws {
        let moto = try MotoServer.shared()
        let bucket = try await moto.makeBucket()
        let proxy = try makeProxy(moto)
        let target = try moto.target(bucket: bucket, port: proxy.port, options: .init(retry: fastRetry()))
        let data = Self.bytes(3 * Self.mib + 5, seed: 11)
        try await target.put(key: "cut.bin", data: data)

        // Cut before any byte of the body, every time: no progress, so the bounded attempts
        // run out and read throws a clear TargetError.
        proxy.inject(.truncateResponse(after: 0)) { $0.method == "GET" }
        var seen = 0
        do {
            try await target.read(key: "cut.bin") { seen += $0.count }
            XCTFail("must fail")
        } catch let error as TargetError {
            let text = "\(error)"
            XCTAssertTrue(text.contains("S3 GET s3://\(bucket)/cut.bin"), text)
            XCTAssertTrue(text.contains("download"), text)
            XCTAssertEqual(error.category, .failure)
            assertNoCredentials(error)
        }
        XCTAssertEqual(seen, 0)
        XCTAssertEqual(proxy.requests { $0.method == "GET" }.count, 5, "the retry bound holds when nothing moves")

        // Cut on every answer at 64 KiB: each cut made progress, so each gets a fresh set of
        // attempts and the download completes — more than the 5 attempts one round allows.
        // (How many requests depends on how much the client had buffered when each
        // connection died; the bytes are exact either way.)
        for cut in [65_536, Self.mib] {
            proxy.clearFaults()
            proxy.resetLog()
            proxy.inject(.truncateResponse(after: cut)) { $0.method == "GET" }
            var resumed = SHA256Stream()
            try await target.read(key: "cut.bin") { resumed.update($0) }
            XCTAssertEqual(resumed.hex(), Self.sha256(data))
            XCTAssertGreaterThanOrEqual(proxy.requests { $0.method == "GET" }.count, (data.count + cut - 1) / cut)
        }

        // Cut once: the rest is fetched with a Range request, and the bytes are exact.
        proxy.clearFaults()
        proxy.resetLog()
        proxy.inject(.truncateResponse(after: Self.mib), times: 1) { $0.method == "GET" }
        var stream = SHA256Stream()
        try await target.read(key: "cut.bin") { stream.update($0) }
        XCTAssertEqual(stream.count, Int64(data.count))
        XCTAssertEqual(stream.hex(), Self.sha256(data))
        XCTAssertEqual(proxy.requests { $0.method == "GET" }.count, 2)
    }

    func testConsumerErrorsAreNotRetried() async throws {
        let moto = try MotoServer.shared()
        let bucket = try await moto.makeBucket()
        let proxy = try makeProxy(moto)
        let target = try moto.target(bucket: bucket, port: proxy.port, options: .init(retry: fastRetry()))
        try await target.put(key: "x", data: Self.bytes(100_000))
        struct Full: Error {}
        do {
            try await target.read(key: "x") { _ in throw Full() }
            XCTFail("must fail")
        } catch is Full {}
        XCTAssertEqual(proxy.requests { $0.method == "GET" }.count, 1)
    }

    func testUnreachableServerIsAFailureWithoutCredentials() async throws {
        // A port nobody listens on: connection refused, retried, then reported.
        let port = try MotoServer.freeLoopbackPort()
        let location = try S3Location(bucket: "nobody-home", endpoint: URL(string: "http://127.0.0.1:\(port)")!)
        // The client keeps trying a refused connection until its connect timeout: keep it short.
        let client = HTTPClient(eventLoopGroupProvider: .singleton,
                                configuration: .init(timeout: .init(connect: .milliseconds(300))))
        let target = S3Target(location: location, credentials: MotoServer.credentials,
                              options: .init(retry: fastRetry(attempts: 3), httpClient: client))
        do {
            try await target.put(key: "k", data: Data("x".utf8))
            XCTFail("must fail")
        } catch {
            guard case TargetError.unreachable(let text)? = error as? TargetError else { return XCTFail("\(error)") }
            XCTAssertTrue(text.contains("after 3 attempts") && text.contains("s3://nobody-home/k"), text)
            XCTAssertEqual((error as? CategorizedError)?.category, .failure)
            assertNoCredentials(error)
        }
        try await client.shutdown()
    }
}
