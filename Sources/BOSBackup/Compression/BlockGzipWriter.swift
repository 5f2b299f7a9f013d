import Foundation

/// What the block-gzip writer produced.
public struct CompressedObject: Sendable {
    public var rawBytes: Int64
    public var rawSHA256: String
    public var storedBytes: Int64
    public var storedSHA256: String
    public var blocks: [SnapshotManifest.Block]
}

/// Streams a file through block-wise gzip into an `ObjectWriter`: one gzip
/// member per `blockSize` bytes, SHA-256 of both the raw and stored bytes
/// computed on the way. Memory is two buffers of one block each, whatever
/// the file size.
public struct BlockGzipWriter {
    public static let defaultBlockSize = 4 << 20

    public var level: Int
    public var blockSize: Int

    public init(level: Int = 6, blockSize: Int = BlockGzipWriter.defaultBlockSize) {
        self.level = level
        self.blockSize = blockSize
    }

    public func write(file path: String, to writer: ObjectWriter,
                      progress: ((_ done: Int64, _ total: Int64) -> Void)? = nil) async throws -> CompressedObject {
        let input = try FileHandleFD(readingFrom: path)
        let total = input.size
        let compressor = try GzipBlockCompressor(level: level, blockSize: blockSize)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: blockSize, alignment: 16)
        defer { buffer.deallocate() }
        var raw = SHA256Stream()
        var stored = SHA256Stream()
        var blocks: [SnapshotManifest.Block] = []
        while true {
            // A daemon being stopped abandons the snapshot here; the caller aborts the upload.
            try Task.checkCancellation()
            let n = try input.readFully(into: buffer)
            if n == 0 { break }
            let block = UnsafeRawBufferPointer(rebasing: buffer[..<n])
            raw.update(block)
            let member = try compressor.compress(block)
            blocks.append(.init(offset: stored.count, length: Int64(member.count)))
            stored.update(member)
            try await writer.write(member)
            progress?(raw.count, total)
            if n < blockSize { break }
        }
        if blocks.isEmpty {
            // An empty input still becomes a valid (one empty member) gzip file.
            let member = try compressor.compress(UnsafeRawBufferPointer(start: nil, count: 0))
            blocks.append(.init(offset: 0, length: Int64(member.count)))
            stored.update(member)
            try await writer.write(member)
        }
        return CompressedObject(rawBytes: raw.count, rawSHA256: raw.hex(), storedBytes: stored.count,
                                storedSHA256: stored.hex(), blocks: blocks)
    }
}
