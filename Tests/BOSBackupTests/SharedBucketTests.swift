@testable import BOSBackup
import Foundation
import XCTest

/// Two hosts, one moto bucket (issue #14 item 4 and its "done when"): each
/// writes under its own `<host>/`, cleans up only its own killed uploads,
/// rebuilds only its own catalog rows, and builds, damages, prunes and
/// restores its own chains without touching the other's.
final class SharedBucketTests: XCTestCase {
    var dir: TempDir!
    var moto: MotoServer!
    var bucket: String!
    var environment: [String: String] { MotoServer.environment }

    override func setUpWithError() throws {
        dir = TempDir()
        moto = try MotoServer.shared()
        bucket = try runAsync { try await self.moto.makeBucket() }
        XCTAssertEqual(try bosbackup("key", "generate", dir.file("b.key")).status, 0)
        for (host, mib, key) in [("store-a", 40, nil as String?), ("store-b", 12, dir.file("b.key"))] {
            let home = dir.file(host)
            try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
            // Pages that do not compress: several 5 MiB parts, so a killed upload is caught mid-way.
            let db = try Database(path: home + "/bos.db", mode: .readWriteCreate)
            try db.execute("PRAGMA journal_mode = WAL")
            try Fixtures.addAttachments(to: db, count: mib * 4)
            try """
                timezone: UTC
                host: \(host)
                databases: { bos: { path: \(home)/bos.db } }
                catalog: \(home)/catalog.db
                scratch: \(home)/scratch
                targets:
                  cloud: { url: "s3://\(bucket!)/shared?endpoint=http://127.0.0.1:\(moto.port)&part_size=5MiB"\(key.map { ", encryption_key_file: \($0)" } ?? "") }
                jobs:
                  cloud-daily: { target: cloud, cron: "0 22 * * *", incremental: { full_every: 7 }, retention: { keep_last: 1 } }
                """.write(toFile: home + "/bos.yml", atomically: true, encoding: .utf8)
        }
    }

    func config(_ host: String) -> String { dir.file(host + "/bos.yml") }

    func run(_ host: String, _ arguments: String...) throws -> ProcessResult {
        try bosbackup(arguments + ["--config", config(host)], environment: environment)
    }

    func uploads(under prefix: String) throws -> [String] {
        let watcher = try moto.target(bucket: bucket)
        return try runAsync { try await watcher.multipartUploads() }.filter { $0.key.hasPrefix(prefix) }.map(\.uploadID)
    }

    /// Changes a tenth of the rows of a host's database (one business day's worth of pages).
    func businessDay(_ host: String) throws {
        try Database(path: dir.file(host + "/bos.db")).execute("UPDATE attachments SET body = randomblob(262144) WHERE id % 10 = 0")
    }

