@testable import BOSBackup
import Foundation
import XCTest

final class DrillTests: XCTestCase {
    var dir: TempDir!
    var config: String { dir.file("bos.yml") }

    override func setUpWithError() throws {
        dir = TempDir()
        try Fixtures.sampleDatabase(at: dir.file("live.db"), orders: 300)
        try """
            timezone: Asia/Shanghai
            source: { database: live.db }
            catalog: catalog.db
            targets: { nas: { url: nas }, cloud: { url: cloud } }
            jobs:
              local-weekly: { target: nas,   cron: "0 0 * * 0" }
              cloud-daily:  { target: cloud, cron: "0 22 * * *" }
            drill: { cron: "0 3 1 1,4,7,10 *", rto: 4h }
            """.write(toFile: config, atomically: true, encoding: .utf8)
        for when in ["2026-11-29T00:05:00+08:00", "2026-11-29T22:05:00+08:00", "2026-11-30T22:05:00+08:00", "2026-12-06T00:05:00+08:00"] {
            let run = try bosbackup("run", "--config", config, "--now", when)
            XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
        }
    }

    func catalog() throws -> Catalog { try Catalog(path: dir.file("catalog.db")) }

    func testDrillOnHealthyTargetsPassesAndRecordsAndRenders() throws {
        let drill = try bosbackup("drill", "--config", config, "--json")
        XCTAssertEqual(drill.status, 0, drill.stdout + drill.stderr)
        let report = try jsonObject(drill.stdout)
        let targets = try XCTUnwrap(report["targets"] as? [[String: Any]])
        XCTAssertEqual(targets.map { $0["target"] as? String }, ["nas", "cloud"])
        for target in targets {
            let picks = (target["snapshots"] as? [[String: Any]])?.map { $0["pick"] as? String }
            XCTAssertEqual(picks, ["newest", "random older"], "\(target)")
            XCTAssertNotNil(target["recovery_seconds"] as? Double)
        }
        XCTAssertEqual(try catalog().lastDrill()?.ok, true)
        let markdown = try String(contentsOfFile: try XCTUnwrap(report["report_markdown"] as? String), encoding: .utf8)
        XCTAssertTrue(markdown.contains("**PASS") && markdown.contains("## Target `cloud` — PASS"), markdown)

        // The HTML page renders in a real browser: the phase bars and the PASS banner are on screen.
        let html = try XCTUnwrap(report["report_html"] as? String)
        let png = dir.file("drill.png")
        let shot = try runProcess("/usr/bin/chromium-headless-shell", ["--no-sandbox", "--hide-scrollbars", "--screenshot=\(png)",
                                                                       "--window-size=1100,1400", "file://\(html)"])
        XCTAssertEqual(shot.status, 0, shot.stderr)
        let image = try PNGImage(path: png)
        XCTAssertEqual(image.width, 1100)
        for color in DrillReport.phases.map(\.color) + ["#dff3e4"] {
            XCTAssertGreaterThan(image.count(of: color), 200, "colour \(color) is not on screen")
        }
        XCTAssertEqual(image.count(of: "#fbe0e0"), 0, "no failure banner on a passing drill")
    }

    func testDrillOnADamagedTargetSaysWhichAndWhyAndExits4() throws {
        let newestCloud = try XCTUnwrap(try catalog().snapshots().filter { $0.target == "cloud" }.last)
        let path = dir.file("cloud/" + newestCloud.objectKey)
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[data.count / 2] ^= 0x40
        try data.write(to: URL(fileURLWithPath: path))

        let drill = try bosbackup("drill", "--config", config)
        XCTAssertEqual(drill.status, 4, drill.stdout + drill.stderr)
        XCTAssertTrue(drill.stdout.contains("FAIL — target cloud did not restore cleanly"), drill.stdout)
        XCTAssertTrue(drill.stdout.contains("snapshot \(newestCloud.shortID) (newest)") && drill.stdout.contains("checksum:"), drill.stdout)
        let mdPath = try XCTUnwrap(drill.stdout.components(separatedBy: "report: ").last?.components(separatedBy: "\n").first)
        let markdown = try String(contentsOfFile: mdPath, encoding: .utf8)
        XCTAssertTrue(markdown.contains("## Target `cloud` — FAIL") && markdown.contains("## Target `nas` — PASS"), markdown)
        XCTAssertTrue(markdown.contains("Snapshot `\(newestCloud.id)` failed") && markdown.contains("- checksum:"), markdown)
        XCTAssertEqual(try catalog().lastDrill()?.ok, false)
        XCTAssertEqual(try bosbackup("status", "--config", config, "--now", "2026-12-06T00:10:00+08:00").status, 1, "a failed drill shows in status")

        let png = dir.file("fail.png")
        let html = mdPath.replacingOccurrences(of: ".md", with: ".html")
        XCTAssertEqual(try runProcess("/usr/bin/chromium-headless-shell", ["--no-sandbox", "--screenshot=\(png)", "--window-size=1100,1400", "file://\(html)"]).status, 0)
        XCTAssertGreaterThan(try PNGImage(path: png).count(of: "#fbe0e0"), 200, "the failure banner is on screen")
    }

    func testRunDoesTheQuarterlyDrillWhenDue() throws {
        let before = try bosbackup("run", "--config", config, "--now", "2026-12-31T23:00:00+08:00", "--dry-run", "--json")
        let drillDecision = try XCTUnwrap((try jsonObject(before.stdout)["jobs"] as? [[String: Any]])?.first { $0["job"] as? String == "drill" })
        XCTAssertEqual(drillDecision["due"] as? Bool, false)
        let run = try bosbackup("run", "--config", config, "--now", "2027-01-01T03:10:00+08:00", "--json")
        XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
        let drill = try XCTUnwrap((try jsonObject(run.stdout)["jobs"] as? [[String: Any]])?.first { $0["job"] as? String == "drill" })
        XCTAssertEqual(drill["due"] as? Bool, true)
        XCTAssertTrue(FileManager.default.fileExists(atPath: try XCTUnwrap(drill["report"] as? String)))
        let again = try bosbackup("run", "--config", config, "--now", "2027-01-01T04:00:00+08:00", "--dry-run", "--json")
        XCTAssertEqual((try jsonObject(again.stdout)["jobs"] as? [[String: Any]])?.first { $0["job"] as? String == "drill" }?["due"] as? Bool, false)
    }
}
