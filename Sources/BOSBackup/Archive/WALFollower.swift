import Foundation

/// The long-running archiver (`bosbackup archive`, the daemon): unlike a
/// `--once` pass it keeps one generation across the BOS's WAL restarts.
///
/// Why that is provable without ever checkpointing (docs/DESIGN.md "Archive"):
/// it always holds a read transaction. A reader that uses WAL frames (read
/// mark > 0) forbids a WAL restart; one that reads only the database file
/// (read mark 0, taken when everything was checkpointed) forbids backfilling,
/// so at most one restart can happen under it — at the very next write, before
/// anything is appended to the old log. Each poll it moves to a fresh read
/// transaction under a write-lock barrier (`BEGIN IMMEDIATE` on a second
/// connection, then `ROLLBACK`: nothing is written), after copying the WAL to
/// its end; so when it next finds the salts changed by exactly one restart
/// and its position still at that swap's end, the new log's frames are all the
/// commits since, and the generation goes on. Anything else ends it.
///
/// Bounding the WAL: a reader that never lets go would keep the BOS's
/// checkpoints from ever finishing, so the WAL could not restart. Under the
/// barrier, once the WAL is past `checkpointAt`, the follower ends its read
/// transaction and runs a PASSIVE checkpoint on a third connection before it
/// takes the next one. That checkpoint cannot meet SQLite 3.40.1's WAL-reset
/// bug: the bug needs a writer to restart the WAL while a checkpoint runs, and
/// the barrier holds the write lock for its whole length (Litestream holds a
/// write transaction around its checkpoints for the same reason).
///
/// Commits are queued until every target has shipped them (their frames may
/// leave the WAL before the slowest target's interval comes): their pages in
/// the spool on disk (`SegmentSpool`), compressed once as they are read; in
/// memory only where they lie. Past `spoolLimit` every target is shipped to at
/// once.
public final class WALFollower {
    public let archiver: WALArchiver
    /// How long the log may grow while we hold our reader and are behind it: past it, a
    /// follower that is not catching up lets go (the BOS's checkpoints can then restart
    /// the log) and a new generation follows; past twice it, any follower still behind
    /// does. One that has caught up swaps and checkpoints as always, however long the log.
    public var walLimit: Int64 = 256 << 20
    /// WAL size at which the follower checkpoints under its barrier (SQLite's auto-checkpoint: 1000 pages).
    public var checkpointAt: Int64 = 4 << 20
    /// Spooled bytes the queue may hold for a target whose interval has not come: past
    /// it, every target is shipped to at once (more requests, but the spool stays
    /// bounded whatever the intervals); past twice it, the follower stops reading until
    /// the targets catch up (the WAL waits on disk, up to `walLimit`). On disk, so a
    /// cloud target's 10 s at a busy hour (40 MB at 200 tx/s) keeps its interval.
    public var spoolLimit = 256 << 20
    /// Log bytes one read takes, and then the rest of the transaction it is in: a WAL that
    /// grew while the follower was busy is read over several polls, so a poll never takes
    /// long, but a transaction is always read whole, however long (one of 8,000 pages, a
    /// bad script's DELETE on the day-long bench, wedged a follower that cut it at 16 MiB:
    /// it read the same frames at every poll and the BOS's WAL grew to 8 GB).
    public var readLimit = 16 << 20

    private var reader: Database?
    private var barrier: Database?
    private var checkpointer: Database?
    private var generation: WALGeneration?
    private var position: WALPosition?
    private var frameAtSwap = -1
    private var pageSize = 4096
    private var queue: [SpooledCommit] = [] {
        didSet { queuedBytes = queue.reduce(0) { $0 + Int($1.length) } }
    }
    private var spool: SegmentSpool?
    private var nextTxid: Int64 = 1
    private var shipped: [String: Int64] = [:]
    /// Per target: its uploader, and the segment on its way there (one at a time, so
    /// each segment links to a cataloged one).
    private var shippers: [String: SegmentShipper] = [:]
    private var inflight: [String: Upload] = [:]
    /// When the last read began: everything committed before it is queued.
    private var readFrom: Date?
    /// When the last read of any length began (the commits the next read finds were made after it).
    private var lastReadBegan: Date?
    /// Per target: the earliest moment the oldest commit it still waits for can have been made
    /// (set by the read that found it: after the read before began), nil when it waits for none.
    private var waitingSince: [String: Date] = [:]
    /// Per target: how long its last upload took, from start to durable.
    private var uploadSeconds: [String: TimeInterval] = [:]
    /// When the last step decided what to ship, and the time between the last few steps.
    private var stepBegan: Date?
    private var periods: [TimeInterval] = []

