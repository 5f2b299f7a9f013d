import Foundation

/// Re-creates catalog rows from the manifests on a target: a lost or damaged
/// catalog must not mean lost backups.
public struct CatalogRebuild {
    public struct Outcome: Sendable {
        public var added: [SnapshotRecord] = []
        public var alreadyKnown = 0
        /// Manifests that could not be used, and why.
        public var skipped: [(key: String, why: String)] = []
    }

    public let catalog: Catalog
    /// Told the manifests read so far, against how many the target lists.
    public var progress: ProgressHandler?
    public init(catalog: Catalog) { self.catalog = catalog }

    public func rebuild(targetName: String, target: Target) async throws -> Outcome {
        var outcome = Outcome()
        let objects = try await target.list(prefix: "")
        let sizes = Dictionary(objects.map { ($0.key, $0.size) }, uniquingKeysWith: { a, _ in a })
        let manifests = objects.map(\.key).filter { $0.hasSuffix(".manifest.json") }
        for (done, manifestKey) in manifests.enumerated() {
            progress?(ProgressUpdate(phase: "reading manifests on \(targetName)", done: Int64(done), total: Int64(manifests.count), unit: .items))
            // A manifest that cannot be fetched fails the rebuild (try again); one that is no
            // manifest is skipped, with why.
            let data = try await target.get(key: manifestKey)
            let record: SnapshotRecord
            do {
                guard let found = try SnapshotManifest.decode(data).record(target: targetName, targetURL: target.displayURL,
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
            guard sizes[record.objectKey] != nil else {
                outcome.skipped.append((manifestKey, "its snapshot object \(record.objectKey) is missing"))
                continue
            }
            try catalog.insert(record)
            try catalog.addAudit(action: "rebuild", snapshotID: record.id, detail: "re-created from \(manifestKey) on \(target.displayURL)")
            outcome.added.append(record)
        }
        return outcome
    }
}