    func testAKilledHostsUploadIsLeftToItOnlyAndEachHostKeepsItsOwnChains() throws {
        // Both back up at the same time; store-a is killed once its upload is on the server.
        // On day 1 of the test's calendar: the days after it are given with --now, and a first
        // backup on the real clock (after them once the real date passed 2026-12-02) left the
        // later runs older than their parent, so they started new chains (failed from 2026-12-06 on).
        let day1 = "2026-12-01T22:05:00Z"
        let a = try ChildProcess(Fixtures.binary, ["backup", "--job", "cloud-daily", "--now", day1, "--config", config("store-a")], environment: environment)
        let b = try ChildProcess(Fixtures.binary, ["backup", "--job", "cloud-daily", "--now", day1, "--config", config("store-b")], environment: environment)
        let deadline = Date().addingTimeInterval(120)
        while try uploads(under: "shared/store-a/").isEmpty, a.isRunning, Date() < deadline { usleep(10_000) }
        XCTAssertEqual(kill(a.pid, SIGKILL), 0, "store-a was still uploading")
        _ = try a.wait(timeout: 60)
        let bDone = try b.wait(timeout: 180)
        XCTAssertEqual(bDone.status, 0, bDone.stderr)
        let inFlight = try uploads(under: "shared/store-a/")
        XCTAssertEqual(inFlight.count, 1, "store-a's killed upload is still there")

        // store-b's next run cleans up after crashes: its own only.
        try businessDay("store-b")
        let bRun = try run("store-b", "run", "--now", "2026-12-02T22:05:00Z")
        XCTAssertEqual(bRun.status, 0, bRun.stdout + bRun.stderr)
        XCTAssertEqual(try uploads(under: "shared/store-a/"), inFlight, "another host's upload in flight is not store-b's to abort")

        // store-a's own next run removes it, and backs up.
        let aRun = try run("store-a", "run", "--now", "2026-12-02T22:05:00Z")
        XCTAssertEqual(aRun.status, 0, aRun.stdout + aRun.stderr)
        XCTAssertEqual(try uploads(under: "shared/store-a/"), [], "store-a aborted its killed run's upload")

        // Day 3 on both: each chain grows on its own parent.
        for host in ["store-a", "store-b"] {
            try businessDay(host)
            XCTAssertEqual(try run(host, "run", "--now", "2026-12-03T22:05:00Z").status, 0)
        }
        let bCatalog = try Catalog(readingAt: dir.file("store-b/catalog.db"))
        let bChain = try bCatalog.chain(of: try XCTUnwrap(bCatalog.snapshots().last))
        XCTAssertEqual(bChain.map(\.layout.kind), [.incremental, .incremental, .full])
        XCTAssertTrue(bChain.allSatisfy { $0.objectKey.hasPrefix("shared/") == false && $0.objectKey.hasPrefix("store-b/bos/snapshots/") }, "\(bChain.map(\.objectKey))")
        XCTAssertTrue(bChain.allSatisfy(\.encrypted))
        // keep_last: 1 kept the whole chain the newest needs, and says why.
        let dryRun = try run("store-b", "prune", "--dry-run")
        XCTAssertTrue(dryRun.stdout.contains("parent of \(bChain[0].shortID)"), dryRun.stdout)
        XCTAssertEqual(try bCatalog.snapshots().count, 3)

        // Each chain restores on its own host, from the shared bucket.
        for host in ["store-a", "store-b"] {
            let into = dir.file(host + "/restored.db")
            let catalog = try Catalog(readingAt: dir.file(host + "/catalog.db"))
            let newest = try XCTUnwrap(catalog.snapshots().last)
            XCTAssertEqual(newest.layout.kind, .incremental)
            let restore = try run(host, "restore", "--snapshot", newest.id, "--into", into)
            XCTAssertEqual(restore.status, 0, restore.stderr)
            XCTAssertEqual(try SHA256Stream.hex(ofFile: into), newest.databaseSHA256)
        }

        // A rebuilt catalog adopts only its own host's snapshots, unless --all-hosts.
        try FileManager.default.moveItem(atPath: dir.file("store-b/catalog.db"), toPath: dir.file("store-b/catalog.old"))
        let rebuild = try run("store-b", "catalog", "rebuild", "--target", "cloud", "--json")
        XCTAssertEqual(rebuild.status, 0, rebuild.stderr)
        let rebuilt = try jsonObject(rebuild.stdout)
        XCTAssertEqual((rebuilt["added"] as? [String])?.count, 3)
        XCTAssertEqual(rebuilt["other_hosts"] as? Int, 2, "store-a's two manifests (day 2's full, day 3's incremental) are left out")
        let everything = try bosbackup(["catalog", "rebuild", "--target", "cloud", "--all-hosts", "--json",
                                        "--config", config("store-b"), "--catalog", dir.file("all.db")], environment: environment)
        XCTAssertEqual((try jsonObject(everything.stdout)["added"] as? [String])?.count, 5, everything.stderr)
    }

    func testADamagedLinkOnTheBucketFailsOnlyTheChainsThatUseIt() throws {
        for (day, host) in [(1, "store-a"), (1, "store-b"), (2, "store-a"), (2, "store-b")] {
            if day > 1 { try businessDay(host) }
            XCTAssertEqual(try run(host, "backup", "--job", "cloud-daily").status, 0)
        }
        // Flip a byte in the middle of store-b's full on the bucket.
        let catalog = try Catalog(readingAt: dir.file("store-b/catalog.db"))
        let root = try XCTUnwrap(catalog.snapshots().first)
        let raw = try moto.target(bucket: bucket, prefix: "shared")
        var bytes = [UInt8](try runAsync { try await raw.get(key: root.objectKey) })
        bytes[bytes.count / 2] ^= 0x01
        try runAsync { try await raw.put(key: root.objectKey, data: Data(bytes)) }

        let b = try run("store-b", "verify", "--latest", "2")
        XCTAssertEqual(b.status, 4, b.stdout + b.stderr)
        let failed = b.stdout.split(separator: "\n").filter { $0.hasPrefix("FAILED") }
        XCTAssertEqual(failed.count, 2, "the full and the incremental that depends on it: " + b.stdout)
        XCTAssertTrue(b.stdout.contains("link \(root.shortID)"), "the incremental's failure names the damaged link: " + b.stdout)
        let a = try run("store-a", "verify", "--latest", "2")
        XCTAssertEqual(a.status, 0, "store-a's chain is untouched: " + a.stdout + a.stderr)
    }
}
