@testable import BOSBackup
import Foundation
import XCTest

/// The real binary killed with SIGKILL at random moments during backup,
/// retention and recover — the job is incremental, so kills land in fulls,
/// incrementals and chain-aware retention. After each kill: every cataloged snapshot exists,
/// has its checksum and restores; the next run leaves no temporary file and
/// completes the job; an interrupted `recover --apply` left live either
/// untouched or fully recovered. Prints `crash: N kills, …`.
/// `CRASH_KILLS` sets the number of kills (30 in make test, 200 in make torture).
final class CrashSuiteTests: XCTestCase {
    func testKillsAtRandomMomentsLoseNothing() throws {
        let kills = Int(ProcessInfo.processInfo.environment["CRASH_KILLS"] ?? "30") ?? 30
        let dir = TempDir()
        let live = dir.file("live.db")
        try Fixtures.sampleDatabase(at: live, orders: 6_000)
        let config = dir.file("bos.yml")
        try """
            timezone: Asia/Shanghai
            source: { database: live.db }
            catalog: catalog.db
            compression: { block_size: 128KiB }
            targets: { nas: { url: nas } }
            jobs:
              hourly: { target: nas, cron: "0 * * * *", incremental: { full_every: 4 }, retention: { keep_last: 3 } }
            """.write(toFile: config, atomically: true, encoding: .utf8)
        var rng = SeededRandom(seed: 20261127)
        var hour = ISO8601.parse("2026-11-29T00:00:00+08:00")!
        var lostSnapshots = 0, badRows = 0, halfRecoveries = 0, recoverKills = 0
        let nas = try FileTarget(url: "file://" + dir.file("nas"))

        func catalog() throws -> Catalog { try Catalog(path: dir.file("catalog.db")) }
        func killed(_ arguments: [String], afterMicroseconds delay: UInt32) throws -> Int32 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Fixtures.binary)
            p.arguments = arguments
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            usleep(delay)                // the fault: a kill at a random moment, not a synchronisation
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            return p.terminationStatus
        }

        for round in 0..<kills {
            hour = hour.addingTimeInterval(3_600)
            let now = ISO8601.string(hour)
            if round % 5 == 4, let newest = try catalog().snapshots().last {
                // Interrupt a recovery of orders lost from live.
                let db = try Database(path: live)
                let top = try db.int("SELECT max(id) FROM orders")
                try db.execute("DELETE FROM order_items WHERE order_id > \(top - 50); DELETE FROM payments WHERE order_id > \(top - 50); DELETE FROM shipments WHERE order_id > \(top - 50); DELETE FROM inventory_movements WHERE order_id > \(top - 50); DELETE FROM orders WHERE id > \(top - 50)")
                let before = try db.int("SELECT count(*) FROM orders")
                _ = try killed(["recover", "--snapshot", newest.id, "--live", live, "--table", "orders", "--apply", "--config", config],
                               afterMicroseconds: UInt32.random(in: 0...400_000, using: &rng))
                recoverKills += 1
                let after = try Database(path: live).int("SELECT count(*) FROM orders")
                let recovered = newest.tables["orders"] ?? -1
                if after != before && after != recovered { halfRecoveries += 1 }
                XCTAssertEqual(try Database(path: live).scalar("PRAGMA integrity_check")?.string, "ok")
                // Put live back in one piece for the next rounds.
                XCTAssertEqual(try bosbackup("recover", "--snapshot", newest.id, "--live", live, "--table", "orders", "--apply", "--config", config).status, 0)
            } else {
                _ = try SampleBOS.addOrders(to: live, count: 5, at: hour, seed: UInt64(round))
                _ = try killed(["run", "--config", config, "--now", now], afterMicroseconds: UInt32.random(in: 0...600_000, using: &rng))
            }
            // Everything still cataloged is whole.
            for snapshot in try catalog().snapshots() {
                let path = nas.path(for: snapshot.objectKey)
                if !DurableFile.exists(path) || (try? SHA256Stream.hex(ofFile: path)) != snapshot.sha256 { lostSnapshots += 1 }
                // A chain needs every link: a kept incremental's parent is cataloged too.
                if let parent = snapshot.layout.parentID, try catalog().snapshot(id: parent) == nil { lostSnapshots += 1 }
            }
            // The next run cleans up and completes the job.
            let next = try bosbackup("run", "--config", config, "--now", ISO8601.string(hour.addingTimeInterval(60)))
            XCTAssertEqual(next.status, 0, next.stdout + next.stderr)
            XCTAssertEqual(nas.staleTemporaryFiles(), [], "round \(round)")
            let scratch = (try? FileManager.default.contentsOfDirectory(atPath: dir.file("scratch"))) ?? []
            XCTAssertEqual(scratch.filter { $0.hasPrefix(".bosbackup-") }, [], "round \(round)")
            badRows += try catalog().runs().filter { $0.status == .running }.count
            XCTAssertFalse(try catalog().snapshots().isEmpty)
        }
        // Every snapshot left restores.
        let verify = try bosbackup("verify", "--latest", "10", "--config", config)
        XCTAssertEqual(verify.status, 0, verify.stdout)
        print("crash: \(kills) kills (\(recoverKills) during recover), \(lostSnapshots) lost, \(badRows) bad catalog rows, \(halfRecoveries) half recoveries")
        XCTAssertEqual(lostSnapshots, 0)
        XCTAssertEqual(badRows, 0)
        XCTAssertEqual(halfRecoveries, 0)
    }
}
