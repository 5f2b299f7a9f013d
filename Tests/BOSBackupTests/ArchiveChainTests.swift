@testable import BOSBackup
import Foundation
import XCTest

/// The archive as a chain (issue #15 item 5): `verify --chain` names every
/// damaged segment and exits 4, a restore across the damage refuses and
/// writes nothing; `--txid`; and the archive re-cataloged from its target
/// alone, as after losing the host.
final class ArchiveChainTests: ArchiveTestCase {
    func verifyChain() throws -> ProcessResult { try bosbackup("verify", "--chain", "--config", config) }

    func testVerifyChainNamesAFlippedACutAndAMissingSegmentAndRestoresAcrossThemRefuse() throws {
        let segments = try archiveSixCommits()
        let whole = try verifyChain()
        XCTAssertEqual(whole.status, 0, whole.stdout + whole.stderr)
        XCTAssertTrue(whole.stdout.contains("5 segments, 5 commits") && whole.stdout.contains("is whole"), whole.stdout)

        let nas = dir.file("nas")
        let flipped = nas + "/" + segments[1].objectKey, cut = nas + "/" + segments[2].objectKey, gone = nas + "/" + segments[3].objectKey
        var bytes = try Data(contentsOf: URL(fileURLWithPath: flipped))
        bytes[bytes.count / 2] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: flipped))
        let full = try Data(contentsOf: URL(fileURLWithPath: cut))
        try full.prefix(full.count - 9).write(to: URL(fileURLWithPath: cut))
        try FileManager.default.removeItem(atPath: gone)

        let damaged = try verifyChain()
        XCTAssertEqual(damaged.status, 4, damaged.stdout + damaged.stderr)
        for key in [segments[1], segments[2], segments[3]].map(\.objectKey) {
            XCTAssertTrue(damaged.stdout.contains("DAMAGED \(key)"), "names \(key): " + damaged.stdout)
        }
        XCTAssertTrue(damaged.stdout.contains("it is missing") && damaged.stdout.contains("3 damaged segments"), damaged.stdout)
        XCTAssertFalse(damaged.stdout.contains("DAMAGED \(segments[0].objectKey)") || damaged.stdout.contains("DAMAGED \(segments[4].objectKey)"),
                       "the whole segments are not blamed: " + damaged.stdout)
        let json = try jsonObject(try bosbackup("verify", "--chain", "--json", "--config", config).stdout)
        XCTAssertEqual((json["damage"] as? [[String: Any]])?.compactMap { $0["first_txid"] as? Int }, [2, 3, 4])

        // Before the damage: exact. A restore reads a segment's index and the pages it needs, each
        // checked (BOSWAL03): across the flipped byte it is exact when the byte is in nothing it
        // needs, else refused naming the segment; never a wrong state. Across the gap: refused,
        // exit 4, nothing written (checked in restored()).
        XCTAssertEqual(try restored(at: "2026-12-01T10:02:30Z").1, [1, 2])
        let (acrossFlip, orders) = try restored(at: "2026-12-01T10:03:30Z")
        if acrossFlip.status == 0 {
            XCTAssertEqual(orders, [1, 2, 3])
        } else {
            XCTAssertEqual(acrossFlip.status, 4, acrossFlip.stderr)
            XCTAssertTrue(acrossFlip.stderr.contains(segments[1].objectKey), acrossFlip.stderr)
        }
        let (refused, _) = try restored(at: "2026-12-01T10:06:00Z")
        XCTAssertEqual(refused.status, 4, refused.stderr)
        XCTAssertTrue(refused.stderr.contains(segments[3].objectKey) && refused.stderr.contains("it is missing")
                      && refused.stderr.contains("nothing was restored"), refused.stderr)
    }

    /// What a restore needs of a segment it reads and checks: a flipped byte in a page the
    /// state needs, or in the index, is refused naming the segment; the file is never written.
    func testAFlippedPageOrIndexThatARestoreNeedsIsRefused() throws {
        let segments = try archiveSixCommits()
        let last = segments[4]
        let path = dir.file("nas") + "/" + last.objectKey
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        let index = try runAsync {
            try await Repository(target: try TargetFactory.open(url: "file://" + self.dir.file("nas"))).segmentIndex(last, try XCTUnwrap(last.index))
        }
        let page = try XCTUnwrap(index.last?.pages.first, "the newest commit wrote a page: the restore needs it")
        let ref = try XCTUnwrap(last.index)
        for (what, at, says) in [("page", Int(page.offset) + Int(page.length) / 2, "page \(page.number)"),
                                 ("index", Int(ref.offset) + Int(ref.length) / 2, "its index is not the one shipped")] {
            var bytes = original
            bytes[at] ^= 0x01
            try bytes.write(to: URL(fileURLWithPath: path))
            let (refused, _) = try restored(at: "2026-12-01T10:06:00Z")
            XCTAssertEqual(refused.status, 4, "\(what): \(refused.stderr)")
            XCTAssertTrue(refused.stderr.contains(last.objectKey) && refused.stderr.contains(says), "\(what): \(refused.stderr)")
        }
        try original.write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try restored(at: "2026-12-01T10:06:00Z").1, [1, 2, 3, 4, 5, 6])
    }

    /// A byte no restore or timeline reads (a commit header member's CRC): `restore --at` and
    /// the timeline, which read a folder's segments by their indexes, are still exact, every
    /// byte they used checked; `verify --chain`, which reads every byte, names it. A flipped
    /// byte in a page the timeline reads stops it (exit 4), naming the segment.
    func testDamageOnlyAWholeReadSeesStopsVerifyChainNotTheRestoreOrTheTimeline() throws {
        let segments = try archiveSixCommits()
        let clean = try bosbackup("timeline", "--table", "ledger", "--key", "6", "--config", config)
        XCTAssertEqual(clean.status, 0, clean.stdout + clean.stderr)
        XCTAssertTrue(clean.stdout.contains("inserted"), clean.stdout)
        func pages(_ segment: WALSegmentRecord) throws -> [IndexedCommit] {
            try runAsync {
                try await Repository(target: try TargetFactory.open(url: "file://" + self.dir.file("nas"))).segmentIndex(segment, try XCTUnwrap(segment.index))
            }
        }
        let damaged = segments[2]
        let firstPage = try XCTUnwrap(try pages(damaged).first?.pages.first)
        let path = dir.file("nas") + "/" + damaged.objectKey
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[Int(firstPage.offset) - 6] ^= 0x01   // the CRC-32 of the commit's header member, just before its first page
        try bytes.write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try restored(at: "2026-12-01T10:06:00Z").1, [1, 2, 3, 4, 5, 6])
        let timeline = try bosbackup("timeline", "--table", "ledger", "--key", "6", "--config", config)
        XCTAssertEqual(timeline.status, 0, timeline.stdout + timeline.stderr)
        XCTAssertEqual(timeline.stdout, clean.stdout, "the same answer: no byte it used was damaged")
        let verify = try verifyChain()
        XCTAssertEqual(verify.status, 4)
        XCTAssertTrue(verify.stdout.contains(damaged.objectKey) || verify.stderr.contains(damaged.objectKey), verify.stdout + verify.stderr)
        // Commit 6's own segment: a byte in the middle of every page member it holds.
        let sixth = segments[4]
        let sixthPath = dir.file("nas") + "/" + sixth.objectKey
        var six = try Data(contentsOf: URL(fileURLWithPath: sixthPath))
        for page in try pages(sixth).flatMap(\.pages) { six[Int(page.offset) + Int(page.length) / 2] ^= 0x40 }
        try six.write(to: URL(fileURLWithPath: sixthPath))
        let stopped = try bosbackup("timeline", "--table", "ledger", "--key", "6", "--config", config)
        XCTAssertEqual(stopped.status, 4, stopped.stdout + stopped.stderr)
        XCTAssertTrue(stopped.stderr.contains(sixth.objectKey), stopped.stderr)
    }

    /// The timeline's two ways into a `BOSWAL03` segment give the same pages: streamed
    /// (a target that does not read ranges now: S3, an encrypted folder) or read by place
    /// (a plain folder). A flipped byte in a page is damage naming the segment when that
    /// page is read, either way; the segment's other pages still read.
    func testTheTimelineReadsASegmentTheSameStreamedOrByPlace() throws {
        let segments = try archiveSixCommits()
        let target = try TargetFactory.open(url: "file://" + dir.file("nas"))
        let pageSize = Int(try XCTUnwrap(try bos.int("PRAGMA page_size")))
        final class Versions: @unchecked Sendable { var all: [(number: UInt32, version: PageVersion)] = [] }
        func pages(_ record: WALSegmentRecord, streamed: Bool) throws -> [Result<[UInt8], Error>] {
            let stored = streamed ? nil : StoredPages(try XCTUnwrap(target as? ReadsRangesNow))
            let versions = Versions()
            try runAsync {
                try await Repository(target: target).timelineCommits(of: record, pageSize: pageSize, stored: stored) { versions.all += $0.pages }
            }
            let inflater = PageInflater(pageSize: pageSize)
            inflater.stored = stored
            return versions.all.map { page in Result { try inflater.bytes(page.version, page: page.number) } }
        }
        for record in segments {
            let (streamed, byPlace) = (try pages(record, streamed: true).map { try $0.get() }, try pages(record, streamed: false).map { try $0.get() })
            XCTAssertFalse(streamed.isEmpty)
            XCTAssertEqual(streamed, byPlace, record.objectKey)
        }
        let damaged = segments[4]
        let first = try XCTUnwrap(try runAsync {
            try await Repository(target: target).segmentIndex(damaged, try XCTUnwrap(damaged.index))
        }.first?.pages.first)
        let path = dir.file("nas") + "/" + damaged.objectKey
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[Int(first.offset) + Int(first.length) / 2] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: path))
        for streamed in [true, false] {
            let read = try pages(damaged, streamed: streamed)
            XCTAssertThrowsError(try read[0].get()) { error in
                guard case PointInTimeError.segmentDamaged(let key, _)? = error as? PointInTimeError else { return XCTFail("\(error)") }
                XCTAssertEqual(key, damaged.objectKey)
            }
            for other in read.dropFirst() { XCTAssertNoThrow(try other.get(), "streamed: \(streamed)") }
        }
    }

    func testACatalogHoleAndAForeignSegmentAreDamageToo() throws {
        let segments = try archiveSixCommits()
        // A segment whose bytes are another segment's (renamed into place), and a row the catalog lost.
        let nas = dir.file("nas")
        try FileManager.default.removeItem(atPath: nas + "/" + segments[4].objectKey)
        try FileManager.default.copyItem(atPath: nas + "/" + segments[3].objectKey, toPath: nas + "/" + segments[4].objectKey)
        let catalog = try Catalog(path: dir.file("catalog.db"))
        try catalog.db.run("DELETE FROM wal_segments WHERE object_key = ?", .text(segments[1].objectKey))
        let damaged = try verifyChain()
        XCTAssertEqual(damaged.status, 4, damaged.stdout)
        XCTAssertTrue(damaged.stdout.contains("txids 2…2 are in no segment before it"), damaged.stdout)
        XCTAssertTrue(damaged.stdout.contains("DAMAGED \(segments[4].objectKey)"), damaged.stdout)
    }

    func testTxidRestoresTheStateRightAfterThatCommit() throws {
        _ = try archiveSixCommits()
        XCTAssertEqual(try restored(["--txid", "0"]).1, [1], "txid 0: the base snapshot")
        XCTAssertEqual(try restored(["--txid", "3"]).1, [1, 2, 3, 4])
        XCTAssertEqual(try restored(["--txid", "5"]).1, [1, 2, 3, 4, 5, 6])
        let beyond = try restored(["--txid", "6"]).0
        XCTAssertEqual(beyond.status, 2, beyond.stderr)
        XCTAssertTrue(beyond.stderr.contains("txid 6 is not in the archive") && beyond.stderr.contains("1…5"), beyond.stderr)
        let both = try restored(["--txid", "3", "--at", "2026-12-01T10:03:30Z"]).0
        XCTAssertEqual(both.status, 2, both.stderr)
    }

    /// The host is gone with its catalog: a new catalog rebuilt from the target alone restores to the same commit.
    func testTheArchiveIsRecatalogedFromTheTargetAlone() throws {
        _ = try archiveSixCommits()
        let before = try restored(at: "2026-12-01T10:04:30Z").1
        try FileManager.default.removeItem(atPath: dir.file("catalog.db"))
        let rebuilt = try bosbackup("catalog", "rebuild", "--target", "nas", "--config", config)
        XCTAssertEqual(rebuilt.status, 0, rebuilt.stdout + rebuilt.stderr)
        XCTAssertTrue(rebuilt.stdout.contains("WAL archive: 1 generations, 5 segments"), rebuilt.stdout)
        XCTAssertEqual(try restored(at: "2026-12-01T10:04:30Z").1, before)
        XCTAssertEqual(before, [1, 2, 3, 4])
        XCTAssertEqual(try restored(["--txid", "5"]).1, [1, 2, 3, 4, 5, 6])
        let chain = try verifyChain()
        XCTAssertEqual(chain.status, 0, chain.stdout)
        // A second rebuild adds nothing.
        XCTAssertFalse(try bosbackup("catalog", "rebuild", "--target", "nas", "--config", config).stdout.contains("WAL archive:"))
    }

    /// Each archive target holds a base snapshot of its own (here the second one is
    /// taken after two more commits, which its segments then leave out): with the
    /// first target gone, the second restores the same states alone.
    func testEachTargetHasItsOwnBaseAndRestoresAlone() async throws {
        try writePolicy(archiveTargets: "nas: 1s, far: 1s")
        try commit(1)
        let policy = try PolicyLoader.load(path: config)
        let catalog = try Catalog(path: dir.file("catalog.db"))
        final class Once: @unchecked Sendable { var done = false }
        let once = Once()
        let archive = try XCTUnwrap(policy.archive(of: "bos"))
        func archiver(at minute: Int) -> WALArchiver {
            WALArchiver(catalog: catalog, clock: FixedClock(ISO8601.parse(at(minute))!), policy: policy, archive: archive,
                        scratch: dir.file("scratch")) { name in
            if name == "far", !once.done {   // between the two base snapshots
                once.done = true
                try self.commit(2)
                try self.commit(3)
            }
                return try TargetFactory.open(try XCTUnwrap(policy.target(named: name)))
            }
        }
        _ = try await archiver(at: 0).pass()
        try commit(4)
        _ = try await archiver(at: 1).pass()
        let generation = try XCTUnwrap(try catalog.generations(database: "bos", host: "store-0421").last)
        XCTAssertEqual(try catalog.base(of: generation, target: "nas").baseTxid, 0)
        XCTAssertEqual(try catalog.base(of: generation, target: "far").baseTxid, 2, "far's base holds commits 2 and 3 (txids 1, 2)")
        XCTAssertEqual(try catalog.segments(generation: generation.id, target: "far").map(\.firstTxid), [3])
        XCTAssertEqual(try catalog.segments(generation: generation.id, target: "nas").last?.lastTxid, 3)
        XCTAssertEqual(try bosbackup("verify", "--chain", "--config", config).status, 0)
        let now = at(1)
        XCTAssertEqual(try restored(["--at", now, "--from-target", "far"]).1, [1, 2, 3, 4])
        XCTAssertEqual(try restored(["--txid", "2", "--from-target", "far"]).1, [1, 2, 3], "far's base alone")

        // The first target is lost: the same states come from the second, said on stderr.
        try FileManager.default.removeItem(atPath: dir.file("nas"))
        let (fallback, rows) = try restored(["--at", now])
        XCTAssertEqual(fallback.status, 0, fallback.stderr)
        XCTAssertEqual(rows, [1, 2, 3, 4])
        XCTAssertTrue(fallback.stderr.contains("could not restore from nas") && fallback.stderr.contains("restored from the next archive target"), fallback.stderr)
        XCTAssertTrue(fallback.stdout.contains("from far"), fallback.stdout)
        // txid 1 is only on nas (far's base is past it): refused, exit 4, nothing written.
        XCTAssertEqual(try restored(["--txid", "1"]).0.status, 4)
        let chain = try bosbackup("verify", "--chain", "--config", config)
        XCTAssertEqual(chain.status, 4, chain.stdout)
        XCTAssertTrue(chain.stdout.contains("on nas") && !chain.stdout.contains("on far:"), chain.stdout)
    }

    /// The quarterly drill restores a random second of the archive from each archive target alone, timed in the report.
    func testTheDrillRestoresASecondOfTheArchiveFromEachTarget() throws {
        try writePolicy(archiveTargets: "nas: 1s, far: 1s")
        _ = try archiveSixCommits()
        let drill = try bosbackup("drill", "--report", dir.file("drills"), "--config", config)
        XCTAssertEqual(drill.status, 0, drill.stdout + drill.stderr)
        XCTAssertEqual(drill.stdout.components(separatedBy: "point in time: bos at").count - 1, 2, "one per archive target: " + drill.stdout)
        XCTAssertTrue(drill.stdout.contains("restored (txid"), drill.stdout)
        let report = try String(contentsOfFile: try XCTUnwrap(drill.stdout.split(separator: "\n").first { $0.hasPrefix("report: ") }.map { String($0.dropFirst(8)) }),
                                encoding: .utf8)
        XCTAssertEqual(report.components(separatedBy: "- Point in time: `restore --at").count - 1, 2, report)
        XCTAssertTrue(report.contains("from this target alone — ok in"), report)
        let json = try jsonObject(try bosbackup("drill", "--report", dir.file("drills"), "--json", "--config", config).stdout)
        let samples = (json["targets"] as? [[String: Any]])?.flatMap { ($0["point_in_time"] as? [[String: Any]]) ?? [] } ?? []
        XCTAssertEqual(samples.count, 2)
        XCTAssertTrue(samples.allSatisfy { $0["ok"] as? Bool == true && ($0["rows"] as? Int ?? 0) > 0 }, "\(samples)")
    }

    /// A slow target's queue stays bounded: past `spoolLimit` every target is shipped to at once.
    func testTheQueueForASlowTargetStaysBounded() async throws {
        try writePolicy(archiveTargets: "nas: 1s, far: 1h")
        try commit(1)
        let (follower, catalog) = try makeFollower()
        defer { follower.detach() }
        follower.spoolLimit = 256 << 10
        _ = try await follower.step(shipTo: ["nas"])
        let generation = try XCTUnwrap(try catalog.generations(database: "bos", host: "store-0421").last)
        try bos.execute("CREATE TABLE blobs(b BLOB)")
        for round in 1...12 {
            for _ in 0..<8 { try bos.execute("INSERT INTO blobs VALUES (randomblob(8000))") }
            _ = try await follower.step(shipTo: ["nas"])   // far's hour has not come
            _ = try await follower.settle()
            if round == 1 { XCTAssertTrue(try catalog.segments(generation: generation.id, target: "far").isEmpty, "under the limit far waits") }
        }
        XCTAssertFalse(try catalog.segments(generation: generation.id, target: "far").isEmpty, "past the limit far is shipped to early")
        // What far still lacks fits in the limit (256 KiB: about 32 commits of 8 KB) plus one round of 8.
        let behind = (try catalog.lastSegment(generation: generation.id, target: "nas")?.lastTxid ?? 0)
            - (try catalog.lastSegment(generation: generation.id, target: "far")?.lastTxid ?? 0)
        XCTAssertLessThanOrEqual(behind, 40)
    }

    /// Under the spool limit a slow target keeps its interval however much is queued for
    /// it: the queue is on disk, in unnamed files that leave nothing in scratch. (With the
    /// queue in memory, 16 MiB of it shipped every target at once: a cloud target at 10 s
    /// was sent a segment every second at 200 tx/s.)
    func testASlowTargetKeepsItsIntervalWhileItsQueueIsSpooled() async throws {
        try writePolicy(archiveTargets: "nas: 1s, far: 1h")
        try commit(1)
        let (follower, catalog) = try makeFollower()
        defer { follower.detach() }
        _ = try await follower.step(shipTo: ["nas", "far"])
        _ = try await follower.settle()
        let generation = try XCTUnwrap(try catalog.generations(database: "bos", host: "store-0421").last)
        let farBefore = try catalog.segments(generation: generation.id, target: "far").count
        try bos.execute("CREATE TABLE blobs(b BLOB)")
        for _ in 0..<24 {
            for _ in 0..<64 { try bos.execute("INSERT INTO blobs VALUES (randomblob(16000))") }   // 1 MiB a round
            _ = try await follower.step(shipTo: ["nas"])
            _ = try await follower.settle()
        }
        XCTAssertEqual(try catalog.segments(generation: generation.id, target: "far").count, farBefore, "24 MiB queued for far: it still waits for its hour")
        let scratch = try FileManager.default.contentsOfDirectory(atPath: dir.file("scratch"))
        XCTAssertFalse(scratch.contains { $0.hasPrefix("wal-spool") }, "the spool has no name in scratch: \(scratch)")
        _ = try await follower.flush()
        let nas = try catalog.lastSegment(generation: generation.id, target: "nas")?.lastTxid
        XCTAssertEqual(try catalog.lastSegment(generation: generation.id, target: "far")?.lastTxid, nas, "stopping ships far everything")
        for target in ["nas", "far"] {
            let into = dir.file("from-\(target).db")
            let result = try bosbackup("restore", "--at", "latest", "--from-target", target, "--into", into, "--config", config)
            XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
            XCTAssertEqual(try Database(path: into, mode: .readOnly).int("SELECT count(*) FROM blobs"), 24 * 64, "\(target)'s archive holds every row")
        }
    }

    /// A transaction longer than one read's limit is read whole. Cut at the limit, its start
    /// was dropped and read again at every poll: the follower never moved past it, and the
    /// BOS's WAL grew without bound behind it (8 GB on the day-long bench).
    func testATransactionLongerThanOneReadIsArchivedWhole() async throws {
        try writePolicy(archiveTargets: "nas: 1s")
        try commit(1)
        let (follower, catalog) = try makeFollower()
        defer { follower.detach() }
        follower.readLimit = 1   // 64 frames, the least a read takes
        _ = try await follower.step(shipTo: ["nas"])
        _ = try await follower.settle()
        let generation = try XCTUnwrap(try catalog.generations(database: "bos", host: "store-0421").last)
        try bos.execute("CREATE TABLE blobs(b BLOB)")
        try bos.execute("BEGIN; " + String(repeating: "INSERT INTO blobs VALUES (randomblob(3000)); ", count: 300) + "COMMIT")   // ~300 pages
        try commit(2)
        for _ in 0..<8 {   // a few polls; it never got there before
            _ = try await follower.step(shipTo: ["nas"])
            _ = try await follower.settle()
        }
        _ = try await follower.flush()
        XCTAssertEqual(try catalog.lastSegment(generation: generation.id, target: "nas")?.lastTxid, 3, "the table, the 300 rows, order 2")
        let into = dir.file("whole.db")
        let result = try bosbackup("restore", "--at", "latest", "--into", into, "--config", config)
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertEqual(try Database(path: into, mode: .readOnly).int("SELECT count(*) FROM blobs"), 300)
    }

    /// A folder target is shipped to by the age of what it waits for (its interval bounds
    /// how long a commit waits, not how often it is sent to): nothing goes while the oldest
    /// waiting commit is young, a segment goes once it would pass the deadline before the
    /// next step, an idle follower sends nothing, and a target the loop paces is not touched.
    func testAFolderTargetIsShippedToOnceItsOldestCommitMayReachTheDeadline() async throws {
        try writePolicy(archiveTargets: "nas: 1s, far: 1h")
        try commit(1)
        let clock = SteppedClock(Date())
        let (follower, catalog) = try makeFollower(clock: clock)
        defer { follower.detach() }
        _ = try await follower.step(shipTo: ["nas", "far"])
        _ = try await follower.settle()
        let generation = try XCTUnwrap(try catalog.generations(database: "bos", host: "store-0421").last)
        func segments(_ target: String) throws -> [Int64] { try catalog.segments(generation: generation.id, target: target).map(\.lastTxid) }
        let (nas, far) = (try segments("nas"), try segments("far"))
        func step(after seconds: TimeInterval) async throws {
            clock.advance(seconds)
            _ = try await follower.step(shipTo: [], deadlines: ["nas": 0.8])
            _ = try await follower.settle()
        }
        try await step(after: 0.2)
        XCTAssertEqual(try segments("nas"), nas, "nothing waits: nothing is sent")
        try commit(2)
        try await step(after: 0.2)   // read: made after the read 0.2 s ago began
        try await step(after: 0.2)   // at most 0.4 s old, and 0.6 s by the next step (steps 0.2 s apart)
        XCTAssertEqual(try segments("nas"), nas, "young: it waits for more")
        try await step(after: 0.2)   // 0.6 s old: 0.8 s by the next step
        // Commit 2 is the generation's txid 1: its base snapshot holds commit 1.
        XCTAssertEqual(try segments("nas"), nas + [1], "as old as the deadline: sent")
        try await step(after: 5)
        XCTAssertEqual(try segments("nas"), nas + [1], "idle: nothing more")
        XCTAssertEqual(try segments("far"), far, "far is paced by the loop, not by age")
    }

    /// SIGTERM: `archive` (and the daemon) ships what it read to every target, then exits 0;
    /// a target whose hour has not come still gets the commits queued for it.
    func testStoppingShipsWhatWasReadToEveryTarget() throws {
        for command in [["archive"], ["daemon"]] {
            try writePolicy(archiveTargets: "nas: 1s, far: 1h")
            try commit(command == ["archive"] ? 1 : 101)
            let launched = Date()
            let process = try ChildProcess(Fixtures.binary, command + ["--config", config])
            let catalogPath = dir.file("catalog.db")
            func lastTxid(_ target: String) -> Int64 {
                guard let catalog = try? Catalog(readingAt: catalogPath),
                      let g = try? catalog.generations(database: "bos", host: "store-0421").last else { return 0 }
                return (try? catalog.lastSegment(generation: g.id, target: target))?.lastTxid ?? 0
            }
            let deadline = Date().addingTimeInterval(60)
            // Once this process follows the WAL (it read after it started, and shipped what it found where due), one more commit.
            func following() -> Bool {
                guard let catalog = try? Catalog(readingAt: catalogPath), let g = try? catalog.generations(database: "bos", host: "store-0421").last,
                      g.endedAt == nil, let checked = try? catalog.archiveCheck(generation: g.id, target: "nas") else { return false }
                return checked > max(g.startedAt, launched)
            }
            while !following(), Date() < deadline, process.isRunning { usleep(50_000) }
            // Two commits: the first may go to far at once (a target is due until it was shipped
            // to), the second waits for far's hour.
            for k in 2...3 {
                let before = lastTxid("nas")
                try commit((command == ["archive"] ? 0 : 100) + k)
                while lastTxid("nas") <= before, Date() < deadline, process.isRunning { usleep(50_000) }
            }
            let far = lastTxid("far")
            XCTAssertLessThan(far, lastTxid("nas"), "\(command): far's interval has not come")
            kill(process.pid, SIGTERM)
            let stopped = try process.wait(timeout: 60)
            XCTAssertEqual(stopped.status, 0, stopped.stdout + stopped.stderr)
            XCTAssertEqual(lastTxid("far"), lastTxid("nas"), "\(command): far got what was read before stopping: " + stopped.stdout)
            XCTAssertTrue((stopped.stdout + stopped.stderr).contains("received SIGTERM"), stopped.stdout + stopped.stderr)
        }
    }

    /// A follower that reads the least it can (64 frames a read) after its first step, and a
    /// BOS that checkpoints at every commit (as SQLite's auto-checkpoint does past 1000
    /// pages): whenever no reader holds the log, its next write restarts it, and the
    /// follower's next step finds it reset and starts a new generation.
    func followerWithABOSThatCheckpointsAlways(targets: String, walLimit: Int64, checkpointAt: Int64) async throws -> (WALFollower, Catalog) {
        try writePolicy(archiveTargets: targets)
        try commit(1)
        let (follower, catalog) = try makeFollower()
        follower.walLimit = walLimit
        follower.readLimit = 0
        follower.checkpointAt = checkpointAt
        _ = try await follower.step(shipTo: ["nas"])
        try bos.execute("PRAGMA wal_autocheckpoint = 1")
        try bos.execute("CREATE TABLE blobs(b BLOB)")
        return (follower, catalog)
    }

    /// `count` commits of a row each, 3 frames of log a commit (the row's leaf, its parent, page 1).
    func insertBlobs(_ count: Int) throws {
        for _ in 0..<count { try bos.execute("INSERT INTO blobs VALUES (randomblob(4000))") }
    }

    /// Behind the BOS past `walLimit`, and losing ground (it reads 64 frames a poll, the BOS
    /// writes more): the follower lets go once and says so; the -wal file stays large after
    /// the log restarts (SQLite does not shrink it), which must not make it let go again at
    /// every poll.
    func testLettingGoOfALongWALHappensOnceAndIsNamed() async throws {
        let (follower, catalog) = try await followerWithABOSThatCheckpointsAlways(
            targets: "nas: 1s, far: 1h", walLimit: 1 << 20, checkpointAt: 64 << 20)   // only the limit is under test
        defer { follower.detach() }
        var polls = 0
        while try catalog.generations(database: "bos", host: "store-0421").count < 2, polls < 20 {
            // 75 frames of log a poll, 66 read (whole commits, 64 frames at least): the log
            // passes the limit at the fourth poll, the part not yet read has grown at the fifth.
            try insertBlobs(25)
            _ = try await follower.step(shipTo: ["nas"])
            polls += 1
        }
        XCTAssertLessThan(polls, 20, "it never let go")
        for k in 2...12 {
            try commit(k)                                   // the first restarts the log in the same, large file
            _ = try await follower.step(shipTo: ["nas"])
        }
        let generations = try catalog.generations(database: "bos", host: "store-0421")
        // What was read before letting go went to every target, far's hour or not: nothing of it is in the gap.
        XCTAssertEqual(try catalog.lastSegment(generation: generations[0].id, target: "far")?.lastTxid,
                       try catalog.lastSegment(generation: generations[0].id, target: "nas")?.lastTxid)
        XCTAssertGreaterThan(try catalog.lastSegment(generation: generations[0].id, target: "nas")?.lastTxid ?? 0, 64)
        _ = try await follower.flush()
        XCTAssertGreaterThan(DurableFile.fileSize(live + "-wal") ?? 0, Int64(follower.walLimit), "the file kept its size")
        XCTAssertEqual(generations.count, 2, "one new generation after letting go, not one per poll")
        let reason = generations[0].endReason ?? ""
        XCTAssertTrue(reason.contains("let go of the WAL when the log passed") && reason.contains("not yet read grew"), reason)
        XCTAssertEqual(try restored(at: "latest").1, (1...12).map(Int64.init))
    }

    /// Behind the BOS past `walLimit`, but catching up (the log a new base snapshot pinned,
    /// read 64 frames a poll while the BOS is quiet): the follower keeps its generation,
    /// and once caught up its swap lets the log restart. It used to let go as soon as its
    /// position passed the limit, however fast it read: after a long base, another base
    /// followed, and the day-long bench started 9 generations in 2 minutes.
    func testABehindFollowerCatchingUpPastTheLimitKeepsItsGeneration() async throws {
        // Had the follower let go, the log would restart at once, and the generation end.
        let (follower, catalog) = try await followerWithABOSThatCheckpointsAlways(
            targets: "nas: 1s", walLimit: 1 << 20, checkpointAt: 256 << 10)
        defer { follower.detach() }
        // 450 frames (a row's leaf, its parent, page 1): past the limit, under twice it.
        try insertBlobs(150)
        for k in 2...21 {
            try commit(k)
            _ = try await follower.step(shipTo: ["nas"])
        }
        let generations = try catalog.generations(database: "bos", host: "store-0421")
        XCTAssertEqual(generations.count, 1, generations.map { $0.endReason ?? "open" }.joined(separator: "; "))
        try commit(22)   // the first write after a swap that checkpointed restarts the log
        XCTAssertLessThan(try XCTUnwrap(try follower.logOnDisk()), Int64(follower.walLimit), "the log restarted")
        _ = try await follower.flush()
        XCTAssertEqual(try restored(at: "latest").1, (1...22).map(Int64.init))
    }

    /// However it is catching up, a follower still behind when the log on disk is past twice
    /// `walLimit` lets go, though its own position is not yet past the limit.
    func testAFollowerFarBehindLetsGoPastTwiceTheLimit() async throws {
        let (follower, catalog) = try await followerWithABOSThatCheckpointsAlways(
            targets: "nas: 1s", walLimit: 512 << 10, checkpointAt: 64 << 20)
        defer { follower.detach() }
        try insertBlobs(150)   // 450 frames: 1.8 MB
        _ = try await follower.step(shipTo: ["nas"])   // reads 64-odd frames (0.26 MB), then lets go
        for k in 2...3 {
            try commit(k)                               // the first restarts the log
            _ = try await follower.step(shipTo: ["nas"])
        }
        let generations = try catalog.generations(database: "bos", host: "store-0421")
        XCTAssertEqual(generations.count, 2, generations.map { $0.endReason ?? "open" }.joined(separator: "; "))
        let reason = generations.first?.endReason ?? ""
        XCTAssertTrue(reason.contains("let go of the WAL when the log passed 1.0 MB (twice its limit)"), reason)
        _ = try await follower.flush()
        XCTAssertEqual(try restored(at: "latest").1, (1...3).map(Int64.init))
    }

    /// Behind the targets after the WAL file was once long: the log is measured, not the
    /// file. SQLite keeps the file's size when the log restarts; measured by the file, every
    /// backpressure after one long spell let go of the WAL (27 generations in 150 s in the bench).
    func testBackpressureMeasuresTheLogNotTheFileSQLiteKeeps() async throws {
        try commit(1)
        let (follower, _) = try makeFollower()
        defer { follower.detach() }
        try bos.execute("CREATE TABLE blobs(b BLOB)")
        for _ in 0..<200 { try bos.execute("INSERT INTO blobs VALUES (randomblob(4000))") }   // ~1 MiB of log
        let wal = live + "-wal"
        let long = try XCTUnwrap(DurableFile.fileSize(wal))
        XCTAssertEqual(try follower.logOnDisk(), long, "a first log fills its file")
        // No reader holds it: a checkpoint, then the next write restarts the log in the same file.
        try bos.execute("PRAGMA wal_checkpoint(RESTART)")
        for k in 2...4 { try commit(k) }
        XCTAssertEqual(DurableFile.fileSize(wal), long, "the file kept its size")
        let header = try XCTUnwrap(try WALFile.header(path: wal))
        let start = WALPosition(salt1: header.salt1, salt2: header.salt2, frame: 0, checksum: header.checksum)
        let frames = try XCTUnwrap(try WALFile.commits(path: wal, header: header, after: start).last?.lastFrame)
        XCTAssertTrue((3...12).contains(frames), "three small commits in the new log: \(frames) frames")
        XCTAssertEqual(try follower.logOnDisk(), Int64(WALHeader.size + frames * (24 + header.pageSize)))
    }

    /// The streaming segment decoder gives the same commits whatever the chunks, and names a cut segment.
    func testASegmentDecodesTheSameInChunksOfAnySize() throws {
        let position = WALPosition(salt1: 7, salt2: 9, frame: 3, checksum: WALChecksum(s0: 1, s1: 2))
        var commits: [ArchivedCommit] = []
        for t in 1...5 {
            var pages: [(number: UInt32, bytes: [UInt8])] = []
            for p in 0..<t { pages.append((UInt32(p + 1), [UInt8](repeating: UInt8(t), count: 512))) }
            commits.append(ArchivedCommit(txid: Int64(t), seenAt: Date(timeIntervalSince1970: 1_000 + Double(t)), pageCount: UInt32(10 + t), pages: pages))
        }
        let link = SegmentLink(generation: "g1", previousSHA256: String(repeating: "ab", count: 32), from: position, to: position)
        let bytes = [UInt8](WALSegment.encode(commits, pageSize: 512, link: link))
        for size in [1, 7, 511, 4_096, bytes.count] {
            var stream = WALSegment.Stream()
            var got: [ArchivedCommit] = []
            for start in stride(from: 0, to: bytes.count, by: size) {
                try bytes[start..<min(bytes.count, start + size)].withUnsafeBytes { try stream.feed($0) { got.append($0) } }
            }
            try stream.finish()
            XCTAssertEqual(got.map(\.txid), [1, 2, 3, 4, 5], "chunks of \(size)")
            XCTAssertEqual(got.map { (c: ArchivedCommit) in c.pages.map { $0.bytes } }, commits.map { (c: ArchivedCommit) in c.pages.map { $0.bytes } })
            XCTAssertEqual(stream.link, link)
        }
        var cut = WALSegment.Stream()
        try bytes.dropLast(100).withUnsafeBytes { try cut.feed($0) { _ in } }
        XCTAssertThrowsError(try cut.finish()) { XCTAssertTrue("\($0)".contains("cut short"), "\($0)") }
    }

    /// A WAL that grew while the follower was away is read a piece at a time, and
    /// coverage is claimed only once a read reached the log's end.
    func testALongLogIsReadInPiecesAndCoverageWaitsForItsEnd() async throws {
        try commit(1)
        let (follower, catalog) = try makeFollower()
        defer { follower.detach() }
        follower.readLimit = 64 << 10   // a read takes at most 64 frames
        _ = try await follower.step(shipTo: ["nas"])
        _ = try await follower.settle()
        let generation = try XCTUnwrap(try catalog.generations(database: "bos", host: "store-0421").last)
        try bos.execute("CREATE TABLE blobs(b BLOB)")
        for k in 2...101 {
            try bos.execute("INSERT INTO blobs VALUES (randomblob(3000))")
            try commit(k)
        }
        let written = Date()
        _ = try await follower.step(shipTo: ["nas"])
        _ = try await follower.settle()
        XCTAssertLessThan(try catalog.archiveCheck(generation: generation.id, target: "nas") ?? .distantPast, written,
                          "one piece read: no claim to cover what it has not read")
        var steps = 1
        while (try catalog.archiveCheck(generation: generation.id, target: "nas") ?? .distantPast) < written, steps < 100 {
            _ = try await follower.step(shipTo: ["nas"])
            _ = try await follower.settle()
            steps += 1
        }
        XCTAssertGreaterThan(steps, 2, "read over several polls")
        XCTAssertLessThan(steps, 100)
        XCTAssertEqual(try catalog.generations(database: "bos", host: "store-0421").count, 1)
        XCTAssertEqual(try restored(at: "latest").1, (1...101).map(Int64.init))
    }

    /// A drill whose point-in-time restore found damage is damage (exit 4), not "could not check" (exit 1).
    func testADamagedArchiveInTheDrillIsDamage() throws {
        _ = try archiveSixCommits()
        let snapshot = try XCTUnwrap(try Catalog(readingAt: dir.file("catalog.db")).snapshots().first)
        let passed = VerificationResult(snapshot: snapshot, checksumOK: true, gzipOK: true, integrityOK: true, countsOK: true, seconds: 0, problems: [])
        var target = DrillTargetResult(target: "nas", targetURL: "", samples: [DrillSample(pick: .newest, verification: passed)], problems: [])
        target.pointInTime = [PointInTimeSample(database: "bos", at: Date(), problem: "archived WAL segment … is damaged", damaged: true)]
        let damaged = DrillResult(startedAt: Date(), finishedAt: Date(), timeZone: .current, rto: 3_600, targets: [target])
        XCTAssertFalse(damaged.ok)
        XCTAssertFalse(damaged.couldNotCheck, "damage found in the archive")
        target.pointInTime[0].damaged = false   // e.g. the target could not be reached
        XCTAssertTrue(DrillResult(startedAt: Date(), finishedAt: Date(), timeZone: .current, rto: 3_600, targets: [target]).couldNotCheck)
    }
}
