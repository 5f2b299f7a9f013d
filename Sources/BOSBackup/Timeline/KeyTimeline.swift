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
    public static func build(table name: String, key: [String], plans: [PointInTimePlan], timeline: ArchiveTimeline, using restorer: SnapshotRestorer,
                             segmentsOn: (String) throws -> Target, baseOn: (SnapshotRecord) throws -> Target) async throws -> KeyTimeline {
        var result = KeyTimeline(table: name, key: key)
        var known = false
        // A row named by its rowid: only the commits that write its way down from the root.
        var path: RowidPath?
        func follow(_ walk: TimelineWalk) throws {
            guard let table = walk.tables[name], table.keyPositions.isEmpty, let rowid = Int64(key[0]) else { return path = nil }
            path = try RowidPath(rowid: rowid, root: table.root, in: walk.image)
        }
        func learn(_ tables: [String: TrackedTable]) throws {
            guard !known, let table = tables[name] else { return }
            guard key.count == table.keyNames.count else {
                throw TimelineInputError(description: "table \(name) is keyed by \(table.keyNames.joined(separator: ", ")): give --key once per column (\(table.keyNames.count))")
            }
            if table.keyPositions.isEmpty && Int64(key[0]) == nil {
                throw TimelineInputError(description: "--key \(key[0]): \(name) is keyed by \(table.keyNames[0]), an integer")
            }
            (result.columns, result.keyNames, known) = (table.columns, table.keyNames, true)
        }
        let span = try await timeline.walk(plans, using: restorer, segmentsOn: segmentsOn, baseOn: baseOn, begin: { walk in
            try learn(walk.tables)
            if let table = walk.tables[name] { result.atStart = try table.row(key, in: walk.image.path) }
            try follow(walk)
        }, watching: name, visit: { walk, effect in
            try learn(walk.tables)
            if let path, path.root == walk.tables[name]?.root, !path.crosses(effect.changed) { return }
            try follow(walk)   // the image is after this commit already: the path the next one may cross
            guard let touch = effect.touched[name], let table = touch.new ?? touch.old else { return }
            // A row named by its rowid is found by it alone; others by their decoded key.
            let onlyRowid = table.keyPositions.isEmpty ? Int64(key[0]) : nil
            guard let changes = try effect.comparison(name)?.changes(onlyRowid: onlyRowid) else { return }
            for change in changes where table.matches(change.key, key) {
                let differ = zip(change.old ?? [], change.new ?? []).enumerated().filter { $0.element.0 != $0.element.1 }.map { table.columns[$0.offset] }
                result.events.append(Event(moment: effect.moment, change: change, changedColumns: change.kind == .changed ? differ : [],
                                           commit: try effect.counts()))
            }
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
