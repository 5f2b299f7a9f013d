import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum RepositoryError: Error, CustomStringConvertible, CategorizedError, Sendable {
    /// The bytes are there but are no manifest this version reads.
    case unreadableManifest(String)
    /// The manifest on the target is not the one the catalog recorded.
    case manifestChanged(snapshot: String, key: String)
    /// A parent's page map cannot be used (missing, damaged, another database's).
    case pageMapUnusable(String)

    public var description: String {
        switch self {
        case .unreadableManifest(let why), .pageMapUnusable(let why): return why
        case .manifestChanged(let id, let key):
            return "manifest \(key) of snapshot \(SnapshotID.short(id)) differs from the one recorded when it was taken"
        }
    }
    public var category: ErrorCategory {
        switch self {
        case .unreadableManifest, .manifestChanged: return .mismatch
        case .pageMapUnusable: return .failure
        }
    }
}

/// The one owner of what is on a target (restic's `internal/repository`):
/// object keys, manifests, page maps, listing and deletion. Commands and
/// use cases go through it; `Target` only stores blobs.
public struct Repository {
    public let target: Target

    public init(target: Target) { self.target = target }

    public var displayURL: String { target.displayURL }
    public var encrypts: Bool { target.encrypts }

    // MARK: Writing

    /// Streams a new object through `body`; it becomes visible only when
    /// `body` returns, and leaves no trace when it throws.
    public func writeObject<T>(key: String, _ body: (ObjectWriter) async throws -> T) async throws -> T {
        let writer = try await target.makeWriter(key: key)
        do {
            let result = try await body(writer)
            try await writer.commit()
            return result
        } catch {
            await writer.abort()
            throw error
        }
    }

    /// Stores a manifest; returns the SHA-256 of its bytes (the catalog keeps it).
    public func putManifest(_ data: Data, key: String) async throws -> String {
        try await target.put(key: key, data: data)
        return SHA256Stream.hex(of: data)
    }

    /// Stores a page map as one gzip object.
    func putPageMap(_ encoded: Data, key: String, level: Int) async throws -> (object: SnapshotManifestV2.Object, ref: SnapshotManifestV2.PageMapRef) {
        let compressed = try await writeObject(key: key) { writer in
            // In 1 MiB members (the map's readers take a stream of members): one block of the
            // whole map held its copy and its compressed copy besides the map, 8 MB more at the
            // peak of an archiver's base snapshot of a 1 GB database (heaptrack).
            try await BlockGzipWriter(level: level, blockSize: 1 << 20, jobs: 1)
                .write(source: DataBlockSource(encoded), to: writer)
        }
        return (.init(key: key, bytes: compressed.storedBytes, sha256: compressed.storedSHA256),
                .init(key: key, sha256: compressed.rawSHA256))
    }

    // MARK: Reading

    /// The manifest of a cataloged snapshot, refused when it is not byte for
    /// byte the one the catalog recorded (when the catalog recorded one).
    public func manifest(of snapshot: SnapshotRecord) async throws -> ManifestDocument {
        let data = try await target.get(key: snapshot.manifestKey)
        if let recorded = snapshot.manifestSHA256, SHA256Stream.hex(of: data) != recorded {
            throw RepositoryError.manifestChanged(snapshot: snapshot.id, key: snapshot.manifestKey)
        }
        return try ManifestDocument.decode(data)
    }

    /// The v2 manifest of a cataloged snapshot (a v1 one has no pages or chain).
    public func manifestV2(of snapshot: SnapshotRecord) async throws -> SnapshotManifestV2 {
        guard case .v2(let manifest) = try await manifest(of: snapshot) else {
            throw RepositoryError.unreadableManifest("snapshot \(SnapshotID.short(snapshot.id)) has a v1 manifest, not the v2 one its catalog row says")
        }
        return manifest
    }

    /// The page map a snapshot wrote, from `cache` when the copy there is
    /// the one its manifest names, else from the target (and then cached).
    func pageMap(of snapshot: SnapshotRecord, cache: PageMapCache?) async throws -> PageMap {
        let manifest = try await manifestV2(of: snapshot)
        guard let ref = manifest.pagemap else {
            throw RepositoryError.pageMapUnusable("snapshot \(SnapshotID.short(snapshot.id)) wrote no page map")
        }
        if let cached = cache?.load(snapshotID: snapshot.id, sha256: ref.sha256) { return cached }
        var raw = Data()
        let inflater = try GzipStreamInflater { raw.append(contentsOf: $0) }
        do {
            try await target.read(key: ref.key) { try inflater.feed($0) }
            try inflater.finish()
        } catch let error as GzipStreamInflater.Failure {
            throw RepositoryError.pageMapUnusable("page map \(ref.key) is damaged: \(error)")
        }
        guard SHA256Stream.hex(of: raw) == ref.sha256 else {
            throw RepositoryError.pageMapUnusable("page map \(ref.key) does not match its manifest's SHA-256")
        }
        let map = try PageMap.decode(raw)
        cache?.store(encoded: raw, snapshotID: snapshot.id)
        return map
    }

