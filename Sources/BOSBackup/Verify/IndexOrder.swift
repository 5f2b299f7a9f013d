import CSQLite
import Foundation

/// Proves that an index's entries are in the order its declaration says —
/// the part of index damage a multiset hash cannot see.
///
/// An index whose entries are all present but out of order (its collation or
/// ASC/DESC changed in the schema, cells swapped on a page) holds exactly the
/// table's rows, yet a lookup through it walks the wrong way and misses rows:
/// `PRAGMA integrity_check` reports "row N missing from index". A covering
/// scan of an index visits its b-tree in storage order, so we compare each
/// entry with the one before it, the way SQLite's record comparison does
/// (`sqlite3MemCompare` with the column's collation and sort order, the rowid
/// last). The same pass finds two equal non-NULL keys in a UNIQUE index: in a
/// well-ordered index they are neighbours.
enum IndexOrder {
    /// The collations we can compare exactly: SQLite's three built-in ones.
    /// An index with any other (application-defined) collation cannot be
    /// checked by us — nor by `integrity_check`, which lacks it too.
    static let knownCollations: [String: Collation] = ["BINARY": .binary, "NOCASE": .nocase, "RTRIM": .rtrim]

    enum Collation: Character { case binary = "B", nocase = "N", rtrim = "R" }

    enum Verdict: Int64 { case inOrder = 0, outOfOrder = 1, duplicateKey = 2 }

    /// The first argument of `bos_index_order`: "U" or "-" (unique or not),
    /// then one letter per key column, lower case for a DESC column.
    static func spec(unique: Bool, collations: [Collation], descending: [Bool]) -> String {
        String((unique ? "U" : "-")) + String(zip(collations, descending).map { collation, desc in
            desc ? Character(collation.rawValue.lowercased()) : collation.rawValue
        })
    }

    /// `bos_index_order(spec, key1, …, keyN, rowid)`: an aggregate over the rows
    /// of a covering index scan, in scan order; answers a `Verdict`.
    static func register(on db: Database) {
        sqlite3_create_function_v2(db.handle, "bos_index_order", -1, SQLITE_UTF8, nil, nil, { context, count, values in
            guard let context, let values, count >= 3,
                  let slot = sqlite3_aggregate_context(context, Int32(MemoryLayout<UnsafeMutableRawPointer?>.size))?
                      .assumingMemoryBound(to: UnsafeMutableRawPointer?.self) else { return }
            if slot.pointee == nil {
                let spec = sqlite3_value_text(values[0]).map { String(cString: $0) } ?? ""
                slot.pointee = Unmanaged.passRetained(OrderState(spec: spec)).toOpaque()
            }
            Unmanaged<OrderState>.fromOpaque(slot.pointee!).takeUnretainedValue()
                .step(Array(UnsafeBufferPointer(start: values + 1, count: Int(count) - 1)))
        }, { context in
            var verdict = Verdict.inOrder
            if let slot = sqlite3_aggregate_context(context, 0)?.assumingMemoryBound(to: UnsafeMutableRawPointer?.self),
               let state = slot.pointee {
                verdict = Unmanaged<OrderState>.fromOpaque(state).takeRetainedValue().verdict
            }
            sqlite3_result_int64(context, verdict.rawValue)
        }, nil)
    }

    /// The running state of one scan: the previous entry (copied, as SQLite
    /// reuses its values) and the first fault seen.
    final class OrderState {
        let unique: Bool
        let columns: [(collation: Collation, descending: Bool)]
        var previous: [OpaquePointer?] = []
        var verdict = Verdict.inOrder

        init(spec: String) {
            unique = spec.first == "U"
            columns = spec.dropFirst().map { letter in
                (Collation(rawValue: Character(letter.uppercased())) ?? .binary, letter.isLowercase)
            }
        }

        deinit { previous.forEach { sqlite3_value_free($0) } }

        func step(_ entry: [OpaquePointer?]) {
            guard verdict == .inOrder, entry.count == columns.count + 1 else { return }
            if !previous.isEmpty { verdict = compare(previous, entry) }
            previous.forEach { sqlite3_value_free($0) }
            previous = entry.map { sqlite3_value_dup($0) }
        }

