import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Files follow the roles (docs/DESIGN.md "Roles"): the catalog (with its
/// -wal and -shm), its folder and the drill reports become readable by the
/// auditor group, the scratch folder by the operator group, so those may look
/// without sudo. Never group-writable: root writes into these folders, and a
/// folder others may write into is one where they plant symlinks
/// (`PrivateFolder`). Keys stay 0600. Only what this account owns is changed.
public struct RoleFiles {
    let auditorGroup: gid_t?
    let operatorGroup: gid_t?

    public init(roles: RolePolicy) {
        auditorGroup = roles.group(of: .auditor).flatMap(Caller.groupID)
        operatorGroup = roles.group(of: .operator).flatMap(Caller.groupID)
    }

    /// The catalog file, its sidecars, its folder and the reports folder beside it.
    public func shareCatalog(_ path: String) {
        guard let auditorGroup else { return }
        let folder = (path as NSString).deletingLastPathComponent
        for file in [path, path + "-wal", path + "-shm"] { share(file, group: auditorGroup, mode: 0o640) }
        share(folder, group: auditorGroup, mode: 0o750)
        share((folder as NSString).appendingPathComponent("drills"), group: auditorGroup, mode: 0o750)
        for report in (try? FileManager.default.contentsOfDirectory(atPath: folder + "/drills")) ?? [] {
            share(folder + "/drills/" + report, group: auditorGroup, mode: 0o640)
        }
    }

    /// Scratch: the triage copies an operator may open in sqlite3.
    public func shareScratch(_ path: String) {
        guard let operatorGroup else { return }
        share(path, group: operatorGroup, mode: 0o750)
    }

    /// Gives `path` (when it exists, is ours, and is no symlink) the group and the mode's
    /// group-read bit; a folder also group-search. Never more than `mode`.
    private func share(_ path: String, group: gid_t, mode: mode_t) {
        var st = stat()
        guard lstat(path, &st) == 0, st.st_uid == geteuid(), (st.st_mode & S_IFMT) != S_IFLNK else { return }
        if st.st_gid != group { _ = lchown(path, uid_t.max, group) }
        let isFolder = (st.st_mode & S_IFMT) == S_IFDIR
        let wanted = (st.st_mode & 0o700) | (isFolder ? 0o050 : 0o040)
        if st.st_mode & 0o7777 != wanted & mode | (st.st_mode & 0o700) { _ = chmod(path, (wanted & mode) | (st.st_mode & 0o700)) }
    }
}
