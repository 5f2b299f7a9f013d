@testable import BOSBackup
import Crypto
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

// MARK: - Test doubles and helpers

/// An in-memory ObjectWriter: keeps what it got, records each write's size.
final class EncryptionTestWriter: ObjectWriter {
    var data = Data()
    var writeSizes: [Int] = []
    var commits = 0
    var aborted = false
    /// Fail the write that would take the total past this many bytes.
    var failBeyond: Int?
    /// When set, bytes go here instead of being kept.
    var forward: ((UnsafeRawBufferPointer) throws -> Void)?

    func write(_ bytes: UnsafeRawBufferPointer) async throws {
        if let failBeyond, data.count + bytes.count > failBeyond { throw TargetError.failed("disk full (test)") }
        writeSizes.append(bytes.count)
        if let forward { try forward(bytes) } else { data.append(contentsOf: bytes) }
    }
    func commit() async throws { commits += 1 }
    func abort() async { aborted = true }
}

/// SplitMix64: a seeded generator so every random trial can be replayed.
struct EncryptionTestRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) } }
}

final class EncryptionTests: XCTestCase {
    let key = EncryptionKey.generate()
    let H = EncryptedStreamFormat.headerSize
    let overhead = EncryptedStreamFormat.chunkOverhead

    /// Encrypts `plain` through an EncryptingObjectWriter, writing pieces of
    /// random sizes (including empty ones).
    func encrypt(_ plain: [UInt8], key: EncryptionKey? = nil, chunkSize: Int, rng: inout EncryptionTestRNG,
                 maxPiece: Int? = nil) async throws -> [UInt8] {
        let inner = EncryptionTestWriter()
        let writer = try EncryptingObjectWriter(wrapping: inner, key: key ?? self.key, chunkSize: chunkSize)
        let maxPiece = maxPiece ?? 2 * chunkSize + 3
        var offset = 0
        while offset < plain.count {
            let n = min(plain.count - offset, Int.random(in: 0...maxPiece, using: &rng))
            try await writeBytes(plain[offset ..< offset + n], to: writer)
            offset += n
        }
        try await writer.commit()
        XCTAssertEqual(inner.commits, 1)
        XCTAssertFalse(inner.aborted)
        XCTAssertEqual(writer.plaintextBytes, Int64(plain.count))
        XCTAssertEqual(writer.encryptedBytes, Int64(inner.data.count))
        // Nothing accumulates: every forwarded write is the header or one record.
        XCTAssertTrue(inner.writeSizes.allSatisfy { $0 <= max(chunkSize + overhead, H) })
        return [UInt8](inner.data)
    }

    /// Decrypts feeding pieces of random sizes; returns the plaintext or throws.
    func decrypt(_ blob: [UInt8], key: EncryptionKey? = nil, rng: inout EncryptionTestRNG, maxPiece: Int = 5000) throws -> [UInt8] {
        var out: [UInt8] = []
        let stream = DecryptingStream(key: key ?? self.key) { out.append(contentsOf: $0) }
        var offset = 0
        while offset < blob.count {
            let n = min(blob.count - offset, Int.random(in: 0...maxPiece, using: &rng))
            try blob.withUnsafeBytes { try stream.feed(UnsafeRawBufferPointer(rebasing: $0[offset ..< offset + n])) }
            offset += n
        }
        try stream.finish()
        XCTAssertTrue(stream.isComplete)
        return out
    }

    /// The error decrypting `blob` gives (nil if it decrypts), checking on the
    /// way that whatever reached the sink is a prefix of `original`.
    func decryptionError(_ blob: [UInt8], original: [UInt8], key: EncryptionKey? = nil, piece: Int? = nil,
                         file: StaticString = #filePath, line: UInt = #line) -> Error? {
        var out: [UInt8] = []
        let stream = DecryptingStream(key: key ?? self.key) { out.append(contentsOf: $0) }
        defer {
            XCTAssertTrue(out.count <= original.count && out[...] == original[..<out.count],
                          "unauthenticated plaintext reached the sink", file: file, line: line)
        }
        do {
            let step = piece ?? max(blob.count, 1)
            var offset = 0
            while offset < blob.count {
                let n = min(step, blob.count - offset)
                try blob.withUnsafeBytes { try stream.feed(UnsafeRawBufferPointer(rebasing: $0[offset ..< offset + n])) }
                offset += n
            }
            try stream.finish()
            return nil
        } catch {
            // The error sticks.
            XCTAssertThrowsError(try stream.finish(), file: file, line: line)
            return error
        }
    }

