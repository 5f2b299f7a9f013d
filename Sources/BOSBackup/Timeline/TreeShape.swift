import Foundation

/// Which pages make up one table's b-tree: the interior pages (its shape, with
/// each one's children as last read) and the pages that hold its rows (the
/// leaves of a rowid table; every page of a WITHOUT ROWID table, whose
/// interior cells are rows too). A page a commit did not write has the
/// children it had, so after a commit only the interior pages it wrote, and
/// pages new to the tree, are read (`update`); a BOS's big tables grow at
/// their right edge and split there every few dozen commits, and reading
/// their whole shape each time was most of the walk.
struct TreeShape {
    private(set) var interior: Set<UInt32> = []
    private(set) var rowPages: Set<UInt32> = []
    private var children: [UInt32: [UInt32]] = [:]
    /// Interior pages whose children are leaves.
    private var bottom: Set<UInt32> = []
    private var withoutRowid = false

    /// Not read (the walk does not keep this table's shape).
    var isEmpty: Bool { interior.isEmpty && rowPages.isEmpty }

    /// Reads the shape down from `root`. A b-tree's leaves are all at one depth, so each
    /// level's pages are read only until the first of them turns out to be a leaf.
    static func read(root: UInt32, withoutRowid: Bool, from source: PageSource) throws -> TreeShape {
        var shape = TreeShape()
        shape.withoutRowid = withoutRowid
        var level: [UInt32] = [root]
        for _ in 0..<64 {
            let first = try page(level[0], of: root, from: source)
            if first.isLeaf {
                shape.rowPages.formUnion(level)
                return shape
            }
            var next: [UInt32] = []
            for number in level {
                let page = number == first.number ? first : try Self.page(number, of: root, from: source)
                guard !page.isLeaf else { throw BTreeFormatError(description: "page \(number) of the b-tree at page \(root) is not an interior page") }
                let kids = try page.children()
                shape.add(interior: number, kids)
                next.append(contentsOf: kids)
            }
            if try Self.page(next[0], of: root, from: source).isLeaf {
                shape.bottom.formUnion(level)
                shape.rowPages.formUnion(next)
                return shape
            }
            level = next
        }
        throw BTreeFormatError(description: "the b-tree at page \(root) is deeper than SQLite makes one")
    }

    /// Brings the shape up to date after a commit wrote `changed`: walks down from the
    /// root reusing the children of every interior page it did not write, reads the rest,
    /// and sets each written bottom page's children against the ones it had. The row
    /// pages that left the tree and those that joined it.
    mutating func update(root: UInt32, changed: Set<UInt32>, from source: PageSource) throws -> (departed: Set<UInt32>, joined: Set<UInt32>) {
        guard changed.contains(root) || changed.contains(where: interior.contains) else { return ([], []) }
        var seen: [UInt32: [UInt32]] = [:]
        var seenBottom = Set<UInt32>()
        var removed = Set<UInt32>(), added = Set<UInt32>()
        let rootPage = try Self.page(root, of: root, from: source)
        if rootPage.isLeaf {
            // The tree is one leaf again: every other page left it.
            let (departed, wasRow) = (rowPages.subtracting([root]), rowPages.contains(root))
            self = TreeShape(interior: [], rowPages: [root], children: [:], bottom: [], withoutRowid: withoutRowid)
            return (departed, wasRow ? [] : [root])
        }
        var stack: [(UInt32, BTreePage?)] = [(root, rootPage)]
        while let (number, read) = stack.popLast() {
            guard seen[number] == nil else { throw BTreeFormatError(description: "page \(number) is in the b-tree at page \(root) twice") }
            if read == nil, !changed.contains(number), let kids = children[number] {
                seen[number] = kids   // not written: the children it had
                if bottom.contains(number) { seenBottom.insert(number) } else { stack.append(contentsOf: kids.map { ($0, nil) }) }
                continue
            }
            let page = try read ?? Self.page(number, of: root, from: source)
            guard !page.isLeaf else { throw BTreeFormatError(description: "the b-tree at page \(root) has leaves at two depths") }
            let kids = try page.children()
            seen[number] = kids
            guard try isLeaf(kids[0], changed: changed, root: root, from: source) else {
                stack.append(contentsOf: kids.map { ($0, nil) })
                continue
            }
            seenBottom.insert(number)
            let had = bottom.contains(number) ? Set(children[number] ?? []) : []
            let has = Set(kids)
            removed.formUnion(had.subtracting(has))
            added.formUnion(has.subtracting(had))
        }
        // Bottom pages that left the tree take their leaves with them (those that moved
        // under another page were added there).
        for number in bottom where seen[number] == nil { removed.formUnion(children[number] ?? []) }
        if withoutRowid {
            removed.formUnion(interior.filter { seen[$0] == nil })
            added.formUnion(seen.keys.filter { !interior.contains($0) })
        } else {
            removed.formUnion(seen.keys.filter(rowPages.contains))   // a leaf root that split is interior now
        }
        let departed = removed.subtracting(added), joined = added.subtracting(removed)
        rowPages.subtract(departed)
        rowPages.formUnion(joined)
        interior = Set(seen.keys)
        children = seen
        bottom = seenBottom
        return (departed, joined)
    }

    private mutating func add(interior number: UInt32, _ kids: [UInt32]) {
        interior.insert(number)
        children[number] = kids
        if withoutRowid { rowPages.insert(number) }
    }

    /// Whether a child is a leaf: known for a page the commit did not write, else read.
    private func isLeaf(_ number: UInt32, changed: Set<UInt32>, root: UInt32, from source: PageSource) throws -> Bool {
        if !changed.contains(number) {
            if interior.contains(number) { return false }
            if rowPages.contains(number) { return true }
        }
        return try Self.page(number, of: root, from: source).isLeaf
    }

    private static func page(_ number: UInt32, of root: UInt32, from source: PageSource) throws -> BTreePage {
        guard let page = BTreePage(number: number, bytes: try source.page(number)) else {
            throw BTreeFormatError(description: "page \(number) of the b-tree at page \(root) is not a b-tree page")
        }
        return page
    }
}
