import Foundation

/// Whether the next snapshot of a job with `incremental:` can be an
/// incremental, and on which parent — or why it must be a full.
enum IncrementalPlan: Equatable {
    case full(reason: String?)
    case incremental(parent: SnapshotRecord, chain: [SnapshotRecord])

    /// The parent is the job's newest snapshot on this target in catalog order
    /// (what the clock says may be wrong). A new full when the chain has
    /// `fullEvery` links, when its increments already add up to more than its
    /// full (a restore would read more than twice a full's bytes), or when a
    /// link is missing or its last verification failed.
    ///
    /// Not "half a full", as issue #14 first said: a BOS day changes 15–20% of
    /// the pages, so half a full ends every chain after two or three days and
    /// `full_every: 7` could never be reached; a restore inflates each page once
    /// whatever the chain's length, so a longer chain costs only the reading.
    static func decide(catalog: Catalog, job: String, target: String, database: String, fullEvery: Int?) throws -> IncrementalPlan {
        guard let fullEvery else { return .full(reason: nil) }
        guard let parent = try catalog.snapshotsInCatalogOrder(job: job).last(where: { $0.target == target }) else {
            return .full(reason: "first snapshot of the job")
        }
        guard parent.layout.format == 2, parent.layout.database == database, parent.layout.pagemapKey != nil else {
            return .full(reason: "the newest snapshot \(SnapshotID.short(parent.id)) has no page map")
        }
        let chain = try catalog.chain(of: parent)
        guard let root = chain.last, root.layout.kind == .full else {
            return .full(reason: "the chain of \(SnapshotID.short(parent.id)) misses its link \(SnapshotID.short(chain.last?.layout.parentID ?? "?"))")
        }
        if chain.count >= fullEvery { return .full(reason: "the chain has \(chain.count) links (full_every: \(fullEvery))") }
        for link in chain {
            if let verification = try catalog.lastVerification(of: link.id), !verification.ok {
                return .full(reason: "link \(SnapshotID.short(link.id)) of the chain failed verification")
            }
        }
        let increments = chain.dropLast().reduce(Int64(0)) { $0 + $1.storedBytes }
        if increments > root.storedBytes {
            return .full(reason: "the chain's increments (\(ByteCount.format(increments))) add up to more than its full (\(ByteCount.format(root.storedBytes)))")
        }
        return .incremental(parent: parent, chain: chain)
    }
}
