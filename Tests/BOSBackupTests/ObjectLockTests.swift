@testable import BOSBackup
import Foundation
import XCTest

/// Immutable cloud copies (issue #17) on a real moto server, through a logging proxy that
/// records every request's headers. moto accepts what AWS refuses (a shortened COMPLIANCE
/// lock, a wrong Content-MD5, a multipart upload whose lock it silently drops), so these
/// tests prove what bosbackup sends and how it reacts to a refusal, not what AWS enforces.
final class ObjectLockTests: XCTestCase {
    var dir: TempDir!
    var moto: MotoServer!
    var proxy: FaultProxy!
    var config: String { dir.file("bos.yml") }
    static let lockDays = 3
    var environment: [String: String] { MotoServer.environment }

    override func setUpWithError() throws {
        dir = TempDir()
        moto = try MotoServer.shared()
        proxy = try FaultProxy(upstreamPort: moto.port)
        // Big enough that its snapshot goes up as a multipart upload of 5 MiB parts.
        try Fixtures.sampleDatabase(at: dir.file("live.db"), orders: 30_000)
    }

    override func tearDown() { proxy.stop() }

    func makeBucket(objectLock: Bool = true) throws -> String {
        try runAsync { try await self.moto.makeBucket(objectLock: objectLock) }
    }

    func writePolicy(bucket: String, lock: String? = "{ mode: COMPLIANCE, days: \(ObjectLockTests.lockDays) }",
                     credentials: String = "") throws {
        try """
            timezone: UTC
            source: { database: live.db }
            catalog: catalog.db
            targets:
              cloud: { url: "s3://\(bucket)/prod?endpoint=http://127.0.0.1:\(proxy.port)&part_size=5MiB"\(lock.map { ", object_lock: \($0)" } ?? "")\(credentials) }
            jobs:
              cloud-daily: { target: cloud, cron: "0 22 * * *", retention: { keep_last: 1 } }
            """.write(toFile: config, atomically: true, encoding: .utf8)
    }

    func run(_ arguments: String..., environment: [String: String]? = nil) throws -> ProcessResult {
        let result = try bosbackup(arguments, environment: environment ?? self.environment)
        for secret in [MotoServer.credentials.secretAccessKey, MotoServer.credentials.sessionToken!, Self.writerSecret, Self.prunerSecret] {
            XCTAssertFalse(result.stdout.contains(secret) || result.stderr.contains(secret), "a secret was printed by \(arguments)")
        }
        return result
    }

    func backup(day: Int, catalog: String? = nil) throws {
        let result = try run("backup", "--config", config, "--job", "cloud-daily", "--now", "2026-12-0\(day)T22:00:00Z")
        XCTAssertEqual(result.status, 0, result.stderr)
    }

    /// The bucket as the tests see it: moto's own credentials, no lock of its own.
    func raw(_ bucket: String) throws -> S3Target { try moto.target(bucket: bucket, prefix: "prod") }

    func storedVersions(_ bucket: String) throws -> [ObjectVersion] {
        try runAsync { try await self.raw(bucket).versions(prefix: "") }.filter { !$0.isDeleteMarker }
    }

    // MARK: - Locked on the way up

