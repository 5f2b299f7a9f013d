import Foundation

/// What one commit did to one row of a table.
public struct RowChange: Sendable {
    public enum Kind: String, Sendable { case inserted, changed, deleted }
    public var kind: Kind
    /// The values that name the row (its key columns, else its rowid).
    public var key: [SQLValue]
    /// The row before the commit (changed, deleted) and after it (inserted, changed), in column order.
    public var old: [SQLValue]?
    public var new: [SQLValue]?
}

/// How many rows of a table one commit inserted, changed and deleted.
public struct TableCount: Sendable, Equatable {
    public var table: String
    public var inserted = 0
    public var changed = 0
    public var deleted = 0
    public var isEmpty: Bool { inserted == 0 && changed == 0 && deleted == 0 }
}

/// A row's place on the pages a commit touched: its rowid (or, in a WITHOUT
/// ROWID table, its key) and a hash of its stored bytes.
private enum Slot: Hashable {
    case rowid(Int64)
    case key([SQLValue])
}

private struct Cell {
    var page: BTreePage
    var index: Int
    var rowid: Int64?
    var hash: Int
}

/// The rows of one table on both sides of a commit, compared on only the pages
/// the commit wrote (and those it added to or dropped from the table's tree):
/// a row on a page the commit did not write is the same on both sides.
struct RowComparison {
    let table: TrackedTable
    let before: PageSource
    let after: PageSource
    let oldPages: Set<UInt32>
    let newPages: Set<UInt32>

    /// Counts only: by rowid (or WITHOUT ROWID key), nothing decoded but those keys.
    func count() throws -> TableCount {
        let old = try cells(oldPages, before, only: nil, hashed: true)
        let new = try cells(newPages, after, only: nil, hashed: true)
        var count = TableCount(table: table.name)
        for (slot, cell) in old {
            if let now = new[slot] { if now.hash != cell.hash { count.changed += 1 } } else { count.deleted += 1 }
        }
        count.inserted = new.keys.filter { old[$0] == nil }.count
        return count
    }

    /// Every row the commit inserted, changed or deleted, decoded. `onlyRowid`: just that row.
    /// `withChanged: false`: inserted and deleted only (no row's bytes hashed: `timeline --lost`
    /// follows keys, and hashing every row of every page a commit wrote was much of its walk).
    func changes(onlyRowid: Int64? = nil, withChanged: Bool = true) throws -> [RowChange] {
        var deleted: [RowChange] = [], inserted: [RowChange] = [], changed: [RowChange] = []
        if !withChanged && !table.withoutRowid {
            try rowidsGoneAndCome(only: onlyRowid, &deleted, &inserted)
        } else {
            try compared(onlyRowid: onlyRowid, hashed: withChanged, &deleted, &changed, &inserted)
        }
        // A row that kept its key but moved to another rowid (a text key deleted and
        // inserted again in one commit) is one change, not a delete and an insert.
        if !table.keyPositions.isEmpty && !table.withoutRowid && !deleted.isEmpty && !inserted.isEmpty {
            var byKey: [[SQLValue]: Int] = [:]
            for (index, row) in inserted.enumerated() { byKey[row.key] = index }
            var moved = Set<Int>()
            deleted = deleted.filter { row in
                guard let index = byKey[row.key] else { return true }
                moved.insert(index)
                if row.old! != inserted[index].new! { changed.append(RowChange(kind: .changed, key: row.key, old: row.old, new: inserted[index].new)) }
                return false
            }
            inserted = inserted.enumerated().filter { !moved.contains($0.offset) }.map(\.element)
        }
        return deleted + changed + inserted
    }

    /// Rows by their stored bytes' hash (or by key alone, `hashed: false`) on both sides.
    private func compared(onlyRowid: Int64?, hashed: Bool, _ deleted: inout [RowChange], _ changed: inout [RowChange],
                          _ inserted: inout [RowChange]) throws {
        let old = try cells(oldPages, before, only: onlyRowid, hashed: hashed)
        let new = try cells(newPages, after, only: onlyRowid, hashed: hashed)
        for (slot, cell) in old {
            if let now = new[slot] {
                guard now.hash != cell.hash else { continue }
                let (before, after) = (try decode(cell, before), try decode(now, after))
                if before.values != after.values { changed.append(RowChange(kind: .changed, key: after.key, old: before.values, new: after.values)) }
            } else {
                let row = try decode(cell, before)
                deleted.append(RowChange(kind: .deleted, key: row.key, old: row.values, new: nil))
            }
        }
        for (slot, cell) in new where old[slot] == nil {
            let row = try decode(cell, after)
            inserted.append(RowChange(kind: .inserted, key: row.key, old: nil, new: row.values))
        }
    }

