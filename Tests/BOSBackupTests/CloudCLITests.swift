@testable import BOSBackup
import Foundation
import XCTest

/// The double-backup policy end to end with a real S3-compatible server
/// (moto on 127.0.0.1): encrypted multipart upload, list, verify, restore,
/// wrong key, a failed cloud job retried, and a catalog rebuilt from targets.
final class CloudCLITests: XCTestCase {
    var dir: TempDir!
    var moto: MotoServer!
    var bucket: String!
    var config: String { dir.file("bos.yml") }
    var environment: [String: String] {
        let c = MotoServer.credentials
        return ["AWS_ACCESS_KEY_ID": c.accessKeyID, "AWS_SECRET_ACCESS_KEY": c.secretAccessKey, "AWS_SESSION_TOKEN": c.sessionToken!]
    }

    override func setUpWithError() throws {
        dir = TempDir()
        moto = try MotoServer.shared()
        bucket = try runAsync { try await self.moto.makeBucket() }
        try Fixtures.sampleDatabase(at: dir.file("live.db"), orders: 30_000)
        XCTAssertEqual(try bosbackup("key", "generate", dir.file("cloud.key")).status, 0)
        XCTAssertEqual(fileMode(dir.file("cloud.key")), 0o600)
        try writePolicy(bucket: bucket)
    }

    func writePolicy(bucket: String, key: String? = "cloud.key") throws {
        try """
            timezone: Asia/Shanghai
            source: { database: live.db }
            catalog: catalog.db
            targets:
              nas:   { url: nas }
              cloud: { url: "s3://\(bucket)/prod?endpoint=http://127.0.0.1:\(moto.port)&part_size=5MiB"\(key.map { ", encryption_key_file: \($0)" } ?? "") }
            jobs:
              local-weekly: { target: nas,   cron: "0 0 * * 0" }
              cloud-daily:  { target: cloud, cron: "0 22 * * *" }
            """.write(toFile: config, atomically: true, encoding: .utf8)
    }

    func run(_ arguments: String...) throws -> ProcessResult {
        let result = try bosbackup(arguments, environment: environment)
        for secret in [MotoServer.credentials.secretAccessKey, MotoServer.credentials.sessionToken!] {
            XCTAssertFalse(result.stdout.contains(secret) || result.stderr.contains(secret), "a secret was printed by \(arguments)")
        }
        return result
    }

    func cloudSnapshot() throws -> SnapshotRecord {
        try XCTUnwrap(try Catalog(path: dir.file("catalog.db")).snapshots(job: "cloud-daily").last)
    }

    func testEncryptedMultipartCycleThroughS3() throws {
        let first = try run("run", "--config", config, "--now", "2026-11-29T22:05:00+08:00")
        XCTAssertEqual(first.status, 0, first.stdout + first.stderr)
        let cloud = try cloudSnapshot()
        XCTAssertTrue(cloud.encrypted)
        XCTAssertTrue(cloud.objectKey.hasSuffix(".db.gz.enc"), cloud.objectKey)
        XCTAssertGreaterThan(cloud.storedBytes, 5 << 20, "large enough to need a multipart upload with 5 MiB parts")
        XCTAssertTrue(cloud.targetURL.hasPrefix("s3://\(bucket!)/prod"))

        // At rest it is ciphertext, not gzip.
        let raw = try moto.target(bucket: bucket, prefix: "prod")
        var head = Data()
        try runAsync { try await raw.read(key: cloud.objectKey) { if head.count < 16 { head.append(contentsOf: $0.prefix(16)) } } }
        XCTAssertEqual(String(decoding: head.prefix(6), as: UTF8.self), "BOSENC")

        let verify = try run("verify", "--latest", "2", "--config", config, "--json")
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)
        let restored = dir.file("restored.db")
        let restore = try run("restore", "--snapshot", cloud.id, "--into", restored, "--config", config)
        XCTAssertEqual(restore.status, 0, restore.stderr)
        XCTAssertEqual(try SHA256Stream.hex(ofFile: restored), cloud.databaseSHA256)

        // Nothing secret in the catalog either.
        let catalogBytes = try Data(contentsOf: URL(fileURLWithPath: dir.file("catalog.db")))
        XCTAssertNil(catalogBytes.range(of: Data(MotoServer.credentials.secretAccessKey.utf8)))

