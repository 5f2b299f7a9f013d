import CLibDeflate
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Inflates a stream of gzip members (a block-gzip stream: a WAL segment),
/// fed in chunks of any size, a whole member at a time with libdeflate —
/// two to three times zlib's streaming inflate, which was most of the time
/// of `restore --at` and `timeline`. A member's length is not in its header,
/// so the next member's magic (1f 8b 08) marks where it may end, and
/// libdeflate decides: it inflates exactly the member's length (ISIZE, from
/// the candidate's trailer), checks the CRC-32 and must use every byte up to
/// the candidate. Magic bytes inside compressed data are only a candidate
/// that fails; the search goes on. Memory: one member's compressed bytes and
/// its output. Errors are `GzipStreamInflater.Failure`s, like zlib's.
public final class GzipMemberInflater {
    /// Larger members are not ours (blocks are a few MiB): such a trailer is no candidate.
    static let largestMember = 256 << 20

    private let decompressor: OpaquePointer
    private var pending: [UInt8] = []
    private var searchFrom = 0
    private var output: UnsafeMutableRawBufferPointer
    public private(set) var members = 0
    private let sink: (UnsafeRawBufferPointer) throws -> Void

    public init(sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let d = libdeflate_alloc_decompressor() else { throw CompressionError("libdeflate: out of memory") }
        decompressor = d
        output = .allocate(byteCount: 1 << 20, alignment: 16)
        self.sink = sink
    }

    deinit {
        libdeflate_free_decompressor(decompressor)
        output.deallocate()
    }

    public func feed(_ input: UnsafeRawBufferPointer) throws {
        guard !input.isEmpty else { return }
        if members == 0 && pending.isEmpty && input.count >= 2 && (input[0] != 0x1f || input[1] != 0x8b) {
            throw GzipStreamInflater.Failure.notGzip
        }
        pending.append(contentsOf: input)
        while let end = nextCandidate() {
            if try inflateMember(endingAt: end) {
                pending.removeFirst(end)
                searchFrom = 0
            } else {
                searchFrom = end + 1
            }
        }
    }

    /// Call after the last chunk: what is left must be one whole member.
    public func finish() throws {
        guard !pending.isEmpty else {
            if members == 0 { throw GzipStreamInflater.Failure.truncated(memberIndex: 0) }
            return
        }
        guard try inflateMember(endingAt: pending.count) else {
            throw GzipStreamInflater.Failure.corrupt("the member does not inflate (cut short or damaged)", memberIndex: members)
        }
        pending.removeAll()
    }

    /// The next place the member being gathered may end: the start of another member.
    private func nextCandidate() -> Int? {
        // 18 bytes: the smallest member (10-byte header, an empty block, 8-byte trailer).
        var at = max(searchFrom, 18)
        let found: Int? = pending.withUnsafeBytes { bytes in
            while at + 3 <= bytes.count {
                guard let hit = memchr(bytes.baseAddress! + at, 0x1f, bytes.count - 2 - at) else { break }
                at = UnsafeRawPointer(hit) - bytes.baseAddress!
                if bytes[at + 1] == 0x8b && bytes[at + 2] == 0x08 { return at }
                at += 1
            }
            return nil
        }
        if found == nil { searchFrom = max(at, pending.count - 2) }
        return found
    }

    /// Inflates `pending[0..<end]` as one member and hands it on; false when it is not one.
    private func inflateMember(endingAt end: Int) throws -> Bool {
        guard end >= 18 else { return false }
        let size = Int(pending[end - 4]) | Int(pending[end - 3]) << 8 | Int(pending[end - 2]) << 16 | Int(pending[end - 1]) << 24
        // Deflate expands at most about 1032:1: a trailer claiming more is no member's.
        guard size <= Self.largestMember, size <= end * 1032 else { return false }
        if output.count < max(size, 1) {
            output.deallocate()
            output = .allocate(byteCount: max(size, 1), alignment: 16)
        }
        var consumed = 0, produced = 0
        let rc = pending.withUnsafeBytes {
            libdeflate_gzip_decompress_ex(decompressor, $0.baseAddress, end, output.baseAddress, size, &consumed, &produced)
        }
        guard rc == LIBDEFLATE_SUCCESS, consumed == end, produced == size else { return false }
        members += 1
        try sink(UnsafeRawBufferPointer(start: output.baseAddress, count: produced))
        return true
    }
}
