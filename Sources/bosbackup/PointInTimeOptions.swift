import ArgumentParser
import BOSBackup
import Foundation

/// `--at TIME|latest | --txid N [--generation ID] [--from-target NAME]`: a
/// state of the WAL archive, on `restore`, `diff` and `recover`.
struct PointInTimeOptions: ParsableArguments {
    @Option(help: "The state at this time (ISO 8601, or latest) from the WAL archive: the last commit seen at or before it.")
    var at: String?
    @Option(help: "The state right after this archived commit (txids count from 1 in each archive generation; 0 is its base snapshot).")
    var txid: Int64?
    @Option(help: "With --txid: the archive generation (id or prefix; default the newest).") var generation: String?
    @Option(name: .customLong("from-target"), help: "With --at or --txid: from this archive target only (default: the first that can).")
    var fromTarget: String?

    /// Whether a point in time was asked for (and asked for once).
    func asked() throws -> Bool {
        if at != nil && txid != nil { throw UsageError("give --at TIME or --txid N, not both") }
        if txid == nil && generation != nil { throw UsageError("--generation goes with --txid N") }
        if at == nil && txid == nil && fromTarget != nil { throw UsageError("--from-target goes with --at TIME or --txid N") }
        return at != nil || txid != nil
    }
}

extension Context {
    /// The archive targets' ways to the state asked for, in the policy's order.
    func pointInTimePlans(_ catalog: Catalog, _ options: PointInTimeOptions, _ database: DatabaseOption) throws
        -> (name: String, plans: [PointInTimePlan]) {
        let (policy, name, archive) = try archivedDatabase(database)
        let pitr = PointInTimeRestore(catalog: catalog)
        let targets = archive.targets.map(\.target).filter { options.fromTarget == nil || $0 == options.fromTarget }
        if let only = options.fromTarget, targets.isEmpty {
            throw UsageError("\(only) is not an archive target of database \(name) (\(archive.targets.map(\.target).joined(separator: ", ")))")
        }
        if let txid = options.txid {
            return (name, try pitr.plans(txid: txid, generation: options.generation, database: name, host: policy.host, targets: targets))
        }
        let when: Date
        if options.at == "latest" {
            guard let newest = try pitr.latest(database: name, host: policy.host, targets: targets) else {
                throw PointInTimeError.noGeneration("database \(name) has no WAL archive yet")
            }
            when = newest
        } else {
            guard let text = options.at, let parsed = ISO8601.parse(text, defaultZone: timeZone) else {
                throw UsageError("--at \(options.at ?? "") is not an ISO 8601 time (e.g. 2026-11-29T21:59:59+08:00) or latest")
            }
            when = parsed
        }
        return (name, try pitr.plans(at: when, database: name, host: policy.host, targets: targets))
    }

    /// The asked-for state in scratch, restored once per incident (see `PointInTimeScratch`).
    func pointInTimeCopy(_ catalog: Catalog, _ options: PointInTimeOptions, _ database: DatabaseOption, fullCheck: Bool = false)
        async throws -> (name: String, path: String, state: PointInTimeScratch.State) {
        let (name, plans) = try pointInTimePlans(catalog, options, database)
        let progress = ProgressLine()
        defer { progress.clear() }
        let copy = try await PointInTimeScratch(catalog: catalog, restorer: restorer(catalog, progress: progress), scratch: scratch)
            .ensure(plans, segmentsOn: target(named:), baseOn: target(for:))
        progress.clear()
        for (target, error) in copy.unusable { Console.error("could not restore from \(target): \(error); restored from the next archive target") }
        return (name, copy.path, copy.state)
    }

    /// "bos as of txid 412 of generation 1a2b3c4d5e6f (seen 2026-12-01T10:04:30Z): snapshot … + 412 archived commits from nas".
    func describe(_ state: PointInTimeScratch.State, database: String) -> String {
        "\(database) as of txid \(state.txid) of generation \(SnapshotID.short(state.generation))"
            + (state.seenAt.map { " (seen \(local($0)))" } ?? " (its base snapshot)")
            + ": snapshot \(SnapshotID.short(state.baseSnapshot)) + \(state.txid) archived commit\(state.txid == 1 ? "" : "s") from \(state.target)"
    }
}

/// What `diff` and `recover` read instead of live's past: a snapshot, or a state of the archive.
struct CopyToCompare {
    var path: String
    /// "snapshot 1a2b3c4d5e6f (cloud-daily-…, taken …)" or the archive state's description.
    var what: String
    /// The snapshot the copy is, or the base snapshot the archive state was built on (for the audit trail).
    var snapshotID: String
    /// For the audit trail and JSON: the archive state (nil for a snapshot).
    var state: PointInTimeScratch.State?

    var json: [String: Any] {
        guard let state else { return ["snapshot": snapshotID] }
        return ["generation": state.generation, "txid": state.txid, "seen_at": state.seenAt.map(ISO8601.string) as Any,
                "base_snapshot": state.baseSnapshot, "target": state.target]
    }
}

extension Context {
    /// `--snapshot ID` restored (and verified) into scratch, or the `--at`/`--txid` state of the archive.
    func copyToCompare(_ catalog: Catalog, snapshot: String?, _ options: PointInTimeOptions, _ database: DatabaseOption) async throws -> CopyToCompare {
        if try options.asked() {
            guard snapshot == nil else { throw UsageError("give --snapshot ID or --at TIME / --txid N, not both") }
            let (name, path, state) = try await pointInTimeCopy(catalog, options, database)
            return CopyToCompare(path: path, what: describe(state, database: name), snapshotID: state.baseSnapshot, state: state)
        }
        guard let snapshot else { throw UsageError("give --snapshot ID, or --at TIME / --txid N (a state of the WAL archive)") }
        let record = try catalog.snapshot(snapshot)
        let progress = ProgressLine()
        defer { progress.clear() }
        let path = try await ScratchRestore(verifier: verifier(catalog, progress: progress)).ensure(record) { try target(for: record) }
        return CopyToCompare(path: path, what: "snapshot \(record.shortID) (\(record.name), taken \(local(record.takenAt)))", snapshotID: record.id)
    }
}
