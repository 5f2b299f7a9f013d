@testable import BOSBackup
import Foundation
import XCTest

/// "Could not check" is never "found damage", and one bad snapshot never
/// hides the answers about the others.
final class HonestOutcomeTests: XCTestCase {
    var dir: TempDir!
    var live: String { dir.file("live.db") }
    var catalog: String { dir.file("catalog.db") }
    var nas: String { dir.file("nas") }

    override func setUpWithError() throws {
        dir = TempDir()
        try Fixtures.sampleDatabase(at: live, orders: 400)
    }

    @discardableResult
    func backup(_ source: String? = nil, expect: Int32 = 0) throws -> SnapshotRecord {
        let before = Set(try Catalog(path: catalog).snapshots().map(\.id))
        let result = try bosbackup("backup", "--source", source ?? live, "--target", "file://" + nas, "--catalog", catalog)
        XCTAssertEqual(result.status, expect, result.stderr)
        return try XCTUnwrap(try Catalog(path: catalog).snapshots().first { !before.contains($0.id) })
    }

    /// An object that exists but cannot be read (here a folder in its place, as
    /// an I/O error or a network error would): the read fails, nothing is known.
    func makeUnreadable(_ key: String) throws {
        let path = nas + "/" + key
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    }

    func testAManifestThatCannotBeFetchedIsCouldNotCheckNotMissing() throws {
        let snapshot = try backup()
        try makeUnreadable(snapshot.manifestKey)
        let verify = try bosbackup("verify", "--snapshot", snapshot.id, "--catalog", catalog)
        XCTAssertEqual(verify.status, 1, verify.stdout + verify.stderr)
        XCTAssertFalse(verify.stdout.contains("missing"), verify.stdout)
        XCTAssertNil(try Catalog(path: catalog).lastVerification(of: snapshot.id), "no verdict recorded about the snapshot")
    }

    /// `catalog rebuild` must not skip a manifest it could not fetch and say all is well.
    func testRebuildFailsOnAManifestItCouldNotFetch() throws {
        let moto = try MotoServer.shared()
        let bucket = try runAsync { try await moto.makeBucket() }
        let proxy = try FaultProxy(upstreamPort: moto.port)
        addTeardownBlock { proxy.stop() }
        let target = try moto.target(bucket: bucket, prefix: "prod", port: proxy.port)
        let snapshot = try backup()
        for key in [snapshot.objectKey, snapshot.manifestKey] {
            let data = try Data(contentsOf: URL(fileURLWithPath: nas + "/" + key))
            try runAsync { try await target.put(key: key, data: data) }
        }
        proxy.inject(.status(500, code: "InternalError")) { $0.method == "GET" && $0.path.hasSuffix(".manifest.json") }
        let rebuilt = try Catalog(path: dir.file("rebuilt.db"))
        XCTAssertThrowsError(try runAsync { try await CatalogRebuild(catalog: rebuilt).rebuild(targetName: "cloud", target: target) })
        proxy.clearFaults()
        let outcome = try runAsync { try await CatalogRebuild(catalog: rebuilt).rebuild(targetName: "cloud", target: target) }
        XCTAssertEqual(outcome.added.map(\.id), [snapshot.id])
    }

    func testVerifyLatestAnswersForEverySnapshotWithTheWorstCode() throws {
        let first = try backup()
        let second = try backup()
        let third = try backup()
        try makeUnreadable(second.objectKey)
        var verify = try bosbackup("verify", "--latest", "3", "--catalog", catalog)
        XCTAssertEqual(verify.status, 1, verify.stdout + verify.stderr)
        for s in [first, third] { XCTAssertTrue(verify.stdout.contains("ok      \(s.shortID)"), verify.stdout) }
        XCTAssertTrue(verify.stderr.contains("snapshot \(second.shortID)") && verify.stderr.contains("could not be checked"), verify.stderr)
        XCTAssertEqual(verify.stderr.split(separator: "\n").count, 1, verify.stderr)

        // Damage one more: now the worst answer is damage.
        let path = nas + "/" + first.objectKey
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[data.count / 2] ^= 0xff
        try data.write(to: URL(fileURLWithPath: path))
        verify = try bosbackup("verify", "--latest", "3", "--catalog", catalog, "--json")
        XCTAssertEqual(verify.status, 4, verify.stdout + verify.stderr)
        let results = try XCTUnwrap(try jsonObject(verify.stdout)["results"] as? [[String: Any]])
        XCTAssertEqual(Set(results.compactMap { $0["id"] as? String }), [first.id, second.id, third.id])
    }

