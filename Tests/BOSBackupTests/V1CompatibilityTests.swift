@testable import BOSBackup
import Foundation
import XCTest

/// A catalog and targets written by the last v1-format release
/// (Tests/Fixtures/v1-release, see its README) keep working with v2:
/// listed, verified, restored, pruned, rebuilt — next to new v2 snapshots.
final class V1CompatibilityTests: XCTestCase {
    var dir: TempDir!
    var policy: String { dir.file("policy.yml") }

    override func setUpWithError() throws {
        dir = TempDir()
        let fixture = Fixtures.repoRoot + "/Tests/Fixtures/v1-release"
        for item in ["nas", "vault", "keys", "bos.db"] {
            try FileManager.default.copyItem(atPath: fixture + "/" + item, toPath: dir.file(item))
        }
        try FileManager.default.createDirectory(atPath: dir.file("state"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: fixture + "/catalog.db", toPath: dir.file("state/catalog.db"))
        // git keeps no modes: the key and the folders are private again, as on the host that wrote them.
        XCTAssertEqual(chmod(dir.file("keys/cloud.key"), 0o600), 0)
        for folder in ["keys", "state", "nas", "vault"] { XCTAssertEqual(chmod(dir.file(folder), 0o700), 0) }
        try """
            timezone: UTC
            source: { database: \(dir.file("bos.db")) }
            catalog: \(dir.file("state/catalog.db"))
            scratch: \(dir.file("scratch"))
            targets:
              nas:   { url: "file://\(dir.file("nas"))" }
              vault: { url: "file://\(dir.file("vault"))", encryption_key_file: \(dir.file("keys/cloud.key")) }
            jobs:
              local-weekly: { target: nas, cron: "0 0 * * 0", retention: { keep_last: 1 } }
              vault-daily: { target: vault, cron: "0 22 * * *", retention: { keep_daily: 7 } }
            """.write(toFile: policy, atomically: true, encoding: .utf8)
    }

    private var v1Snapshots: [[String: Any]] {
        get throws {
            let list = try bosbackup("snapshots", "--config", policy, "--json")
            XCTAssertEqual(list.status, 0, list.stderr)
            return try XCTUnwrap(try jsonObject(list.stdout)["snapshots"] as? [[String: Any]])
        }
    }

    func testV1SnapshotsListVerifyAndRestoreUnderV2() throws {
        let snapshots = try v1Snapshots
        XCTAssertEqual(snapshots.map { $0["id"] as? String }, ["d49c045f", "d333fa1c"])
        XCTAssertEqual(snapshots.map { $0["format"] as? Int }, [1, 1])
        XCTAssertEqual(snapshots.map { $0["kind"] as? String }, ["full", "full"])

        let verify = try bosbackup("verify", "--config", policy, "--latest", "2")
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)
        XCTAssertTrue(verify.stdout.contains("all 2 snapshots verified"), verify.stdout)

        let imageSHA256 = Dictionary(uniqueKeysWithValues: snapshots.map { ($0["id"] as? String ?? "", $0["database_sha256"] as? String ?? "") })
        for (id, name) in [("d49c045f", "plain"), ("d333fa1c", "encrypted")] {
            let into = dir.file("restored-\(name).db")
            let restore = try bosbackup("restore", "--snapshot", id, "--config", policy, "--into", into)
            XCTAssertEqual(restore.status, 0, restore.stderr)
            XCTAssertEqual(try SHA256Stream.hex(ofFile: into), imageSHA256[id])
            XCTAssertEqual(try TableCounts.count(atPath: into)["orders"], 305)
        }
    }

    func testAV2SnapshotJoinsTheV1OnesAndRetentionDeletesTheV1Objects() throws {
        let backup = try bosbackup("backup", "--config", policy, "--job", "local-weekly", "--json")
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let record = try jsonObject(backup.stdout)
        let key = try XCTUnwrap(record["object_key"] as? String)
        XCTAssertTrue(key.contains("/bos/snapshots/"), key)
        let catalog = try Catalog(path: dir.file("state/catalog.db"), clock: SystemClock())
        XCTAssertEqual(catalog.schemaVersion, CatalogSchema.currentVersion)

        // keep_last: 1 (and the newest verified one) — once the v2 one is verified, the v1
        // snapshot of the job goes, objects and all, by the keys the catalog kept.
        XCTAssertEqual(try bosbackup("verify", "--config", policy, "--snapshot", try XCTUnwrap(record["id"] as? String)).status, 0)
        let prune = try bosbackup("prune", "--config", policy, "--job", "local-weekly")
        XCTAssertEqual(prune.status, 0, prune.stdout + prune.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.file("nas/local-weekly/2026/11/local-weekly-20261129T100500Z.db.gz")))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.file("nas/local-weekly/2026/11/local-weekly-20261129T100500Z.manifest.json")))
        XCTAssertEqual(try v1Snapshots.map { $0["id"] as? String }, ["d333fa1c", record["id"] as? String])
    }

    func testCatalogRebuildAdoptsV1AndV2ManifestsAlike() throws {
        XCTAssertEqual(try bosbackup("backup", "--config", policy, "--job", "vault-daily").status, 0)
        try FileManager.default.removeItem(atPath: dir.file("state"))
        for target in ["nas", "vault"] {
            let rebuild = try bosbackup("catalog", "rebuild", "--config", policy, "--target", target)
            XCTAssertEqual(rebuild.status, 0, rebuild.stdout + rebuild.stderr)
        }
        let snapshots = try v1Snapshots
        XCTAssertEqual(Set(snapshots.compactMap { $0["format"] as? Int }), [1, 2])
        XCTAssertEqual(snapshots.count, 3)
        XCTAssertEqual(try bosbackup("verify", "--config", policy, "--latest", "3").status, 0)
    }
}
