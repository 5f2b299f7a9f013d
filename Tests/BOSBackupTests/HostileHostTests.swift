@testable import BOSBackup
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// bosbackup on a host with other local users and a BOS that keeps running:
/// folders another user could write into are refused, planted symlinks are
/// never written through, a database in use is never replaced, a restored one
/// keeps its owner and mode, and killed restores and recoveries leave nothing
/// that the next sweep does not remove.
final class HostileHostTests: XCTestCase {
    var dir: TempDir!
    var live: String { dir.file("live.db") }
    var catalog: String { dir.file("catalog.db") }

    override func setUpWithError() throws {
        dir = TempDir()
        try Fixtures.sampleDatabase(at: live, orders: 400)
    }

    func replaceLive(orders: Int) throws {
        for suffix in ["", "-wal", "-shm"] { unlink(live + suffix) }
        try Fixtures.sampleDatabase(at: live, orders: orders)
    }

    @discardableResult
    func backup() throws -> SnapshotRecord {
        let result = try bosbackup("backup", "--source", live, "--target", "file://" + dir.file("nas"), "--catalog", catalog)
        XCTAssertEqual(result.status, 0, result.stderr)
        return try XCTUnwrap(try Catalog(path: catalog).snapshots().last)
    }

    /// A real second Unix user (made once, as root can).
    static func otherUser() throws -> (uid: uid_t, gid: gid_t) {
        guard geteuid() == 0 else { throw XCTSkip("needs root to create a second Unix user") }
        let name = "bosbackup-other"
        if getpwnam(name) == nil {
            let made = try runProcess("/usr/sbin/useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name])
            XCTAssertEqual(made.status, 0, made.stderr)
        }
        let entry = try XCTUnwrap(getpwnam(name))
        return (entry.pointee.pw_uid, entry.pointee.pw_gid)
    }

    /// Runs a shell command as the other user (`setpriv`, from util-linux).
    func asOtherUser(_ script: String) throws {
        let user = try Self.otherUser()
        let result = try runProcess("/usr/bin/setpriv", ["--reuid=\(user.uid)", "--regid=\(user.gid)", "--clear-groups", "/bin/sh", "-c", script])
        XCTAssertEqual(result.status, 0, "\(script): \(result.stderr)")
    }

    /// The documented scratch folder made first by another user, with a symlink
    /// planted at the triage name: root refuses the folder and writes nothing
    /// into the other user's file.
    func testAScratchFolderAnotherUserMadeIsRefused() throws {
        let snapshot = try backup()
        let scratch = dir.file("shared-tmp/bosbackup")
        try FileManager.default.createDirectory(atPath: dir.file("shared-tmp"), withIntermediateDirectories: true)
        chmod(dir.file("shared-tmp"), 0o1777)   // like /var/tmp
        let bait = dir.file("shared-tmp/loot.db")
        try asOtherUser("mkdir -m 0777 \(scratch) && mkdir -m 0777 \(scratch)/restored && touch \(bait) && ln -s \(bait) \(scratch)/restored/\(snapshot.name).db")
        let triage = try bosbackup("restore", "--latest", "1", "--live", live, "--catalog", catalog, "--scratch", scratch)
        XCTAssertEqual(triage.status, 2, triage.stdout + triage.stderr)
        XCTAssertTrue(triage.stderr.contains("refusing to use \(scratch)") && triage.stderr.contains("bosbackup-other"), triage.stderr)
        XCTAssertEqual(triage.stderr.split(separator: "\n").count, 1, triage.stderr)
        XCTAssertEqual(DurableFile.fileSize(bait), 0, "nothing of the BOS reached the other user's file")
        let verify = try bosbackup("verify", "--latest", "1", "--catalog", catalog, "--scratch", scratch)
        XCTAssertEqual(verify.status, 2, verify.stderr)
    }

    func testFoldersOthersCanWriteIntoAreRefused() throws {
        try backup()
        let user = try Self.otherUser()
        // Owned by us but group-writable; inside a folder others may write (no sticky bit); owned by another user.
        let cases: [(folder: String, prepare: () -> Void, says: String)] = [
            (dir.file("gw"), { mkdir(self.dir.file("gw"), 0o700); chmod(self.dir.file("gw"), 0o770) }, "chmod go-w"),
            (dir.file("open/inner"), { mkdir(self.dir.file("open"), 0o700); chmod(self.dir.file("open"), 0o777); mkdir(self.dir.file("open/inner"), 0o700) },
             "the folder above it"),
            (dir.file("theirs"), { mkdir(self.dir.file("theirs"), 0o700); chown(self.dir.file("theirs"), user.uid, user.gid) }, "chown"),
        ]
        for (folder, prepare, says) in cases {
            prepare()
            let result = try bosbackup("verify", "--latest", "1", "--catalog", catalog, "--scratch", folder)
            XCTAssertEqual(result.status, 2, "\(folder): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(says), "\(folder): \(result.stderr)")
            let backupThere = try bosbackup("backup", "--source", live, "--target", "file://" + dir.file("nas"), "--catalog", folder + "/catalog.db")
            XCTAssertEqual(backupThere.status, 2, "catalog in \(folder): \(backupThere.stderr)")
            XCTAssertFalse(DurableFile.exists(folder + "/catalog.db"))
        }
    }

    /// In a folder of ours, a symlink at a name we write is replaced, never written through.
    func testPlantedSymlinksAreNeverWrittenThrough() throws {
        let snapshot = try backup()
        let scratch = dir.file("scratch")
        try FileManager.default.createDirectory(atPath: scratch + "/restored", withIntermediateDirectories: true)
        let precious = dir.file("precious.db")
        try Data("precious".utf8).write(to: URL(fileURLWithPath: precious))
        try FileManager.default.createSymbolicLink(atPath: scratch + "/restored/\(snapshot.name).db", withDestinationPath: precious)
        unlink(catalog + ".lock")
        try FileManager.default.createSymbolicLink(atPath: catalog + ".lock", withDestinationPath: precious)

        let triage = try bosbackup("restore", "--latest", "1", "--live", live, "--catalog", catalog, "--scratch", scratch)
        XCTAssertEqual(try String(contentsOfFile: precious, encoding: .utf8), "precious")
        XCTAssertEqual(triage.status, 0, triage.stderr)
        let restored = try FileManager.default.attributesOfItem(atPath: scratch + "/restored/\(snapshot.name).db")
        XCTAssertEqual(restored[.type] as? FileAttributeType, .typeRegular)

        let locked = try bosbackup("backup", "--source", live, "--target", "file://" + dir.file("nas"), "--catalog", catalog)
        XCTAssertEqual(locked.status, 1, "a symlinked lock file is refused: \(locked.stderr)")
        XCTAssertTrue(locked.stderr.contains("lock file"), locked.stderr)
        XCTAssertEqual(try String(contentsOfFile: precious, encoding: .utf8), "precious")
    }

    /// `restore --into LIVE --force` while the BOS commits orders: refused,
    /// nothing changed, every commit the BOS made is in its database.
    func testRestoreOverADatabaseInUseIsRefused() throws {
        let snapshot = try backup()
        let stop = dir.file("stop")
        let before = try Database(path: live, mode: .readOnly).int("SELECT count(*) FROM orders")
        let writer = try ChildProcess(Fixtures.binary, ["sample", "add-orders", live, "--count", "1000000", "--latency", "--stop-file", stop])
        // Until the writer has committed (bounded).
        let deadline = Date().addingTimeInterval(60)
        while try Database(path: live, mode: .readOnly).int("SELECT count(*) FROM orders") == before {
            XCTAssertTrue(writer.isRunning && Date() < deadline, "the writer never committed")
            if !writer.isRunning || Date() >= deadline { return }
            usleep(10_000)
        }
        let inode = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: live)[.systemFileNumber] as? Int)
        let restore = try bosbackup("restore", "--snapshot", snapshot.id, "--into", live, "--force", "--catalog", catalog)
        try Data().write(to: URL(fileURLWithPath: stop))
        let written = try writer.wait(timeout: 60)
        XCTAssertEqual(restore.status, 2, restore.stdout + restore.stderr)
        XCTAssertTrue(restore.stderr.contains("in use") && restore.stderr.contains("stop the BOS first"), restore.stderr)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: live)[.systemFileNumber] as? Int, inode, "live was not replaced")
        let commits = try XCTUnwrap(try jsonObject(written.stdout)["commits"] as? Int)
        XCTAssertEqual(try Database(path: live, mode: .readOnly).int("SELECT count(*) FROM orders"), before + Int64(commits),
                       "every commit the BOS made is in its database")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains("before-restore") || $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [])
    }

    /// The BOS runs as its own user: after a restore it must still open its database.
    func testRestoreKeepsOwnerGroupAndMode() throws {
        let user = try Self.otherUser()
        let snapshot = try backup()
        XCTAssertEqual(chown(live, user.uid, user.gid), 0)
        XCTAssertEqual(chmod(live, 0o640), 0)
        let restore = try bosbackup("restore", "--snapshot", snapshot.id, "--into", live, "--force", "--catalog", catalog)
        XCTAssertEqual(restore.status, 0, restore.stderr)
        var st = stat()
        XCTAssertEqual(stat(live, &st), 0)
        XCTAssertEqual(st.st_uid, user.uid)
        XCTAssertEqual(st.st_gid, user.gid)
        XCTAssertEqual(st.st_mode & 0o7777, 0o640)
        try asOtherUser("test -r \(live) && test -w \(live)")
    }

    /// SIGKILLed restores and recoveries at random moments: a safety copy under
    /// its final name is always whole, and the next sweep leaves no temporary
    /// file beside the databases. `HOSTILE_KILLS` sets the kills (6 by default).
    func testKilledRestoresAndRecoveriesLeaveNothingTheSweepDoesNotRemove() throws {
        try replaceLive(orders: 20_000)
        let snapshot = try backup()
        let scratch = dir.file("scratch")
        let target = dir.file("out/bos.db")
        try FileManager.default.createDirectory(atPath: dir.file("out"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: live, toPath: target)
        // How long one restore takes, so kills land inside one.
        let began = Date()
        XCTAssertEqual(try bosbackup("restore", "--snapshot", snapshot.id, "--into", target, "--force", "--catalog", catalog, "--scratch", scratch).status, 0)
        let span = max(Date().timeIntervalSince(began), 0.05)
        let kills = Int(ProcessInfo.processInfo.environment["HOSTILE_KILLS"] ?? "6") ?? 6
        var rng = SystemRandomNumberGenerator()
        var debrisSeen = 0
        func debris() throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: dir.file("out")).filter { $0.contains(DurableFile.temporaryMarker) }
        }
        // At least `kills` kills, and more (bounded) until one landed while a temporary file
        // existed: a kill's moment is random, and a run where none did would prove nothing.
        var round = 0
        while round < kills || (debrisSeen == 0 && round < kills * 5) {
            defer { round += 1 }
            let arguments = round % 2 == 0
                ? ["restore", "--snapshot", snapshot.id, "--into", target, "--force", "--catalog", catalog, "--scratch", scratch]
                : ["recover", "--snapshot", snapshot.id, "--live", target, "--table", "orders", "--apply", "--catalog", catalog, "--scratch", scratch]
            let child = try ChildProcess(Fixtures.binary, arguments)
            usleep(UInt32(span * Double.random(in: 0.2...0.9, using: &rng) * 1_000_000))   // the fault: a kill at a random moment
            kill(child.pid, SIGKILL)
            _ = try child.wait(timeout: 60)
            debrisSeen += try debris().count
            // Whatever carries a safety copy's name is a whole database.
            for name in try FileManager.default.contentsOfDirectory(atPath: dir.file("out"))
            where name.contains(".before-") && !name.contains(DurableFile.temporaryMarker) && !["-wal", "-journal", "-shm"].contains(where: name.hasSuffix) {
                let copy = try Database(path: dir.file("out/" + name), mode: .readOnly)
                XCTAssertEqual(try copy.rows("PRAGMA quick_check").first?.first?.string, "ok", name)
                XCTAssertEqual(try copy.int("SELECT count(*) FROM orders"), 20_000, name)
            }
        }
        XCTAssertGreaterThan(debrisSeen, 0, "some kill landed while a temporary file existed (else this test proves nothing)")
        let clean = try bosbackup("scratch", "clean", "--catalog", catalog, "--scratch", scratch)
        XCTAssertEqual(clean.status, 0, clean.stderr)
        XCTAssertEqual(try debris(), [], "the sweep removed every temporary file the killed processes left")
        XCTAssertEqual(try Database(path: target, mode: .readOnly).rows("PRAGMA quick_check").first?.first?.string, "ok")
        print("hostile: \(round) kills during restore/recover, \(debrisSeen) temporary files seen after kills, 0 after the sweep")
    }

    /// Two verifies of one snapshot at once, and a sweep in between: each
    /// keeps its own scratch copy, both pass.
    func testConcurrentVerifiesAndASweepDoNotShareOrLoseScratchFiles() throws {
        try replaceLive(orders: 20_000)
        let snapshot = try backup()
        let scratch = dir.file("scratch")
        let first = try ChildProcess(Fixtures.binary, ["verify", "--snapshot", snapshot.id, "--catalog", catalog, "--scratch", scratch])
        let second = try ChildProcess(Fixtures.binary, ["verify", "--snapshot", snapshot.id, "--catalog", catalog, "--scratch", scratch])
        // Sweep while they run (bounded): what a cron `run` does first.
        let deadline = Date().addingTimeInterval(60)
        var sweptWhileRunning = 0
        while first.isRunning || second.isRunning, Date() < deadline {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: scratch)) ?? []
            if names.contains(where: { $0.hasPrefix(".bosbackup-") }) {
                _ = try ScratchFolder(path: scratch).removeTemporaryCopies()
                sweptWhileRunning += 1
            }
            usleep(5_000)
        }
        let a = try first.wait(timeout: 60), b = try second.wait(timeout: 60)
        XCTAssertEqual(a.status, 0, a.stdout + a.stderr)
        XCTAssertEqual(b.status, 0, b.stdout + b.stderr)
        XCTAssertGreaterThan(sweptWhileRunning, 0, "a sweep ran while a verify had its copy in scratch")
        XCTAssertEqual(try Catalog(path: catalog).lastVerification(of: snapshot.id)?.ok, true)
    }
}