    /// The log is halfway to where the follower checkpoints it, or a read did not reach its
    /// end: the loop polls sooner, so the WAL is bounded near `checkpointAt` however fast
    /// the BOS writes (at 200 tx/s the log grows ~2 MB in one 0.2 s poll).
    public var wantsSoonerPoll: Bool { reader != nil && (!caughtUp || readBytes > checkpointAt / 2) }
    /// The last read reached the end of the log (a limited read may not have).
    private var caughtUp = true
    /// The seen-at stamp of the last read's commits.
    private var readStamp: Date?
    /// Why this follower last let go of the WAL itself (said when the generation then ends).
    private var letGo: String?
    /// The log not yet read when this follower, behind, first found the log past
    /// `walLimit`: while what is unread stays below it, the follower is catching up.
    private var backlogPastLimit: Int64?

    /// Spooled bytes of the queue (what the spool holds for the targets).
    private var queuedBytes = 0

    /// How long the log in the WAL file is while we do not read it (its frames past our
    /// position included). Not the file's size: SQLite keeps a file that was once long,
    /// and measuring it made every backpressure after one long spell a let-go — the bench
    /// saw 27 generations in 150 s on a busy host, each a gap and a new 1 GB base.
    func logOnDisk() throws -> Int64? {
        let path = try walPath
        guard let header = try WALFile.header(path: path) else { return nil }
        return try WALFile.logBytes(path: path, header: header)
    }

    /// The log up to our position: what we have read of it (all of it after a read that caught up).
    private var readBytes: Int64 {
        Int64(WALHeader.size) + Int64(position?.frame ?? 0) * Int64(24 + pageSize)
    }

    public init(_ archiver: WALArchiver) { self.archiver = archiver }

    private var database: Policy.DatabaseConfig {
        get throws {
            guard let db = archiver.policy.database(named: archiver.archive.database) else { throw ArchiveError.noArchive(database: archiver.archive.database) }
            return db
        }
    }
    private var walPath: String { get throws { try database.path + "-wal" } }

    /// Reads what is new, then starts shipping to `targets` what they lack. Uploads run
    /// beside the loop (a slow target does not hold up reading, the WAL's bound or the
    /// other targets); a finished one is cataloged by the next step.
    ///
    /// `deadlines`: targets shipped to by the age of what they wait for, not by the loop:
    /// one whose oldest waiting commit may be older than its deadline by the time the next
    /// step could ship it and an upload like its last one ended gets a segment now.
    public func step(shipTo targets: [String], deadlines: [String: TimeInterval] = [:]) async throws -> ArchivePass {
        var outcome = ArchivePass()
        try await harvest(&outcome, waiting: false)
        if reader == nil { try await attach(&outcome) }
        guard reader != nil, generation != nil else { return outcome }
        if queuedBytes <= 2 * spoolLimit {
            try await read(&outcome)
            if reader != nil { try await rotateIfDue(&outcome) }
            if reader != nil { try await swap(&outcome) }
        } else if let size = try logOnDisk(), size > walLimit {
            // Behind so far that memory would grow without end: the WAL waits on disk (our
            // reader keeps it), up to the limit; past it we let go, as for a long log.
            releaseWAL()
            letGo = "the targets fell behind the BOS (\(ByteCount.format(Int64(queuedBytes))) queued) and the WAL passed \(ByteCount.format(walLimit))"
        }
        // Over the limit, or just let go of the WAL: every target now, not at its interval.
        let now = archiver.clock.now()
        // The next step may come as late after this one as any of the last few after theirs
        // (steps vary: a busy poll, an upload to catalog, a slow read).
        if let last = stepBegan { periods = (periods + [now.timeIntervalSince(last)]).suffix(8) }
        stepBegan = now
        let period = periods.max() ?? 0
        let pressed = deadlines.filter { target, deadline in
            guard let since = waitingSince[target] else { return false }
            return now.timeIntervalSince(since) + period + (uploadSeconds[target] ?? 0) >= deadline
        }
        let due = queuedBytes > spoolLimit || reader == nil ? archiver.archive.targets.map(\.target) : targets + pressed.keys.sorted()
        for target in Set(due) where inflight[target] == nil {
            if try startUpload(to: target) { outcome.uploadsStarted.append(target) }
        }
        try trim()
        try recordChecks()
        return outcome
    }

