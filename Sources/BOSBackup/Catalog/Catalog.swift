import CSQLite
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum CatalogError: Error, CustomStringConvertible, Sendable {
    case newerSchema(path: String, found: Int, supported: Int)
    case unknownSnapshot(String)
    case ambiguousSnapshot(String, [String])
    case unreadable(path: String, why: String)
    case missing(path: String)
    case emptyReference
    case olderSchema(path: String, found: Int, supported: Int)

    public var description: String {
        switch self {
        case .newerSchema(let path, let found, let supported):
            return "catalog \(path) has schema version \(found), newer than this bosbackup understands (\(supported)); upgrade bosbackup"
        case .unknownSnapshot(let id): return "no snapshot \(id) in the catalog"
        case .ambiguousSnapshot(let id, let matches): return "snapshot id \(id) is ambiguous: \(matches.joined(separator: ", "))"
        case .unreadable(let path, let why): return "catalog \(path) cannot be used: \(why)"
        case .missing(let path): return "no catalog at \(path) (check --catalog or the policy's catalog:; a backup creates it)"
        case .emptyReference: return "an empty snapshot id matches nothing: give an id, a unique id prefix or a name"
        case .olderSchema(let path, let found, let supported):
            return "catalog \(path) has schema version \(found), older than this bosbackup's \(supported); a user who may write it upgrades it by running any command (run, backup)"
        }
    }
}

/// The catalog: an SQLite database (WAL, mode 0600) recording every snapshot,
/// its per-table counts, every run, verification, and an audit trail.
public final class Catalog {
    public let path: String
    let db: Database
    let clock: Clock
    let actor: String

    /// Opens (creating and migrating as needed) the catalog at `path`.
    public init(path: String, clock: Clock = SystemClock(), actor: String = Catalog.defaultActor()) throws {
        self.path = path
        self.clock = clock
        self.actor = actor
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty { try PrivateFolder.prepare(folder) }
        if !DurableFile.exists(path) {
            // Create the file ourselves so it is 0600 from the first byte, whatever the umask.
            // Another process creating it at the same moment is fine.
            do { _ = try FileHandleFD(creating: path, mode: 0o600) } catch let error as FileError where error.errno == EEXIST {}
        }
        do {
            db = try Database(path: path, mode: .readWrite)
            try Self.enableWAL(db)
            try db.execute("PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL")
            try migrate()
        } catch let error as SQLiteError where error.isCorruptOrNotADatabase {
            throw CatalogError.unreadable(path: path, why: "\(error.message) (run `bosbackup catalog rebuild` to recover it from the targets)")
        }
        // The sidecars as private as the catalog (0600; 0640 where roles share it with auditors).
        var st = stat()
        let mode: mode_t = stat(path, &st) == 0 ? (st.st_mode & 0o640) | 0o600 : 0o600
        for suffix in ["-wal", "-shm"] { chmod(path + suffix, mode) }
    }

    /// Opens an existing catalog to read only: never creates a file or a
    /// folder (a typo in --catalog is an error, not an empty catalog), never
    /// migrates, and needs only read access (an auditor's `snapshots`).
    public init(readingAt path: String, clock: Clock = SystemClock(), actor: String = Catalog.defaultActor()) throws {
        self.path = path
        self.clock = clock
        self.actor = actor
        guard DurableFile.exists(path) else { throw CatalogError.missing(path: path) }
        do {
            db = try Self.openReadOnly(path)
            let found = Int(try db.int("PRAGMA user_version"))
            if found > CatalogSchema.currentVersion {
                throw CatalogError.newerSchema(path: path, found: found, supported: CatalogSchema.currentVersion)
            }
            if found < CatalogSchema.currentVersion {
                throw CatalogError.olderSchema(path: path, found: found, supported: CatalogSchema.currentVersion)
            }
        } catch let error as SQLiteError {
            throw CatalogError.unreadable(path: path, why: error.isCorruptOrNotADatabase
                ? "\(error.message) (run `bosbackup catalog rebuild` to recover it from the targets)" : error.message)
        }
    }

