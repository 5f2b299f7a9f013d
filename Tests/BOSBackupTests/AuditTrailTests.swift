@testable import BOSBackup
import Foundation
import XCTest

/// Issue #17, part 2: the audit trail is a hash chain, its head sealed (Ed25519)
/// onto every target; `audit verify` exits 4 naming the first bad row of an
/// edited, deleted, reordered or truncated trail; a command that cannot write
/// its row first does nothing.
final class AuditTrailTests: XCTestCase {
    var dir: TempDir!
    var config: String { dir.file("bos.yml") }
    var catalogPath: String { dir.file("catalog.db") }

    override func setUpWithError() throws {
        dir = TempDir()
        try Fixtures.sampleDatabase(at: dir.file("live.db"), orders: 300)
        try """
            timezone: UTC
            host: store-1
            source: { database: live.db }
            catalog: catalog.db
            scratch: scratch
            targets:
              nas:     { url: nas }
              offsite: { url: offsite }
            jobs:
              nightly: { target: nas, cron: "0 22 * * *", retention: { keep_last: 1 } }
            """.write(toFile: config, atomically: true, encoding: .utf8)
    }

    /// A trail of `rows` rows (two real backups, the rest added through the catalog), sealed.
    func sealedTrail(rows: Int = 12) throws {
        for _ in 0..<2 { XCTAssertEqual(try bosbackup("backup", "--config", config, "--job", "nightly").status, 0) }
        let catalog = try Catalog(path: catalogPath)
        while try catalog.auditChain().count < rows {
            try catalog.addAudit(action: "test", snapshotID: nil, detail: "row for the tamper cases")
        }
        let sealed = try bosbackup("audit", "seal", "--config", config)
        XCTAssertEqual(sealed.status, 0, sealed.stderr)
        // Making the key is on the trail too: the seal covers that row.
        XCTAssertTrue(sealed.stdout.contains("sealed row \(rows + 1) on nas, offsite"), sealed.stdout)
        XCTAssertTrue(sealed.stdout.contains("made the audit seal key"), sealed.stdout)
    }

    /// A copy of the catalog with `tamper` done to it by plain SQL, as anyone holding the file could.
    func tamperedCopy(_ name: String, _ tamper: String) throws -> String {
        let copy = dir.file(name + ".db")
        try Database(path: catalogPath).execute("VACUUM INTO '\(copy)'")
        try Database(path: copy).execute(tamper)
        return copy
    }

    func verify(catalog: String? = nil, _ extra: String...) throws -> ProcessResult {
        try bosbackup(["audit", "verify", "--config", config] + (catalog.map { ["--catalog", $0] } ?? []) + extra)
    }

    func testEveryTamperIsCaughtAndNamesTheFirstBadRow() throws {
        try sealedTrail()
        let clean = try verify()
        XCTAssertEqual(clean.status, 0, clean.stdout + clean.stderr)
        XCTAssertTrue(clean.stdout.contains("audit trail ok: 13 rows chained, 2 seals verified"), clean.stdout)
        let swap = """
            UPDATE audit SET id = -3 WHERE id = 3; UPDATE audit SET id = 3 WHERE id = 5; UPDATE audit SET id = 5 WHERE id = -3;
            """
        let cases: [(name: String, sql: String, firstBad: Int, says: String)] = [
            ("edited", "UPDATE audit SET detail = 'nothing happened' WHERE id = 4", 4, "does not match its hash"),
            ("removed", "DELETE FROM audit WHERE id = 6", 7, "does not follow row 5"),
            ("swapped", swap, 3, "does not follow row 2"),
            ("last 5 deleted", "DELETE FROM audit WHERE id > (SELECT max(id) - 5 FROM audit)", 9, "rows were cut off"),
            ("truncated", "DELETE FROM audit", 1, "the trail ends at row 0"),
        ]
        for (name, sql, firstBad, says) in cases {
            let result = try verify(catalog: try tamperedCopy(name, sql))
            XCTAssertEqual(result.status, 4, "\(name): \(result.stdout) \(result.stderr)")
            XCTAssertTrue(result.stdout.contains("DAMAGED from row \(firstBad):"), "\(name): \(result.stdout)")
            XCTAssertTrue(result.stderr.contains(says), "\(name): \(result.stderr)")
        }
    }

