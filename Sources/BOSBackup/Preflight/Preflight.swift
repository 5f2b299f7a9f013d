import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One line of `bosbackup check`.
public struct PreflightCheck: Sendable {
    public var subject: String
    public var ok: Bool
    public var detail: String
}

/// Everything a policy needs, tried before the night it is needed: the
/// source readable (and in which journal mode), the catalog and scratch
/// folders usable and private, every target reachable and writable (a small
/// probe object written, read back and deleted), its key file private, and
/// room for the next snapshot on local disks.
public struct Preflight {
    public let policy: Policy
    public let catalogPath: String?
    public let scratch: String
    public let clock: Clock
    /// Opens a policy target (with its key, and the credentials of that access).
    public let open: (Policy.TargetConfig, CredentialRole) throws -> Target
    /// Where credentials come from (the environment of the command).
    public var environment: [String: String] = [:]

    public init(policy: Policy, catalogPath: String?, scratch: String, clock: Clock,
                open: @escaping (Policy.TargetConfig, CredentialRole) throws -> Target) {
        self.policy = policy
        self.catalogPath = catalogPath
        self.scratch = scratch
        self.clock = clock
        self.open = open
    }

    public func run() async -> [PreflightCheck] {
        var checks: [PreflightCheck] = []
        let sizes = lastSnapshotSizes()
        if policy.databases.isEmpty {
            checks.append(PreflightCheck(subject: "source", ok: false, detail: "the policy names no database to back up"))
        }
        checks += policy.databases.map(source)
        checks.append(folder("catalog folder", catalogPath.map { ($0 as NSString).deletingLastPathComponent }))
        checks.append(folder("scratch", scratch, needs: sizes.largestDatabase))
        for target in policy.targets {
            checks.append(await self.target(target, needs: sizes.stored[target.name] ?? 0))
            if let credentials = credentials(target) { checks.append(credentials) }
            checks += archiveLocks(on: target)
        }
        return checks
    }

    private func source(_ database: Policy.DatabaseConfig) -> PreflightCheck {
        let path = database.path
        do {
            let db = try ConsistentCopy.openSource(path)
            let mode = try db.scalar("PRAGMA journal_mode")?.string ?? "?"
            let size = DurableFile.fileSize(path) ?? 0
            let note = mode == "wal" ? "WAL: snapshots read it directly, no scratch copy" : "\(mode) journal: each snapshot is copied to scratch first"
            return PreflightCheck(subject: subject(database), ok: true, detail: "readable, \(Self.bytes(size)), \(note)")
        } catch {
            return PreflightCheck(subject: subject(database), ok: false, detail: "\(error)")
        }
    }

    /// "source PATH" as v1 said it; a policy of several databases names each.
    private func subject(_ database: Policy.DatabaseConfig) -> String {
        policy.databases.count > 1 ? "database \(database.name) \(database.path)" : "source \(database.path)"
    }

    /// A folder bosbackup writes into: private (or its parent, if it is still to be made), with room.
    private func folder(_ what: String, _ path: String?, needs: Int64 = 0) -> PreflightCheck {
        guard let path else { return PreflightCheck(subject: what, ok: false, detail: "not configured") }
        do {
            var existing = path
            while !DurableFile.exists(existing) && existing != "/" { existing = (existing as NSString).deletingLastPathComponent }
            if existing == path { try PrivateFolder.check(path) }
            guard access(existing, W_OK) == 0 else { throw FileError("write into", existing) }
            let free = Self.freeBytes(existing)
            if let free, free < needs {
                return PreflightCheck(subject: "\(what) \(path)", ok: false,
                                      detail: "\(Self.bytes(free)) free, the last snapshot needed \(Self.bytes(needs))")
            }
            let made = existing == path ? "" : " (will be created)"
            return PreflightCheck(subject: "\(what) \(path)", ok: true, detail: "private, writable\(made)" + (free.map { ", \(Self.bytes($0)) free" } ?? ""))
        } catch {
            return PreflightCheck(subject: "\(what) \(path)", ok: false, detail: "\(error)")
        }
    }