        // The wrong key: exit 4, "wrong key", never a crash.
        XCTAssertEqual(try run("key", "generate", dir.file("other.key")).status, 0)
        try writePolicy(bucket: bucket, key: "other.key")
        let wrong = try run("verify", "--snapshot", cloud.id, "--config", config)
        XCTAssertEqual(wrong.status, 4, wrong.stdout + wrong.stderr)
        XCTAssertTrue(wrong.stdout.contains("wrong key"), wrong.stdout)
    }

    func testPlainMultipartCycleThroughS3IsGzipAtRest() throws {
        try writePolicy(bucket: bucket, key: nil)
        let first = try run("run", "--config", config, "--now", "2026-11-29T22:05:00+08:00")
        XCTAssertEqual(first.status, 0, first.stdout + first.stderr)
        let cloud = try cloudSnapshot()
        XCTAssertFalse(cloud.encrypted)
        XCTAssertTrue(cloud.objectKey.hasSuffix(".db.gz"), cloud.objectKey)
        XCTAssertGreaterThan(cloud.storedBytes, 5 << 20)
        let raw = try moto.target(bucket: bucket, prefix: "prod")
        var head = Data()
        try runAsync { try await raw.read(key: cloud.objectKey) { if head.count < 2 { head.append(contentsOf: $0.prefix(2)) } } }
        XCTAssertEqual(Array(head), [0x1f, 0x8b], "plain gzip at rest")
        XCTAssertEqual(try run("verify", "--snapshot", cloud.id, "--config", config).status, 0)
        let restored = dir.file("restored.db")
        XCTAssertEqual(try run("restore", "--snapshot", cloud.id, "--into", restored, "--config", config).status, 0)
        XCTAssertEqual(try SHA256Stream.hex(ofFile: restored), cloud.databaseSHA256)
    }

    func testFailedCloudJobKeepsLocalCopyAndIsRetriedByTheNextRun() throws {
        try writePolicy(bucket: "no-such-bucket-\(UUID().uuidString.prefix(8).lowercased())")
        let failed = try run("run", "--config", config, "--now", "2026-11-29T22:05:00+08:00")
        XCTAssertEqual(failed.status, 1)
        XCTAssertTrue(failed.stdout.contains("cloud-daily: ") && failed.stdout.contains("FAILED"), failed.stdout)
        let catalog = try Catalog(path: dir.file("catalog.db"))
        XCTAssertEqual(try catalog.snapshots().map(\.job), ["local-weekly"], "the local copy is untouched")
        XCTAssertEqual(try catalog.runs(job: "cloud-daily").first?.status, .failed)

        try writePolicy(bucket: bucket)
        let retried = try run("run", "--config", config, "--now", "2026-11-29T22:35:00+08:00")
        XCTAssertEqual(retried.status, 0, retried.stdout + retried.stderr)
        XCTAssertEqual(try catalog.snapshots().map(\.job).sorted(), ["cloud-daily", "local-weekly"])
    }

    func testLostCatalogIsRebuiltFromTheTargets() throws {
        XCTAssertEqual(try run("run", "--config", config, "--now", "2026-11-29T22:05:00+08:00").status, 0)
        let before = try Catalog(path: dir.file("catalog.db")).snapshots()
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: dir.file("catalog.db" + suffix)) }
        for target in ["nas", "cloud"] {
            let rebuilt = try run("catalog", "rebuild", "--target", target, "--config", config, "--json")
            XCTAssertEqual(rebuilt.status, 0, rebuilt.stderr)
            XCTAssertEqual((try jsonObject(rebuilt.stdout)["added"] as? [String])?.count, 1)
        }
        let after = try Catalog(path: dir.file("catalog.db")).snapshots()
        XCTAssertEqual(after, before)
        XCTAssertEqual(try run("verify", "--latest", "2", "--config", config).status, 0)
        let again = try run("catalog", "rebuild", "--target", "cloud", "--config", config, "--json")
        XCTAssertEqual(try jsonObject(again.stdout)["already_known"] as? Int, 1)
    }

    /// SIGKILL at random moments while snapshots stream to S3 (multipart):
    /// nothing partial is cataloged, the next run aborts the orphaned upload
    /// and completes the job, and every cataloged snapshot restores.
    func testKillsDuringUploadLeaveNoPartsAndNothingPartial() throws {
        try writePolicy(bucket: bucket, key: nil)
        var rng = SeededRandom(seed: 7)
        var hour = ISO8601.parse("2026-11-29T22:05:00+08:00")!
        let kills = 8
        var lost = 0, orphaned = 0
        for _ in 0..<kills {
            hour = hour.addingTimeInterval(86_400)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Fixtures.binary)
            p.arguments = ["run", "--config", config, "--now", ISO8601.string(hour)]
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            usleep(UInt32.random(in: 100_000...1_500_000, using: &rng))   // the fault: a kill at a random moment
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            for snapshot in try Catalog(path: dir.file("catalog.db")).snapshots(job: "cloud-daily") {
                let head = try runAsync { try await self.moto.target(bucket: self.bucket, prefix: "prod").head(key: snapshot.objectKey) }
                if head?.size != snapshot.storedBytes { lost += 1 }
            }
            let next = try run("run", "--config", config, "--now", ISO8601.string(hour.addingTimeInterval(600)))
            XCTAssertEqual(next.status, 0, next.stdout + next.stderr)
            let orphans = try runAsync { try await self.moto.target(bucket: self.bucket, prefix: "prod").listMultipartUploads(fullPrefix: "prod/") }
            orphaned += orphans.count
        }
        let verify = try run("verify", "--latest", "4", "--config", config)
        XCTAssertEqual(verify.status, 0, verify.stdout)
        print("crash (S3 upload): \(kills) kills, \(lost) cataloged snapshots not whole, \(orphaned) multipart uploads left after the next run")
        XCTAssertEqual(lost, 0, "a cataloged snapshot is whole on S3")
        XCTAssertEqual(orphaned, 0, "the next run aborts the killed run's multipart upload")
    }
}
