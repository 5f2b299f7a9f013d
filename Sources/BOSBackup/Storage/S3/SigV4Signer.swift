import Crypto
import Foundation

/// AWS Signature Version 4 (`AWS4-HMAC-SHA256`) request signing, in both of its forms:
/// the `Authorization` header and query-string authentication (presigned URLs).
///
/// References: "Authenticating Requests (AWS Signature Version 4)" in the Amazon S3 API
/// Reference, and the IAM user guide's "Create a signed AWS API request". The rules that
/// differ between S3 and every other service are called out where they apply:
///
/// * **Path encoding.** S3 URI-encodes each path segment exactly once and never normalises
///   the path (`a/./b` and `a//b` are distinct keys). Other services first remove dot
///   segments and empty segments, then URI-encode the path *as it appears on the wire*, which
///   is already percent-encoded — hence the "double encoding" (`%20` → `%2520`).
/// * **Payload hash header.** S3 requires `x-amz-content-sha256` on every header-signed
///   request (and signs it); other services do not get it added.
/// * **Presigned payload.** S3 presigned URLs sign the literal `UNSIGNED-PAYLOAD`; other
///   services sign the hash of an empty body.
public struct SigV4Signer: Sendable {
    public static let algorithm = "AWS4-HMAC-SHA256"
    /// Payload-hash placeholder for a body that is not hashed (S3 only, typically over TLS).
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    /// Hex SHA-256 of the empty string.
    public static let emptyPayloadSHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    /// S3 caps `X-Amz-Expires` at seven days.
    public static let maxPresignExpiry = 604_800

    /// Headers that proxies or HTTP clients may add, drop or rewrite in transit; signing them
    /// would make the signature fragile. Same list as botocore's `SIGNED_HEADERS_BLACKLIST`.
    static let unsignableHeaders: Set<String> = [
        "authorization", "connection", "expect", "keep-alive", "proxy-authenticate",
        "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "user-agent",
        "x-amzn-trace-id",
    ]

    public let credentials: AWSCredentials
    public let region: String
    public let service: String

