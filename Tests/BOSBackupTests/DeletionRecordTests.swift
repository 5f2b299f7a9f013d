@testable import BOSBackup
import Foundation
import XCTest

/// Schema 4: a catalog remembers why a deletion could not finish (issue #12 item 1).
final class DeletionRecordTests: XCTestCase {
    func testVersion3CatalogWithAHalfDoneDeletionMigratesAndRecordsFailures() throws {
        let dir = TempDir()
        let path = dir.file("c.db")
        // A catalog as bosbackup with schema 3 left it after a crash mid-prune.
        let old = try Database(path: path, mode: .readWriteCreate)
        for migration in CatalogSchema.migrations.prefix(3) { try old.execute(migration) }
        try old.execute("""
            PRAGMA user_version = 3;
            INSERT INTO snapshots (id, name, job, target, target_url, object_key, manifest_key, taken_at, source, bytes,
              stored_bytes, sha256, database_sha256, page_size, block_size, level, state, cataloged_at)
            VALUES ('0000aaaa', 'cloud-daily-1', 'cloud-daily', 'cloud', 's3://b/p', 'k.db.gz', 'k.manifest.json', 1.8e9, '/db',
              1, 1, 'x', 'y', 4096, 65536, 6, 'deleting', 1.8e9);
            """)

        let catalog = try Catalog(path: path, clock: FixedClock(Date(timeIntervalSince1970: 1_900_000_000)))
        XCTAssertEqual(catalog.schemaVersion, CatalogSchema.currentVersion, "migrated to the newest schema (4 added the deletion columns)")
        let pending = try XCTUnwrap(try catalog.pendingDeletions().first)
        XCTAssertEqual(pending.id, "0000aaaa")
        XCTAssertEqual(pending.snapshot.targetURL, "s3://b/p")
        XCTAssertEqual(pending.failures, 0)
        XCTAssertNil(pending.lastError)

        try catalog.recordDeletionFailure("0000aaaa", error: "AccessDenied")
        try catalog.recordDeletionFailure("0000aaaa", error: "Connection refused")
        let failed = try XCTUnwrap(try catalog.pendingDeletions().first)
        XCTAssertEqual(failed.failures, 2)
        XCTAssertEqual(failed.lastError, "Connection refused")
        XCTAssertEqual(failed.lastFailedAt, Date(timeIntervalSince1970: 1_900_000_000))
        XCTAssertTrue(try catalog.snapshots().isEmpty, "still not offered for use")
    }
}
