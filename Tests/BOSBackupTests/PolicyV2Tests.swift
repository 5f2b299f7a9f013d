@testable import BOSBackup
import Foundation
import XCTest

/// Policy v2 (docs/DESIGN.md "Policy v2"): `host:`, `databases:`, a job's
/// `database:` and `incremental:`, and v1's `source:` still loading as one
/// database named `bos`. Every policy here is a real file in a temp folder.
final class PolicyV2Tests: XCTestCase {
    var dir: TempDir!
    var path: String { dir.file("bos.yml") }

    override func setUp() { dir = TempDir() }
    override func tearDown() { dir = nil }

    func load(_ yaml: String, hostname: String = "testbox") throws -> Policy {
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return try PolicyLoader.load(path: path, hostname: hostname)
    }

    func error(_ yaml: String, hostname: String = "testbox", file: StaticString = #filePath, line: UInt = #line) -> PolicyError? {
        do { _ = try load(yaml, hostname: hostname); return nil } catch let e as PolicyError { return e } catch {
            XCTFail("unexpected \(error)", file: file, line: line); return nil
        }
    }

    /// The error is one line `FILE:LINE: key.path: message` holding `fragment`.
    func assertError(_ yaml: String, _ keyPath: String, _ line: Int?, _ fragments: [String], hostname: String = "testbox",
                     file: StaticString = #filePath, sourceLine: UInt = #line) throws {
        let e = try XCTUnwrap(error(yaml, hostname: hostname, file: file, line: sourceLine), "accepted: \(yaml)", file: file, line: sourceLine)
        XCTAssertEqual(e.keyPath, keyPath, e.description, file: file, line: sourceLine)
        XCTAssertEqual(e.line, line, e.description, file: file, line: sourceLine)
        let location = line.map { "\(path):\($0)" } ?? path
        XCTAssertTrue(e.description.hasPrefix("\(location): \(keyPath): "), e.description, file: file, line: sourceLine)
        for fragment in fragments {
            XCTAssertTrue(e.description.contains(fragment), "\(e.description) lacks \(fragment)", file: file, line: sourceLine)
        }
        XCTAssertFalse(e.description.contains("\n"), "one line: \(e.description)", file: file, line: sourceLine)
    }

    let v2 = """
        host: store-0421
        timezone: UTC
        databases:
          bos: { path: /var/lib/bos/bos.db }
          hr:  { path: hr/hr.db }
        targets:
          nas:   { url: file:///mnt/nas }
          cloud: { url: "s3://bos-backups/prod?region=us-east-1" }
        jobs:
          local-weekly: { database: bos, target: nas, cron: "0 0 * * 0", retention: { keep_last: 8 } }
          cloud-daily:  { database: bos, target: cloud, cron: "0 22 * * *",
                          incremental: { full_every: 7 }, retention: { keep_daily: 30, keep_monthly: 12 } }
          hr-daily:
            database: hr
            target: nas
            cron: "30 22 * * *"
        """

    let v1 = """
        timezone: UTC
        source: { database: live/bos.db }
        targets:
          nas: { url: file:///mnt/nas }
        jobs:
          weekly: { target: nas, cron: "0 0 * * 0", retention: { keep_last: 8 } }
          daily:  { target: nas, cron: "0 22 * * *" }
        """

    // MARK: what loads

    func testV1FileIsOneDatabaseNamedBosWithItsJobsOnIt() throws {
        let policy = try load(v1, hostname: "store-0007")
        XCTAssertEqual(policy.databases, [.init(name: "bos", path: dir.file("live/bos.db"))])
        XCTAssertEqual(policy.database(named: "bos")?.path, dir.file("live/bos.db"))
        XCTAssertNil(policy.database(named: "hr"))
        XCTAssertEqual(policy.sourceDatabase, dir.file("live/bos.db"))
        XCTAssertEqual(policy.host, "store-0007")
        XCTAssertEqual(policy.jobs.map(\.name), ["weekly", "daily"])
        XCTAssertEqual(policy.jobs.map(\.database), ["bos", "bos"])
        XCTAssertEqual(policy.jobs.map(\.incremental), [nil, nil])
        XCTAssertEqual(policy.job(named: "weekly")?.retention, .init(keepLast: 8))
    }

