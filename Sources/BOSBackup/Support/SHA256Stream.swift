import Crypto
import Foundation

/// Incremental SHA-256 with a hex result.
public struct SHA256Stream {
    private var hasher = SHA256()
    public private(set) var count: Int64 = 0
    public init() {}
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        hasher.update(bufferPointer: bytes)
        count += Int64(bytes.count)
    }
    public func hex() -> String { hasher.finalize().hex }

    public static func hex(of data: Data) -> String { SHA256.hash(data: data).hex }

    /// Hashes a whole file by streaming it.
    public static func hex(ofFile path: String, chunk: Int = 1 << 20) throws -> String {
        let file = try FileHandleFD(readingFrom: path)
        var stream = SHA256Stream()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = try file.read(into: buffer)
            if n == 0 { break }
            stream.update(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
        }
        return stream.hex()
    }
}

extension Sequence where Element == UInt8 {
    public var hex: String { map { String(format: "%02x", $0) }.joined() }
}