    /// A reader of a WAL database normally writes its -shm file. One who may
    /// only read the catalog (an auditor) and finds no writer's WAL left opens
    /// it immutable: with no WAL there is nothing newer than the file to miss.
    static func openReadOnly(_ path: String) throws -> Database {
        let db = try Database(path: path, mode: .readOnly)
        do {
            _ = try db.int("PRAGMA user_version")
            return db
        } catch let error as SQLiteError where (error.primaryCode == SQLITE_READONLY || error.primaryCode == SQLITE_CANTOPEN)
                                                && (DurableFile.fileSize(path + "-wal") ?? 0) == 0 {
            return try Database.immutable(path)
        }
    }

    /// Switching a new file to WAL needs a moment of exclusive access, for
    /// which SQLite does not call the busy handler: two processes opening a
    /// new catalog together retry here (bounded) instead of failing.
    static func enableWAL(_ db: Database) throws {
        var attempt = 0
        while true {
            do {
                if try db.scalar("PRAGMA journal_mode")?.string == "wal" { return }
                try db.execute("PRAGMA journal_mode=WAL")
                return
            } catch let error as SQLiteError where error.isBusyOrLocked && attempt < 250 {
                attempt += 1
                usleep(20_000)
            }
        }
    }

    public static func defaultActor(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let user = environment["SUDO_USER"] ?? environment["USER"] ?? String(getuid())
        return "\(user)@\(ProcessInfo.processInfo.hostName)"
    }

    /// Brings the schema up to date. The version is read again inside the
    /// write transaction, so two processes opening a new catalog together
    /// never both run a migration.
    private func migrate() throws {
        let supported = CatalogSchema.currentVersion
        func version() throws -> Int {
            let found = Int(try db.int("PRAGMA user_version"))
            if found > supported { throw CatalogError.newerSchema(path: path, found: found, supported: supported) }
            return found
        }
        guard try version() < supported else { return }
        try db.transaction("IMMEDIATE") {
            for index in try version()..<supported {
                try db.execute(CatalogSchema.migrations[index])
                try db.execute("PRAGMA user_version = \(index + 1)")
            }
            try AuditChain.chainUnchained(db)
        }
    }

    public var schemaVersion: Int { Int((try? db.int("PRAGMA user_version")) ?? 0) }

    // MARK: snapshots

    public func insert(_ s: SnapshotRecord) throws {
        try db.transaction {
            try db.run("""
                INSERT INTO snapshots (id, name, job, target, target_url, object_key, manifest_key, taken_at, source,
                  bytes, stored_bytes, sha256, database_sha256, page_size, block_size, level, encrypted, cataloged_at, manifest_sha256,
                  format, kind, parent_id, chain_root, host, database_name, pagemap_key)
                VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
                """, .text(s.id), .text(s.name), .text(s.job), .text(s.target), .text(s.targetURL), .text(s.objectKey),
                     .text(s.manifestKey), .real(s.takenAt.timeIntervalSince1970), .text(s.source), .integer(s.bytes),
                     .integer(s.storedBytes), .text(s.sha256), .text(s.databaseSHA256), .integer(Int64(s.pageSize)),
                     .integer(Int64(s.blockSize)), .integer(Int64(s.level)), SQLValue(s.encrypted),
                     .real(clock.now().timeIntervalSince1970), SQLValue(s.manifestSHA256),
                     .integer(Int64(s.layout.format)), .text(s.layout.kind.rawValue), SQLValue(s.layout.parentID),
                     SQLValue(s.layout.chainRoot), SQLValue(s.layout.host), SQLValue(s.layout.database), SQLValue(s.layout.pagemapKey))
            let insertTable = try db.prepare("INSERT INTO snapshot_tables (snapshot_id, table_name, row_count) VALUES (?,?,?)")
            for (table, count) in s.tables { try insertTable.execute([.text(s.id), .text(table), .integer(count)]) }
        }
    }

    private static let snapshotColumns = """
        id, name, job, target, target_url, object_key, manifest_key, taken_at, source, bytes, stored_bytes,
        sha256, database_sha256, page_size, block_size, level, encrypted, manifest_sha256,
        format, kind, parent_id, chain_root, host, database_name, pagemap_key
        """

