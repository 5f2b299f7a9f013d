@testable import BOSBackup
import Foundation
import XCTest

/// What the issue #13 "operator-ready" tests share: the two-job policy of
/// ScheduleCLITestCase plus a metrics textfile, and whatever `extra` keys a test adds
/// (notify, drill), run through the real binary.
class MonitoringTestCase: ScheduleCLITestCase {
    var metricsFile: String { dir.file("textfile/bosbackup.prom") }
    var events: String { dir.file("events.jsonl") }

    override func setUpWithError() throws {
        try super.setUpWithError()
        try FileManager.default.createDirectory(atPath: dir.file("textfile"), withIntermediateDirectories: true)
    }

    /// `cloudURL: "s3://bad_bucket/x"` makes every access to the cloud target fail at once.
    func writeMonitoredPolicy(cloudURL: String = "cloud", source: String = "source: { database: live.db }", extra: String = "") throws {
        try """
            timezone: Asia/Shanghai
            \(source)
            catalog: catalog.db
            scratch: scratch
            compression: { level: 6, block_size: 256KiB }
            targets:
              nas:   { url: nas }
              cloud: { url: "\(cloudURL)" }
            jobs:
              local-weekly: { target: nas,   cron: "0 0 * * 0",  retention: { keep_last: 1 } }
              cloud-daily:  { target: cloud, cron: "0 22 * * *", retention: { keep_last: 1 } }
            metrics: { textfile: textfile/bosbackup.prom }
            \(extra)
            """.write(toFile: config, atomically: true, encoding: .utf8)
    }

    /// A notify command that appends each event's JSON line to events.jsonl.
    var recordingNotify: String { "notify: { command: \"cat >> '\(events)'\", timeout: 20s }" }

    func metrics(_ path: String? = nil) throws -> TextExposition {
        try TextExposition.parse(try String(contentsOfFile: path ?? metricsFile, encoding: .utf8))
    }

    func notified() throws -> [[String: Any]] {
        guard FileManager.default.fileExists(atPath: events) else { return [] }
        return try String(contentsOfFile: events, encoding: .utf8).split(separator: "\n").map { try jsonObject(String($0)) }
    }

    static let badBucket = "s3://bad_bucket/x"

    func epoch(_ iso: String) -> Double { ISO8601.parse(iso)!.timeIntervalSince1970 }
}