    /// A snapshot of a malformed database among good ones: it is FAILED, the
    /// others answer (rows lost included), exit 4.
    func testOneMalformedSnapshotDoesNotHideTheOthers() throws {
        let good = try backup()
        let damagedSource = dir.file("damaged.db")
        try FileManager.default.copyItem(atPath: live, toPath: damagedSource)
        try Database(path: damagedSource).execute("PRAGMA journal_mode=DELETE")
        try Fixtures.breakEmployeesPage(damagedSource)
        let bad = try backup(damagedSource, expect: 4)
        XCTAssertNotEqual(bad.id, good.id)
        try Database(path: live).execute("DELETE FROM order_items WHERE order_id IN (SELECT id FROM orders ORDER BY id DESC LIMIT 25); DELETE FROM payments WHERE order_id IN (SELECT id FROM orders ORDER BY id DESC LIMIT 25); DELETE FROM shipments WHERE order_id IN (SELECT id FROM orders ORDER BY id DESC LIMIT 25); DELETE FROM orders WHERE id IN (SELECT id FROM orders ORDER BY id DESC LIMIT 25)")

        let triage = try bosbackup("restore", "--latest", "2", "--live", live, "--catalog", catalog)
        XCTAssertEqual(triage.status, 4, triage.stdout + triage.stderr)
        XCTAssertTrue(triage.stdout.contains("snapshot \(bad.shortID)") && triage.stdout.contains("FAILED"), triage.stdout)
        XCTAssertTrue(triage.stdout.contains("snapshot \(good.shortID) holds the most rows live lost"), triage.stdout)
    }
}

/// The right exit code and a clear line for the mistakes people make.
final class ClearWordsTests: XCTestCase {
    var dir: TempDir!
    var live: String { dir.file("live.db") }
    var catalog: String { dir.file("catalog.db") }

    override func setUpWithError() throws {
        dir = TempDir()
        try Fixtures.sampleDatabase(at: live, orders: 200)
    }

    func backup() throws -> ProcessResult {
        try bosbackup("backup", "--source", live, "--target", "file://" + dir.file("nas"), "--catalog", catalog)
    }

    func testMistakesGetExit2AndOneLine() throws {
        XCTAssertEqual(try backup().status, 0)
        let id = try XCTUnwrap(try Catalog(path: catalog).snapshots().first?.id)
        FileManager.default.createFile(atPath: dir.file("a-file"), contents: Data("x".utf8))
        try FileManager.default.createDirectory(atPath: dir.file("a-folder"), withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: dir.file("empty.db"), contents: Data())
        let cases: [(arguments: [String], says: String)] = [
            (["verify", "--latest", "1", "--catalog", catalog, "--scratch", dir.file("a-file")], "not a folder"),
            (["restore", "--snapshot", id, "--into", dir.file("a-folder"), "--catalog", catalog], "is a folder"),
            (["restore", "--snapshot", "", "--into", dir.file("x.db"), "--catalog", catalog], "empty snapshot id"),
            (["backup", "--source", dir.file("empty.db"), "--target", "file://" + dir.file("nas"), "--catalog", catalog], "empty"),
            (["snapshots", "--catalog", dir.file("typo/cat.db")], "no catalog at"),
        ]
        for (arguments, says) in cases {
            let result = try bosbackup(arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.stdout) \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(says), "\(arguments): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(arguments): \(result.stderr)")
        }
        XCTAssertFalse(DurableFile.exists(dir.file("typo")), "a read-only command created nothing")

