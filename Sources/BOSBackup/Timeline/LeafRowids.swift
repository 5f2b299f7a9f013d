import Foundation

/// The rowids on one table leaf, in order (a leaf keeps its cells so): what
/// `timeline --lost` sets side by side to tell, from a leaf a commit wrote,
/// that it deleted nothing there.
enum LeafRowids {
    /// Nil: not a table leaf.
    static func of(_ bytes: [UInt8], page number: UInt32) throws -> [Int64]? {
        guard let page = BTreePage(number: number, bytes: bytes), page.kind == .leafTable else { return nil }
        return try (0..<page.cellCount).map { try page.rowid($0) }
    }

    /// Whether `new` still holds every rowid of `old` (both in order), and none it adds is
    /// one `watched` names.
    static func keeps(_ old: [Int64], _ new: [Int64], bringingBackNoneOf watched: (Int64) -> Bool) -> Bool {
        var j = 0
        for rowid in old {
            while j < new.count && new[j] < rowid {
                if watched(new[j]) { return false }
                j += 1
            }
            guard j < new.count, new[j] == rowid else { return false }
            j += 1
        }
        return !new[j...].contains(where: watched)
    }
}
