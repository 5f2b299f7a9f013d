import Foundation

/// One snapshot restored for triage, with its counts beside the live database's.
public struct TriageResult: Sendable {
    public var verification: VerificationResult
    public var scratchPath: String
    public var diff: RowCountDiff
    public var snapshot: SnapshotRecord { verification.snapshot }

    /// "orders −3000, order_items −8912 vs live", or nil when live lost nothing.
    public var lossSummary: String? {
        let losses = diff.losses
        guard !losses.isEmpty else { return nil }
        return losses.map { "\($0.table) \(($0.delta ?? 0).formatted(sign: true))" }.joined(separator: ", ") + " vs live"
    }
}

extension Int64 {
    /// `−3000` / `+12` / `0` with a real minus sign, as people read deltas.
    public func formatted(sign: Bool) -> String {
        if self < 0 { return "\u{2212}\(-self)" }
        return sign && self > 0 ? "+\(self)" : "\(self)"
    }
}

/// Incident triage: restores snapshots into the scratch folder (kept for the
/// next step), verifies each, and compares per-table counts with the live
/// database, which is opened read-only and never changed.
public struct Triage {
    public let verifier: SnapshotVerifier

    public init(verifier: SnapshotVerifier) { self.verifier = verifier }

    public var restoreFolder: String { verifier.scratch + "/restored" }

    public func run(_ snapshots: [SnapshotRecord], live: String?, target: (SnapshotRecord) throws -> Target) async throws -> [TriageResult] {
        let liveCounts = try live.map { try TableCounts.count(in: try ConsistentCopy.openSource($0)) }
        try DurableFile.makeDirectory(restoreFolder)
        var results: [TriageResult] = []
        for snapshot in snapshots {
            let path = "\(restoreFolder)/\(snapshot.name).db"
            let verification = try await verifier.verify(snapshot, target: try target(snapshot), keepAt: path)
            results.append(TriageResult(verification: verification, scratchPath: path,
                                        diff: RowCountDiff(cataloged: snapshot.tables, restored: verification.restoredCounts, live: liveCounts)))
        }
        return results
    }
}
