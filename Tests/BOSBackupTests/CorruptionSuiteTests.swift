@testable import BOSBackup
import Foundation
import XCTest

/// Damage every stored artefact in every way a disk, a network or a person
/// does, and require `verify` to catch 100% of it, naming the snapshot and the
/// failed check. Prints `corruption: N cases, N caught`.
final class CorruptionSuiteTests: XCTestCase {
    struct Damage { let name: String; let apply: (String, String) throws -> Void }   // (path, other artefact's path)

    static func damages(seed: UInt64, flips: Int) -> [Damage] {
        var rng = SeededRandom(seed: seed)
        var list: [Damage] = []
        for i in 0..<flips {
            let fraction = Double.random(in: 0..<1, using: &rng), bit = UInt8(1) << UInt8.random(in: 0...7, using: &rng)
            list.append(Damage(name: "bit flip \(i)") { path, _ in
                var data = try Data(contentsOf: URL(fileURLWithPath: path))
                data[min(data.count - 1, Int(Double(data.count) * fraction))] ^= bit
                try data.write(to: URL(fileURLWithPath: path))
            })
        }
        for (label, keep) in [("truncated to nothing", 0.0), ("truncated to half", 0.5), ("last byte cut", -1.0)] {
            list.append(Damage(name: label) { path, _ in
                let size = DurableFile.fileSize(path)!
                XCTAssertEqual(truncate(path, off_t(keep < 0 ? size - 1 : Int64(Double(size) * keep))), 0)
            })
        }
        for (label, at) in [("zero-filled start", 0.0), ("zero-filled middle", 0.5)] {
            list.append(Damage(name: label) { path, _ in
                var data = try Data(contentsOf: URL(fileURLWithPath: path))
                let start = Int(Double(data.count) * at), end = min(data.count, start + max(1, data.count / 10))
                data.replaceSubrange(start..<end, with: Data(repeating: 0, count: end - start))
                try data.write(to: URL(fileURLWithPath: path))
            })
        }
        list.append(Damage(name: "swapped with another snapshot's") { path, other in
            try FileManager.default.removeItem(atPath: path)
            try FileManager.default.copyItem(atPath: other, toPath: path)
        })
        list.append(Damage(name: "deleted") { path, _ in try FileManager.default.removeItem(atPath: path) })
        return list
    }

    func testEveryDamageToEveryArtefactIsCaught() throws {
        let dir = TempDir()
        let live = dir.file("live.db")
        try Fixtures.sampleDatabase(at: live, orders: 600)
        let catalog = try Catalog(path: dir.file("catalog.db"))
        let plain = try FileTarget(url: "file://" + dir.file("nas"))
        let encrypted = EncryptedTarget(try FileTarget(url: "file://" + dir.file("cloud")), key: EncryptionKey.generate())
        let writer = SnapshotWriter(catalog: catalog, clock: SystemClock())
        func backup(_ job: String, _ target: Target) throws -> SnapshotRecord {
            try runAsync { try await writer.backup(BackupRequest(sourcePath: live, job: job, targetName: job, scratch: dir.file("scratch"),
                                                                 blockSize: 128 << 10), to: target) }
        }
        let a = try backup("nas", plain)
        _ = try SampleBOS.addOrders(to: live, count: 20, at: Date(), seed: 5)
        let b = try backup("nas", plain)
        let c = try backup("cloud", encrypted)
        // Swapping two byte-identical snapshots is harmless (the same database comes back), so
        // every pair here differs.
        _ = try SampleBOS.addOrders(to: live, count: 20, at: Date(), seed: 6)
        let d = try backup("cloud", encrypted)
        let verifier = SnapshotVerifier(catalog: catalog, clock: SystemClock(), scratch: dir.file("scratch"))
        let artefacts: [(String, SnapshotRecord, Target, String, String)] = [
            ("compressed snapshot", a, plain, plain.path(for: a.objectKey), plain.path(for: b.objectKey)),
            ("encrypted snapshot", c, encrypted, dir.file("cloud/" + c.objectKey), dir.file("cloud/" + d.objectKey)),
            ("manifest", a, plain, plain.path(for: a.manifestKey), plain.path(for: b.manifestKey)),
            ("encrypted target's manifest", c, encrypted, dir.file("cloud/" + c.manifestKey), dir.file("cloud/" + d.manifestKey)),
        ]
        var cases = 0, caught = 0
        var misses: [String] = []
        for (artefact, snapshot, target, path, other) in artefacts {
            let pristine = try Data(contentsOf: URL(fileURLWithPath: path))
            for damage in Self.damages(seed: 20261127, flips: 20) {
                try damage.apply(path, other)
                let result = try runAsync { try await verifier.verify(snapshot, target: target) }
                cases += 1
                let named = result.problems.allSatisfy { p in ["checksum", "gzip", "integrity", "counts", "manifest", "missing", "decrypt", "database"].contains { p.hasPrefix($0 + ":") } }
                if !result.ok && !result.problems.isEmpty && named { caught += 1 } else { misses.append("\(artefact): \(damage.name) \(result.problems)") }
                try pristine.write(to: URL(fileURLWithPath: path))
            }
        }
        // A manifest that lies about counts (valid JSON, valid everything else).
        var lying = try SnapshotManifestV2.decode(try runAsync { try await plain.get(key: a.manifestKey) })
        lying.tables["orders", default: 0] += 1
        try DurableFile.write(try lying.encoded(), to: plain.path(for: a.manifestKey))
        let lied = try runAsync { try await verifier.verify(a, target: plain) }
        cases += 1
        if !lied.ok && lied.problems.contains(where: { $0.hasPrefix("manifest:") }) { caught += 1 } else { misses.append("lying manifest \(lied.problems)") }

        print("corruption: \(cases) cases, \(caught) caught, \(cases - caught) missed")
        XCTAssertEqual(caught, cases, "missed: \(misses.joined(separator: "\n"))")
        XCTAssertGreaterThanOrEqual(cases, 100)
    }

    func testDamagedCatalogGivesAClearErrorAndIsRebuiltFromTheTargets() throws {
        let f = try BackupFixture(orders: 300)
        let first = try f.backup()
        _ = try SampleBOS.addOrders(to: f.live, count: 3, at: Date(), seed: 1)
        let second = try f.backup()
        let path = f.catalog.path
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data.replaceSubrange(0..<100, with: Data(repeating: 0x5a, count: 100))
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        try data.write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try Catalog(path: path)) { error in
            guard case CatalogError.unreadable = error else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("catalog rebuild"), "\(error)")
        }
        let fresh = try Catalog(path: f.dir.file("catalog-new.db"))
        let outcome = try runAsync { try await CatalogRebuild(catalog: fresh).rebuild(targetName: "nas", target: f.target) }
        XCTAssertEqual(Set(outcome.added.map(\.id)), [first.id, second.id])
        XCTAssertEqual(try fresh.snapshots().map(\.tables), [first.tables, second.tables])
    }
}
