import Foundation

/// The state at a point in time restored once into scratch (`restored/`) and
/// reused by the commands of one incident — triage, `diff --at`, `recover
/// --at` — instead of a restore per command. Beside each copy a small record
/// says which state it is and its SHA-256; a copy whose bytes no longer match
/// is restored again. `scratch clean` removes them.
public struct PointInTimeScratch {
    /// Which state a copy holds.
    public struct State: Codable, Sendable {
        public var generation: String
        public var txid: Int64
        public var seenAt: Date?
        public var baseSnapshot: String
        public var target: String
        public var sha256: String
        public var tables: [String: Int64]
    }

    public let catalog: Catalog
    public let restorer: SnapshotRestorer
    public let folder: String

    public init(catalog: Catalog, restorer: SnapshotRestorer, scratch: String) {
        self.catalog = catalog
        self.restorer = restorer
        folder = scratch + "/restored"
    }

    /// The copy for `plans` (all ways to one state, as `PointInTimeRestore.plans` gives
    /// them): reused when it is there and unchanged, else restored from the first target
    /// that can. `unusable`: the targets that could not, and why.
    public func ensure(_ plans: [PointInTimePlan], segmentsOn: (String) throws -> Target, baseOn: (SnapshotRecord) throws -> Target)
        async throws -> (path: String, state: State, unusable: [(target: String, error: String)]) {
        let path = folder + "/" + Self.name(plans[0])
        let record = path + ".state.json"
        if ScratchRestore.isOurRegularFile(path), let data = FileManager.default.contents(atPath: record),
           let state = try? JSONDecoder().decode(State.self, from: data), (try? SHA256Stream.hex(ofFile: path)) == state.sha256 {
            return (path, state, [])   // anything unreadable or changed above means: restore it again
        }
        try PrivateFolder.prepare(folder)
        unlink(path)
        unlink(record)
        let restored = try await PointInTimeRestore(catalog: catalog).restore(plans, into: path, force: false, using: restorer,
                                                                              segmentsOn: segmentsOn, baseOn: baseOn)
        let state = State(generation: restored.plan.generation.id, txid: restored.applied.txid, seenAt: restored.applied.seenAt,
                          baseSnapshot: restored.plan.base.id, target: restored.plan.target, sha256: try SHA256Stream.hex(ofFile: path),
                          tables: restored.outcome.tables)
        try DurableFile.write(try JSONEncoder().encode(state), to: record)
        return (path, state, restored.unusable)
    }

    /// `at-<generation>-<time>.db` or `txid-<generation>-<N>.db`: one name per asked-for state.
    static func name(_ plan: PointInTimePlan) -> String {
        let generation = SnapshotID.short(plan.generation.id)
        if plan.at == .distantFuture { return "txid-\(generation)-\(plan.lastTxid).db" }
        return "at-\(generation)-" + String(format: "%.6f", plan.at.timeIntervalSince1970) + ".db"
    }
}
