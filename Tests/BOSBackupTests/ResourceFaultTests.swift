@testable import BOSBackup
import Foundation
import XCTest

/// A target that fills up mid-write, a read-only target, a scratch folder that
/// is not there: a clean error and exit code, nothing cataloged, no partial
/// file left, older snapshots intact. Uses small tmpfs mounts (tests run as root).
final class ResourceFaultTests: XCTestCase {
    var dir: TempDir!
    var mounts: [String] = []

    override func setUpWithError() throws {
        dir = TempDir()
        try Fixtures.sampleDatabase(at: dir.file("small.db"), orders: 100)
        try Fixtures.sampleDatabase(at: dir.file("big.db"), orders: 6_000)
    }

    override func tearDown() {
        for mount in mounts.reversed() { _ = try? runProcess("/bin/umount", [mount]) }
    }

    func mountTmpfs(_ path: String, options: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let result = try runProcess("/bin/mount", ["-t", "tmpfs", "-o", options, "tmpfs", path])
        XCTAssertEqual(result.status, 0, "cannot mount a tmpfs for this test (needs root): \(result.stderr)")
        if result.status == 0 { mounts.append(path) }
    }

    func testTargetThatFillsUpMidWrite() throws {
        let nas = dir.file("nas")
        try mountTmpfs(nas, options: "size=1m,mode=0700")
        let catalog = dir.file("catalog.db")
        let first = try bosbackup("backup", "--source", dir.file("small.db"), "--target", "file://" + nas, "--catalog", catalog, "--json")
        XCTAssertEqual(first.status, 0, first.stderr)
        let full = try bosbackup("backup", "--source", dir.file("big.db"), "--target", "file://" + nas, "--catalog", catalog)
        XCTAssertEqual(full.status, 1, full.stdout + full.stderr)
        XCTAssertTrue(full.stderr.contains("disk full"), full.stderr)
        XCTAssertEqual(full.stderr.split(separator: "\n").count, 1, full.stderr)
        XCTAssertEqual(try Catalog(path: catalog).snapshots().count, 1, "nothing cataloged")
        XCTAssertEqual(try FileTarget(url: "file://" + nas).staleTemporaryFiles(), [], "no partial file left")
        XCTAssertEqual(try bosbackup("verify", "--latest", "1", "--catalog", catalog).status, 0, "the older snapshot is intact")
    }

    /// A full scratch disk is an operation failure (exit 1) that names the
    /// scratch folder — not an input error blaming the live database. Only a
    /// rollback-journal database is copied to scratch; a WAL database is read
    /// in place and does not need the space.
    func testScratchFolderThatFillsUp() throws {
        let scratch = dir.file("scratch")
        try mountTmpfs(scratch, options: "size=1m,mode=0700")
        let wal = try bosbackup("backup", "--source", dir.file("big.db"), "--target", "file://" + dir.file("nas-wal"),
                                "--catalog", dir.file("wal.db"), "--scratch", scratch)
        XCTAssertEqual(wal.status, 0, "a WAL database needs no scratch copy: " + wal.stderr)

        try Fixtures.sampleDatabase(at: dir.file("big-rollback.db"), orders: 6_000, wal: false)
        let result = try bosbackup("backup", "--source", dir.file("big-rollback.db"), "--target", "file://" + dir.file("nas"),
                                   "--catalog", dir.file("c.db"), "--scratch", scratch)
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("scratch folder") && result.stderr.contains("disk full"), result.stderr)
        XCTAssertTrue(try Catalog(path: dir.file("c.db")).snapshots().isEmpty)
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: scratch)) ?? [], [], "the partial copy is removed")
    }

    func testReadOnlyTarget() throws {
        let nas = dir.file("ro")
        try mountTmpfs(nas, options: "size=4m,ro,mode=0700")
        let result = try bosbackup("backup", "--source", dir.file("small.db"), "--target", "file://" + nas, "--catalog", dir.file("c.db"))
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("not writable") && result.stderr.contains("Read-only file system"), result.stderr)
        XCTAssertTrue(try Catalog(path: dir.file("c.db")).snapshots().isEmpty)
    }

    func testMissingScratchFolderIsCreatedPrivate() throws {
        let scratch = dir.file("not/there/yet")
        let result = try bosbackup("backup", "--source", dir.file("small.db"), "--target", "file://" + dir.file("nas"),
                                   "--catalog", dir.file("c.db"), "--scratch", scratch)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(fileMode(scratch), 0o700)
        XCTAssertEqual(try bosbackup("verify", "--latest", "1", "--catalog", dir.file("c.db"), "--scratch", scratch).status, 0)
    }
}