    /// Waits for the uploads on their way and catalogs them (no new reading or shipping).
    public func settle() async throws -> ArchivePass {
        var outcome = ArchivePass()
        try await harvest(&outcome, waiting: true)
        try trim()
        try recordChecks()
        return outcome
    }

    /// One last read, and every target given everything read, waited for: before stopping.
    public func flush() async throws -> ArchivePass {
        var outcome = try await step(shipTo: [])
        for destination in archiver.archive.targets { try await ship(to: destination.target, &outcome) }
        try trim()
        try recordChecks()
        return outcome
    }

    /// Everything committed before the last read began is on the targets that have every queued commit.
    private func recordChecks() throws {
        guard let generation, let readFrom else { return }
        for destination in archiver.archive.targets where inflight[destination.target] == nil && shipped[destination.target] ?? 0 >= nextTxid - 1 {
            try archiver.catalog.recordArchiveCheck(generation: generation.id, target: destination.target, at: readFrom)
        }
    }

    /// Lets go of the WAL after a failed step; `why` is said if the generation then ends.
    public func detach(because why: String) {
        detach()
        letGo = why
    }

    /// Ends the read transaction, closes the connections, and abandons the uploads on
    /// their way (an object one leaves is never cataloged; the next attach ships again).
    public func detach() {
        for upload in inflight.values { upload.task.cancel() }
        inflight = [:]
        shippers = [:]
        releaseWAL()
    }

    /// Lets go of the WAL only: the queue and the uploads on their way are kept (the
    /// next attach catalogs those first).
    private func releaseWAL() {
        checkpointer = nil                 // first: the read-only reader must be the last of our connections
        barrier = nil
        try? reader?.execute("ROLLBACK")   // best effort: closing the connection ends it too
        reader = nil
        position = nil
        backlogPastLimit = nil
    }

    // MARK: attaching

    /// A reader, and where the archive stands: the open generation, resumed from the
    /// lowest position any target has, when the WAL still holds it; else a new generation.
    private func attach(_ outcome: inout ArchivePass) async throws {
        // Where each target stands comes from the catalog: what was read before letting go
        // goes out first (to every target, waited for), so none of it is lost to a restart.
        try await harvest(&outcome, waiting: true)
        if generation != nil, !queue.isEmpty {
            for destination in archiver.archive.targets { try await ship(to: destination.target, &outcome) }
        }
        let db = try database
        let source = try ConsistentCopy.openSource(db.path)
        let mode = try source.scalar("PRAGMA journal_mode")?.string?.lowercased() ?? "?"
        guard mode == "wal" else { throw ArchiveError.notWAL(database: db.name, path: db.path, mode: mode) }
        guard try WALFile.header(path: walPath) != nil else { outcome.waitingForFirstCommit = true; return }
        try source.execute("BEGIN DEFERRED")
        _ = try source.int("SELECT count(*) FROM sqlite_schema")
        reader = source
        // Never commits, so never checkpoints; and it is always closed before the read-only
        // reader, so it is never the last connection (which would checkpoint on close).
        let rw = try Database(path: db.path, mode: .readWrite, busyTimeoutMs: 0)
        rw.retryBusyQuickly(timeoutMs: 2_000)   // the swap must get in between the BOS's commits
        try rw.execute("PRAGMA wal_autocheckpoint = 0")
        barrier = rw
        let checkpoints = try Database(path: db.path, mode: .readWrite, busyTimeoutMs: 0)
        try checkpoints.execute("PRAGMA wal_autocheckpoint = 0")
        checkpointer = checkpoints
        shipped = [:]
        try dropQueue()
        (waitingSince, lastReadBegan) = ([:], nil)
        if let open = try archiver.catalog.generations(database: db.name, host: archiver.policy.host).last(where: { $0.endedAt == nil }),
           try resume(open) {
            letGo = nil
            return
        }
        defer { letGo = nil }
        if let open = try archiver.catalog.generations(database: db.name, host: archiver.policy.host).last(where: { $0.endedAt == nil }) {
            let why = letGo.map { "the WAL was reset after \($0)" } ?? "the archiver was not running when the WAL was reset"
            let reason = "\(why): commits after txid \(nextTxid - 1) of generation \(SnapshotID.short(open.id)) may not be in the archive"
            try archiver.catalog.endGeneration(open.id, at: archiver.clock.now(), reason: reason)
            try await begin(reason: reason, &outcome)
        } else {
            try await begin(reason: "first archive of database \(db.name)", &outcome)
        }
    }

