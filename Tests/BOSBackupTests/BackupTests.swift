@testable import BOSBackup
import Foundation
import XCTest

/// A catalog, a file target and a small live sample database in a temp folder.
final class BackupFixture {
    let dir = TempDir()
    let catalog: Catalog
    let target: FileTarget
    let live: String
    let clock = FixedClock(Date(timeIntervalSince1970: 1_795_780_800))

    init(orders: Int = 2_000, wal: Bool = true) throws {
        live = dir.file("live/bos.db")
        try FileManager.default.createDirectory(atPath: dir.file("live"), withIntermediateDirectories: true)
        try Fixtures.sampleDatabase(at: live, orders: orders, wal: wal)
        catalog = try Catalog(path: dir.file("catalog.db"), clock: clock)
        target = try FileTarget(url: "file://" + dir.file("nas"))
    }

    var request: BackupRequest {
        var request = BackupRequest(sourcePath: live, job: "local-weekly", targetName: "nas", scratch: dir.file("scratch"), blockSize: 256 << 10)
        request.host = "store-0421"
        return request
    }

    func backup(_ request: BackupRequest? = nil) throws -> SnapshotRecord {
        try runAsync { try await SnapshotWriter(catalog: self.catalog, clock: self.clock).backup(request ?? self.request, to: self.target) }
    }

    func verify(_ record: SnapshotRecord) throws -> VerificationResult {
        try runAsync {
            try await SnapshotVerifier(catalog: self.catalog, clock: self.clock, scratch: self.dir.file("scratch")).verify(record, target: self.target)
        }
    }

    func objectPath(_ record: SnapshotRecord) -> String { target.path(for: record.objectKey) }
}