    /// The chain alone cannot tell a trail rewritten with fresh hashes (the algorithm
    /// is no secret); the signed seals on the targets can.
    func testARewrittenTrailWithRecomputedHashesFailsAgainstTheSeals() throws {
        try sealedTrail()
        let copy = try tamperedCopy("rewritten", "UPDATE audit SET detail = 'restore of nothing' WHERE id = 4")
        let db = try Database(path: copy)
        let trail = try AuditChain.trailID(db)
        var previous = AuditChain.genesis(trail: trail)
        for var row in try AuditChain.rows(db) {
            row.previousSHA256 = previous
            let sha = AuditChain.hash(of: row, previous: previous)
            try db.run("UPDATE audit SET prev_sha256 = ?, sha256 = ? WHERE id = ?", .text(previous), .text(sha), .integer(row.id))
            previous = sha
        }
        XCTAssertEqual(AuditVerifier.checkChain(try AuditChain.rows(db), trail: trail), [], "the forged chain is self-consistent")
        let result = try verify(catalog: copy)
        XCTAssertEqual(result.status, 4, result.stdout + result.stderr)
        XCTAssertTrue(result.stderr.contains("row 13 is not the row the seal of"), result.stderr)
        XCTAssertTrue(result.stderr.contains("on nas") && result.stderr.contains("on offsite"), result.stderr)
    }

    func testASealNotSignedByTheTrustedKeyIsDamage() throws {
        try sealedTrail()
        let other = TempDir()
        _ = try AuditSealKey.loadOrCreate(folder: other.path)
        let result = try verify(catalog: nil, "--public-key", other.file(AuditSealKey.publicFileName))
        XCTAssertEqual(result.status, 4, result.stdout + result.stderr)
        XCTAssertTrue(result.stderr.contains("is not signed by the trusted audit key"), result.stderr)
        XCTAssertEqual(fileMode(dir.file(AuditSealKey.privateFileName)), 0o600)
        XCTAssertEqual(fileMode(dir.file(AuditSealKey.publicFileName)), 0o644)
    }

    func testATargetThatCannotBeReadIsCouldNotCheckNotDamage() throws {
        try sealedTrail()
        try FileManager.default.removeItem(atPath: dir.file("offsite"))
        try "not a folder".write(toFile: dir.file("offsite"), atomically: true, encoding: .utf8)
        let result = try verify()
        XCTAssertEqual(result.status, 1, result.stdout + result.stderr)
        XCTAssertTrue(result.stderr.contains("could not read the seals on offsite"), result.stderr)
        XCTAssertTrue(result.stdout.contains("chain ok (13 rows)"), result.stdout)
    }