    /// Resumes the generation from the target that has the least, if the WAL still holds that point.
    private func resume(_ open: WALGeneration) throws -> Bool {
        var lowest: (WALPosition, Int64)?
        for destination in archiver.archive.targets {
            let (position, next) = try archiver.resumePoint(open, target: destination.target, walPath: walPath)
            guard let position else { return false }
            shipped[destination.target] = next - 1
            if lowest == nil || next - 1 < lowest!.1 { lowest = (position, next - 1) }
        }
        guard let (start, last) = lowest, let header = try WALFile.header(path: walPath),
              header.salt1 == start.salt1, header.salt2 == start.salt2 else { return false }
        generation = open
        position = start
        nextTxid = last + 1
        pageSize = header.pageSize
        frameAtSwap = start.frame
        return true
    }

    private func begin(reason: String, _ outcome: inout ArchivePass) async throws {
        let started = try await archiver.startGeneration(try database, reason: reason)
        generation = started
        outcome.started = (started.id, reason)
        guard let header = try WALFile.header(path: walPath), header.salt1 == started.salt1, header.salt2 == started.salt2,
              let start = try WALFile.position(path: walPath, header: header, afterFrame: started.baseFrame) else {
            detach()   // lost again at once; the next step starts over
            return
        }
        position = start
        pageSize = header.pageSize
        frameAtSwap = start.frame
        nextTxid = 1
        // A later target's base snapshot already holds the first commits.
        shipped = [:]
        for destination in archiver.archive.targets {
            shipped[destination.target] = try archiver.catalog.base(of: started, target: destination.target).baseTxid
        }
    }

    // MARK: following

    private func read(_ outcome: inout ArchivePass, limited: Bool = true) async throws {
        guard var at = position else { return }
        guard let header = try WALFile.header(path: walPath) else { return try await lost("the WAL file is gone or empty", &outcome) }
        if header.salt1 != at.salt1 || header.salt2 != at.salt2 {
            // One restart, at the first write after our last swap, with nothing appended to the old log before it.
            guard header.salt1 == at.salt1 &+ 1, at.frame == frameAtSwap else {
                return try await lost("the WAL was reset more than once, or after frames we had not copied", &outcome)
            }
            at = WALPosition(salt1: header.salt1, salt2: header.salt2, frame: 0, checksum: header.checksum)
        }
        let began = archiver.clock.now()
        // The first read after attaching finds commits of any age (a backlog from while no
        // reader ran): they may be as old as can be.
        let previous = lastReadBegan ?? .distantPast
        lastReadBegan = began
        // At most about `readLimit` of log per read (a WAL that grew while we were busy is
        // read over several polls, not into memory at once); under the barrier, to its end.
        let frames = limited ? max(64, readLimit / (24 + header.pageSize)) : .max
        if spool == nil { spool = try archiver.makeSpool() }
        let read = try spool!.read(wal: walPath, header: header, after: at, firstTxid: nextTxid, limit: frames, clock: archiver.clock)
        queue += read
        if !read.isEmpty {
            for destination in archiver.archive.targets where waitingSince[destination.target] == nil {
                waitingSince[destination.target] = previous
            }
        }
        readStamp = read.first?.commit.seenAt ?? archiver.clock.now()
        nextTxid += Int64(read.count)
        position = read.last?.after ?? at
        pageSize = header.pageSize
        caughtUp = try !limited || !WALFile.hasFrame(path: walPath, header: header, after: position ?? at)
        // Only a read that reached the log's end says everything committed before it began is queued.
        if caughtUp { readFrom = began }
    }