    private func loadSnapshots(where clause: String, _ arguments: [SQLValue], suffix: String = "",
                               state: String = "complete") throws -> [SnapshotRecord] {
        let statement = try db.prepare("SELECT \(Self.snapshotColumns) FROM snapshots WHERE state = '\(state)' AND \(clause) \(suffix)")
        try statement.bind(arguments)
        var records: [SnapshotRecord] = []
        while try statement.step() {
            records.append(SnapshotRecord(
                id: statement.string(at: 0)!, name: statement.string(at: 1)!, job: statement.string(at: 2)!,
                target: statement.string(at: 3)!, targetURL: statement.string(at: 4)!, objectKey: statement.string(at: 5)!,
                manifestKey: statement.string(at: 6)!,
                takenAt: Date(timeIntervalSince1970: statement.value(at: 7).double ?? 0), source: statement.string(at: 8)!,
                bytes: statement.int(at: 9), storedBytes: statement.int(at: 10), sha256: statement.string(at: 11)!,
                databaseSHA256: statement.string(at: 12)!, pageSize: Int(statement.int(at: 13)),
                blockSize: Int(statement.int(at: 14)), level: Int(statement.int(at: 15)), encrypted: statement.int(at: 16) != 0,
                tables: [:], manifestSHA256: statement.string(at: 17),
                layout: SnapshotLayout(format: Int(statement.int(at: 18)),
                                       kind: SnapshotManifestV2.Kind(rawValue: statement.string(at: 19) ?? "") ?? .full,
                                       parentID: statement.string(at: 20), chainRoot: statement.string(at: 21),
                                       host: statement.string(at: 22), database: statement.string(at: 23),
                                       pagemapKey: statement.string(at: 24))))
        }
        let tables = try db.prepare("SELECT table_name, row_count FROM snapshot_tables WHERE snapshot_id = ?")
        for index in records.indices {
            tables.reset()
            try tables.bind([.text(records[index].id)])
            while try tables.step() { records[index].tables[tables.string(at: 0)!] = tables.int(at: 1) }
        }
        return records
    }

    /// Snapshots oldest first, optionally of one job only; two taken in the same second
    /// (`taken_at` is kept to the second) in the order they were cataloged.
    public func snapshots(job: String? = nil) throws -> [SnapshotRecord] {
        if let job { return try loadSnapshots(where: "job = ?", [.text(job)], suffix: "ORDER BY taken_at, rowid") }
        return try loadSnapshots(where: "1", [], suffix: "ORDER BY taken_at, rowid")
    }

    /// A job's snapshots in the order they were cataloged (rowid), oldest first. This,
    /// not `taken_at`, says which is newest when the clock stepped back or jumped ahead.
    public func snapshotsInCatalogOrder(job: String) throws -> [SnapshotRecord] {
        try loadSnapshots(where: "job = ?", [.text(job)], suffix: "ORDER BY rowid")
    }

    /// The `count` newest snapshots, newest first (of one database, when given).
    public func latest(_ count: Int, job: String? = nil, database: String? = nil) throws -> [SnapshotRecord] {
        Array(try snapshots(job: job).reversed().filter { database == nil || $0.databaseName == database }.prefix(count))
    }

    /// Finds a snapshot by id, name or unique id prefix.
    public func snapshot(_ reference: String) throws -> SnapshotRecord {
        guard !reference.isEmpty else { throw CatalogError.emptyReference }
        if let exact = try loadSnapshots(where: "id = ? OR name = ?", [.text(reference), .text(reference)]).first {
            return exact
        }
        let matches = try loadSnapshots(where: "id LIKE ? ESCAPE '\\'", [.text(Self.likePrefix(reference))])
        if matches.count == 1 { return matches[0] }
        if matches.count > 1 { throw CatalogError.ambiguousSnapshot(reference, matches.map(\.id)) }
        throw CatalogError.unknownSnapshot(reference)
    }

    static func likePrefix(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_") + "%"
    }

    /// A complete snapshot by exact id (chain links name their parent so).
    public func snapshot(id: String) throws -> SnapshotRecord? {
        try loadSnapshots(where: "id = ?", [.text(id)]).first
    }

    /// The links of `snapshot`'s chain, newest (itself) first, down to its full.
    /// A link that is not (or no longer) cataloged ends the list early: the
    /// caller sees the last one is no full and names the missing parent.
    public func chain(of snapshot: SnapshotRecord) throws -> [SnapshotRecord] {
        var links = [snapshot]
        var seen: Set<String> = [snapshot.id]
        while let parent = links.last!.layout.parentID, !seen.contains(parent), let record = try self.snapshot(id: parent) {
            links.append(record)
            seen.insert(parent)
        }
        return links
    }

    /// True when a snapshot (in any state) has this name: names are unique in a catalog.
    public func containsSnapshot(name: String) throws -> Bool {
        try db.int("SELECT count(*) FROM snapshots WHERE name = ?", .text(name)) > 0
    }

