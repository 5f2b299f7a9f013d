import Foundation

/// The pages from a rowid table's root down to the leaf where one rowid is, or
/// would be, and the overflow pages of that row. A commit that wrote none of
/// them did nothing to that row: inserting, changing or deleting it writes that
/// leaf, a leaf that leaves the tree changes its parent, and SQLite rewrites a
/// row of the same size in place, writing only the pages whose bytes differ
/// (its overflow pages alone, when only the row's tail changed). So
/// `timeline --key` looks at the row only at the commits that cross the path
/// (issue #16: "probing only the b-tree pages of the asked-for keys"), and
/// reads nothing of the others.
struct RowidPath {
    let rowid: Int64
    let root: UInt32
    private(set) var pages: Set<UInt32> = []
    /// The leaf that holds the row, or would.
    private(set) var leaf: UInt32

    init(rowid: Int64, root: UInt32, in source: PageSource) throws {
        (self.rowid, self.root, leaf) = (rowid, root, root)
        var number = root
        for _ in 0..<64 {
            pages.insert(number)
            guard let page = BTreePage(number: number, bytes: try source.page(number)) else { return }
            guard page.kind == .interiorTable else {
                leaf = number
                if page.kind == .leafTable, let cell = try page.cell(forRowid: rowid) {
                    pages.formUnion(try page.overflowPages(cell, from: source))
                }
                return
            }
            number = try page.child(forRowid: rowid)
        }
        throw BTreeFormatError(description: "the b-tree at page \(root) is deeper than SQLite makes one")
    }

    /// Whether a commit that wrote `changed` may have touched the row.
    func crosses(_ changed: Set<UInt32>) -> Bool {
        !pages.isDisjoint(with: changed)
    }

    /// What a commit that wrote, of this path, only its leaf did to the row, told from
    /// that leaf as the commit left it (`bytes`): the row then (nil: not there), or
    /// `unknown` when the leaf alone cannot tell — it is no longer a table leaf (the
    /// tree changed shape), or the row spills onto overflow pages. The path's upper
    /// pages were not written, so the row is still on this leaf if it is anywhere.
    enum LeafRead: Equatable { case row([SQLValue]?), unknown }

    func rowInLeaf(_ bytes: [UInt8], of table: TrackedTable, usableSize: Int) throws -> LeafRead {
        guard let page = BTreePage(number: leaf, bytes: bytes), page.kind == .leafTable else { return .unknown }
        guard let cell = try page.cell(forRowid: rowid) else { return .row(nil) }
        let payload = try page.payload(cell, usableSize: usableSize)
        guard payload.overflow == nil else { return .unknown }
        return .row(table.row(try SQLiteRecord.values(Array(bytes[payload.local])), rowid: rowid))
    }

    /// The row's values in `source` (the state this path was found in), nil when it is not there.
    func row(of table: TrackedTable, in source: PageSource) throws -> [SQLValue]? {
        guard let page = BTreePage(number: leaf, bytes: try source.page(leaf)), page.kind == .leafTable,
              let cell = try page.cell(forRowid: rowid) else { return nil }
        return table.row(try SQLiteRecord.values(try page.fullPayload(cell, from: source)), rowid: rowid)
    }
}