    /// Moves to a fresh read transaction with no moment without one, under the write lock;
    /// behind, gives the reader up instead when it is losing ground (`letGoIfLosingGround`).
    private func swap(_ outcome: inout ArchivePass) async throws {
        guard let barrier else { return }
        // Behind: the rest of the log first (a swap copies the log to its end under the barrier).
        guard caughtUp else { return try letGoIfLosingGround() }
        backlogPastLimit = nil
        // The BOS holds the write lock beyond our busy timeout: swap at the next poll.
        do { try barrier.execute("BEGIN IMMEDIATE") } catch { return }
        defer { try? barrier.execute("ROLLBACK") }
        // Nobody can commit now: this read copies the WAL to its end before the old read transaction goes.
        try await read(&outcome, limited: false)
        guard let reader else { return }   // the position was lost
        try reader.execute("ROLLBACK")
        if readBytes > checkpointAt, let checkpointer {
            // Only frames we have copied are in the WAL (nobody can write now): backfilling them is safe,
            // and the BOS's next write then restarts the log (followed: one restart, at our swap's end).
            // Not done (busy) only means the WAL is not bounded this time; nothing is at stake.
            _ = try? checkpointer.rows("PRAGMA wal_checkpoint(PASSIVE)")
        }
        try reader.execute("BEGIN DEFERRED")
        _ = try reader.int("SELECT count(*) FROM sqlite_schema")
        frameAtSwap = position?.frame ?? -1
    }

    /// Behind the BOS with the log past `walLimit`: lets go of the WAL (the BOS's
    /// checkpoints can then restart it; what is queued is still shipped) when the unread
    /// log grows instead of shrinking, or the log passes twice the limit. Not merely for
    /// being past the limit: a new base snapshot pins the log for as long as it takes, and a
    /// follower that let go while it read that backlog, however fast, started another base,
    /// which pinned the log again (the day-long bench: 9 generations in 2 minutes).
    private func letGoIfLosingGround() throws {
        // The log on disk, not our position (a follower far behind is past twice the limit there
        // long before its position is past the limit), and not the file's size (SQLite does not
        // shrink the -wal file when the log restarts, so its size says how long the log once was).
        guard let onDisk = try logOnDisk(), onDisk > walLimit else { return }
        let backlog = max(0, onDisk - readBytes)
        let firstBacklog = backlogPastLimit ?? backlog
        backlogPastLimit = firstBacklog
        let why: String
        if onDisk > 2 * walLimit {
            why = "\(ByteCount.format(2 * walLimit)) (twice its limit) while it was behind the BOS"
        } else if backlog > firstBacklog + Int64(readLimit) {   // more than a read's worth: not noise
            why = "\(ByteCount.format(walLimit)) and the part not yet read grew (\(ByteCount.format(firstBacklog)) → \(ByteCount.format(backlog)))"
        } else {
            return   // catching up
        }
        releaseWAL()
        letGo = "it let go of the WAL when the log passed \(why)"
    }

    // MARK: rotating

    /// Once the open generation is `baseEvery` old, a new one on fresh base snapshots,
    /// with no gap between them: the old one gets every commit up to one last read and
    /// ends there; the new one starts there, its first segment holding the commits
    /// after its base, with the times they were seen. Then retention can drop whole
    /// old generations, and a restore replays at most `baseEvery` of archive.
    private func rotateIfDue(_ outcome: inout ArchivePass) async throws {
        guard let old = generation, archiver.clock.now().timeIntervalSince(old.startedAt) >= archiver.archive.baseEvery else { return }
        let id = SnapshotID.generate()
        // The BOS keeps writing meanwhile; our reader keeps the WAL from restarting under the bases.
        guard let bases = try await archiver.takeBases(try database, generation: id) else { return }   // the WAL restarted: later
        try await read(&outcome)
        guard caughtUp, generation?.id == old.id, let end = position, let stamp = readStamp, let began = readFrom,
              end.salt1 == bases[0].salt1, end.salt2 == bases[0].salt2, end.frame >= bases[0].frame,
              let header = try WALFile.header(path: walPath),
              let from = try WALFile.position(path: walPath, header: header, afterFrame: bases[0].frame) else { return }
        let tail = queue.filter { $0.after.salt1 == from.salt1 && $0.after.salt2 == from.salt2 && $0.after.frame > from.frame }
        guard try WALFile.commitCount(path: walPath, header: header, after: from, throughFrame: end.frame) == tail.count else { return }
        for destination in archiver.archive.targets { try await ship(to: destination.target, &outcome) }
        // With no commit after the new base, both give the same state from when the last read began.
        let switchedAt = tail.isEmpty ? began : stamp
        for destination in archiver.archive.targets {
            try archiver.catalog.recordArchiveCheck(generation: old.id, target: destination.target, at: began)
        }
        let every = Duration.format(archiver.archive.baseEvery)
        try archiver.catalog.endGeneration(old.id, at: switchedAt, reason: "continued by generation \(SnapshotID.short(id)) (a new base snapshot every \(every))")
        // The new first base is the state right after the old generation's commit just before the tail.
        let pinned = nextTxid - 1 - Int64(tail.count)
        let next = try await archiver.record(id, bases: bases, database: try database, startedAt: switchedAt,
                                             reason: "a new base snapshot every \(every), continuing generation \(SnapshotID.short(old.id)) with no gap",
                                             continues: (old.id, pinned))
        generation = next
        queue = tail.enumerated().map { index, queued in
            var renumbered = queued
            renumbered.commit.txid = Int64(index) + 1
            return renumbered
        }
        nextTxid = Int64(tail.count) + 1
        shipped = Dictionary(uniqueKeysWithValues: bases.map { ($0.target, $0.baseTxid) })
        outcome.started = (next.id, "a new base snapshot every \(every), continuing generation \(SnapshotID.short(old.id)) with no gap")
    }

