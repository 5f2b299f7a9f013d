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
    public var encrypts: Bool { true }

    public func makeWriter(key objectKey: String) async throws -> ObjectWriter {
        try EncryptingObjectWriter(wrapping: try await inner.makeWriter(key: objectKey), key: key)
    }

    public func put(key: String, data: Data) async throws { try await inner.put(key: key, data: data) }
    public func get(key: String) async throws -> Data { try await inner.get(key: key) }
    public func head(key: String) async throws -> ObjectInfo? { try await inner.head(key: key) }
    public func list(prefix: String) async throws -> [ObjectInfo] { try await inner.list(prefix: prefix) }
    public func delete(key: String) async throws { try await inner.delete(key: key) }
    public func checkAccess() async throws { try await inner.checkAccess() }
    public var freeBytes: Int64? { inner.freeBytes }

    public func read(key objectKey: String, consume: (UnsafeRawBufferPointer) throws -> Void) async throws {
        try await withoutActuallyEscaping(consume) { consume in
            let stream = DecryptingStream(key: key, sink: consume)
            try await inner.read(key: objectKey) { try stream.feed($0) }
            try stream.finish()
        }
    }
}

extension Target {
    /// True when objects are encrypted on the way to this target.
    public var encrypts: Bool { (self as? EncryptedTarget) != nil }

    /// The backend itself (a folder or a bucket), beneath any encryption.
    public var backend: Target { (self as? EncryptedTarget)?.inner ?? self }
}
