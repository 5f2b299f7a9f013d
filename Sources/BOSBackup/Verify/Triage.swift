import Foundation

/// A restored copy beside the live database: counts, and rows by key (see TableKey).
public struct LiveComparison: Sendable {
    public var scratchPath: String
    public var diff: RowCountDiff
    /// Per table, rows the copy has that live lacks, rows only live has, and
    /// rows both have with other contents (by key, see TableKey).
    public var rowDiffs: [String: TableRowDiff]
    /// How live's schema differs from the copy's, one line each (see SchemaDrift):
    /// tables are compared on the columns both have; a table whose rows cannot be matched has no row diff.
    public var schema: [String] = []

    public init(scratchPath: String, diff: RowCountDiff, rowDiffs: [String: TableRowDiff] = [:], schema: [String] = []) {
        (self.scratchPath, self.diff, self.rowDiffs, self.schema) = (scratchPath, diff, rowDiffs, schema)
    }

    /// Counts and, when `rowsAgainst` names the live database, rows by key of the copy at `path`.
    public static func compare(copyAt path: String, cataloged: [String: Int64], restored: [String: Int64]?, liveCounts: [String: Int64]?,
                               rowsAgainst live: String?) throws -> LiveComparison {
        var comparison = LiveComparison(scratchPath: path, diff: RowCountDiff(cataloged: cataloged, restored: restored, live: liveCounts))
        if let live {
            let compared = try RowDiff(snapshotPath: path, livePath: live).diffAll()
            comparison.rowDiffs = Dictionary(uniqueKeysWithValues: compared.tables.map { ($0.table, $0) })
            comparison.schema = compared.schema
        }
        return comparison
    }

    /// Rows the copy has whose key live lacks.
    public var missingRows: Int64 { rowDiffs.values.reduce(0) { $0 + $1.missingInLive } }
    /// Rows whose key live has with other contents.
    public var changedRows: Int64 { rowDiffs.values.reduce(0) { $0 + $1.changed } }
    /// Rows live lost that the copy still holds: missing, or changed
    /// since (what the copy holds of them is gone from live too).
    public var lostRows: Int64 { missingRows + changedRows }

    /// "orders −200 (180 missing, 20 changed), order_items −8912 vs live", or
    /// nil when live lost nothing the copy has.
    public var lossSummary: String? {
        let lost = rowDiffs.values.filter { $0.lost > 0 }.sorted { $0.table < $1.table }
        if !lost.isEmpty {
            return lost.map { d in
                let parts = (d.missingInLive > 0 ? ["\(d.missingInLive) missing"] : []) + ["\(d.changed) changed"]
                return "\(d.table) \((-d.lost).formatted(sign: true))" + (d.changed > 0 ? " (\(parts.joined(separator: ", ")))" : "")
            }.joined(separator: ", ") + " vs live"
        }
        let losses = diff.losses
        guard !losses.isEmpty else { return nil }
        return losses.map { "\($0.table) \(($0.delta ?? 0).formatted(sign: true))" }.joined(separator: ", ") + " vs live"
    }
}

/// One snapshot restored for triage, with its counts beside the live database's.
@dynamicMemberLookup
public struct TriageResult: Sendable {
    public var verification: VerificationResult
    public var comparison: LiveComparison
    public var snapshot: SnapshotRecord { verification.snapshot }

    public subscript<T>(dynamicMember path: KeyPath<LiveComparison, T>) -> T { comparison[keyPath: path] }
}

extension Int64 {
    /// `−3000` / `+12` / `0` with a real minus sign, as people read deltas.
    public func formatted(sign: Bool) -> String {
        if self < 0 { return "\u{2212}\(-self)" }
        return sign && self > 0 ? "+\(self)" : "\(self)"
    }
}

/// Incident triage: restores snapshots into the scratch folder (kept for the
/// next step) concurrently, verifies each, and compares them with the live
/// database — counts, and rows by key (see TableKey). Live is opened read-only.
public struct Triage {
    public let verifier: SnapshotVerifier
    public var concurrency = max(1, ProcessInfo.processInfo.activeProcessorCount)

    public init(verifier: SnapshotVerifier) { self.verifier = verifier }

    public var restoreFolder: String { ScratchRestore(verifier: verifier).folder }

