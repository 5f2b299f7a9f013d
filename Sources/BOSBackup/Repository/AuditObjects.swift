import Foundation

/// Seals of a catalog's audit trail on a target: `<host>/audit/<trail>/seals/<row id>.json`
/// (the row id zero-padded, so key order is chain order). A seal is never
/// rewritten: a second seal of the same row would be the same statement.
extension Repository {
    static func auditSealPrefix(host: String, trail: String) -> String { "\(host)/audit/\(trail)/seals/" }

    static func auditSealKey(_ seal: AuditSeal) -> String {
        auditSealPrefix(host: seal.host, trail: seal.trail) + String(format: "%012lld", seal.rowID) + ".json"
    }

    /// Stores a seal; returns its key.
    @discardableResult
    public func putAuditSeal(_ seal: AuditSeal) async throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let key = Self.auditSealKey(seal)
        try await target.put(key: key, data: try encoder.encode(seal))
        return key
    }

    /// Every seal of a trail on this target, in chain order. One that is no
    /// readable seal is returned as `unreadable` (damage to report, not to skip).
    public func auditSeals(host: String, trail: String) async throws -> [(key: String, seal: AuditSeal?)] {
        var found: [(key: String, seal: AuditSeal?)] = []
        for object in try await target.list(prefix: Self.auditSealPrefix(host: host, trail: trail)) where object.key.hasSuffix(".json") {
            let data = try await target.get(key: object.key)
            found.append((object.key, try? JSONDecoder().decode(AuditSeal.self, from: data)))
        }
        return found
    }
}
