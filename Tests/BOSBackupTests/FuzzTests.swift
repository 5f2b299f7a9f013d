@testable import BOSBackup
import Foundation
import XCTest

/// A seeded mutation loop over every parser that reads outside input: the
/// cron parser, the policy loader, the gzip reader, the encrypted-stream
/// reader and the manifest parser. No crash, no hang (each input is bounded
/// in time), a clean error or a clean result. `FUZZ_SECONDS` runs each
/// parser for that long (make fuzz); by default a fixed number of inputs.
final class FuzzTests: XCTestCase {
    static let seconds = Double(ProcessInfo.processInfo.environment["FUZZ_SECONDS"] ?? "") ?? 0

    func mutate(_ input: [UInt8], _ rng: inout SeededRandom) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            switch Int.random(in: 0..<5, using: &rng) {
            case 0 where !bytes.isEmpty: bytes[Int.random(in: 0..<bytes.count, using: &rng)] ^= UInt8(1) << UInt8.random(in: 0...7, using: &rng)
            case 1: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...bytes.count, using: &rng))
            case 2 where !bytes.isEmpty: bytes.remove(at: Int.random(in: 0..<bytes.count, using: &rng))
            case 3 where !bytes.isEmpty: bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &rng)))
            default:
                let tokens = ["*", "/", "-", ",", "0", "60", "31", "7", "@", "sun", ":", "{", "}", "\n", "  ", "\"", "9999999999999999999"]
                bytes.insert(contentsOf: Array(tokens.randomElement(using: &rng)!.utf8), at: Int.random(in: 0...bytes.count, using: &rng))
            }
        }
        return bytes
    }

    /// Feeds mutated inputs to `body`; every input must finish quickly.
    func fuzz(_ name: String, seeds: [[UInt8]], count: Int = 1500, _ body: ([UInt8]) -> Void) {
        var rng = SeededRandom(seed: name.utf8.reduce(20261127) { $0 &* 31 &+ UInt64($1) })
        let deadline = Date().addingTimeInterval(Self.seconds)
        var runs = 0, slowest = 0.0
        while runs < count || Date() < deadline {
            let input = mutate(seeds[runs % seeds.count], &rng)
            let start = Date()
            body(input)
            slowest = max(slowest, Date().timeIntervalSince(start))
            runs += 1
        }
        print("fuzz \(name): \(runs) inputs, no crash, slowest \(String(format: "%.3f", slowest)) s")
        XCTAssertLessThan(slowest, 2.0, "\(name): an input took \(slowest) s")
    }

    func testCronParser() {
        let seeds = ["0 22 * * *", "*/15 2-5 1,15 jan-mar mon-fri", "@weekly", "0 0 29 2 *", "5 4 * * sun,7"].map { Array($0.utf8) }
        let zone = TimeZone(identifier: "America/New_York")!
        fuzz("cron", seeds: seeds) { input in
            guard let text = String(bytes: input, encoding: .utf8), let cron = try? CronExpression(text) else { return }
            _ = cron.nextTimes(after: Date(timeIntervalSince1970: 1_800_000_000), count: 3, in: zone)
            _ = cron.previous(atOrBefore: Date(timeIntervalSince1970: 1_800_000_000), in: zone)
        }
    }

    func testPolicyLoader() throws {
        let shipped = try Array(Data(contentsOf: URL(fileURLWithPath: Fixtures.repoRoot + "/schedules/bos.yml")))
        fuzz("policy", seeds: [shipped], count: 800) { input in
            guard let text = String(bytes: input, encoding: .utf8) else { return }
            _ = try? PolicyLoader.parse(text, file: "fuzz.yml", folder: "/tmp")
        }
    }

    func testGzipReaderAndBlockDecompressor() throws {
        let dir = TempDir()
        try Data((0..<20_000).map { UInt8($0 % 251) }).write(to: URL(fileURLWithPath: dir.file("in")))
        let target = try FileTarget(url: "file://" + dir.file("t"))
        _ = try runAsync {
            let w = try await target.makeWriter(key: "x")
            let r = try await BlockGzipWriter(level: 6, blockSize: 4096).write(file: dir.file("in"), to: w)
            try await w.commit()
            return r
        }
        let stored = try Array(Data(contentsOf: URL(fileURLWithPath: dir.file("t/x"))))
        let decompressor = try GzipBlockDecompressor()
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
        defer { out.deallocate() }
        fuzz("gzip", seeds: [stored, Array(stored.prefix(300))]) { input in
            if let inflater = try? GzipStreamInflater(sink: { _ in }) {
                _ = try? input.withUnsafeBytes { try inflater.feed($0) }
                _ = try? inflater.finish()
            }
            _ = try? input.withUnsafeBytes { try decompressor.decompress($0, into: out) }
        }
    }

    func testEncryptedStreamReader() throws {
        let key = EncryptionKey.generate()
        final class Sink: ObjectWriter {
            var bytes: [UInt8] = []
            func write(_ b: UnsafeRawBufferPointer) async throws { bytes += b }
            func commit() async throws {}
            func abort() async {}
        }
        let sink = Sink()
        try runAsync {
            let writer = try EncryptingObjectWriter(wrapping: sink, key: key, chunkSize: 256)
            let plain = UnsafeMutableRawBufferPointer.allocate(byteCount: 2000, alignment: 1)
            defer { plain.deallocate() }
            plain.initializeMemory(as: UInt8.self, repeating: 7)
            try await writer.write(UnsafeRawBufferPointer(plain))
            try await writer.commit()
        }
        fuzz("encrypted", seeds: [sink.bytes]) { input in
            let stream = DecryptingStream(key: key) { _ in }
            _ = try? input.withUnsafeBytes { try stream.feed($0) }
            _ = try? stream.finish()
        }
    }

    func testManifestParser() throws {
        let f = try BackupFixture(orders: 100)
        let record = try f.backup()
        let manifest = try Array(runAsync { try await f.target.get(key: record.manifestKey) })
        fuzz("manifest", seeds: [manifest], count: 800) { input in
            if let m = try? ManifestDocument.decode(Data(input)) { _ = m.record(target: "nas", targetURL: "file:///x", manifestKey: "k", manifestSHA256: nil) }
        }
    }
}
