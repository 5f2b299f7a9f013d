import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where a target's objects live, whatever way its URL is spelled:
/// `file:///m/vault/`, `file:///m//vault`, `/m/./vault` and a symlink to it are
/// one folder; `S3://bos/g/?region=x&endpoint=e` and `s3://bos/g?endpoint=e&region=x`
/// are one bucket prefix. Policy targets are matched by location, never by
/// string, so no spelling of an encrypted target's URL stores in the clear.
public enum TargetLocation: Equatable, Sendable {
    /// An absolute folder, `.`/`..`/`//` resolved and symlinks of the part that exists followed.
    case folder(String)
    /// An S3 bucket prefix on one endpoint ("" for AWS); region and credentials do not move objects.
    case bucket(endpoint: String, bucket: String, prefix: String)

    public init(url: String) throws {
        if let scheme = url.range(of: "://"), url[..<scheme.lowerBound].lowercased() == "s3" {
            let s3 = try S3Location(parsing: url)
            self = .bucket(endpoint: s3.endpoint.map { $0.absoluteString.lowercased() } ?? "", bucket: s3.bucket, prefix: s3.prefix)
            return
        }
        var path = url
        if let scheme = url.range(of: "://"), url[..<scheme.lowerBound].lowercased() == "file" {
            path = String(url[scheme.upperBound...])
        }
        path = path.removingPercentEncoding ?? path
        guard path.hasPrefix("/") else { throw TargetError.badURL("file target needs an absolute path: \(url)") }
        self = .folder(Self.canonicalPath(path))
    }

    /// True when `other` is this location or inside it.
    public func contains(_ other: TargetLocation) -> Bool {
        switch (self, other) {
        case (.folder(let root), .folder(let path)):
            return path == root || root == "/" || path.hasPrefix(root + "/")
        case (.bucket(let endpoint, let bucket, let prefix), .bucket(let otherEndpoint, let otherBucket, let otherPrefix)):
            return endpoint == otherEndpoint && bucket == otherBucket
                && (prefix.isEmpty || otherPrefix == prefix || otherPrefix.hasPrefix(prefix + "/"))
        default:
            return false
        }
    }

    /// How deep the location is: of two policy targets holding a URL, the deeper one is meant.
    public var depth: Int {
        switch self {
        case .folder(let path): return path.split(separator: "/").count
        case .bucket(_, _, let prefix): return prefix.split(separator: "/").count
        }
    }

    /// Lexically normalised, then the longest part that exists resolved by `realpath`.
    static func canonicalPath(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") where part != "." {
            if part == ".." { _ = parts.popLast() } else { parts.append(part) }
        }
        var existing = parts.count
        while existing > 0 {
            let prefix = "/" + parts[..<existing].joined(separator: "/")
            if let resolved = realpath(prefix, nil) {
                defer { free(resolved) }
                let head = String(cString: resolved)
                let rest = parts[existing...].joined(separator: "/")
                return rest.isEmpty ? head : (head == "/" ? "/" : head + "/") + rest
            }
            existing -= 1
        }
        return "/" + parts.joined(separator: "/")
    }
}
