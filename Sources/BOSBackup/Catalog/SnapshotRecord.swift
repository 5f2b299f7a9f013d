import Foundation

/// One snapshot as the catalog knows it.
public struct SnapshotRecord: Equatable, Sendable {
    public var id: String
    public var name: String
    public var job: String
    public var target: String
    public var targetURL: String
    public var objectKey: String
    public var manifestKey: String
    public var takenAt: Date
    public var source: String
    public var bytes: Int64
    public var storedBytes: Int64
    public var sha256: String
    public var databaseSHA256: String
    public var pageSize: Int
    public var blockSize: Int
    public var level: Int
    public var encrypted: Bool
    /// Per-table row counts taken from the snapshot itself, by table name.
    public var tables: [String: Int64]
    /// SHA-256 of the manifest file as written (nil for rows from before it was kept).
    public var manifestSHA256: String?
    /// Where its objects are and how they chain (v1 rows: one full object, v1 layout).
    public var layout: SnapshotLayout

    /// The policy database it is a snapshot of (v1 rows: the one database v1 had, `bos`).
    public var databaseName: String { layout.database ?? Policy.defaultDatabaseName }

    /// The id as tables and messages show it (commands take any unambiguous prefix).
    public var shortID: String { SnapshotID.short(id) }

    public init(id: String, name: String, job: String, target: String, targetURL: String,
                objectKey: String, manifestKey: String, takenAt: Date, source: String,
                bytes: Int64, storedBytes: Int64, sha256: String, databaseSHA256: String,
                pageSize: Int, blockSize: Int, level: Int, encrypted: Bool, tables: [String: Int64], manifestSHA256: String? = nil,
                layout: SnapshotLayout = .v1) {
        self.id = id; self.name = name; self.job = job; self.target = target; self.targetURL = targetURL
        self.objectKey = objectKey; self.manifestKey = manifestKey; self.takenAt = takenAt; self.source = source
        self.bytes = bytes; self.storedBytes = storedBytes; self.sha256 = sha256; self.databaseSHA256 = databaseSHA256
        self.pageSize = pageSize; self.blockSize = blockSize; self.level = level; self.encrypted = encrypted
        self.tables = tables
        self.manifestSHA256 = manifestSHA256
        self.layout = layout
    }
}

/// The outcome of verifying one snapshot, as recorded.
public struct VerificationRecord: Equatable, Sendable {
    public var snapshotID: String
    public var verifiedAt: Date
    public var ok: Bool
    public var checksumOK: Bool
    public var gzipOK: Bool
    public var integrityOK: Bool
    public var countsOK: Bool
    public var seconds: Double
    public var problems: [String]
}

/// One scheduled or manual job execution.
public struct RunRecord: Equatable, Sendable {
    public enum Status: String, Sendable { case running, success, failed, abandoned }
    public var id: Int64
    public var job: String
    public var scheduledFor: Date?
    public var startedAt: Date
    public var finishedAt: Date?
    public var status: Status
    public var error: String?
    public var snapshotID: String?
    public var seconds: Double?
    /// The process that ran it (nil for runs recorded before schema 5).
    public var process: ProcessIdentity? = nil
}

/// A snapshot marked `deleting` whose objects may still be on its target.
public struct PendingDeletion: Sendable {
    public var snapshot: SnapshotRecord
    /// Why the last attempt failed; nil when none failed (a crash interrupted it).
    public var lastError: String?
    public var lastFailedAt: Date?
    /// How many attempts failed so far.
    public var failures: Int

    public var id: String { snapshot.id }
    public var shortID: String { snapshot.shortID }
    public var target: String { snapshot.target }
}