    public func containsSnapshot(id: String) throws -> Bool {
        try db.int("SELECT count(*) FROM snapshots WHERE id = ?", .text(id)) > 0
    }

    // MARK: deletion (crash-safe: mark, delete the objects, then confirm)

    /// Marks a snapshot for deletion, with its audit row in the same transaction:
    /// nothing is deleted that the trail does not show first.
    public func markDeleting(_ id: String, reason: String) throws {
        try db.transaction {
            try auditFirst(action: "prune", snapshotID: id, detail: "deleting: \(reason)")
            try db.run("UPDATE snapshots SET state = 'deleting' WHERE id = ?", .text(id))
        }
    }

    /// Snapshots whose deletion was started but not confirmed (a crash in between, or a
    /// target that refused or could not be reached), in catalog order.
    public func pendingDeletions() throws -> [PendingDeletion] {
        let failures = Dictionary(uniqueKeysWithValues: try db.rows(
            "SELECT id, delete_error, delete_failed_at, delete_failures FROM snapshots WHERE state = 'deleting'").map {
            ($0[0].string!, (error: $0[1].string, at: $0[2].double.map(Date.init(timeIntervalSince1970:)), count: Int($0[3].int ?? 0)))
        })
        return try loadSnapshots(where: "1", [], suffix: "ORDER BY rowid", state: "deleting").map { snapshot in
            let failure = failures[snapshot.id]
            return PendingDeletion(snapshot: snapshot, lastError: failure?.error, lastFailedAt: failure?.at, failures: failure?.count ?? 0)
        }
    }

    /// An attempt to delete a marked snapshot failed; it stays marked, with why.
    public func recordDeletionFailure(_ id: String, error: String) throws {
        try db.run("UPDATE snapshots SET delete_error = ?, delete_failed_at = ?, delete_failures = delete_failures + 1 WHERE id = ? AND state = 'deleting'",
                   .text(error), .real(clock.now().timeIntervalSince1970), .text(id))
    }

    public func confirmDeleted(_ id: String, reason: String) throws {
        try db.transaction {
            try db.run("DELETE FROM snapshots WHERE id = ?", .text(id))
            try addAudit(action: "delete", snapshotID: id, detail: reason)
        }
    }

    // MARK: verifications

    public func record(_ v: VerificationRecord) throws {
        let problems = String(data: try JSONSerialization.data(withJSONObject: v.problems), encoding: .utf8) ?? "[]"
        try db.run("""
            INSERT INTO verifications (snapshot_id, verified_at, ok, checksum_ok, gzip_ok, integrity_ok, counts_ok, seconds, problems)
            VALUES (?,?,?,?,?,?,?,?,?)
            """, .text(v.snapshotID), .real(v.verifiedAt.timeIntervalSince1970), SQLValue(v.ok), SQLValue(v.checksumOK),
                 SQLValue(v.gzipOK), SQLValue(v.integrityOK), SQLValue(v.countsOK), .real(v.seconds), .text(problems))
    }

    /// The most recent verification of each snapshot (or nil if never verified).
    public func lastVerification(of snapshotID: String) throws -> VerificationRecord? {
        let rows = try db.rows("""
            SELECT verified_at, ok, checksum_ok, gzip_ok, integrity_ok, counts_ok, seconds, problems FROM verifications
            WHERE snapshot_id = ? ORDER BY verified_at DESC, id DESC LIMIT 1
            """, .text(snapshotID))
        guard let r = rows.first else { return nil }
        let problems = (try? JSONSerialization.jsonObject(with: Data((r[7].string ?? "[]").utf8))) as? [String] ?? []
        return VerificationRecord(snapshotID: snapshotID, verifiedAt: Date(timeIntervalSince1970: r[0].double ?? 0),
                                  ok: r[1].int == 1, checksumOK: r[2].int == 1, gzipOK: r[3].int == 1,
                                  integrityOK: r[4].int == 1, countsOK: r[5].int == 1, seconds: r[6].double ?? 0,
                                  problems: problems)
    }

    // MARK: runs

