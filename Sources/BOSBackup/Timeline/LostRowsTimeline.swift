import Foundation

/// `timeline --table T --lost --live DB`: for the rows of T that live lacks
/// and the archive once held, the commit after which each was missing,
/// grouped by commit, with everything else that commit did. Also the keys
/// deleted more than once, and keys live has again with other content than
/// the row that was deleted (a key reused after a loss).
public struct LostRowsTimeline: Sendable {
    /// One commit that deleted rows live still lacks.
    public struct Loss: Sendable {
        public var moment: CommitMoment
        public var keys: [[SQLValue]]
        /// Everything the commit did, per table.
        public var commit: [TableCount]
    }

    /// A key deleted more than once, or deleted and back in live with other content.
    public struct KeyHistory: Sendable {
        public var key: [SQLValue]
        public var deletions: [CommitMoment]
        public var insertions: [CommitMoment]
        /// The columns in which live's row differs from the last deleted one (empty: deleted again, or put back as it was).
        public var otherColumns: [String]
    }

    public var table: String
    public var keyNames: [String]
    public var losses: [Loss] = []
    public var deletedAgain: [KeyHistory] = []
    public var reused: [KeyHistory] = []
    /// Rows live lacks that the newest archived state still holds: deleted after the last archived commit.
    public var notYetArchived: Int64 = 0
    public var notYetArchivedKeys: [[SQLValue]] = []
    public var span: TimelineSpan?
    public var lostRows: Int { losses.reduce(0) { $0 + $1.keys.count } }

    private enum Event { case deleted(CommitMoment, [SQLValue]), inserted(CommitMoment) }

    public static func build(table name: String, live: String, plans: [PointInTimePlan], timeline: ArchiveTimeline, using restorer: SnapshotRestorer,
                             segmentsOn: (String) throws -> Target, baseOn: (SnapshotRecord) throws -> Target) async throws -> LostRowsTimeline {
        var history: [[SQLValue]: [Event]] = [:]
        var order: [[SQLValue]] = []
        var commits: [CommitMoment: [TableCount]] = [:]
        var result = LostRowsTimeline(table: name, keyNames: [])
        weak var walking: TimelineWalk?
        /// The rowids on the table's leaves as the image has them, for the leaves read since the
        /// last commit that was looked at (any page of it may have moved).
        var leafRowids: [UInt32: [Int64]] = [:]
        /// Whether a commit that leaves the table's tree alone (its leaves' rows aside) deletes
        /// none of its rows and brings back none deleted before: told from the leaves it wrote
        /// alone, against those leaves' rowids before it. Most commits of a BOS insert a row
        /// or two; they are passed, not applied and compared (a table keyed otherwise than by
        /// its rowid is always compared).
        func deletesNothing(_ commit: TimelineCommit) throws -> Bool {
            guard let walk = walking, let table = walk.tables[name], table.keyPositions.isEmpty, !table.withoutRowid else { return false }
            var written: [UInt32: PageVersion] = [:]
            for page in commit.pages where table.shape.rowPages.contains(page.number) { written[page.number] = page.version }
            var read: [(UInt32, [Int64])] = []
            for (number, version) in written {
                guard let new = try LeafRowids.of(try walk.image.inflate(version, page: number), page: number),
                      let old = try leafRowids[number] ?? LeafRowids.of(try walk.image.page(number), page: number) else { return false }
                guard LeafRowids.keeps(old, new, bringingBackNoneOf: { history[[.integer($0)]] != nil }) else { return false }
                read.append((number, new))
            }
            for (number, rowids) in read { leafRowids[number] = rowids }
            return true
        }
        let span = try await timeline.walk(plans, using: restorer, segmentsOn: segmentsOn, baseOn: baseOn, begin: { walk in
            walking = walk
        }, watching: .only(name), passes: deletesNothing, visit: { _, effect in
            leafRowids.removeAll(keepingCapacity: true)
            guard let changes = try effect.comparison(name)?.changes(withChanged: false) else { return }
            var deleted = false
            for change in changes {
                switch change.kind {
                case .deleted:
                    deleted = true
                    if history[change.key] == nil { order.append(change.key) }
                    history[change.key, default: []].append(.deleted(effect.moment, change.old ?? []))
                case .inserted:
                    history[change.key]?.append(.inserted(effect.moment))
                case .changed: break
                }
            }
            if deleted { commits[effect.moment] = try effect.counts() }
        }, end: { walk in
            // The table as it is at the end of the walk (it may have been created during it).
            guard let table = walk.tables[name] else {
                throw TimelineInputError(description: "the archive's database has no table \(name) at its newest state (tables: \(walk.tables.keys.sorted().joined(separator: ", ")))")
            }
            result.keyNames = table.keyNames
            try walk.image.flush()   // the newest state is set against live through SQLite
            try result.compare(history, order, commits, table: table, live: live, newest: walk.image.path)
        })
        result.span = span
        return result
    }

    /// Sets each deleted key against live: still missing (a loss at its last deletion),
    /// back with other content (reused), or deleted more than once.
    private mutating func compare(_ history: [[SQLValue]: [Event]], _ order: [[SQLValue]], _ commits: [CommitMoment: [TableCount]],
                                  table: TrackedTable, live: String, newest: String) throws {
        let db = try ConsistentCopy.openSource(live)
        let lookup = try db.prepare(table.selectByKey)
        var byCommit: [CommitMoment: Loss] = [:]
        for key in order {
            guard let events = history[key] else { continue }
            let deletions = events.compactMap { if case .deleted(let m, _) = $0 { return m }; return nil }
            let insertions = events.compactMap { if case .inserted(let m) = $0 { return m }; return nil }
            guard case .deleted(let last, let values)? = events.last(where: { if case .deleted = $0 { return true }; return false }) else { continue }
            lookup.reset()
            try lookup.bind(key)
            let now = try lookup.step() ? lookup.row() : nil
            if let now {
                let other = zip(values, now).enumerated().filter { $0.element.0 != $0.element.1 }.map { table.columns[$0.offset] }
                if !other.isEmpty { reused.append(KeyHistory(key: key, deletions: deletions, insertions: insertions, otherColumns: other)) }
            } else if case .deleted? = events.last {
                byCommit[last, default: Loss(moment: last, keys: [], commit: commits[last] ?? [])].keys.append(key)
            }
            if deletions.count > 1 { deletedAgain.append(KeyHistory(key: key, deletions: deletions, insertions: insertions, otherColumns: [])) }
        }
        losses = byCommit.values.sorted { $0.moment.seenAt < $1.moment.seenAt || ($0.moment.seenAt == $1.moment.seenAt && $0.moment.txid < $1.moment.txid) }.map { loss in
            var loss = loss
            loss.keys.sort(by: SQLValue.ordered)
            // The asked-for table first, then the others the commit touched.
            loss.commit = loss.commit.filter { $0.table == table.name } + loss.commit.filter { $0.table != table.name }
            return loss
        }
        reused.sort { SQLValue.ordered($0.key, $1.key) }
        deletedAgain.sort { SQLValue.ordered($0.key, $1.key) }
        // Rows the newest archived state holds and live lacks were deleted after it.
        let diff = try RowDiff(snapshotPath: newest, livePath: live).diff(table: table.name, limit: 20, contents: false)
        notYetArchived = diff.missingInLive
        notYetArchivedKeys = diff.missingKeys
    }
}