    func assertDetected(_ blob: [UInt8], original: [UInt8], _ what: String, key: EncryptionKey? = nil,
                        file: StaticString = #filePath, line: UInt = #line) {
        guard let error = decryptionError(blob, original: original, key: key, file: file, line: line) else {
            return XCTFail("not detected: \(what)", file: file, line: line)
        }
        guard let enc = error as? EncryptionError else {
            return XCTFail("\(what): unexpected error type \(error)", file: file, line: line)
        }
        XCTAssertEqual(enc.category, .mismatch, "\(what): \(enc)", file: file, line: line)
    }

    /// Splits a stream into header and records (no validation beyond sizes).
    func records(_ blob: [UInt8]) -> (header: [UInt8], records: [[UInt8]]) {
        var result: [[UInt8]] = []
        var offset = H
        while offset < blob.count {
            let word = EncryptedStreamFormat.readBigEndian32(blob, at: offset)
            let length = Int(word & 0x7FFF_FFFF)
            let end = offset + 4 + length + 16
            result.append(Array(blob[offset ..< end]))
            offset = end
        }
        return (Array(blob[..<H]), result)
    }

    // MARK: Round trips

    func testRoundTripAtChunkEdgesWithDefaultChunkSize() async throws {
        let cs = EncryptingObjectWriter.defaultChunkSize
        XCTAssertEqual(cs, 1 << 20)
        var rng = EncryptionTestRNG(seed: 1)
        for size in [0, 1, cs - 1, cs, cs + 1, 2 * cs, 5_000_000] {
            let plain = rng.bytes(size)
            let blob = try await encrypt(plain, chunkSize: cs, rng: &rng)
            XCTAssertEqual(Int64(blob.count), EncryptedStreamFormat.encryptedSize(plaintextSize: Int64(size)), "size \(size)")
            XCTAssertTrue(EncryptedStreamFormat.looksEncrypted(blob))
            XCTAssertEqual(try EncryptedStreamHeader.parse(blob).keyID, key.id)
            XCTAssertEqual(try EncryptedStreamHeader.parse(blob).chunkSize, cs)
            let back = try decrypt(blob, rng: &rng, maxPiece: 3 * cs)
            XCTAssertEqual(back.count, size)
            XCTAssertTrue(back == plain, "round trip of \(size) bytes")
            // Plaintext does not show through.
            if size >= 64 { XCTAssertNil(findSubsequence(Array(plain[..<64]), in: blob)) }
        }
    }

    func testRoundTripWithSmallChunksAndRandomPieces() async throws {
        var rng = EncryptionTestRNG(seed: 2)
        for cs in [1, 16, 64, 1000] {
            for size in [0, 1, cs - 1, cs, cs + 1, 3 * cs, 3 * cs + 1, 10_007] where size >= 0 {
                let plain = rng.bytes(size)
                let blob = try await encrypt(plain, chunkSize: cs, rng: &rng)
                XCTAssertEqual(Int64(blob.count), EncryptedStreamFormat.encryptedSize(plaintextSize: Int64(size), chunkSize: cs))
                // Whole, byte by byte, and in random pieces.
                XCTAssertEqual(try DecryptingStream.decrypt(Data(blob), key: key), Data(plain))
                XCTAssertEqual(try decrypt(blob, rng: &rng, maxPiece: 1), plain)
                XCTAssertEqual(try decrypt(blob, rng: &rng, maxPiece: 3 * cs + 50), plain)
            }
        }
    }

