@testable import BOSBackup
import Foundation
import XCTest

/// Eight weeks of the shipped policy, one `run` an hour, with a month end and
/// a three-day machine outage: exactly which snapshots exist and which
/// retention deleted, and one catch-up run per job after the outage. An
/// incremental job beside them keeps whole chains: nothing kept loses a parent.
final class SchedulerSimulationTests: XCTestCase {
    let zone = TimeZone(identifier: "Asia/Shanghai")!
    func local(_ text: String) -> Date { ISO8601.parse(text + "+08:00")! }
    func stamp(_ date: Date) -> String { String(ISO8601.string(date, in: zone).prefix(16)) }

    /// The shipped policy with its targets pointed at local folders (the same jobs, crons and retention).
    func shippedPolicy(in dir: TempDir) throws -> Policy {
        var policy = try PolicyLoader.load(path: Fixtures.repoRoot + "/schedules/bos.yml")
        policy.sourceDatabase = dir.file("live.db")
        policy.targets = policy.targets.map { .init(name: $0.name, url: "file://" + dir.file($0.name)) }
        return policy
    }

    func testEightWeeksHourlyWithOutage() throws {
        let dir = TempDir()
        try Fixtures.sampleDatabase(at: dir.file("live.db"), orders: 100)
        var policy = try shippedPolicy(in: dir)
        policy.jobs.append(Policy.Job(name: "cloud-incremental", target: "cloud", cron: try CronExpression("0 22 * * *"),
                                      retention: .init(keepDaily: 7), incremental: .init(fullEvery: 7)))
        let catalog = try Catalog(path: dir.file("catalog.db"))
        let start = local("2026-11-30T00:00:00")                  // a Monday
        let outage = local("2026-12-19T12:00:00")..<local("2026-12-22T12:00:00")
        let end = start.addingTimeInterval(56 * 86_400)          // 2027-01-25 00:00, across the month and year end
        var tick = start
        var ticks = 0
        while tick < end {
            defer { tick = tick.addingTimeInterval(3_600) }
            if outage.contains(tick) { continue }
            ticks += 1
            // The BOS takes an order every evening, so the increments are not empty.
            if Calendar.current.dateComponents(in: zone, from: tick).hour == 21 {
                _ = try SampleBOS.addOrders(to: dir.file("live.db"), count: 1, at: tick, seed: UInt64(ticks))
            }
            let run = ScheduledRun(policy: policy, catalog: catalog, clock: FixedClock(tick), scratch: dir.file("scratch")) {
                try TargetFactory.open(url: policy.target(named: $0)!.url)
            }
            _ = try runAsync { try await run.recoverFromCrash() }
            let outcomes = try runAsync { try await run.execute() }
            XCTAssertTrue(outcomes.allSatisfy(\.succeeded), "\(stamp(tick)): \(outcomes.compactMap(\.error))")
        }
        XCTAssertEqual(ticks, 56 * 24 - 72)

        // --- local-weekly: Sundays 00:00, keep_last 8 ---
        let weeklyRuns = try catalog.runs(job: "local-weekly").reversed().map { stamp($0.startedAt) }
        XCTAssertEqual(weeklyRuns, ["2026-11-30T00:00",   // never ran: due at once
                                    "2026-12-06T00:00", "2026-12-13T00:00",
                                    "2026-12-22T12:00",   // catch-up for Sunday 20 Dec, missed in the outage
                                    "2026-12-27T00:00", "2027-01-03T00:00", "2027-01-10T00:00", "2027-01-17T00:00", "2027-01-24T00:00"])
        XCTAssertEqual(try catalog.snapshots(job: "local-weekly").map { stamp($0.takenAt) }, Array(weeklyRuns.dropFirst()),
                       "keep_last 8 deleted only the oldest of 9")

        // --- cloud-daily: 22:00 daily, keep_daily 30 + keep_monthly 12 ---
        let dailyRuns = try catalog.runs(job: "cloud-daily").reversed()
        var expectedRuns = ["2026-11-30T00:00"]
        var day = local("2026-11-30T22:00:00")
        while day < end {
            if day == local("2026-12-22T22:00:00") { expectedRuns.append("2026-12-22T12:00") }  // one catch-up for 19, 20, 21 Dec
            if !outage.contains(day) { expectedRuns.append(stamp(day)) }
            day = day.addingTimeInterval(86_400)
        }
        XCTAssertEqual(dailyRuns.map { stamp($0.startedAt) }, expectedRuns)
        XCTAssertEqual(dailyRuns.count, 55)
        let catchUp = try XCTUnwrap(dailyRuns.first { stamp($0.startedAt) == "2026-12-22T12:00" })
        XCTAssertEqual(catchUp.scheduledFor.map(stamp), "2026-12-21T22:00", "missed fires coalesce into the latest one")

        // Kept: the newest of each of the last 30 days (26 Dec – 24 Jan) and of each month (Nov 30 22:00 for November).
        var expectedKept = ["2026-11-30T22:00"]
        day = local("2026-12-26T22:00:00")
        while day < end { expectedKept.append(stamp(day)); day = day.addingTimeInterval(86_400) }
        let kept = try catalog.snapshots(job: "cloud-daily").map { stamp($0.takenAt) }
        XCTAssertEqual(kept, expectedKept)
        XCTAssertEqual(kept.count, 31)
        let deleted = Set(expectedRuns).subtracting(kept)
        XCTAssertEqual(deleted.count, 24)
        XCTAssertTrue(deleted.contains("2026-11-30T00:00") && deleted.contains("2026-12-22T12:00") && deleted.contains("2026-12-18T22:00"))

        // --- cloud-incremental: 22:00 daily, chains of at most 7, keep_daily 7 ---
        let incrementalRuns = try catalog.runs(job: "cloud-incremental")
        XCTAssertEqual(incrementalRuns.count, dailyRuns.count, "the same fire times as cloud-daily")
        let incrementals = try catalog.snapshots(job: "cloud-incremental")
        let byID = Dictionary(uniqueKeysWithValues: incrementals.map { ($0.id, $0) })
        for snapshot in incrementals {
            let chain = try catalog.chain(of: snapshot)
            XCTAssertEqual(chain.last?.layout.kind, .full, "\(stamp(snapshot.takenAt)): its chain reaches its full")
            XCTAssertLessThanOrEqual(chain.count, 7)
            XCTAssertTrue(chain.allSatisfy { byID[$0.id] != nil }, "every link of a kept snapshot is kept")
        }
        // The last 7 days, plus the parents back to the full the oldest of them needs; and the
        // job's newest verified snapshot with its chain, which retention always keeps: the
        // drill of 1 January verifies a random older snapshot per target, at times one of this
        // job's (a bound of 13 failed then: 14 kept, a December chain among them).
        var needed = Set<String>()
        for snapshot in incrementals.suffix(7) { for link in try catalog.chain(of: snapshot) { needed.insert(link.id) } }
        let verified = try incrementals.last { try catalog.lastVerification(of: $0.id)?.ok == true }
        if let verified { for link in try catalog.chain(of: verified) { needed.insert(link.id) } }
        XCTAssertEqual(Set(incrementals.map(\.id)), needed,
                       incrementals.map { "\(stamp($0.takenAt)) \($0.layout.kind)\($0.id == verified?.id ? " verified" : "")" }.joined(separator: ", "))
        let verifiedChain = try verified.map { try catalog.chain(of: $0).count } ?? 0
        XCTAssertLessThanOrEqual(incrementals.count, 13 + verifiedChain)
        XCTAssertTrue(incrementals.contains { $0.layout.kind == .incremental })
        let newest = try XCTUnwrap(incrementals.last)
        let restored = dir.file("newest-incremental.db")
        let fetched = try runAsync {
            try await SnapshotFetcher(jobs: 2, catalog: catalog).fetch(newest, from: try FileTarget(url: "file://" + dir.file("cloud")), into: restored)
        }
        XCTAssertTrue(fetched.databaseMatches, "\(fetched.problems)")
        let incrementalDeleted = incrementalRuns.count - incrementals.count

        // Every deletion is audited, and the target holds exactly the cataloged snapshots.
        XCTAssertEqual(try catalog.auditTrail(limit: 1000).filter { $0.action == "delete" }.count, 24 + 1 + incrementalDeleted)
        XCTAssertTrue(try catalog.pendingDeletions().isEmpty)
        for name in ["nas", "cloud"] {
            let stored = try runAsync { try await FileTarget(url: "file://" + dir.file(name)).list(prefix: "") }
            let expected = try catalog.snapshots().filter { $0.target == name }.flatMap { [$0.objectKey, $0.manifestKey] + [$0.layout.pagemapKey].compactMap { $0 } }
            XCTAssertEqual(Set(stored.map(\.key)), Set(expected), name)
        }
    }
}
