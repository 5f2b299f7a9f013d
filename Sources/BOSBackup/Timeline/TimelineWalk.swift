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
final class TimelineWalk {
    let image: TimelineImage
    private(set) var tables: [String: TrackedTable] = [:]
    private var schemaCookie: [UInt8]
    private var lastSeen: Date?

    init(imagePath: String, startSeen: Date?) throws {
        image = try TimelineImage(path: imagePath)
        schemaCookie = Array(try image.page(1)[40..<44])
        lastSeen = startSeen
        tables = try Self.tables(of: image)
    }

    private static func tables(of image: TimelineImage) throws -> [String: TrackedTable] {
        try image.flush()   // SQLite reads the schema from the file
        var tables: [String: TrackedTable] = [:]
        for var table in try TrackedTable.all(in: image.path) {
            table.shape = try TreeShape.read(root: table.root, withoutRowid: table.withoutRowid, from: image)
            tables[table.name] = table
        }
        return tables
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

        /// The rows of `table` the commit touched, compared on both sides (nil: none).
        func comparison(_ table: String) -> RowComparison? {
            guard let touch = touched[table], let subject = touch.new ?? touch.old else { return nil }
            return RowComparison(table: subject, before: before, after: after, oldPages: touch.oldPages, newPages: touch.newPages)
        }

        /// Rows inserted, changed and deleted per table, for every table the commit touched.
        func counts() throws -> [TableCount] {
            try touched.keys.sorted().compactMap { try comparison($0)?.count() }.filter { !$0.isEmpty }
        }
    }

    /// Writes one commit onto the image and keeps each table's shape current.
    func apply(_ commit: TimelineCommit, generation: String) throws -> Effect {
        var before = try image.apply(commit)
        let changed = before.written
        var touched: [String: Touch] = [:]
        if changed.contains(1), let cookie = Optional(Array(try image.page(1)[40..<44])), cookie != schemaCookie {
            schemaCookie = cookie
            try before.keepFilePages()   // the schema is read through the file, written out now
            let old = tables
            tables = try Self.tables(of: image)
            for name in Set(old.keys).union(tables.keys) {
                touched[name] = Self.touch(old[name], tables[name], changed: changed)
            }
        } else {
            // In place (a copy of a table would copy its shape's sets), and most tables are
            // passed with two look-ups: a commit writes a few pages of a few tables.
            for index in tables.values.indices {
                let root = tables.values[index].root
                // No copy of the shape held across the update below (it would copy its sets).
                func rows(_ number: UInt32) -> Bool { tables.values[index].shape.rowPages.contains(number) }
                guard changed.contains(where: { $0 == root || rows($0) || tables.values[index].shape.interior.contains($0) }) else { continue }
                let wasRows = changed.filter(rows)
                var touch = Touch(old: nil, new: nil, oldPages: wasRows, newPages: wasRows)
                let moved = try tables.values[index].shape.update(root: root, changed: changed, from: image)
                if !moved.departed.isEmpty || !moved.joined.isEmpty || changed.contains(root) {
                    touch.oldPages.formUnion(moved.departed)
                    touch.newPages = changed.filter(rows).union(moved.joined)
                }
                guard !touch.oldPages.isEmpty || !touch.newPages.isEmpty else { continue }
                let schema = tables.values[index].schemaOnly
                (touch.old, touch.new) = (schema, schema)
                touched[tables.keys[index]] = touch
            }
        }
        let moment = CommitMoment(generation: generation, txid: commit.txid, seenAt: commit.seenAt, after: lastSeen)
        lastSeen = commit.seenAt
        return Effect(moment: moment, before: before, after: image, touched: touched, changed: changed)
    }

    /// A table's pages on both sides of a commit that changed the schema (rare: whole sets).
    private static func touch(_ was: TrackedTable?, _ now: TrackedTable?, changed: Set<UInt32>) -> Touch? {
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
