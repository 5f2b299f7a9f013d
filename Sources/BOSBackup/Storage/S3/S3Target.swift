import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1

/// An S3 bucket (AWS or an S3-compatible server) as a backup target.
///
/// Semantics mirror `FileTarget`: keys are relative to the location's prefix; an object is
/// visible only once its writer commits (a single PUT, or CompleteMultipartUpload); `abort`
/// leaves nothing behind (AbortMultipartUpload); deleting a missing object is not an error.
///
/// Integrity: every request signs the SHA-256 of its body (`x-amz-content-sha256`), every
/// upload carries `Content-MD5` and its returned ETag is checked against the MD5 we computed;
/// a committed object is checked with HEAD (size and, for multipart, the composite ETag).
/// Downloads check the byte count against `Content-Length` and resume an interrupted body
/// with a `Range` request pinned to the object's ETag.
///
/// Every request is retried per `Options.retry` (see `S3RetryPolicy`), re-signed each time.
/// Errors are `TargetError`s whose text names the operation, bucket/key, HTTP status and S3
/// error code in one line, and never contains the secret key or session token.
public final class S3Target: Target {
    public struct Options: Sendable {
        public static let minimumPartSize = 5 << 20
        public static let maximumPartSize = 5 << 30
        public static let maximumParts = 10_000

        /// Multipart part size: objects smaller than one part at commit go as a single PUT.
        /// Clamped to 5 MiB...5 GiB (S3's limits). At most two parts are held in memory: the
        /// one being filled and the one being uploaded.
        public var partSize: Int
        /// Upload a part while the next one fills (two parts in memory); off: one part in
        /// memory, each part's upload waited for before the next fills.
        public var overlapsParts = true
        public var retry: S3RetryPolicy
        /// Whole-request deadline for small requests (HEAD, list, multipart control calls).
        public var requestTimeout: TimeInterval
        /// Whole-request deadline for transfers (PUT, UploadPart, GET). Stalls are caught sooner
        /// by the client's idle read/write timeouts.
        public var transferTimeout: TimeInterval
        /// `max-keys` for ListObjectsV2 pages (nil: the server's default, 1000).
        public var listPageSize: Int?
        /// The HTTP client to use; nil for a process-wide shared one. A client passed here is
        /// owned by the caller, who shuts it down.
        public var httpClient: HTTPClient?
        /// The lock every object written gets (lock headers on PUT and CreateMultipartUpload,
        /// checked with HEAD after the commit); nil: objects are not locked.
        public var objectLock: ObjectLock?

        public init(partSize: Int = 16 << 20, retry: S3RetryPolicy = .default, requestTimeout: TimeInterval = 300,
                    transferTimeout: TimeInterval = 6 * 3600, listPageSize: Int? = nil, httpClient: HTTPClient? = nil,
                    objectLock: ObjectLock? = nil) {
            self.partSize = min(max(partSize, Self.minimumPartSize), Self.maximumPartSize)
            self.retry = retry
            self.requestTimeout = requestTimeout
            self.transferTimeout = transferTimeout
            self.listPageSize = listPageSize
            self.httpClient = httpClient
            self.objectLock = objectLock
        }
    }

    public let location: S3Location
    /// Set before use (the archive's shipper, which owns its target, asks for small parts).
    public var options: Options
    let credentials: AWSCredentials
    let signer: SigV4Signer
    let client: HTTPClient

    /// The target's URL with every non-default setting and no credentials: parsing it again
    /// gives the same location (the catalog records it to find snapshots later).
    public let displayURL: String
    public var isLocal: Bool { false }
    public var encrypts: Bool { false }
    /// A request costs a round trip: a quarter megabyte read through is cheaper.
    public var readThroughGap: Int64 { 256 << 10 }
    public var objectLock: ObjectLock? { options.objectLock }

    public init(location: S3Location, credentials: AWSCredentials, options: Options = Options()) {
        self.location = location
        self.credentials = credentials
        self.options = options
        self.signer = SigV4Signer(credentials: credentials, region: location.region)
        self.client = options.httpClient ?? S3Target.sharedHTTPClient
        self.displayURL = S3Target.displayURL(for: location)
    }

    /// Opens an `s3://bucket/prefix?...` target URL, resolving credentials from `environment`
    /// (see `AWSCredentials.resolve`). Location errors become `TargetError.badURL`;
    /// credential errors are thrown as they are (category `.input`).
    /// `credentialsFile` and `profile`, when given, stand in for the URL's (the prune credentials).
    public static func open(url: String, environment: [String: String], options: Options = Options(),
                            credentialsFile: String? = nil, profile: String? = nil) throws -> S3Target {
        let location: S3Location
        do { location = try S3Location(parsing: url) } catch let error as S3LocationError {
            throw TargetError.badURL(error.message)
        }
        let credentials = try AWSCredentials.resolve(environment: environment, credentialsFile: credentialsFile ?? location.credentialsFile,
                                                     profile: profile ?? location.profile)
        var options = options
        if let partSize = location.partSize { options.partSize = partSize }
        if let retryFor = location.retryFor { options.retry.maxTotalTime = retryFor }
        return S3Target(location: location, credentials: credentials, options: options)
    }

    /// How long one attempt waits for a connection. The client keeps retrying a refused
    /// connection (a server restarting) until then, so this is also what one attempt against a
    /// dead endpoint costs: with 5 attempts, a server that is gone fails an operation in about
    /// 15 s (it was 50 s with 10 s), and a handshake still survives a lost SYN (resent at 1 s).
    static let connectTimeout: TimeAmount = .seconds(3)

