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
        let old = try cells(oldPages, before, only: nil)
        let new = try cells(newPages, after, only: nil)
        var count = TableCount(table: table.name)
        for (slot, cell) in old {
            if let now = new[slot] { if now.hash != cell.hash { count.changed += 1 } } else { count.deleted += 1 }
        }
        count.inserted = new.keys.filter { old[$0] == nil }.count
        return count
    }

    /// Every row the commit inserted, changed or deleted, decoded. `onlyRowid`: just that row.
    func changes(onlyRowid: Int64? = nil) throws -> [RowChange] {
        let old = try cells(oldPages, before, only: onlyRowid)
        let new = try cells(newPages, after, only: onlyRowid)
        var deleted: [RowChange] = [], inserted: [RowChange] = [], changed: [RowChange] = []
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

    private func cells(_ pages: Set<UInt32>, _ source: PageSource, only: Int64?) throws -> [Slot: Cell] {
        var result: [Slot: Cell] = [:]
        for number in pages {
            guard let page = BTreePage(number: number, bytes: try source.page(number)) else { continue }
            guard page.isTable != table.withoutRowid else { continue }
            if page.kind == .interiorTable { continue }   // rowid tables keep rows in leaves only
            for index in 0..<page.cellCount {
                let rowid = page.isTable ? try page.rowid(index) : nil
                if let only, rowid != only { continue }
                let payload = try page.payload(index, usableSize: source.usableSize)
                var hasher = Hasher()
                page.bytes.withUnsafeBytes { hasher.combine(bytes: UnsafeRawBufferPointer(rebasing: $0[payload.local])) }
                hasher.combine(payload.size)
                hasher.combine(payload.overflow)
                let slot: Slot
                if let rowid {
                    slot = .rowid(rowid)
                } else {
                    let record = try SQLiteRecord.values(try page.fullPayload(index, from: source), limit: table.keyPositions.count)
                    slot = .key(table.key(table.row(record, rowid: nil), rowid: nil))
                }
                result[slot] = Cell(page: page, index: index, rowid: rowid, hash: hasher.finalize())
            }
        }
        return result
    }

    private func decode(_ cell: Cell, _ source: PageSource) throws -> (key: [SQLValue], values: [SQLValue]) {
        let values = table.row(try SQLiteRecord.values(try cell.page.fullPayload(cell.index, from: source)), rowid: cell.rowid)
        return (table.key(values, rowid: cell.rowid), values)
    }
}
