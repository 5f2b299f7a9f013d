import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The person running bosbackup: its uid, name and every group (primary and
/// supplementary) by name. Real ids, not effective: a setuid copy must not
/// lend its owner's role. Through sudo (operators and admins run bosbackup as
/// the account that owns the catalog, `sudo -u bosbackup bosbackup …`, so its
/// files stay private to that account) it is the user sudo names: SUDO_UID is
/// believed only when the real user is root or that account, whom nobody
/// becomes without sudo (or a login) setting it.
public struct Caller: Equatable, Sendable {
    public var uid: uid_t
    public var name: String
    public var groups: [String]

    public init(uid: uid_t, name: String, groups: [String]) {
        (self.uid, self.name, self.groups) = (uid, name, groups)
    }

    /// `serviceUID`: the account bosbackup's files belong to (the catalog's owner).
    public static func current(environment: [String: String] = ProcessInfo.processInfo.environment, serviceUID: uid_t? = nil) -> Caller {
        let real = getuid()
        if real == 0 || real == serviceUID, let text = environment["SUDO_UID"], let invoker = uid_t(text), invoker != real {
            return account(invoker, ownGroups: false)
        }
        return account(real, ownGroups: true)
    }

    /// `ownGroups`: add the groups this process holds (`setpriv`, `newgrp`): for the
    /// process's own user only, not for a sudo invoker (whose groups are the account's).
    static func account(_ uid: uid_t, ownGroups: Bool) -> Caller {
        guard let entry = getpwuid(uid), let namePointer = entry.pointee.pw_name else {
            return Caller(uid: uid, name: "uid \(uid)", groups: ownGroups ? groupNames([getgid()]) : [])
        }
        let name = String(cString: namePointer)
        var count: Int32 = 64
        var ids = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(namePointer, entry.pointee.pw_gid, &ids, &count) < 0 {
            ids = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(namePointer, entry.pointee.pw_gid, &ids, &count)
        }
        var now: [gid_t] = []
        if ownGroups {
            let held = Int(getgroups(0, nil))
            now = [gid_t](repeating: 0, count: max(held, 0))
            if held > 0 { _ = getgroups(Int32(held), &now) }
            now.append(getgid())
        }
        return Caller(uid: uid, name: name, groups: groupNames(Array(ids.prefix(Int(max(count, 0)))) + now))
    }

    static func groupNames(_ ids: [gid_t]) -> [String] {
        var names: [String] = []
        for id in Set(ids) {
            if let group = getgrgid(id), let name = group.pointee.gr_name { names.append(String(cString: name)) }
        }
        return names.sorted()
    }

    /// The id of a group by name (nil: no such group).
    public static func groupID(_ name: String) -> gid_t? { getgrnam(name).map { $0.pointee.gr_gid } }
}