        // A review file already there (perhaps edited by the operator) is never replaced.
        try Data("-- my edits\n".utf8).write(to: URL(fileURLWithPath: dir.file("review.sql")))
        let recover = try bosbackup("recover", "--snapshot", id, "--live", live, "--table", "orders", "--sql", dir.file("review.sql"), "--catalog", catalog)
        XCTAssertEqual(recover.status, 2, recover.stderr)
        XCTAssertTrue(recover.stderr.contains("already exists"), recover.stderr)
        XCTAssertEqual(try String(contentsOfFile: dir.file("review.sql"), encoding: .utf8), "-- my edits\n")

        // diff --json names key columns as they are, not SQL-quoted.
        let diff = try jsonObject(try bosbackup("diff", "--snapshot", id, "--live", live, "--table", "orders", "--catalog", catalog, "--json").stdout)
        let key = (diff["tables"] as? [[String: Any]])?.first?["key"] as? [String]
        XCTAssertEqual(key, ["id"], "\(diff)")
        XCTAssertFalse(DurableFile.exists(dir.file("x.db")))
        XCTAssertEqual(try Catalog(path: catalog).snapshots().count, 1, "the empty source stored nothing")
    }

    /// A BOS holding its database in locking_mode=EXCLUSIVE: the backup could
    /// not run now (exit 1, saying why), it is not the operator's input error.
    func testASourceLockedByTheBOSIsAFailureNotBadInput() throws {
        try Database(path: live).execute("PRAGMA journal_mode=DELETE")
        let ready = dir.file("ready"), stop = dir.file("stop")
        let holder = try ChildProcess("/usr/bin/env", ["python3", "-c", """
            import sqlite3, sys, os, time
            c = sqlite3.connect(sys.argv[1], isolation_level=None)
            c.execute("PRAGMA locking_mode=EXCLUSIVE"); c.execute("BEGIN EXCLUSIVE"); c.execute("UPDATE settings SET value = value")
            open(sys.argv[2], "w").close()
            deadline = time.time() + 120
            while not os.path.exists(sys.argv[3]) and time.time() < deadline: time.sleep(0.05)
            """, live, ready, stop])
        let deadline = Date().addingTimeInterval(60)
        while !DurableFile.exists(ready) && Date() < deadline && holder.isRunning { usleep(20_000) }
        XCTAssertTrue(DurableFile.exists(ready), "the holder took its lock")
        let result = try backup()
        try Data().write(to: URL(fileURLWithPath: stop))
        _ = try holder.wait(timeout: 60)
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("locking_mode=EXCLUSIVE"), result.stderr)
    }

    /// An auditor who may read the catalog (0644) in a folder they cannot
    /// write lists snapshots; read-only commands need no write access.
    func testReadOnlyCommandsNeedOnlyReadAccess() throws {
        let user = try HostileHostTests.otherUser()
        XCTAssertEqual(try backup().status, 0)
        chmod(dir.path, 0o755)
        chmod(catalog, 0o644)
        for suffix in ["-wal", "-shm"] { chmod(catalog + suffix, 0o644) }
        try """
            source: { database: live.db }
            catalog: catalog.db
            scratch: \(dir.file("auditor-scratch"))
            targets: { nas: { url: nas } }
            jobs: { nightly: { target: nas, cron: "0 22 * * *" } }
            """.write(toFile: dir.file("bos.yml"), atomically: true, encoding: .utf8)
        chmod(dir.file("bos.yml"), 0o644)
        for command in [["snapshots", "--catalog", catalog], ["status", "--config", dir.file("bos.yml")]] {
            let result = try runProcess("/usr/bin/setpriv", ["--reuid=\(user.uid)", "--regid=\(user.gid)", "--clear-groups",
                                                             Fixtures.binary] + command)
            // status exits 1 here by design (the nightly job never ran); what matters is that it could read.
            XCTAssertEqual(result.status, command[0] == "status" ? 1 : 0, "\(command): \(result.stdout) \(result.stderr)")
            XCTAssertEqual(result.stderr, "", "\(command)")
            XCTAssertTrue(result.stdout.contains(command[0] == "status" ? "nightly" : "manual"), "\(command): \(result.stdout)")
        }
    }
}

