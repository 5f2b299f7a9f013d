import CZlib
import Foundation

public struct CompressionError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Compresses one block of bytes into one complete gzip member with zlib.
/// A series of such members is a valid gzip file (RFC 1952 §2.2): `gunzip`
/// reads it as one stream, while we can inflate any block on its own.
public final class GzipBlockCompressor {
    private var stream = z_stream()
    private var output: UnsafeMutableRawBufferPointer
    public let level: Int32

    public init(level: Int, blockSize: Int) throws {
        guard (1...9).contains(level) else { throw CompressionError("compression level must be 1-9, got \(level)") }
        self.level = Int32(level)
        // windowBits 15 + 16 asks zlib for a gzip wrapper (header + CRC-32 + ISIZE).
        let rc = deflateInit2_(&stream, Int32(level), Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                               ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else { throw CompressionError("zlib deflateInit2 failed (\(rc))") }
        let bound = Int(deflateBound(&stream, uLong(blockSize))) + 64
        output = .allocate(byteCount: bound, alignment: 16)
    }

    deinit {
        deflateEnd(&stream)
        output.deallocate()
    }

    /// Returns a view of the gzip member for `block`, valid until the next call.
    public func compress(_ block: UnsafeRawBufferPointer) throws -> UnsafeRawBufferPointer {
        deflateReset(&stream)
        stream.next_in = UnsafeMutablePointer(mutating: block.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(block.count)
        stream.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = uInt(output.count)
        let rc = deflate(&stream, Z_FINISH)
        guard rc == Z_STREAM_END else { throw CompressionError("zlib deflate failed (\(rc))") }
        return UnsafeRawBufferPointer(start: output.baseAddress, count: output.count - Int(stream.avail_out))
    }
}
