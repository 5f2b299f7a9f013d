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
        if stored.count != ref.length, let size = try await target.head(key: record.objectKey)?.size, size != record.bytes {
            throw PointInTimeError.segmentDamaged(key: record.objectKey, why: "it is \(size) bytes, not the \(record.bytes) shipped")
        }
        return try segmentIndex(record, ref, stored: stored)
    }

    /// The index from its stored bytes, checked against the SHA-256 the catalog keeps.
    func segmentIndex(_ record: WALSegmentRecord, _ ref: SegmentIndexRef, stored: [UInt8]) throws -> [IndexedCommit] {
        let found = SHA256.hash(data: stored).hex
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
    /// `BOSWAL03` segment's index is read first (checked against the catalog); each page
    /// is handed over as its member with the index's SHA-256, inflated and checked only
    /// when the walk reads that page, so every byte the walk uses is checked, as in a
    /// restore. On a target that reads ranges without waiting (`stored`: a folder) the
    /// members are not even read here, only their places (`.stored`); elsewhere the
    /// segment's pages are streamed once, one commit's members in memory at a time.
    /// Older segments are read as they are (their pages inflated). `index`: the segment's
    /// index, read and checked already (`SegmentIndexAhead`). `starting` is told a folder's
    /// segment's commits before the first is (so the walk can read ahead in them).
    func timelineCommits(of record: WALSegmentRecord, pageSize: Int, stored: StoredPages? = nil, index given: [IndexedCommit]? = nil,
                         starting: ([TimelineCommit]) throws -> Void = { _ in },
                         _ commit: @escaping (TimelineCommit) throws -> Void) async throws {
        guard let ref = record.index else {
            _ = try await segment(record) { c in
                try commit(TimelineCommit(txid: c.txid, seenAt: c.seenAt, pageCount: c.pageCount, pages: c.pages.map { ($0.number, .bytes($0.bytes)) }))
            }
            return
        }
        let index: [IndexedCommit]
        if let given { index = given } else { index = try await segmentIndex(record, ref) }
        for c in index {
            for page in c.pages where page.offset < 0 || page.offset + Int64(page.length) > ref.offset {
                throw PointInTimeError.segmentDamaged(key: record.objectKey, why: "its index puts page \(page.number) outside its pages")
            }
        }
        func timelineCommit(_ c: IndexedCommit, _ version: (IndexedCommit.Page) -> PageVersion) -> TimelineCommit {
            TimelineCommit(txid: c.txid, seenAt: c.seenAt, pageCount: c.pageCount, pages: c.pages.map { ($0.number, version($0)) })
        }
        if let stored {
            let segment = stored.add(record)
            let commits = index.map { c in
                timelineCommit(c) { .stored(StoredPage(segment: segment, offset: $0.offset, length: $0.length, digest: $0.sha256)) }
            }
            try starting(commits)
            for c in commits { try commit(c) }
            return
        }
        var pending: [UInt8] = []
        var pendingStart: Int64 = 0   // the object's offset of pending[0]
        var next = 0
        try await damagedWhenMissing(record) {
            try await target.read(key: record.objectKey, offset: 0, length: ref.offset) { chunk in
                pending.append(contentsOf: chunk)
                while next < index.count {
                    let c = index[next]
                    guard c.pages.allSatisfy({ $0.offset + Int64($0.length) <= pendingStart + Int64(pending.count) }) else { break }
                    try commit(timelineCommit(c) { page in
                        let start = Int(page.offset - pendingStart)
                        return .member(PageMember(bytes: Array(pending[start..<start + Int(page.length)]), digest: page.sha256,
                                                  key: record.objectKey, offset: page.offset))
                    })
                    next += 1
                }
                // Keep from the next commit's first member on (a megabyte dropped at a time).
                let keep = next < index.count ? index[next].pages.map(\.offset).min() ?? pendingStart : pendingStart + Int64(pending.count)
                if keep - pendingStart >= 1 << 20 || next == index.count {
                    let drop = Int(min(keep - pendingStart, Int64(pending.count)))
                    pending.removeFirst(drop)
                    pendingStart += Int64(drop)
                }
            }
        }
        guard next == index.count else {
            throw PointInTimeError.segmentDamaged(key: record.objectKey, why: "it ends before the pages of txid \(index[next].txid) (cut short)")
        }
    }

    /// Hands over the pages `wanted` (any order) of a segment, each inflated and
    /// checked. Members close together are fetched in one ranged read, streamed:
    /// memory holds a read chunk and one member, not the run.
    func segmentPages(_ record: WALSegmentRecord, _ wanted: [IndexedCommit.Page], pageSize: Int,
                      _ consume: (UInt32, UnsafeRawBufferPointer) throws -> Void) async throws {
        let pages = wanted.sorted { $0.offset < $1.offset }
        let decompressor = try GzipBlockDecompressor()
        var page = [UInt8](repeating: 0, count: pageSize)
        var start = 0
        while start < pages.count {
            // One request for a run of members with gaps the target reads through cheaper than it
            // asks again (a folder: a few members; S3: a quarter megabyte).
            var end = start + 1
            while end < pages.count, pages[end].offset - (pages[end - 1].offset + Int64(pages[end - 1].length)) < target.readThroughGap { end += 1 }
            let run = pages[start..<end]
            let from = run.first!.offset
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
                    guard produced == pageSize, page.withUnsafeBytes({ PageDigest(of: $0) }) == member.sha256 else {
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
            let length = run.last!.offset + Int64(run.last!.length) - from
            try await damagedWhenMissing(record) {
                try await target.read(key: record.objectKey, offset: from, length: length) { chunk in
                    pending.append(contentsOf: chunk)
                    try take()
                }
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