    /// Fail closed: with the trail unwritable (a full disk, an attacker's trigger),
    /// backup, restore, prune and recover refuse before changing anything.
    func testACommandThatCannotWriteItsRowFirstChangesNothing() throws {
        for _ in 0..<2 { XCTAssertEqual(try bosbackup("backup", "--config", config, "--job", "nightly").status, 0) }
        let snapshots = try Catalog(path: catalogPath).latest(10)
        XCTAssertEqual(snapshots.count, 2)
        let live = try Database(path: dir.file("live.db"))
        try live.execute("PRAGMA foreign_keys=OFF; DELETE FROM orders WHERE id <= 5")
        let liveOrders = try live.int("SELECT count(*) FROM orders")
        try Database(path: catalogPath).execute("CREATE TRIGGER refuse BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        let objectsBefore = try FileManager.default.subpathsOfDirectory(atPath: dir.file("nas")).sorted()

        let attempts: [[String]] = [
            ["backup", "--config", config, "--job", "nightly"],
            ["restore", "--config", config, "--snapshot", snapshots[1].id, "--into", dir.file("restored.db")],
            ["prune", "--config", config],
            ["recover", "--config", config, "--snapshot", snapshots[0].id, "--live", dir.file("live.db"), "--table", "orders", "--apply"],
        ]
        for arguments in attempts {
            let result = try bosbackup(arguments)
            XCTAssertEqual(result.status, 1, "\(arguments[0]): \(result.stdout) \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("cannot write the audit trail") && result.stderr.contains("nothing was changed"),
                          "\(arguments[0]): \(result.stderr)")
        }
        XCTAssertEqual(try FileManager.default.subpathsOfDirectory(atPath: dir.file("nas")).sorted(), objectsBefore)
        XCTAssertEqual(try Catalog(path: catalogPath).latest(10).map(\.id), snapshots.map(\.id))
        XCTAssertFalse(DurableFile.exists(dir.file("restored.db")))
        XCTAssertEqual(try live.int("SELECT count(*) FROM orders"), liveOrders)
    }

    /// A catalog from before the chain: its rows are chained when it is upgraded.
    func testAnOlderCatalogsRowsAreChainedOnUpgrade() throws {
        let catalog = try Catalog(path: catalogPath)
        for i in 1...4 { try catalog.addAudit(action: "old", snapshotID: nil, detail: "row \(i)") }
        try Database(path: catalogPath).execute("""
            ALTER TABLE audit DROP COLUMN prev_sha256; ALTER TABLE audit DROP COLUMN sha256;
            DROP TABLE audit_trail; DROP TABLE audit_seals;
            ALTER TABLE wal_segments DROP COLUMN index_offset; ALTER TABLE wal_segments DROP COLUMN index_length;
            ALTER TABLE wal_segments DROP COLUMN index_sha256; PRAGMA user_version = 9;
            """)
        let upgraded = try Catalog(path: catalogPath)
        let rows = try upgraded.auditChain()
        XCTAssertEqual(rows.map(\.detail), ["row 1", "row 2", "row 3", "row 4"])
        XCTAssertEqual(AuditVerifier.checkChain(rows, trail: try upgraded.auditTrailID()), [])
        XCTAssertEqual(Set(rows.compactMap(\.sha256)).count, 4)
    }

    /// Sealed every `seal_every` rows, or after `seal_interval` when the head moved; never twice the same head.
    func testSealsAreDueEveryNRowsOrAfterTheInterval() throws {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let catalog = try Catalog(path: catalogPath)
        let nas = Repository(target: try TargetFactory.open(url: "file://" + dir.file("nas")))
        func sealer(_ now: Date) -> AuditSealer {
            AuditSealer(catalog: catalog, host: "store-1", keyFolder: dir.path, sealing: AuditSealing(every: 3, interval: 3_600), clock: FixedClock(now))
        }
        func seal(_ now: Date) throws -> Int64? { try runAsync { try await sealer(now).sealIfDue(targets: ["nas"]) { _ in nas } }.sealed?.rowID }
        XCTAssertNil(try seal(start), "an empty trail has nothing to seal")
        try catalog.addAudit(action: "a", snapshotID: nil, detail: "")
        XCTAssertEqual(try seal(start), 2, "the first row is sealed at once, with the row saying the key was made")
        XCTAssertEqual(try catalog.auditTrail(limit: 1).first?.action, "seal-key")
        XCTAssertNil(try seal(start))
        for _ in 0..<2 { try catalog.addAudit(action: "a", snapshotID: nil, detail: "") }
        XCTAssertNil(try seal(start.addingTimeInterval(60)), "2 rows since the seal, within the hour")
        XCTAssertEqual(try seal(start.addingTimeInterval(3_600)), 4, "an hour on, the moved head is sealed")
        for _ in 0..<3 { try catalog.addAudit(action: "a", snapshotID: nil, detail: "") }
        XCTAssertEqual(try seal(start.addingTimeInterval(3_660)), 7, "3 rows since the seal")
        XCTAssertNil(try seal(start.addingTimeInterval(90_000)), "the head did not move")
        let stored = try runAsync { try await nas.auditSeals(host: "store-1", trail: try catalog.auditTrailID()) }
        XCTAssertEqual(stored.compactMap { $0.seal?.rowID }, [2, 4, 7])
    }
}
