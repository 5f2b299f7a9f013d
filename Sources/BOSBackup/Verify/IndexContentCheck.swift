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
/// UNIQUE indexes are also checked for duplicate keys along the index.
///
/// Covered: rowid tables whose indexes are on plain columns. Anything else
/// (expression or partial indexes, WITHOUT ROWID tables) is left to
/// `integrity_check(T)` — `plan` says which.
enum IndexContentCheck {
    struct Index: Equatable {
        var name: String
        var columns: [String]
        /// Collation per key column (for the duplicate check of a UNIQUE index).
        var collations: [String]
        var unique: Bool
    }

    /// The indexes of `table` this check covers, or nil when the table needs `integrity_check(T)`.
    static func plan(table: String, in db: Database) throws -> [Index]? {
        let sql = try db.scalar("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?", .text(table))?.string ?? ""
        if sql.range(of: "WITHOUT\\s+ROWID", options: [.regularExpression, .caseInsensitive]) != nil { return nil }
        // A column named _rowid_ would hide the rowid the entries are keyed by.
        if try db.scalar("SELECT 1 FROM pragma_table_info(?) WHERE lower(name) = '_rowid_'", .text(table)) != nil { return nil }
        var indexes: [Index] = []
        for row in try db.rows("SELECT name, \"unique\", partial FROM pragma_index_list(?)", .text(table)) {
            guard let name = row[0].string, row[2].int == 0 else { return nil }
            var columns: [String] = [], collations: [String] = []
            for column in try db.rows("SELECT cid, name, coll FROM pragma_index_xinfo(?) WHERE key = 1 ORDER BY seqno", .text(name)) {
                guard let cid = column[0].int, cid >= 0, let columnName = column[1].string else { return nil }   // -2: an expression
                columns.append(columnName)
                collations.append(column[2].string ?? "BINARY")
            }
            guard !columns.isEmpty else { return nil }
            indexes.append(Index(name: name, columns: columns, collations: collations, unique: row[1].int == 1))
        }
        return indexes
    }

    /// The multiset hash of one index's entries as the table says they should be
    /// (`side: .table`), or as the index holds them (`.index`).
    enum Side { case table, index }

    /// One full scan of the table hashing every index's entries at once, or one covering scan of `index`.
    static func hashes(table: String, indexes: [Index], side: Side, path: String) throws -> [Int64] {
        let db = try Database(path: path, mode: .readOnly)
        MultisetHash.register(on: db)
        let quotedTable = Database.quote(table)
        let terms = indexes.map { index in
            "bos_multiset_hash(" + (index.columns.map(Database.quote) + ["_rowid_"]).joined(separator: ", ") + ")"
        }
        let source = side == .table ? "\(quotedTable) NOT INDEXED" : "\(quotedTable) INDEXED BY \(Database.quote(indexes[0].name))"
        let row = try db.rows("SELECT \(terms.joined(separator: ", ")) FROM \(source)").first ?? []
        return row.map { $0.int ?? 0 }
    }

    /// A UNIQUE index holding one key twice (NULLs are distinct, as SQLite has it).
    static func duplicateKey(table: String, index: Index, path: String) throws -> Bool {
        let db = try Database(path: path, mode: .readOnly)
        let keys = zip(index.columns, index.collations).map { "\(Database.quote($0)) COLLATE \(Database.quote($1))" }
        let notNull = index.columns.map { "\(Database.quote($0)) IS NOT NULL" }.joined(separator: " AND ")
        return try db.scalar("""
            SELECT 1 FROM \(Database.quote(table)) INDEXED BY \(Database.quote(index.name)) WHERE \(notNull)
            GROUP BY \(keys.joined(separator: ", ")) HAVING count(*) > 1 LIMIT 1
            """) != nil
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
