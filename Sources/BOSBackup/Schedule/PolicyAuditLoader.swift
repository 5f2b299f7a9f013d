import Foundation
import Yams

extension PolicyLoader {
    /// `audit: { seal_every: 100, seal_interval: 1h }`: how often the audit trail's head is sealed.
    func auditSealing(_ node: Node) throws -> AuditSealing {
        let audit = try mapping(node, "audit", allowed: ["seal_every", "seal_interval"])
        var sealing = AuditSealing()
        if let every = audit["seal_every"] {
            sealing.every = try int(every, "audit.seal_every")
            guard (1...1_000_000).contains(sealing.every) else { throw fail(every, "audit.seal_every", "must be 1 to 1000000 rows") }
        }
        if let interval = audit["seal_interval"] {
            sealing.interval = try duration(interval, "audit.seal_interval")
            guard sealing.interval >= 60 else { throw fail(interval, "audit.seal_interval", "must be at least 1m") }
        }
        return sealing
    }
}
