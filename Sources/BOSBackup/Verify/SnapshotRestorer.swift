import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum RestoreError: Error, CustomStringConvertible, CategorizedError, Sendable {
    case destinationExists(String)
    case destinationIsAFolder(String)
    case destinationInUse(String, users: [String])
    case verificationFailed(snapshot: String, problems: [String])

    public var description: String {
        switch self {
        case .destinationExists(let path):
            return "\(path) already exists; add --force to replace it (a safety copy is kept beside it)"
        case .destinationIsAFolder(let path):
            return "\(path) is a folder; give the path of the database file to restore to"
        case .destinationInUse(let path, let users):
            return "\(path) is in use (\(users.joined(separator: "; "))): stop the BOS first; nothing was changed (--force does not override this)"
        case .verificationFailed(let id, let problems):
            return "snapshot \(id) did not restore cleanly, nothing was replaced: \(problems.joined(separator: "; "))"
        }
    }
    public var category: ErrorCategory {
        switch self {
        case .destinationExists, .destinationIsAFolder, .destinationInUse: return .input
        case .verificationFailed: return .mismatch
        }
    }
}

/// The result of a real restore.
public struct RestoreOutcome: Sendable {
    public var path: String
    /// Where the database that was there before now is (nil if there was none).
    public var safetyCopy: String?
    public var bytes: Int64
    public var tables: [String: Int64]
    /// How the database's structure was checked.
    public var structure: StructureCheck
    /// What that check could not prove, and why (not damage).
    public var unchecked: [String] = []
}

/// The structural check a restore made (or why it needed none).
public enum StructureCheck: Sendable, Equatable {
    case quickCheck
    case integrityCheck
    /// The restored bytes are byte-for-byte (SHA-256) the ones an earlier
    /// verify restored and checked at this time: checking them again proves nothing new.
    case verified(at: Date)
    /// Not checked as a database: a scratch image the timeline reads with its own
    /// b-tree reader, which refuses a malformed page it reads (`BTreePage`).
    case pagesCheckedWhenRead
}

/// Restores a snapshot to a real path: fetched and checked beside the
/// destination first, and only then moved into place; an existing database is
/// copied aside before it is replaced, never silently overwritten.
public struct SnapshotRestorer {
    public let catalog: Catalog
    public let clock: Clock
    /// Where the temporary files written beside the destination are listed
    /// while they exist, so a sweep removes them if this process is killed.
    public var scratch: String?
    public var progress: ProgressHandler?

    public init(catalog: Catalog, clock: Clock) {
        self.catalog = catalog
        self.clock = clock
    }

    static let sidecars = ["-wal", "-journal", "-shm"]

