import Crypto
import Foundation

/// One thing wrong with the trail: the row it shows at (nil: not one row) and what.
public struct AuditDamage: Equatable, Sendable {
    public var rowID: Int64?
    public var what: String
}

/// The answer of `audit verify`. Damage is found damage (exit 4); a target
/// that could not be read is "could not check" (exit 1): the chain may be
/// fine, but a cut-off trail would only show against that target's seals.
public struct AuditVerification: Sendable {
    public var rows = 0
    public var headRowID: Int64 = 0
    public var damage: [AuditDamage] = []
    public var sealsChecked = 0
    /// The newest seal found anywhere: (row, target, date).
    public var newestSeal: (rowID: Int64, target: String, at: Date)?
    public var unreadableTargets: [(target: String, error: String)] = []

    public var verdict: VerificationResult.Verdict {
        if !damage.isEmpty { return .damaged }
        return unreadableTargets.isEmpty ? .passed : .couldNotCheck
    }
    /// The first bad row, for the one-line answer.
    public var firstBadRow: Int64? { damage.compactMap(\.rowID).min() }
}

/// Checks every link of the chain, then every seal on every target against
/// the trusted public key and against the chain.
public struct AuditVerifier {
    let catalog: Catalog
    let host: String
    let publicKey: Curve25519.Signing.PublicKey

    public init(catalog: Catalog, host: String, publicKey: Curve25519.Signing.PublicKey) {
        (self.catalog, self.host, self.publicKey) = (catalog, host, publicKey)
    }

    /// The chain alone: each row must follow the one before and match its own hash.
    public static func checkChain(_ rows: [AuditRow], trail: String) -> [AuditDamage] {
        var damage: [AuditDamage] = []
        var previous = AuditChain.genesis(trail: trail)
        var previousID: Int64?
        for row in rows {
            let after = previousID.map { "row \($0)" } ?? "the start of the trail"
            if row.previousSHA256 != previous {
                damage.append(AuditDamage(rowID: row.id, what: "row \(row.id) does not follow \(after): a row between was removed, changed or moved"))
            } else if row.sha256 != AuditChain.hash(of: row, previous: previous) {
                damage.append(AuditDamage(rowID: row.id, what: "row \(row.id) does not match its hash: it was edited"))
            }
            previous = row.sha256 ?? ""
            previousID = row.id
        }
        return damage
    }

    /// `open` gives a target's repository; one it cannot open is a target not checked.
    public func verify(targets: [String], open: (String) throws -> Repository) async throws -> AuditVerification {
        let rows = try catalog.auditChain()
        let trail = try catalog.auditTrailID()
        var result = AuditVerification()
        result.rows = rows.count
        result.headRowID = rows.last?.id ?? 0
        result.damage = Self.checkChain(rows, trail: trail)
        let byID = Dictionary(rows.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for name in targets {
            let seals: [(key: String, seal: AuditSeal?)]
            do { seals = try await open(name).auditSeals(host: host, trail: trail) } catch {
                result.unreadableTargets.append((name, "\(error)"))
                continue
            }
            for (key, seal) in seals {
                result.sealsChecked += 1
                result.damage += check(seal, key: key, on: name, rows: byID, head: result.headRowID)
                if let seal, seal.rowID > result.newestSeal?.rowID ?? 0 { result.newestSeal = (seal.rowID, name, seal.date) }
            }
        }
        return result
    }

    private func check(_ seal: AuditSeal?, key: String, on target: String, rows: [Int64: AuditRow], head: Int64) -> [AuditDamage] {
        guard let seal else { return [AuditDamage(rowID: nil, what: "seal \(key) on \(target) is not a readable seal")] }
        let sealed = "the seal of \(ISO8601.string(seal.date, in: TimeZone(identifier: "UTC")!)) on \(target)"
        guard seal.isSigned(by: publicKey) else {
            return [AuditDamage(rowID: nil, what: "\(sealed) (\(key)) is not signed by the trusted audit key")]
        }
        guard let row = rows[seal.rowID] else {
            if seal.rowID > head {
                return [AuditDamage(rowID: head + 1, what: "the trail ends at row \(head), but \(sealed) covers row \(seal.rowID): rows were cut off")]
            }
            return [AuditDamage(rowID: seal.rowID, what: "row \(seal.rowID), covered by \(sealed), is gone")]
        }
        guard row.sha256 == seal.rowSHA256 else {
            return [AuditDamage(rowID: seal.rowID, what: "row \(seal.rowID) is not the row \(sealed) covers: the trail was rewritten")]
        }
        return []
    }
}