    public init(credentials: AWSCredentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    private var isS3: Bool { service == "s3" }

    // MARK: - Public API

    /// Signs a request with the `Authorization` header.
    ///
    /// - Parameters:
    ///   - headers: the request's other headers; all of them are signed except hop-by-hop
    ///     ones (`user-agent`, `expect`, `transfer-encoding`, ...). `host` is derived from
    ///     `url` unless given here.
    ///   - payloadSHA256: lowercase hex SHA-256 of the body, or `UNSIGNED-PAYLOAD` (S3).
    /// - Returns: the headers to add to the request, keys in lowercase: `authorization`,
    ///   `host`, `x-amz-date`, `x-amz-content-sha256` (S3 only) and `x-amz-security-token`
    ///   (when the credentials carry a session token). The request must be sent with exactly
    ///   these values and with every header passed in `headers` unchanged.
    public func signedHeaders(
        method: String, url: URL, headers: [String: String], payloadSHA256: String, date: Date
    ) -> [String: String] {
        sign(method: method, target: RequestTarget(url: url), headers: headers,
             payloadSHA256: payloadSHA256, date: date).headersToAdd
    }

    /// Query-string authentication: returns `url` with the `X-Amz-*` parameters appended.
    /// Only the `host` header is signed, so the URL can be used by any HTTP client.
    /// The request's existing query parameters are kept (re-encoded in canonical form).
    ///
    /// - Parameter expires: validity in seconds, 1...604800.
    public func presignedURL(method: String, url: URL, expires: Int, date: Date) -> URL {
        precondition((1...Self.maxPresignExpiry).contains(expires),
                     "X-Amz-Expires must be within 1...\(Self.maxPresignExpiry) seconds")
        let target = RequestTarget(url: url)
        let stamp = Self.timestamps(date)
        let scope = credentialScope(dateStamp: stamp.date)

        // The URL's own parameters, minus any stale auth parameters from an earlier signing.
        var pairs = Self.encodedQueryPairs(target.rawQuery).filter { !Self.isQueryAuthParameter($0.name) }
        var auth: [(String, String)] = [
            ("X-Amz-Algorithm", Self.algorithm),
            ("X-Amz-Credential", "\(credentials.accessKeyID)/\(scope)"),
            ("X-Amz-Date", stamp.full),
            ("X-Amz-Expires", String(expires)),
            ("X-Amz-SignedHeaders", "host"),
        ]
        // The token is part of the signed query string (unlike SigV4 for some older
        // services, where it was appended after signing).
        if let token = credentials.sessionToken {
            auth.append(("X-Amz-Security-Token", token))
        }
        pairs += auth.map { (Self.uriEncode($0.0), Self.uriEncode($0.1)) }

        let canonical = canonicalRequest(
            method: method, canonicalURI: canonicalURI(rawPath: target.rawPath),
            canonicalQuery: Self.canonicalQueryString(pairs),
            canonicalHeaders: [("host", target.host)],
            payloadSHA256: isS3 ? Self.unsignedPayload : Self.emptyPayloadSHA256)
        let toSign = stringToSign(canonicalRequest: canonical, timestamp: stamp.full, scope: scope)
        let signature = self.signature(stringToSign: toSign, dateStamp: stamp.date)

        pairs.append(("X-Amz-Signature", signature))
        var components = URLComponents(url: url, resolvingAgainstBaseURL: false)!
        components.percentEncodedQuery = pairs.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
        return components.url!
    }

    // MARK: - Hex SHA-256 helpers

    public static func sha256Hex<D: DataProtocol>(_ data: D) -> String {
        hex(SHA256.hash(data: data))
    }

    public static func sha256Hex(_ string: String) -> String {
        sha256Hex(Array(string.utf8))
    }

    // MARK: - Header signing (internal so tests can check the intermediate strings)

    /// The parts of a request that go into the canonical request, in wire form.
    struct RequestTarget {
        /// Host header value: lowercase host, plus the port when it is not the scheme's default.
        var host: String
        /// Path exactly as sent on the wire (percent-encoded form); may be empty.
        var rawPath: String
        /// Query exactly as sent on the wire, without `?`; nil when absent.
        var rawQuery: String?

        init(host: String, rawPath: String, rawQuery: String?) {
            self.host = host
            self.rawPath = rawPath
            self.rawQuery = rawQuery
        }

        init(url: URL) {
            let components = URLComponents(url: url, resolvingAgainstBaseURL: false)
            var host = (components?.host ?? "").lowercased()
            if host.contains(":"), !host.hasPrefix("[") { host = "[\(host)]" }  // IPv6 literal
            let defaultPort = ["http": 80, "https": 443][components?.scheme?.lowercased() ?? ""]
            if let port = components?.port, port != defaultPort { host += ":\(port)" }
            self.init(host: host, rawPath: components?.percentEncodedPath ?? "",
                      rawQuery: components?.percentEncodedQuery)
        }
    }

    struct HeaderSignature {
        var canonicalRequest: String
        var stringToSign: String
        var signature: String
        var signedHeaders: String
        var authorization: String
        var headersToAdd: [String: String]
    }

    func sign(method: String, target: RequestTarget, headers: [String: String],
              payloadSHA256: String, date: Date) -> HeaderSignature {
        let stamp = Self.timestamps(date)
        let scope = credentialScope(dateStamp: stamp.date)

        // Headers the signer owns replace any caller-supplied value of the same name.
        var owned: [String: String] = ["x-amz-date": stamp.full]
        if isS3 { owned["x-amz-content-sha256"] = payloadSHA256 }
        if let token = credentials.sessionToken { owned["x-amz-security-token"] = token }

        // Lowercase names; names that differ only in case are merged comma-separated.
        var merged: [String: [String]] = [:]
        for name in headers.keys.sorted() {
            let lower = name.lowercased()
            guard !Self.unsignableHeaders.contains(lower), owned[lower] == nil else { continue }
            merged[lower, default: []].append(headers[name]!)
        }
        if merged["host"] == nil { merged["host"] = [target.host] }
        for (name, value) in owned { merged[name] = [value] }

        // Canonical headers are sorted by name, with values trimmed and runs of whitespace
        // collapsed to a single space ("Trimall").
        let canonicalHeaders = merged.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            .map { name in (name, merged[name]!.map(Self.trimAll).joined(separator: ",")) }
        let signedHeaders = canonicalHeaders.map(\.0).joined(separator: ";")

        let canonical = canonicalRequest(
            method: method, canonicalURI: canonicalURI(rawPath: target.rawPath),
            canonicalQuery: Self.canonicalQueryString(Self.encodedQueryPairs(target.rawQuery)),
            canonicalHeaders: canonicalHeaders, payloadSHA256: payloadSHA256)
        let toSign = stringToSign(canonicalRequest: canonical, timestamp: stamp.full, scope: scope)
        let signature = self.signature(stringToSign: toSign, dateStamp: stamp.date)
        let authorization = "\(Self.algorithm) Credential=\(credentials.accessKeyID)/\(scope), "
            + "SignedHeaders=\(signedHeaders), Signature=\(signature)"

        var toAdd = owned
        toAdd["host"] = merged["host"]!.joined(separator: ",")
        toAdd["authorization"] = authorization
        return HeaderSignature(canonicalRequest: canonical, stringToSign: toSign, signature: signature,
                               signedHeaders: signedHeaders, authorization: authorization,
                               headersToAdd: toAdd)
    }

    // MARK: - Canonical request pieces

    /// CanonicalRequest =
    ///   Method \n CanonicalURI \n CanonicalQueryString \n CanonicalHeaders \n \n SignedHeaders \n HashedPayload
    /// (each canonical header is `name:value\n`, hence the blank line after the block).
    func canonicalRequest(method: String, canonicalURI: String, canonicalQuery: String,
                          canonicalHeaders: [(String, String)], payloadSHA256: String) -> String {
        let headerBlock = canonicalHeaders.map { "\($0.0):\($0.1)\n" }.joined()
        let signed = canonicalHeaders.map(\.0).joined(separator: ";")
        return [method.uppercased(), canonicalURI, canonicalQuery, headerBlock, signed, payloadSHA256]
            .joined(separator: "\n")
    }

    /// Canonical URI from the wire-form path; see the type documentation for S3 vs others.
    func canonicalURI(rawPath: String) -> String {
        let path = rawPath.isEmpty ? "/" : rawPath
        if isS3 {
            // Decode each segment and encode it once with the SigV4 rules, so that a key sent
            // with, e.g., a literal `$` or `'` is signed as `%24`/`%27`. Splitting first keeps
            // an (unusual) encoded slash `%2F` inside its segment.
            return path.split(separator: "/", omittingEmptySubsequences: false)
                .map { Self.uriEncode(Self.percentDecoded(String($0))) }
                .joined(separator: "/")
        }
        return Self.uriEncode(Self.removeDotSegments(path), keepSlash: true)
    }

    /// RFC 3986 §5.2.4 dot-segment removal, plus removal of empty segments (`//`), which AWS
    /// services other than S3 also require. A trailing slash is kept.
    static func removeDotSegments(_ path: String) -> String {
        var output: [Substring] = []
        for segment in path.split(separator: "/", omittingEmptySubsequences: true) {
            if segment == "." { continue }
            if segment == ".." { _ = output.popLast(); continue }
            output.append(segment)
        }
        let trailing = path.hasSuffix("/") && !output.isEmpty ? "/" : ""
        return "/" + output.joined(separator: "/") + trailing
    }

    /// Splits a wire-form query into (encoded name, encoded value) pairs, re-encoding each
    /// side with the SigV4 rules after decoding it, so `a%2fb`, `a/b` and `a%2Fb` all
    /// canonicalise to `a%2Fb`. `+` is taken literally (RFC 3986), not as a space: callers
    /// must send spaces as `%20`. A parameter without `=` gets an empty value.
    static func encodedQueryPairs(_ rawQuery: String?) -> [(name: String, value: String)] {
        guard let rawQuery, !rawQuery.isEmpty else { return [] }
        return rawQuery.split(separator: "&", omittingEmptySubsequences: true).map { item in
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = percentDecoded(String(parts[0]))
            let value = parts.count > 1 ? percentDecoded(String(parts[1])) : ""
            return (uriEncode(name), uriEncode(value))
        }
    }

    /// Canonical query: `name=value` pairs sorted by encoded name, then encoded value
    /// (byte order), joined with `&`.
    static func canonicalQueryString(_ pairs: [(name: String, value: String)]) -> String {
        pairs.sorted { lhs, rhs in
            lhs.name == rhs.name
                ? Array(lhs.value.utf8).lexicographicallyPrecedes(Array(rhs.value.utf8))
                : Array(lhs.name.utf8).lexicographicallyPrecedes(Array(rhs.name.utf8))
        }
        .map { "\($0.name)=\($0.value)" }
        .joined(separator: "&")
    }

    static func isQueryAuthParameter(_ encodedName: String) -> Bool {
        ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
         "X-Amz-SignedHeaders", "X-Amz-Security-Token", "X-Amz-Signature"].contains(encodedName)
    }

