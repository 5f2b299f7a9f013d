import Foundation

public enum ArchiveError: Error, CustomStringConvertible, CategorizedError, Sendable {
    case notWAL(database: String, path: String, mode: String)
    case noArchive(database: String)
    case cannotPin(String)

    public var description: String {
        switch self {
        case .notWAL(let name, let path, let mode):
            return "database \(name) (\(path)) uses a \(mode) journal: only WAL databases can be archived; the BOS must run PRAGMA journal_mode=WAL"
        case .noArchive(let name): return "the policy has no archive: entry for database \(name)"
        case .cannotPin(let why): return "could not start the archive: \(why)"
        }
    }
    public var category: ErrorCategory {
        switch self {
        case .notWAL, .noArchive: return .input
        case .cannotPin: return .failure
        }
    }
}

/// What one archiving pass did.
public struct ArchivePass: Sendable {
    public var shipped: [WALSegmentRecord] = []
    /// Targets an upload was started to (the follower: it finishes beside the loop).
    public var uploadsStarted: [String] = []
    /// A generation started in this pass, and why (the first one, or a lost position).
    public var started: (generation: String, reason: String)?
    /// Nothing could start: the WAL holds no frame yet (the archive begins at the first commit).
    public var waitingForFirstCommit = false
}

/// Continuous WAL archiving (docs/DESIGN.md "Archive"): copies the committed
/// frames of the live database's WAL, beyond what each archive target already
/// has, into a segment per target and pass. Reads the WAL file itself inside a
/// read transaction of its own, so SQLite cannot restart the WAL under frames
/// not yet copied; it never checkpoints (SQLite 3.40.1 has the WAL-reset bug a
/// second checkpointing connection can trigger: docs/DESIGN.md). When the WAL
/// was restarted since the last pass (salts changed), what happened in between
/// cannot be proven, so a new generation starts from a new base snapshot.
public struct WALArchiver {
    public let catalog: Catalog
    public let clock: Clock
    public let policy: Policy
    public let archive: Policy.Archive
    public let scratch: String
    public let openTarget: (String) throws -> Target

    public init(catalog: Catalog, clock: Clock, policy: Policy, archive: Policy.Archive, scratch: String,
                openTarget: @escaping (String) throws -> Target) {
        (self.catalog, self.clock, self.policy, self.archive, self.scratch, self.openTarget) = (catalog, clock, policy, archive, scratch, openTarget)
    }

    /// Base snapshots form chains like an `incremental: { full_every: 7 }` job.
    static let baseChainLength = 7

    /// The archiver runs all day beside the BOS: its base snapshots are compressed in
    /// blocks of at most 1 MiB, so the blocks in flight (one per core, and one more, each
    /// with its compressor and member) cost about 6 MB, not the 24 MB of 4 MiB blocks
    /// (heaptrack, a base to S3). Each link of a chain has its own block table.
    static let baseBlockSize = 1 << 20

    /// Ships every commit not yet on `targets` (default: all of the archive's).
    public func pass(targets: [String]? = nil) async throws -> ArchivePass {
        guard let database = policy.database(named: archive.database) else { throw ArchiveError.noArchive(database: archive.database) }
        let source = try ConsistentCopy.openSource(database.path)
        let mode = try source.scalar("PRAGMA journal_mode")?.string?.lowercased() ?? "?"
        guard mode == "wal" else { throw ArchiveError.notWAL(database: database.name, path: database.path, mode: mode) }
        var outcome = ArchivePass()
        let walPath = database.path + "-wal"
        var generation = try catalog.generations(database: database.name, host: policy.host).last { $0.endedAt == nil }
        if generation == nil, try WALFile.header(path: walPath) == nil {
            // A base snapshot of a database whose WAL is empty pins no WAL position to follow from.
            outcome.waitingForFirstCommit = true
            return outcome
        }
        if generation == nil {
            generation = try await startGeneration(database, reason: "first archive of database \(database.name)")
            outcome.started = (generation!.id, "first archive of database \(database.name)")
        }
        // Our read transaction: frames after it began cannot be overwritten by a WAL restart while we copy.
        try source.execute("BEGIN DEFERRED")
        _ = try source.int("SELECT count(*) FROM sqlite_schema")
        defer { try? source.execute("ROLLBACK") }
        let spool = try makeSpool()
        for destination in archive.targets where targets?.contains(destination.target) ?? true {
            guard let current = generation else { break }
            let (position, nextTxid) = try resumePoint(current, target: destination.target, walPath: walPath)
            guard let header = try WALFile.header(path: walPath), let position,
                  header.salt1 == position.salt1, header.salt2 == position.salt2 else {
                let reason = "the WAL was reset (checkpoint) after txid \(nextTxid - 1) of generation \(SnapshotID.short(current.id)): "
                    + "commits between then and the new base snapshot may not be in the archive"
                try catalog.endGeneration(current.id, at: clock.now(), reason: reason)
                generation = try await startGeneration(database, reason: reason)
                outcome.started = (generation!.id, reason)
                break    // the new generation's first segments go out on the next pass
            }
            // Everything committed before this read is on the target after it; what it reads
            // is stamped with the time after the read (a commit in the WAL then was made before).
            let checked = clock.now()
            let commits = try spool.read(wal: walPath, header: header, after: position, firstTxid: nextTxid, clock: clock)
            // Idle: no request to the target at all, and the archive still covers up to now.
            if !commits.isEmpty {
                outcome.shipped.append(try await ship(commits, pageSize: header.pageSize, generation: current, target: destination.target))
            }
            try spool.startOver()
            try catalog.recordArchiveCheck(generation: current.id, target: destination.target, at: checked)
        }
        return outcome
    }

