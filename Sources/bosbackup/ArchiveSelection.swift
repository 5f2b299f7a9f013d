import BOSBackup

extension Context {
    /// The database a point-in-time command works on (`--database`, else the policy's
    /// only one) and its `archive:` entry.
    func archivedDatabase(_ option: DatabaseOption) throws -> (policy: Policy, name: String, archive: Policy.Archive) {
        let policy = try requirePolicy()
        let named = try database(option)
        if named == nil, policy.databases.count > 1 {
            throw UsageError("the policy has several databases (\(policy.databases.map(\.name).joined(separator: ", "))): give --database NAME")
        }
        let name = named ?? policy.databases.first.map(\.name) ?? Policy.defaultDatabaseName
        guard let archive = policy.archive(of: name) else {
            throw UsageError("the policy has no archive: entry for database \(name) (e.g. archive: { \(name): { targets: { nas: 1s } } })")
        }
        return (policy, name, archive)
    }
}

extension Context {
    /// The archive's retention with this command's clock and targets.
    func archiveRetention(_ catalog: Catalog) -> ArchiveRetention {
        ArchiveRetention(catalog: catalog, clock: clock, openTarget: { try target(named: $0, role: .prune) },
                         pruner: Pruner(catalog: catalog, openTarget: { try target(for: $0, role: .prune) }))
    }

    /// One line of what archive retention removed (or would).
    static func describe(_ outcome: ArchiveRetention.Outcome, database: String, dryRun: Bool) -> String? {
        guard !outcome.generations.isEmpty || !outcome.bases.isEmpty else { return nil }
        let verb = dryRun ? "would remove" : "removed"
        return "archive of \(database): \(verb) \(outcome.generations.count) generation\(outcome.generations.count == 1 ? "" : "s") "
            + "(\(outcome.segments) segments) and \(outcome.bases.count) base snapshot\(outcome.bases.count == 1 ? "" : "s") older than retain"
    }
}

extension Context {
    /// A restorer with this command's scratch and clock, reporting to `progress`.
    func restorer(_ catalog: Catalog, progress: ProgressLine) -> SnapshotRestorer {
        var restorer = SnapshotRestorer(catalog: catalog, clock: clock)
        restorer.scratch = scratch
        restorer.progress = progress.handler
        return restorer
    }
}