    /// The queue still goes out (those commits are archived), then the generation ends.
    private func lost(_ why: String, _ outcome: inout ArchivePass) async throws {
        for destination in archiver.archive.targets { try await ship(to: destination.target, &outcome) }
        if let generation {
            try archiver.catalog.endGeneration(generation.id, at: archiver.clock.now(), reason: "position lost after txid \(nextTxid - 1): \(why)")
        }
        detach()
        generation = nil
        try dropQueue()
    }

    /// Ships to `target` now and waits (after the upload on its way there, if any).
    private func ship(to target: String, _ outcome: inout ArchivePass) async throws {
        try await harvest(&outcome, waiting: true, only: target)
        _ = try startUpload(to: target)
        try await harvest(&outcome, waiting: true, only: target)
    }

    /// False when `target` has everything already.
    private func startUpload(to target: String) throws -> Bool {
        guard let generation else { return false }
        let pending = queue.filter { $0.commit.txid > shipped[target] ?? 0 }
        guard !pending.isEmpty else { return false }
        let shipper = try shippers[target] ?? archiver.shipper(for: target)
        shippers[target] = shipper
        let segment = try archiver.prepare(pending, pageSize: pageSize, generation: generation, target: target,
                                           encrypted: shipper.encrypts)
        let done = DoneFlag()
        let clock = archiver.clock
        let task = Task {
            defer { done.set(clock.now()) }
            return try await shipper.upload(segment)
        }
        inflight[target] = Upload(segment: segment, task: task, done: done, started: clock.now())
        waitingSince[target] = nil   // everything it waited for is on its way
        return true
    }

    /// Catalogs the uploads that ended (all of them, or `only`'s, when `waiting`). A failed
    /// one fails the step: the loop lets go and starts over, and nothing was cataloged.
    private func harvest(_ outcome: inout ArchivePass, waiting: Bool, only: String? = nil) async throws {
        for (target, upload) in inflight where only == nil || only == target {
            guard waiting || upload.done.value else { continue }
            inflight[target] = nil
            let stored = try await upload.task.value
            // Shipped when it was durable on the target, not when this step came to catalog it.
            let ended = upload.done.ended ?? archiver.clock.now()
            uploadSeconds[target] = ended.timeIntervalSince(upload.started)
            let record = upload.segment.record(bytes: stored.bytes, sha256: stored.sha256, index: stored.index, shippedAt: ended)
            try archiver.catalog.insert(record)
            shipped[target] = record.lastTxid
            outcome.shipped.append(record)
        }
    }

    /// Drops what every target has, and gives its spool space back.
    private func trim() throws {
        let everywhere = archiver.archive.targets.map { shipped[$0.target] ?? 0 }.min() ?? 0
        queue.removeAll { $0.commit.txid <= everywhere }
        if queue.isEmpty && inflight.isEmpty { try spool?.startOver() }
    }

    private func dropQueue() throws {
        queue = []
        try trim()
    }
}

/// A segment on its way to a target.
private struct Upload {
    var segment: PreparedSegment
    var task: Task<(bytes: Int64, sha256: String, index: SegmentIndexRef), Error>
    var done: DoneFlag
    var started: Date
}

/// Set by an upload's task when it ends (and when); read by the follower without waiting.
private final class DoneFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var at: Date?
    var value: Bool { lock.withLock { at != nil } }
    var ended: Date? { lock.withLock { at } }
    func set(_ now: Date) { lock.withLock { at = now } }
}
