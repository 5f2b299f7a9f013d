import Foundation

/// Manifests of both formats: snake_case keys, sorted and indented (diffable by hand).
enum ManifestJSON {
    static func encode<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(value)
    }

    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }
}

/// The JSON file stored beside each snapshot so a target describes itself
/// and a lost catalog can be rebuilt from it.
public struct SnapshotManifest: Codable, Equatable, Sendable {
    public struct Block: Codable, Equatable, Sendable {
        /// Offset of the gzip member in the stored (compressed) object.
        public var offset: Int64
        /// Length of the gzip member.
        public var length: Int64
    }

    public var format = 1
    public var id: String
    public var name: String
    public var job: String
    public var takenAt: String
    public var startedAt: String
    public var finishedAt: String
    public var source: String
    public var toolVersion: String
    public var objectKey: String
    public var databaseBytes: Int64
    public var databaseSha256: String
    public var pageSize: Int
    public var storedBytes: Int64
    public var sha256: String
    public var compression: String
    public var level: Int
    public var blockSize: Int
    public var blocks: [Block]
    public var encrypted: Bool
    public var tables: [String: Int64]
    /// What SQLite reported damaged while the snapshot was taken (nil: nothing).
    public var damage: [String]? = nil

    public func encoded() throws -> Data { try ManifestJSON.encode(self) }

    public static func decode(_ data: Data) throws -> SnapshotManifest {
        try ManifestJSON.decoder.decode(SnapshotManifest.self, from: data)
    }

    /// The catalog row this manifest describes, on the target it was found on.
    public func record(target: String, targetURL: String, manifestKey: String, manifestSHA256: String? = nil) -> SnapshotRecord? {
        guard let taken = ISO8601.parse(takenAt) else { return nil }
        return SnapshotRecord(id: id, name: name, job: job, target: target, targetURL: targetURL, objectKey: objectKey,
                              manifestKey: manifestKey, takenAt: taken, source: source, bytes: databaseBytes,
                              storedBytes: storedBytes, sha256: sha256, databaseSHA256: databaseSha256, pageSize: pageSize,
                              blockSize: blockSize, level: level, encrypted: encrypted, tables: tables,
                              manifestSHA256: manifestSHA256)
    }
}
