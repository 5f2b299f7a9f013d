@testable import BOSBackup
import Foundation
import XCTest

/// The real binary, as cron and operators run it: exit codes, one-line
/// errors, JSON shapes.
final class CLITests: XCTestCase {
    var dir: TempDir!
    var live: String { dir.file("live.db") }
    var catalog: String { dir.file("catalog.db") }
    var nas: String { "file://" + dir.file("nas") }

    override func setUpWithError() throws {
        dir = TempDir()
        try Fixtures.sampleDatabase(at: live, orders: 400)
    }

    func backup() throws -> [String: Any] {
        let result = try bosbackup("backup", "--source", live, "--target", nas, "--catalog", catalog, "--json")
        XCTAssertEqual(result.status, 0, result.stderr)
        return try jsonObject(result.stdout)
    }

    func testBackupSnapshotsVerifyJSONShapes() throws {
        let snapshot = try backup()
        let id = try XCTUnwrap(snapshot["id"] as? String)
        let list = try jsonObject(try bosbackup("snapshots", "--catalog", catalog, "--json").stdout)
        let first = try XCTUnwrap((list["snapshots"] as? [[String: Any]])?.first)
        for key in ["id", "name", "job", "target", "taken_at", "bytes", "stored_bytes", "sha256", "tables"] {
            XCTAssertNotNil(first[key], "snapshots --json lacks \(key)")
        }
        XCTAssertEqual((first["tables"] as? [String: Any])?["orders"] as? Int, 400)

        let verify = try bosbackup("verify", "--snapshot", id, "--catalog", catalog, "--json")
        XCTAssertEqual(verify.status, 0, verify.stderr)
        let result = try XCTUnwrap((try jsonObject(verify.stdout)["results"] as? [[String: Any]])?.first)
        XCTAssertEqual(result["ok"] as? Bool, true)
        for key in ["id", "checksum_ok", "integrity_ok", "counts_ok", "seconds", "problems"] {
            XCTAssertNotNil(result[key], "verify --json lacks \(key)")
        }
    }

    /// `--target URL` naming a policy target is that target: its encryption key
    /// applies and the snapshot goes by the target's name. (Opening the bare URL
    /// once stored an encrypted target's snapshots in the clear.)
    func testATargetGivenByURLIsThePolicysTargetWithItsKey() throws {
        XCTAssertEqual(try bosbackup("key", "generate", dir.file("nas.key")).status, 0)
        try """
            source: { database: live.db }
            catalog: catalog.db
            targets:
              vault: { url: vault, encryption_key_file: nas.key }
            jobs:
              nightly: { target: vault, cron: "0 22 * * *" }
            """.write(toFile: dir.file("bos.yml"), atomically: true, encoding: .utf8)
        for given in ["file://" + dir.file("vault"), dir.file("vault")] {
            let result = try bosbackup("backup", "--config", dir.file("bos.yml"), "--target", given, "--json")
            XCTAssertEqual(result.status, 0, result.stderr)
            let record = try jsonObject(result.stdout)
            XCTAssertEqual(record["target"] as? String, "vault", "\(record)")
            XCTAssertEqual(record["encrypted"] as? Bool, true, "\(record)")
            XCTAssertTrue((record["object_key"] as? String ?? "").hasSuffix(".db.gz.enc"), "\(record)")
        }
        XCTAssertEqual(try bosbackup("verify", "--latest", "2", "--config", dir.file("bos.yml")).status, 0)

        // The catalog rebuilt through the URL knows them by the policy's name and decrypts them.
        try FileManager.default.removeItem(atPath: catalog)
        let rebuild = try bosbackup("catalog", "rebuild", "--config", dir.file("bos.yml"), "--target", "file://" + dir.file("vault"))
        XCTAssertEqual(rebuild.status, 0, rebuild.stderr)
        XCTAssertTrue(rebuild.stdout.hasPrefix("vault: 2 snapshots added"), rebuild.stdout)
        XCTAssertEqual(try bosbackup("verify", "--latest", "2", "--config", dir.file("bos.yml")).status, 0)
    }

