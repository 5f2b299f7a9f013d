import Foundation

/// Manifest format 2 (docs/DESIGN.md "Manifest v2"): one JSON file beside
/// each snapshot that says everything needed to rebuild its database image —
/// by hand if need be — and to rebuild the catalog row.
///
/// A full snapshot's blocks cover pages 1…page_count in order; an
/// incremental's cover only the pages that changed since `parent`. Restoring
/// takes each page from the newest snapshot of the chain that holds it.
public struct SnapshotManifestV2: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable { case full, incremental }

    /// One stored object of the snapshot: its size and SHA-256 are those of its
    /// gzip stream, before encryption (what `gunzip` reads once decrypted).
    public struct Object: Codable, Equatable, Sendable {
        public var key: String
        public var bytes: Int64
        public var sha256: String
    }

    /// One gzip member of an object: where it is, which pages it inflates
    /// to (in this order), and the SHA-256 of those page bytes.
    public struct Block: Codable, Equatable, Sendable {
        /// Index into `objects`.
        public var object: Int
        public var offset: Int64
        public var length: Int64
        /// A contiguous run (fulls): pages first_page…first_page+page_count-1.
        public var firstPage: Int?
        public var pageCount: Int?
        /// Runs of pages `[first, count]` (incrementals), in the order they are stored.
        public var pages: [[Int]]?
        public var rawSha256: String

        /// The page numbers this block inflates to, in order.
        public var pageNumbers: [Int] {
            if let firstPage, let pageCount { return Array(firstPage..<firstPage + pageCount) }
            return (pages ?? []).flatMap { run in run.count == 2 ? Array(run[0]..<run[0] + run[1]) : [] }
        }
    }

    public struct PageMapRef: Codable, Equatable, Sendable {
        public var key: String
        /// SHA-256 of the page map as encoded, before gzip (and encryption).
        public var sha256: String
    }

    /// The WAL commit the snapshot pinned (WAL-mode sources read in place).
    public struct WALPosition: Codable, Equatable, Sendable {
        public var salt1: UInt32
        public var salt2: UInt32
        public var mxFrame: UInt32
    }

    public var format = 2
    public var id: String
    public var name: String
    public var host: String
    public var database: String
    public var job: String
    public var kind: Kind
    public var parent: String?
    public var chainRoot: String
    public var parentManifestSha256: String?
    /// Why a job with `incremental:` took a full this time (the chain was full, a link
    /// failed verification, …; nil for jobs without `incremental:`).
    public var fullReason: String?
    public var takenAt: String
    public var startedAt: String
    public var finishedAt: String
    public var source: String
    public var toolVersion: String
    public var pageSize: Int
    public var pageCount: Int
    public var databaseBytes: Int64
    public var databaseSha256: String
    public var walPosition: WALPosition?
    public var compression = "gzip-blocks"
    public var level: Int
    public var blockSize: Int
    public var encrypted: Bool
    public var objects: [Object]
    public var blocks: [Block]
    public var pagemap: PageMapRef?
    public var tables: [String: Int64]
    public var damage: [String]?

    public func encoded() throws -> Data { try ManifestJSON.encode(self) }

    public static func decode(_ data: Data) throws -> SnapshotManifestV2 {
        guard case .v2(let manifest) = try ManifestDocument.decode(data) else {
            throw RepositoryError.unreadableManifest("a format 1 manifest, not format 2")
        }
        return manifest
    }

    /// The catalog row this manifest describes, on the target it was found on.
    public func record(target: String, targetURL: String, manifestKey: String, manifestSHA256: String?) -> SnapshotRecord? {
        guard let taken = ISO8601.parse(takenAt), let main = objects.first else { return nil }
        var record = SnapshotRecord(id: id, name: name, job: job, target: target, targetURL: targetURL, objectKey: main.key,
                                    manifestKey: manifestKey, takenAt: taken, source: source, bytes: databaseBytes,
                                    storedBytes: main.bytes, sha256: main.sha256, databaseSHA256: databaseSha256,
                                    pageSize: pageSize, blockSize: blockSize, level: level, encrypted: encrypted,
                                    tables: tables, manifestSHA256: manifestSHA256)
        record.layout = SnapshotLayout(format: 2, kind: kind, parentID: parent, chainRoot: chainRoot, host: host,
                                       database: database, pagemapKey: pagemap?.key)
        return record
    }
}

/// A manifest of either format, as read from a target.
public enum ManifestDocument: Sendable {
    case v1(SnapshotManifest)
    case v2(SnapshotManifestV2)

    private struct FormatOnly: Decodable { var format: Int? }

    public static func decode(_ data: Data) throws -> ManifestDocument {
        let decoder = ManifestJSON.decoder
        switch try decoder.decode(FormatOnly.self, from: data).format ?? 1 {
        case 1: return .v1(try decoder.decode(SnapshotManifest.self, from: data))
        case 2: return .v2(try decoder.decode(SnapshotManifestV2.self, from: data))
        case let other: throw RepositoryError.unreadableManifest("manifest format \(other) is newer than this bosbackup (\(BOSBackupVersion.string)) reads")
        }
    }

    public var id: String {
        switch self { case .v1(let m): return m.id; case .v2(let m): return m.id }
    }

    /// The host namespace it belongs to (nil: a v1 manifest, which has none).
    public var host: String? {
        switch self { case .v1: return nil; case .v2(let m): return m.host }
    }

    public func record(target: String, targetURL: String, manifestKey: String, manifestSHA256: String?) -> SnapshotRecord? {
        switch self {
        case .v1(let m): return m.record(target: target, targetURL: targetURL, manifestKey: manifestKey, manifestSHA256: manifestSHA256)
        case .v2(let m): return m.record(target: target, targetURL: targetURL, manifestKey: manifestKey, manifestSHA256: manifestSHA256)
        }
    }
}
