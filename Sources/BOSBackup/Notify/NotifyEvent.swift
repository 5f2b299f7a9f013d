import Foundation

/// What the notify command hears about one failure, as one line of JSON on its stdin.
/// Every key is always there (null when it does not apply), so a script can rely on it.
public struct NotifyEvent: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// A due backup failed.
        case jobFailed = "job-failed"
        /// A backup stored its snapshot, but the check at backup found the source damaged.
        case verificationFailed = "verification-failed"
        /// The restore drill failed.
        case drillFailed = "drill-failed"
        /// `run` (or a daemon pass) failed as a whole (the catalog, no source.database): its
        /// jobs did not run, or what they did could not be reported.
        case runFailed = "run-failed"
        /// A systemd unit failed (its OnFailure hook runs `bosbackup notify`).
        case unitFailed = "unit-failed"
        /// `bosbackup notify --event test`: to try the command.
        case test
    }

    public var kind: Kind
    public var job: String?
    public var target: String?
    public var snapshotID: String?
    public var error: String
    /// The exit code the failure stands for (1 failed, 2 usage/config, 4 damage); nil when none does.
    public var exitCode: Int32?
    public var host: String
    public var time: Date
    public var unit: String?
    /// The drill's report (HTML).
    public var report: String?

    public init(kind: Kind, job: String? = nil, target: String? = nil, snapshotID: String? = nil, error: String,
                exitCode: Int32? = nil, host: String = NotifyEvent.localHost, time: Date, unit: String? = nil, report: String? = nil) {
        self.kind = kind; self.job = job; self.target = target; self.snapshotID = snapshotID; self.error = error
        self.exitCode = exitCode; self.host = host; self.time = time; self.unit = unit; self.report = report
    }

    public static var localHost: String { ProcessInfo.processInfo.hostName }

    /// One line for a mail subject or a chat message.
    public var message: String {
        let what: String
        switch kind {
        case .jobFailed: what = "job \(job ?? "?") failed" + (target.map { " (target \($0))" } ?? "")
        case .verificationFailed: what = "job \(job ?? "?") stored snapshot \(snapshotID ?? "?") but found damage" + (target.map { " (target \($0))" } ?? "")
        case .drillFailed: what = "the restore drill failed" + (target.map { " (\($0))" } ?? "")
        case .runFailed: what = "run failed"
        case .unitFailed: what = "systemd unit \(unit ?? "?") failed"
        case .test: what = "test notification"
        }
        return "bosbackup on \(host): \(what): \(error)"
    }

    /// Compact JSON and a newline: one event per line, for `jq` and for log files.
    public func json() throws -> Data {
        func value<T>(_ optional: T?) -> Any { optional.map { $0 as Any } ?? NSNull() }
        let object: [String: Any] = [
            "event": kind.rawValue, "job": value(job), "target": value(target), "snapshot_id": value(snapshotID),
            "error": error, "exit_code": value(exitCode.map(Int.init)), "host": host, "time": ISO8601.string(time),
            "unit": value(unit), "report": value(report), "message": message,
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) + Data("\n".utf8)
    }

    /// The failures of one run worth telling someone about: failed jobs, snapshots found
    /// damaged at backup, a failed drill. (Deletions a target refused are not: they are
    /// retried every run and shown by status and bosbackup_failed_deletions.)
    public static func failures(in report: RunReport, policy: Policy, host: String = NotifyEvent.localHost, at time: Date,
                                exitCode: (ErrorCategory) -> Int32) -> [NotifyEvent] {
        report.jobs.compactMap { outcome in
            guard outcome.decision.due, let error = outcome.error else { return nil }
            let name = outcome.decision.job
            let code = exitCode(outcome.errorCategory ?? .failure)
            if name == DrillJob.runName {
                return NotifyEvent(kind: .drillFailed, job: name,
                                   target: outcome.failedTargets.isEmpty ? nil : outcome.failedTargets.joined(separator: ", "),
                                   error: error, exitCode: code, host: host, time: time, report: outcome.report)
            }
            let target = policy.job(named: name)?.target
            if let damaged = outcome.damagedSnapshot {
                return NotifyEvent(kind: .verificationFailed, job: name, target: damaged.target, snapshotID: damaged.id,
                                   error: error, exitCode: code, host: host, time: time)
            }
            return NotifyEvent(kind: .jobFailed, job: name, target: target, error: error, exitCode: code, host: host, time: time)
        }
    }
}