    /// Where `target`'s archive of the generation stands: after its last segment,
    /// else after its base snapshot's pinned frame. A nil position: the WAL no longer holds it.
    func resumePoint(_ generation: WALGeneration, target: String, walPath: String) throws -> (WALPosition?, Int64) {
        if let last = try catalog.lastSegment(generation: generation.id, target: target) { return (last.position, last.lastTxid + 1) }
        let base = try catalog.base(of: generation, target: target)
        guard let header = try WALFile.header(path: walPath), header.salt1 == base.salt1, header.salt2 == base.salt2 else { return (nil, base.baseTxid + 1) }
        return (try WALFile.position(path: walPath, header: header, afterFrame: base.frame), base.baseTxid + 1)
    }

    /// Starts a generation on new base snapshots (`takeBases`), retried when the WAL
    /// restarted under them.
    func startGeneration(_ database: Policy.DatabaseConfig, reason: String) async throws -> WALGeneration {
        for _ in 0..<3 {
            let id = SnapshotID.generate()
            guard let bases = try await takeBases(database, generation: id) else { continue }
            return try await record(id, bases: bases, database: database, startedAt: clock.now(), reason: reason)
        }
        throw ArchiveError.cannotPin("three times in a row the WAL restarted under the base snapshots; is something checkpointing with TRUNCATE?")
    }

    /// A base snapshot on every archive target, so each target's archive restores
    /// alone. The first pins the WAL commit the generation's txids count from; a
    /// later target's pins a later one of the same WAL and holds the commits in
    /// between (its segments start after them). Nil when the WAL restarted under them.
    func takeBases(_ database: Policy.DatabaseConfig, generation id: String) async throws -> [WALBase]? {
        guard !archive.targets.isEmpty else { throw ArchiveError.noArchive(database: database.name) }
        try catalog.auditFirst(action: "archive", detail: "taking the base snapshots of generation \(id) of \(database.name) on "
                               + archive.targets.map(\.target).joined(separator: ", "))
        let walPath = database.path + "-wal"
        var request = BackupRequest(sourcePath: database.path, job: Policy.archiveJobName, targetName: "", scratch: scratch,
                                    level: policy.compressionLevel, blockSize: min(policy.blockSize, Self.baseBlockSize))
        request.host = policy.host
        request.database = database.name
        // A new base costs the pages changed since the last one.
        request.fullEvery = Self.baseChainLength
        var bases: [WALBase] = []
        var first: WALPosition?
        for destination in archive.targets {
            request.targetName = destination.target
            let target = try openTarget(destination.target)
            target.useLeastMemory(objectsUpTo: (DurableFile.fileSize(database.path) ?? 0) + (DurableFile.fileSize(walPath) ?? 0))
            let snapshot = try await SnapshotWriter(catalog: catalog, clock: clock).backup(request, to: target)
            let manifest = try await Repository(target: target).manifestV2(of: snapshot)
            guard let pinned = manifest.walPosition, let header = try WALFile.header(path: walPath),
                  header.salt1 == pinned.salt1, header.salt2 == pinned.salt2,
                  let at = try WALFile.position(path: walPath, header: header, afterFrame: Int(pinned.mxFrame)) else {
                return nil   // the WAL restarted right after the snapshot (or it could not be pinned)
            }
            var txids = 0
            if let first {
                guard at.salt1 == first.salt1, at.salt2 == first.salt2,
                      let count = try WALFile.commitCount(path: walPath, header: header, after: first, throughFrame: at.frame) else { return nil }
                txids = count
            }
            first = first ?? at
            bases.append(WALBase(generation: id, target: destination.target, snapshot: snapshot.id, baseTxid: Int64(txids),
                                 salt1: at.salt1, salt2: at.salt2, frame: at.frame))
        }
        return bases
    }

