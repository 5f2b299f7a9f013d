@testable import BOSBackup
import Foundation
import XCTest

final class VerifyRestoreTests: XCTestCase {
    func testIntactSnapshotVerifiesAndIsRecorded() throws {
        let f = try BackupFixture(orders: 500)
        let record = try f.backup()
        let result = try f.verify(record)
        XCTAssertTrue(result.ok, "\(result.problems)")
        XCTAssertEqual(result.restoredCounts, record.tables)
        XCTAssertEqual(try f.catalog.lastVerification(of: record.id)?.ok, true)
    }

    func testBitFlipFailsChecksumAndNamesIt() throws {
        let f = try BackupFixture(orders: 500)
        let record = try f.backup()
        let path = f.objectPath(record)
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[data.count / 3] ^= 0x01
        try data.write(to: URL(fileURLWithPath: path))
        let result = try f.verify(record)
        XCTAssertFalse(result.ok)
        XCTAssertFalse(result.checksumOK)
        XCTAssertTrue(result.problems.contains { $0.hasPrefix("checksum:") }, "\(result.problems)")
        XCTAssertEqual(try f.catalog.lastVerification(of: record.id)?.ok, false)
    }

    func testTruncatedSnapshotFailsGzip() throws {
        let f = try BackupFixture(orders: 500)
        let record = try f.backup()
        let path = f.objectPath(record)
        XCTAssertEqual(truncate(path, off_t(record.storedBytes / 2)), 0)
        let result = try f.verify(record)
        XCTAssertFalse(result.checksumOK)
        XCTAssertFalse(result.gzipOK)
        XCTAssertTrue(result.problems.contains { $0.contains("truncated") }, "\(result.problems)")
    }

    func testSwappedSnapshotFilesAreCaught() throws {
        let f = try BackupFixture(orders: 300)
        let first = try f.backup()
        _ = try f.catalog.addAudit(action: "test", snapshotID: nil, detail: "")
        try SampleBOS.addOrders(to: f.live, count: 5, at: f.clock.now(), seed: 3).forEach { _ in }
        var request = f.request
        request.job = "cloud-daily"
        let second = try f.backup(request)
        // Swap the two stored objects: each is a perfectly valid gzip'd database, but not the cataloged one.
        let a = f.objectPath(first), b = f.objectPath(second)
        try FileManager.default.moveItem(atPath: a, toPath: a + ".x")
        try FileManager.default.moveItem(atPath: b, toPath: a)
        try FileManager.default.moveItem(atPath: a + ".x", toPath: b)
        for record in [first, second] {
            let result = try f.verify(record)
            XCTAssertFalse(result.ok)
            XCTAssertFalse(result.checksumOK)
            XCTAssertTrue(result.gzipOK)
            XCTAssertFalse(result.countsOK, "the swapped file holds the other snapshot's counts")
        }
    }

    func testDeletedSnapshotFileIsReportedMissing() throws {
        let f = try BackupFixture(orders: 200)
        let record = try f.backup()
        try FileManager.default.removeItem(atPath: f.objectPath(record))
        let result = try f.verify(record)
        XCTAssertFalse(result.ok)
        XCTAssertTrue(result.problems.contains { $0.hasPrefix("missing:") }, "\(result.problems)")
    }

    func testManifestThatLiesAboutCountsIsCaught() throws {
        let f = try BackupFixture(orders: 200)
        let record = try f.backup()
        var manifest = try SnapshotManifestV2.decode(try runAsync { try await f.target.get(key: record.manifestKey) })
        manifest.tables["orders"] = 999_999
        try DurableFile.write(try manifest.encoded(), to: f.target.path(for: record.manifestKey))
        let result = try f.verify(record)
        XCTAssertFalse(result.ok)
        XCTAssertTrue(result.problems.contains { $0.hasPrefix("manifest:") }, "\(result.problems)")
    }

    func testRestoreIntoNewPathAndRefusalWithoutForce() throws {
        let f = try BackupFixture(orders: 300)
        let record = try f.backup()
        let restorer = SnapshotRestorer(catalog: f.catalog, clock: f.clock)
        let destination = f.dir.file("restored/bos.db")
        let outcome = try runAsync { try await restorer.restore(record, from: f.target, into: destination, force: false) }
        XCTAssertNil(outcome.safetyCopy)
        XCTAssertEqual(try SHA256Stream.hex(ofFile: destination), record.databaseSHA256)
        XCTAssertEqual(outcome.tables, record.tables)

        XCTAssertThrowsError(try runAsync { try await restorer.restore(record, from: f.target, into: f.live, force: false) }) { error in
            guard case RestoreError.destinationExists = error else { return XCTFail("\(error)") }
        }
        XCTAssertNotEqual(try SHA256Stream.hex(ofFile: f.live), "", "live untouched")
    }