    /// Keys of every manifest under `prefix` ("" for the whole target).
    public func manifestKeys(under prefix: String) async throws -> (manifests: [String], sizes: [String: Int64]) {
        var manifests: [String] = []
        var sizes: [String: Int64] = [:]
        for object in try await target.list(prefix: prefix) {
            sizes[object.key] = object.size
            if object.key.hasSuffix(".manifest.json") { manifests.append(object.key) }
        }
        return (manifests, sizes)
    }

    public func get(manifestKey: String) async throws -> Data { try await target.get(key: manifestKey) }

    // MARK: Deleting

    /// Removes a snapshot's objects: the manifest first, so a crash half way
    /// leaves objects no listing takes for a backup, never a manifest whose
    /// data is gone. Deleting what is already gone is not an error. On a
    /// versioned target every version goes (`deleteObject`), not only the key.
    public func delete(_ snapshot: SnapshotRecord) async throws {
        let versioned = try await target.keepsVersions()
        for key in objectKeys(of: snapshot) { try await deleteObject(key: key, versioned: versioned) }
    }

    /// Removes objects written for a snapshot that was then not cataloged.
    func discard(_ keys: [String]) async {
        for key in keys { try? await target.delete(key: key) }   // best effort: what is left is unlisted garbage
    }

    // MARK: Checks

    /// Writes, reads back and deletes a small object under this host's
    /// namespace: can this host really store here? False when it read back different.
    /// `deleter`: the same place opened with the credentials that may delete (split
    /// credentials), else this one. On a target that locks objects, the probe is locked like
    /// everything written (the write proves the lock takes) and its locked version stays
    /// behind a delete marker until the lock runs out.
    public func probe(host: String, at now: Date, deleter: Target? = nil) async throws -> Bool {
        let key = RepositoryNamespace.hostPrefix(host) + ".bosbackup-probe-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let probe = Data("bosbackup check \(ISO8601.string(now))\n".utf8)
        try await target.put(key: key, data: probe)
        let back = try await target.get(key: key)
        try await (deleter ?? target).delete(key: key)
        return back == probe
    }

    // MARK: Crash cleanup

    /// Temporary files and multipart uploads of this host's writers that began
    /// before `startedBefore` (the caller holds the run lock, so they are a killed
    /// run's). Everything a host writes is under `<host>/`; another host's are
    /// never touched. (v1 wrote at the top level; its leftovers are not looked for.)
    public func removeStaleWrites(ofHost host: String, startedBefore: Date) async throws -> Int {
        try await target.removeStaleWrites(under: RepositoryNamespace.hostPrefix(host), startedBefore: startedBefore)
    }
}

/// A byte buffer as a block source (small objects: page maps).
struct DataBlockSource: BlockSource, @unchecked Sendable {
    let data: Data
    init(_ data: Data) { self.data = data }
    var size: Int64 { Int64(data.count) }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        let start = Int(offset)
        guard start < data.count else { return 0 }
        let n = min(buffer.count, data.count - start)
        data.copyBytes(to: UnsafeMutableRawBufferPointer(rebasing: buffer[..<n]), from: start..<start + n)
        return n
    }
}

/// Page maps of recent snapshots kept on local disk, so the next
/// incremental does not download its parent's (4 MB per GB of database).
struct PageMapCache {
    let folder: String

    private func path(_ id: String) -> String { "\(folder)/\(id).pagemap" }

    func load(snapshotID: String, sha256: String) -> PageMap? {
        // A missing or stale copy just means a download.
        guard let data = FileManager.default.contents(atPath: path(snapshotID)), SHA256Stream.hex(of: data) == sha256 else { return nil }
        return try? PageMap.decode(data)
    }

    func store(encoded: Data, snapshotID: String) {
        // Best effort: the target holds the page map; the cache only saves a download.
        guard (try? PrivateFolder.prepare(folder)) != nil else { return }
        try? DurableFile.write(encoded, to: path(snapshotID))
    }

    func remove(snapshotID: String) { unlink(path(snapshotID)) }
}
