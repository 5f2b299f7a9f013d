import Foundation

/// Object Lock and versions, seen per snapshot: which of a snapshot's objects are still
/// locked, pushing a kept snapshot's locks out, and deleting every version of a pruned one.
/// The Repository knows which keys make a snapshot; the Target only locks and lists blobs.
extension Repository {
    /// A snapshot's object keys in deletion order: the manifest first (see `delete`).
    func objectKeys(of snapshot: SnapshotRecord) -> [String] {
        [snapshot.manifestKey] + (snapshot.layout.pagemapKey.map { [$0] } ?? []) + [snapshot.objectKey]
    }

    /// The versions (not delete markers) of exactly `key`, newest first.
    private func storedVersions(of key: String) async throws -> [ObjectVersion] {
        try await target.versions(prefix: key).filter { $0.key == key && !$0.isDeleteMarker }
    }

    /// When the last lock on any version of the snapshot's objects ends, if one is still on
    /// at `now` (nil: nothing of it is locked, or the target locks nothing).
    public func lockedUntil(_ snapshot: SnapshotRecord, now: Date) async throws -> Date? {
        try await lockedUntil(keys: objectKeys(of: snapshot), now: now)
    }

    public func lockedUntil(keys: [String], now: Date) async throws -> Date? {
        guard target.locksObjects else { return nil }
        var latest: Date?
        for key in keys {
            for version in try await storedVersions(of: key) {
                guard let lock = try await target.retention(key: key, versionID: version.versionID), lock.retainUntil > now else { continue }
                latest = max(latest ?? lock.retainUntil, lock.retainUntil)
            }
        }
        return latest
    }

    /// Pushes the lock of the newest version of each key out to `now + days` where less than
    /// `renewalSlack` of that is left: what retention keeps stays locked as long as it is kept
    /// (a delete marker an attacker put in front changes nothing). Returns how many it extended.
    public func extendLocks(keys: [String], now: Date) async throws -> Int {
        guard let lock = target.objectLock else { return 0 }
        let until = lock.retainUntil(from: now)
        var extended = 0
        for key in keys {
            guard let newest = try await storedVersions(of: key).first else { continue }
            let current = try await target.retention(key: key, versionID: newest.versionID)
            if let current, current.retainUntil >= until.addingTimeInterval(-lock.renewalSlack) { continue }
            try await target.extendRetention(key: key, versionID: newest.versionID, until: until)
            extended += 1
        }
        return extended
    }

    public func extendLocks(of snapshot: SnapshotRecord, now: Date) async throws -> Int {
        try await extendLocks(keys: objectKeys(of: snapshot), now: now)
    }

    /// Deletes an object for good: on a versioned target every version and delete marker of
    /// it (a plain DELETE there only hides the data behind a marker), else the object.
    public func deleteObject(key: String, versioned: Bool? = nil) async throws {
        let keepsVersions: Bool
        if let versioned { keepsVersions = versioned } else { keepsVersions = try await target.keepsVersions() }
        guard keepsVersions else { return try await target.delete(key: key) }
        for version in try await target.versions(prefix: key) where version.key == key {
            try await target.deleteVersion(key: key, versionID: version.versionID)
        }
    }
}