    // MARK: - String to sign, signing key, signature

    func credentialScope(dateStamp: String) -> String {
        "\(dateStamp)/\(region)/\(service)/aws4_request"
    }

    func stringToSign(canonicalRequest: String, timestamp: String, scope: String) -> String {
        [Self.algorithm, timestamp, scope, Self.sha256Hex(canonicalRequest)].joined(separator: "\n")
    }

    /// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")
    func signingKey(dateStamp: String) -> SymmetricKey {
        var key = SymmetricKey(data: Array("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [dateStamp, region, service, "aws4_request"] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        return key
    }

    func signature(stringToSign: String, dateStamp: String) -> String {
        Self.hex(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8),
                                                  using: signingKey(dateStamp: dateStamp)))
    }

    // MARK: - Encoding helpers

    /// SigV4 URI encoding: every byte of the UTF-8 form except the RFC 3986 unreserved
    /// characters `A-Z a-z 0-9 - . _ ~` becomes `%XX` (uppercase hex). `/` is kept only when
    /// `keepSlash` is set (object key paths). Note this differs from `addingPercentEncoding`
    /// with `.urlQueryAllowed`, which leaves `+ = & /` etc. alone.
    public static func uriEncode(_ string: String, keepSlash: Bool = false) -> String {
        var out = [UInt8]()
        out.reserveCapacity(string.utf8.count)
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(byte)
            case UInt8(ascii: "/") where keepSlash:
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(upperHexDigits[Int(byte >> 4)])
                out.append(upperHexDigits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Percent-decodes; a string with a malformed escape or non-UTF-8 result is taken as is.
    static func percentDecoded(_ string: String) -> String {
        string.contains("%") ? (string.removingPercentEncoding ?? string) : string
    }

    /// Trimall: strip leading/trailing whitespace, collapse inner runs to one space.
    static func trimAll(_ value: String) -> String {
        value.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }

    private static let upperHexDigits = Array("0123456789ABCDEF".utf8)
    private static let lowerHexDigits = Array("0123456789abcdef".utf8)

    static func hex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var out = [UInt8]()
        for byte in bytes {
            out.append(lowerHexDigits[Int(byte >> 4)])
            out.append(lowerHexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `20130524T000000Z` and `20130524` in UTC; sub-second precision is dropped.
    static func timestamps(_ date: Date) -> (full: String, date: String) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let whole = Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down))
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: whole)
        func pad(_ value: Int?, _ width: Int) -> String {
            let digits = String(value ?? 0)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        let day = pad(c.year, 4) + pad(c.month, 2) + pad(c.day, 2)
        return (day + "T" + pad(c.hour, 2) + pad(c.minute, 2) + pad(c.second, 2) + "Z", day)
    }
}
