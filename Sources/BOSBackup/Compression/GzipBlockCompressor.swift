import CLibDeflate
import Foundation

public struct CompressionError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Compresses one block into one complete gzip member (libdeflate; the
/// output is standard gzip that gunzip, pigz and zlib read). A series of such
/// members is a valid gzip file (RFC 1952 §2.2): `gunzip` reads it as one
/// stream, while bosbackup can inflate any block on its own. One per thread.
public final class GzipBlockCompressor {
    private let compressor: OpaquePointer
    private var output: UnsafeMutableRawBufferPointer
    public let level: Int

    public init(level: Int, blockSize: Int) throws {
        guard (1...9).contains(level) else { throw CompressionError("compression level must be 1-9, got \(level)") }
        guard let compressor = libdeflate_alloc_compressor(Int32(level)) else { throw CompressionError("libdeflate: out of memory") }
        self.compressor = compressor
        self.level = level
        output = .allocate(byteCount: libdeflate_gzip_compress_bound(compressor, blockSize), alignment: 16)
    }

    deinit {
        libdeflate_free_compressor(compressor)
        output.deallocate()
    }

    /// Returns a view of the gzip member for `block`, valid until the next call.
    public func compress(_ block: UnsafeRawBufferPointer) throws -> UnsafeRawBufferPointer {
        let n = libdeflate_gzip_compress(compressor, block.baseAddress, block.count, output.baseAddress, output.count)
        guard n > 0 else { throw CompressionError("libdeflate: block of \(block.count) bytes did not fit its bound") }
        return UnsafeRawBufferPointer(start: output.baseAddress, count: n)
    }
}

/// Inflates one gzip member whose decompressed size is at most `capacity`
/// (a block). libdeflate checks the member's CRC-32 and length.
public final class GzipBlockDecompressor {
    private let decompressor: OpaquePointer

    public init() throws {
        guard let d = libdeflate_alloc_decompressor() else { throw CompressionError("libdeflate: out of memory") }
        decompressor = d
    }

    deinit { libdeflate_free_decompressor(decompressor) }

    /// Inflates `member` into `output`; returns the number of bytes produced.
    public func decompress(_ member: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws -> Int {
        var produced = 0
        var consumed = 0
        let rc = libdeflate_gzip_decompress_ex(decompressor, member.baseAddress, member.count, output.baseAddress, output.count,
                                               &consumed, &produced)
        guard rc == LIBDEFLATE_SUCCESS else {
            throw CompressionError(rc == LIBDEFLATE_INSUFFICIENT_SPACE ? "block inflates beyond its size" : "block data corrupt (CRC or deflate error)")
        }
        guard consumed == member.count else { throw CompressionError("block has \(member.count - consumed) stray bytes after its gzip member") }
        return produced
    }
}