    /// The restored file must be byte for byte the snapshot (raw SHA-256) and pass
    /// `quick_check`; `fullCheck` adds the index-content check (`verify`'s job,
    /// minutes on a large database when time matters most). A snapshot that an
    /// earlier verify passed skips the quick check unless `fullCheck`: the SHA-256
    /// match already makes the restored file the very bytes that verify checked.
    /// `rollForward`, when given, changes the fetched copy (checked byte for byte first)
    /// before it is checked and moved into place: a point-in-time restore applies the
    /// archived commits there. The restored file is then counted, not taken as the snapshot's.
    /// `asDatabase: false` is for a scratch image only the timeline reads, page by page,
    /// with a reader that refuses a malformed page: the bytes are still proven (the
    /// snapshot's SHA-256, each rolled page's), but no `quick_check` of a whole database
    /// it will never open and no counts (2–3 s of every timeline's start on a day's archive).
    public func restore(_ snapshot: SnapshotRecord, from target: Target, into path: String, force: Bool,
                        fullCheck: Bool = false, asDatabase: Bool = true,
                        rollForward: ((String) async throws -> Void)? = nil) async throws -> RestoreOutcome {
        var existing = stat()
        let exists = lstat(path, &existing) == 0
        if exists && (existing.st_mode & S_IFMT) == S_IFDIR { throw RestoreError.destinationIsAFolder(path) }
        if exists && !force { throw RestoreError.destinationExists(path) }
        try refuseIfInUse(path)
        let folder = (path as NSString).deletingLastPathComponent
        try DurableFile.makeDirectory(folder.isEmpty ? "." : folder)

        let inflight = try scratch.map { try InflightFiles(scratch: $0) }
        let temporary = DurableFile.temporaryName(for: path)
        try inflight?.register(temporary)
        defer { for suffix in [""] + Self.sidecars { unlink(temporary + suffix) } }
        let fetched = try await SnapshotFetcher(progress: progress, catalog: catalog).fetch(snapshot, from: target, into: temporary)
        var problems = fetched.problems
        var unchecked: [String] = []
        if let rollForward {
            guard problems.isEmpty, fetched.checksumOK, fetched.databaseMatches else {
                throw RestoreError.verificationFailed(snapshot: snapshot.id, problems: problems)
            }
            try await rollForward(temporary)
        }
        let verified = fullCheck || rollForward != nil ? nil : try catalog.lastVerification(of: snapshot.id).flatMap { $0.ok ? $0.verifiedAt : nil }
        let structure: StructureCheck = !asDatabase ? .pagesCheckedWhenRead
            : verified.map { .verified(at: $0) } ?? (fullCheck ? .integrityCheck : .quickCheck)
        // A rolled-forward copy is counted while it is checked: both only read it, each on its
        // own connection and core (the count is a tenth of the check on a day's archive).
        let counts = Locked<Result<[String: Int64], Error>?>(nil)
        let counting = DispatchGroup()
        if rollForward != nil && asDatabase {
            DispatchQueue.global().async(group: counting) {
                let counted = Result { try TableCounts.count(atPath: temporary) }
                counts.withValue { $0 = counted }
            }
        }
        if fetched.gzipOK && verified == nil && asDatabase {
            let integrity = IntegrityCheck.run(path: temporary, quick: !fullCheck, weights: snapshot.tables,
                                               progress: progress, phase: "checking snapshot \(snapshot.id)")
            problems += integrity.problems.map { "integrity: \($0)" }
            // Not damage: the bytes are the backup's (SHA-256); say what was not proven.
            unchecked = integrity.unchecked
        }
        counting.wait()
        guard problems.isEmpty, fetched.checksumOK, fetched.databaseMatches else {
            throw RestoreError.verificationFailed(snapshot: snapshot.id, problems: problems)
        }
        // Byte-identical to the snapshot, so its counts are the cataloged ones (rolled forward: counted).
        let tables = try counts.withValue { $0 }.map { try $0.get() } ?? (rollForward == nil ? snapshot.tables : [:])

        var safetyCopy: String?
        if exists {
            // The BOS must find its database as it left it: same owner, group and mode.
            if chown(temporary, existing.st_uid, existing.st_gid) != 0 { throw FileError("keep the owner of \(path) on", temporary) }
            if chmod(temporary, existing.st_mode & 0o7777) != 0 { throw FileError("keep the mode of \(path) on", temporary) }
            // Checked again: the BOS may have been started while we fetched.
            try refuseIfInUse(path)
            let aside = DurableFile.unusedPath(path + ".before-restore-" + ISO8601.compact(clock.now()))
            try copyAside(path, to: aside, inflight: inflight)
            safetyCopy = aside
        }
        try catalog.auditFirst(action: "restore", snapshotID: snapshot.id,
                               detail: "into \(path)" + (rollForward == nil ? "" : ", rolled forward by the archive")
                                   + (safetyCopy.map { "; previous database kept at \($0)" } ?? ""))
        // The old database's journal/WAL must not be replayed onto the restored file.
        for suffix in Self.sidecars { unlink(path + suffix) }
        try DurableFile.commit(temporary: temporary, to: path)
        return RestoreOutcome(path: path, safetyCopy: safetyCopy, bytes: fetched.databaseBytes, tables: tables,
                              structure: structure, unchecked: unchecked)
    }

    /// Copies the database and its journal/WAL files, durably, to `aside`.
    func copyAside(_ path: String, to aside: String, inflight: InflightFiles?) throws {
        for suffix in ["", "-wal", "-journal"] where DurableFile.exists(path + suffix) {
            try FileCopy.copy(path + suffix, to: aside + suffix, inflight: inflight)
        }
    }

    private func refuseIfInUse(_ path: String) throws {
        let users = DatabaseInUse.users(of: path)
        if !users.isEmpty { throw RestoreError.destinationInUse(path, users: users) }
    }
}

/// Streaming, durable file copy (mode 0600).
public enum FileCopy {
    public static func copy(_ source: String, to destination: String, inflight: InflightFiles? = nil) throws {
        let input = try FileHandleFD(readingFrom: source)
        let temporary = DurableFile.temporaryName(for: destination)
        try inflight?.register(temporary)
        do {
            let output = try FileHandleFD(creating: temporary, mode: 0o600)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let n = try input.read(into: buffer)
                if n == 0 { break }
                try output.write(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
            }
            try output.sync()
            try DurableFile.commit(temporary: temporary, to: destination)
        } catch {
            unlink(temporary)
            throw error
        }
    }
}
