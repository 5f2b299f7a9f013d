@testable import BOSBackup
import Foundation
import XCTest

/// Continuous WAL archiving, first step (issue #15): the WAL read as SQLite
/// reads it, `archive --once` shipping whole commits, and `restore --at` that
/// never overshoots, across a lost position.
final class WALArchiveTests: ArchiveTestCase {
    func testTheWALIsReadAsSQLiteReadsIt() throws {
        for k in 1...10 { try commit(k) }
        let header = try XCTUnwrap(try WALFile.header(path: live + "-wal"))
        let start = WALPosition(salt1: header.salt1, salt2: header.salt2, frame: 0, checksum: header.checksum)
        let commits = try WALFile.commits(path: live + "-wal", header: header, after: start)
        XCTAssertEqual(commits.count, 11, "the CREATE TABLE and ten INSERTs, each its own transaction")
        XCTAssertEqual(Int64(try XCTUnwrap(commits.last).pageCount), try bos.int("PRAGMA page_count"))
        // Resuming after any commit gives exactly the commits after it.
        let fifth = WALPosition(salt1: header.salt1, salt2: header.salt2, frame: commits[4].lastFrame, checksum: commits[4].checksum)
        XCTAssertEqual(try WALFile.commits(path: live + "-wal", header: header, after: fifth).map(\.lastFrame), commits[5...].map(\.lastFrame))
        // One flipped byte in a frame ends the log there, as it would for SQLite.
        let frameSize = 24 + header.pageSize
        let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: live + "-wal"))
        let damaged = UInt64(WALHeader.size + commits[6].lastFrame * frameSize - 100)
        handle.seek(toFileOffset: damaged)
        let byte = handle.readData(ofLength: 1)[0]
        handle.seek(toFileOffset: damaged)
        handle.write(Data([byte ^ 0x40]))
        handle.closeFile()
        XCTAssertEqual(try WALFile.commits(path: live + "-wal", header: header, after: start).count, 6)
    }

    func testRestoreAtGivesExactlyTheCommitsSeenByThenAndNeverALaterOne() throws {
        try commit(1)
        XCTAssertTrue(try archive(at: 0).stdout.contains("new archive generation"))
        for k in 2...6 {
            try commit(k)
            let shipped = try archive(at: k)
            XCTAssertTrue(shipped.stdout.contains("(1 commit) → nas"), shipped.stdout)
        }
        XCTAssertTrue(try archive(at: 7).stdout.contains("nothing new"), "an idle database ships nothing")
        for k in 2...6 {
            let (result, rows) = try restored(at: String(format: "2026-12-01T10:%02d:30Z", k))
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertEqual(rows, (1...k).map(Int64.init), "at 10:0\(k):30")
        }
        // Before the base snapshot, and after the newest archived commit: refused, naming what is there.
        let early = try restored(at: "2026-12-01T09:00:00Z").0
        XCTAssertEqual(early.status, 2, early.stderr)
        XCTAssertTrue(early.stderr.contains("no archive covers") && early.stderr.contains("after it: 2026-12-01T10:00:00Z"), early.stderr)
        let late = try restored(at: "2026-12-01T11:00:00Z").0
        XCTAssertEqual(late.status, 2, late.stderr)
        XCTAssertTrue(late.stderr.contains("before it: 2026-12-01T10:07:00Z"), "the idle pass at 10:07 still covers up to then: " + late.stderr)
    }

    func testALostPositionStartsANewGenerationAndBothSidesRestore() throws {
        try commit(1)
        _ = try archive(at: 0)
        try commit(2)
        _ = try archive(at: 2)
        // The BOS checkpoints with TRUNCATE while commit 3 is not archived yet: its frames leave the WAL.
        try commit(3)
        _ = try bos.rows("PRAGMA wal_checkpoint(TRUNCATE)")
        try commit(4)
        let lost = try archive(at: 4)
        XCTAssertTrue(lost.stdout.contains("new archive generation") && lost.stdout.contains("the WAL was reset"), lost.stdout)
        try commit(5)
        _ = try archive(at: 5)
        for k in 6...1_005 { try commit(k) }   // a thousand more commits in the new generation
        _ = try archive(at: 6)
        XCTAssertEqual(try restored(at: "2026-12-01T10:06:00Z").1, (1...1_005).map(Int64.init), "every commit of the new generation")
        XCTAssertEqual(try restored(at: "2026-12-01T10:02:00Z").1, [Int64(1), 2], "the old generation, up to its last commit")
        XCTAssertEqual(try restored(at: "2026-12-01T10:05:00Z").1, [Int64(1), 2, 3, 4, 5], "the new one: its base snapshot holds 3 and 4")
        // Between the old generation's last pass and the new base snapshot commit 3 may or may not have been: refused.
        let gap = try restored(at: "2026-12-01T10:03:00Z").0
        XCTAssertEqual(gap.status, 2, gap.stdout + gap.stderr)
        XCTAssertTrue(gap.stderr.contains("before it: 2026-12-01T10:02:00Z") && gap.stderr.contains("after it: 2026-12-01T10:04:00Z"), gap.stderr)
        // The gap is named by verify --chain, which still finds the archive whole.
        let chain = try bosbackup("verify", "--chain", "--config", config)
        XCTAssertEqual(chain.status, 0, chain.stdout)
        XCTAssertTrue(chain.stdout.contains("not covered on nas: 2026-12-01T10:02:00Z – 2026-12-01T10:04:00Z (the WAL was reset"), chain.stdout)
        // And by status and the metrics, in one line each.
        let metrics = dir.file("bos.prom")
        let status = try bosbackup("status", "--config", config, "--now", "2026-12-01T10:06:00Z", "--metrics", metrics)
        XCTAssertTrue(status.stdout.contains("archive bos: not covered 2026-12-01T10:02:00Z – 2026-12-01T10:04:00Z (the WAL was reset"), status.stdout)
        XCTAssertTrue(try String(contentsOfFile: metrics, encoding: .utf8).contains("bosbackup_archive_last_gap_seconds{database=\"bos\"} 120"))
        let catalog = try Catalog(readingAt: dir.file("catalog.db"))
        let generations = try catalog.generations(database: "bos", host: "store-0421")
        XCTAssertEqual(generations.count, 2)
        XCTAssertNotNil(generations[0].endReason)
        let secondBase = try XCTUnwrap(try catalog.snapshot(id: generations[1].baseSnapshot))
        XCTAssertEqual(secondBase.layout.parentID, generations[0].baseSnapshot, "the new base costs only the pages changed since the last")
    }

    func testADamagedSegmentIsRefusedAndNothingIsWritten() throws {
        try commit(1)
        _ = try archive(at: 0)
        try commit(2)
        _ = try archive(at: 2)
        let catalog = try Catalog(readingAt: dir.file("catalog.db"))
        let generation = try XCTUnwrap(try catalog.generations(database: "bos", host: "store-0421").first)
        let segment = try XCTUnwrap(try catalog.segments(generation: generation.id, target: "nas").first)
        XCTAssertTrue(segment.objectKey.hasPrefix("store-0421/bos/wal/\(generation.id)/0000000000000001-0000000000000001.wal.gz"), segment.objectKey)
        let path = dir.file("nas/" + segment.objectKey)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count / 2] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let into = dir.file("damaged.db")
        let result = try bosbackup("restore", "--at", "2026-12-01T10:02:00Z", "--into", into, "--config", config)
        XCTAssertEqual(result.status, 4, result.stdout + result.stderr)
        XCTAssertTrue(result.stderr.contains(segment.objectKey), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: into))
    }

    func testARollbackJournalDatabaseIsRefusedByName() throws {
        bos = nil
        try Database(path: live).execute("PRAGMA journal_mode = DELETE")
        let result = try bosbackup("archive", "--once", "--config", config)
        XCTAssertEqual(result.status, 2, result.stdout + result.stderr)
        XCTAssertTrue(result.stderr.contains("PRAGMA journal_mode=WAL"), result.stderr)
    }

    /// The daemon archives beside the schedule: a commit made while it sleeps is on
    /// the target within its interval, and restores at the time it was seen.
    func testTheDaemonArchivesWhileItWaitsForTheNextFireTime() throws {
        try commit(1)
        let (daemon, stderr, started) = try startDaemonUntilSleeping(config: config)
        defer { if daemon.isRunning { daemon.terminate() }; daemon.waitUntilExit() }
        let catalogPath = dir.file("catalog.db")
        func archivedTxids() throws -> Int64 {
            guard FileManager.default.fileExists(atPath: catalogPath) else { return -1 }
            let catalog = try Catalog(readingAt: catalogPath)
            guard let generation = try catalog.generations(database: "bos", host: "store-0421").last else { return -1 }
            return try catalog.segments(generation: generation.id, target: "nas").last?.lastTxid ?? 0
        }
        // The first pass starts a generation; then commits 2 and 3 arrive while the daemon sleeps.
        let deadline = Date().addingTimeInterval(60)
        while try archivedTxids() < 0, Date() < deadline { usleep(50_000) }
        XCTAssertEqual(try archivedTxids(), 0, "a generation started, nothing after its base yet")
        try commit(2)
        try commit(3)
        while try archivedTxids() < 2, Date() < deadline { usleep(50_000) }
        XCTAssertEqual(try archivedTxids(), 2, "both commits are archived within the 1 s interval")
        // Restore at the whole second after the commits were seen, once a later pass covers it.
        let catalog = try Catalog(readingAt: catalogPath)
        let generation = try XCTUnwrap(try catalog.generations(database: "bos", host: "store-0421").last)
        let seen = try XCTUnwrap(try catalog.segments(generation: generation.id, target: "nas").last).lastSeen
        let when = Date(timeIntervalSince1970: seen.timeIntervalSince1970.rounded(.up))
        while (try catalog.archiveCheck(generation: generation.id, target: "nas") ?? .distantPast) < when, Date() < deadline { usleep(50_000) }
        daemon.terminate()
        daemon.waitUntilExit()
        let log = started + String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(log.contains("archiving bos to nas"), log)
        let (result, rows) = try restored(at: ISO8601.string(when))
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(rows, [1, 2, 3])
    }

    func testScheduleShowGivesTheRPOTheArchiveGives() throws {
        let show = try bosbackup("schedule", "show", "--config", config)
        XCTAssertEqual(show.status, 0, show.stderr)
        XCTAssertTrue(show.stdout.contains("  nas: 1s (WAL archive every 1s; snapshots alone: 1d)"), show.stdout)
        XCTAssertTrue(show.stdout.contains("  overall (any copy): 1s"), show.stdout)
        let json = try jsonObject(try bosbackup("schedule", "show", "--config", config, "--json").stdout)
        XCTAssertEqual(((json["rpo_seconds"] as? [String: Any])?["overall"] as? Double), 1)
    }

    func testStatusAndTheMetricsShowTheArchiveLag() throws {
        try commit(1)
        _ = try archive(at: 0)
        try commit(2)
        _ = try archive(at: 2)
        func archiveStatus(at time: String) throws -> [String: Any] {
            let status = try bosbackup("status", "--config", config, "--now", time, "--json")
            return try XCTUnwrap((try jsonObject(status.stdout)["archive"] as? [[String: Any]])?.first, status.stdout)
        }
        let fresh = try archiveStatus(at: "2026-12-01T10:02:30Z")
        XCTAssertEqual(fresh["last_txid"] as? Int, 1)
        XCTAssertEqual(fresh["lag_seconds"] as? Double, 30)
        XCTAssertEqual(fresh["behind"] as? Bool, false)
        XCTAssertEqual(try archiveStatus(at: "2026-12-01T10:30:00Z")["behind"] as? Bool, true, "28 minutes without a pass")
        let text = try bosbackup("status", "--config", config, "--now", "2026-12-01T10:30:00Z")
        XCTAssertTrue(text.stdout.contains("archive bos → nas: BEHIND, txid 1 seen 2026-12-01T10:02:00Z, complete up to 2026-12-01T10:02:00Z (lag 28m)"), text.stdout)
        let metrics = dir.file("bos.prom")
        XCTAssertEqual(try bosbackup("status", "--config", config, "--now", "2026-12-01T10:02:30Z", "--metrics", metrics).status, 1)
        let exposition = try String(contentsOfFile: metrics, encoding: .utf8)
        XCTAssertTrue(exposition.contains("bosbackup_archive_lag_seconds{database=\"bos\",target=\"nas\"} 30\n"), exposition)
    }

    /// The long-running archiver keeps one generation while the WAL restarts
    /// under it (it checkpoints behind its write-lock barrier once the WAL is
    /// past 4 MiB, and follows the one restart that can follow): every commit
    /// of a busy writer restores, with no gap.
    func testTheFollowerKeepsOneGenerationAcrossWALRestarts() throws {
        try bos.execute("CREATE TABLE blobs(id INTEGER PRIMARY KEY, body BLOB)")
        try commit(1)
        let archiver = try ChildProcess(Fixtures.binary, ["archive", "--config", config])
        defer { if archiver.isRunning { kill(archiver.pid, SIGTERM) }; _ = try? archiver.wait(timeout: 30) }
        let catalogPath = dir.file("catalog.db")
        let deadline = Date().addingTimeInterval(120)
        func generations() throws -> [WALGeneration] {
            guard FileManager.default.fileExists(atPath: catalogPath) else { return [] }
            do { return try Catalog(readingAt: catalogPath).generations(database: "bos", host: "store-0421") } catch CatalogError.olderSchema {
                return []   // the archiver has created the file and is creating its tables
            }
        }
        while try generations().isEmpty, Date() < deadline { usleep(50_000) }
        // About 12 MB of commits, paced like a busy BOS: the WAL passes 4 MiB about three times.
        for k in 2...600 {
            try bos.execute("BEGIN; INSERT INTO ledger(k, total) VALUES (\(k), \(k * (k + 1) / 2)); INSERT INTO blobs(body) VALUES (randomblob(8192)); COMMIT")
            if k % 5 == 0 { usleep(20_000) }   // about 3 s of writing: the archiver polls (and swaps) many times meanwhile
        }
        // A whole second past the last commit by more than a poll: every commit was seen by then.
        let when = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + 1).rounded(.up))
        let catalog = try Catalog(readingAt: catalogPath)
        let generation = try XCTUnwrap(try generations().first)
        while (try catalog.archiveCheck(generation: generation.id, target: "nas") ?? .distantPast) < when, Date() < deadline { usleep(50_000) }
        kill(archiver.pid, SIGTERM)
        _ = try archiver.wait(timeout: 30)
        let all = try generations()
        XCTAssertEqual(all.count, 1, "no lost position: \(all.map { $0.endReason ?? "open" })")
        let segments = try catalog.segments(generation: generation.id, target: "nas")
        XCTAssertGreaterThanOrEqual(Set(segments.map(\.position.salt1)).count, 2, "the WAL restarted under the archiver, and it followed")
        let (result, rows) = try restored(at: ISO8601.string(when))
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(rows, (1...600).map(Int64.init))
    }

    /// Issue #15's kill test, short version (`ARCHIVE_KILLS`, default 5, and
    /// `ARCHIVE_RESTORES`, default 20; 20 and 100 in `make torture`): a writer
    /// process commits order k and the running total at about 200 tx/s with
    /// SQLite's default auto-checkpoint, logging when each commit began; the archiver is SIGKILLed at random moments and started
    /// again. Then `restore --at T` for random T: each is either refused
    /// (a gap a kill left, named) or exactly orders 1…k with the right totals,
    /// where order k was committed at or before T — never a later commit.
    func testArchiverKilledAtRandomNeverRestoresALaterCommit() throws {
        let kills = Int(ProcessInfo.processInfo.environment["ARCHIVE_KILLS"] ?? "5") ?? 5
        let restores = Int(ProcessInfo.processInfo.environment["ARCHIVE_RESTORES"] ?? "20") ?? 20
        bos = nil   // the writer process is the BOS now
        let writer = try ledgerWriter(seconds: Double(kills) * 1.2 + 2)
        var rng = SeededRandom(seed: 20261202)
        var archiver = try ChildProcess(Fixtures.binary, ["archive", "--config", config])
        for _ in 0..<kills {
            usleep(UInt32.random(in: 500_000...1_100_000, using: &rng))   // the fault: a kill at a random moment
            kill(archiver.pid, SIGKILL)
            _ = try archiver.wait(timeout: 30)
            archiver = try ChildProcess(Fixtures.binary, ["archive", "--config", config])
        }
        let written = try writer.wait(timeout: 120)
        XCTAssertEqual(written.status, 0, written.stderr)
        let commits = try commitLog()
        XCTAssertGreaterThan(commits.count, 200 * kills / 2, "the writer kept committing")
        // Let the archiver catch up, then stop it.
        let end = Date(timeIntervalSince1970: (commits.last!.began + 1).rounded(.up))
        let catalog = try Catalog(readingAt: dir.file("catalog.db"))
        let deadline = Date().addingTimeInterval(60)
        func coveredUpTo() throws -> Date {
            guard let open = try catalog.generations(database: "bos", host: "store-0421").last else { return .distantPast }
            return try catalog.archiveCheck(generation: open.id, target: "nas") ?? .distantPast
        }
        while try coveredUpTo() < end, Date() < deadline { usleep(50_000) }
        kill(archiver.pid, SIGTERM)
        _ = try archiver.wait(timeout: 30)

        // Not stale either: what was committed 3 s before T (a kill's downtime and more) is there.
        let (exact, refused) = try checkRandomRestores(restores, commits: commits, settled: 3, using: &rng)
        let generations = try catalog.generations(database: "bos", host: "store-0421")
        print("archive kills: \(kills) kills, \(commits.count) commits, \(generations.count) generations, \(exact) exact restores, \(refused) refused in gaps")
        XCTAssertGreaterThan(exact, 0)
        XCTAssertEqual(try restored(at: ISO8601.string(end)).1.count, commits.count, "after the last commit everything is there")
    }

    /// The triage form: the state at a second restored into scratch and set beside live, row by key.
    func testTriageAtATimeSetsThatStateBesideLive() throws {
        _ = try archiveSixCommits()
        try bos.execute("DELETE FROM ledger WHERE k >= 3")   // the bad script
        _ = try archive(at: 8)
        let triage = try bosbackup("restore", "--at", "2026-12-01T10:06:30Z", "--live", live, "--config", config)
        XCTAssertEqual(triage.status, 0, triage.stdout + triage.stderr)
        XCTAssertTrue(triage.stdout.contains("live lost rows this state still holds: ledger \u{2212}4"), triage.stdout)
        XCTAssertTrue(triage.stdout.contains("opened read-only and not changed"), triage.stdout)
        XCTAssertEqual(try bos.int("SELECT count(*) FROM ledger"), 2, "live is only read")
        let json = try jsonObject(try bosbackup("restore", "--at", "2026-12-01T10:06:30Z", "--live", live, "--json", "--config", config).stdout)
        XCTAssertEqual(json["missing_rows"] as? Int, 4)
        let copy = try XCTUnwrap(json["path"] as? String)
        XCTAssertEqual(try Database(path: copy, mode: .readOnly).int("SELECT count(*) FROM ledger"), 6, "the copy is kept in scratch for the next step")
        // After the bad script: nothing lost.
        XCTAssertTrue(try bosbackup("restore", "--at", "2026-12-01T10:08:00Z", "--live", live, "--config", config).stdout
            .contains("live has every row this state has"))
    }

    /// A restore at T is byte for byte the database as it was then, also after the
    /// database shrank (VACUUM) and grew again: the same SHA-256 as a snapshot of it.
    func testARestoreIsByteForByteTheDatabaseAfterItShrankAndGrew() throws {
        try commit(1)
        _ = try archive(at: 0)
        try bos.execute("CREATE TABLE blobs(b BLOB)")
        for _ in 0..<40 { try bos.execute("INSERT INTO blobs VALUES (randomblob(3000))") }
        _ = try archive(at: 1)
        try bos.execute("DELETE FROM blobs; VACUUM")   // the file shrinks
        _ = try archive(at: 2)
        for _ in 0..<5 { try bos.execute("INSERT INTO blobs VALUES (randomblob(3000))") }   // and grows into part of it again
        try commit(2)
        _ = try archive(at: 3)
        let backup = try bosbackup("backup", "--job", "daily", "--config", config, "--now", "2026-12-01T10:04:00Z")
        XCTAssertEqual(backup.status, 0, backup.stdout + backup.stderr)
        let snapshot = try XCTUnwrap(try Catalog(readingAt: dir.file("catalog.db")).snapshots(job: "daily").last)
        let into = dir.file("exact.db")
        let restore = try bosbackup("restore", "--at", "2026-12-01T10:03:00Z", "--into", into, "--config", config)
        XCTAssertEqual(restore.status, 0, restore.stderr)
        XCTAssertEqual(try SHA256Stream.hex(ofFile: into), snapshot.databaseSHA256, "the restored file is the database's image")
    }
}