    /// Records a run as started. Times come from the caller's clock, so a
    /// `--now` simulation records simulated times.
    /// The row names this process, so `status` can tell the run in progress from one a
    /// killed process left 'running'.
    public func startRun(job: String, scheduledFor: Date?, at startedAt: Date,
                         process: ProcessIdentity = .current) throws -> Int64 {
        try db.run("INSERT INTO runs (job, scheduled_for, started_at, status, pid, process_start) VALUES (?,?,?,'running',?,?)",
                   .text(job), SQLValue(scheduledFor?.timeIntervalSince1970), .real(startedAt.timeIntervalSince1970),
                   .integer(Int64(process.pid)), SQLValue(process.startTicks.map { Int64(bitPattern: $0) }))
        return db.lastInsertRowID
    }

    public func finishRun(_ id: Int64, status: RunRecord.Status, error: String?, snapshotID: String?, seconds: Double, at finishedAt: Date) throws {
        try db.run("UPDATE runs SET finished_at = ?, status = ?, error = ?, snapshot_id = ?, seconds = ? WHERE id = ?",
                   .real(finishedAt.timeIntervalSince1970), .text(status.rawValue), SQLValue(error), SQLValue(snapshotID),
                   .real(seconds), .integer(id))
    }

    /// Runs left 'running' by a process that died are marked abandoned.
    public func abandonStaleRuns() throws -> Int {
        try db.run("UPDATE runs SET status = 'abandoned', error = 'process ended before the run finished' WHERE status = 'running'")
        return db.changes
    }

    public func runs(job: String? = nil, limit: Int = 1000) throws -> [RunRecord] {
        let filter = job == nil ? "" : "WHERE job = ?"
        let statement = try db.prepare("""
            SELECT id, job, scheduled_for, started_at, finished_at, status, error, snapshot_id, seconds, pid, process_start FROM runs
            \(filter) ORDER BY started_at DESC, id DESC LIMIT \(limit)
            """)
        if let job { try statement.bind([.text(job)]) }
        var result: [RunRecord] = []
        while try statement.step() {
            result.append(RunRecord(
                id: statement.int(at: 0), job: statement.string(at: 1)!,
                scheduledFor: statement.value(at: 2).double.map(Date.init(timeIntervalSince1970:)),
                startedAt: Date(timeIntervalSince1970: statement.value(at: 3).double ?? 0),
                finishedAt: statement.value(at: 4).double.map(Date.init(timeIntervalSince1970:)),
                status: RunRecord.Status(rawValue: statement.string(at: 5) ?? "failed") ?? .failed,
                error: statement.string(at: 6), snapshotID: statement.string(at: 7), seconds: statement.value(at: 8).double,
                process: statement.value(at: 9).int.map { pid in
                    ProcessIdentity(pid: Int32(truncatingIfNeeded: pid), startTicks: statement.value(at: 10).int.map { UInt64(bitPattern: $0) })
                }))
        }
        return result
    }

    // MARK: drills

    public struct DrillRecord: Sendable {
        public var startedAt: Date
        public var finishedAt: Date
        public var ok: Bool
        public var seconds: Double
        public var rtoSeconds: Double
        public var report: String?
        public var summary: String
        /// The slowest target's time to bring back its newest snapshot (nil: none came back,
        /// or a drill recorded before schema 5); the RTO margin is `rtoSeconds` minus it.
        public var recoverySeconds: Double? = nil
    }

    public func record(_ d: DrillRecord) throws {
        try db.run("INSERT INTO drills (started_at, finished_at, ok, seconds, rto_seconds, report, summary, recovery_seconds) VALUES (?,?,?,?,?,?,?,?)",
                   .real(d.startedAt.timeIntervalSince1970), .real(d.finishedAt.timeIntervalSince1970), SQLValue(d.ok),
                   .real(d.seconds), .real(d.rtoSeconds), SQLValue(d.report), .text(d.summary), SQLValue(d.recoverySeconds))
    }

    public func lastDrill() throws -> DrillRecord? {
        try db.rows("SELECT started_at, finished_at, ok, seconds, rto_seconds, report, summary, recovery_seconds FROM drills ORDER BY started_at DESC, id DESC LIMIT 1").first.map {
            DrillRecord(startedAt: Date(timeIntervalSince1970: $0[0].double ?? 0), finishedAt: Date(timeIntervalSince1970: $0[1].double ?? 0),
                        ok: $0[2].int == 1, seconds: $0[3].double ?? 0, rtoSeconds: $0[4].double ?? 0, report: $0[5].string,
                        summary: $0[6].string ?? "", recoverySeconds: $0[7].double)
        }
    }
}