    /// The copy that passed and holds the most rows live lost (missing or
    /// changed since); nil when none holds any.
    public static func holdingMostLost(_ results: [TriageResult]) -> TriageResult? {
        results.filter { $0.verification.ok && $0.lostRows > 0 }.max { $0.lostRows < $1.lostRows }
    }

    /// The `count` newest snapshots, newest first; where two are the same
    /// database (same SHA-256) on different targets, the local (file) copy is used.
    public static func newest(_ count: Int, from snapshots: [SnapshotRecord]) -> [SnapshotRecord] {
        newestDistinct(count, from: snapshots).chosen
    }

    /// The same, and each snapshot left out because it is the same database as a
    /// chosen one (so the operator hears why only two of three appear).
    ///
    /// `snapshots` in the catalog's order (oldest first): two taken in the same second (the
    /// catalog keeps the second) are told apart by that order, not by name. By name, three
    /// taken in one second (`job-T`, `job-T-<id>`, `job-T-<id>`) came out in the order of
    /// their random ids, and `restore --latest` once listed an older one first.
    public static func newestDistinct(_ count: Int, from snapshots: [SnapshotRecord])
        -> (chosen: [SnapshotRecord], sameAs: [(skipped: SnapshotRecord, chosen: SnapshotRecord)]) {
        var chosen: [SnapshotRecord] = []
        var skipped: [SnapshotRecord] = []
        let newestFirst = snapshots.enumerated().sorted { ($0.element.takenAt, $0.offset) > ($1.element.takenAt, $1.offset) }.map(\.element)
        for snapshot in newestFirst {
            if let index = chosen.firstIndex(where: { $0.databaseSHA256 == snapshot.databaseSHA256 }) {
                if !chosen[index].targetURL.hasPrefix("file://") && snapshot.targetURL.hasPrefix("file://") {
                    skipped.append(chosen[index])
                    chosen[index] = snapshot
                } else {
                    skipped.append(snapshot)
                }
                continue
            }
            if chosen.count == count { break }
            chosen.append(snapshot)
        }
        let pairs = skipped.compactMap { s in chosen.first { $0.databaseSHA256 == s.databaseSHA256 }.map { (s, $0) } }
        return (chosen, pairs)
    }

    public func run(_ snapshots: [SnapshotRecord], live: String?, target: @escaping (SnapshotRecord) throws -> Target) async throws -> [TriageResult] {
        let liveCounts = try live.map { try TableCounts.count(in: try ConsistentCopy.openSource($0)) }
        let scratch = ScratchRestore(verifier: verifier)
        try PrivateFolder.prepare(verifier.scratch)
        try PrivateFolder.prepare(scratch.folder)
        let verifier = self.verifier
        // Restore and check concurrently, a few at a time; record in order afterwards
        // (the catalog connection is not shared between tasks).
        var verified: [Int: VerificationResult] = [:]
        try await withThrowingTaskGroup(of: (Int, VerificationResult).self) { group in
            var next = 0
            func start() {
                let index = next, snapshot = snapshots[index]
                next += 1
                let store = Result { try target(snapshot) }
                group.addTask {
                    // One snapshot that cannot be restored is that snapshot's answer, not the triage's end.
                    do {
                        return (index, try await verifier.check(snapshot, target: try store.get(), keepAt: scratch.path(for: snapshot)))
                    } catch {
                        return (index, VerificationResult(couldNotRestore: snapshot, error: error))
                    }
                }
            }
            while next < min(concurrency, snapshots.count) { start() }
            while let (index, result) = try await group.next() {
                verified[index] = result
                if next < snapshots.count { start() }
            }
        }
        var results: [TriageResult] = []
        for (index, snapshot) in snapshots.enumerated() {
            let verification = verified[index]!
            if verification.verdict != .couldNotCheck { try verifier.record(verification) }
            // Rows are compared only on a copy that passed: a damaged one answers with its problems.
            let comparison = try LiveComparison.compare(copyAt: scratch.path(for: snapshot), cataloged: snapshot.tables,
                                                        restored: verification.restoredCounts, liveCounts: liveCounts,
                                                        rowsAgainst: verification.ok ? live : nil)
            results.append(TriageResult(verification: verification, comparison: comparison))
        }
        return results
    }
}
