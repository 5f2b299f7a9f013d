@testable import BOSBackup
import Foundation
import XCTest

/// Issue #12 item 8 and review: usage and config mistakes exit 2 and record nothing.
final class UsageErrorTests: ScheduleCLITestCase {
    // MARK: item 8: usage errors record nothing

    func testBackupUsageErrorsExit2AndRecordNothing() throws {
        try writePolicy()
        let mistakes: [[String]] = [
            ["--job", "local-weekly", "--level", "0"],
            ["--job", "local-weekly", "--level", "10"],
            ["--job", "local-weekly", "--jobs", "0"],
            ["--job", "no-such-job"],
            ["--job", "no-such-job", "--target", "nas"],
            ["--job", "local-weekly", "--bogus-flag"],
            // A job's backup stored elsewhere is not that job's backup: refused.
            ["--job", "cloud-daily", "--target", "nas"],
            ["--job", "local-weekly", "--target", "file://" + dir.file("elsewhere")],
        ]
        for arguments in mistakes {
            let result = try run(["backup", "--config", config, "--now", "2026-11-29T00:05:00+08:00"] + arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): " + result.stdout + result.stderr)
            if !arguments.contains("--bogus-flag") {
                XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(arguments): " + result.stderr)
            }
            if FileManager.default.fileExists(atPath: dir.file("catalog.db")) {
                XCTAssertEqual(try catalog().runs().count, 0, "\(arguments) recorded a run")
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.file("elsewhere")))
        let status = try run("status", "--config", config, "--now", "2026-11-29T00:05:00+08:00")
        XCTAssertFalse(status.stdout.lowercased().contains("last run failed"), status.stdout)

        // The job's own target, however spelled, is the job's backup.
        let spelled = try run("backup", "--config", config, "--job", "local-weekly", "--target", dir.path + "/./nas/",
                              "--now", "2026-11-29T00:05:00+08:00")
        XCTAssertEqual(spelled.status, 0, spelled.stderr)
        XCTAssertEqual(try catalog().runs(job: "local-weekly").map(\.status), [.success])
    }

    // MARK: reserved job names

    func testJobsNamedDrillOrManualAreRejectedWithKeyAndLine() throws {
        for name in ["drill", "manual", "Manual"] {
            try writePolicy()
            var text = try String(contentsOfFile: config, encoding: .utf8)
            text = text.replacingOccurrences(of: "  cloud-daily:", with: "  \(name):")
            try text.write(toFile: config, atomically: true, encoding: .utf8)
            let line = text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.hasPrefix("  \(name):") }! + 1
            let result = try run("run", "--config", config, "--dry-run")
            XCTAssertEqual(result.status, 2, name + ": " + result.stdout + result.stderr)
            XCTAssertTrue(result.stderr.contains("bos.yml:\(line): jobs.\(name): "), result.stderr)
            XCTAssertTrue(result.stderr.contains("reserved"), result.stderr)
        }
    }
}
