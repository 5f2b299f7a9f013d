@testable import BOSBackup
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Issue #13 item 4: `run --quiet` for cron's log and journald. Every test here failed on
/// the old code, which had no --quiet (exit 2) and printed 4 lines every 10 minutes.
final class QuietRunTests: MonitoringTestCase {
    func testNothingDueMeansNothingPrinted() throws {
        try writeMonitoredPolicy()
        XCTAssertEqual(try run("run", "--config", config, "--now", "2026-11-29T00:05:00+08:00").status, 0)
        let loud = try run("run", "--config", config, "--now", "2026-11-29T00:15:00+08:00")
        XCTAssertEqual(loud.stdout.split(separator: "\n").count, 3, "what cron logged every 10 minutes: " + loud.stdout)
        let quiet = try run("run", "--config", config, "--now", "2026-11-29T00:25:00+08:00", "--quiet")
        XCTAssertEqual(quiet.status, 0, quiet.stderr)
        XCTAssertEqual(quiet.stdout, "")
        XCTAssertEqual(quiet.stderr, "")
        XCTAssertEqual(try metrics().value("bosbackup_target_last_access_timestamp_seconds", ["target": "nas"]),
                       epoch("2026-11-29T00:25:00+08:00"), "a quiet run still did its work")
    }

    func testQuietSaysWhatWasDoneOnStdoutAndWhatFailedOnStderrOneTimedLineEach() throws {
        try writeMonitoredPolicy(cloudURL: Self.badBucket)
        let result = try run("run", "--config", config, "--now", "2026-11-29T00:05:00+08:00", "--quiet")
        XCTAssertEqual(result.status, 1)
        let snapshot = try XCTUnwrap(try catalog().snapshots(job: "local-weekly").first)
        let done = result.stdout.split(separator: "\n")
        XCTAssertEqual(done.count, 1, result.stdout)
        XCTAssertTrue(try XCTUnwrap(done.first).hasPrefix("2026-11-29T00:05:00+08:00 bosbackup run: local-weekly: snapshot \(snapshot.shortID) stored on nas ("), result.stdout)
        let failed = result.stderr.split(separator: "\n")
        XCTAssertEqual(failed.count, 2, result.stderr)
        XCTAssertTrue(failed.allSatisfy { $0.hasPrefix("2026-11-29T00:05:00+08:00 bosbackup run: ") }, result.stderr)
        XCTAssertTrue(failed.contains { $0.contains("cloud-daily: FAILED — bad target URL") }, result.stderr)
        XCTAssertTrue(failed.contains { $0.contains("warning: target cloud: could not look for leftovers") }, result.stderr)
        XCTAssertFalse((result.stdout + result.stderr).contains("\u{1B}"), "no colours when not a terminal")
    }

    /// Into the journal (JOURNAL_STREAM names the very file descriptor): `<N>` priorities
    /// instead of times, which journald stamps itself. A JOURNAL_STREAM inherited by a
    /// process whose output goes elsewhere changes nothing.
    func testIntoTheJournalLinesCarryPrioritiesInsteadOfTimes() throws {
        try writeMonitoredPolicy(cloudURL: Self.badBucket)
        let journal = try runWithOutput(toFile: dir.file("journal.log"), journalStream: .sameFile,
                                        ["run", "--config", config, "--now", "2026-11-29T00:05:00+08:00", "--quiet"])
        XCTAssertEqual(journal.status, 1)
        let lines = journal.output.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 3, journal.output)
        XCTAssertTrue(lines.contains { $0.hasPrefix("<6>local-weekly: snapshot ") }, journal.output)
        XCTAssertTrue(lines.contains { $0.hasPrefix("<3>cloud-daily: FAILED — ") }, journal.output)
        XCTAssertTrue(lines.contains { $0.hasPrefix("<4>warning: target cloud:") }, journal.output)

        let elsewhere = try runWithOutput(toFile: dir.file("cron.log"), journalStream: .otherFile,
                                          ["run", "--config", config, "--now", "2026-11-29T00:15:00+08:00", "--quiet"])
        XCTAssertEqual(elsewhere.status, 1)
        XCTAssertFalse(elsewhere.output.contains("<"), elsewhere.output)
        XCTAssertTrue(elsewhere.output.split(separator: "\n").allSatisfy { $0.hasPrefix("2026-11-29T00:15:00+08:00 bosbackup run: ") }, elsewhere.output)
    }

    func testQuietGoesWithNeitherJSONNorDryRun() throws {
        try writeMonitoredPolicy()
        for flag in ["--json", "--dry-run"] {
            let result = try run("run", "--config", config, "--now", "2026-11-29T00:05:00+08:00", "--quiet", flag)
            XCTAssertEqual(result.status, 2, result.stdout + result.stderr)
            XCTAssertTrue(result.stderr.contains("--quiet goes with neither --json nor --dry-run"), result.stderr)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.file("catalog.db")), "a usage error records nothing")
    }

    enum JournalStream { case sameFile, otherFile }

    /// Runs bosbackup with stdout and stderr both on one file, as journald gives a service
    /// one stream for both, and JOURNAL_STREAM naming that file or another one.
    func runWithOutput(toFile path: String, journalStream: JournalStream, _ arguments: [String]) throws -> (status: Int32, output: String) {
        FileManager.default.createFile(atPath: path, contents: nil)
        let other = path + ".other"
        FileManager.default.createFile(atPath: other, contents: nil)
        var st = stat()
        XCTAssertEqual(stat(journalStream == .sameFile ? path : other, &st), 0)
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Fixtures.binary)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(["JOURNAL_STREAM": "\(st.st_dev):\(st.st_ino)"]) { $1 }
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        try handle.close()
        return (process.terminationStatus, try String(contentsOfFile: path, encoding: .utf8))
    }
}
