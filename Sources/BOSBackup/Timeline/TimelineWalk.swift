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
/// read again only when a commit wrote one of its interior pages; the schema
/// is read again (through SQLite) only when a commit changed the schema cookie.
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

    /// What one applied commit did. Valid until the next commit is applied.
    struct Effect {
        let moment: CommitMoment
        let before: PagesBefore
        let after: TimelineImage
        let old: [String: TrackedTable]
        let new: [String: TrackedTable]
        /// The pages the commit wrote, and the tables whose shape it changed (read again).
        let changed: Set<UInt32>
        let reshaped: Set<String>

        /// The rows of `table` the commit touched, compared on both sides (nil: none).
        func comparison(_ table: String) -> RowComparison? {
            let was = old[table], now = new[table]
            guard let subject = now ?? was else { return nil }
            let oldRows = was?.shape.rowPages ?? [], newRows = now?.shape.rowPages ?? []
            let oldPages: Set<UInt32>, newPages: Set<UInt32>
            if was?.root != now?.root || was?.withoutRowid != now?.withoutRowid {
                // A dropped or re-created table's rows all go (or come).
                (oldPages, newPages) = (oldRows, newRows)
            } else if reshaped.contains(table) {
                // Pages that left or joined the tree count on their side even when the
                // commit did not write them (SQLite need not write a page it frees).
                oldPages = changed.filter(oldRows.contains).union(oldRows.subtracting(newRows))
                newPages = changed.filter(newRows.contains).union(newRows.subtracting(oldRows))
            } else {
                // Same shape (the common case): only the pages written, found from the few written.
                oldPages = changed.filter(oldRows.contains)
                newPages = oldPages
            }
            guard !oldPages.isEmpty || !newPages.isEmpty else { return nil }
            return RowComparison(table: subject, before: before, after: after, oldPages: oldPages, newPages: newPages)
        }

        /// Rows inserted, changed and deleted per table, for every table the commit touched.
        func counts() throws -> [TableCount] {
            try Set(old.keys).union(new.keys).sorted().compactMap { try comparison($0)?.count() }.filter { !$0.isEmpty }
        }
    }

    /// Writes one commit onto the image and keeps each table's shape current.
    func apply(_ commit: ArchivedCommit, generation: String) throws -> Effect {
        let before = try image.apply(commit)
        let old = tables
        let changed = Set(before.old.keys)
        var reshaped = Set<String>()
        if changed.contains(1), let cookie = Optional(Array(try image.page(1)[40..<44])), cookie != schemaCookie {
            schemaCookie = cookie
            tables = try Self.tables(of: image)
            reshaped = Set(tables.keys).union(old.keys)
        } else {
            for (name, table) in tables where changed.contains(table.root) || changed.contains(where: table.shape.interior.contains) {
                tables[name]?.shape = try TreeShape.read(root: table.root, withoutRowid: table.withoutRowid, from: image)
                reshaped.insert(name)
            }
        }
        let moment = CommitMoment(generation: generation, txid: commit.txid, seenAt: commit.seenAt, after: lastSeen)
        lastSeen = commit.seenAt
        return Effect(moment: moment, before: before, after: image, old: old, new: tables, changed: changed, reshaped: reshaped)
    }
}
