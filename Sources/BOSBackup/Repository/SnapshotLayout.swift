import Foundation

/// Where a cataloged snapshot's objects are and how they fit together:
/// v1 rows are one full object in the v1 layout; v2 rows name their host and
/// database namespace, their kind and, for an incremental, its parent.
public struct SnapshotLayout: Equatable, Sendable {
    public var format: Int
    public var kind: SnapshotManifestV2.Kind
    /// The snapshot an incremental's pages are relative to (nil for a full).
    public var parentID: String?
    /// The full a chain starts from (a full names itself; nil for v1 rows).
    public var chainRoot: String?
    public var host: String?
    public var database: String?
    /// The page map a later incremental compares with (nil: none was written).
    public var pagemapKey: String?

    public static let v1 = SnapshotLayout(format: 1, kind: .full, parentID: nil, chainRoot: nil, host: nil, database: nil, pagemapKey: nil)

    public var isIncremental: Bool { kind == .incremental }
}

/// The object keys of one snapshot in the v2 layout:
/// `<host>/<database>/snapshots/<YYYY>/<MM>/<name>.<ext>`, month in UTC.
public struct SnapshotKeys: Equatable, Sendable {
    public let folder: String
    public let name: String
    public let encrypted: Bool

    public var manifest: String { "\(folder)/\(name).manifest.json" }
    /// A full: the whole database, plain gzip (`gunzip` restores it).
    public var database: String { "\(folder)/\(name).db.gz" + (encrypted ? ".enc" : "") }
    /// An incremental: the changed pages.
    public var pages: String { "\(folder)/\(name).pages.gz" + (encrypted ? ".enc" : "") }
    /// Page hashes; encrypted like the rest on an encrypted target (the hashes
    /// of an encrypted database's pages would let anyone confirm a guessed page).
    public var pagemap: String { "\(folder)/\(name).pagemap.gz" + (encrypted ? ".enc" : "") }
}

/// The namespace of one database of one host on a target.
public struct RepositoryNamespace: Equatable, Sendable {
    public let host: String
    public let database: String

    public init(host: String, database: String) {
        self.host = host
        self.database = database
    }

    /// Everything a host writes, on any database.
    public static func hostPrefix(_ host: String) -> String { "\(host)/" }
    public var snapshotsPrefix: String { "\(host)/\(database)/snapshots/" }

    /// `<host>/<database>/wal/<generation>/<first-txid>-<last-txid>.wal.gz[.enc]`, txids as 16 digits so keys sort in txid order.
    public func segmentKey(generation: String, firstTxid: Int64, lastTxid: Int64, encrypted: Bool) -> String {
        "\(host)/\(database)/wal/\(generation)/" + String(format: "%016lld-%016lld", firstTxid, lastTxid) + ".wal.gz" + (encrypted ? ".enc" : "")
    }

    public func keys(name: String, takenAt: Date, encrypted: Bool) -> SnapshotKeys {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month], from: takenAt)
        return SnapshotKeys(folder: snapshotsPrefix + String(format: "%04d/%02d", parts.year!, parts.month!), name: name, encrypted: encrypted)
    }
}
