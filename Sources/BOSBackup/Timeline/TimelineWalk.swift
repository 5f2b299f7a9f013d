import Foundation

/// A commit of the archive the timeline passed: its txid, when the archiver
/// saw it, and when it saw the commit before it (the commit happened between
/// the two: that is as close as the archive knows).
public struct CommitMoment: Sendable, Hashable {
    /// Txids count from 1 in each generation.
    public var generation: String
    public var txid: Int64
    public var seenAt: Date
    public var after: Date?
}

/// Walks archived commits forward over one image (a state restored into
/// scratch), applying each commit's pages and telling what it did to the rows
/// of a table — by reading only the pages the commit wrote, never by a
/// restore or a table scan per commit. Each table's b-tree shape is kept and
/// brought up to date from the interior pages a commit wrote (`TreeShape`);
/// the schema is read again (through SQLite) only when a commit changed the
/// schema cookie.
///
/// `watching`: the tables whose shapes are kept commit by commit: one (the
/// table a timeline asks about), or none (`timeline --key` on a rowid follows
/// the row's own path instead, `RowidPath`). Every other table's shape is read
/// whole only at the few commits whose counts are asked for (`Effect.counts`).
/// Keeping every table's shape was a cost at every commit.
final class TimelineWalk {
    enum Shapes: Equatable {
        case every, only(String), none
        func keeps(_ name: String) -> Bool {
            switch self {
            case .every: return true
            case .only(let table): return table == name
            case .none: return false
            }
        }
    }

    let image: TimelineImage
    private(set) var tables: [String: TrackedTable] = [:]
    private(set) var watching: Shapes
    private var schemaCookie: [UInt8]
    private var lastSeen: Date?

    init(imagePath: String, startSeen: Date?, watching: Shapes = .every) throws {
        image = try TimelineImage(path: imagePath)
        self.watching = watching
        schemaCookie = Array(try image.page(1)[40..<44])
        lastSeen = startSeen
        tables = try Self.tables(of: image, watching: watching)
    }

    /// Keeps the shapes of other tables from the next commit on (read now, or dropped).
    func watch(_ shapes: Shapes) throws {
        guard shapes != watching else { return }
        watching = shapes
        for name in tables.keys {
            if !shapes.keeps(name) {
                tables[name]!.shape = TreeShape()
            } else if tables[name]!.shape.isEmpty, let table = tables[name] {
                tables[name]!.shape = try TreeShape.read(root: table.root, withoutRowid: table.withoutRowid, from: image)
            }
        }
    }

    /// The tables, with the shape of those kept.
    private static func tables(of image: TimelineImage, watching: Shapes) throws -> [String: TrackedTable] {
        try image.flush()   // SQLite reads the schema from the file
        var tables: [String: TrackedTable] = [:]
        for var table in try TrackedTable.all(in: image.path) {
            if watching.keeps(table.name) {
                table.shape = try TreeShape.read(root: table.root, withoutRowid: table.withoutRowid, from: image)
            }
            tables[table.name] = table
        }
        return tables
    }

    private func kept(_ name: String) -> Bool { watching.keeps(name) }

    /// The tables whose shapes are kept.
    private var keptNames: [String] {
        switch watching {
        case .every: return Array(tables.keys)
        case .only(let name): return [name]
        case .none: return []
        }
    }

    /// The pages of one table a commit touched: those holding its rows before (the ones it
    /// wrote, and those that left the tree) and after (written, and those that joined).
    struct Touch {
        var old: TrackedTable?
        var new: TrackedTable?
        var oldPages: Set<UInt32>
        var newPages: Set<UInt32>
    }

    /// What one applied commit did. Valid until the next commit is applied.
    struct Effect {
        let moment: CommitMoment
        let before: PagesBefore
        let after: TimelineImage
        let touched: [String: Touch]
        /// The pages it wrote.
        let changed: Set<UInt32>
        /// The tables whose shapes the walk does not keep, as they were before and are after
        /// (only a commit that changed the schema has them differ).
        let schemaChange: [String: (old: TrackedTable?, new: TrackedTable?)]?
        /// The commit changed the schema (the tables were read again after it).
        let schemaChanged: Bool
        let tables: [String: TrackedTable]
        let watching: Shapes

        /// The tables whose shapes the walk does not keep, on both sides.
        private var others: [String: (old: TrackedTable?, new: TrackedTable?)] {
            if let schemaChange { return schemaChange }
            return tables.filter { !watching.keeps($0.key) }.mapValues { ($0.schemaOnly, $0.schemaOnly) }
        }

        /// The rows of `table` the commit touched, compared on both sides (nil: none).
        func comparison(_ table: String) -> RowComparison? {
            guard let touch = touched[table], let subject = touch.new ?? touch.old else { return nil }
            return RowComparison(table: subject, before: before, after: after, oldPages: touch.oldPages, newPages: touch.newPages)
        }

        /// The same for a table whose shape the walk does not keep: its shape read whole on
        /// both sides (a cost of its size, for the few commits somebody looks at so).
        func wholeComparison(_ name: String) throws -> RowComparison? {
            if let kept = comparison(name) { return kept }
            guard let table = others[name] else { return nil }
            let was = try table.old.map { old in
                var full = old
                full.shape = try TreeShape.read(root: old.root, withoutRowid: old.withoutRowid, from: before)
                return full
            }
            let now = try table.new.map { new in
                var full = new
                full.shape = try TreeShape.read(root: new.root, withoutRowid: new.withoutRowid, from: after)
                return full
            }
            guard let touch = TimelineWalk.touch(was, now, changed: changed), let subject = touch.new ?? touch.old else { return nil }
            return RowComparison(table: subject, before: before, after: after, oldPages: touch.oldPages, newPages: touch.newPages)
        }

