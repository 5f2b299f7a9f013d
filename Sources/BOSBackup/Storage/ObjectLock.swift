import Foundation

/// A write-once retention lock on stored objects (S3 Object Lock): until `retainUntil`, no
/// credential can delete or overwrite the locked version (COMPLIANCE), or only one allowed to
/// bypass governance can (GOVERNANCE). What ransomware holding the backup credentials cannot undo.
public struct ObjectLock: Equatable, Sendable {
    public enum Mode: String, Equatable, Sendable, CaseIterable {
        case compliance = "COMPLIANCE"
        case governance = "GOVERNANCE"
    }

    public var mode: Mode
    /// How long each object stays locked after it is written (or after its lock is extended).
    public var days: Int

    public init(mode: Mode, days: Int) {
        self.mode = mode
        self.days = days
    }

    public var duration: TimeInterval { TimeInterval(days) * 86_400 }

    /// The retain-until date of an object written, or extended, at `now`.
    public func retainUntil(from now: Date) -> Date {
        // Whole seconds: S3 sends dates back at second precision (some servers with fractions).
        Date(timeIntervalSince1970: (now.timeIntervalSince1970 + duration).rounded(.up))
    }

    /// A kept object's lock is pushed to `now + days` once less than this much of it is left,
    /// so a retention pass costs at most one PutObjectRetention per object per day.
    public var renewalSlack: TimeInterval { min(86_400, duration / 2) }
}

/// The lock on one stored object version.
public struct ObjectRetention: Equatable, Sendable {
    public var mode: ObjectLock.Mode
    public var retainUntil: Date
    public init(mode: ObjectLock.Mode, retainUntil: Date) {
        self.mode = mode
        self.retainUntil = retainUntil
    }
}

/// One version of an object on a versioned target (S3 ListObjectVersions): a stored version,
/// or a delete marker (what a DELETE without a version leaves: the data is still there).
public struct ObjectVersion: Equatable, Sendable {
    public var key: String
    public var versionID: String
    public var size: Int64
    public var lastModified: Date
    public var isDeleteMarker: Bool
    public var isLatest: Bool
    public init(key: String, versionID: String, size: Int64, lastModified: Date, isDeleteMarker: Bool, isLatest: Bool) {
        (self.key, self.versionID, self.size, self.lastModified, self.isDeleteMarker, self.isLatest)
            = (key, versionID, size, lastModified, isDeleteMarker, isLatest)
    }
}

/// Object Lock and versions, for targets that have them (S3). A folder has neither: its
/// defaults say so, and the operations that need them refuse.
extension Target {
    public var objectLock: ObjectLock? { nil }
    public var locksObjects: Bool { objectLock != nil }
    public func keepsVersions() async throws -> Bool { false }
    public func retention(key: String, versionID: String?) async throws -> ObjectRetention? { nil }
    public func extendRetention(key: String, versionID: String?, until: Date) async throws {
        throw TargetError.failed("\(displayURL) does not lock objects")
    }
    public func versions(prefix: String) async throws -> [ObjectVersion] { [] }
    public func deleteVersion(key: String, versionID: String) async throws {
        throw TargetError.failed("\(displayURL) does not keep object versions")
    }
}