    func testRestoreOfAVerifiedSnapshotLetsTheSHA256StandForTheStructureCheck() throws {
        let f = try BackupFixture(orders: 300)
        let record = try f.backup()
        let restorer = SnapshotRestorer(catalog: f.catalog, clock: f.clock)
        func restore(_ name: String, fullCheck: Bool = false) throws -> RestoreOutcome {
            try runAsync { try await restorer.restore(record, from: f.target, into: f.dir.file(name), force: false, fullCheck: fullCheck) }
        }
        XCTAssertEqual(try restore("never-verified.db").structure, .quickCheck)
        XCTAssertTrue(try f.verify(record).ok, "verify records its result")
        XCTAssertEqual(try restore("verified.db").structure, .verified(at: f.clock.now()))
        XCTAssertEqual(try restore("full.db", fullCheck: true).structure, .integrityCheck)

        // A verify that failed proves nothing: the check runs again.
        try f.catalog.record(VerificationRecord(snapshotID: record.id, verifiedAt: f.clock.now().addingTimeInterval(60), ok: false,
                                                checksumOK: true, gzipOK: true, integrityOK: false, countsOK: true,
                                                seconds: 1, problems: ["integrity: page 7 is never used"]))
        XCTAssertEqual(try restore("after-failed-verify.db").structure, .quickCheck)

        // The skip never weakens the byte check: damaged after verify, still refused.
        try f.catalog.record(VerificationRecord(snapshotID: record.id, verifiedAt: f.clock.now().addingTimeInterval(120), ok: true,
                                                checksumOK: true, gzipOK: true, integrityOK: true, countsOK: true,
                                                seconds: 1, problems: []))
        XCTAssertEqual(truncate(f.objectPath(record), 1000), 0)
        XCTAssertThrowsError(try restore("damaged.db")) { XCTAssertEqual(($0 as? CategorizedError)?.category, .mismatch) }
        XCTAssertFalse(DurableFile.exists(f.dir.file("damaged.db")))
    }

    func testForcedRestoreKeepsASafetyCopyOfTheDamagedDatabase() throws {
        let f = try BackupFixture(orders: 300)
        let record = try f.backup()
        // Damage live: someone deleted today's orders.
        let live = try Database(path: f.live)
        try live.execute("DELETE FROM order_items WHERE order_id > 250; DELETE FROM inventory_movements WHERE order_id > 250; DELETE FROM payments WHERE order_id > 250; DELETE FROM shipments WHERE order_id > 250; DELETE FROM orders WHERE id > 250;")
        let damagedCounts = try TableCounts.count(in: live)
        let outcome = try runAsync {
            try await SnapshotRestorer(catalog: f.catalog, clock: f.clock).restore(record, from: f.target, into: f.live, force: true)
        }
        let aside = try XCTUnwrap(outcome.safetyCopy)
        XCTAssertEqual(try TableCounts.count(atPath: aside), damagedCounts, "the safety copy is the damaged database, WAL included")
        XCTAssertEqual(try TableCounts.count(atPath: f.live), record.tables)
        XCTAssertEqual(try f.catalog.auditTrail().first?.action, "restore")
    }

    func testCorruptSnapshotIsNeverRestoredOverLive() throws {
        let f = try BackupFixture(orders: 200)
        let record = try f.backup()
        let before = try SHA256Stream.hex(ofFile: f.live)
        XCTAssertEqual(truncate(f.objectPath(record), 1000), 0)
        XCTAssertThrowsError(try runAsync {
            try await SnapshotRestorer(catalog: f.catalog, clock: f.clock).restore(record, from: f.target, into: f.live, force: true)
        }) { error in
            XCTAssertEqual((error as? CategorizedError)?.category, .mismatch)
        }
        XCTAssertEqual(try SHA256Stream.hex(ofFile: f.live), before)
        let stray = try FileManager.default.contentsOfDirectory(atPath: f.dir.file("live")).filter { $0.contains(".tmp-") || $0.contains("before-restore") }
        XCTAssertEqual(stray, [])
    }

    /// Blocks inflated on all cores land at their offsets: the same database
    /// byte for byte, and a damaged block is named.
    func testParallelBlockRestoreIsByteExactAndNamesADamagedBlock() throws {
        let f = try BackupFixture(orders: 2_000)
        let record = try f.backup()
        let manifest = try SnapshotManifestV2.decode(try runAsync { try await f.target.get(key: record.manifestKey) })
        XCTAssertGreaterThan(manifest.blocks.count, 3)
        let fetcher = SnapshotFetcher(jobs: 3)
        let table = try XCTUnwrap(try runAsync { try await fetcher.blockTable(record, target: f.target) }, "the manifest's table fits")
        let out = f.dir.file("parallel.db")
        let good = try runAsync { try await fetcher.fetch(record, from: f.target, into: out, blocks: table) }
        XCTAssertTrue(good.gzipOK && good.checksumOK && good.databaseMatches, "\(good.problems)")
        XCTAssertEqual(try SHA256Stream.hex(ofFile: out), record.databaseSHA256)

        let path = f.objectPath(record)
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[Int(manifest.blocks[2].offset + manifest.blocks[2].length / 2)] ^= 0x20
        try data.write(to: URL(fileURLWithPath: path))
        unlink(out)   // the fetcher only ever creates a new file
        let bad = try runAsync { try await fetcher.fetch(record, from: f.target, into: out, blocks: table) }
        XCTAssertFalse(bad.gzipOK)
        XCTAssertTrue(bad.problems.contains { $0.contains("block 2") }, "\(bad.problems)")
    }
}