    private func target(_ config: Policy.TargetConfig, needs: Int64) async -> PreflightCheck {
        let subject = "target \(config.name)"
        let began = Date()
        do {
            let target = try open(config, .write)    // loads the key file: refused unless it is private
            try await target.checkAccess()
            let deleter = config.hasPruneCredentials ? try open(config, .prune) : nil
            guard try await Repository(target: target).probe(host: policy.host, at: clock.now(), deleter: deleter) else {
                return PreflightCheck(subject: subject, ok: false, detail: "the probe object read back differs")
            }
            var detail = "reachable, probe written, read back and deleted in \(String(format: "%.1f", Date().timeIntervalSince(began))) s"
            if config.encryptionKeyFile != nil { detail += "; key file private" }
            if let lock = config.objectLock { detail += "; object_lock \(lock.mode.rawValue) \(lock.days)d took on the probe" }
            if let free = target.freeBytes {
                if free < needs {
                    return PreflightCheck(subject: subject, ok: false, detail: "\(Self.bytes(free)) free, the last snapshot took \(Self.bytes(needs))")
                }
                detail += ", \(Self.bytes(free)) free"
            }
            return PreflightCheck(subject: subject, ok: true, detail: detail)
        } catch {
            return PreflightCheck(subject: subject, ok: false, detail: "\(error)")
        }
    }

    /// WAL segments are locked once, when written (one request per segment per day to extend
    /// them all would be far too many): the lock must outlast the archive kept there, else an
    /// attacker with the writer's key deletes the older segments once their lock ran out.
    private func archiveLocks(on target: Policy.TargetConfig) -> [PreflightCheck] {
        guard let lock = target.objectLock else { return [] }
        return policy.archives.filter { $0.targets.contains { $0.target == target.name } }.map { archive in
            let subject = "archive \(archive.database) on \(target.name)"
            let days = TimeInterval(lock.days) * 86_400
            guard let retain = archive.retain else {
                return PreflightCheck(subject: subject, ok: false, detail: "object_lock lasts \(lock.days)d but the archive is kept for ever (no retain): "
                                      + "segments older than \(lock.days)d are unlocked; set archive.\(archive.database).retain")
            }
            let needed = retain + archive.baseEvery
            guard days >= needed else {
                return PreflightCheck(subject: subject, ok: false, detail: "object_lock lasts \(lock.days)d, less than retain + base_every "
                                      + "(\(Duration.format(needed))): the older kept segments would be unlocked; raise object_lock.days")
            }
            return PreflightCheck(subject: subject, ok: true, detail: "segments locked \(lock.days)d, as long as the archive keeps them (retain + base_every \(Duration.format(needed)))")
        }
    }

    /// Which credentials each command opens an S3 target with (no secret: where they come from
    /// and the key id with its middle hidden); fails when one of them cannot be loaded.
    private func credentials(_ config: Policy.TargetConfig) -> PreflightCheck? {
        var lines: [String] = []
        var ok = true
        for role in CredentialRole.allCases {
            guard let source = TargetCredentials.describe(config, role: role, environment: environment) else { return nil }
            ok = ok && !source.contains("cannot be loaded")
            let commands = TargetCredentials.commands.filter { $0.roles.contains(role) }
                .map { $0.command + ($0.roles.count > 1 ? (role == .write ? " (backups)" : " (retention)") : "") }
            lines.append("\(commands.joined(separator: ", ")) → \(source)")
        }
        return PreflightCheck(subject: "credentials \(config.name)", ok: ok, detail: lines.joined(separator: "; "))
    }

    /// From the catalog, when there is one: the newest snapshot's size per target, and the
    /// largest database. A hint for the space checks only: no catalog yet means no estimate.
    private func lastSnapshotSizes() -> (stored: [String: Int64], largestDatabase: Int64) {
        guard let catalogPath, let catalog = try? Catalog(readingAt: catalogPath, clock: clock),
              let snapshots = try? catalog.snapshots() else { return ([:], 0) }
        var stored: [String: Int64] = [:]
        for s in snapshots.sorted(by: { $0.takenAt < $1.takenAt }) { stored[s.target] = s.storedBytes }
        return (stored, snapshots.map(\.bytes).max() ?? 0)
    }

    static func freeBytes(_ path: String) -> Int64? {
        var st = statvfs()
        guard statvfs(path, &st) == 0 else { return nil }
        return Int64(st.f_bavail) * Int64(st.f_frsize)
    }

    static func bytes(_ n: Int64) -> String { ByteCount.format(n) }
}
