import Crypto
import Foundation

/// Random access into `BOSWAL03` segments: the index, then only the page
/// members a restore needs. Everything read is checked against what was
/// shipped: the index against the SHA-256 the catalog recorded, each page
/// against the SHA-256 the index holds (and its member's CRC-32).
extension Repository {
    func segmentIndex(_ record: WALSegmentRecord, _ ref: SegmentIndexRef) async throws -> [IndexedCommit] {
        var stored: [UInt8] = []
        stored.reserveCapacity(Int(ref.length))
        try await damagedWhenMissing(record) {
            try await target.read(key: record.objectKey, offset: ref.offset, length: ref.length) { stored.append(contentsOf: $0) }
        }
        let found = SHA256.hash(data: stored).hex
        if stored.count != ref.length, let size = try await target.head(key: record.objectKey)?.size, size != record.bytes {
            throw PointInTimeError.segmentDamaged(key: record.objectKey, why: "it is \(size) bytes, not the \(record.bytes) shipped")
        }
        guard stored.count == ref.length, found == ref.sha256 else {
            throw PointInTimeError.segmentDamaged(key: record.objectKey, why: "its index is not the one shipped (\(stored.count) of \(ref.length) bytes "
                                                  + "at byte \(ref.offset), SHA-256 \(found.prefix(12)) where \(ref.sha256.prefix(12)) was shipped)")
        }
        let size = stored.suffix(4).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        var raw = [UInt8](repeating: 0, count: size)
        do {
            let produced = try raw.withUnsafeMutableBytes { output in
                try stored.withUnsafeBytes { try GzipBlockDecompressor().decompress($0, into: output) }
            }
            guard produced == size else { throw CompressionError("index member inflates to \(produced) bytes, not \(size)") }
            return try SegmentFormatV3.decodeIndex(raw)
        } catch let error as CompressionError {
            throw PointInTimeError.segmentDamaged(key: record.objectKey, why: "its index: \(error)")
        } catch let error as WALSegment.FormatError {
            throw PointInTimeError.segmentDamaged(key: record.objectKey, why: "\(error)")
        }
    }

    /// Where a `BOSWAL03` segment of `size` stored bytes keeps its index, from its
    /// trailer, with the SHA-256 of the index as it is there now (`catalog rebuild`).
    func segmentIndexRef(key: String, size: Int64) async throws -> SegmentIndexRef {
        func bytes(_ offset: Int64, _ length: Int64) async throws -> [UInt8] {
            var out: [UInt8] = []
            try await target.read(key: key, offset: offset, length: length) { out.append(contentsOf: $0) }
            return out
        }
        let trailerSize = Int64(SegmentFormatV3.trailerSize)
        guard size > trailerSize else { throw PointInTimeError.segmentDamaged(key: key, why: "too short for a BOSWAL03 segment") }
        do {
            let place = try SegmentFormatV3.indexPlace(trailer: try await bytes(size - trailerSize, trailerSize))
            guard place.offset >= 0, place.length > 0, place.offset + place.length == size - trailerSize else {
                throw WALSegment.FormatError(description: "its trailer points outside the segment")
            }
            let index = try await bytes(place.offset, place.length)
            return SegmentIndexRef(offset: place.offset, length: place.length, sha256: SHA256.hash(data: index).hex)
        } catch let error as WALSegment.FormatError {
            throw PointInTimeError.segmentDamaged(key: key, why: "\(error)")
        }
    }

    /// Every commit of a segment, in order, with its pages (the timeline's walk). A
    /// `BOSWAL03` segment is read by its index: each page member inflated where the index
    /// says, with no search for where members end (which made forward reading of many
    /// small members twice as slow), the whole object checked against its stored SHA-256,
    /// as the older formats are read.
    func commits(of record: WALSegmentRecord, pageSize: Int, _ commit: @escaping (ArchivedCommit) throws -> Void) async throws {
        guard let ref = record.index else {
            _ = try await segment(record, commit: commit)
            return
        }
        let index = try await segmentIndex(record, ref)
        var next = 0
        var pages: [(number: UInt32, bytes: [UInt8])] = []
        func emitWhole() throws {
            while next < index.count, pages.count == index[next].pages.count {
                let c = index[next]
                try commit(ArchivedCommit(txid: c.txid, seenAt: c.seenAt, pageCount: c.pageCount, pages: pages))
                pages.removeAll(keepingCapacity: true)
                next += 1
            }
        }
        try emitWhole()   // commits that wrote no page
        try await segmentPages(record, index.flatMap(\.pages), pageSize: pageSize, wholeObject: true) { number, bytes in
            pages.append((number, Array(bytes)))
            try emitWhole()
        }
        guard next == index.count else {
            throw PointInTimeError.segmentDamaged(key: record.objectKey, why: "its index lists pages the segment does not hold")
        }
    }