        private func compare(_ before: [OpaquePointer?], _ entry: [OpaquePointer?]) -> Verdict {
            for (i, column) in columns.enumerated() {
                let order = SQLiteValueOrder.compare(before[i], entry[i], column.collation)
                if order != 0 { return (column.descending ? -order : order) < 0 ? .inOrder : .outOfOrder }
            }
            // Equal keys: allowed in a plain index, ordered by rowid; in a UNIQUE
            // index only when a key column is NULL (NULLs are distinct).
            if unique && !entry.dropLast().contains(where: { sqlite3_value_type($0) == SQLITE_NULL }) { return .duplicateKey }
            return SQLiteValueOrder.compare(before[columns.count], entry[columns.count], .binary) < 0 ? .inOrder : .outOfOrder
        }
    }
}

/// SQLite's order of two values (`sqlite3MemCompare`): NULL < numbers < text
/// < blobs; integers and reals by value; text by collation; blobs by bytes.
enum SQLiteValueOrder {
    static func compare(_ a: OpaquePointer?, _ b: OpaquePointer?, _ collation: IndexOrder.Collation) -> Int {
        let (ta, tb) = (sqlite3_value_type(a), sqlite3_value_type(b))
        let (ra, rb) = (rank(ta), rank(tb))
        if ra != rb { return ra < rb ? -1 : 1 }
        switch ra {
        case 0: return 0
        case 1:
            switch (ta == SQLITE_INTEGER, tb == SQLITE_INTEGER) {
            case (true, true): return sign(sqlite3_value_int64(a), sqlite3_value_int64(b))
            case (false, false): return sign(sqlite3_value_double(a), sqlite3_value_double(b))
            case (true, false): return intFloat(sqlite3_value_int64(a), sqlite3_value_double(b))
            case (false, true): return -intFloat(sqlite3_value_int64(b), sqlite3_value_double(a))
            }
        case 2:
            let pa = sqlite3_value_text(a).map(UnsafeRawPointer.init), na = Int(sqlite3_value_bytes(a))
            let pb = sqlite3_value_text(b).map(UnsafeRawPointer.init), nb = Int(sqlite3_value_bytes(b))
            return text(bytes(pa, na), bytes(pb, nb), collation)
        default:
            let pa = sqlite3_value_blob(a), na = Int(sqlite3_value_bytes(a))
            let pb = sqlite3_value_blob(b), nb = Int(sqlite3_value_bytes(b))
            return binary(bytes(pa, na), bytes(pb, nb))
        }
    }

    private static func rank(_ type: Int32) -> Int {
        switch type {
        case SQLITE_NULL: return 0
        case SQLITE_INTEGER, SQLITE_FLOAT: return 1
        case SQLITE_TEXT: return 2
        default: return 3
        }
    }

    private static func sign<T: Comparable>(_ a: T, _ b: T) -> Int { a < b ? -1 : (a > b ? 1 : 0) }

    /// `sqlite3IntFloatCompare` without long double: exact for every Int64.
    static func intFloat(_ i: Int64, _ r: Double) -> Int {
        if r < -9_223_372_036_854_775_808.0 { return 1 }
        if r >= 9_223_372_036_854_775_808.0 { return -1 }
        let y = Int64(r)
        if i != y { return i < y ? -1 : 1 }
        return sign(Double(i), r)
    }

    private static func bytes(_ p: UnsafeRawPointer?, _ n: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: p?.assumingMemoryBound(to: UInt8.self), count: p == nil ? 0 : n)
    }

    static func text(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>, _ collation: IndexOrder.Collation) -> Int {
        switch collation {
        case .binary: return binary(a, b)
        case .rtrim: return binary(trimmingSpaces(a), trimmingSpaces(b))
        case .nocase:
            // sqlite3StrNICmp over the shorter length (ASCII folding only, stops at a NUL), then by length.
            let n = min(a.count, b.count)
            var i = 0
            while i < n && a[i] != 0 && lower(a[i]) == lower(b[i]) { i += 1 }
            if i < n, lower(a[i]) != lower(b[i]) { return lower(a[i]) < lower(b[i]) ? -1 : 1 }
            return sign(a.count, b.count)
        }
    }

    private static func lower(_ c: UInt8) -> UInt8 { (65...90).contains(c) ? c + 32 : c }

    private static func trimmingSpaces(_ s: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
        var n = s.count
        while n > 0 && s[n - 1] == 32 { n -= 1 }
        return UnsafeBufferPointer(rebasing: s[..<n])
    }

    /// memcmp over the shorter length, then by length.
    static func binary(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Int {
        let n = min(a.count, b.count)
        if n > 0 {
            let c = memcmp(a.baseAddress!, b.baseAddress!, n)
            if c != 0 { return c < 0 ? -1 : 1 }
        }
        return sign(a.count, b.count)
    }
}
