@testable import BOSBackup
import Foundation
import XCTest

/// `base_every` and `retain` (issue #15 item 5): the archiver starts a new
/// generation on fresh base snapshots while the BOS keeps writing, with no gap
/// between them; `prune` then drops whole generations past `retain`, their
/// segments, markers and the base snapshots nothing needs any more.
final class ArchiveRotationTests: ArchiveTestCase {
    func testGenerationsRotateWithNoGapAndRetentionDropsTheOldOnes() throws {
        bos = nil   // the writer process is the BOS
        try writePolicy(archiveTargets: "nas: 1s, far: 1s", options: "base_every: 2s, retain: 1h")
        let writer = try ledgerWriter(seconds: nil)
        let archiver = try ChildProcess(Fixtures.binary, ["archive", "--config", config])
        defer { if archiver.isRunning { kill(archiver.pid, SIGTERM); _ = try? archiver.wait(timeout: 30) } }
        let catalogPath = dir.file("catalog.db")
        func generations() -> [WALGeneration] {
            (try? Catalog(readingAt: catalogPath).generations(database: "bos", host: "store-0421")) ?? []
        }
        let deadline = Date().addingTimeInterval(120)
        while generations().count < 9, Date() < deadline, archiver.isRunning { usleep(100_000) }
        kill(writer.pid, SIGTERM)
        _ = try writer.wait(timeout: 30)
        let commits = try commitLog()
        // Until both targets have everything (bounded), then stop the archiver.
        let end = Date(timeIntervalSince1970: (commits.last!.began + 1).rounded(.up))
        func covered() -> Date {
            guard let catalog = try? Catalog(readingAt: catalogPath), let open = try? catalog.generations(database: "bos", host: "store-0421").last
            else { return .distantPast }
            return ["nas", "far"].map { (try? catalog.archiveCheck(generation: open.id, target: $0)) ?? nil ?? .distantPast }.min()!
        }
        while covered() < end, Date() < deadline, archiver.isRunning { usleep(100_000) }
        kill(archiver.pid, SIGTERM)
        let stopped = try archiver.wait(timeout: 30)
        XCTAssertEqual(stopped.status, 0, stopped.stdout + stopped.stderr)

        let rotated = generations()
        XCTAssertGreaterThanOrEqual(rotated.count, 9, stopped.stdout)
        for (old, new) in zip(rotated, rotated.dropFirst()) {
            XCTAssertTrue(old.endReason?.contains("continued by generation \(SnapshotID.short(new.id))") ?? false, old.endReason ?? "open")
        }
        XCTAssertTrue(stopped.stdout.contains("a new base snapshot every 2s"), stopped.stdout)
        let chain = try bosbackup("verify", "--chain", "--config", config)
        XCTAssertEqual(chain.status, 0, chain.stdout)
        XCTAssertFalse(chain.stdout.contains("not covered"), "no gap between rotated generations: " + chain.stdout)
        // Every second of the run restores exactly, on both sides of each switch.
        var rng = SeededRandom(seed: 20261203)
        let (exact, refused) = try checkRandomRestores(12, commits: commits, settled: 3, using: &rng)
        let catalog = try Catalog(readingAt: catalogPath)
        let newestCovered = try catalog.coverageEnd(of: rotated.last!)
        for generation in rotated.dropFirst() {
            let at = Date(timeIntervalSince1970: generation.startedAt.timeIntervalSince1970.rounded(.up))
            guard at <= newestCovered else { continue }   // the last switch may come after the last commit
            let (result, rows) = try restored(at: ISO8601.string(at))
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertGreaterThanOrEqual(rows.last ?? 0, Int64(commits.filter { $0.began <= at.timeIntervalSince1970 - 3 }.count))
        }
        XCTAssertEqual(try restored(at: "latest").1.count, commits.count, "after the last commit everything is there")
        try checkPinnedStates(rotated)

        // The timeline walks across every rotation, on one image: each commit once, none twice.
        let first = rotated[0]
        let inFirstBase = try restored(["--txid", "0", "--generation", first.id]).1.count
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let since = formatter.string(from: Date(timeIntervalSince1970: (first.startedAt.timeIntervalSince1970 * 1000).rounded(.up) / 1000))
        let lastK = commits.last!.k
        let timeline = try bosbackup("timeline", "--table", "ledger", "--key", "\(lastK)", "--since", since, "--json", "--config", config)
        XCTAssertEqual(timeline.status, 0, timeline.stderr)
        let json = try jsonObject(timeline.stdout)
        let walked = try XCTUnwrap(json["walked"] as? [String: Any])
        XCTAssertEqual(walked["generation"] as? String, first.id)
        XCTAssertEqual(walked["last_generation"] as? String, rotated.last!.id)
        let fromTxid = try XCTUnwrap(walked["from_txid"] as? Int)
        XCTAssertEqual(walked["commits"] as? Int, Int(lastK) - inFirstBase - fromTxid, "every commit after the start walked once")
        XCTAssertEqual((json["events"] as? [[String: Any]])?.map { $0["kind"] as? String }, ["inserted"])
        print("archive rotation: \(commits.count) commits, \(rotated.count) generations, \(exact) exact restores, \(refused) refused before the first")

        // Two hours later every generation but the newest is past retain: 1h.
        let later = ISO8601.string(end.addingTimeInterval(7_200))
        let dry = try bosbackup("prune", "--dry-run", "--now", later, "--config", config)
        XCTAssertTrue(dry.stdout.contains("archive of bos: would remove \(rotated.count - 1) generations"), dry.stdout)
        XCTAssertTrue(dry.stdout.contains("and 14 base snapshots"), "the dry run counts every target's bases: " + dry.stdout)
        XCTAssertEqual(generations().count, rotated.count, "a dry run removes nothing")
        let pruned = try bosbackup("prune", "--now", later, "--config", config)
        XCTAssertEqual(pruned.status, 0, pruned.stdout + pruned.stderr)
        XCTAssertTrue(pruned.stdout.contains("archive of bos: removed \(rotated.count - 1) generations"), pruned.stdout)
        XCTAssertEqual(generations().map(\.id), [rotated.last!.id])
        for old in rotated.dropLast() {
            for target in ["nas", "far"] {
                let folder = dir.file(target) + "/store-0421/bos/wal/" + old.id
                XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [], [], "\(folder) emptied")
            }
        }
        // Bases come in chains of 7 links: the newest base's chain is kept, the chain before it is gone.
        let kept = Set(try catalog.snapshots(job: Policy.archiveJobName).map(\.id))
        let newest = try XCTUnwrap(generations().last)
        var needed = Set<String>()
        for target in ["nas", "far"] {
            let base = try XCTUnwrap(try catalog.snapshot(id: try catalog.base(of: newest, target: target).snapshot))
            needed.formUnion(try catalog.chain(of: base).map(\.id))
        }
        XCTAssertEqual(kept, needed, "exactly the bases the newest generation needs are left")
        XCTAssertTrue(pruned.stdout.contains("and 14 base snapshots"), "a whole chain of 7 per target: " + pruned.stdout)
        XCTAssertEqual(try restored(at: "latest").1.count, commits.count, "the newest generation still restores")
        XCTAssertEqual(try bosbackup("verify", "--chain", "--config", config).status, 0)
    }

    /// `verify --chain --restore`: the newest pinned state rebuilt from each target equals
    /// the next generation's base; a segment changed so that its own SHA-256 and the
    /// catalog agree (a re-written segment) is still caught by that comparison.
    func checkPinnedStates(_ rotated: [WALGeneration]) throws {
        let whole = try bosbackup("verify", "--chain", "--restore", "--config", config)
        XCTAssertEqual(whole.status, 0, whole.stdout + whole.stderr)
        for target in ["nas", "far"] {
            XCTAssertTrue(whole.stdout.contains("rebuilt from \(target)") && whole.stdout.contains("byte for byte the image of snapshot"), whole.stdout)
        }
        let catalog = try Catalog(path: dir.file("catalog.db"))
        let pinnedGeneration = try XCTUnwrap(rotated.dropLast().last { try !catalog.checks(generation: $0.id).isEmpty })
        let pin = try XCTUnwrap(try catalog.checks(generation: pinnedGeneration.id).first)
        let segment = try XCTUnwrap(try catalog.segments(generation: pinnedGeneration.id, target: "nas").first { $0.firstTxid <= pin.txid && pin.txid <= $0.lastTxid })
        // Re-written: one byte of a page the pinned commit wrote, gzip again (as BOSWAL02, whole: no
        // index), the catalog told its new SHA-256 and that it has no index.
        let path = dir.file("nas") + "/" + segment.objectKey
        let gunzip = try runProcess("/bin/sh", ["-c", "gzip -dc < '\(path)' > '\(path).raw'"])
        XCTAssertEqual(gunzip.status, 0, gunzip.stderr)
        var decoded = try WALSegment.decode(try Data(contentsOf: URL(fileURLWithPath: path + ".raw")))
        let index = try XCTUnwrap(decoded.commits.lastIndex { $0.txid <= pin.txid })
        decoded.commits[index].pages[0].bytes[decoded.pageSize - 1] ^= 0x5A
        try WALSegment.encode(decoded.commits, pageSize: decoded.pageSize, link: try XCTUnwrap(decoded.link))
            .write(to: URL(fileURLWithPath: path + ".raw"))
        XCTAssertEqual(try runProcess("/bin/sh", ["-c", "gzip -c < '\(path).raw' > '\(path)' && rm '\(path).raw'"]).status, 0)
        try catalog.db.run("""
            UPDATE wal_segments SET sha256 = ?, index_offset = NULL, index_length = NULL, index_sha256 = NULL WHERE object_key = ? AND target = 'nas'
            """, .text(try SHA256Stream.hex(ofFile: path)), .text(segment.objectKey))
        let caught = try bosbackup("verify", "--chain", "--restore", "--config", config)
        XCTAssertEqual(caught.status, 4, caught.stdout + caught.stderr)
        XCTAssertTrue(caught.stdout.contains("FAILED") && caught.stdout.contains("rebuilt from nas"), caught.stdout)
        XCTAssertFalse(caught.stdout.contains("FAILED  txid \(pin.txid) of generation \(SnapshotID.short(pinnedGeneration.id)) rebuilt from far"), caught.stdout)
    }
}
