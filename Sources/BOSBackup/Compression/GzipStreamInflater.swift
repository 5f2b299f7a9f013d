import CZlib
import Foundation

/// Inflates a gzip stream of one or more members, fed in chunks of any size,
/// and hands the decompressed bytes to `sink`. zlib checks each member's
/// CRC-32 and length; a stream that stops inside a member is reported as
/// truncated by `finish()`.
public final class GzipStreamInflater {
    public enum Failure: Error, CustomStringConvertible, Sendable {
        case corrupt(String, memberIndex: Int)
        case truncated(memberIndex: Int)
        case notGzip
        public var description: String {
            switch self {
            case .corrupt(let why, let member): return "gzip data corrupt in block \(member): \(why)"
            case .truncated(let member): return "gzip stream truncated in block \(member)"
            case .notGzip: return "not a gzip file"
            }
        }
    }

    private var stream = z_stream()
    private var output: UnsafeMutableRawBufferPointer
    private var inMember = false
    public private(set) var members = 0
    public private(set) var bytesOut: Int64 = 0
    private let sink: (UnsafeRawBufferPointer) throws -> Void

    public init(outputChunk: Int = 1 << 20, sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        self.sink = sink
        output = .allocate(byteCount: outputChunk, alignment: 16)
        let rc = inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else { output.deallocate(); throw CompressionError("zlib inflateInit2 failed (\(rc))") }
    }

    deinit {
        inflateEnd(&stream)
        output.deallocate()
    }

    public func feed(_ input: UnsafeRawBufferPointer) throws {
        guard input.count > 0 else { return }
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress!.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)
        while stream.avail_in > 0 {
            if !inMember {
                // A new member starts here; the first two bytes must be the gzip magic.
                if members == 0, stream.avail_in >= 2,
                   stream.next_in[0] != 0x1f || stream.next_in[1] != 0x8b {
                    throw Failure.notGzip
                }
                inMember = true
            }
            stream.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(output.count)
            let rc = inflate(&stream, Z_NO_FLUSH)
            let produced = output.count - Int(stream.avail_out)
            if produced > 0 {
                bytesOut += Int64(produced)
                try sink(UnsafeRawBufferPointer(start: output.baseAddress, count: produced))
            }
            switch rc {
            case Z_STREAM_END:
                members += 1
                inMember = false
                inflateReset(&stream)
            case Z_OK, Z_BUF_ERROR:
                continue
            default:
                let why = stream.msg.map { String(cString: $0) } ?? "zlib error \(rc)"
                if members == 0 && bytesOut == 0 && why.contains("header") { throw Failure.notGzip }
                throw Failure.corrupt(why, memberIndex: members)
            }
        }
    }

    /// Call after the last chunk: fails if the input ended inside a member.
    public func finish() throws {
        if inMember || members == 0 { throw Failure.truncated(memberIndex: members) }
    }
}