        /// Rows inserted, changed and deleted per table, for every table the commit touched
        /// (the shapes the walk does not keep read whole on both sides, here only).
        func counts() throws -> [TableCount] {
            let names = Set(touched.keys).union(others.keys)
            return try names.compactMap { try wholeComparison($0)?.count() }.filter { !$0.isEmpty }.sorted { $0.table < $1.table }
        }
    }

    /// Writes one commit onto the image and keeps each table's shape current.
    func apply(_ commit: TimelineCommit, generation: String) throws -> Effect {
        var before = try image.apply(commit)
        let changed = before.written
        var touched: [String: Touch] = [:]
        var schemaChange: [String: (old: TrackedTable?, new: TrackedTable?)]?
        var schemaChanged = false
        if changed.contains(1), let cookie = Optional(Array(try image.page(1)[40..<44])), cookie != schemaCookie {
            schemaCookie = cookie
            schemaChanged = true
            try before.keepFilePages()   // the schema is read through the file, written out now
            let old = tables
            tables = try Self.tables(of: image, watching: watching)
            for name in Set(old.keys).union(tables.keys) {
                if kept(name) {
                    touched[name] = Self.touch(old[name], tables[name], changed: changed)
                } else {
                    schemaChange = schemaChange ?? [:]
                    schemaChange?[name] = (old[name]?.schemaOnly, tables[name]?.schemaOnly)
                }
            }
        } else {
            for name in keptNames where tables[name] != nil {
                // Taken out of the table and put back: changed in place, never copied (a big
                // table's shape holds sets of thousands of pages; iterating the dictionary while
                // changing it, or holding a copy of the table, copied them at every commit).
                var shape = tables[name]!.shape
                tables[name]!.shape = TreeShape()
                defer { tables[name]!.shape = shape }
                let root = tables[name]!.root
                // Most tables are passed with a look-up or two per page: a commit writes a few pages of a few tables.
                guard changed.contains(where: { $0 == root || shape.rowPages.contains($0) || shape.interior.contains($0) }) else { continue }
                let wasRows = changed.filter { shape.rowPages.contains($0) }
                var touch = Touch(old: nil, new: nil, oldPages: wasRows, newPages: wasRows)
                let moved = try shape.update(root: root, changed: changed, from: image)
                if !moved.departed.isEmpty || !moved.joined.isEmpty || changed.contains(root) {
                    touch.oldPages.formUnion(moved.departed)
                    touch.newPages = changed.filter { shape.rowPages.contains($0) }.union(moved.joined)
                }
                guard !touch.oldPages.isEmpty || !touch.newPages.isEmpty else { continue }
                let schema = tables[name]!.schemaOnly
                (touch.old, touch.new) = (schema, schema)
                touched[name] = touch
            }
        }
        let moment = CommitMoment(generation: generation, txid: commit.txid, seenAt: commit.seenAt, after: lastSeen)
        lastSeen = commit.seenAt
        return Effect(moment: moment, before: before, after: image, touched: touched, changed: changed,
                      schemaChange: schemaChange, schemaChanged: schemaChanged, tables: tables, watching: watching)
    }

    /// Whether a commit leaves the schema (page 1) and every kept shape as they were: it
    /// writes no root or interior page of a kept table (its leaves' rows may change, the
    /// tree's pages do not).
    func leavesShapesAlone(_ commit: TimelineCommit) -> Bool {
        commit.leavesSchemaAlone && keptNames.allSatisfy { name in
            guard let table = tables[name] else { return true }
            return !commit.pages.contains { $0.number == table.root || table.shape.interior.contains($0.number) }
        }
    }

    /// Writes a commit nobody looks at onto the image: no old side kept, no shape brought up
    /// to date. Only for commits that leave the schema and every kept shape alone
    /// (`leavesShapesAlone`); `timeline --key` passes so every commit that does not change its
    /// row, `--lost` every one that deletes no row of its table.
    func pass(_ commit: TimelineCommit, generation: String) throws -> CommitMoment {
        // Asked by the walk just before (every passed commit: not asked twice in a release build).
        assert(leavesShapesAlone(commit), "a commit passed unlooked must leave every kept shape and the schema alone")
        try image.pass(commit)
        defer { lastSeen = commit.seenAt }
        return CommitMoment(generation: generation, txid: commit.txid, seenAt: commit.seenAt, after: lastSeen)
    }

    /// A table's pages on both sides of a commit that changed the schema (rare: whole sets).
    fileprivate static func touch(_ was: TrackedTable?, _ now: TrackedTable?, changed: Set<UInt32>) -> Touch? {
        let oldRows = was?.shape.rowPages ?? [], newRows = now?.shape.rowPages ?? []
        var touch = Touch(old: was?.schemaOnly, new: now?.schemaOnly, oldPages: oldRows, newPages: newRows)
        if was?.root == now?.root && was?.withoutRowid == now?.withoutRowid {
            // The same tree: pages written, and pages that left or joined it.
            touch.oldPages = oldRows.intersection(changed).union(oldRows.subtracting(newRows))
            touch.newPages = newRows.intersection(changed).union(newRows.subtracting(oldRows))
        }   // else a dropped or re-created table: its rows all go (or come)
        return touch.oldPages.isEmpty && touch.newPages.isEmpty ? nil : touch
    }
}
