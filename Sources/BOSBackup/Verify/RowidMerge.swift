import CSQLite
import Foundation

/// A rowid table's two copies (a snapshot's and live's, attached to one
/// connection under two schema names) read side by side in rowid order: each
/// b-tree is walked once, in its own order, with no look-up per row. On a BOS's
/// orders table (2.78 M rows) the same question asked with NOT EXISTS was a
/// b-tree search in live per snapshot row, and recover asked it twice.
struct RowidMerge {
    enum Row {
        case missingInLive(Int64)
        case onlyInLive(Int64)
        /// In both, with other values in `compared` (`differing()`: their positions in it).
        case changed(Int64, differing: () throws -> [Int])
    }

    let db: Database
    let snapshot: String
    let live: String

    /// `key`: the rowid's name (an alias, or `rowid`); `compared`: quoted columns both copies have.
    func run(_ table: String, key: String, compared: [String], _ visit: (Row) throws -> Void) throws {
        let t = Database.quote(table)
        let select = ([key] + compared).joined(separator: ", ")
        let s = try db.prepare("SELECT \(select) FROM \(snapshot).\(t) ORDER BY \(key)")
        let l = try db.prepare("SELECT \(select) FROM \(live).\(t) ORDER BY \(key)")
        var sv: Int64? = try s.step() ? s.int(at: 0) : nil
        var lv: Int64? = try l.step() ? l.int(at: 0) : nil
        let columns = Int32(1)..<Int32(compared.count + 1)
        while sv != nil || lv != nil {
            if let a = sv, lv == nil || a < lv! {
                try visit(.missingInLive(a))
                sv = try s.step() ? s.int(at: 0) : nil
            } else if let b = lv, sv == nil || b < sv! {
                try visit(.onlyInLive(b))
                lv = try l.step() ? l.int(at: 0) : nil
            } else {
                if let first = try columns.first(where: { try !RowDiff.sameValue(s, l, $0) }) {
                    try visit(.changed(sv!, differing: {
                        try columns.filter { try $0 == first || !RowDiff.sameValue(s, l, $0) }.map { Int($0) - 1 }
                    }))
                }
                sv = try s.step() ? s.int(at: 0) : nil
                lv = try l.step() ? l.int(at: 0) : nil
            }
        }
    }
}