    func testEachObjectGetsItsOwnSaltAndCiphertext() async throws {
        var rng = EncryptionTestRNG(seed: 3)
        let plain = rng.bytes(5000)
        let a = try await encrypt(plain, chunkSize: 1024, rng: &rng)
        let b = try await encrypt(plain, chunkSize: 1024, rng: &rng)
        XCTAssertNotEqual(Array(a[15 ..< 47]), Array(b[15 ..< 47]), "salt")
        XCTAssertNotEqual(Array(a[H...]), Array(b[H...]), "ciphertext")
        XCTAssertEqual(try decrypt(a, rng: &rng), plain)
        XCTAssertEqual(try decrypt(b, rng: &rng), plain)
    }

    func testHeaderLayout() async throws {
        var rng = EncryptionTestRNG(seed: 4)
        let blob = try await encrypt([], chunkSize: 4096, rng: &rng)
        XCTAssertEqual(blob.count, H + overhead, "an empty object is a header and one empty final chunk")
        XCTAssertEqual(Array(blob[0..<6]), Array("BOSENC".utf8))
        XCTAssertEqual(blob[6], 1)
        XCTAssertEqual(EncryptedStreamFormat.readBigEndian32(blob, at: 7), 4096)
        XCTAssertEqual(EncryptedStreamFormat.hex(blob[11..<15]), key.id)
        XCTAssertEqual(EncryptedStreamFormat.readBigEndian32(blob, at: H), 0x8000_0000, "final flag, length 0")
    }

    // MARK: Wrong key

    func testWrongKeyIsReportedAsWrongKey() async throws {
        var rng = EncryptionTestRNG(seed: 5)
        let plain = rng.bytes(3000)
        let blob = try await encrypt(plain, chunkSize: 1000, rng: &rng)
        let other = EncryptionKey.generate()
        XCTAssertNotEqual(other.id, key.id)
        for piece in [1, 7, 1000, blob.count] {
            let error = decryptionError(blob, original: plain, key: other, piece: piece)
            XCTAssertEqual(error as? EncryptionError, .keyMismatch(streamKeyID: key.id, givenKeyID: other.id))
            let text = "\(error!)"
            XCTAssertTrue(text.contains("wrong key"), text)
            XCTAssertTrue(text.contains("encrypted with key \(key.id), not with \(other.id)"), text)
            XCTAssertEqual((error as? CategorizedError)?.category, .input, "a configuration mistake, not damage")
        }
        // Even when the stream is cut before its first chunk is complete.
        let cut = Array(blob[..<(H + 10)])
        XCTAssertEqual(decryptionError(cut, original: plain, key: other) as? EncryptionError,
                       .keyMismatch(streamKeyID: key.id, givenKeyID: other.id))
        // A header forged to name the other key: the tags still fail.
        var forged = blob
        forged.replaceSubrange(11..<15, with: other.idBytes)
        let error = decryptionError(forged, original: plain, key: other)
        XCTAssertEqual(error as? EncryptionError, .authenticationFailed(chunk: 0))
        XCTAssertTrue("\(error!)".contains("wrong key or corrupted"), "\(error!)")
    }

    func testDamagedKeyIDWithTheRightKeyIsCalledCorruption() async throws {
        var rng = EncryptionTestRNG(seed: 6)
        let plain = rng.bytes(3000)
        let blob = try await encrypt(plain, chunkSize: 1000, rng: &rng)
        for bit in 0..<32 {
            var damaged = blob
            damaged[11 + bit / 8] ^= UInt8(1 << (bit % 8))
            let error = decryptionError(damaged, original: plain)
            guard case .badHeader(let why)? = error as? EncryptionError else { return XCTFail("bit \(bit): \(String(describing: error))") }
            XCTAssertTrue(why.contains("key id"), why)
        }
    }

    // MARK: Tampering

    /// 5 full chunks of 64 bytes and a final one of 10.
    func tamperFixture(seed: UInt64, size: Int = 64 * 5 + 10) async throws -> (plain: [UInt8], blob: [UInt8]) {
        var rng = EncryptionTestRNG(seed: seed)
        let plain = rng.bytes(size)
        return (plain, try await encrypt(plain, chunkSize: 64, rng: &rng))
    }

