@testable import BOSBackup
import Foundation
import XCTest

/// A live database SQLite reports malformed is still backed up: the image is
/// the best copy there is. It is stored, marked damaged, and the backup says so.
final class DamagedSourceTests: XCTestCase {
    func testAMalformedSourceIsStoredMarkedDamagedAndExits4() throws {
        try check(wal: false)   // copied first, then counted
        try check(wal: true)    // pages read inside the pinned read transaction, counted alongside
    }

    func check(wal: Bool) throws {
        let dir = TempDir()
        let live = dir.file("live.db"), catalog = dir.file("catalog.db")
        try Fixtures.sampleDatabase(at: live, orders: 3_000, wal: wal)
        let page = try Fixtures.breakEmployeesPage(live)
        XCTAssertThrowsError(try Database(path: live, mode: .readOnly).int("SELECT count(*) FROM employees"), "the damage is real")

        let backup = try bosbackup("backup", "--source", live, "--target", "file://" + dir.file("nas"), "--catalog", catalog)
        XCTAssertEqual(backup.status, 4, backup.stdout + backup.stderr)
        XCTAssertTrue(backup.stderr.contains("damaged") && backup.stderr.contains("stored anyway") && backup.stderr.contains("employees"), backup.stderr)
        XCTAssertEqual(backup.stderr.split(separator: "\n").count, 1, backup.stderr)

        let db = try Catalog(path: catalog)
        let snapshot = try XCTUnwrap(try db.snapshots().first)
        let verdict = try XCTUnwrap(try db.lastVerification(of: snapshot.id))
        XCTAssertFalse(verdict.ok)
        XCTAssertTrue(verdict.problems.contains { $0.contains("employees") }, "\(verdict.problems)")
        XCTAssertEqual(snapshot.tables["employees"], nil, "no count for the table SQLite could not count")
        XCTAssertNotNil(snapshot.tables["customers"])

        // The stored image (plain gzip) is what was cataloged, damaged page and all.
        let object = dir.file("nas/" + snapshot.objectKey), image = dir.file("image.db")
        XCTAssertEqual(try runProcess("/bin/sh", ["-c", "gunzip -c '\(object)' > '\(image)'"]).status, 0)
        XCTAssertEqual(try SHA256Stream.hex(ofFile: image), snapshot.databaseSHA256)
        func pageBytes(_ path: String) throws -> Data {
            try Data(contentsOf: URL(fileURLWithPath: path)).subdata(in: (Int(page) - 1) * 4096..<Int(page) * 4096)
        }
        XCTAssertEqual(try pageBytes(image), try pageBytes(live), "the damaged page is kept as it is, not dropped")
        let manifest = try jsonObject(try String(contentsOfFile: dir.file("nas/" + snapshot.manifestKey), encoding: .utf8))
        XCTAssertNotNil(manifest["damage"], "\(manifest.keys)")
        XCTAssertTrue(try bosbackup("snapshots", "--catalog", catalog).stdout.contains("FAILED"))
    }
}
