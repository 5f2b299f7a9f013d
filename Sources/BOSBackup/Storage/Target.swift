import Foundation

/// What a target knows about one stored object.
public struct ObjectInfo: Equatable, Sendable {
    public let key: String
    public let size: Int64
    public init(key: String, size: Int64) {
        self.key = key
        self.size = size
    }
}

/// Errors every target reports the same way, so callers need not know the backend.
public enum TargetError: Error, CustomStringConvertible, Sendable {
    case notFound(key: String, target: String)
    case notWritable(String)
    case unreachable(String)
    case failed(String)
    case badURL(String)

    public var description: String {
        switch self {
        case .notFound(let key, let target): return "object \(key) not found on \(target)"
        case .notWritable(let why), .unreachable(let why), .failed(let why): return why
        case .badURL(let why): return "bad target URL: \(why)"
        }
    }
}

/// A stored object being written. Nothing is visible under the key until
/// `commit()` returns; `abort()` removes every trace of it.
public protocol ObjectWriter: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) async throws
    /// Makes the object durable and visible under its key.
    func commit() async throws
    /// Drops the partial object (temp file, multipart upload).
    func abort() async
}

/// Where snapshots live: a folder (NAS, mounted disk) or an S3 bucket.
/// The rest of bosbackup knows only this interface (like Litestream's ReplicaClient).
public protocol Target: AnyObject {
    /// The URL as it may be shown: no credentials in it.
    var displayURL: String { get }
    /// Starts a streaming upload of a new object at `key`.
    func makeWriter(key: String) async throws -> ObjectWriter
    /// Stores a small object in one piece, durably.
    func put(key: String, data: Data) async throws
    /// Streams an object's bytes, in order, to `consume`.
    func read(key: String, consume: (UnsafeRawBufferPointer) throws -> Void) async throws
    /// Reads a small object whole (manifests).
    func get(key: String) async throws -> Data
    func head(key: String) async throws -> ObjectInfo?
    func list(prefix: String) async throws -> [ObjectInfo]
    /// Deletes an object; deleting a missing object is not an error.
    func delete(key: String) async throws
    /// The cheap check before a backup starts compressing: the place exists
    /// and our credentials are accepted (a missing bucket, a wrong key or an
    /// unmounted folder fails here, in a second, not after the whole snapshot).
    func checkAccess() async throws
    /// Bytes free where objects go, when the target is a local disk (nil for object storage).
    var freeBytes: Int64? { get }
}

/// Opens the right target for a URL, or for a policy's target (with its
/// encryption key, when it has one).
public enum TargetFactory {
    public static func open(url: String, environment: [String: String] = [:]) throws -> Target {
        if url.lowercased().hasPrefix("file://") || url.hasPrefix("/") {
            return try FileTarget(url: url)
        }
        if url.lowercased().hasPrefix("s3://") {
            return try S3Target.open(url: url, environment: environment)
        }
        throw TargetError.badURL("unsupported scheme in \(url) (use file:///path or s3://bucket/prefix)")
    }

    public static func open(_ config: Policy.TargetConfig, environment: [String: String] = [:]) throws -> Target {
        var url = config.url
        if let credentials = config.credentialsFile, url.lowercased().hasPrefix("s3://"), !url.contains("credentials_file=") {
            url += (url.contains("?") ? "&" : "?") + "credentials_file=" + (credentials.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+"))) ?? credentials)
        }
        let target = try open(url: url, environment: environment)
        guard let keyFile = config.encryptionKeyFile else { return target }
        return EncryptedTarget(target, key: try EncryptionKey.load(path: keyFile))
    }
}