    /// One client for the process, never shut down (like `HTTPClient.shared`), with redirects
    /// off (a signed request must not be replayed elsewhere) and idle timeouts.
    static let sharedHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: connectTimeout, read: .seconds(120), write: .seconds(120)),
            connectionPool: .init(idleTimeout: .seconds(30)),
            decompression: .disabled)
        configuration.httpVersion = .http1Only
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    static func displayURL(for location: S3Location) -> String {
        var text = "s3://\(location.bucket)"
        if !location.prefix.isEmpty { text += "/" + S3Location.encodeKey(location.prefix) }
        var query: [(String, String)] = []
        if location.region != S3Location.defaultRegion { query.append(("region", location.region)) }
        if let endpoint = location.endpoint { query.append(("endpoint", endpoint.absoluteString)) }
        let defaultAddressing: S3Location.Addressing =
            (location.endpoint != nil || location.bucket.contains(".")) ? .path : .virtual
        if location.addressing != defaultAddressing { query.append(("addressing", location.addressing.rawValue)) }
        if let file = location.credentialsFile { query.append(("credentials_file", file)) }
        if let profile = location.profile { query.append(("profile", profile)) }
        if let asOf = location.asOf { query.append(("as_of", ISO8601.string(asOf))) }
        if !query.isEmpty {
            text += "?" + query.map { "\($0.0)=\(encodeQueryValue($0.1))" }.joined(separator: "&")
        }
        return text
    }

    /// Percent-encodes a displayURL parameter value, leaving URL punctuation that cannot
    /// confuse the parser readable (`endpoint=http://127.0.0.1:9000`).
    static func encodeQueryValue(_ value: String) -> String {
        let readable = Set("-._~:/@!$'()*+,;".utf8)
        var out = ""
        for byte in value.utf8 {
            let isAlnum = (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
            if isAlnum || readable.contains(byte) {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    /// `s3://bucket/full/key`, for messages.
    func resource(_ fullKey: String) -> String { "s3://\(location.bucket)/\(fullKey)" }
    var bucketResource: String { "s3://\(location.bucket)" }

    // MARK: - Target

    public func makeWriter(key: String) async throws -> ObjectWriter {
        try refuseWritesAsOf()
        return S3ObjectWriter(target: self, key: key)
    }

    public func put(key: String, data: Data) async throws {
        try refuseWritesAsOf()
        let fullKey = location.objectKey(key)
        try await mapErrors {
            var buffer = ByteBufferAllocator().buffer(capacity: data.count)
            buffer.writeBytes(data)
            let lockedUntil = objectLock?.retainUntil(from: Date())
            try await putObject(fullKey: fullKey, body: .bytes(buffer), lockedUntil: lockedUntil)
            try await verifySize(fullKey: fullKey, expected: Int64(data.count), multipartETag: nil, lockedUntil: lockedUntil)
        }
    }

    public func read(key: String, consume: (UnsafeRawBufferPointer) throws -> Void) async throws {
        let fullKey = location.objectKey(key)
        try await mapErrors(notFoundKey: key) {
            try await getObject(fullKey: fullKey, versionID: try await pinnedVersion(key: key), consume: consume)
        }
    }

    public func read(key: String, offset: Int64, length: Int64, consume: (UnsafeRawBufferPointer) throws -> Void) async throws {
        let range = try ByteRange(offset: offset, length: length, key: key)
        let fullKey = location.objectKey(key)
        try await mapErrors(notFoundKey: key) {
            let version = try await pinnedVersion(key: key)
            guard range.isEmpty else {
                return try await getObject(fullKey: fullKey, versionID: version, range: range, consume: consume)
            }
            // No Range header asks for nothing; whether the object exists is HEAD's to say.
            if try await headObject(fullKey: fullKey, versionID: version) == nil {
                throw TargetError.notFound(key: key, target: displayURL)
            }
        }
    }

    public func get(key: String) async throws -> Data {
        var data = Data()
        try await read(key: key) { data.append(contentsOf: $0) }
        return data
    }

    public func head(key: String) async throws -> ObjectInfo? {
        let fullKey = location.objectKey(key)
        return try await mapErrors {
            if location.asOf != nil {
                guard let version = try await pinnedVersionIfAny(key: key) else { return nil }
                return try await headObject(fullKey: fullKey, versionID: version).map { ObjectInfo(key: key, size: $0.size) }
            }
            return try await headObject(fullKey: fullKey).map { ObjectInfo(key: key, size: $0.size) }
        }
    }

    /// One ListObjectsV2 of at most one key: answers NoSuchBucket, AccessDenied or a bad
    /// signature without moving data.
    public var freeBytes: Int64? { nil }

    public func checkAccess() async throws {
        try await mapErrors {
            var query = [URLQueryItem(name: "list-type", value: "2"), URLQueryItem(name: "max-keys", value: "1")]
            let prefix = location.objectKey("")
            if !prefix.isEmpty { query.append(URLQueryItem(name: "prefix", value: prefix)) }
            let url = location.bucketURL(query: query)
            _ = try await options.retry.run(operation: "ListObjectsV2 (access check)", resource: bucketResource) { _ in
                try await send(.GET, url: url)
            }
        }
    }

    /// One ListObjectsV2 page (`Options.listPageSize` keys) at a time, as the consumer asks.
    public func objects(prefix: String) -> AsyncThrowingStream<ObjectInfo, Error> {
        if location.asOf != nil { return objectsAsOf(prefix: prefix) }
        let fullPrefix = location.objectKey(prefix)
        let strip = location.prefix.isEmpty ? 0 : location.prefix.count + 1
        return ObjectPages.stream { (cursor: ListCursor?) in
            let cursor = cursor ?? ListCursor(page: 1, token: nil)
            let listing = try await self.mapErrors { try await self.listObjectsPage(fullPrefix: fullPrefix, cursor: cursor) }
            let objects = listing.objects.map { ObjectInfo(key: String($0.key.dropFirst(strip)), size: $0.size) }
            let next = listing.nextContinuationToken.map { ListCursor(page: cursor.page + 1, token: $0) }
            return (objects, listing.isTruncated ? next : nil)
        }
    }

    public func delete(key: String) async throws {
        try refuseWritesAsOf()
        let fullKey = location.objectKey(key)
        try await mapErrors {
            try await deleteObject(fullKey: fullKey)
        }
    }

    /// Multipart uploads in progress under the target's prefix (full keys): what a writer
    /// killed mid-upload leaves behind, or one still at work. `removeStaleWrites` removes
    /// the stale ones.
    public func multipartUploads() async throws -> [S3MultipartUpload] {
        try await mapErrors { try await listMultipartUploads(fullPrefix: location.objectKey("")) }
    }

    /// Aborts the multipart uploads under the target's prefix + `prefix` that S3 says were
    /// initiated before `startedBefore`. One whose start the server does not tell may be a
    /// live writer's, and is left alone. S3's clock, not ours, dates them: a server ahead of
    /// us leaves an upload of a moment ago to the next run, never one of the future to this.
    public func removeStaleWrites(under prefix: String, startedBefore: Date) async throws -> Int {
        if location.asOf != nil { return 0 }   // a view of the past writes nothing, so it has no leftovers
        return try await abortUploads(fullPrefix: location.objectKey(prefix), budget: Self.housekeepingBudget) { upload in
            upload.initiated.map { $0 < startedBefore } ?? false
        }
    }

    /// Aborts every multipart upload in progress under the target's prefix, whoever's
    /// (v1's cleanup: only safe when no other writer can be at work); returns how many.
    @discardableResult
    public func abortStaleUploads(budget: Double = S3Target.housekeepingBudget) async throws -> Int {
        try await abortUploads(fullPrefix: location.objectKey(""), budget: budget) { _ in true }
    }

    /// Seconds the cleanup of a run may take against S3, retries included.
    public static let housekeepingBudget: Double = 20

    /// Aborts the uploads under `fullPrefix` that `isStale` picks; returns how many were aborted.
    /// Housekeeping, not the job: it gets `budget` seconds in all (with its retries), so an
    /// unreachable endpoint costs a run seconds, not minutes; what is left, the next run aborts.
    private func abortUploads(fullPrefix: String, budget: Double,
                              where isStale: (S3MultipartUpload) -> Bool) async throws -> Int {
        var bounded = options
        bounded.retry.maxTotalTime = min(bounded.retry.maxTotalTime, budget)
        bounded.retry.maxAttempts = min(bounded.retry.maxAttempts, 3)
        bounded.requestTimeout = min(bounded.requestTimeout, budget / 2)   // a silent server, not only a refusing one
        let housekeeping = S3Target(location: location, credentials: credentials, options: bounded)
        let deadline = S3RetryPolicy.monotonicSeconds() + budget
        return try await mapErrors {
            var aborted = 0
            for upload in try await housekeeping.listMultipartUploads(fullPrefix: fullPrefix)
            where isStale(upload) && S3RetryPolicy.monotonicSeconds() < deadline {
                try await housekeeping.abortMultipartUpload(fullKey: upload.key, uploadID: upload.uploadID)
                aborted += 1
            }
            return aborted
        }
    }

    // MARK: - Errors

    /// Runs target work, turning S3 errors into `TargetError`s without credentials in them.
    func mapErrors<T>(notFoundKey: String? = nil, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as S3OperationError {
            throw targetError(error, notFoundKey: notFoundKey)
        } catch let error as S3PassThrough {
            throw error.error
        }
    }

    func targetError(_ error: S3OperationError, notFoundKey: String? = nil) -> TargetError {
        if let notFoundKey, error.httpStatus == 404, error.code == nil || error.code == "NoSuchKey" {
            return .notFound(key: notFoundKey, target: displayURL)
        }
        let text = redact(error.description)
        if case .network = error.failure.kind { return .unreachable(text) }
        return .failed(text)
    }

    /// Removes the secret and token from a message, should a server ever echo them.
    func redact(_ text: String) -> String {
        var text = text
        for secret in [credentials.secretAccessKey, credentials.sessionToken].compactMap({ $0 }) where secret.count >= 4 {
            text = text.replacingOccurrences(of: secret, with: "<redacted>")
        }
        return text
    }

    // MARK: - Requests

    struct Response {
        var status: Int
        var headers: HTTPHeaders
        var body: Data
    }

    /// Sends one signed request (no retry) and collects the response. A non-2xx status
    /// becomes an `S3Failure` with the S3 error code from the body.
    func send(_ method: HTTPMethod, url: URL, headers: [String: String] = [:], body: S3Body? = nil,
              payloadSHA256: String? = nil, timeout: TimeInterval? = nil, maxBody: Int = 16 << 20) async throws -> Response {
        let response = try await execute(method, url: url, headers: headers, body: body, payloadSHA256: payloadSHA256,
                                         timeout: timeout ?? options.requestTimeout)
        let data: Data
        do {
            data = Data(try await response.body.collect(upTo: maxBody).readableBytesView)
        } catch {
            throw Self.transportFailure(error, while: "reading the response")
        }
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else {
            throw Self.httpFailure(status: status, reason: response.status.reasonPhrase, body: data,
                                   retryAfter: response.headers.first(name: "retry-after"))
        }
        return Response(status: status, headers: response.headers, body: data)
    }

    /// Signs (with the current time) and starts a request; the body of the answer is left to
    /// the caller. Transport errors become retryable `S3Failure`s.
    func execute(_ method: HTTPMethod, url: URL, headers: [String: String], body: S3Body?,
                 payloadSHA256: String?, timeout: TimeInterval) async throws -> HTTPClientResponse {
        let hash: String
        if let payloadSHA256 {
            hash = payloadSHA256
        } else if let body {
            hash = Self.sha256Hex(body)
        } else {
            hash = SigV4Signer.emptyPayloadSHA256
        }
        let signed = signer.signedHeaders(method: method.rawValue, url: url, headers: headers, payloadSHA256: hash,
                                          date: Date())
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = method
        for (name, value) in headers { request.headers.replaceOrAdd(name: name, value: value) }
        for (name, value) in signed { request.headers.replaceOrAdd(name: name, value: value) }
        request.headers.replaceOrAdd(name: "user-agent", value: "bosbackup/\(BOSBackupVersion.string)")
        if let body { request.body = body.requestBody() }
        do {
            return try await client.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
        } catch {
            throw Self.transportFailure(error, while: "sending the request")
        }
    }

    static func httpFailure(status: Int, reason: String, body: Data, retryAfter: String? = nil) -> S3Failure {
        // Retry-After in seconds (the HTTP-date form is rare from S3 servers and is ignored).
        let wait = retryAfter.flatMap { Double($0.trimmingCharacters(in: .whitespaces)) }.map { max(0, $0) }
        if let document = S3XML.error(body) {
            return .http(status: status, code: document.code, message: document.message, retryAfter: wait)
        }
        // HEAD answers, and some proxies, have no XML body.
        return .http(status: status, code: nil, message: reason, retryAfter: wait)
    }

    static func transportFailure(_ error: Error, while doing: String) -> Error {
        if error is CancellationError || Task.isCancelled { return CancellationError() }
        if let failure = error as? S3Failure { return failure }
        if let client = error as? HTTPClientError {
            if client == .cancelled { return CancellationError() }
            // Our own request is malformed: another attempt would fail the same way.
            if [HTTPClientError.invalidURL, .emptyHost, .emptyScheme, .missingSocketPath, .bodyLengthMismatch].contains(client) {
                return S3Failure(kind: .badResponse, detail: "\(client)", retryable: false)
            }
        }
        return S3Failure.network("\(describe(error)) while \(doing)")
    }

    /// Short text for a transport error ("remote connection closed", "read timeout").
    static func describe(_ error: Error) -> String {
        if let client = error as? HTTPClientError {
            switch client {
            case .remoteConnectionClosed: return "connection closed by the server"
            case .readTimeout: return "read timeout"
            case .writeTimeout: return "write timeout"
            case .connectTimeout: return "connect timeout"
            case .deadlineExceeded: return "request deadline exceeded"
            default: return String(describing: client)
            }
        }
        if let io = error as? IOError { return "\(String(cString: strerror(io.errnoCode))) (errno \(io.errnoCode))" }
        return String(describing: error)
    }

    // MARK: - Object operations (full keys; throw S3OperationError)

    func putObject(fullKey: String, body: S3Body, lockedUntil: Date? = nil) async throws {
        let md5 = Self.md5(body)
        let headers = ["content-md5": Data(md5).base64EncodedString(), "content-type": "application/octet-stream"]
            .merging(lockHeaders(until: lockedUntil), uniquingKeysWith: { $1 })
        let sha = Self.sha256Hex(body)
        let url = location.objectURL(key: fullKey)
        try await options.retry.run(operation: "PUT", resource: resource(fullKey)) { _ in
            let response = try await send(.PUT, url: url, headers: headers, body: body, payloadSHA256: sha,
                                          timeout: options.transferTimeout)
            try Self.checkETag(response.headers, md5: md5, what: "object")
        }
    }

    /// Streams an object, or the bytes `range` of it, to `consume`, resuming an interrupted
    /// body from where it stopped (`Range`, `If-Match` on the first answer's ETag). Each
    /// resumption counts as an attempt.
    func getObject(fullKey: String, versionID: String? = nil, range: ByteRange? = nil,
                   consume: (UnsafeRawBufferPointer) throws -> Void) async throws {
        let url = location.objectURL(key: fullKey, query: Self.versionQuery(versionID))
        var download = S3Download(range: range)
        // A download that keeps moving gets a fresh set of attempts after each cut:
        // the retry budget is for failures that make no progress (a dead server),
        // not for a long transfer over a link that drops now and then.
        var rounds = 0
        while true {
            let before = download.received
            do {
                return try await getObjectRound(url: url, fullKey: fullKey, download: &download, consume: consume)
            } catch let error as S3OperationError where error.failure.kind == .network && download.received > before && rounds < 1000 {
                rounds += 1
            }
        }
    }

    /// One round of bounded retries, each resuming with a Range request where the last one stopped.
    private func getObjectRound(url: URL, fullKey: String, download: inout S3Download,
                                consume: (UnsafeRawBufferPointer) throws -> Void) async throws {
        try await options.retry.run(operation: download.operation, resource: resource(fullKey)) { _ in
            var headers: [String: String] = [:]
            if let range = download.rangeHeader { headers["range"] = range }
            if download.received > 0, let etag = download.etag { headers["if-match"] = etag }
            let response = try await execute(.GET, url: url, headers: headers, body: nil, payloadSHA256: nil,
                                             timeout: options.transferTimeout)
            let status = Int(response.status.code)
            guard status == 200 || status == 206 else {
                let body = (try? await response.body.collect(upTo: 1 << 20)).map { Data($0.readableBytesView) } ?? Data()
                if status == 412 {
                    throw S3Failure(kind: .integrity, detail: "the object changed while it was being downloaded",
                                    retryable: false)
                }
                if status == 416, download.isRanged, download.received == 0 {
                    return   // the object exists and ends before the range starts: nothing to deliver
                }
                throw Self.httpFailure(status: status, reason: response.status.reasonPhrase, body: body,
                                       retryAfter: response.headers.first(name: "retry-after"))
            }
            try download.accept(status: status, headers: response.headers)
            do {
                for try await chunk in response.body {
                    do {
                        try chunk.withUnsafeReadableBytes { try consume($0) }
                    } catch {
                        throw S3PassThrough(error: error)
                    }
                    download.received += Int64(chunk.readableBytes)
                }
            } catch let error as S3PassThrough {
                throw error
            } catch {
                throw S3Failure.network("download interrupted after \(download.received) of \(download.expected!) bytes: \(Self.describe(error))")
            }
            guard download.received == download.expected! else {
                throw S3Failure.network("download cut short: \(download.received) of \(download.expected!) bytes")
            }
        }
    }

    /// Size, ETag, version and lock of an object (or of one version); nil when it does not exist.
    func headObject(fullKey: String, versionID: String? = nil) async throws -> S3ObjectHead? {
        let url = location.objectURL(key: fullKey, query: Self.versionQuery(versionID))
        return try await options.retry.run(operation: "HEAD", resource: resource(fullKey)) { _ in
            do {
                let response = try await send(.HEAD, url: url)
                guard let size = response.headers.first(name: "content-length").flatMap({ Int64($0) }) else {
                    throw S3Failure(kind: .badResponse, detail: "HEAD without Content-Length", retryable: false)
                }
                return S3ObjectHead(size: size, headers: response.headers)
            } catch let failure as S3Failure where failure.kind == .http(status: 404, code: nil)
                || failure.kind == .http(status: 404, code: "NoSuchKey") {
                return nil
            }
        }
    }

    /// Where a listing stands: the page to fetch next (for messages) and its token.
    struct ListCursor {
        var page: Int
        var token: String?
    }

    /// One ListObjectsV2 page.
    func listObjectsPage(fullPrefix: String, cursor: ListCursor) async throws -> S3XML.ListPage {
        var query = [URLQueryItem(name: "list-type", value: "2"), URLQueryItem(name: "encoding-type", value: "url")]
        if !fullPrefix.isEmpty { query.append(URLQueryItem(name: "prefix", value: fullPrefix)) }
        if let size = options.listPageSize { query.append(URLQueryItem(name: "max-keys", value: String(size))) }
        if let token = cursor.token { query.append(URLQueryItem(name: "continuation-token", value: token)) }
        let url = location.bucketURL(query: query)
        return try await options.retry.run(operation: "ListObjectsV2 (page \(cursor.page))",
                                           resource: bucketResource + "/" + fullPrefix) { _ in
            let response = try await send(.GET, url: url)
            guard let listing = S3XML.listPage(response.body, urlEncoded: true) else {
                throw S3Failure(kind: .badResponse, detail: "not a ListBucketResult", retryable: true)
            }
            if listing.isTruncated, listing.nextContinuationToken == nil {
                throw S3Failure(kind: .badResponse, detail: "truncated listing without a continuation token",
                                retryable: false)
            }
            return listing
        }
    }

    func deleteObject(fullKey: String, retry: S3RetryPolicy? = nil) async throws {
        let url = location.objectURL(key: fullKey)
        try await (retry ?? options.retry).run(operation: "DELETE", resource: resource(fullKey)) { _ in
            do {
                _ = try await send(.DELETE, url: url)
            } catch let failure as S3Failure where failure.kind == .http(status: 404, code: nil)
                || failure.kind == .http(status: 404, code: "NoSuchKey") {
                return
            }
        }
    }

    /// Checks the object's size (and a multipart object's composite ETag) after a commit, and
    /// that its lock took (see `confirmLock`).
    func verifySize(fullKey: String, expected: Int64, multipartETag: String?, lockedUntil: Date? = nil) async throws {
        guard let info = try await headObject(fullKey: fullKey) else {
            throw S3OperationError(operation: "HEAD", resource: resource(fullKey),
                                   failure: S3Failure(kind: .integrity, detail: "object missing right after it was stored",
                                                      retryable: false),
                                   attempts: 1, elapsed: 0, gaveUp: nil)
        }
        var problem: String?
        if info.size != expected {
            problem = "stored size \(info.size) bytes, expected \(expected)"
        } else if let multipartETag, let etag = info.etag.map(Self.unquoted), Self.isMultipartETag(etag),
                  etag.hasSuffix(multipartETag.drop(while: { $0 != "-" })), etag != multipartETag {
            // Only an ETag of S3's `md5hex-N` shape, for the same N, can be compared: servers
            // that derive multipart ETags another way are not second-guessed.
            problem = "stored ETag \(etag), expected \(multipartETag) from the parts sent"
        }
        if let problem {
            throw S3OperationError(operation: "HEAD", resource: resource(fullKey),
                                   failure: S3Failure(kind: .integrity, detail: problem, retryable: false),
                                   attempts: 1, elapsed: 0, gaveUp: nil)
        }
        if let lockedUntil { try await confirmLock(fullKey: fullKey, head: info, until: lockedUntil) }
    }

    // MARK: - Multipart

    func createMultipartUpload(fullKey: String, lockedUntil until: Date? = nil) async throws -> String {
        let url = location.objectURL(key: fullKey, query: [URLQueryItem(name: "uploads", value: nil)])
        return try await options.retry.run(operation: "CreateMultipartUpload", resource: resource(fullKey)) { _ in
            let response = try await send(.POST, url: url, headers: ["content-type": "application/octet-stream"]
                                            .merging(lockHeaders(until: until), uniquingKeysWith: { $1 }))
            guard let id = S3XML.uploadID(response.body) else {
                throw S3Failure(kind: .badResponse, detail: "no UploadId in the answer", retryable: true)
            }
            return id
        }
    }

    /// Uploads one part; returns its ETag (quoted, as S3 gave it).
    func uploadPart(fullKey: String, uploadID: String, number: Int, body: S3Body, md5: [UInt8]) async throws -> String {
        let url = location.objectURL(key: fullKey, query: [URLQueryItem(name: "partNumber", value: String(number)),
                                                           URLQueryItem(name: "uploadId", value: uploadID)])
        let sha = Self.sha256Hex(body)
        let headers = ["content-md5": Data(md5).base64EncodedString()]
        return try await options.retry.run(operation: "UploadPart \(number)", resource: resource(fullKey)) { _ in
            let response = try await send(.PUT, url: url, headers: headers, body: body, payloadSHA256: sha,
                                          timeout: options.transferTimeout)
            return try Self.checkETag(response.headers, md5: md5, what: "part \(number)")
        }
    }

    /// Completes an upload. A 200 answer may still carry an `<Error>` (S3 sends the status
    /// before it has finished): that is a failure, retried when its code is transient. A
    /// `NoSuchUpload` on a later attempt means an earlier one succeeded but its answer was
    /// lost; the caller's HEAD check settles it.
    func completeMultipartUpload(fullKey: String, uploadID: String, parts: [(number: Int, etag: String)]) async throws {
        let url = location.objectURL(key: fullKey, query: [URLQueryItem(name: "uploadId", value: uploadID)])
        var body = ByteBufferAllocator().buffer(capacity: 64 * parts.count + 128)
        body.writeString(S3XML.completeRequest(parts: parts))
        try await options.retry.run(operation: "CompleteMultipartUpload", resource: resource(fullKey)) { attempt in
            do {
                let response = try await send(.POST, url: url, headers: ["content-type": "application/xml"], body: .bytes(body))
                if let error = S3XML.error(response.body) {
                    throw S3Failure.http(status: response.status, code: error.code, message: error.message)
                }
                guard S3XML.completeResult(response.body) != nil else {
                    throw S3Failure(kind: .badResponse, detail: "not a CompleteMultipartUploadResult", retryable: true)
                }
            } catch let failure as S3Failure where attempt > 1 && failure.kind == .http(status: 404, code: "NoSuchUpload") {
                return
            }
        }
    }

    func abortMultipartUpload(fullKey: String, uploadID: String, retry: S3RetryPolicy? = nil) async throws {
        let url = location.objectURL(key: fullKey, query: [URLQueryItem(name: "uploadId", value: uploadID)])
        try await (retry ?? options.retry).run(operation: "AbortMultipartUpload", resource: resource(fullKey)) { _ in
            do {
                _ = try await send(.DELETE, url: url)
            } catch let failure as S3Failure where failure.kind == .http(status: 404, code: "NoSuchUpload") {
                return
            }
        }
    }

    func listMultipartUploads(fullPrefix: String) async throws -> [S3MultipartUpload] {
        var result: [S3MultipartUpload] = []
        var markers: (key: String, id: String?)?
        repeat {
            var query = [URLQueryItem(name: "uploads", value: nil)]
            if !fullPrefix.isEmpty { query.append(URLQueryItem(name: "prefix", value: fullPrefix)) }
            if let markers {
                query.append(URLQueryItem(name: "key-marker", value: markers.key))
                if let id = markers.id { query.append(URLQueryItem(name: "upload-id-marker", value: id)) }
            }
            let url = location.bucketURL(query: query)
            let page = try await options.retry.run(operation: "ListMultipartUploads", resource: bucketResource) { _ in
                let response = try await send(.GET, url: url)
                guard let page = S3XML.uploadsPage(response.body) else {
                    throw S3Failure(kind: .badResponse, detail: "not a ListMultipartUploadsResult", retryable: true)
                }
                return page
            }
            result += page.uploads
            if page.isTruncated, let key = page.nextKeyMarker {
                markers = (key, page.nextUploadIDMarker)
            } else {
                markers = nil
            }
        } while markers != nil
        return result
    }

    /// Creates the bucket (tests and first-time setup); an existing bucket of ours is fine.
    /// `objectLockEnabled`: with Object Lock (and so versioning) on, which only creation can do.
    func createBucket(objectLockEnabled: Bool = false) async throws {
        let url = location.bucketURL()
        var body: S3Body?
        if let xml = S3XML.createBucketRequest(region: location.region) {
            body = .bytes(ByteBufferAllocator().buffer(string: xml))
        }
        try await mapErrors {
            try await options.retry.run(operation: "CreateBucket", resource: bucketResource) { _ in
                do {
                    _ = try await send(.PUT, url: url, headers: objectLockEnabled ? ["x-amz-bucket-object-lock-enabled": "true"] : [:],
                                       body: body)
                } catch let failure as S3Failure where failure.kind == .http(status: 409, code: "BucketAlreadyOwnedByYou") {
                    return
                }
            }
        }
    }

    // MARK: - Digests

    static func sha256Hex(_ body: S3Body) -> String {
        var hasher = SHA256()
        body.withBytes { hasher.update(bufferPointer: $0) }
        return hasher.finalize().hex
    }

    static func md5(_ body: S3Body) -> [UInt8] {
        var hasher = Insecure.MD5()
        body.withBytes { hasher.update(bufferPointer: $0) }
        return Array(hasher.finalize())
    }

    static func unquoted(_ etag: String) -> String {
        var text = Substring(etag.trimmingCharacters(in: .whitespaces))
        if text.hasPrefix("W/") { text = text.dropFirst(2) }
        if text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 { text = text.dropFirst().dropLast() }
        return String(text).lowercased()
    }

    /// Checks an upload's ETag against the MD5 of what we sent. Objects encrypted with
    /// SSE-KMS or SSE-C have ETags that are not MD5s; S3 has already checked `Content-MD5`.
    @discardableResult
    static func checkETag(_ headers: HTTPHeaders, md5: [UInt8], what: String) throws -> String {
        guard let etag = headers.first(name: "etag") else {
            throw S3Failure(kind: .badResponse, detail: "no ETag for \(what)", retryable: false)
        }
        let encrypted = headers.first(name: "x-amz-server-side-encryption") == "aws:kms"
            || headers.first(name: "x-amz-server-side-encryption") == "aws:kms:dsse"
            || headers.contains(name: "x-amz-server-side-encryption-customer-algorithm")
        // A server whose ETags are not MD5s (not 32 hex digits) is not second-guessed either;
        // it has checked Content-MD5 itself.
        let plain = unquoted(etag)
        if !encrypted, isMD5Hex(plain), plain != md5.hex {
            throw S3Failure(kind: .integrity, detail: "ETag \(etag) of \(what) is not the MD5 \(md5.hex) of the bytes sent",
                            retryable: true)
        }
        return etag
    }

    static func isMD5Hex<S: StringProtocol>(_ text: S) -> Bool {
        text.utf8.count == 32 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    static func isMultipartETag(_ etag: String) -> Bool {
        let parts = etag.split(separator: "-", omittingEmptySubsequences: false)
        return parts.count == 2 && isMD5Hex(parts[0]) && Int(parts[1]) != nil
    }

    /// `hex(MD5(md5(part 1) ‖ … ‖ md5(part N)))-N`, the ETag S3 gives a multipart object.
    static func multipartETag(partMD5s: [[UInt8]]) -> String {
        var hasher = Insecure.MD5()
        for digest in partMD5s { digest.withUnsafeBytes { hasher.update(bufferPointer: $0) } }
        return Array(hasher.finalize()).hex + "-\(partMD5s.count)"
    }
}

// MARK: - Downloads

/// Where one GET stands: the bytes asked for, what the first answer promised, what arrived.
/// Resumptions ask for the rest of the promise, so a whole object and a range resume alike.
struct S3Download {
    /// The bytes asked for; nil for the whole object.
    let range: ByteRange?
    /// Bytes delivered to the consumer so far.
    var received: Int64 = 0
    /// Bytes the download delivers in all, set by the first answer.
    private(set) var expected: Int64?
    /// The object's size, set by the first answer.
    private(set) var size: Int64?
    private(set) var etag: String?

    init(range: ByteRange?) { self.range = range }

    var isRanged: Bool { range != nil }
    var start: Int64 { range?.lowerBound ?? 0 }
    var operation: String {
        guard let range else { return "GET" }
        return "GET bytes \(range.lowerBound)-" + (range.upperBound == .max ? "" : "\(range.upperBound - 1)")
    }

    /// The Range header of the next attempt: none for the first of a whole object, else from
    /// the first byte not yet delivered to the last one asked (or promised) for.
    var rangeHeader: String? {
        if received == 0, range == nil { return nil }
        let first = start + received
        if let expected { return "bytes=\(first)-\(start + expected - 1)" }
        guard let range, range.upperBound != .max else { return "bytes=\(first)-" }
        return "bytes=\(first)-\(range.upperBound - 1)"
    }

    /// Checks an answer's status and headers against what was asked; the first answer sets
    /// what the download promises.
    mutating func accept(status: Int, headers: HTTPHeaders) throws {
        if received == 0 && range == nil {
            guard status == 200, let length = headers.first(name: "content-length").flatMap({ Int64($0) }) else {
                throw S3Failure(kind: .badResponse, detail: "GET answered \(status) without a Content-Length", retryable: false)
            }
            (expected, size, etag) = (length, length, headers.first(name: "etag"))
            return
        }
        let contentRange = headers.first(name: "content-range") ?? ""
        guard status == 206, let answered = Self.parseContentRange(contentRange), answered.first == start + received,
              size == nil || answered.size == size, expected.map({ answered.last == start + $0 - 1 }) ?? true else {
            throw S3Failure(kind: .integrity, detail: "\(received == 0 ? "ranged" : "resumed") download answered \(status) \(contentRange)",
                            retryable: false)
        }
        if received == 0 {
            (expected, size, etag) = (answered.last - answered.first + 1, answered.size, headers.first(name: "etag"))
        }
    }

    /// `bytes first-last/size` of a 206 answer.
    static func parseContentRange(_ text: String) -> (first: Int64, last: Int64, size: Int64)? {
        guard text.hasPrefix("bytes ") else { return nil }
        let parts = text.dropFirst("bytes ".count).split(separator: "/")
        guard parts.count == 2, let size = Int64(parts[1]) else { return nil }
        let bounds = parts[0].split(separator: "-")
        guard bounds.count == 2, let first = Int64(bounds[0]), let last = Int64(bounds[1]), first <= last, last < size else {
            return nil
        }
        return (first, last, size)
    }
}

/// A multipart upload in progress, as ListMultipartUploads tells it (full key).
public struct S3MultipartUpload: Sendable, Equatable {
    public let key: String
    public let uploadID: String
    /// When S3 says the upload was created (S3's clock); nil when the server does not say.
    public let initiated: Date?
}

// MARK: - Request bodies

/// What a request sends: a small document, or a writer's part memory, which is handed to
/// the client in 256 KiB slices of the part's own storage, so a part is never duplicated.
enum S3Body: Sendable {
    case bytes(ByteBuffer)
    case part(S3PartBuffer)

    var count: Int {
        switch self {
        case .bytes(let buffer): return buffer.readableBytes
        case .part(let part): return part.count
        }
    }

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch self {
        case .bytes(let buffer): return try buffer.withUnsafeReadableBytes(body)
        case .part(let part): return try part.withBytes(body)
        }
    }

    /// A fresh body for one attempt.
    func requestBody() -> HTTPClientRequest.Body {
        switch self {
        case .bytes(let buffer):
            return .bytes(buffer)
        case .part(let part):
            return .stream(S3PartChunks(part: part, generation: part.generation, length: part.count),
                           length: .known(Int64(part.count)))
        }
    }
}

/// A part-sized block of memory, filled by a writer and read by the uploads of that part.
/// Refilling it (`reset`) starts a new generation: a reader left over from an abandoned
/// attempt on the old content stops instead of reading the new one. The writer fills it only
/// between uploads, and readers take their slices under the lock, so no byte is read while
/// written.
///
/// The memory is a `ByteBuffer`'s, so the slices an upload sends share it: copied into chunks
/// of their own, a part was in memory twice at the archiver's peak (AsyncHTTPClient pulls the
/// chunks of a body before the socket drains them; heaptrack: 5.24 MB of chunks beside the
/// 5.24 MB part). A slice still held when the part is refilled (an abandoned attempt's, in the
/// client's queue) keeps the old bytes: the refill then writes into fresh memory (copy on
/// write), never under it.
final class S3PartBuffer: @unchecked Sendable {
    let capacity: Int
    private var storage: ByteBuffer
    private let lock = NSLock()
    private var current = 0

    init(capacity: Int) {
        self.capacity = capacity
        storage = ByteBufferAllocator().buffer(capacity: capacity)
    }

    var count: Int { lock.lock(); defer { lock.unlock() }; return storage.readableBytes }
    var isFull: Bool { count == capacity }
    var generation: Int { lock.lock(); defer { lock.unlock() }; return current }

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        lock.lock()
        let bytes = storage
        lock.unlock()
        return try bytes.withUnsafeReadableBytes(body)
    }

    func reset() {
        lock.lock()
        current += 1
        storage.clear()
        lock.unlock()
    }

    /// Appends as much of `bytes` as fits; returns how many bytes were taken.
    func append(_ bytes: UnsafeRawBufferPointer) -> Int {
        lock.lock()
        defer { lock.unlock() }
        let n = min(capacity - storage.readableBytes, bytes.count)
        if n > 0 { storage.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[..<n])) }
        return n
    }

    /// `offset..<offset+length` of the part (sharing its memory) if the content is still `generation`.
    func slice(offset: Int, length: Int, generation: Int) -> ByteBuffer? {
        lock.lock()
        defer { lock.unlock() }
        guard generation == current else { return nil }
        return storage.getSlice(at: offset, length: length)
    }
}

/// The chunks of one part, for `HTTPClientRequest.Body.stream` (the client pulls them as it
/// writes; each is a slice of the part, not a copy).
struct S3PartChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    static let chunkSize = 256 << 10
    let part: S3PartBuffer
    let generation: Int
    let length: Int

    struct AsyncIterator: AsyncIteratorProtocol {
        let chunks: S3PartChunks
        var offset = 0

        mutating func next() async throws -> ByteBuffer? {
            guard offset < chunks.length else { return nil }
            let n = Swift.min(S3PartChunks.chunkSize, chunks.length - offset)
            guard let chunk = chunks.part.slice(offset: offset, length: n, generation: chunks.generation) else {
                throw S3PartRecycled()  // the part was refilled: this attempt is long over
            }
            offset += n
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(chunks: self) }
}

/// Ends the body of an abandoned attempt whose part buffer has been reused.
struct S3PartRecycled: Error, CustomStringConvertible {
    var description: String { "part buffer reused" }
}

extension AWSCredentialsError: CategorizedError {
    /// Missing or unreadable credentials are a configuration problem.
    public var category: ErrorCategory { .input }
}

extension S3LocationError: CategorizedError {
    public var category: ErrorCategory { .input }
}
