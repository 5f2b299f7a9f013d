import Foundation

/// A run's last access to one target: could the target be opened and listed?
public struct TargetAccess: Equatable, Sendable {
    public var target: String
    public var accessedAt: Date
    public var ok: Bool
    /// Why not, when it could not.
    public var error: String?
}

/// What monitoring reads beyond snapshots and runs (schema 5).
extension Catalog {
    /// Replaces the target's last access (one row per target: only the latest matters).
    public func recordTargetAccess(_ access: TargetAccess) throws {
        try db.run("""
            INSERT INTO target_access (target, accessed_at, ok, error) VALUES (?,?,?,?)
            ON CONFLICT(target) DO UPDATE SET accessed_at = excluded.accessed_at, ok = excluded.ok, error = excluded.error
            """, .text(access.target), .real(access.accessedAt.timeIntervalSince1970), SQLValue(access.ok), SQLValue(access.error))
    }

    /// Every target's last access, by target name.
    public func targetAccess() throws -> [String: TargetAccess] {
        var result: [String: TargetAccess] = [:]
        for row in try db.rows("SELECT target, accessed_at, ok, error FROM target_access") {
            let target = row[0].string ?? ""
            result[target] = TargetAccess(target: target, accessedAt: Date(timeIntervalSince1970: row[1].double ?? 0),
                                          ok: row[2].int == 1, error: row[3].string)
        }
        return result
    }

    /// The job's most recent verification, of whichever of its snapshots (the drill's
    /// included): a failure stays visible after newer, unverified snapshots are taken.
    public func lastVerification(job: String) throws -> VerificationRecord? {
        let newest = try db.rows("""
            SELECT v.snapshot_id FROM verifications v JOIN snapshots s ON s.id = v.snapshot_id
            WHERE s.job = ? AND s.state = 'complete' ORDER BY v.verified_at DESC, v.id DESC LIMIT 1
            """, .text(job)).first?[0].string
        return try newest.flatMap { try lastVerification(of: $0) }
    }
}
