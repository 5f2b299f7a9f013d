import Foundation
import NIOCore
import NIOHTTP1

/// What HEAD tells of an object: size, ETag, version and lock.
struct S3ObjectHead {
    var size: Int64
    var etag: String?
    var versionID: String?
    var retention: ObjectRetention?

    init(size: Int64, headers: HTTPHeaders) {
        self.size = size
        etag = headers.first(name: "etag")
        versionID = headers.first(name: "x-amz-version-id").flatMap { $0.isEmpty || $0 == "null" ? nil : $0 }
        if let mode = headers.first(name: "x-amz-object-lock-mode").flatMap(ObjectLock.Mode.init(rawValue:)),
           let until = headers.first(name: "x-amz-object-lock-retain-until-date").flatMap(S3XML.timestamp) {
            retention = ObjectRetention(mode: mode, retainUntil: until)
        }
    }
}

/// Object Lock, versions, and the read-only view of the past (`as_of=`).
///
/// Every object written to a target with `objectLock` carries the lock headers on its PUT or
/// CreateMultipartUpload (signed, like every `x-amz-*` header) and is HEADed after its commit:
/// where the lock did not take (servers that ignore it on multipart uploads), it is set with
/// PutObjectRetention and HEADed again; an object still unlocked fails the write.
extension S3Target {
    static func versionQuery(_ versionID: String?) -> [URLQueryItem] {
        versionID.map { [URLQueryItem(name: "versionId", value: $0)] } ?? []
    }

    /// S3 dates in lock headers and documents: `2026-12-09T18:01:01Z`.
    static func lockDate(_ date: Date) -> String { ISO8601.string(date) }

    func lockHeaders(until: Date?) -> [String: String] {
        guard let lock = objectLock, let until else { return [:] }
        return ["x-amz-object-lock-mode": lock.mode.rawValue, "x-amz-object-lock-retain-until-date": Self.lockDate(until)]
    }

    /// True when `retention` is the lock asked for, to at least `until` (a second of slack for
    /// servers that round).
    static func holds(_ retention: ObjectRetention?, mode: ObjectLock.Mode, until: Date) -> Bool {
        guard let retention else { return false }
        return retention.mode == mode && retention.retainUntil >= until.addingTimeInterval(-1)
    }

    /// After a commit: the object must be locked as asked; set the lock where it did not take.
    func confirmLock(fullKey: String, head: S3ObjectHead, until: Date) async throws {
        guard let lock = objectLock, !Self.holds(head.retention, mode: lock.mode, until: until) else { return }
        try await putObjectRetention(fullKey: fullKey, versionID: head.versionID, retention: ObjectRetention(mode: lock.mode, retainUntil: until))
        let again = try await headObject(fullKey: fullKey, versionID: head.versionID)
        guard Self.holds(again?.retention, mode: lock.mode, until: until) else {
            let seen = again?.retention.map { "\($0.mode.rawValue) until \(Self.lockDate($0.retainUntil))" } ?? "no lock"
            throw S3OperationError(operation: "HEAD", resource: resource(fullKey),
                                   failure: S3Failure(kind: .integrity, detail: "object_lock did not take: the object shows \(seen), "
                                                      + "not \(lock.mode.rawValue) until \(Self.lockDate(until))", retryable: false),
                                   attempts: 1, elapsed: 0, gaveUp: nil)
        }
    }

    /// PutObjectRetention (which S3 requires to carry Content-MD5).
    func putObjectRetention(fullKey: String, versionID: String?, retention: ObjectRetention) async throws {
        let url = location.objectURL(key: fullKey, query: [URLQueryItem(name: "retention", value: nil)] + Self.versionQuery(versionID))
        let body = S3Body.bytes(ByteBufferAllocator().buffer(string: S3XML.retentionRequest(retention)))
        let headers = ["content-md5": Data(Self.md5(body)).base64EncodedString(), "content-type": "application/xml"]
        try await options.retry.run(operation: "PutObjectRetention", resource: resource(fullKey)) { _ in
            _ = try await send(.PUT, url: url, headers: headers, body: body)
        }
    }

    // MARK: - Target: locks and versions

    public func keepsVersions() async throws -> Bool {
        if objectLock != nil { return true }   // Object Lock needs versioning, and S3 keeps it on
        let url = location.bucketURL(query: [URLQueryItem(name: "versioning", value: nil)])
        // A server that does not answer it (not every S3-compatible one implements it) is taken
        // as unversioned: the plain DELETE of before, whose own errors are reported.
        var retry = options.retry
        retry.maxAttempts = min(retry.maxAttempts, 2)   // a dead server is the DELETE's to report, not to wait on twice
        let status = try? await retry.run(operation: "GetBucketVersioning", resource: bucketResource) { _ in
            S3XML.parse(try await send(.GET, url: url).body)?.value("Status")
        }
        return status == "Enabled" || status == "Suspended"
    }

    public func retention(key: String, versionID: String?) async throws -> ObjectRetention? {
        let fullKey = location.objectKey(key)
        return try await mapErrors { try await headObject(fullKey: fullKey, versionID: versionID)?.retention }
    }