    func testTruncationAtEveryOffsetIsDetected() async throws {
        for size in [64 * 5 + 10, 64 * 5] {   // with a partial final chunk, and with an empty one
            let (plain, blob) = try await tamperFixture(seed: 7, size: size)
            for length in 0 ..< blob.count {
                let cut = Array(blob[..<length])
                guard let error = decryptionError(cut, original: plain) else { XCTFail("truncation at \(length) not detected"); continue }
                guard case .truncated? = error as? EncryptionError else { XCTFail("at \(length): \(error)"); continue }
                XCTAssertTrue("\(error)".contains("truncated"))
            }
            // Exactly at each chunk boundary: everything there authenticates, still an error.
            let (header, recs) = records(blob)
            for k in 0 ..< recs.count {
                let cut = header + recs[..<k].joined()
                let error = decryptionError(cut, original: plain)
                XCTAssertEqual(error as? EncryptionError,
                               .truncated("the stream ends after \(k) chunk\(k == 1 ? "" : "s") without its final chunk"))
            }
        }
    }

    /// Cutting the stream after chunk k and setting chunk k's final flag
    /// (the flag is in the AAD) must not pass for a shorter, complete stream.
    func testForgedFinalFlagAfterTruncationIsDetected() async throws {
        let (plain, blob) = try await tamperFixture(seed: 17)
        let (header, recs) = records(blob)
        for k in 0 ..< recs.count - 1 {
            var forged = recs[k]
            forged[0] |= 0x80
            let error = decryptionError(header + recs[..<k].joined() + forged, original: plain)
            XCTAssertEqual(error as? EncryptionError, .authenticationFailed(chunk: UInt64(k)), "chunk \(k)")
        }
        // And the final chunk made non-final (with a full length it would be
        // framed right): fails too.
        var last = recs.last!
        last[0] &= 0x7F
        assertDetected(header + recs.dropLast().joined() + last, original: plain, "final flag cleared")
    }

    func testDroppedSwappedAndDuplicatedChunksAreDetected() async throws {
        let (plain, blob) = try await tamperFixture(seed: 8)
        let (header, recs) = records(blob)
        XCTAssertEqual(recs.count, 6)
        XCTAssertEqual(header + recs.joined(), blob)
        for k in recs.indices {
            var dropped = recs
            dropped.remove(at: k)
            assertDetected(header + dropped.joined(), original: plain, "chunk \(k) dropped")
            var duplicated = recs
            duplicated.insert(recs[k], at: k)
            assertDetected(header + duplicated.joined(), original: plain, "chunk \(k) duplicated")
            for j in recs.indices where j != k {
                var swapped = recs
                swapped.swapAt(k, j)
                assertDetected(header + swapped.joined(), original: plain, "chunks \(k) and \(j) swapped")
            }
        }
    }

    func testBitFlipsAnywhereAreDetected() async throws {
        let (plain, blob) = try await tamperFixture(seed: 9)
        var flips: [(offset: Int, bit: Int)] = []
        // Every bit of the header, of the first record's length word, of the last tag.
        for offset in 0 ..< H + 4 { for bit in 0..<8 { flips.append((offset, bit)) } }
        for offset in blob.count - 16 ..< blob.count { for bit in 0..<8 { flips.append((offset, bit)) } }
        // And 200 seeded random ones anywhere.
        var rng = EncryptionTestRNG(seed: 0xB17F11B5)
        for _ in 0..<200 { flips.append((Int.random(in: 0 ..< blob.count, using: &rng), Int.random(in: 0..<8, using: &rng))) }
        var detected = 0
        for (offset, bit) in flips {
            var damaged = blob
            damaged[offset] ^= UInt8(1 << bit)
            if let error = decryptionError(damaged, original: plain, piece: 37) {
                XCTAssertEqual((error as? EncryptionError)?.category, .mismatch, "\(error)")
                detected += 1
            } else {
                XCTFail("bit \(bit) of byte \(offset) flipped: not detected")
            }
        }
        XCTAssertEqual(detected, flips.count)
        XCTAssertGreaterThanOrEqual(flips.count, 200 + (H + 4 + 16) * 8)
    }