final class BackupTests: XCTestCase {
    func testBackupStoresGzipManifestAndCatalogRow() throws {
        let f = try BackupFixture()
        let record = try f.backup()
        let object = f.objectPath(record)
        XCTAssertEqual(record.objectKey, "store-0421/bos/snapshots/2026/11/local-weekly-20261127T120000Z.db.gz")
        XCTAssertEqual(record.manifestKey, "store-0421/bos/snapshots/2026/11/local-weekly-20261127T120000Z.manifest.json")
        XCTAssertNil(record.layout.pagemapKey, "a job without incremental: writes no page map")
        XCTAssertEqual(fileMode(object), 0o600)
        XCTAssertEqual(fileMode(f.target.path(for: record.manifestKey)), 0o600)
        XCTAssertEqual(try f.catalog.snapshots().map(\.id), [record.id])
        XCTAssertEqual(try SHA256Stream.hex(ofFile: object), record.sha256)

        // gunzip -c gives the database itself: sqlite3 opens it, integrity ok, counts = manifest.
        let restored = f.dir.file("gunzipped.db")
        XCTAssertEqual(try runProcess("/bin/sh", ["-c", "gunzip -c '\(object)' > '\(restored)'"]).status, 0)
        XCTAssertEqual(try SHA256Stream.hex(ofFile: restored), record.databaseSHA256)
        let check = try runProcess("/usr/bin/sqlite3", [restored, "PRAGMA integrity_check; SELECT count(*) FROM orders;"])
        XCTAssertEqual(check.stdout, "ok\n2000\n")
        let manifest = try SnapshotManifestV2.decode(try runAsync { try await f.target.get(key: record.manifestKey) })
        XCTAssertEqual(manifest.tables, try TableCounts.count(atPath: restored))
        XCTAssertEqual(manifest.tables["orders"], 2_000)
        XCTAssertEqual(manifest.blocks.count, Int((record.bytes + (256 << 10) - 1) / (256 << 10)))
        // A full's blocks cover pages 1…N in order, each with the SHA-256 of its raw bytes.
        XCTAssertEqual(manifest.blocks.flatMap(\.pageNumbers), Array(1...manifest.pageCount))
        XCTAssertEqual(manifest.format, 2)
        XCTAssertEqual(manifest.kind, .full)
        XCTAssertEqual(manifest.objects.map(\.key), [record.objectKey])

        // No scratch copy is left behind.
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: f.dir.file("scratch"))) ?? []
        XCTAssertEqual(leftovers, [])
    }

    func testRollbackJournalDatabaseBacksUpToo() throws {
        let f = try BackupFixture(orders: 500, wal: false)
        let record = try f.backup()
        XCTAssertTrue(try f.verify(record).ok)
        XCTAssertEqual(record.tables["orders"], 500)
    }

    func testMissingSourceIsAnInputErrorAndNothingIsCataloged() throws {
        let f = try BackupFixture(orders: 200)
        var request = f.request
        request.sourcePath = f.dir.file("nope.db")
        XCTAssertThrowsError(try f.backup(request)) { error in
            guard case SourceError.missing = error else { return XCTFail("\(error)") }
            XCTAssertEqual((error as? CategorizedError)?.category, .input)
        }
        XCTAssertTrue(try f.catalog.snapshots().isEmpty)
    }

    func testNonDatabaseSourceIsRefused() throws {
        let f = try BackupFixture(orders: 200)
        let bogus = f.dir.file("orders.csv")
        try Data("id,total\n1,20\n".utf8).write(to: URL(fileURLWithPath: bogus))
        var request = f.request
        request.sourcePath = bogus
        XCTAssertThrowsError(try f.backup(request)) { error in
            guard case SourceError.notADatabase = error else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("orders.csv"))
        }
        XCTAssertTrue(try f.catalog.snapshots().isEmpty)
    }

    func testUnwritableTargetFailsCleanly() throws {
        let f = try BackupFixture(orders: 200)
        // A file where the target folder should be: not writable whatever the user (tests run as root).
        try Data().write(to: URL(fileURLWithPath: f.dir.file("blocked")))
        let target = try FileTarget(url: "file://" + f.dir.file("blocked/nas"))
        XCTAssertThrowsError(try runAsync { try await SnapshotWriter(catalog: f.catalog, clock: f.clock).backup(f.request, to: target) }) { error in
            guard case TargetError.notWritable = error else { return XCTFail("\(error)") }
        }
        XCTAssertTrue(try f.catalog.snapshots().isEmpty)
    }

    func testFailedCatalogInsertRemovesTheStoredObject() throws {
        let f = try BackupFixture(orders: 200)
        // Make the catalog refuse the row: a trigger standing in for a full or broken catalog.
        try f.catalog.db.execute("CREATE TRIGGER refuse BEFORE INSERT ON snapshots BEGIN SELECT RAISE(FAIL, 'catalog refuses'); END")
        XCTAssertThrowsError(try f.backup())
        XCTAssertEqual(try runAsync { try await f.target.list(prefix: "") }, [], "nothing stored without a catalog row")
    }

    /// A writer that died mid-transaction leaves a hot journal: the backup must
    /// see the last committed state (and not fail with "readonly database").
    func testHotJournalFromACrashedWriterIsRolledBackNotCopied() throws {
        let f = try BackupFixture(orders: 300, wal: false)
        let crashed = f.dir.file("crashed/bos.db")
        try FileManager.default.createDirectory(atPath: f.dir.file("crashed"), withIntermediateDirectories: true)
        let writer = try Database(path: f.live)
        try writer.execute("PRAGMA cache_size = 1; BEGIN; DELETE FROM inventory_movements; DELETE FROM order_items;")
        // Copy the files mid-transaction, as a power cut would leave them.
        try FileManager.default.copyItem(atPath: f.live, toPath: crashed)
        try FileManager.default.copyItem(atPath: f.live + "-journal", toPath: crashed + "-journal")
        try writer.execute("ROLLBACK")
        var request = f.request
        request.sourcePath = crashed
        let record = try f.backup(request)
        XCTAssertEqual(record.tables, try TableCounts.count(atPath: f.live), "the snapshot is the last committed state")
        XCTAssertGreaterThan(record.tables["order_items"] ?? 0, 0)
    }
}
