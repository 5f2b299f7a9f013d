import Foundation

/// The audit trail could not be written, so the command did nothing (it fails
/// closed: no state change goes unrecorded).
public struct AuditUnwritable: Error, CustomStringConvertible, CategorizedError, Sendable {
    public let action: String
    public let why: String
    public var description: String {
        "cannot write the audit trail (\(why)): refusing to \(action); nothing was changed"
    }
    public var category: ErrorCategory { .failure }
}

/// A seal of the chain's head as the catalog remembers it.
public struct AuditSealRecord: Equatable, Sendable {
    public var rowID: Int64
    public var rowSHA256: String
    public var sealedAt: Date
    public var objectKey: String
    /// The targets it was stored on.
    public var targets: [String]
}

extension Catalog {
    /// Appends a chained row (docs/DESIGN.md "The audit trail").
    @discardableResult
    public func addAudit(action: String, snapshotID: String?, detail: String) throws -> AuditRow {
        try AuditChain.append(db, at: clock.now(), actor: actor, action: action, snapshotID: snapshotID, detail: detail)
    }

    /// The row a state-changing command writes before it acts. When it cannot be
    /// written the command must not act: this throws `AuditUnwritable`, which says so.
    @discardableResult
    public func auditFirst(action: String, snapshotID: String? = nil, detail: String) throws -> AuditRow {
        do {
            return try addAudit(action: action, snapshotID: snapshotID, detail: detail)
        } catch {
            throw AuditUnwritable(action: action, why: "\(error)")
        }
    }

    /// The newest rows first.
    public func auditTrail(limit: Int = 100) throws -> [AuditRow] {
        try AuditChain.rows(db, newestFirst: true, limit: limit)
    }

    /// Every row, oldest first, for `audit verify`.
    public func auditChain() throws -> [AuditRow] { try AuditChain.rows(db) }

    /// The name of this catalog's trail (seals on a target are filed under it).
    public func auditTrailID() throws -> String { try AuditChain.trailID(db) }

    public func recordAuditSeal(_ seal: AuditSealRecord) throws {
        try db.run("INSERT INTO audit_seals (row_id, row_sha256, sealed_at, object_key, targets) VALUES (?,?,?,?,?)",
                   .integer(seal.rowID), .text(seal.rowSHA256), .real(seal.sealedAt.timeIntervalSince1970), .text(seal.objectKey),
                   .text(seal.targets.joined(separator: ",")))
    }

    public func auditSeals() throws -> [AuditSealRecord] {
        try db.rows("SELECT row_id, row_sha256, sealed_at, object_key, targets FROM audit_seals ORDER BY row_id, id").map {
            AuditSealRecord(rowID: $0[0].int ?? 0, rowSHA256: $0[1].string ?? "", sealedAt: Date(timeIntervalSince1970: $0[2].double ?? 0),
                            objectKey: $0[3].string ?? "", targets: ($0[4].string ?? "").split(separator: ",").map(String.init))
        }
    }
}
