import CSQLite
import Foundation

/// Checks that every index holds exactly its table's rows — the part of
/// `PRAGMA integrity_check` that `quick_check` leaves out — with sequential
/// scans instead of one random index seek per row.
///
/// `integrity_check(T)` looks each row of T up in each index: on an index
/// whose order differs from the table's (inventory by product) that is a
/// random page read per row, 12 s for 5 M rows here. Instead we scan the
/// table once and each index once (a covering scan, index pages only) and
/// compare a multiset hash of the (key columns, rowid) entries: a sum, mod
/// 2^64, of a 64-bit hash per entry, so order does not matter and a missing,
/// extra or changed entry changes the sum (a collision needs ~2^64 luck).
/// The entries' order is proven in the same index scan (`IndexOrder`), and
/// with it the uniqueness of a UNIQUE index's keys.
///
/// Covered: rowid tables whose indexes are on plain columns with SQLite's own
/// collations, in a UTF-8 database. Anything else (expression or partial
/// indexes, WITHOUT ROWID tables, application-defined collations) is left to
/// `integrity_check(T)` — `plan` says which.
enum IndexContentCheck {
    struct Index: Equatable {
        var name: String
        var columns: [String]
        var unique: Bool
        /// The first argument of `bos_index_order` (collation and direction per
        /// key column); nil when a collation is the application's own.
        var orderSpec: String?
        /// The application-defined collations of its key columns.
        var foreignCollations: [String] = []
    }

    /// The indexes of `table` this check covers, or nil when the table needs `integrity_check(T)`.
    static func plan(table: String, in db: Database) throws -> [Index]? {
        // Text is compared as UTF-8 bytes; a UTF-16 database orders it otherwise.
        guard try db.scalar("PRAGMA encoding")?.string == "UTF-8" else { return nil }
        let sql = try db.scalar("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?", .text(table))?.string ?? ""
        if sql.range(of: "WITHOUT\\s+ROWID", options: [.regularExpression, .caseInsensitive]) != nil { return nil }
        // A column named _rowid_ would hide the rowid the entries are keyed by.
        if try db.scalar("SELECT 1 FROM pragma_table_info(?) WHERE lower(name) = '_rowid_'", .text(table)) != nil { return nil }
        // An index on the rowid's alias: a scan reads the rowid, not the key stored in the entry.
        let keys = try db.rows("SELECT cid, upper(type) FROM pragma_table_info(?) WHERE pk > 0", .text(table))
        let rowidAlias = keys.count == 1 && keys[0][1].string == "INTEGER" ? keys[0][0].int : nil
        var indexes: [Index] = []
        for row in try db.rows("SELECT name, \"unique\", partial FROM pragma_index_list(?)", .text(table)) {
            guard let name = row[0].string, row[2].int == 0 else { return nil }
            var columns: [String] = [], collations: [IndexOrder.Collation] = [], descending: [Bool] = [], foreign: [String] = []
            for column in try db.rows("SELECT cid, name, coll, \"desc\" FROM pragma_index_xinfo(?) WHERE key = 1 ORDER BY seqno", .text(name)) {
                guard let cid = column[0].int, cid >= 0, cid != rowidAlias, let columnName = column[1].string else { return nil }   // -2: an expression
                let collationName = column[2].string ?? "BINARY"
                columns.append(columnName)
                descending.append(column[3].int == 1)
                if let collation = IndexOrder.knownCollations[collationName.uppercased()] { collations.append(collation) } else { foreign.append(collationName) }
            }
            guard !columns.isEmpty else { return nil }
            let unique = row[1].int == 1
            indexes.append(Index(name: name, columns: columns, unique: unique,
                                 orderSpec: foreign.isEmpty ? IndexOrder.spec(unique: unique, collations: collations, descending: descending) : nil,
                                 foreignCollations: foreign))
        }
        return indexes
    }

    /// The multiset hash of each index's entries as the table says they should
    /// be: one full scan of the table hashing every index's entries at once.
    static func tableHashes(table: String, indexes: [Index], path: String) throws -> [Int64] {
        let db = try scanConnection(path)
        let terms = indexes.map { "bos_multiset_hash(" + entry($0) + ")" }
        let row = try db.rows("SELECT \(terms.joined(separator: ", ")) FROM \(Database.quote(table)) NOT INDEXED").first ?? []
        return row.map { $0.int ?? 0 }
    }

