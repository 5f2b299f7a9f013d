import Foundation

/// `timeline --table T --key K`: every archived commit that inserted, changed
/// or deleted one row, with the old and new values of what it changed.
public struct KeyTimeline: Sendable {
    public struct Event: Sendable {
        public var moment: CommitMoment
        public var change: RowChange
        /// For a change: the columns whose values differ.
        public var changedColumns: [String]
        /// Everything the commit did, per table (this row's table included).
        public var commit: [TableCount]
    }

    public var table: String
    public var columns: [String] = []
    public var keyNames: [String] = []
    public var key: [String]
    /// The row in the state the walk started from (nil: not there).
    public var atStart: [SQLValue]?
    public var events: [Event] = []
    public var span: TimelineSpan?

    /// Walks the archive from `plans`' state (see `ArchiveTimeline`). The table may
    /// appear only later in the walk (created after its start).
    ///
    /// A row named by its rowid is followed by its own path (`RowidPath`): no table's
    /// shape is kept, and only the commits that write a page of that path are looked
    /// at, there only that row. Other keys (WITHOUT ROWID, a key that is not the rowid)
    /// are found on the pages the commit wrote of the table's shape, kept commit by commit.
    public static func build(table name: String, key: [String], plans: [PointInTimePlan], timeline: ArchiveTimeline, using restorer: SnapshotRestorer,
                             segmentsOn: (String) throws -> Target, baseOn: (SnapshotRecord) throws -> Target) async throws -> KeyTimeline {
        var result = KeyTimeline(table: name, key: key)
        var known = false
        let rowid = key.count == 1 ? Int64(key[0]) : nil
        var byPath = false
        var path: RowidPath?
        /// The row as the image has it now (by its path): commits that do not cross the path
        /// leave it so, and each one that does is looked at.
        var now: [SQLValue]?
        weak var walking: TimelineWalk?
        func follow(_ walk: TimelineWalk) throws {
            guard byPath, let rowid, let table = walk.tables[name], table.keyPositions.isEmpty else { return path = nil }
            path = try RowidPath(rowid: rowid, root: table.root, in: walk.image)
            now = try path?.row(of: table, in: walk.image)
        }
        /// The leaf's version a commit wrote, when of the path it wrote only the leaf.
        func leafAlone(_ commit: TimelineCommit, _ path: RowidPath) -> PageVersion? {
            guard !commit.pages.contains(where: { $0.number != path.leaf && path.pages.contains($0.number) }) else { return nil }
            return commit.pages.last(where: { $0.number == path.leaf })?.version
        }
        /// Those leaves, inflated and checked on the other core ahead of the walk.
        var ahead: PageInflateAhead?
        defer { ahead?.stop() }
        /// A commit that crosses the path only at its leaf, and leaves the row as it was
        /// (told from the leaf it wrote alone: `RowidPath.rowInLeaf`), need not be looked at:
        /// on a day's archive, every order inserted before the asked one rewrote its leaf.
        func leavesTheRowAlone(_ commit: TimelineCommit, _ path: RowidPath) throws -> Bool {
            guard let walk = walking, let table = walk.tables[name], let written = leafAlone(commit, path) else { return false }
            let leaf: [UInt8]
            if case .stored(let place) = written, let early = try ahead?.take(place) {
                leaf = early
            } else {
                leaf = try walk.image.inflate(written, page: path.leaf)
            }
            return try path.rowInLeaf(leaf, of: table, usableSize: walk.image.usableSize) == .row(now)
        }
        func learn(_ tables: [String: TrackedTable]) throws {
            guard !known, let table = tables[name] else { return }
            guard key.count == table.keyNames.count else {
                throw TimelineInputError(description: "table \(name) is keyed by \(table.keyNames.joined(separator: ", ")): give --key once per column (\(table.keyNames.count))")
            }
            if table.keyPositions.isEmpty && rowid == nil {
                throw TimelineInputError(description: "--key \(key[0]): \(name) is keyed by \(table.keyNames[0]), an integer")
            }
            (result.columns, result.keyNames, known) = (table.columns, table.keyNames, true)
        }
        func record(_ changes: [RowChange], of table: TrackedTable, _ effect: TimelineWalk.Effect) throws {
            for change in changes where table.matches(change.key, key) {
                let differ = zip(change.old ?? [], change.new ?? []).enumerated().filter { $0.element.0 != $0.element.1 }.map { table.columns[$0.offset] }
                result.events.append(Event(moment: effect.moment, change: change, changedColumns: change.kind == .changed ? differ : [],
                                           commit: try effect.counts()))
            }
        }
        /// By the row's path: the row before (on the path as it was) and after (on the path as it is).
        func visitByPath(_ walk: TimelineWalk, _ effect: TimelineWalk.Effect) throws {
            if effect.schemaChanged {
                // Rare: the table's shape read whole on both sides, then its path found again (or,
                // re-created with another key, its shape kept from now on).
                if let comparison = try effect.wholeComparison(name) {
                    try record(try comparison.changes(onlyRowid: comparison.table.keyPositions.isEmpty ? rowid : nil), of: comparison.table, effect)
                }
                if walk.tables[name].map({ !$0.keyPositions.isEmpty }) == true {
                    byPath = false
                    try walk.watch(.only(name))
                }
                return try follow(walk)
            }
            guard let was = path, let table = walk.tables[name], was.root == table.root, was.crosses(effect.changed) else { return }
            try follow(walk)
            let old = try was.row(of: table, in: effect.before), new = now
            let change: RowChange
            switch (old, new) {
            case (nil, let new?): change = RowChange(kind: .inserted, key: table.key(new, rowid: was.rowid), old: nil, new: new)
            case (let old?, nil): change = RowChange(kind: .deleted, key: table.key(old, rowid: was.rowid), old: old, new: nil)
            case (let old?, let new?) where old != new: change = RowChange(kind: .changed, key: table.key(new, rowid: was.rowid), old: old, new: new)
            default: return
            }
            try record([change], of: table, effect)
        }
        let span = try await timeline.walk(plans, using: restorer, segmentsOn: segmentsOn, baseOn: baseOn, begin: { walk in
            walking = walk
            ahead = PageInflateAhead(pageSize: walk.image.pageSize)
            try learn(walk.tables)
            if let table = walk.tables[name] {
                result.atStart = try table.row(key, in: walk.image.path)
                if table.keyPositions.isEmpty && rowid != nil {
                    byPath = true
                    try walk.watch(.none)
                }
            }
            try follow(walk)
        }, watching: .only(name), passes: { commit in
            // By the row's path, a commit that writes none of its pages is not looked at (nor, while
            // the table does not exist, any commit that leaves the schema alone).
            guard byPath else { return false }
            guard let path else { return true }
            return try !commit.pages.contains { path.pages.contains($0.number) } || leavesTheRowAlone(commit, path)
        }, segmentStarts: { commits in
            // The leaves `leavesTheRowAlone` will read in this segment, if the path stays where it is.
            guard byPath, let path, let ahead, let stored = walking?.image.stored else { return }
            ahead.prefetch(commits.compactMap { commit in
                guard case .stored(let place)? = leafAlone(commit, path) else { return nil }
                return place
            }, number: path.leaf, from: stored)
        }, visit: { walk, effect in
            try learn(walk.tables)
            if byPath { return try visitByPath(walk, effect) }
            guard let touch = effect.touched[name], let table = touch.new ?? touch.old else { return }
            // A row named by its rowid is found by it alone; others by their decoded key.
            guard let changes = try effect.comparison(name)?.changes(onlyRowid: table.keyPositions.isEmpty ? rowid : nil) else { return }
            try record(changes, of: table, effect)
        }, end: { walk in
            guard known else {
                throw TimelineInputError(description: "the archive's database has no table \(name) (tables: \(walk.tables.keys.sorted().joined(separator: ", ")))")
            }
        })
        result.span = span
        return result
    }
}

extension TrackedTable {
    /// The row with `key` (as the operator typed it) in the image at `path`, through SQLite.
    func row(_ key: [String], in path: String) throws -> [SQLValue]? {
        return try Database.immutable(path).rows(selectByKey, arguments: key.map { Int64($0).map(SQLValue.integer) ?? .text($0) }).first
    }
}