    /// Every object of a snapshot, the multipart one included, is locked COMPLIANCE until at
    /// least now + N days; the headers went on every PUT and on the multipart create, with
    /// Content-MD5 on every PUT and part; where moto dropped the lock (multipart), the
    /// HEAD after commit saw it and PutObjectRetention set it. No version can be deleted,
    /// and prune reports the snapshot it may not delete, keeping its catalog row as it was.
    func testEveryObjectIsLockedAndPruneReportsWhatItCannotDelete() throws {
        let bucket = try makeBucket()
        try writePolicy(bucket: bucket)
        let started = Date()
        try backup(day: 1)
        let minimum = started.addingTimeInterval(TimeInterval(Self.lockDays) * 86_400 - 2)

        let snapshot = try XCTUnwrap(try Catalog(path: dir.file("catalog.db")).snapshots(job: "cloud-daily").last)
        XCTAssertGreaterThan(snapshot.storedBytes, 5 << 20, "the snapshot must be a multipart upload")
        let versions = try storedVersions(bucket)
        XCTAssertEqual(Set(versions.map(\.key)), Set([snapshot.manifestKey, snapshot.objectKey]))
        let target = try raw(bucket)
        for version in versions {
            let lock = try runAsync { try await target.retention(key: version.key, versionID: version.versionID) }
            XCTAssertEqual(lock?.mode, .compliance, version.key)
            XCTAssertGreaterThanOrEqual(lock?.retainUntil ?? .distantPast, minimum, version.key)
        }

        let requests = proxy.requests()
        let creates = requests.filter { $0.method == "POST" && $0.query.contains("uploads") }
        let parts = requests.filter(\.isUploadPart)
        let puts = requests.filter { $0.method == "PUT" && !$0.isUploadPart && !$0.query.contains("retention") }
        XCTAssertEqual(creates.count, 1)
        XCTAssertGreaterThanOrEqual(parts.count, 2)
        XCTAssertFalse(puts.isEmpty)
        for request in creates + puts {
            XCTAssertEqual(request.headers["x-amz-object-lock-mode"], "COMPLIANCE", request.target)
            let until = request.headers["x-amz-object-lock-retain-until-date"].flatMap { ISO8601.parse($0) }
            XCTAssertGreaterThanOrEqual(until ?? .distantPast, minimum, request.target)
            XCTAssertTrue(request.headers["authorization"]?.contains("x-amz-object-lock-mode") == true, "lock headers are signed")
        }
        for request in puts + parts { XCTAssertNotNil(request.headers["content-md5"], request.target) }
        let retentions = requests.filter { $0.method == "PUT" && $0.query.contains("retention") }
        XCTAssertEqual(retentions.map(\.path).filter { $0.hasSuffix(snapshot.objectKey) }.count, 1,
                       "moto drops the lock of a multipart upload: HEAD must catch it and PutObjectRetention set it")
        XCTAssertTrue(retentions.allSatisfy { $0.headers["content-md5"] != nil })

        for version in versions {
            XCTAssertThrowsError(try runAsync { try await target.deleteVersion(key: version.key, versionID: version.versionID) }) {
                XCTAssertTrue("\($0)".contains("AccessDenied"), "\($0)")
            }
        }

        try backup(day: 2)
        let prune = try run("prune", "--config", config, "--json")
        XCTAssertEqual(prune.status, 0, prune.stderr)
        let jobs = try XCTUnwrap(try jsonObject(prune.stdout)["jobs"] as? [[String: Any]])
        let entries = try XCTUnwrap(jobs.first?["snapshots"] as? [[String: Any]])
        let first = try XCTUnwrap(entries.first { $0["id"] as? String == snapshot.id })
        XCTAssertEqual(first["keep"] as? Bool, false)
        let lockedUntil = try XCTUnwrap((first["locked_until"] as? String).flatMap { ISO8601.parse($0) }, "\(first)")
        XCTAssertGreaterThanOrEqual(lockedUntil, minimum)
        let catalog = try Catalog(path: dir.file("catalog.db"))
        XCTAssertEqual(try catalog.snapshots(job: "cloud-daily").count, 2, "a locked snapshot stays cataloged")
        XCTAssertTrue(try catalog.pendingDeletions().isEmpty, "and is not marked for a deletion that cannot happen")
        XCTAssertEqual(try storedVersions(bucket).filter { versions.contains($0) }.count, versions.count)
        let text = try run("prune", "--config", config)
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("1 still locked") && text.stdout.contains("locked until"), text.stdout)
    }

    /// A kept object's lock is pushed out to now + N days; one with enough left is not
    /// touched again. An unlocked object on a versioned bucket goes with all its versions.
    func testKeptLocksAreExtendedAndUnlockedVersionsDeletedForGood() throws {
        let bucket = try makeBucket()
        let short = try moto.target(bucket: bucket, prefix: "prod", options: .init(objectLock: ObjectLock(mode: .governance, days: 1)))
        let long = try moto.target(bucket: bucket, prefix: "prod", options: .init(objectLock: ObjectLock(mode: .governance, days: 5)))
        try runAsync { try await short.put(key: "h/kept", data: Data("kept".utf8)) }
        let repository = Repository(target: long)
        XCTAssertEqual(try runAsync { try await repository.extendLocks(keys: ["h/kept"], now: Date()) }, 1)
        let lock = try runAsync { try await long.retention(key: "h/kept", versionID: nil) }
        XCTAssertGreaterThanOrEqual(lock?.retainUntil ?? .distantPast, Date().addingTimeInterval(5 * 86_400 - 5))
        XCTAssertEqual(try runAsync { try await repository.extendLocks(keys: ["h/kept"], now: Date()) }, 0, "enough lock left: no request")

        let plain = try moto.target(bucket: bucket, prefix: "prod")
        for text in ["one", "two"] { try runAsync { try await plain.put(key: "h/old", data: Data(text.utf8)) } }
        XCTAssertEqual(try storedVersions(bucket).filter { $0.key == "h/old" }.count, 2)
        try runAsync { try await Repository(target: plain).deleteObject(key: "h/old") }
        XCTAssertTrue(try runAsync { try await plain.versions(prefix: "h/old") }.isEmpty, "no version and no marker left")
    }

    // MARK: - The attacker

    /// Whoever holds the writer's credentials deletes every key: only delete markers are
    /// added, the locked versions stay. A new catalog rebuilt from the bucket as it was
    /// (`--as-of`, read from object versions) verifies the three snapshots.
    func testAttackerDeletesEveryKeyAndTheBucketIsStillRestorable() throws {
        let bucket = try makeBucket()
        try writePolicy(bucket: bucket)
        for day in 1...3 { try backup(day: day) }
        let asOf = Date()
        // Versions carry whole seconds: the attack must come in a later second than as_of.
        let nextSecond = asOf.timeIntervalSince1970.rounded(.down) + 1
        while Date().timeIntervalSince1970 < nextSecond { usleep(20_000) }

        let attacker = try raw(bucket)
        let keys = try runAsync { try await attacker.list(prefix: "") }.map(\.key)
        XCTAssertGreaterThanOrEqual(keys.count, 6)
        for key in keys { try runAsync { try await attacker.delete(key: key) } }
        XCTAssertTrue(try runAsync { try await attacker.list(prefix: "") }.isEmpty, "every key is gone")

        let rebuilt = dir.file("rebuilt.db")
        let rebuild = try run("catalog", "rebuild", "--config", config, "--catalog", rebuilt, "--target", "cloud",
                              "--as-of", ISO8601.string(asOf), "--json")
        XCTAssertEqual(rebuild.status, 0, rebuild.stderr)
        XCTAssertEqual((try jsonObject(rebuild.stdout)["added"] as? [String])?.count, 3, rebuild.stdout)
        let verify = try run("verify", "--config", config, "--catalog", rebuilt, "--latest", "3")
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)
        let view = try XCTUnwrap(try Catalog(path: rebuilt).snapshots().first)
        XCTAssertTrue(view.targetURL.contains("as_of="), view.targetURL)
        _ = try run("prune", "--config", config, "--catalog", rebuilt)
        XCTAssertEqual(try storedVersions(bucket).count, keys.count, "nothing is deleted through a view of the past")
        XCTAssertEqual(try Catalog(path: rebuilt).snapshots().count, 3)
    }

    // MARK: - Refusals

    /// A bucket without Object Lock refuses the lock headers; a server that says the bytes do
    /// not match their Content-MD5 refuses a part. Each: exit 1, one line saying why, nothing
    /// left in the bucket (no object, no version, no upload), nothing cataloged.
    func testARefusedLockOrDigestFailsInOneLineAndLeavesNothing() throws {
        try assertBackupRefused(bucket: try makeBucket(objectLock: false), saying: ["InvalidRequest", "Object Lock"])
        proxy.inject(.status(400, code: "BadDigest")) { $0.isUploadPart }
        try assertBackupRefused(bucket: try makeBucket(), saying: ["BadDigest", "Content-MD5"])
    }

    func assertBackupRefused(bucket: String, saying words: [String], line: UInt = #line) throws {
        try writePolicy(bucket: bucket)
        let result = try run("backup", "--config", config, "--job", "cloud-daily")
        XCTAssertEqual(result.status, 1, result.stderr, line: line)
        let message = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertFalse(message.contains("\n"), message, line: line)
        XCTAssertTrue(words.allSatisfy(message.contains), message, line: line)
        try assertNothingLeft(bucket, line: line)
    }

    func assertNothingLeft(_ bucket: String, line: UInt = #line) throws {
        let target = try raw(bucket)
        XCTAssertTrue(try runAsync { try await target.versions(prefix: "") }.isEmpty, line: line)
        XCTAssertTrue(try runAsync { try await target.multipartUploads() }.isEmpty, line: line)
        XCTAssertTrue(try Catalog(path: dir.file("catalog.db")).snapshots().isEmpty, line: line)
    }

    /// Bad lock settings are the policy's mistake: one line naming the key, exit 2.
    func testPolicyRefusesBadObjectLockSettings() throws {
        let cases: [(String, String)] = [
            ("url: \"s3://b/p\", object_lock: { mode: FOREVER, days: 3 }", "must be COMPLIANCE or GOVERNANCE"),
            ("url: \"s3://b/p\", object_lock: { mode: COMPLIANCE, days: 0 }", "must be 1 to 36500"),
            ("url: \"s3://b/p\", object_lock: { mode: COMPLIANCE }", "needs mode and days"),
            ("url: /mnt/nas, object_lock: { mode: GOVERNANCE, days: 3 }", "needs an s3:// target"),
            ("url: /mnt/nas, prune_credentials_file: admin.ini", "needs an s3:// target"),
        ]
        for (target, message) in cases {
            let text = "targets:\n  cloud: { \(target) }\n"
            XCTAssertThrowsError(try PolicyLoader.parse(text, hostname: "h"), target) {
                XCTAssertTrue("\($0)".contains(message) && "\($0)".contains("targets.cloud"), "\($0)")
            }
        }
        let lock = try PolicyLoader.parse("targets:\n  cloud: { url: \"s3://b/p\", object_lock: { mode: governance, days: 7 } }\n", hostname: "h")
        XCTAssertEqual(lock.targets.first?.objectLock, ObjectLock(mode: .governance, days: 7))

        try "targets:\n  cloud: { url: \"s3://b/p\", object_lock: { mode: COMPLIANCE, days: -1 } }\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let result = try run("check", "--config", config)
        XCTAssertEqual(result.status, 2, result.stderr)
        XCTAssertEqual(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count, 1, result.stderr)
    }

    // MARK: - Split credentials

    static let writerKey = "AKIAWRITER0000000001"
    static let prunerKey = "AKIAPRUNER0000000002"
    static let writerSecret = "writer-secret-" + UUID().uuidString
    static let prunerSecret = "pruner-secret-" + UUID().uuidString

    /// WAL segments are locked once, when written: `check` fails when the lock would run out
    /// before the archive lets go of them, and says what to raise.
    func testCheckSaysWhenArchiveSegmentsWouldOutliveTheirLock() throws {
        let bucket = try makeBucket()
        try writePolicy(bucket: bucket)
        for (archive, ok, says) in [("{ targets: { cloud: 10s }, retain: 7d }", false, "object_lock lasts 3d, less than retain + base_every (8d)"),
                                    ("{ targets: { cloud: 10s } }", false, "the archive is kept for ever (no retain)"),
                                    ("{ targets: { cloud: 10s }, retain: 1d, base_every: 1d }", true, "segments locked 3d")] {
            let policy = try String(contentsOfFile: config, encoding: .utf8).components(separatedBy: "\narchive:").first!
            try (policy.trimmingCharacters(in: .newlines) + "\narchive:\n  bos: \(archive)\n")
                .write(toFile: config, atomically: true, encoding: .utf8)
            let check = try run("check", "--config", config)
            let line = try XCTUnwrap(check.stdout.split(separator: "\n").first { $0.contains("archive bos on cloud:") }, check.stdout + check.stderr)
            XCTAssertEqual(line.hasPrefix("ok"), ok, String(line))
            XCTAssertTrue(line.contains(says), String(line))
            if !ok { XCTAssertEqual(check.status, 1, check.stdout) }
        }
    }

    /// `check` names the credentials each command opens the target with (file, profile, key
    /// id with its middle hidden, never a secret). moto enforces no IAM, so which key signed
    /// each request is read from the Authorization header the proxy saw: backups are signed
    /// by the writer's key only, prune's deletions by the prune key only.
    func testSplitCredentialsSignEachCommandWithItsOwnKey() throws {
        let bucket = try makeBucket(objectLock: false)
        for (file, key, secret) in [("writer.ini", Self.writerKey, Self.writerSecret), ("prune.ini", Self.prunerKey, Self.prunerSecret)] {
            try "[default]\naws_access_key_id = \(key)\naws_secret_access_key = \(secret)\n"
                .write(toFile: dir.file(file), atomically: true, encoding: .utf8)
            XCTAssertEqual(chmod(dir.file(file), 0o600), 0)
        }
        try writePolicy(bucket: bucket, lock: nil, credentials: ", credentials_file: writer.ini, prune_credentials_file: prune.ini")
        let bare = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("AWS_") }

        let check = try run("check", "--config", config, environment: bare)
        let line = try XCTUnwrap(check.stdout.split(separator: "\n").first { $0.contains("credentials cloud:") }, check.stdout)
        let (writes, prunes) = try XCTUnwrap(line.range(of: "; run/daemon (retention)").map { (line[..<$0.lowerBound], line[$0.lowerBound...]) }, String(line))
        XCTAssertTrue(writes.contains("backup") && writes.contains("writer.ini") && writes.contains("AKIA…0001"), String(writes))
        XCTAssertTrue(prunes.contains("prune →") && prunes.contains("prune.ini") && prunes.contains("AKIA…0002")
                      && !prunes.contains("writer.ini"), String(prunes))
        XCTAssertFalse(check.stdout.contains(Self.writerKey) || check.stdout.contains(Self.prunerKey), "key ids are shown masked")

        proxy.resetLog()
        for day in 1...2 {
            let result = try run("backup", "--config", config, "--job", "cloud-daily", "--now", "2026-12-0\(day)T22:00:00Z", environment: bare)
            XCTAssertEqual(result.status, 0, result.stderr)
        }
        let backups = proxy.requests()
        XCTAssertFalse(backups.isEmpty)
        XCTAssertTrue(backups.allSatisfy { Self.signer(of: $0) == Self.writerKey }, "\(Set(backups.map(Self.signer)))")

        proxy.resetLog()
        let prune = try run("prune", "--config", config, environment: bare)
        XCTAssertEqual(prune.status, 0, prune.stderr)
        let deletes = proxy.requests().filter { $0.method == "DELETE" }
        XCTAssertGreaterThanOrEqual(deletes.count, 2, "the pruned snapshot's manifest and object")
        XCTAssertTrue(deletes.allSatisfy { Self.signer(of: $0) == Self.prunerKey }, "\(deletes.map(Self.signer))")
        XCTAssertEqual(try Catalog(path: dir.file("catalog.db")).snapshots(job: "cloud-daily").count, 1)
    }

    /// The access key id in `Authorization: AWS4-HMAC-SHA256 Credential=<id>/<scope>, …`.
    static func signer(of request: FaultProxy.Request) -> String? {
        guard let header = request.headers["authorization"], let start = header.range(of: "Credential=") else { return nil }
        return String(header[start.upperBound...].prefix { $0 != "/" })
    }
}
