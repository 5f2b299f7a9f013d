import Foundation

/// A drill as a recorded job: runs it, writes the reports, and records it in
/// the catalog (the `drills` table, and `runs` under the name "drill" so
/// `run` knows when the next one is due).
public struct DrillJob {
    public static let runName = "drill"

    public let verifier: SnapshotVerifier
    public let policy: Policy
    public let reportFolder: String

    public init(verifier: SnapshotVerifier, policy: Policy, reportFolder: String) {
        self.verifier = verifier
        self.policy = policy
        self.reportFolder = reportFolder
    }

    public struct Outcome: Sendable {
        public var result: DrillResult
        public var markdown: String
        public var html: String
    }

    /// `openTarget`: a target by name, for the point-in-time restores from each
    /// archive target (nil: snapshots only).
    public func run(scheduledFor: Date?, openTarget: ((String) throws -> Target)? = nil,
                    open: @escaping (SnapshotRecord) throws -> Target) async throws -> Outcome {
        let catalog = verifier.catalog
        try catalog.auditFirst(action: "drill", detail: "restore drill" + (scheduledFor == nil ? "" : " (scheduled)") + ", report into \(reportFolder)")
        let runID = try catalog.startRun(job: Self.runName, scheduledFor: scheduledFor, at: verifier.clock.now())
        do {
            var rng = SystemRandomNumberGenerator()
            var restorer = SnapshotRestorer(catalog: catalog, clock: verifier.clock)
            restorer.scratch = verifier.scratch
            let pointInTime = openTarget.map { openTarget in
                PointInTimeDrill(catalog: catalog, policy: policy, restorer: restorer, scratch: verifier.scratch,
                                 openTarget: openTarget, openSnapshotTarget: open)
            }
            let drill = RestoreDrill(verifier: verifier, rto: policy.drill?.rto ?? 4 * 3_600, timeZone: policy.timeZone,
                                     pointInTime: policy.archives.isEmpty ? nil : pointInTime)
            let targets = policy.targets.isEmpty ? Array(Set(try catalog.snapshots().map(\.target))).sorted() : policy.targets.map(\.name)
            let result = try await drill.run(targets: targets, open: open, using: &rng)
            let report = DrillReport(result: result)
            let paths = try report.write(to: reportFolder)
            try catalog.record(Catalog.DrillRecord(startedAt: result.startedAt, finishedAt: result.finishedAt, ok: result.ok,
                                                   seconds: result.seconds, rtoSeconds: result.rto, report: paths.html,
                                                   summary: report.verdict, recoverySeconds: result.worstRecoverySeconds))
            try catalog.finishRun(runID, status: result.ok ? .success : .failed, error: result.ok ? nil : report.verdict,
                                  snapshotID: nil, seconds: result.seconds, at: verifier.clock.now())
            return Outcome(result: result, markdown: paths.markdown, html: paths.html)
        } catch {
            try? catalog.finishRun(runID, status: .failed, error: "\(error)", snapshotID: nil, seconds: 0, at: verifier.clock.now())
            throw error
        }
    }
}
