import Foundation

/// A target whose snapshot objects are encrypted at rest (AES-256-GCM,
/// chunked): writers encrypt on the way out, reads decrypt on the way in,
/// so the rest of bosbackup sees plain gzip bytes and checks them as usual.
/// Manifests (`put`/`get`) stay readable, so a lost catalog can be rebuilt
/// without the key; they hold no database content.
public final class EncryptedTarget: Target {
    public let inner: Target
    public let key: EncryptionKey

    public init(_ inner: Target, key: EncryptionKey) {
        self.inner = inner
        self.key = key
    }

    public var displayURL: String { inner.displayURL }
    public var isLocal: Bool { inner.isLocal }
    public var encrypts: Bool { true }
    /// Each ranged read reads the header and opens whole chunks: a gap inside one is free.
    public var readThroughGap: Int64 { max(inner.readThroughGap, Int64(EncryptedStreamFormat.defaultChunkSize)) }

    public func makeWriter(key objectKey: String) async throws -> ObjectWriter {
        try EncryptingObjectWriter(wrapping: try await inner.makeWriter(key: objectKey), key: key)
    }

    public func put(key: String, data: Data) async throws { try await inner.put(key: key, data: data) }
    public func get(key: String) async throws -> Data { try await inner.get(key: key) }
    public func head(key: String) async throws -> ObjectInfo? { try await inner.head(key: key) }
    public func objects(prefix: String) -> AsyncThrowingStream<ObjectInfo, Error> { inner.objects(prefix: prefix) }
    public func delete(key: String) async throws { try await inner.delete(key: key) }
    public func checkAccess() async throws { try await inner.checkAccess() }
    public var freeBytes: Int64? { inner.freeBytes }
    public var objectLock: ObjectLock? { inner.objectLock }
    public func keepsVersions() async throws -> Bool { try await inner.keepsVersions() }
    public func retention(key: String, versionID: String?) async throws -> ObjectRetention? {
        try await inner.retention(key: key, versionID: versionID)
    }
    public func extendRetention(key: String, versionID: String?, until: Date) async throws {
        try await inner.extendRetention(key: key, versionID: versionID, until: until)
    }
    public func versions(prefix: String) async throws -> [ObjectVersion] { try await inner.versions(prefix: prefix) }
    public func deleteVersion(key: String, versionID: String) async throws { try await inner.deleteVersion(key: key, versionID: versionID) }

    public func removeStaleWrites(under prefix: String, startedBefore: Date) async throws -> Int {
        try await inner.removeStaleWrites(under: prefix, startedBefore: startedBefore)
    }

    public func read(key objectKey: String, consume: (UnsafeRawBufferPointer) throws -> Void) async throws {
        try await withoutActuallyEscaping(consume) { consume in
            let stream = DecryptingStream(key: key, sink: consume)
            try await inner.read(key: objectKey) { try stream.feed($0) }
            try stream.finish()
        }
    }

    /// Reads the header, then only the records of the chunks that hold the range (every
    /// chunk but the last has `chunk size` plaintext bytes, so chunk i's record is at a
    /// known offset), authenticates them with their index and hands out the bytes asked for.
    public func read(key objectKey: String, offset: Int64, length: Int64,
                     consume: (UnsafeRawBufferPointer) throws -> Void) async throws {
        let range = try ByteRange(offset: offset, length: length, key: objectKey)
        let layout = try await ChunkLayout(header: readHeader(objectKey))
        guard !range.isEmpty else { return }
        let chunks = layout.chunks(covering: range)
        try await withoutActuallyEscaping(consume) { consume in
            var window = PlaintextWindow(range: range, position: layout.plaintextOffset(ofChunk: chunks.lowerBound))
            let stream = DecryptingStream(key: key, header: layout.header, firstChunk: chunks.lowerBound) {
                try window.deliver($0, to: consume)
            }
            try await readRecords(objectKey, chunks, layout, into: stream)
            if stream.isComplete || (stream.isBetweenChunks && stream.nextChunk == chunks.upperBound) { return }
            if stream.isBetweenChunks && stream.nextChunk == chunks.lowerBound {
                // Not one record where the range starts: the object must end before it.
                return try await authenticateEnd(objectKey, layout, before: chunks.lowerBound)
            }
            try stream.finish()   // cut inside the range: throws how
        }
    }

