@testable import BOSBackup
import Foundation
import XCTest

/// The double-backup policy end to end with a real S3-compatible server
/// (moto on 127.0.0.1): encrypted multipart upload, list, verify, restore,
/// wrong key, a failed cloud job retried, a catalog rebuilt from targets, and
/// the S3 server killed mid-upload.
final class CloudCLITests: XCTestCase {
    var dir: TempDir!
    var moto: MotoServer!
    /// Servers of one test alone (`MotoServer.startPrivate`), killed after it.
    var privateServers: [MotoServer] = []
    var bucket: String!
    var config: String { dir.file("bos.yml") }
    var environment: [String: String] { MotoServer.environment }

    override func setUpWithError() throws {
        dir = TempDir()
        moto = try MotoServer.shared()
        bucket = try runAsync { try await self.moto.makeBucket() }
        try Fixtures.sampleDatabase(at: dir.file("live.db"), orders: 30_000)
        XCTAssertEqual(try bosbackup("key", "generate", dir.file("cloud.key")).status, 0)
        XCTAssertEqual(fileMode(dir.file("cloud.key")), 0o600)
        try writePolicy(bucket: bucket)
    }

    override func tearDownWithError() throws {
        for server in privateServers { try server.kill() }
    }

    func writePolicy(bucket: String, key: String? = "cloud.key", port: Int? = nil) throws {
        try """
            timezone: Asia/Shanghai
            source: { database: live.db }
            catalog: catalog.db
            targets:
              nas:   { url: nas }
              cloud: { url: "s3://\(bucket)/prod?endpoint=http://127.0.0.1:\(port ?? moto.port)&part_size=5MiB"\(key.map { ", encryption_key_file: \($0)" } ?? "") }
            jobs:
              local-weekly: { target: nas,   cron: "0 0 * * 0" }
              cloud-daily:  { target: cloud, cron: "0 22 * * *" }
            """.write(toFile: config, atomically: true, encoding: .utf8)
    }

    func run(_ arguments: String...) throws -> ProcessResult {
        let result = try bosbackup(arguments, environment: environment)
        assertNoSecrets(result, arguments)
        return result
    }

    func assertNoSecrets(_ result: ProcessResult, _ arguments: [String], line: UInt = #line) {
        for secret in [MotoServer.credentials.secretAccessKey, MotoServer.credentials.sessionToken!] {
            XCTAssertFalse(result.stdout.contains(secret) || result.stderr.contains(secret), "a secret was printed by \(arguments)",
                           line: line)
        }
    }

    func cloudSnapshot() throws -> SnapshotRecord {
        try XCTUnwrap(try Catalog(path: dir.file("catalog.db")).snapshots(job: "cloud-daily").last)
    }

    /// The cloud target's URL spelled otherwise (scheme case, trailing slash,
    /// parameters swapped) is still the encrypted cloud target.
    func testAnotherSpellingOfTheCloudURLIsStillEncrypted() throws {
        let spelled = "S3://\(bucket!)/prod/?part_size=5MiB&endpoint=http://127.0.0.1:\(moto.port)/"
        let result = try run("backup", "--config", config, "--target", spelled, "--json")
        XCTAssertEqual(result.status, 0, result.stderr)
        let record = try jsonObject(result.stdout)
        XCTAssertEqual(record["target"] as? String, "cloud", "\(record)")
        XCTAssertEqual(record["encrypted"] as? Bool, true, "\(record)")
        let raw = try moto.target(bucket: bucket, prefix: "prod")
        let objects = try runAsync { try await raw.list(prefix: "") }.map(\.key).filter { $0.contains(".db.gz") }
        XCTAssertEqual(objects.count, 1, "\(objects)")
        XCTAssertTrue(objects.allSatisfy { $0.hasSuffix(".db.gz.enc") }, "\(objects)")
    }

    /// `check` tries everything the policy needs; a missing bucket or a key
    /// file others can read is one FAIL line and exit 1.
    func testCheckTriesEveryPartOfThePolicy() throws {
        var result = try run("check", "--config", config)
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        let lines = result.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 6, result.stdout)   // source, catalog folder, scratch, nas, cloud, cloud's credentials
        XCTAssertTrue(result.stdout.contains("credentials cloud: backup") && result.stdout.contains("environment AWS_ACCESS_KEY_ID"), result.stdout)
        XCTAssertTrue(lines.allSatisfy { $0.hasPrefix("ok") }, result.stdout)
        XCTAssertTrue(result.stdout.contains("WAL"), result.stdout)
        XCTAssertTrue(result.stdout.contains("target cloud: reachable, probe written, read back and deleted"), result.stdout)
        let leftovers = try runAsync { try await self.moto.target(bucket: self.bucket, prefix: "prod").list(prefix: "") }
        XCTAssertEqual(leftovers.map(\.key), [], "the probe was deleted")

