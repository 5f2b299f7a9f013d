import Foundation

/// `verify --chain --restore`: the archive rebuilt at a pinned txid and compared
/// with its own checksum. When a generation continues into a new one, the new
/// one's base snapshot is the state right after a txid of the old one, so
/// replaying the old generation's base and segments to that txid must give, byte
/// for byte, the image whose SHA-256 that snapshot recorded.
public struct PinnedStateCheck {
    public struct Result: Sendable {
        public var target: String
        public var generation: String
        public var txid: Int64
        /// The snapshot whose image the state must be.
        public var snapshot: String
        public var ok: Bool
        public var why: String?
        public var seconds: Double
    }

    public let catalog: Catalog
    public let restorer: SnapshotRestorer
    /// Where the rebuilt state is written (and removed after).
    public let scratch: String
    public let segmentsOn: (String) throws -> Target
    public let baseOn: (SnapshotRecord) throws -> Target

    public init(catalog: Catalog, restorer: SnapshotRestorer, scratch: String, segmentsOn: @escaping (String) throws -> Target,
                baseOn: @escaping (SnapshotRecord) throws -> Target) {
        (self.catalog, self.restorer, self.scratch, self.segmentsOn, self.baseOn) = (catalog, restorer, scratch, segmentsOn, baseOn)
    }

    /// The newest pinned state, rebuilt from each target. Empty: nothing is pinned yet
    /// (the first pin comes with the first `base_every` rotation).
    public func run(database: String, host: String, targets: [String]) async throws -> [Result] {
        let pitr = PointInTimeRestore(catalog: catalog)
        for generation in try catalog.generations(database: database, host: host).reversed() {
            guard let pin = try catalog.checks(generation: generation.id).first,
                  let expected = try catalog.snapshot(id: pin.snapshot) else { continue }
            var results: [Result] = []
            for target in targets {
                let started = Date()
                var result = Result(target: target, generation: generation.id, txid: pin.txid, snapshot: pin.snapshot, ok: false, why: nil, seconds: 0)
                do {
                    let plans = try pitr.plans(txid: pin.txid, generation: generation.id, database: database, host: host, targets: [target])
                    try PrivateFolder.prepare(scratch)
                    let path = scratch + "/pinned-\(UInt32.random(in: 0...UInt32.max)).db"
                    defer { unlink(path) }
                    _ = try await pitr.restore(plans, into: path, force: false, using: restorer, segmentsOn: segmentsOn, baseOn: baseOn)
                    let rebuilt = try SHA256Stream.hex(ofFile: path)
                    result.ok = rebuilt == expected.databaseSHA256
                    if !result.ok { result.why = "the rebuilt state's SHA-256 is \(rebuilt.prefix(12))…, the image of snapshot \(expected.shortID) is \(expected.databaseSHA256.prefix(12))…" }
                } catch let error as CategorizedError where error is PointInTimeError || error.category == .mismatch {
                    result.why = "\(error)"   // damaged, or this target does not hold the commits up to it: found, not "could not check"
                }
                result.seconds = Date().timeIntervalSince(started)
                results.append(result)
            }
            return results
        }
        return []
    }
}