    /// Hands over the pages `wanted` (any order) of a segment, each inflated and
    /// checked. Members close together are fetched in one ranged read, streamed:
    /// memory holds a read chunk and one member, not the run.
    ///
    /// `wholeObject`: for reading every page (the timeline), the object is read from its first
    /// byte to its last in one request and its SHA-256 checked against the one shipped, at the
    /// end, instead of each page's: hashing the compressed object costs a fraction of hashing
    /// every page inflated. Pages are handed over before that check: a caller throws its work
    /// away when this throws.
    func segmentPages(_ record: WALSegmentRecord, _ wanted: [IndexedCommit.Page], pageSize: Int, wholeObject: Bool = false,
                      _ consume: (UInt32, UnsafeRawBufferPointer) throws -> Void) async throws {
        let pages = wanted.sorted { $0.offset < $1.offset }
        var stored = SHA256Stream()
        let decompressor = try GzipBlockDecompressor()
        var page = [UInt8](repeating: 0, count: pageSize)
        var start = 0
        while start < pages.count {
            // One request for a run of members with gaps under 256 KiB between them.
            var end = start + 1
            while end < pages.count, wholeObject || pages[end].offset - (pages[end - 1].offset + Int64(pages[end - 1].length)) < 256 << 10 { end += 1 }
            let run = pages[start..<end]
            let from = wholeObject ? 0 : run.first!.offset
            var pending: [UInt8] = []
            var pendingStart = from
            var next = run.startIndex
            func take() throws {
                while next < run.endIndex {
                    let member = run[next]
                    let lower = Int(member.offset - pendingStart), upper = lower + Int(member.length)
                    guard upper <= pending.count else { return }
                    let produced: Int
                    do {
                        produced = try page.withUnsafeMutableBytes { output in
                            try pending[lower..<upper].withUnsafeBytes { try decompressor.decompress($0, into: output) }
                        }
                    } catch let error as CompressionError {
                        throw PointInTimeError.segmentDamaged(key: record.objectKey, why: "page \(member.number) at byte \(member.offset): \(error)")
                    }
                    guard produced == pageSize, wholeObject || Array(SHA256.hash(data: page)) == member.sha256 else {
                        throw PointInTimeError.segmentDamaged(key: record.objectKey, why: "page \(member.number) at byte \(member.offset) is not the page shipped")
                    }
                    try page.withUnsafeBytes { try consume(member.number, $0) }
                    next += 1
                }
                // Drop what lies behind the next member, a megabyte at a time.
                let behind = next < run.endIndex ? Int(run[next].offset - pendingStart) : pending.count
                if behind >= 1 << 20 || next == run.endIndex {
                    let drop = min(behind, pending.count)
                    pending.removeFirst(drop)
                    pendingStart += Int64(drop)
                }
            }
            let length = wholeObject ? record.bytes : run.last!.offset + Int64(run.last!.length) - from
            try await damagedWhenMissing(record) {
                try await target.read(key: record.objectKey, offset: from, length: length) { chunk in
                    if wholeObject { stored.update(chunk) }
                    pending.append(contentsOf: chunk)
                    try take()
                }
            }
            if wholeObject, stored.count != record.bytes || stored.hex() != record.sha256 {
                throw PointInTimeError.segmentDamaged(key: record.objectKey, why: "its SHA-256 is not the one recorded when it was shipped")
            }
            guard next == run.endIndex else {
                throw PointInTimeError.segmentDamaged(key: record.objectKey, why: "it ends before its page \(run[next].number) (cut short)")
            }
            start = end
        }
    }

    /// A segment gone from its target is damage to report, like a changed one.
    private func damagedWhenMissing(_ record: WALSegmentRecord, _ body: () async throws -> Void) async throws {
        do { try await body() } catch TargetError.notFound {
            throw PointInTimeError.segmentDamaged(key: record.objectKey, why: "it is missing")
        }
    }
}
