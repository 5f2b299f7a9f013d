@testable import BOSBackup
import Foundation
import XCTest

/// One policy, two databases (issue #14 item 3): each has its own namespace on
/// the target, its own catalog rows and status lines, and `--database` picks one.
final class SeveralDatabasesTests: XCTestCase {
    var dir: TempDir!
    var config: String { dir.file("bos.yml") }

    override func setUpWithError() throws {
        dir = TempDir()
        try Fixtures.sampleDatabase(at: dir.file("bos.db"), orders: 300)
        try Fixtures.sampleDatabase(at: dir.file("hr.db"), orders: 200, seed: 7)
        try """
            timezone: UTC
            host: store-0421
            databases:
              bos: { path: \(dir.file("bos.db")) }
              hr:  { path: \(dir.file("hr.db")) }
            catalog: \(dir.file("catalog.db"))
            scratch: \(dir.file("scratch"))
            targets: { nas: { url: "file://\(dir.file("nas"))" } }
            jobs:
              bos-daily: { database: bos, target: nas, cron: "0 22 * * *", incremental: { full_every: 7 } }
              hr-weekly: { database: hr,  target: nas, cron: "0 0 * * 0" }
            """.write(toFile: config, atomically: true, encoding: .utf8)
    }

    func testEachDatabaseHasItsNamespaceRowsAndStatusLine() throws {
        let run = try bosbackup("run", "--config", config, "--now", "2026-12-06T00:05:00Z")
        XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
        let catalog = try Catalog(readingAt: dir.file("catalog.db"))
        let snapshots = try catalog.snapshots()
        XCTAssertEqual(Set(snapshots.map(\.databaseName)), ["bos", "hr"])
        for s in snapshots {
            XCTAssertTrue(s.objectKey.hasPrefix("store-0421/\(s.databaseName)/snapshots/2026/12/"), s.objectKey)
            XCTAssertEqual(s.layout.host, "store-0421")
        }
        XCTAssertEqual(snapshots.first { $0.databaseName == "hr" }?.tables["orders"], 200)
        XCTAssertEqual(snapshots.first { $0.databaseName == "bos" }?.tables["orders"], 300)

        let status = try bosbackup("status", "--config", config, "--now", "2026-12-06T00:10:00Z")
        let lines = status.stdout.split(separator: "\n")
        XCTAssertTrue(lines.first?.hasPrefix("DATABASE") == true, status.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("bos ") && $0.contains("bos-daily") }, status.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("hr ") && $0.contains("hr-weekly") }, status.stdout)

        let hrOnly = try jsonObject(try bosbackup("snapshots", "--config", config, "--database", "hr", "--json").stdout)
        XCTAssertEqual((hrOnly["snapshots"] as? [[String: Any]])?.compactMap { $0["database"] as? String }, ["hr"])
        let unknown = try bosbackup("snapshots", "--config", config, "--database", "crm")
        XCTAssertEqual(unknown.status, 2)
        XCTAssertTrue(unknown.stderr.contains("no database \"crm\"") && unknown.stderr.contains("bos, hr"), unknown.stderr)
    }

    func testTriageComparesALiveFileOnlyWithItsOwnDatabasesSnapshots() throws {
        XCTAssertEqual(try bosbackup("run", "--config", config, "--now", "2026-12-06T00:05:00Z").status, 0)
        // The live file is the policy's hr database: only hr snapshots are compared with it.
        let triage = try bosbackup("restore", "--latest", "3", "--live", dir.file("hr.db"), "--config", config, "--json")
        XCTAssertEqual(triage.status, 0, triage.stderr)
        let results = try XCTUnwrap(try jsonObject(triage.stdout)["snapshots"] as? [[String: Any]])
        XCTAssertEqual(results.count, 1)
        XCTAssertTrue((results.first?["name"] as? String)?.hasPrefix("hr-weekly-") == true, "\(results)")
        XCTAssertEqual(results.first?["lost_rows"] as? Int, 0)

        // A copy elsewhere cannot be told apart: the operator must say which database it is.
        try FileManager.default.copyItem(atPath: dir.file("hr.db"), toPath: dir.file("copy.db"))
        let unsure = try bosbackup("restore", "--latest", "3", "--live", dir.file("copy.db"), "--config", config)
        XCTAssertEqual(unsure.status, 2, unsure.stdout + unsure.stderr)
        XCTAssertTrue(unsure.stderr.contains("give --database NAME"), unsure.stderr)
        let chosen = try bosbackup("restore", "--latest", "3", "--live", dir.file("copy.db"), "--database", "hr", "--config", config)
        XCTAssertEqual(chosen.status, 0, chosen.stderr)
    }

    func testAdHocBackupOfOneOfSeveralDatabasesNeedsItsName() throws {
        let vague = try bosbackup("backup", "--config", config, "--target", "nas")
        XCTAssertEqual(vague.status, 2)
        XCTAssertTrue(vague.stderr.contains("several databases (bos, hr)"), vague.stderr)
        let named = try bosbackup("backup", "--config", config, "--target", "nas", "--database", "hr", "--json")
        XCTAssertEqual(named.status, 0, named.stderr)
        let record = try jsonObject(named.stdout)
        XCTAssertEqual(record["database"] as? String, "hr")
        XCTAssertTrue((record["object_key"] as? String)?.hasPrefix("store-0421/hr/snapshots/") == true, "\(record)")
        let mismatch = try bosbackup("backup", "--config", config, "--job", "hr-weekly", "--database", "bos")
        XCTAssertEqual(mismatch.status, 2)
        XCTAssertTrue(mismatch.stderr.contains("job hr-weekly backs up database hr, not bos"), mismatch.stderr)
    }
}
