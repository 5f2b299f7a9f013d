import Foundation

/// Re-creates catalog rows from the manifests on a target: a lost or damaged
/// catalog must not mean lost backups. On a bucket many hosts share, only
/// this host's namespace is adopted (and v1 snapshots, which have none)
/// unless `allHosts`: another host's snapshots in our catalog would be pruned
/// by our retention.
public struct CatalogRebuild {
    public struct Outcome: Sendable {
        public var added: [SnapshotRecord] = []
        public var alreadyKnown = 0
        /// v2 snapshots of other hosts, left out (see `allHosts`).
        public var otherHosts = 0
        /// Manifests that could not be used, and why.
        public var skipped: [(key: String, why: String)] = []
        /// WAL archive generations and segments re-cataloged.
        public var archiveGenerations = 0
        public var archiveSegments = 0
    }

    public let catalog: Catalog
    /// Told the manifests read so far, against how many the target lists.
    public var progress: ProgressHandler?
    /// This host's namespace (nil: adopt every host's, as `allHosts`).
    public var host: String?
    public var allHosts = false
    public init(catalog: Catalog, host: String? = nil) {
        self.catalog = catalog
        self.host = host
    }

    public func rebuild(targetName: String, target: Target) async throws -> Outcome {
        var outcome = Outcome()
        let repository = Repository(target: target)
        let (listed, sizes) = try await repository.manifestKeys(under: "")
        var manifests: [String] = []
        for key in listed {
            if adopts(key) { manifests.append(key) } else { outcome.otherHosts += 1 }
        }
        // In name order ("job-<time>" before "job-<time>-<id>", its same-second successor): the
        // catalog lists snapshots of one second in the order they were cataloged.
        manifests.sort { $0.replacingOccurrences(of: ".manifest.json", with: "") < $1.replacingOccurrences(of: ".manifest.json", with: "") }
        for (done, manifestKey) in manifests.enumerated() {
            progress?(ProgressUpdate(phase: "reading manifests on \(targetName)", done: Int64(done), total: Int64(manifests.count), unit: .items))
            // A manifest that cannot be fetched fails the rebuild (try again); one that is no
            // manifest is skipped, with why.
            let data = try await repository.get(manifestKey: manifestKey)
            var record: SnapshotRecord
            do {
                let document = try ManifestDocument.decode(data)
                if let owner = document.host, !allHosts, let host, owner != host { outcome.otherHosts += 1; continue }
                guard let found = document.record(target: targetName, targetURL: target.displayURL,
                                                  manifestKey: manifestKey, manifestSHA256: SHA256Stream.hex(of: data)) else {
                    outcome.skipped.append((manifestKey, "not a readable manifest: it names no snapshot"))
                    continue
                }
                record = found
            } catch {
                outcome.skipped.append((manifestKey, "not a readable manifest: \(error)"))
                continue
            }
            if try catalog.containsSnapshot(id: record.id) { outcome.alreadyKnown += 1; continue }
            // Another host's job may have the same name and time as ours (--all-hosts): its
            // name in this catalog says whose it is.
            if let owner = record.layout.host, owner != host, try catalog.containsSnapshot(name: record.name) { record.name += "@" + owner }
            if try catalog.containsSnapshot(name: record.name) { record.name += "-" + record.shortID }
            guard sizes[record.objectKey] != nil else {
                outcome.skipped.append((manifestKey, "its snapshot object \(record.objectKey) is missing"))
                continue
            }
            try catalog.insert(record)
            try catalog.addAudit(action: "rebuild", snapshotID: record.id, detail: "re-created from \(manifestKey) on \(target.displayURL)")
            outcome.added.append(record)
        }
        try await rebuildArchive(targetName: targetName, repository: repository, keys: sizes.keys.sorted(), &outcome)
        return outcome
    }

    /// v2 keys are `<host>/<database>/snapshots/…`: another host's are left
    /// unread. Anything else (v1's `<job>/<YYYY>/…`) is read and decided by its manifest.
    private func adopts(_ key: String) -> Bool {
        guard !allHosts, let host else { return true }
        let parts = key.split(separator: "/", maxSplits: 3)
        guard parts.count == 4, parts[2] == "snapshots" else { return true }
        return parts[0] == host
    }
}