    func testBitFlipsInLargeChunksAreDetected() async throws {
        var rng = EncryptionTestRNG(seed: 10)
        let plain = rng.bytes(300_000)
        let blob = try await encrypt(plain, chunkSize: 65536, rng: &rng)
        for trial in 0..<200 {
            var damaged = blob
            let offset = Int.random(in: 0 ..< blob.count, using: &rng)
            damaged[offset] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
            XCTAssertNotNil(decryptionError(damaged, original: plain, piece: 10_000), "trial \(trial) at \(offset)")
        }
    }

    func testAppendedDataIsDetected() async throws {
        let (plain, blob) = try await tamperFixture(seed: 11)
        let (_, recs) = records(blob)
        let second = try await tamperFixture(seed: 12).blob
        for extra in [[0], [UInt8](repeating: 0, count: 20), recs.last!, recs[0], second] {
            let error = decryptionError(blob + extra, original: plain, piece: 50)
            guard case .corrupted(let why)? = error as? EncryptionError else { XCTFail("\(String(describing: error))"); continue }
            XCTAssertTrue(why.contains("after the final chunk"), why)
        }
    }

    func testHeaderFromAnotherObjectIsDetected() async throws {
        let (plain, a) = try await tamperFixture(seed: 13)
        let (_, b) = try await tamperFixture(seed: 14)   // same key, same sizes
        let swapped = Array(b[..<H]) + Array(a[H...])
        XCTAssertEqual(decryptionError(swapped, original: plain) as? EncryptionError, .authenticationFailed(chunk: 0))
        // A record spliced in from another object at the same index.
        let ra = records(a), rb = records(b)
        var spliced = ra.records
        spliced[2] = rb.records[2]
        XCTAssertEqual(decryptionError(ra.header + spliced.joined(), original: plain) as? EncryptionError,
                       .authenticationFailed(chunk: 2))
    }

    func testHeaderErrorsAreNamed() async throws {
        let (plain, blob) = try await tamperFixture(seed: 15)
        // Not an encrypted stream at all: fails on the first bytes, not at the end.
        let gzip: [UInt8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0]
        let stream = DecryptingStream(key: key) { _ in XCTFail("no output") }
        XCTAssertThrowsError(try gzip.withUnsafeBytes { try stream.feed($0) }) { error in
            XCTAssertTrue("\(error)".contains("bad encryption header"), "\(error)")
            XCTAssertEqual((error as? CategorizedError)?.category, .mismatch)
        }
        var newer = blob
        newer[6] = 2
        XCTAssertEqual(decryptionError(newer, original: plain) as? EncryptionError, .unsupportedVersion(2))
        XCTAssertTrue("\(EncryptionError.unsupportedVersion(2))".contains("unsupported encryption format version 2"))
        for chunkSize: UInt32 in [0, UInt32(EncryptedStreamFormat.maxChunkSize) + 1, 0xFFFF_FFFF] {
            var bad = blob
            bad.replaceSubrange(7..<11, with: withUnsafeBytes(of: chunkSize.bigEndian) { Array($0) })
            guard case .badHeader? = decryptionError(bad, original: plain) as? EncryptionError else { return XCTFail("chunk size \(chunkSize)") }
        }
        XCTAssertThrowsError(try EncryptedStreamHeader.parse(Array(blob[..<20])))
        XCTAssertFalse(EncryptedStreamFormat.looksEncrypted(gzip))
    }

    // MARK: Writer lifecycle and memory