        try writePolicy(bucket: "no-such-bucket-\(UInt32.random(in: 0...UInt32.max))")
        chmod(dir.file("cloud.key"), 0o644)
        result = try run("check", "--config", config)
        XCTAssertEqual(result.status, 1, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("FAIL  target cloud"), result.stdout)
        chmod(dir.file("cloud.key"), 0o600)
        result = try run("check", "--config", config)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stdout.contains("FAIL  target cloud") && result.stdout.contains("NoSuchBucket"), result.stdout)

        // backup finds it before it compresses anything: the access check is what fails.
        let backup = try run("backup", "--config", config, "--job", "cloud-daily")
        XCTAssertEqual(backup.status, 1, backup.stderr)
        XCTAssertTrue(backup.stderr.contains("access check") && backup.stderr.contains("NoSuchBucket"), backup.stderr)
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

        // The wrong key: a configuration error (exit 2) that says "key", and no damage verdict
        // on the healthy snapshot (it once was exit 4, recorded FAILED, status red for a week).
        let verdictBefore = try Catalog(path: dir.file("catalog.db")).lastVerification(of: cloud.id)
        XCTAssertEqual(try run("key", "generate", dir.file("other.key")).status, 0)
        try writePolicy(bucket: bucket, key: "other.key")
        let wrong = try run("verify", "--snapshot", cloud.id, "--config", config)
        XCTAssertEqual(wrong.status, 2, wrong.stdout + wrong.stderr)
        XCTAssertTrue(wrong.stderr.contains("wrong key"), wrong.stderr)
        XCTAssertEqual(wrong.stderr.split(separator: "\n").count, 1, wrong.stderr)
        XCTAssertEqual(try Catalog(path: dir.file("catalog.db")).lastVerification(of: cloud.id), verdictBefore, "nothing recorded")
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
    /// `S3_CRASH_KILLS` sets the number of kills (8 in make test, 40 in make torture).
    func testKillsDuringUploadLeaveNoPartsAndNothingPartial() throws {
        try writePolicy(bucket: bucket, key: nil)
        var rng = SeededRandom(seed: 7)
        var hour = ISO8601.parse("2026-11-29T22:05:00+08:00")!
        let kills = Int(ProcessInfo.processInfo.environment["S3_CRASH_KILLS"] ?? "8") ?? 8
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

    /// Issue #7, resource faults: the S3 server *process* SIGKILLed while the CLI uploads a
    /// multipart snapshot. bosbackup gives up in bounded time with exit 1 and one line naming
    /// the S3 failure; nothing is cataloged, nothing temporary is left, the earlier snapshots
    /// verify. A fresh server on the same port is empty (moto keeps everything in memory): the
    /// earlier cloud snapshot is reported missing (exit 4), and the next run stores the cloud
    /// copy again.
    func testS3ServerKilledMidUploadFailsCleanlyAndTheNextRunRecovers() throws {
        let server = try MotoServer.startPrivate()
        privateServers.append(server)
        let cloudBucket = try runAsync { try await server.makeBucket() }
        try writePolicy(bucket: cloudBucket, port: server.port)
        // 40 MiB that does not compress: about nine 5 MiB parts, so when the first part is on the
        // server, most of the upload is still to come.
        try Database(path: dir.file("live.db")).execute("""
            CREATE TABLE attachments(id INTEGER PRIMARY KEY, body BLOB);
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)
            INSERT INTO attachments(body) SELECT randomblob(1048576) FROM n;
            """)
        let first = try run("run", "--config", config, "--now", "2026-11-29T22:05:00+08:00")
        XCTAssertEqual(first.status, 0, first.stdout + first.stderr)
        let catalog = try Catalog(path: dir.file("catalog.db"))
        let before = try catalog.snapshots()
        XCTAssertEqual(before.map(\.job).sorted(), ["cloud-daily", "local-weekly"])
        let earlierCloud = try cloudSnapshot()
        let earlierLocal = try XCTUnwrap(before.first { $0.job == "local-weekly" })

        // Start the next cloud snapshot; once the server holds a part of its upload, kill the server.
        let arguments = ["backup", "--job", "cloud-daily", "--config", config, "--now", "2026-11-30T22:05:00+08:00"]
        let upload = try ChildProcess(Fixtures.binary, arguments, environment: environment)
        let watcher = try server.target(bucket: cloudBucket, prefix: "prod")
        let deadline = Date().addingTimeInterval(120)
        var parts = 0
        while parts == 0, upload.isRunning, Date() < deadline {
            parts = try runAsync { try await Self.partsInProgress(on: watcher) }
            if parts == 0 { usleep(20_000) }
        }
        guard parts > 0 else {
            let ended = try upload.wait(timeout: 60)
            return XCTFail("no part of the upload was seen on the server; bosbackup exit \(ended.status): \(ended.stderr)")
        }
        try server.kill()
        let killedAt = Date()
        let failed = try upload.wait(timeout: 180)
        let seconds = Date().timeIntervalSince(killedAt)

        print("bosbackup, S3 server killed: " + failed.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
        assertNoSecrets(failed, arguments)
        XCTAssertEqual(failed.status, 1, "an operation failure: " + failed.stdout + failed.stderr)
        XCTAssertLessThan(seconds, 60, "gives up in bounded time once the server is gone")
        XCTAssertEqual(failed.stderr.split(separator: "\n").count, 1, failed.stderr)
        XCTAssertTrue(failed.stderr.contains("S3 ") && failed.stderr.contains("s3://\(cloudBucket)/prod/\(BackupRequest.machineHostname)/bos/snapshots/")
                      && failed.stderr.contains("/cloud-daily-"), failed.stderr)
        let after = try catalog.snapshots()
        XCTAssertEqual(after, before, "nothing new cataloged")
        XCTAssertEqual(try FileTarget(url: "file://" + dir.file("nas")).staleTemporaryFiles(), [], "no temporary file on the target")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.file("scratch")), [], "nothing left in scratch")
        let local = try run("verify", "--snapshot", earlierLocal.id, "--config", config)
        XCTAssertEqual(local.status, 0, "the earlier local snapshot is intact: " + local.stdout + local.stderr)
        let intact = after == before && local.status == 0

        // A fresh, empty server on the same port: no bucket, then the operator creates it again.
        let restarted = try MotoServer.startPrivate(port: server.port)
        privateServers.append(restarted)
        let noBucket = try run("verify", "--snapshot", earlierCloud.id, "--config", config)
        XCTAssertNotEqual(noBucket.status, 0, noBucket.stdout)
        XCTAssertTrue(noBucket.stderr.contains("the bucket does not exist"), noBucket.stderr)
        _ = try runAsync { try await restarted.makeBucket(cloudBucket) }
        let gone = try run("verify", "--snapshot", earlierCloud.id, "--config", config)
        XCTAssertEqual(gone.status, 4, "a snapshot no longer on the server is reported, not passed: " + gone.stdout + gone.stderr)
        XCTAssertTrue(gone.stdout.contains("not found"), gone.stdout)
        let next = try run("run", "--config", config, "--now", "2026-11-30T22:35:00+08:00")
        XCTAssertEqual(next.status, 0, next.stdout + next.stderr)
        let again = try cloudSnapshot()
        XCTAssertNotEqual(again.id, earlierCloud.id)
        let verified = try run("verify", "--snapshot", again.id, "--config", config)
        XCTAssertEqual(verified.status, 0, verified.stdout + verified.stderr)
        print("resource (S3 server killed mid-upload): exit \(failed.status) after \(String(format: "%.1f", seconds)) s, "
            + "\(after.count - before.count) cataloged, previous snapshots \(intact ? "intact" : "DAMAGED")")
    }

    /// Parts the server holds of the multipart uploads in progress under `target`'s prefix
    /// (ListMultipartUploads, then ListParts of each).
    static func partsInProgress(on target: S3Target) async throws -> Int {
        var parts = 0
        for upload in try await target.multipartUploads() {
            let url = target.location.objectURL(key: upload.key, query: [URLQueryItem(name: "uploadId", value: upload.uploadID)])
            let listing = try await target.send(.GET, url: url)
            parts += String(decoding: listing.body, as: UTF8.self).components(separatedBy: "<Part>").count - 1
        }
        return parts
    }
}
