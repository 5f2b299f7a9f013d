@testable import BOSBackup
import Foundation
import XCTest

/// `CST` must not silently mean America/Chicago: abbreviations are refused,
/// IANA names and fixed offsets are what a schedule is written in.
final class TimeZoneNameTests: XCTestCase {
    func testNamesOffsetsAndAbbreviations() throws {
        XCTAssertEqual(try TimeZoneName.resolve("Asia/Shanghai").identifier, "Asia/Shanghai")
        XCTAssertEqual(try TimeZoneName.resolve("UTC").secondsFromGMT(), 0)
        XCTAssertEqual(try TimeZoneName.resolve("UTC+8").secondsFromGMT(), 8 * 3600)
        XCTAssertEqual(try TimeZoneName.resolve("UTC+08:00").secondsFromGMT(), 8 * 3600)
        XCTAssertEqual(try TimeZoneName.resolve("-0530").secondsFromGMT(), -(5 * 3600 + 1800))
        for abbreviation in ["EST", "CST", "PST", "IST", "CEST"] {
            XCTAssertThrowsError(try TimeZoneName.resolve(abbreviation), abbreviation) {
                XCTAssertTrue("\($0)".contains("abbreviation") && "\($0)".contains("IANA"), "\($0)")
            }
        }
        for bad in ["Mars/Olympus", "UTC+15", "+8:75", ""] { XCTAssertThrowsError(try TimeZoneName.resolve(bad), bad) }
    }

    func testTheCLIAndThePolicyRefuseAbbreviations() throws {
        let next = try bosbackup("schedule", "next", "--cron", "0 22 * * *", "--tz", "EST", "--after", "2026-12-01T00:00:00Z")
        XCTAssertEqual(next.status, 2, next.stdout + next.stderr)
        XCTAssertTrue(next.stderr.contains("abbreviation"), next.stderr)
        let fixed = try bosbackup("schedule", "next", "--cron", "0 22 * * *", "--tz", "UTC-05:00", "--after", "2026-12-01T00:00:00Z", "-n", "1")
        XCTAssertEqual(fixed.status, 0, fixed.stderr)
        XCTAssertTrue(fixed.stdout.contains("22:00") && fixed.stdout.contains("-05:00"), fixed.stdout)

        let dir = TempDir()
        try """
            timezone: CST
            source: { database: live.db }
            catalog: catalog.db
            targets: { nas: { url: nas } }
            jobs: { nightly: { target: nas, cron: "0 22 * * *" } }
            """.write(toFile: dir.file("bos.yml"), atomically: true, encoding: .utf8)
        let show = try bosbackup("schedule", "show", "--config", dir.file("bos.yml"))
        XCTAssertEqual(show.status, 2, show.stdout + show.stderr)
        XCTAssertTrue(show.stderr.contains("timezone") && show.stderr.contains("abbreviation") && show.stderr.contains("bos.yml:1:"), show.stderr)
    }
}

/// `run --dry-run` after a failed run says so, not "never ran".
final class DueReasonTests: XCTestCase {
    func testDryRunAfterAFailedRunSaysItFailed() throws {
        let dir = TempDir()
        try Fixtures.sampleDatabase(at: dir.file("live.db"), orders: 100)
        FileManager.default.createFile(atPath: dir.file("nas"), contents: Data("not a folder".utf8))
        try """
            timezone: UTC
            source: { database: live.db }
            catalog: catalog.db
            targets: { nas: { url: nas } }
            jobs: { nightly: { target: nas, cron: "0 22 * * *" } }
            """.write(toFile: dir.file("bos.yml"), atomically: true, encoding: .utf8)
        let failed = try bosbackup("run", "--config", dir.file("bos.yml"), "--now", "2026-12-01T22:05:00Z")
        XCTAssertEqual(failed.status, 1, failed.stdout + failed.stderr)
        let dry = try bosbackup("run", "--dry-run", "--config", dir.file("bos.yml"), "--now", "2026-12-01T22:15:00Z")
        XCTAssertFalse(dry.stdout.contains("never ran"), dry.stdout)
        XCTAssertTrue(dry.stdout.contains("no successful run yet") && dry.stdout.contains("failed"), dry.stdout)
    }
}