    /// What one covering scan of an index holds: the multiset hash of its
    /// entries and whether they come in the declared order.
    /// `order` is nil when the index has an application-defined collation.
    static func scanIndex(table: String, index: Index, path: String) throws -> (hash: Int64, order: IndexOrder.Verdict?) {
        let db = try scanConnection(path)
        let order = index.orderSpec.map { _ in ", bos_index_order(?, \(entry(index)))" } ?? ""
        let statement = try db.prepare("""
            SELECT bos_multiset_hash(\(entry(index)))\(order) FROM \(Database.quote(table)) INDEXED BY \(Database.quote(index.name))
            """)
        if let spec = index.orderSpec { try statement.bind([.text(spec)]) }
        guard try statement.step() else { return (0, index.orderSpec == nil ? nil : .inOrder) }
        let row = statement.row()
        return (row[0].int ?? 0, index.orderSpec == nil ? nil : IndexOrder.Verdict(rawValue: row[1].int ?? 0) ?? .outOfOrder)
    }

    /// A read-only connection for the scans, with our aggregates, and a
    /// stand-in for every collation only the application defines: a full scan
    /// never compares keys, so the stand-in is never asked, and without it
    /// SQLite refuses even to prepare a scan of such an index (or a
    /// `quick_check` of the database).
    static func scanConnection(_ path: String) throws -> Database {
        let db = try Database(path: path, mode: .readOnly)
        MultisetHash.register(on: db)
        IndexOrder.register(on: db)
        db.standInForUnknownCollations()
        return db
    }

    /// `"a", "b", _rowid_`: an index entry, as a list of expressions.
    private static func entry(_ index: Index) -> String {
        (index.columns.map(Database.quote) + ["_rowid_"]).joined(separator: ", ")
    }
}

/// `bos_multiset_hash(v1, …, vn)`: an aggregate SQL function — the wrapping
/// sum of a 64-bit hash of each row's values (type-tagged, so 1, 1.0 and '1'
/// differ). FNV-1a over the bytes, then a murmur3 finaliser so that sums of
/// nearby tuples do not cancel.
enum MultisetHash {
    static func register(on db: Database) {
        sqlite3_create_function_v2(db.handle, "bos_multiset_hash", -1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nil, nil,
                                   { context, count, values in
            guard let context, let values,
                  let sum = sqlite3_aggregate_context(context, 8)?.assumingMemoryBound(to: UInt64.self) else { return }
            var hash = Fnv()
            for i in 0..<Int(count) { hash.add(values[i]) }
            sum.pointee &+= hash.finish()
        }, { context in
            let sum = sqlite3_aggregate_context(context, 0)?.assumingMemoryBound(to: UInt64.self).pointee ?? 0
            sqlite3_result_int64(context, Int64(bitPattern: sum))
        }, nil)
    }

    struct Fnv {
        var state: UInt64 = 0xcbf2_9ce4_8422_2325

        mutating func byte(_ b: UInt8) {
            state = (state ^ UInt64(b)) &* 0x100_0000_01b3
        }
        mutating func word(_ w: UInt64) { for shift in stride(from: 0, to: 64, by: 8) { byte(UInt8(truncatingIfNeeded: w >> UInt64(shift))) } }
        mutating func bytes(_ p: UnsafeRawPointer?, _ n: Int32) {
            word(UInt64(n))
            guard let p else { return }
            for i in 0..<Int(n) { byte(p.load(fromByteOffset: i, as: UInt8.self)) }
        }

        mutating func add(_ value: OpaquePointer?) {
            let type = sqlite3_value_type(value)
            byte(UInt8(type))
            switch type {
            case SQLITE_INTEGER: word(UInt64(bitPattern: sqlite3_value_int64(value)))
            case SQLITE_FLOAT: word(sqlite3_value_double(value).bitPattern)
            case SQLITE_TEXT: bytes(sqlite3_value_text(value).map(UnsafeRawPointer.init), sqlite3_value_bytes(value))
            case SQLITE_BLOB: bytes(sqlite3_value_blob(value), sqlite3_value_bytes(value))
            default: break
            }
        }

        func finish() -> UInt64 {
            var h = state
            h ^= h >> 33; h &*= 0xff51_afd7_ed55_8ccd
            h ^= h >> 33; h &*= 0xc4ce_b9fe_1a85_ec53
            h ^= h >> 33
            return h
        }
    }
}
