import Foundation
import XCTest
import BOSBackup

/// Differential test: our cron engine against croniter (PyPI) as outside oracle.
///
/// Runs `python3 Tests/oracle/croniter_cases.py --seed 20261127 --count 2000`
/// (2,000 random expressions, each with a random start time in UTC and in
/// Asia/Shanghai; croniter's next 5 and previous 5 fire times per case) and
/// requires zero differences. The script documents where croniter's dialect
/// differs from Vixie cron and how it is re-spelled for croniter.
/// Needs python3 with croniter (`pip install croniter`); set PYTHON3 to use
/// another interpreter. Without them this test fails - it never skips.
final class CronOracleTests: XCTestCase {
    struct Case: Decodable {
        let expr: String
        let croniter_expr: String
        let tz: String
        let start: Int
        let next: [Int]
        let prev: [Int]
    }

    struct Excluded: Decodable {
        let expr: String
        let reason: String
        let detail: String
    }

    struct Oracle: Decodable {
        let croniter_version: String
        let python: String
        let seed: Int
        let count: Int
        let stats: [String: Int]
        let cases: [Case]
        let excluded: [Excluded]
    }

    static let seed = 20_261_127
    static let count = 2_000

    func testAgreesWithCroniter() throws {
        let began = Date()
        let repo = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()   // BOSBackupTests
            .deletingLastPathComponent()   // Tests
            .deletingLastPathComponent()   // repository root
        let script = repo.appendingPathComponent("Tests/oracle/croniter_cases.py").path
        guard FileManager.default.fileExists(atPath: script) else {
            return XCTFail("oracle script missing at \(script)")
        }
        let python = ProcessInfo.processInfo.environment["PYTHON3"] ?? "python3"
        let run = try runOracle(["/usr/bin/env", python, script,
                                  "--seed", String(Self.seed), "--count", String(Self.count)])
        guard run.status == 0 else {
            let hint = run.status == 127
                ? "\(python) was not found on PATH"
                : "is croniter installed? run: \(python) -m pip install croniter"
            return XCTFail("""
                croniter oracle failed (exit \(run.status)); \(hint)
                stderr: \(String(decoding: run.stderr.suffix(2000), as: UTF8.self))
                """)
        }
        let oracle: Oracle
        do {
            oracle = try JSONDecoder().decode(Oracle.self, from: run.stdout)
        } catch {
            return XCTFail("cannot parse oracle output (\(run.stdout.count) bytes): \(error)")
        }
        let pythonSeconds = Date().timeIntervalSince(began)

        XCTAssertGreaterThan(Set(oracle.cases.map(\.expr)).count, Self.count / 2, "too few distinct expressions")
        XCTAssertGreaterThanOrEqual(oracle.cases.count, 2 * Self.count)
        XCTAssertEqual(Set(oracle.cases.map(\.tz)), ["UTC", "Asia/Shanghai"])

        var differences: [String] = []
        var compared = 0
        var zones: [String: TimeZone] = [:]
        for c in oracle.cases {
            guard let zone = zones[c.tz] ?? TimeZone(identifier: c.tz) else {
                differences.append("unknown time zone \(c.tz)")
                continue
            }
            zones[c.tz] = zone
            let expression: CronExpression
            do {
                expression = try CronExpression(c.expr)
            } catch {
                differences.append("\"\(c.expr)\": we reject it (\(error)) but croniter fires at \(c.next)")
                continue
            }
            let start = Date(timeIntervalSince1970: TimeInterval(c.start))
            let next = expression.nextTimes(after: start, count: 5, in: zone).map { Int($0.timeIntervalSince1970) }
            var prev: [Int] = []
            var cursor = start
            while prev.count < 5, let p = expression.previous(atOrBefore: cursor, in: zone) {
                prev.append(Int(p.timeIntervalSince1970))
                cursor = p.addingTimeInterval(-1)
            }
            compared += c.next.count + c.prev.count
            if next != c.next {
                differences.append(describe(c, "next", ours: next, theirs: c.next, zone: zone))
            }
            if prev != c.prev {
                differences.append(describe(c, "previous", ours: prev, theirs: c.prev, zone: zone))
            }
        }

        // Expressions croniter finds never fire must be rejected by our parser
        // (naming day-of-month); ones croniter rejects outright would be a
        // disagreement too if we accepted them.
        for x in oracle.excluded {
            do {
                _ = try CronExpression(x.expr)
                differences.append("\"\(x.expr)\": croniter excluded it (\(x.reason): \(x.detail)) but we accept it")
            } catch let error as CronError {
                if x.reason == "never fires" && error.field != "day-of-month" {
                    differences.append("\"\(x.expr)\" never fires but our error names \(error.field): \(error.message)")
                }
            }
        }

        let summary = """
            croniter \(oracle.croniter_version) (python \(oracle.python)), seed \(oracle.seed): \
            \(oracle.cases.count) cases (\(oracle.count) expressions, \(Set(oracle.cases.map(\.expr)).count) distinct, \
            each from a random start in UTC and in Asia/Shanghai), \
            \(compared) fire times compared, \(oracle.excluded.count) never-firing expressions checked rejected, \
            \(differences.count) differences; oracle \(String(format: "%.1f", pythonSeconds)) s, \
            total \(String(format: "%.1f", Date().timeIntervalSince(began))) s; coverage \(oracle.stats)
            """
        print(summary)
        XCTAssertGreaterThanOrEqual(compared, 20 * Self.count)
        XCTAssertTrue(differences.isEmpty, """
            \(differences.count) difference(s) from croniter; first ones:
            \(differences.prefix(8).joined(separator: "\n"))
            \(summary)
            """)
    }

    private func describe(_ c: Case, _ what: String, ours: [Int], theirs: [Int], zone: TimeZone) -> String {
        let f = ISO8601DateFormatter()
        f.timeZone = zone
        func show(_ xs: [Int]) -> String {
            xs.map { f.string(from: Date(timeIntervalSince1970: TimeInterval($0))) }.joined(separator: " ")
        }
        let spelled = c.croniter_expr == c.expr ? "" : " (croniter given \"\(c.croniter_expr)\")"
        return """
            "\(c.expr)"\(spelled) \(c.tz) \(what) from \(show([c.start])):
              ours     \(show(ours))
              croniter \(show(theirs))
            """
    }

    private func runOracle(_ argv: [String]) throws -> (status: Int32, stdout: Data, stderr: Data) {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("cron-oracle-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("stdout")
        let err = dir.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        let outHandle = try FileHandle(forWritingTo: out)
        let errHandle = try FileHandle(forWritingTo: err)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = outHandle
        process.standardError = errHandle
        try process.run()
        process.waitUntilExit()
        try outHandle.close()
        try errHandle.close()
        return (process.terminationStatus, try Data(contentsOf: out), try Data(contentsOf: err))
    }
}