    public func extendRetention(key: String, versionID: String?, until: Date) async throws {
        try refuseWritesAsOf()
        let fullKey = location.objectKey(key)
        try await mapErrors {
            guard let head = try await headObject(fullKey: fullKey, versionID: versionID) else {
                throw TargetError.notFound(key: key, target: displayURL)
            }
            // A COMPLIANCE lock cannot become GOVERNANCE: an object keeps the mode it has.
            guard let mode = head.retention?.mode ?? objectLock?.mode else {
                throw TargetError.failed("\(resource(fullKey)) has no lock to extend and the target has no object_lock")
            }
            if let current = head.retention, current.retainUntil >= until { return }
            try await putObjectRetention(fullKey: fullKey, versionID: versionID ?? head.versionID,
                                         retention: ObjectRetention(mode: mode, retainUntil: until))
        }
    }

    public func versions(prefix: String) async throws -> [ObjectVersion] {
        let strip = location.prefix.isEmpty ? 0 : location.prefix.count + 1
        return try await mapErrors { try await listObjectVersions(fullPrefix: location.objectKey(prefix)) }
            .map { var version = $0; version.key = String(version.key.dropFirst(strip)); return version }
    }

    public func deleteVersion(key: String, versionID: String) async throws {
        try refuseWritesAsOf()
        let fullKey = location.objectKey(key)
        let url = location.objectURL(key: fullKey, query: Self.versionQuery(versionID))
        try await mapErrors {
            try await options.retry.run(operation: "DELETE version \(versionID)", resource: resource(fullKey)) { _ in
                do {
                    _ = try await send(.DELETE, url: url)
                } catch let failure as S3Failure where failure.kind == .http(status: 404, code: "NoSuchVersion")
                    || failure.kind == .http(status: 404, code: "NoSuchKey") {
                    return
                }
            }
        }
    }

    /// Every version and delete marker under `fullPrefix` (full keys), page by page.
    func listObjectVersions(fullPrefix: String) async throws -> [ObjectVersion] {
        var result: [ObjectVersion] = []
        var markers: (key: String, version: String?)?
        repeat {
            var query = [URLQueryItem(name: "versions", value: nil), URLQueryItem(name: "encoding-type", value: "url")]
            if !fullPrefix.isEmpty { query.append(URLQueryItem(name: "prefix", value: fullPrefix)) }
            if let size = options.listPageSize { query.append(URLQueryItem(name: "max-keys", value: String(size))) }
            if let markers {
                query.append(URLQueryItem(name: "key-marker", value: markers.key))
                if let version = markers.version { query.append(URLQueryItem(name: "version-id-marker", value: version)) }
            }
            let url = location.bucketURL(query: query)
            let page = try await options.retry.run(operation: "ListObjectVersions", resource: bucketResource + "/" + fullPrefix) { _ in
                guard let page = S3XML.versionsPage(try await send(.GET, url: url).body, urlEncoded: true) else {
                    throw S3Failure(kind: .badResponse, detail: "not a ListVersionsResult", retryable: true)
                }
                return page
            }
            result += page.versions
            markers = page.isTruncated ? page.nextKeyMarker.map { ($0, page.nextVersionIDMarker) } : nil
        } while markers != nil
        return result
    }

    // MARK: - The bucket as it was (`as_of=`)

    func refuseWritesAsOf() throws {
        guard let asOf = location.asOf else { return }
        throw TargetError.notWritable("\(displayURL) is the bucket as of \(ISO8601.string(asOf)), read from object versions: "
            + "nothing is written or deleted through it")
    }

    /// The version of `key` the view shows (nil when the target is not a view of the past).
    func pinnedVersion(key: String) async throws -> String? {
        guard location.asOf != nil else { return nil }
        guard let version = try await pinnedVersionIfAny(key: key) else { throw TargetError.notFound(key: key, target: displayURL) }
        return version
    }

    /// The newest version of `key` at or before `as_of`; nil when there is none or it is a delete marker.
    func pinnedVersionIfAny(key: String) async throws -> String? {
        let fullKey = location.objectKey(key)
        let versions = try await mapErrors { try await listObjectVersions(fullPrefix: fullKey) }.filter { $0.key == fullKey }
        return visible(versions)[fullKey]?.versionID
    }

    /// Per key, the version the bucket showed at `as_of`; keys deleted by then are left out.
    func visible(_ versions: [ObjectVersion]) -> [String: ObjectVersion] {
        guard let asOf = location.asOf else { return [:] }
        // S3 lists a key's versions newest first, so the first one at or before `as_of` is the
        // one shown then, even when a delete marker has the same second as the version it hides.
        var newest: [String: ObjectVersion] = [:]
        for version in versions where version.lastModified <= asOf && newest[version.key] == nil {
            newest[version.key] = version
        }
        return newest.filter { !$0.value.isDeleteMarker }
    }

    /// The listing of the view: one ListObjectVersions, sorted by key.
    func objectsAsOf(prefix: String) -> AsyncThrowingStream<ObjectInfo, Error> {
        ObjectPages.stream { (_: Int?) in
            let strip = self.location.prefix.isEmpty ? 0 : self.location.prefix.count + 1
            let fullPrefix = self.location.objectKey(prefix)
            let versions = try await self.mapErrors { try await self.listObjectVersions(fullPrefix: fullPrefix) }
            let objects = self.visible(versions).values.sorted { $0.key < $1.key }
                .map { ObjectInfo(key: String($0.key.dropFirst(strip)), size: $0.size) }
            return (objects, nil)
        }
    }
}