    /// Every spelling of an encrypted target's location is that target: a
    /// trailing slash, `//`, `/./`, `..`, a symlink, an upper-case scheme, a bare
    /// path — and a folder inside it. (Exact string matching once stored plain
    /// gzip, readable with gunzip, inside the encrypted target.)
    func testEverySpellingOfAnEncryptedTargetIsEncrypted() throws {
        XCTAssertEqual(try bosbackup("key", "generate", dir.file("vault.key")).status, 0)
        try FileManager.default.createDirectory(atPath: dir.file("vault"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir.file("link"), withDestinationPath: dir.file("vault"))
        try """
            source: { database: live.db }
            catalog: catalog.db
            targets:
              vault: { url: vault, encryption_key_file: vault.key }
            jobs:
              nightly: { target: vault, cron: "0 22 * * *" }
            """.write(toFile: dir.file("bos.yml"), atomically: true, encoding: .utf8)
        let root = dir.path
        let spellings: [(given: String, name: String)] = [
            ("file://\(root)/vault/", "vault"), ("file://\(root)//vault", "vault"), ("file://\(root)/./vault", "vault"),
            ("\(root)/vault/", "vault"), ("\(root)/x/../vault", "vault"), ("file://\(root)/link", "vault"),
            ("FILE://\(root)/vault", "vault"), ("file://\(root)/vault/inner", "file://\(root)/vault/inner"),
        ]
        for (given, name) in spellings {
            let result = try bosbackup("backup", "--config", dir.file("bos.yml"), "--target", given, "--json")
            XCTAssertEqual(result.status, 0, "\(given): \(result.stderr)")
            let record = try jsonObject(result.stdout)
            XCTAssertEqual(record["encrypted"] as? Bool, true, "\(given): \(record)")
            XCTAssertEqual(record["target"] as? String, name, given)
            XCTAssertTrue((record["object_key"] as? String ?? "").hasSuffix(".db.gz.enc"), "\(given): \(record)")
        }
        let stored = try FileManager.default.subpathsOfDirectory(atPath: dir.file("vault")).filter { $0.contains(".db.gz") }
        XCTAssertEqual(stored.count, spellings.count, "\(stored)")
        XCTAssertTrue(stored.allSatisfy { $0.hasSuffix(".db.gz.enc") }, "nothing in the clear: \(stored)")
        let verify = try bosbackup("verify", "--latest", "\(spellings.count)", "--config", dir.file("bos.yml"))
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)

        // snapshots --json says what its sizes describe, gives the object's own size, and the verification.
        let listed = try XCTUnwrap(try jsonObject(try bosbackup("snapshots", "--config", dir.file("bos.yml"), "--json").stdout)["snapshots"] as? [[String: Any]])
        XCTAssertEqual(listed.count, spellings.count)
        for s in listed {
            let key = try XCTUnwrap(s["object_key"] as? String), url = try XCTUnwrap(s["target_url"] as? String)
            let onDisk = DurableFile.fileSize(String(url.dropFirst("file://".count)) + "/" + key)
            XCTAssertEqual((s["object_bytes"] as? NSNumber)?.int64Value, onDisk, "\(s)")
            XCTAssertNotEqual((s["stored_bytes"] as? NSNumber)?.int64Value, onDisk, "stored_bytes is the gzip stream's")
            XCTAssertEqual(s["sha256_of"] as? String, "gzip stream")
            XCTAssertEqual((s["verification"] as? [String: Any])?["ok"] as? Bool, true, "\(s)")
        }
    }

    /// Triage never says "not changed" about a live database SQLite had to roll back.
    func testTriageSaysWhenOpeningLiveRolledBackACrashedWriter() throws {
        let source = dir.file("rollback.db")
        try Fixtures.sampleDatabase(at: source, orders: 300, wal: false)
        XCTAssertEqual(try bosbackup("backup", "--source", source, "--target", nas, "--catalog", catalog).status, 0)
        // A writer that dies mid-transaction, as a power cut would leave its files.
        let crashed = dir.file("crashed.db")
        let writer = try Database(path: source)
        try writer.execute("PRAGMA cache_size = 1; BEGIN; DELETE FROM inventory_movements; DELETE FROM order_items;")
        try FileManager.default.copyItem(atPath: source, toPath: crashed)
        try FileManager.default.copyItem(atPath: source + "-journal", toPath: crashed + "-journal")
        try writer.execute("ROLLBACK")
        let triage = try bosbackup("restore", "--latest", "1", "--live", crashed, "--catalog", catalog)
        XCTAssertEqual(triage.status, 0, triage.stderr)
        XCTAssertTrue(triage.stdout.contains("rolled it back to its last commit"), triage.stdout)
        XCTAssertFalse(triage.stdout.contains("not changed"), triage.stdout)
        let again = try bosbackup("restore", "--latest", "1", "--live", crashed, "--catalog", catalog)
        XCTAssertTrue(again.stdout.contains("opened read-only and not changed"), "nothing left to roll back: \(again.stdout)")
    }

