import Foundation

/// A row as SQLite stores it (sqlite.org/fileformat2.html, "Record Format"):
/// a header of serial types, then the values. Text is UTF-8 (the timeline
/// refuses images in another encoding before it reads any record).
enum SQLiteRecord {
    /// The first `limit` values of a record (all by default). A record written
    /// before an `ALTER TABLE … ADD COLUMN` has fewer values than the table has
    /// columns: the caller pads them.
    static func values(_ payload: [UInt8], limit: Int = .max) throws -> [SQLValue] {
        var at = 0
        let headerSize = Int(SQLiteVarint.read(payload, &at))
        guard headerSize >= at, headerSize <= payload.count else { throw BTreeFormatError(description: "a record's header runs past it") }
        var types: [UInt64] = []
        while at < headerSize && types.count < limit { types.append(SQLiteVarint.read(payload, &at)) }
        var body = headerSize
        var values: [SQLValue] = []
        values.reserveCapacity(types.count)
        for type in types {
            let length = contentLength(type)
            guard body + length <= payload.count else { throw BTreeFormatError(description: "a record's value runs past it") }
            values.append(value(type, payload[body..<(body + length)]))
            body += length
        }
        return values
    }

    private static func contentLength(_ type: UInt64) -> Int {
        switch type {
        case 0, 8, 9, 10, 11: return 0
        case 1, 2, 3, 4: return Int(type)
        case 5: return 6
        case 6, 7: return 8
        default: return Int(type - 12) / 2
        }
    }

    private static func value(_ type: UInt64, _ bytes: ArraySlice<UInt8>) -> SQLValue {
        switch type {
        case 0, 10, 11: return .null
        case 8: return .integer(0)
        case 9: return .integer(1)
        case 1...6:
            // Big-endian two's complement of 1, 2, 3, 4, 6 or 8 bytes.
            var value: Int64 = Int64(Int8(bitPattern: bytes.first ?? 0))
            for byte in bytes.dropFirst() { value = value << 8 | Int64(byte) }
            return .integer(value)
        case 7:
            var bits: UInt64 = 0
            for byte in bytes { bits = bits << 8 | UInt64(byte) }
            return .real(Double(bitPattern: bits))
        default:
            return type % 2 == 0 ? .blob(Array(bytes)) : .text(String(decoding: bytes, as: UTF8.self))
        }
    }
}

extension SQLValue: Hashable {
    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .integer(let v): hasher.combine(1); hasher.combine(v)
        case .real(let v): hasher.combine(2); hasher.combine(v)
        case .text(let v): hasher.combine(3); hasher.combine(v)
        case .blob(let v): hasher.combine(4); hasher.combine(v)
        }
    }

}

extension SQLValue {
    /// SQLite's order of values (NULL, numbers, text, blobs; text by bytes), for listing keys.
    static func ordered(_ a: [SQLValue], _ b: [SQLValue]) -> Bool {
        for (x, y) in zip(a, b) where x != y { return x.precedes(y) }
        return a.count < b.count
    }

    private var rank: Int {
        switch self {
        case .null: return 0
        case .integer, .real: return 1
        case .text: return 2
        case .blob: return 3
        }
    }

    private func precedes(_ other: SQLValue) -> Bool {
        guard rank == other.rank else { return rank < other.rank }
        switch (self, other) {
        case (.text(let x), .text(let y)): return Array(x.utf8).lexicographicallyPrecedes(Array(y.utf8))
        case (.blob(let x), .blob(let y)): return x.lexicographicallyPrecedes(y)
        default: return (double ?? 0) < (other.double ?? 0)
        }
    }
}
