import Foundation

/// Who may do what (docs/DESIGN.md "Roles"): an auditor looks (status,
/// snapshots, reports, drills, the audit trail: no data, no keys, no writes);
/// an operator runs the daily work (backup, verify, drills, triage into
/// scratch, diff, timeline, recover --sql); an admin may also change what
/// exists (restore outside scratch, recover --apply, prune, keys, catalog rebuild).
public enum Role: Int, Comparable, CaseIterable, Sendable, CustomStringConvertible {
    case auditor = 1, `operator`, admin

    public static func < (a: Role, b: Role) -> Bool { a.rawValue < b.rawValue }
    public var description: String {
        switch self {
        case .auditor: return "auditor"
        case .operator: return "operator"
        case .admin: return "admin"
        }
    }
    public init?(name: String) {
        guard let role = Role.allCases.first(where: { $0.description == name }) else { return nil }
        self = role
    }
}

/// A user or a group named in `roles:` (`alice`, `group:bosops`).
public enum RoleMember: Equatable, Sendable, CustomStringConvertible {
    case user(String)
    case group(String)

    public init(_ text: String) {
        self = text.hasPrefix("group:") ? .group(String(text.dropFirst("group:".count))) : .user(text)
    }
    public var description: String {
        switch self {
        case .user(let name): return name
        case .group(let name): return "group:" + name
        }
    }
}

/// `roles: { admin: […], operator: […], auditor: […] }`. Root is always admin.
public struct RolePolicy: Equatable, Sendable {
    public var members: [Role: [RoleMember]]

    public init(members: [Role: [RoleMember]]) { self.members = members }

    /// The highest role the caller has by name or by any of its groups; nil: none.
    public func role(of caller: Caller) -> Role? {
        if caller.uid == 0 { return .admin }
        return Role.allCases.reversed().first { role in
            (members[role] ?? []).contains { member in
                switch member {
                case .user(let name): return name == caller.name
                case .group(let name): return caller.groups.contains(name)
                }
            }
        }
    }

    /// The first group named for a role: the group files of that role belong to.
    public func group(of role: Role) -> String? {
        for case .group(let name) in members[role] ?? [] { return name }
        return nil
    }
}

/// A command refused for the caller's role: exit 2, nothing changed.
public struct AccessDenied: Error, CustomStringConvertible, CategorizedError, Sendable {
    public let caller: String
    public let role: Role?
    public let needed: Role
    public let what: String
    public let policyFile: String?

    public init(caller: String, role: Role?, needed: Role, what: String, policyFile: String?) {
        (self.caller, self.role, self.needed, self.what, self.policyFile) = (caller, role, needed, what, policyFile)
    }

    public var description: String {
        "denied: \(caller) (\(role.map { "\($0)" } ?? "no role")) may not \(what): it needs the \(needed) role"
            + " (roles: in \(policyFile ?? "the policy"))"
    }
    public var category: ErrorCategory { .input }
}