    /// The stream header, from the first bytes of the object.
    private func readHeader(_ objectKey: String) async throws -> EncryptedStreamHeader {
        var bytes: [UInt8] = []
        try await inner.read(key: objectKey, offset: 0, length: Int64(EncryptedStreamFormat.headerSize)) {
            bytes.append(contentsOf: $0)
        }
        return try EncryptedStreamHeader.parse(bytes)
    }

    /// Feeds the records of `chunks` (fewer where the object ends) to `stream`.
    private func readRecords(_ objectKey: String, _ chunks: Range<UInt64>, _ layout: ChunkLayout,
                             into stream: DecryptingStream) async throws {
        let start = layout.recordOffset(ofChunk: chunks.lowerBound)
        let end = layout.recordOffset(ofChunk: chunks.upperBound)
        try await inner.read(key: objectKey, offset: start, length: end - start) { try stream.feed($0) }
    }

    /// Checks that the object really ends with a final chunk before chunk `first`, so a
    /// range past the end is told from an object cut short: reads and opens the last record.
    private func authenticateEnd(_ objectKey: String, _ layout: ChunkLayout, before first: UInt64) async throws {
        guard let size = try await inner.head(key: objectKey)?.size else {
            throw TargetError.notFound(key: objectKey, target: displayURL)
        }
        guard let last = layout.finalChunk(ofEncryptedSize: size), last < first else {
            throw EncryptionError.corrupted("the object is \(size) bytes, yet has no chunk \(first) to read")
        }
        let stream = DecryptingStream(key: key, header: layout.header, firstChunk: last) { _ in }
        try await readRecords(objectKey, last ..< last + 1, layout, into: stream)
        try stream.finish()
    }
}

/// Where the records of an encrypted stream lie (see `EncryptedStreamFormat`): the header,
/// then for chunk i a record of `4 + chunk size + 16` bytes, all of that size but the last.
struct ChunkLayout {
    let header: EncryptedStreamHeader

    init(header: EncryptedStreamHeader) { self.header = header }

    private var chunkSize: Int64 { Int64(header.chunkSize) }
    private var recordSize: Int64 { chunkSize + Int64(EncryptedStreamFormat.chunkOverhead) }

    /// The chunks that hold plaintext bytes of a non-empty `range` (those past the end of
    /// the object included: the object says where it ends).
    func chunks(covering range: ByteRange) -> Range<UInt64> {
        UInt64(range.lowerBound / chunkSize) ..< UInt64((range.upperBound - 1) / chunkSize) + 1
    }

    func plaintextOffset(ofChunk index: UInt64) -> Int64 { Int64(index) * chunkSize }

    /// Where chunk `index`'s record starts, saturated at `Int64.max` (a range to "the end").
    func recordOffset(ofChunk index: UInt64) -> Int64 {
        let (bytes, overflow) = Int64(index).multipliedReportingOverflow(by: recordSize)
        let (offset, past) = Int64(EncryptedStreamFormat.headerSize).addingReportingOverflow(bytes)
        return overflow || past ? .max : offset
    }

    /// The index of the final chunk of a well-formed stream of `size` bytes (its final
    /// record holds 0 ... chunk size bytes); nil when no stream has that size.
    func finalChunk(ofEncryptedSize size: Int64) -> UInt64? {
        let records = size - Int64(EncryptedStreamFormat.headerSize) - Int64(EncryptedStreamFormat.chunkOverhead)
        guard records >= 0 else { return nil }
        return UInt64(records / recordSize)
    }
}

/// Cuts whole chunks of plaintext, delivered in order from `position`, down to `range`.
struct PlaintextWindow {
    let range: ByteRange
    /// The plaintext offset of the next byte delivered.
    var position: Int64

    mutating func deliver(_ bytes: UnsafeRawBufferPointer, to consume: (UnsafeRawBufferPointer) throws -> Void) throws {
        let start = max(range.lowerBound, position)
        let end = min(range.upperBound, position + Int64(bytes.count))
        if start < end {
            try consume(UnsafeRawBufferPointer(rebasing: bytes[Int(start - position) ..< Int(end - position)]))
        }
        position += Int64(bytes.count)
    }
}

extension Target {
    /// The backend itself (a folder or a bucket), beneath any encryption.
    public var backend: Target { (self as? EncryptedTarget)?.inner ?? self }
}
