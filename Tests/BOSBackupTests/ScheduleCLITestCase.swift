@testable import BOSBackup
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// What the issue #12 tests ("honest outcomes: one failure never silences the schedule")
/// share: a folder with a live database, the two-job policy (local-weekly on a NAS folder,
/// cloud-daily on a folder or S3 through a fault proxy), the real binary.
///
/// Dates: 2026-11-29 and 2026-12-06 are Sundays (local-weekly fires at 00:00 Shanghai time);
/// cloud-daily fires at 22:00 every day.
class ScheduleCLITestCase: XCTestCase {
    var dir: TempDir!
    var config: String { dir.file("bos.yml") }
    var environment: [String: String] { MotoServer.environment }

    override func setUpWithError() throws {
        dir = TempDir()
        try Fixtures.sampleDatabase(at: dir.file("live.db"), orders: 300)
    }

    /// Both jobs keep their last snapshot only, so every backup after the first deletes one.
    func writePolicy(cloudURL: String = "cloud") throws {
        try """
            timezone: Asia/Shanghai
            source: { database: live.db }
            catalog: catalog.db
            scratch: scratch
            compression: { level: 6, block_size: 256KiB }
            targets:
              nas:   { url: nas }
              cloud: { url: "\(cloudURL)" }
            jobs:
              local-weekly: { target: nas,   cron: "0 0 * * 0",  retention: { keep_last: 1 } }
              cloud-daily:  { target: cloud, cron: "0 22 * * *", retention: { keep_last: 1 } }
            """.write(toFile: config, atomically: true, encoding: .utf8)
    }

    func catalog() throws -> Catalog { try Catalog(path: dir.file("catalog.db")) }

    func run(_ arguments: String...) throws -> ProcessResult { try run(arguments) }
    func run(_ arguments: [String]) throws -> ProcessResult { try bosbackup(arguments, environment: environment) }

    /// A bucket on the shared moto server and a fault proxy in front of it.
    func s3ThroughProxy() throws -> (bucket: String, proxy: FaultProxy, url: String) {
        let moto = try MotoServer.shared()
        let bucket = try runAsync { try await moto.makeBucket() }
        let proxy = try FaultProxy(upstreamPort: moto.port)
        return (bucket, proxy, "s3://\(bucket)/prod?endpoint=http://127.0.0.1:\(proxy.port)")
    }

    /// DeleteObject (not the abort of a multipart upload, also a DELETE).
    static func isDeleteObject(_ request: FaultProxy.Request) -> Bool {
        request.method == "DELETE" && !request.query.contains("uploadId")
    }

    func statusJSON(at now: String) throws -> (status: Int32, json: [String: Any], metrics: String) {
        let metrics = dir.file("bosbackup.prom")
        let result = try run("status", "--config", config, "--now", now, "--json", "--metrics", metrics)
        return (result.status, try jsonObject(result.stdout), try String(contentsOfFile: metrics, encoding: .utf8))
    }
}
