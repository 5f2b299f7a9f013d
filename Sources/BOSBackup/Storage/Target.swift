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

/// A target that reads byte ranges without waiting (a folder, unencrypted): the
/// timeline reads single page members in the middle of work that is not async.
public protocol ReadsRangesNow: AnyObject {
    /// The object at `key`, open for ranged reads until the reader goes.
    func rangeReader(key: String) throws -> RangeReader
    /// Advice: the object at `key` will be read soon (a file is read into the cache in the
    /// background). Says nothing back: a missing object is found by the read itself.
    func readAhead(key: String)
}

/// One object open for positioned reads.
public protocol RangeReader: AnyObject {
    /// Up to `length` bytes from `offset` (fewer at the object's end).
    func read(_ offset: Int64, _ length: Int) throws -> [UInt8]
}

/// Where snapshots live: a folder (NAS, mounted disk) or an S3 bucket, seen as a blob
/// store. The rest of bosbackup knows only this interface (like Litestream's ReplicaClient):
/// what differs between backends is told by traits (`isLocal`, `encrypts`, `readThroughGap`),
/// never by casts.
public protocol Target: AnyObject {
    /// The URL as it may be shown: no credentials in it.
    var displayURL: String { get }
    /// True when objects are files on a disk of this machine (or a mount of it).
    var isLocal: Bool { get }
    /// True when objects are encrypted on the way to this target.
    var encrypts: Bool { get }
    /// Between two ranges of one object wanted together, a gap shorter than this many
    /// bytes is read through rather than asked for separately: what one more ranged
    /// read costs here (a syscall on a disk, a round trip to S3, a chunk to decrypt).
    var readThroughGap: Int64 { get }
    /// Starts a streaming upload of a new object at `key`.
    func makeWriter(key: String) async throws -> ObjectWriter
    /// Stores a small object in one piece, durably.
    func put(key: String, data: Data) async throws
    /// Streams an object's bytes, in order, to `consume`.
    func read(key: String, consume: (UnsafeRawBufferPointer) throws -> Void) async throws
    /// Streams exactly the bytes `offset ..< offset + length` of the object (its plaintext,
    /// on an encrypted target), in order, to `consume`. A range that runs past the end stops
    /// at the end; one that starts past it delivers nothing. A missing object is
    /// `TargetError.notFound`, whatever the range.
    func read(key: String, offset: Int64, length: Int64, consume: (UnsafeRawBufferPointer) throws -> Void) async throws
    /// Reads a small object whole (manifests).
    func get(key: String) async throws -> Data
    func head(key: String) async throws -> ObjectInfo?
    /// Every object whose key starts with `prefix`, a page at a time: the next page is
    /// fetched only when the consumer has taken the current one. The order is the
    /// backend's (key order on S3, folder by folder on disk); `list` sorts.
    func objects(prefix: String) -> AsyncThrowingStream<ObjectInfo, Error>
    /// Deletes an object; deleting a missing object is not an error.
    func delete(key: String) async throws
    /// Removes what writers that never finished left under `prefix` (temporary files,
    /// multipart uploads) and that was started before `startedBefore`; "" means the whole
    /// target. Writes of other live processes are left alone. Returns how many were removed.
    func removeStaleWrites(under prefix: String, startedBefore: Date) async throws -> Int
    /// The cheap check before a backup starts compressing: the place exists
    /// and our credentials are accepted (a missing bucket, a wrong key or an
    /// unmounted folder fails here, in a second, not after the whole snapshot).
    func checkAccess() async throws
    /// Bytes free where objects go, when the target is a local disk (nil for object storage).
    var freeBytes: Int64? { get }

    // Object Lock and versions: blob-level, no snapshot in sight (defaults in ObjectLock.swift:
    // none). The Repository decides what to lock, extend and delete.
    /// The lock every object written here gets (nil: objects are not locked).
    var objectLock: ObjectLock? { get }
    /// True when a DELETE without a version leaves the data behind (a versioned bucket).
    func keepsVersions() async throws -> Bool
    /// The lock on an object's current version (or on `versionID`); nil when it has none.
    func retention(key: String, versionID: String?) async throws -> ObjectRetention?
    /// Pushes the lock of an object (its current version, or `versionID`) out to `until`, in
    /// the target's lock mode; never shortens one.
    func extendRetention(key: String, versionID: String?, until: Date) async throws
    /// Every version and delete marker of the objects under `prefix`, newest first per key.
    func versions(prefix: String) async throws -> [ObjectVersion]
    /// Deletes one version (or delete marker) for good; a locked version is refused.
    func deleteVersion(key: String, versionID: String) async throws
}