    func testWriterLifecycle() async throws {
        XCTAssertThrowsError(try EncryptingObjectWriter(wrapping: EncryptionTestWriter(), key: key, chunkSize: 0))
        XCTAssertThrowsError(try EncryptingObjectWriter(wrapping: EncryptionTestWriter(), key: key,
                                                        chunkSize: EncryptedStreamFormat.maxChunkSize + 1))
        let bytes = [UInt8](repeating: 7, count: 100)

        // abort reaches the inner writer; nothing more is accepted.
        let inner = EncryptionTestWriter()
        let writer = try EncryptingObjectWriter(wrapping: inner, key: key, chunkSize: 64)
        try await writeBytes(bytes[...], to: writer)
        await writer.abort()
        XCTAssertTrue(inner.aborted)
        XCTAssertEqual(inner.commits, 0)
        do { try await writer.commit(); XCTFail("commit after abort") } catch {}

        // write after commit is refused.
        let inner2 = EncryptionTestWriter()
        let writer2 = try EncryptingObjectWriter(wrapping: inner2, key: key, chunkSize: 64)
        try await writer2.commit()
        XCTAssertEqual(inner2.commits, 1)
        do { try await writeBytes(bytes[...], to: writer2); XCTFail("write after commit") } catch {}
        do { try await writer2.commit(); XCTFail("commit twice") } catch {}
        XCTAssertEqual(inner2.commits, 1)

        // An inner failure surfaces as is, and the writer stays failed.
        let inner3 = EncryptionTestWriter()
        inner3.failBeyond = 150
        let writer3 = try EncryptingObjectWriter(wrapping: inner3, key: key, chunkSize: 64)
        do {
            for _ in 0..<10 { try await writeBytes(bytes[...], to: writer3) }
            XCTFail("inner failure lost")
        } catch {
            XCTAssertTrue("\(error)".contains("disk full (test)"), "\(error)")
        }
        do { try await writer3.commit(); XCTFail("commit after failure") } catch {}
        XCTAssertEqual(inner3.commits, 0)
    }

