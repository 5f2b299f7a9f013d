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

extension PolicyLoader {
    /// `roles: { admin: [alice, group:bosadmin], operator: [group:bosops], auditor: [group:bosaudit] }`.
    func roles(_ node: Node) throws -> RolePolicy {
        let roles = try mapping(node, "roles", allowed: Set(Role.allCases.map(\.description)))
        var members: [Role: [RoleMember]] = [:]
        for (name, value) in roles {
            let keyPath = "roles.\(name)"
            guard case .sequence(let list) = value else { throw fail(value, keyPath, "expected a list of users and group:NAME entries") }
            members[Role(name: name)!] = try list.map { entry in
                let text = try string(entry, keyPath)
                let member = RoleMember(text)
                let bare: String
                switch member { case .user(let n), .group(let n): bare = n }
                guard !bare.isEmpty, bare.count <= 32, bare.utf8.allSatisfy(Self.isNameByte) else {
                    throw fail(entry, keyPath, "\"\(text)\" is not a user or group:NAME (letters, digits, '.', '_', '-')")
                }
                return member
            }
        }
        return RolePolicy(members: members)
    }

    static func isNameByte(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || byte == 0x2e || byte == 0x5f || byte == 0x2d
    }
}