extension Target {
    /// Every object under `prefix`, sorted by key (the whole listing in memory: for the
    /// catalog rebuild and tests; `objects(prefix:)` streams).
    public func list(prefix: String) async throws -> [ObjectInfo] {
        var result: [ObjectInfo] = []
        for try await object in objects(prefix: prefix) { result.append(object) }
        return result.sorted { $0.key < $1.key }
    }
}

/// A validated byte range of a ranged read: `offset ..< offset + length`, the end saturated
/// at `Int64.max` so "to the end" can be asked for with any large length.
struct ByteRange: Equatable {
    let lowerBound: Int64
    let upperBound: Int64

    init(offset: Int64, length: Int64, key: String) throws {
        guard offset >= 0, length >= 0 else {
            throw TargetError.failed("read of \(key): invalid range (offset \(offset), length \(length))")
        }
        lowerBound = offset
        let (end, overflow) = offset.addingReportingOverflow(length)
        upperBound = overflow ? .max : end
    }

    var isEmpty: Bool { lowerBound == upperBound }
    var count: Int64 { upperBound - lowerBound }
}

/// Turns a backend that fetches a listing page by page into an `objects(prefix:)` stream.
/// `fetch` gets the cursor of the page to fetch (nil for the first) and returns that page
/// and the next page's cursor (nil after the last page). Pages are pulled: one is fetched
/// only when the consumer has taken every object of the one before.
enum ObjectPages {
    static func stream<Cursor>(_ fetch: @escaping (Cursor?) async throws -> (objects: [ObjectInfo], next: Cursor?))
        -> AsyncThrowingStream<ObjectInfo, Error> {
        let state = PageState(fetch: fetch)
        return AsyncThrowingStream { try await state.next() }
    }

    /// The consumer's position in the listing. `AsyncThrowingStream(unfolding:)` calls its
    /// closure for one `next()` at a time (a stream has one consumer), so the state is never
    /// touched concurrently; hence unchecked.
    private final class PageState<Cursor>: @unchecked Sendable {
        private let fetch: (Cursor?) async throws -> (objects: [ObjectInfo], next: Cursor?)
        private var page: [ObjectInfo] = []
        private var position = 0
        private var cursor: Cursor?
        private var finished = false

        init(fetch: @escaping (Cursor?) async throws -> (objects: [ObjectInfo], next: Cursor?)) { self.fetch = fetch }

        func next() async throws -> ObjectInfo? {
            // An empty page with a cursor is legal (S3 may send one): fetch on.
            while position == page.count {
                if finished { return nil }
                let fetched = try await fetch(cursor)
                (page, position, cursor) = (fetched.objects, 0, fetched.next)
                finished = fetched.next == nil
            }
            position += 1
            return page[position - 1]
        }
    }
}

/// Opens the right target for a URL, or for a policy's target (with its
/// encryption key, when it has one).
public enum TargetFactory {
    /// Whether `url` names a folder (`file:///…` or an absolute path), not a bucket.
    public static func isFolder(url: String) -> Bool {
        url.lowercased().hasPrefix("file://") || url.hasPrefix("/")
    }

    public static func open(url: String, environment: [String: String] = [:]) throws -> Target {
        if isFolder(url: url) {
            return try FileTarget(url: url)
        }
        if url.lowercased().hasPrefix("s3://") {
            return try S3Target.open(url: url, environment: environment)
        }
        throw TargetError.badURL("unsupported scheme in \(url) (use file:///path or s3://bucket/prefix)")
    }

    /// A policy target opened for `role`: its encryption key, its lock, and the credentials
    /// of that role (`TargetCredentials`).
    public static func open(_ config: Policy.TargetConfig, role: CredentialRole = .write,
                            environment: [String: String] = [:]) throws -> Target {
        var url = config.url
        if let credentials = config.credentialsFile, url.lowercased().hasPrefix("s3://"), !url.contains("credentials_file=") {
            url += (url.contains("?") ? "&" : "?") + "credentials_file=" + (credentials.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+"))) ?? credentials)
        }
        let target: Target
        if url.lowercased().hasPrefix("s3://") {
            let pruning = role == .prune && config.hasPruneCredentials
            target = try S3Target.open(url: url, environment: environment, options: S3Target.Options(objectLock: config.objectLock),
                                       credentialsFile: pruning ? config.pruneCredentialsFile : nil,
                                       profile: pruning ? config.pruneProfile : nil)
        } else {
            target = try open(url: url, environment: environment)
        }
        guard let keyFile = config.encryptionKeyFile else { return target }
        return EncryptedTarget(target, key: try EncryptionKey.load(path: keyFile))
    }
}