    /// The same database on two targets is restored once, and triage says so.
    func testTriageSaysWhenTwoSnapshotsAreTheSameDatabase() throws {
        for target in ["nas", "nas2"] {
            XCTAssertEqual(try bosbackup("backup", "--source", live, "--target", "file://" + dir.file(target), "--catalog", catalog).status, 0)
        }
        let snapshots = try Catalog(path: catalog).snapshots()
        XCTAssertEqual(Set(snapshots.map(\.databaseSHA256)).count, 1, "an unchanged database gives the same image")
        let triage = try bosbackup("restore", "--latest", "2", "--live", live, "--catalog", catalog)
        XCTAssertEqual(triage.status, 0, triage.stderr)
        XCTAssertTrue(triage.stdout.contains("is the same database as") && triage.stdout.contains("restored once"), triage.stdout)
        let json = try jsonObject(try bosbackup("restore", "--latest", "2", "--live", live, "--catalog", catalog, "--json").stdout)
        XCTAssertEqual((json["snapshots"] as? [Any])?.count, 1)
        XCTAssertEqual((json["same_database"] as? [Any])?.count, 1)
    }

    func testCorruptSnapshotMakesVerifyExit4AndSayWhichCheck() throws {
        let snapshot = try backup()
        let key = try XCTUnwrap(snapshot["object_key"] as? String)
        let path = dir.file("nas/" + key)
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[data.count - 100] ^= 0xff
        try data.write(to: URL(fileURLWithPath: path))
        let verify = try bosbackup("verify", "--latest", "1", "--catalog", catalog)
        XCTAssertEqual(verify.status, 4)
        XCTAssertTrue(verify.stdout.contains("FAILED"), verify.stdout)
        XCTAssertTrue(verify.stdout.contains("checksum"), verify.stdout)
    }

    func testInputErrorsExit2WithOneLine() throws {
        _ = try backup()
        let cases: [[String]] = [
            ["backup", "--source", dir.file("missing.db"), "--target", nas, "--catalog", catalog],
            ["verify", "--snapshot", "deadbeef", "--catalog", catalog],
            ["restore", "--snapshot", "deadbeef", "--into", dir.file("x.db"), "--catalog", catalog],
            ["verify", "--catalog", catalog],
            ["snapshots", "--bogus-flag"],
            ["backup", "--source", live, "--target", "ftp://nas/x", "--catalog", catalog],
        ]
        for arguments in cases {
            let result = try bosbackup(arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.stderr)")
            XCTAssertFalse(result.stderr.isEmpty, "\(arguments) said nothing")
        }
        let missing = try bosbackup("backup", "--source", dir.file("missing.db"), "--target", nas, "--catalog", catalog)
        XCTAssertEqual(missing.stderr, "bosbackup: source database \(dir.file("missing.db")) does not exist\n")
    }