    func testShippedV1PolicyStillLoads() throws {
        let policy = try PolicyLoader.load(path: Fixtures.repoRoot + "/schedules/bos.yml", hostname: "store-0421")
        XCTAssertEqual(policy.databases, [.init(name: "bos", path: "/var/lib/bos/bos.db")])
        XCTAssertEqual(policy.sourceDatabase, "/var/lib/bos/bos.db")
        XCTAssertEqual(policy.host, "store-0421")
        XCTAssertEqual(policy.jobs.map(\.database), ["bos", "bos"])
        XCTAssertEqual(policy.jobs.map(\.incremental), [nil, nil])
    }

    func testV1FileWithoutSourceHasNoDatabaseAndItsJobsUseBos() throws {
        let policy = try load("""
            targets: { nas: { url: file:///mnt/nas } }
            jobs: { local: { target: nas, cron: "0 0 * * *" } }
            """)
        XCTAssertEqual(policy.databases, [])
        XCTAssertNil(policy.sourceDatabase)
        XCTAssertEqual(policy.job(named: "local")?.database, Policy.defaultDatabaseName)
        XCTAssertEqual(Policy.defaultDatabaseName, "bos")
    }

    func testV2FileWithTwoDatabasesAndHost() throws {
        let policy = try load(v2, hostname: "not-this-one")
        XCTAssertEqual(policy.host, "store-0421")
        XCTAssertEqual(policy.databases, [.init(name: "bos", path: "/var/lib/bos/bos.db"),
                                          .init(name: "hr", path: dir.file("hr/hr.db"))], "file order; relative paths against the file's folder")
        XCTAssertEqual(policy.database(named: "hr")?.path, dir.file("hr/hr.db"))
        XCTAssertNil(policy.sourceDatabase, "several databases: no single source")
        XCTAssertEqual(policy.jobs.map(\.name), ["local-weekly", "cloud-daily", "hr-daily"])
        XCTAssertEqual(policy.jobs.map(\.database), ["bos", "bos", "hr"])
        XCTAssertEqual(policy.jobs.map(\.incremental), [nil, .init(fullEvery: 7), nil])
        XCTAssertEqual(policy.job(named: "cloud-daily")?.retention, .init(keepDaily: 30, keepMonthly: 12))
        XCTAssertEqual(policy.job(named: "cloud-daily")?.target, "cloud")
    }

    func testAJobWithoutDatabaseUsesTheOnlyOne() throws {
        let policy = try load("""
            databases:
              main: { path: /srv/main.db }
            targets: { nas: { url: file:///mnt/nas } }
            jobs:
              nightly: { target: nas, cron: "0 1 * * *" }
              weekly:  { database: main, target: nas, cron: "0 2 * * 0" }
            """)
        XCTAssertEqual(policy.jobs.map(\.database), ["main", "main"])
        XCTAssertEqual(policy.sourceDatabase, "/srv/main.db", "one database: it is the v1 source")
    }

    func testHostDefaultsToTheInjectedHostname() throws {
        XCTAssertEqual(try load(v1, hostname: "till-3.store-0421").host, "till-3.store-0421")
        XCTAssertEqual(try load(v2.replacingOccurrences(of: "host: store-0421\n", with: ""), hostname: "backoffice").host, "backoffice")
    }

