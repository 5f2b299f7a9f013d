import Foundation

/// A parsed S3 backup target:
///
///     s3://bucket/some/prefix?region=us-east-1&endpoint=http://127.0.0.1:9000
///         &addressing=path|virtual&credentials_file=/path&profile=name
///
/// All query parameters are optional. Without `endpoint` the target is AWS S3
/// (`https://s3.<region>.amazonaws.com`, virtual-host addressing); with one it is an
/// S3-compatible server (MinIO, Ceph, Garage, ...) addressed path-style by default.
public struct S3Location: Sendable, Equatable, CustomStringConvertible {
    public enum Addressing: String, Sendable, CaseIterable {
        /// `https://endpoint/bucket/key`
        case path
        /// `https://bucket.endpoint/key`
        case virtual
    }

    public static let defaultRegion = "us-east-1"
    public static let queryParameters = ["region", "endpoint", "addressing", "credentials_file", "profile", "part_size", "retry_for", "as_of"]

    public let bucket: String
    /// Key prefix without leading or trailing `/`; empty for the bucket root.
    public let prefix: String
    public let region: String
    /// Custom endpoint (`scheme://host[:port][/base/path]`, no trailing slash); nil for AWS.
    public let endpoint: URL?
    public let addressing: Addressing
    public let credentialsFile: String?
    public let profile: String?
    /// Multipart part size asked for in the URL (`part_size=16MiB`), if any.
    public var partSize: Int?
    /// How long one request may keep retrying a throttling or failing server (`retry_for=2m`).
    public var retryFor: TimeInterval?
    /// `as_of=2026-12-01T22:00:00Z`: the bucket as it was then, read from object versions
    /// (each key's newest version at or before that time; a delete marker hides it). Read-only.
    public var asOf: Date?

    public init(bucket: String, prefix: String = "", region: String? = nil, endpoint: URL? = nil,
                addressing: Addressing? = nil, credentialsFile: String? = nil, profile: String? = nil) throws {
        try Self.validateBucket(bucket)
        let region = region ?? Self.defaultRegion
        guard !region.isEmpty, region.utf8.allSatisfy(Self.isRegionByte) else {
            throw S3LocationError("invalid region '\(region)': use letters, digits, '-', '_' or '.'")
        }
        let endpoint = try endpoint.map(Self.normalizedEndpoint)
        let resolved: Addressing
        if let addressing {
            resolved = addressing
        } else if endpoint != nil || bucket.contains(".") {
            // Custom servers rarely have wildcard DNS; and on AWS a dotted bucket name breaks
            // the `*.s3.<region>.amazonaws.com` TLS certificate, so path-style it is.
            resolved = .path
        } else {
            resolved = .virtual
        }
        if resolved == .virtual, let host = endpoint?.host, Self.isIPAddress(host) {
            throw S3LocationError("virtual-host addressing needs a DNS name, but endpoint host is the IP address \(host); use addressing=path")
        }
        if let credentialsFile, credentialsFile.isEmpty { throw S3LocationError("credentials_file is empty") }
        if let profile, profile.isEmpty { throw S3LocationError("profile is empty") }

        self.bucket = bucket
        self.prefix = try Self.normalizedPrefix(prefix)
        self.region = region
        self.endpoint = endpoint
        self.addressing = resolved
        self.credentialsFile = credentialsFile
        self.profile = profile
    }