    /// Catalogs a generation on its bases, after its marker is on every target
    /// (each target's archive can be re-cataloged alone).
    /// `continues`: the older generation this one continues with no gap, and its txid
    /// whose state the first base is (each base then is a pinned checksum of it).
    func record(_ id: String, bases: [WALBase], database: Policy.DatabaseConfig, startedAt: Date, reason: String,
                continues: (generation: String, txid: Int64)? = nil) async throws -> WALGeneration {
        let generation = WALGeneration(id: id, database: database.name, host: policy.host, baseSnapshot: bases[0].snapshot,
                                       salt1: bases[0].salt1, salt2: bases[0].salt2, baseFrame: bases[0].frame,
                                       startedAt: startedAt, endedAt: nil, endReason: nil)
        for base in bases {
            try await Repository(target: try openTarget(base.target))
                .putGenerationMarker(GenerationMarker(generation, base: base, reason: reason, continues: continues))
        }
        try catalog.insert(generation)
        for base in bases {
            try catalog.insert(base)
            if let continues { try catalog.recordCheck(generation: continues.generation, txid: continues.txid + base.baseTxid, snapshot: base.snapshot) }
        }
        try catalog.addAudit(action: "archive", snapshotID: generation.baseSnapshot, detail: "generation \(generation.id) started: \(reason)")
        return generation
    }

    /// One segment of whole commits to one target, durable before it is cataloged.
    func ship(_ commits: [SpooledCommit], pageSize: Int, generation: WALGeneration, target name: String) async throws -> WALSegmentRecord {
        let shipper = try shipper(for: name)
        let segment = try prepare(commits, pageSize: pageSize, generation: generation, target: name, encrypted: shipper.encrypts)
        let stored = try await shipper.upload(segment)
        let record = segment.record(bytes: stored.bytes, sha256: stored.sha256, index: stored.index, shippedAt: clock.now())
        try catalog.insert(record)
        return record
    }

    /// The key and link of the next segment to `name` (it follows the last cataloged one there).
    func prepare(_ commits: [SpooledCommit], pageSize: Int, generation: WALGeneration, target name: String, encrypted: Bool) throws -> PreparedSegment {
        let first = commits[0], last = commits[commits.count - 1]
        let key = RepositoryNamespace(host: policy.host, database: generation.database)
            .segmentKey(generation: generation.id, firstTxid: first.commit.txid, lastTxid: last.commit.txid, encrypted: encrypted)
        let previous = try catalog.lastSegment(generation: generation.id, target: name)
        let link = SegmentLink(generation: generation.id, previousSHA256: previous?.sha256, from: previous?.position ?? first.before, to: last.after)
        return PreparedSegment(target: name, key: key, generation: generation.id, commits: commits, pageSize: pageSize, link: link)
    }

    /// Where the commits read wait for the targets: on disk in scratch, not in memory.
    func makeSpool() throws -> SegmentSpool {
        try SegmentSpool(folder: scratch, level: policy.compressionLevel)
    }

    /// An uploader that owns a target of its own.
    func shipper(for name: String) throws -> SegmentShipper {
        SegmentShipper(target: try openTarget(name), level: policy.compressionLevel)
    }
}

extension Target {
    /// Uploads in the smallest parts that still fit an object of up to `bytes` into S3's
    /// 10,000 (5 MiB up to a 48 GiB object), one at a time: the archiver runs all day beside
    /// the BOS, and 16 MiB parts, two held at once, were half of its memory on a cloud
    /// target. Set before each object: a base is sized by its database, a segment by its
    /// pages (a few seconds' segment is one PUT).
    func useLeastMemory(objectsUpTo bytes: Int64) {
        guard let s3 = backend as? S3Target else { return }
        // Compressed pages, encrypted, can come out a little larger than they went in.
        let most = bytes + bytes / 16 + (1 << 20)
        let needed = (most + Int64(S3Target.Options.maximumParts) - 1) / Int64(S3Target.Options.maximumParts)
        s3.options.partSize = max(S3Target.Options.minimumPartSize, Int(needed))
        s3.options.overlapsParts = false
    }
}