    func testMachineHostnameIsTheKernelsName() throws {
        let kernel = try String(contentsOfFile: "/proc/sys/kernel/hostname", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(PolicyLoader.machineHostname(), kernel)
        XCTAssertFalse(PolicyLoader.machineHostname().isEmpty)
    }

    func testIncrementalFullEveryBounds() throws {
        for n in [2, 7, 1000] {
            let policy = try load(v2.replacingOccurrences(of: "full_every: 7", with: "full_every: \(n)"))
            XCTAssertEqual(policy.job(named: "cloud-daily")?.incremental, .init(fullEvery: n))
        }
        let quoted = try load(v2.replacingOccurrences(of: "full_every: 7", with: "full_every: \"14\""))
        XCTAssertEqual(quoted.job(named: "cloud-daily")?.incremental?.fullEvery, 14)
    }

    func testSourceDatabaseSetterReplacesTheDatabasesWithOneNamedBos() throws {
        var policy = try load(v2)
        policy.sourceDatabase = "/tmp/live.db"
        XCTAssertEqual(policy.databases, [.init(name: "bos", path: "/tmp/live.db")])
        XCTAssertEqual(policy.sourceDatabase, "/tmp/live.db")
        policy.sourceDatabase = nil
        XCTAssertEqual(policy.databases, [])
        XCTAssertNil(policy.sourceDatabase)
    }

    // MARK: what is refused, each as one line with file, line and key

    func testHostMistakes() throws {
        try assertError(v2.replacingOccurrences(of: "host: store-0421", with: "host: store 0421"), "host", 1,
                        ["\"store 0421\" must be letters, digits", "first folder of every object key"])
        try assertError(v2.replacingOccurrences(of: "host: store-0421", with: "host: store..0421"), "host", 1, ["no '..'"])
        try assertError(v2.replacingOccurrences(of: "host: store-0421", with: "host: -store"), "host", 1, ["starting with a letter or digit"])
        try assertError(v2.replacingOccurrences(of: "host: store-0421", with: "host: [a, b]"), "host", 1, ["expected a text value"])
        try assertError(v2.replacingOccurrences(of: "host: store-0421", with: "host: \(String(repeating: "x", count: 65))"), "host", 1,
                        ["at most 64"])
        // No host: and a hostname that cannot be a folder: there is no line to point at.
        try assertError(v1, "host", nil, ["the machine's hostname \"my box\" cannot be used", "set host:"], hostname: "my box")
        try assertError(v1, "host", nil, ["the machine's hostname \"\" cannot be used"], hostname: "")
    }

    func testDatabaseMistakes() throws {
        try assertError(v2.replacingOccurrences(of: "  hr:  {", with: "  h r: {"), "databases", 5, ["name \"h r\" must be letters"])
        try assertError(v2.replacingOccurrences(of: "  hr:  {", with: "  bos: {"), "databases.bos", 5, ["defined twice"])
        try assertError(v2.replacingOccurrences(of: "  hr:  {", with: "  BOS: {"), "databases.BOS", 5,
                        ["differs from database \"bos\" only in case"])
        try assertError(v2.replacingOccurrences(of: "{ path: hr/hr.db }", with: "{ path: hr/hr.db, mode: wal }"), "databases.hr.mode", 5,
                        ["unknown key (expected one of: path)"])
        try assertError(v2.replacingOccurrences(of: "{ path: hr/hr.db }", with: "{ file: hr/hr.db }"), "databases.hr.file", 5, ["unknown key"])
        try assertError(v2.replacingOccurrences(of: "{ path: hr/hr.db }", with: "{}"), "databases.hr", 5, ["missing path"])
        try assertError(v2.replacingOccurrences(of: "{ path: hr/hr.db }", with: "{ path: \"\" }"), "databases.hr.path", 5, ["is empty"])
        try assertError(v2.replacingOccurrences(of: "{ path: hr/hr.db }", with: "/var/lib/bos/hr.db"), "databases.hr", 5,
                        ["expected a mapping of keys"])
        try assertError("databases: {}\n", "databases", 1, ["is empty: name at least one database"])
        try assertError("databases: [bos]\n", "databases", 1, ["expected a mapping of names"])
    }

    func testJobDatabaseMistakes() throws {
        try assertError(v2.replacingOccurrences(of: "database: hr", with: "database: crm"), "jobs.hr-daily.database", 14,
                        ["unknown database \"crm\" (databases: bos, hr)"])
        try assertError(v2.replacingOccurrences(of: "    database: hr\n", with: ""), "jobs.hr-daily", 14,
                        ["missing database: the policy has several (bos, hr)"])
        try assertError(v1.replacingOccurrences(of: "{ target: nas, cron: \"0 22", with: "{ database: hr, target: nas, cron: \"0 22"),
                        "jobs.daily.database", 7, ["unknown database \"hr\" (databases: bos)"])
        try assertError("""
            targets: { nas: { url: file:///mnt/nas } }
            jobs: { local: { database: bos, target: nas, cron: "0 0 * * *" } }
            """, "jobs.local.database", 2, ["unknown database \"bos\" (databases: none)"])
    }

    func testIncrementalMistakes() throws {
        let key = "jobs.cloud-daily.incremental"
        func with(_ block: String) -> String { v2.replacingOccurrences(of: "{ full_every: 7 }", with: block) }
        try assertError(with("{ full_every: 1 }"), key + ".full_every", 12, ["use no incremental: block"])
        try assertError(with("{ full_every: 0 }"), key + ".full_every", 12, ["must be 2-1000", "got 0"])
        try assertError(with("{ full_every: -3 }"), key + ".full_every", 12, ["must be 2-1000", "got -3"])
        try assertError(with("{ full_every: 1001 }"), key + ".full_every", 12, ["must be 2-1000", "got 1001"])
        try assertError(with("{ full_every: seven }"), key + ".full_every", 12, ["expected a whole number"])
        try assertError(with("{ full_every: 7.5 }"), key + ".full_every", 12, ["expected a whole number"])
        try assertError(with("{ full_every: 7, max_bytes: 3 }"), key + ".max_bytes", 12, ["unknown key (expected one of: full_every)"])
        try assertError(with("{}"), key, 12, ["missing full_every"])
        try assertError(with("7"), key, 12, ["expected a mapping of keys"])
    }

    func testSourceAndDatabasesTogetherAreRefused() throws {
        // source: after databases: the later key is the one named.
        try assertError(v2 + "\nsource: { database: /var/lib/bos/bos.db }", "source", 17,
                        ["cannot be used together with databases: (line 3)", "keep one of them"])
        // source: first.
        try assertError("source: { database: /var/lib/bos/bos.db }\n" + v2, "databases", 4,
                        ["cannot be used together with source: (line 1)", "v1 form of databases:"])
    }

    func testArchiveEntriesAndTheirMistakes() throws {
        let policy = try load(v2 + "\narchive:\n  bos: { targets: { nas: 1s, cloud: 10s }, retain: 7d }")
        let archive = try XCTUnwrap(policy.archive(of: "bos"))
        XCTAssertEqual(archive.targets, [.init(target: "nas", interval: 1), .init(target: "cloud", interval: 10)])
        XCTAssertEqual(archive.retain, 7 * 86_400)
        XCTAssertEqual(archive.baseEvery, 86_400, "a new base snapshot daily unless base_every says otherwise")
        XCTAssertEqual(try load(v2 + "\narchive:\n  bos: { targets: { nas: 1s }, base_every: 6h }").archive(of: "bos")?.baseEvery, 6 * 3_600)
        XCTAssertNil(policy.archive(of: "hr"))
        try assertError(v2 + "\narchive:\n  crm: { targets: { nas: 1s } }", "archive.crm", 18, ["unknown database \"crm\"", "bos, hr"])
        try assertError(v2 + "\narchive:\n  bos: { targets: { tape: 1s } }", "archive.bos.targets.tape", 18, ["unknown target \"tape\""])
        try assertError(v2 + "\narchive:\n  bos: { targets: { nas: 2h } }", "archive.bos.targets.nas", 18, ["must be 1s to 1h"])
        try assertError(v2 + "\narchive:\n  bos: { retain: 7d }", "archive.bos", 18, ["missing targets"])
        try assertError(v2 + "\narchive:\n  bos: { targets: { nas: 1s }, base_every: 2d, retain: 1d }", "archive.bos.retain", 18,
                        ["shorter than base_every (2d)", "a whole generation at a time"])
    }
}
