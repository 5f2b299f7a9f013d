import Foundation

/// When the chain's head gets sealed: every `every` rows, or once an
/// `interval` has passed since the last seal and the head has moved
/// (`audit: { seal_every: 100, seal_interval: 1h }` in the policy).
public struct AuditSealing: Equatable, Sendable {
    public var every: Int
    public var interval: TimeInterval
    public static let defaultEvery = 100
    public static let defaultInterval: TimeInterval = 3_600
    public init(every: Int = AuditSealing.defaultEvery, interval: TimeInterval = AuditSealing.defaultInterval) {
        self.every = every
        self.interval = interval
    }
}

/// What one sealing did.
public struct AuditSealOutcome: Sendable {
    /// nil: nothing was due (or no target took it).
    public var sealed: AuditSealRecord?
    public var keyCreated = false
    public var failures: [(target: String, error: String)] = []
    public init() {}
}

/// Seals the chain's head onto every target (`audit seal`, and after `run`
/// and every audited command when due). A target that fails is reported and
/// the others still get the seal; the catalog records the targets that took it.
public struct AuditSealer {
    let catalog: Catalog
    let host: String
    let keyFolder: String
    let sealing: AuditSealing
    let clock: Clock

    public init(catalog: Catalog, host: String, keyFolder: String, sealing: AuditSealing, clock: Clock) {
        (self.catalog, self.host, self.keyFolder, self.sealing, self.clock) = (catalog, host, keyFolder, sealing, clock)
    }

    /// The head row to seal now, or nil when nothing is due (`force`: whenever the head moved).
    public func due(force: Bool = false) throws -> AuditRow? {
        guard let head = try catalog.auditTrail(limit: 1).first else { return nil }
        guard let last = try catalog.auditSeals().last else { return head }
        guard head.id > last.rowID else { return nil }
        if force || head.id - last.rowID >= Int64(sealing.every) { return head }
        return clock.now().timeIntervalSince(last.sealedAt) >= sealing.interval ? head : nil
    }

    public func sealIfDue(targets: [String], force: Bool = false, open: (String) throws -> Repository) async throws -> AuditSealOutcome {
        var outcome = AuditSealOutcome()
        guard var head = try due(force: force), !targets.isEmpty else { return outcome }
        let (key, created) = try AuditSealKey.loadOrCreate(folder: keyFolder)
        outcome.keyCreated = created
        if created {
            head = try catalog.addAudit(action: "seal-key", snapshotID: nil,
                                        detail: "made the audit seal key pair in \(keyFolder) (public key \(key.publicKeyBase64))")
        }
        let seal = try AuditSeal.make(trail: try catalog.auditTrailID(), host: host, row: head, at: clock.now(), key: key)
        var stored: [String] = []
        var objectKey = ""
        for name in targets {
            do {
                objectKey = try await open(name).putAuditSeal(seal)
                stored.append(name)
            } catch {
                outcome.failures.append((name, "\(error)"))
            }
        }
        guard !stored.isEmpty else { return outcome }
        let record = AuditSealRecord(rowID: seal.rowID, rowSHA256: seal.rowSHA256, sealedAt: seal.date, objectKey: objectKey, targets: stored)
        try catalog.recordAuditSeal(record)
        outcome.sealed = record
        return outcome
    }
}
