import BOSBackup
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The role each command needs (docs/DESIGN.md "Roles"; `RoleMatrixTests` runs every
/// command of that table as a real user of each role). Every command asks
/// before it opens anything it could change.
extension Context {
    func authorize(_ needed: Role, _ what: String) throws {
        guard let roles = policy?.roles else { return }   // no roles: whoever may run bosbackup may do anything (v1)
        var owner = stat()
        let serviceUID = catalogPath.flatMap { stat($0, &owner) == 0 ? owner.st_uid : nil }
        let caller = Caller.current(environment: environment, serviceUID: serviceUID)
        let role = roles.role(of: caller)
        if let role, role >= needed { return }
        let denial = AccessDenied(caller: caller.name, role: role, needed: needed, what: what, policyFile: policy?.file)
        recordDenial(denial)
        throw denial
    }

    /// A denial is audited: in the trail when this user may write the catalog, else
    /// (an auditor, a stranger) in the system log's authpriv facility, as sudo does.
    private func recordDenial(_ denial: AccessDenied) {
        if let catalogPath, DurableFile.exists(catalogPath), access(catalogPath, W_OK) == 0,
           (try? Catalog(path: catalogPath, clock: clock).addAudit(action: "denied", snapshotID: nil, detail: denial.description)) != nil {
            return
        }
        openlog("bosbackup", LOG_PID, LOG_AUTHPRIV)
        withVaList([denial.description]) { vsyslog(LOG_WARNING, "%s", $0) }
        closelog()
    }

    /// With roles: the catalog and reports readable by the auditor group, scratch by
    /// the operator group (`RoleFiles`); after every writer's open and every drill.
    func shareFiles() {
        guard let roles = policy?.roles, let catalogPath else { return }
        let files = RoleFiles(roles: roles)
        files.shareCatalog(catalogPath)
        files.shareScratch(scratch)
    }

    /// Restoring into `path` replaces what is there: inside scratch that is the
    /// operator's own copy; anywhere else it may be the live database.
    func restoreRole(into path: String) -> Role {
        let scratchFolder = URL(fileURLWithPath: scratch).standardizedFileURL.path + "/"
        return URL(fileURLWithPath: path).standardizedFileURL.path.hasPrefix(scratchFolder) ? .operator : .admin
    }
}