    /// The rowids that went and came, by a merge of the rowids on both sides, sorted (a
    /// leaf keeps its cells in rowid order): no row hashed, no dictionary, only the rows
    /// that went or came decoded. `timeline --lost` asks this of every commit.
    private func rowidsGoneAndCome(only: Int64?, _ deleted: inout [RowChange], _ inserted: inout [RowChange]) throws {
        /// The leaves read, and each row on them by its place (no copy of a page per row).
        func rowids(_ numbers: Set<UInt32>, _ source: PageSource) throws -> (pages: [BTreePage], rows: [(rowid: Int64, page: Int32, index: Int32)]) {
            var pages: [BTreePage] = [], rows: [(rowid: Int64, page: Int32, index: Int32)] = []
            for number in numbers {
                guard let page = BTreePage(number: number, bytes: try source.page(number)), page.kind == .leafTable else { continue }
                pages.append(page)
                rows.reserveCapacity(rows.count + page.cellCount)
                for index in 0..<page.cellCount {
                    let rowid = try page.rowid(index)
                    if let only, rowid != only { continue }
                    rows.append((rowid, Int32(pages.count - 1), Int32(index)))
                }
            }
            return (pages, pages.count > 1 ? rows.sorted { $0.rowid < $1.rowid } : rows)
        }
        let old = try rowids(oldPages, before), new = try rowids(newPages, after)
        func row(_ side: (pages: [BTreePage], rows: [(rowid: Int64, page: Int32, index: Int32)]), _ at: Int, _ source: PageSource) throws -> (key: [SQLValue], values: [SQLValue]) {
            let place = side.rows[at]
            return try decode(Cell(page: side.pages[Int(place.page)], index: Int(place.index), rowid: place.rowid, hash: 0), source)
        }
        var (i, j) = (0, 0)
        while i < old.rows.count || j < new.rows.count {
            if j == new.rows.count || (i < old.rows.count && old.rows[i].rowid < new.rows[j].rowid) {
                let gone = try row(old, i, before)
                deleted.append(RowChange(kind: .deleted, key: gone.key, old: gone.values, new: nil))
                i += 1
            } else if i == old.rows.count || new.rows[j].rowid < old.rows[i].rowid {
                let come = try row(new, j, after)
                inserted.append(RowChange(kind: .inserted, key: come.key, old: nil, new: come.values))
                j += 1
            } else {
                (i, j) = (i + 1, j + 1)
            }
        }
    }

    private func cells(_ pages: Set<UInt32>, _ source: PageSource, only: Int64?, hashed: Bool) throws -> [Slot: Cell] {
        var result: [Slot: Cell] = [:]
        for number in pages {
            guard let page = BTreePage(number: number, bytes: try source.page(number)) else { continue }
            guard page.isTable != table.withoutRowid else { continue }
            if page.kind == .interiorTable { continue }   // rowid tables keep rows in leaves only
            for index in 0..<page.cellCount {
                let rowid = page.isTable ? try page.rowid(index) : nil
                if let only, rowid != only { continue }
                var hash = 0
                if hashed {
                    let payload = try page.payload(index, usableSize: source.usableSize)
                    var hasher = Hasher()
                    page.bytes.withUnsafeBytes { hasher.combine(bytes: UnsafeRawBufferPointer(rebasing: $0[payload.local])) }
                    hasher.combine(payload.size)
                    hasher.combine(payload.overflow)
                    hash = hasher.finalize()
                }
                let slot: Slot
                if let rowid {
                    slot = .rowid(rowid)
                } else {
                    let record = try SQLiteRecord.values(try page.fullPayload(index, from: source), limit: table.keyPositions.count)
                    slot = .key(table.key(table.row(record, rowid: nil), rowid: nil))
                }
                result[slot] = Cell(page: page, index: index, rowid: rowid, hash: hash)
            }
        }
        return result
    }

    private func decode(_ cell: Cell, _ source: PageSource) throws -> (key: [SQLValue], values: [SQLValue]) {
        let values = table.row(try SQLiteRecord.values(try cell.page.fullPayload(cell.index, from: source)), rowid: cell.rowid)
        return (table.key(values, rowid: cell.rowid), values)
    }
}