/// Help reads as written: no paragraph wrapped once by us and again by the
/// terminal-width wrapper (a word or two orphaned on a line of their own).
final class HelpTextTests: XCTestCase {
    func testNoHelpTextIsWrappedTwice() throws {
        let top = try bosbackup("--help").stdout
        let commands = top.components(separatedBy: "SUBCOMMANDS:").last!.split(separator: "\n")
            .compactMap { $0.split(separator: " ").first.map(String.init) }
            .filter { $0.allSatisfy { $0.isLetter || $0 == "-" } && !$0.isEmpty }
        XCTAssertGreaterThan(commands.count, 15, top)
        for command in commands {
            let lines = try bosbackup("help", command).stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            for (i, line) in lines.enumerated() where i > 0 && i + 1 < lines.count {
                let words = line.split(separator: " ").count
                let indent = { (s: String) in s.prefix { $0 == " " }.count }
                let orphan = words > 0 && words < 3 && lines[i - 1].count >= 70 && indent(lines[i + 1]) > indent(line)
                    && !line.hasSuffix(":")
                XCTAssertFalse(orphan, "bosbackup help \(command): orphaned \"\(line)\" after \"\(lines[i - 1])\"")
            }
        }
    }
}

/// Long commands show where they are on a terminal, and stay quiet in a pipe.
final class ProgressLineTests: XCTestCase {
    func testVerifyAndRestoreShowProgressOnATerminalOnly() throws {
        let dir = TempDir()
        let live = dir.file("live.db"), catalog = dir.file("catalog.db")
        try Fixtures.sampleDatabase(at: live, orders: 4_000)
        XCTAssertEqual(try bosbackup("backup", "--source", live, "--target", "file://" + dir.file("nas"), "--catalog", catalog).status, 0)
        let commands = [["verify", "--latest", "1", "--catalog", catalog],
                        ["restore", "--latest", "1", "--live", live, "--catalog", catalog],
                        ["restore", "--snapshot", try XCTUnwrap(try Catalog(path: catalog).snapshots().first?.id), "--into", dir.file("back.db"), "--catalog", catalog]]
        for command in commands {
            let piped = try bosbackup(command)
            XCTAssertEqual(piped.status, 0, piped.stderr)
            XCTAssertFalse(piped.stderr.contains("fetching"), "no progress into a pipe: \(piped.stderr)")
            unlink(dir.file("back.db"))
            // Under a pseudo-terminal (util-linux `script`), as an operator sees it.
            let line = ([Fixtures.binary] + command).map { "'\($0)'" }.joined(separator: " ")
            let terminal = try runProcess("/usr/bin/script", ["-qfec", line, "/dev/null"])
            XCTAssertEqual(terminal.status, 0, terminal.stdout)
            XCTAssertTrue(terminal.stdout.contains("\r\u{1B}[Kfetching snapshot") && terminal.stdout.contains("% ("), "\(command): \(terminal.stdout.prefix(400))")
            unlink(dir.file("back.db"))
        }
        let rebuilt = dir.file("rebuilt.db")
        let rebuild = ([Fixtures.binary, "catalog", "rebuild", "--catalog", rebuilt, "--target", "file://" + dir.file("nas")]).map { "'\($0)'" }.joined(separator: " ")
        let terminal = try runProcess("/usr/bin/script", ["-qfec", rebuild, "/dev/null"])
        XCTAssertEqual(terminal.status, 0, terminal.stdout)
        XCTAssertTrue(terminal.stdout.contains("reading manifests on"), terminal.stdout)
    }
}
