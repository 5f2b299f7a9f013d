@testable import BOSBackup
import Foundation
import XCTest

final class PolicyTests: XCTestCase {
    func testShippedPolicyIsTheDocumentedDoubleBackup() throws {
        let policy = try PolicyLoader.load(path: Fixtures.repoRoot + "/schedules/bos.yml")
        XCTAssertEqual(policy.timeZone.identifier, "Asia/Shanghai")
        XCTAssertEqual(policy.targets.map(\.name), ["nas", "cloud"])
        XCTAssertEqual(policy.target(named: "cloud")?.encryptionKeyFile, "/etc/bosbackup/cloud.key")
        let weekly = try XCTUnwrap(policy.job(named: "local-weekly"))
        XCTAssertEqual(weekly.target, "nas")
        XCTAssertEqual(weekly.retention, .init(keepLast: 8))
        let daily = try XCTUnwrap(policy.job(named: "cloud-daily"))
        XCTAssertEqual(daily.target, "cloud")
        XCTAssertEqual(daily.retention, .init(keepDaily: 30, keepMonthly: 12))
        XCTAssertEqual(policy.drill?.rto, 4 * 3600)
        // Sunday 00:00 and 22:00 daily, in Shanghai time.
        let zone = policy.timeZone
        let after = ISO8601.parse("2026-11-27T12:00:00+08:00")!
        XCTAssertEqual(weekly.cron.next(after: after, in: zone).map { ISO8601.string($0, in: zone) }, "2026-11-29T00:00:00+08:00")
        XCTAssertEqual(daily.cron.next(after: after, in: zone).map { ISO8601.string($0, in: zone) }, "2026-11-27T22:00:00+08:00")
    }

    func error(_ yaml: String) -> PolicyError? {
        do { _ = try PolicyLoader.parse(yaml, file: "bos.yml", folder: "/etc/bosbackup"); return nil } catch let e as PolicyError { return e } catch {
            XCTFail("unexpected \(error)"); return nil
        }
    }

    let base = """
        timezone: Asia/Shanghai
        source: { database: /var/lib/bos/bos.db }
        targets:
          nas: { url: file:///mnt/nas }
        jobs:
          weekly:
            target: nas
            cron: "0 0 * * 0"
        """

    func testMistakesNameKeyPathAndLine() throws {
        let cases: [(String, String, Int, String)] = [
            (base.replacingOccurrences(of: "target: nas", with: "target: cloud"), "jobs.weekly.target", 7, "unknown target \"cloud\""),
            (base.replacingOccurrences(of: "0 0 * * 0", with: "0 25 * * 0"), "jobs.weekly.cron", 8, "hour"),
            (base.replacingOccurrences(of: "0 0 * * 0", with: "0 0 31 2 *"), "jobs.weekly.cron", 8, "day-of-month"),
            (base + "\n    retention: { keep_lots: 3 }", "jobs.weekly.retention.keep_lots", 9, "unknown key"),
            (base + "\n    grace: soon", "jobs.weekly.grace", 9, "bad duration"),
            (base.replacingOccurrences(of: "Asia/Shanghai", with: "Mars/Olympus"), "timezone", 1, "unknown time zone"),
            (base + "\ndrill: { cron: \"0 3 1 1,4,7,10 *\", rto: 4 hours }", "drill.rto", 9, "bad duration"),
            (base + "\nretention: 3", "retention", 9, "unknown key"),
            (base.replacingOccurrences(of: "file:///mnt/nas", with: "ftp://nas/x"), "targets.nas.url", 4, "unsupported URL"),
        ]
        for (yaml, keyPath, line, fragment) in cases {
            let e = try XCTUnwrap(error(yaml), "accepted: \(yaml)")
            XCTAssertEqual(e.keyPath, keyPath, e.description)
            XCTAssertEqual(e.line, line, e.description)
            XCTAssertTrue(e.description.contains(fragment), e.description)
            XCTAssertTrue(e.description.hasPrefix("bos.yml:\(line): \(keyPath): "), e.description)
            XCTAssertFalse(e.description.contains("\n"), "one line: \(e.description)")
        }
    }

    func testRelativePathsResolveAgainstTheFilesFolder() throws {
        let policy = try PolicyLoader.parse("""
            source: { database: live/bos.db }
            catalog: catalog.db
            targets: { nas: { url: nas } }
            """, file: "x.yml", folder: "/srv/demo")
        XCTAssertEqual(policy.sourceDatabase, "/srv/demo/live/bos.db")
        XCTAssertEqual(policy.catalog, "/srv/demo/catalog.db")
        XCTAssertEqual(policy.targets.first?.url, "file:///srv/demo/nas")
    }

    func testDurations() {
        XCTAssertEqual(Duration.parse("4h"), 14_400)
        XCTAssertEqual(Duration.parse("1h30m"), 5_400)
        XCTAssertEqual(Duration.parse("2d"), 172_800)
        XCTAssertNil(Duration.parse("4"))
        XCTAssertNil(Duration.parse("h"))
        XCTAssertNil(Duration.parse("-1h"))
        XCTAssertEqual(Duration.format(5_400), "1h30m")
    }
}
