import Foundation

/// The pages from a rowid table's root down to the leaf where one rowid is, or
/// would be. A commit that wrote none of them did nothing to that row:
/// inserting, changing or deleting it writes that leaf, and a leaf that leaves
/// the tree changes its parent. So `timeline --key` compares rows only at the
/// commits that cross the path (issue #16: "probing only the b-tree pages of
/// the asked-for keys"), and reads nothing of the others.
struct RowidPath {
    let rowid: Int64
    let root: UInt32
    private(set) var pages: Set<UInt32> = []

    init(rowid: Int64, root: UInt32, in source: PageSource) throws {
        (self.rowid, self.root) = (rowid, root)
        var number = root
        for _ in 0..<64 {
            pages.insert(number)
            guard let page = BTreePage(number: number, bytes: try source.page(number)), page.kind == .interiorTable else { return }
            number = try page.child(forRowid: rowid)
        }
        throw BTreeFormatError(description: "the b-tree at page \(root) is deeper than SQLite makes one")
    }

    /// Whether a commit that wrote `changed` may have touched the row.
    func crosses(_ changed: Set<UInt32>) -> Bool {
        !pages.isDisjoint(with: changed)
    }
}