    /// Parses `s3://bucket[/prefix][?param=value&...]`. Parameter values may be
    /// percent-encoded; unknown or repeated parameters are rejected.
    public init(parsing target: String) throws {
        let schemeEnd = target.range(of: "://")
        guard let schemeEnd, target[..<schemeEnd.lowerBound].lowercased() == "s3" else {
            throw S3LocationError("not an S3 target '\(target)': expected s3://bucket/prefix")
        }
        var rest = String(target[schemeEnd.upperBound...])
        if rest.contains("#") { throw S3LocationError("S3 target must not contain '#'") }

        var params: [String: String] = [:]
        if let q = rest.firstIndex(of: "?") {
            for item in rest[rest.index(after: q)...].split(separator: "&", omittingEmptySubsequences: true) {
                let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = Self.decode(String(parts[0]))
                let value = parts.count > 1 ? Self.decode(String(parts[1])) : ""
                guard Self.queryParameters.contains(name) else {
                    throw S3LocationError("unknown S3 target parameter '\(name)' (known: \(Self.queryParameters.joined(separator: ", ")))")
                }
                guard params[name] == nil else { throw S3LocationError("S3 target parameter '\(name)' given twice") }
                guard !value.isEmpty else { throw S3LocationError("S3 target parameter '\(name)' has no value") }
                params[name] = value
            }
            rest = String(rest[..<q])
        }

        let slash = rest.firstIndex(of: "/")
        let bucket = String(rest[..<(slash ?? rest.endIndex)])
        let prefix = slash.map { Self.decode(String(rest[rest.index(after: $0)...])) } ?? ""

        var endpoint: URL?
        if let raw = params["endpoint"] {
            guard let url = URL(string: raw) else { throw S3LocationError("invalid endpoint URL '\(raw)'") }
            endpoint = url
        }
        var addressing: Addressing?
        if let raw = params["addressing"] {
            guard let value = Addressing(rawValue: raw.lowercased()) else {
                throw S3LocationError("invalid addressing '\(raw)': use 'path' or 'virtual'")
            }
            addressing = value
        }
        try self.init(bucket: bucket, prefix: prefix, region: params["region"], endpoint: endpoint,
                      addressing: addressing, credentialsFile: params["credentials_file"],
                      profile: params["profile"])
        if let raw = params["part_size"] {
            guard let size = PolicyLoader.parseSize(raw), size >= S3Target.Options.minimumPartSize, size <= S3Target.Options.maximumPartSize else {
                throw S3LocationError("invalid part_size '\(raw)': use 5MiB to 5GiB, e.g. part_size=16MiB")
            }
            partSize = size
        }
        if let raw = params["retry_for"] {
            guard let seconds = Duration.parse(raw), seconds <= 86_400 else {
                throw S3LocationError("invalid retry_for '\(raw)': a duration such as 2m, 90s or 10m (at most 1d)")
            }
            retryFor = seconds
        }
        if let raw = params["as_of"] {
            guard let date = ISO8601.parse(raw) else {
                throw S3LocationError("invalid as_of '\(raw)': an ISO 8601 time such as 2026-12-01T22:00:00Z")
            }
            asOf = date
        }
    }

    public var description: String {
        var text = "s3://\(bucket)" + (prefix.isEmpty ? "" : "/\(prefix)")
        text += " (region \(region), \(endpoint?.absoluteString ?? "AWS"), \(addressing.rawValue)-style"
        if let profile { text += ", profile \(profile)" }
        if let credentialsFile { text += ", credentials \(credentialsFile)" }
        return text + ")"
    }

    // MARK: - Keys and request URLs

    /// The full object key for a repository-relative name (`prefix/name`).
    public func objectKey(_ name: String) -> String {
        prefix.isEmpty ? name : "\(prefix)/\(name)"
    }

    /// URL of an object (full key, prefix included), e.g. for GET/PUT/HEAD/DELETE or
    /// multipart calls (`uploadId`, `partNumber`). Key and query are encoded with the SigV4
    /// rules, so the URL can be passed as-is to `SigV4Signer`.
    public func objectURL(key: String, query: [URLQueryItem] = []) -> URL {
        url(path: "/" + Self.encodeKey(key), query: query)
    }

    /// URL of the bucket itself, e.g. for ListObjectsV2 (`list-type=2&prefix=...`).
    public func bucketURL(query: [URLQueryItem] = []) -> URL {
        url(path: addressing == .path ? "" : "/", query: query)
    }

    /// Scheme, host and port of requests, bucket excluded (for logs and connection pools).
    public var serviceHost: String {
        let base = endpoint ?? URL(string: "https://\(Self.awsHost(region: region))")!
        return base.host! + (base.port.map { ":\($0)" } ?? "")
    }

    private func url(path keyPath: String, query: [URLQueryItem]) -> URL {
        let base = endpoint ?? URL(string: "https://\(Self.awsHost(region: region))")!
        let components = URLComponents(url: base, resolvingAgainstBaseURL: false)!
        let scheme = components.scheme!.lowercased()
        var host = components.percentEncodedHost!
        if let port = components.port { host += ":\(port)" }
        let basePath = components.percentEncodedPath

        var text: String
        switch addressing {
        case .path:
            text = "\(scheme)://\(host)\(basePath)/\(bucket)\(keyPath)"
        case .virtual:
            text = "\(scheme)://\(bucket).\(host)\(basePath)\(keyPath)"
        }
        if !query.isEmpty { text += "?" + Self.encodeQuery(query) }
        return URL(string: text)!
    }