    /// 32 MiB piped writer -> reader without storing anything: each side
    /// holds at most one chunk at any time.
    func testStreamingKeepsAtMostOneChunk() async throws {
        let cs = 256 << 10
        var rng = EncryptionTestRNG(seed: 16)
        let block = rng.bytes(3 * cs + 12345)
        let total = 32 << 20
        var sentHash = SHA256(), receivedHash = SHA256()
        var received = 0
        var largestSinkCall = 0
        let reader = DecryptingStream(key: key) { bytes in
            receivedHash.update(bufferPointer: bytes)
            received += bytes.count
            largestSinkCall = max(largestSinkCall, bytes.count)
        }
        let inner = EncryptionTestWriter()
        var forwarded = 0
        inner.forward = { bytes in
            forwarded += bytes.count
            try reader.feed(bytes)
        }
        let writer = try EncryptingObjectWriter(wrapping: inner, key: key, chunkSize: cs)
        var sent = 0
        while sent < total {
            let n = min(Int.random(in: 1 ... block.count, using: &rng), total - sent)
            try await writeBytes(block[..<n], to: writer)
            block.withUnsafeBytes { sentHash.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[..<n])) }
            sent += n
            // What the writer holds back is less than one chunk; the reader has
            // delivered everything the writer forwarded.
            XCTAssertLessThan(sent - received, cs)
            XCTAssertEqual(Int64(forwarded), writer.encryptedBytes)
        }
        try await writer.commit()
        try reader.finish()
        XCTAssertEqual(received, total)
        XCTAssertEqual(reader.plaintextBytes, Int64(total))
        XCTAssertEqual(Array(sentHash.finalize()), Array(receivedHash.finalize()))
        XCTAssertLessThanOrEqual(largestSinkCall, cs)
        XCTAssertTrue(inner.data.isEmpty)
        XCTAssertTrue(inner.writeSizes.allSatisfy { $0 <= cs + overhead })
    }

    func testErrorsAreMismatchAndNamed() {
        let errors: [EncryptionError] = [
            .badHeader("x"), .unsupportedVersion(9), .authenticationFailed(chunk: 3), .truncated("x"), .corrupted("x"),
        ]
        for error in errors { XCTAssertEqual(error.category, .mismatch, "\(error)") }
        // A wrong key is the configuration's mistake, not the snapshot's damage.
        XCTAssertEqual(EncryptionError.keyMismatch(streamKeyID: "aaaaaaaa", givenKeyID: "bbbbbbbb").category, .input)
        XCTAssertTrue("\(EncryptionError.authenticationFailed(chunk: 3))".contains("wrong key or corrupted"))
        XCTAssertTrue("\(EncryptionError.truncated("x"))".contains("truncated"))
        XCTAssertEqual(EncryptionError.invalidChunkSize(0).category, .input)
    }

    // MARK: Key files

    func testKeyFileIsWrittenWith0600WhateverTheUmask() throws {
        let dir = TempDir()
        let old = umask(0)
        defer { umask(old) }
        let path = dir.file("backup.key")
        try key.write(to: path)
        var st = stat()
        XCTAssertEqual(stat(path, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(text.hasPrefix("bosbackup-key-v1:"))
        XCTAssertTrue(text.hasSuffix("\n"))
        XCTAssertEqual(text.count, "bosbackup-key-v1:".count + 44 + 1)
        let loaded = try EncryptionKey.load(path: path)
        XCTAssertEqual(loaded, key)
        XCTAssertEqual(loaded.id, key.id)
        // Nothing left beside it.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["backup.key"])
    }

    func testKeyFileIsNeverOverwritten() throws {
        let dir = TempDir()
        let path = dir.file("k")
        try key.write(to: path)
        let other = EncryptionKey.generate()
        XCTAssertThrowsError(try other.write(to: path)) { error in
            XCTAssertEqual(error as? EncryptionKeyError, .exists(path: path))
            XCTAssertTrue("\(error)".contains("refusing to overwrite"))
        }
        XCTAssertEqual(try EncryptionKey.load(path: path), key)
        // Not through a dangling symlink either.
        let link = dir.file("link")
        XCTAssertEqual(symlink(dir.file("nowhere"), link), 0)
        XCTAssertThrowsError(try other.write(to: link))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.file("nowhere")))
        // A missing folder is a clear error.
        XCTAssertThrowsError(try other.write(to: dir.file("no/such/k"))) { error in
            guard case .writeFailed? = error as? EncryptionKeyError else { return XCTFail("\(error)") }
        }
    }

    func testKeyFilesOpenToGroupOrOthersAreRefused() throws {
        let dir = TempDir()
        let path = dir.file("k")
        try key.write(to: path)
        for mode: mode_t in [0o640, 0o604, 0o660, 0o644, 0o620, 0o601] {
            chmod(path, mode)
            XCTAssertThrowsError(try EncryptionKey.load(path: path)) { error in
                XCTAssertEqual(error as? EncryptionKeyError, .tooOpen(path: path, mode: UInt32(mode)))
                let text = "\(error)"
                XCTAssertTrue(text.contains("chmod 600 \(path)"), text)
                XCTAssertFalse(text.contains("\n"))
                XCTAssertEqual((error as? CategorizedError)?.category, .input)
            }
        }
        chmod(path, 0o400)
        XCTAssertEqual(try EncryptionKey.load(path: path), key)
    }

    func testKeyFileErrorsAreClearAndOneLine() throws {
        let dir = TempDir()
        let rawKey = key.symmetricKey.withUnsafeBytes { Data($0) }
        func write(_ text: String, _ name: String) -> String {
            let path = dir.file(name)
            _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
            return path
        }
        func expect(_ path: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try EncryptionKey.load(path: path), file: file, line: line) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains(expected), text, file: file, line: line)
                XCTAssertFalse(text.contains("\n"), file: file, line: line)
                XCTAssertFalse(text.contains(rawKey.base64EncodedString()), file: file, line: line)
                XCTAssertEqual((error as? CategorizedError)?.category, .input, file: file, line: line)
            }
        }
        expect(dir.file("absent"), "does not exist")
        expect(write("", "empty"), "file is empty")
        expect(write("hello world\n", "junk"), "does not start with bosbackup-key-v1:")
        expect(write("bosbackup-key-v2:AAAA\n", "v2"), "unsupported key file version")
        expect(write("bosbackup-key-v1:not base64!!\n", "b64"), "not valid base64")
        expect(write("bosbackup-key-v1:" + Data(repeating: 1, count: 16).base64EncodedString() + "\n", "short"),
               "holds a 16-byte key; bosbackup keys are 32 bytes")
        expect(write("bosbackup-key-v1:" + rawKey.base64EncodedString() + "\nsecond line\n", "two"), "more than one line")
        expect(write(String(repeating: "x", count: 10_000), "big"), "too large")
        expect(dir.path, "not a regular file")
        // Accepted: no final newline, or CRLF.
        XCTAssertEqual(try EncryptionKey.load(path: write("bosbackup-key-v1:" + rawKey.base64EncodedString(), "plain")), key)
        XCTAssertEqual(try EncryptionKey.load(path: write("bosbackup-key-v1:" + rawKey.base64EncodedString() + "\r\n", "crlf")), key)
        XCTAssertThrowsError(try EncryptionKey(rawBytes: [UInt8](repeating: 0, count: 31)))
        XCTAssertEqual(try EncryptionKey(rawBytes: rawKey), key)
    }

    func testKeyIDIsShortStableAndNotAHashOfTheKey() throws {
        let rawKey = key.symmetricKey.withUnsafeBytes { Array($0) }
        XCTAssertEqual(key.id.count, 8)
        XCTAssertTrue(key.id.allSatisfy { "0123456789abcdef".contains($0) })
        XCTAssertEqual(try EncryptionKey(rawBytes: rawKey).id, key.id)
        XCTAssertNotEqual(key.id, EncryptedStreamFormat.hex(SHA256.hash(data: rawKey).prefix(4)))
        let ids = Set((0..<50).map { _ in EncryptionKey.generate().id })
        XCTAssertEqual(ids.count, 50)
        // Known-answer: the all-zero key, so the derivation never changes silently.
        let zero = try EncryptionKey(rawBytes: [UInt8](repeating: 0, count: 32))
        let material = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: [UInt8](repeating: 0, count: 32)),
                                              info: Array("bosbackup key id v1".utf8), outputByteCount: 32)
        XCTAssertEqual(zero.id, EncryptedStreamFormat.hex(material.withUnsafeBytes { SHA256.hash(data: $0) }.prefix(4)))
    }

    func testKeyNeverAppearsInAnyDescription() throws {
        let raw = key.symmetricKey.withUnsafeBytes { Data($0) }
        let secrets = [raw.base64EncodedString(), EncryptedStreamFormat.hex(raw),
                       String(raw.base64EncodedString().prefix(12)), String(EncryptedStreamFormat.hex(raw).prefix(12))]
        var dumped = ""
        dump(key, to: &dumped)
        var dumpedArray = ""
        dump([key], to: &dumpedArray)
        let writer = try EncryptingObjectWriter(wrapping: EncryptionTestWriter(), key: key)
        let stream = DecryptingStream(key: key) { _ in }
        let texts = [
            "\(key)", String(describing: key), String(reflecting: key), key.debugDescription, dumped, dumpedArray,
            "\([key])", "\(Optional(key) as Any)", Mirror(reflecting: key).children.map { "\($0)" }.joined(),
            String(reflecting: writer), String(reflecting: stream), "\(EncryptionKeyError.badLength(path: "p", byteCount: 31))",
        ]
        for text in texts {
            for secret in secrets { XCTAssertFalse(text.contains(secret), "key material in: \(text)") }
        }
        XCTAssertTrue("\(key)".contains(key.id))
    }
}

/// `withUnsafeBytes` takes no async closure: hand the writer a copy.
private func writeBytes(_ bytes: ArraySlice<UInt8>, to writer: ObjectWriter) async throws {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
    defer { buffer.deallocate() }
    bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
    try await writer.write(UnsafeRawBufferPointer(buffer))
}

private func findSubsequence(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
    guard needle.count <= haystack.count else { return nil }
    for i in 0 ... haystack.count - needle.count where haystack[i] == needle[0] {
        if haystack[i ..< i + needle.count].elementsEqual(needle) { return i }
    }
    return nil
}