    func testNewerCatalogExits2() throws {
        _ = try backup()
        try Database(path: catalog).execute("PRAGMA user_version = 42")
        let result = try bosbackup("snapshots", "--catalog", catalog)
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.stderr.contains("schema version 42"), result.stderr)
    }

    func testRestoreRefusesExistingFileWithoutForceThenKeepsSafetyCopy() throws {
        let id = try XCTUnwrap(try backup()["id"] as? String)
        let refused = try bosbackup("restore", "--snapshot", id, "--into", live, "--catalog", catalog)
        XCTAssertEqual(refused.status, 2)
        XCTAssertTrue(refused.stderr.contains("--force"), refused.stderr)
        let forced = try bosbackup("restore", "--snapshot", id, "--into", live, "--force", "--catalog", catalog)
        XCTAssertEqual(forced.status, 0, forced.stderr)
        let aside = try XCTUnwrap(forced.stdout.components(separatedBy: "kept at ").last?.components(separatedBy: "\n").first)
        XCTAssertTrue(FileManager.default.fileExists(atPath: aside), forced.stdout)
    }

    func testTriageShowsLiveLossesAgainstTheSnapshot() throws {
        _ = try backup()
        let db = try Database(path: live)
        try db.execute("""
            DELETE FROM order_items WHERE order_id > 370; DELETE FROM inventory_movements WHERE order_id > 370;
            DELETE FROM payments WHERE order_id > 370; DELETE FROM shipments WHERE order_id > 370; DELETE FROM orders WHERE id > 370;
            """)
        let result = try bosbackup("restore", "--latest", "3", "--live", live, "--catalog", catalog, "--json")
        XCTAssertEqual(result.status, 0, result.stderr)
        let snapshots = try XCTUnwrap(try jsonObject(result.stdout)["snapshots"] as? [[String: Any]])
        XCTAssertEqual(snapshots.count, 1)
        let tables = try XCTUnwrap(snapshots[0]["tables"] as? [[String: Any]])
        let orders = try XCTUnwrap(tables.first { $0["name"] as? String == "orders" })
        XCTAssertEqual(orders["delta"] as? Int, -30)
        XCTAssertEqual(orders["restored"] as? Int, 400)
        XCTAssertEqual(orders["live"] as? Int, 370)
        XCTAssertTrue(FileManager.default.fileExists(atPath: try XCTUnwrap(snapshots[0]["scratch_path"] as? String)))
        let human = try bosbackup("restore", "--latest", "1", "--live", live, "--catalog", catalog)
        XCTAssertTrue(human.stdout.contains("orders \u{2212}30"), human.stdout)
    }

    /// The BOS keeps writing while we back up: a second process commits orders
    /// (each with its items and payment in one transaction) the whole time.
    func testBackupWhileAnotherProcessWritesIsAConsistentPointInTime() throws {
        for wal in [true, false] {
            let dir = TempDir()
            let live = dir.file("live.db")
            try Fixtures.sampleDatabase(at: live, orders: 400, wal: wal)
            let writer = Process()
            writer.executableURL = URL(fileURLWithPath: Fixtures.binary)
            writer.arguments = ["sample", "add-orders", live, "--count", "100000", "--announce"]
            let pipe = Pipe()
            writer.standardOutput = pipe
            writer.standardError = FileHandle.nullDevice
            try writer.run()
            // Wait until the writer has committed its first orders (no sleeps: read its announcements).
            let reader = pipe.fileHandleForReading
            var announced = Data()
            while announced.filter({ $0 == 10 }).count < 5 {
                let chunk = reader.availableData
                XCTAssertFalse(chunk.isEmpty, "writer ended early")
                if chunk.isEmpty { break }
                announced.append(chunk)
            }
            var snapshots: [[String: Any]] = []
            for _ in 0..<2 {
                let result = try bosbackup("backup", "--source", live, "--target", "file://" + dir.file("nas"),
                                           "--catalog", dir.file("c.db"), "--json")
                XCTAssertEqual(result.status, 0, result.stderr)
                snapshots.append(try jsonObject(result.stdout))
            }
            writer.terminate()
            writer.waitUntilExit()
            for snapshot in snapshots {
                let restored = dir.file("r-\(snapshot["id"]!).db")
                let restore = try bosbackup("restore", "--snapshot", snapshot["id"] as! String, "--into", restored, "--catalog", dir.file("c.db"))
                XCTAssertEqual(restore.status, 0, restore.stderr)
                let db = try Database(path: restored, mode: .readOnly)
                XCTAssertEqual(try db.scalar("PRAGMA integrity_check")?.string, "ok")
                XCTAssertEqual(try db.rows("PRAGMA foreign_key_check").count, 0)
                // No torn order: every order has its items, every item its order.
                XCTAssertEqual(try db.int("SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id)"), 0)
                XCTAssertEqual(try db.int("SELECT count(*) FROM order_items i WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = i.order_id)"), 0)
                let orders = try db.int("SELECT count(*) FROM orders")
                XCTAssertGreaterThan(orders, 400, "the snapshot includes orders the writer committed before it (wal: \(wal))")
                XCTAssertEqual((snapshot["tables"] as? [String: Any])?["orders"] as? Int, Int(orders))
            }
            // The writer was killed mid-transaction: like any client, open read-write so SQLite rolls back its hot journal.
            let liveOrders = try Database(path: live).int("SELECT count(*) FROM orders")
            XCTAssertGreaterThan(liveOrders, Int64((snapshots.last?["tables"] as? [String: Any])?["orders"] as? Int ?? 0) - 1)
        }
    }
}