    /// `s3.<region>.amazonaws.com`, or `.amazonaws.com.cn` in the China partition.
    static func awsHost(region: String) -> String {
        "s3.\(region).amazonaws.com" + (region.hasPrefix("cn-") ? ".cn" : "")
    }

    /// Encodes an object key for the request path: each `/`-separated segment is
    /// URI-encoded with the SigV4 rules (only `A-Z a-z 0-9 - . _ ~` left as is) and the `/`
    /// are kept. This is the form S3 signs, so the wire path equals the canonical URI.
    public static func encodeKey(_ key: String) -> String {
        SigV4Signer.uriEncode(key, keepSlash: true)
    }

    /// Encodes query items strictly (`+` → `%2B`, space → `%20`, `/` → `%2F`, `=` → `%3D`),
    /// in the given order. An item with a nil value is sent as a bare name (`?uploads`).
    public static func encodeQuery(_ items: [URLQueryItem]) -> String {
        items.map { item in
            SigV4Signer.uriEncode(item.name) + (item.value.map { "=" + SigV4Signer.uriEncode($0) } ?? "")
        }.joined(separator: "&")
    }

    // MARK: - Validation

    /// Current AWS bucket naming rules: 3–63 characters of `a-z 0-9 . -`, starting and ending
    /// with a letter or digit, no `..`, not shaped like an IPv4 address.
    static func validateBucket(_ bucket: String) throws {
        guard !bucket.isEmpty else { throw S3LocationError("S3 target has no bucket: expected s3://bucket/prefix") }
        guard (3...63).contains(bucket.utf8.count) else {
            throw S3LocationError("invalid bucket name '\(bucket)': must be 3 to 63 characters")
        }
        let allowed = bucket.utf8.allSatisfy { isLowerAlnum($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
        guard allowed, isLowerAlnum(bucket.utf8.first!), isLowerAlnum(bucket.utf8.last!), !bucket.contains("..") else {
            throw S3LocationError("invalid bucket name '\(bucket)': use lowercase letters, digits, '.' and '-', starting and ending with a letter or digit")
        }
        guard !isIPAddress(bucket) else {
            throw S3LocationError("invalid bucket name '\(bucket)': must not look like an IP address")
        }
    }

    static func normalizedPrefix(_ prefix: String) throws -> String {
        var trimmed = Substring(prefix)
        while trimmed.hasPrefix("/") { trimmed = trimmed.dropFirst() }
        while trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        for segment in trimmed.split(separator: "/", omittingEmptySubsequences: false) where !trimmed.isEmpty {
            // Empty and dot segments are legal in S3 keys but are routinely collapsed by
            // proxies and HTTP libraries, which would break signatures and address other keys.
            guard !segment.isEmpty, segment != ".", segment != ".." else {
                throw S3LocationError("invalid prefix '\(prefix)': empty, '.' or '..' path segments are not allowed")
            }
        }
        return String(trimmed)
    }

    static func normalizedEndpoint(_ url: URL) throws -> URL {
        guard var components = URLComponents(url: url, resolvingAgainstBaseURL: false),
              let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = components.host, !host.isEmpty
        else {
            throw S3LocationError("invalid endpoint '\(url.absoluteString)': expected http(s)://host[:port]")
        }
        guard components.user == nil, components.password == nil, components.query == nil,
              components.fragment == nil
        else {
            throw S3LocationError("invalid endpoint '\(url.absoluteString)': must not contain credentials, a query or a fragment")
        }
        components.scheme = scheme
        var path = components.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        components.percentEncodedPath = path
        return components.url!
    }

    static func isIPAddress(_ host: String) -> Bool {
        if host.contains(":") { return true }  // IPv6 literal
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isASCII) && UInt8($0) != nil }
    }

    private static func isLowerAlnum(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    private static func isRegionByte(_ byte: UInt8) -> Bool {
        isLowerAlnum(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
    }

    private static func decode(_ text: String) -> String {
        text.removingPercentEncoding ?? text
    }
}

/// A one-line description of what is wrong with an S3 target.
public struct S3LocationError: Error, Equatable, CustomStringConvertible, LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}
