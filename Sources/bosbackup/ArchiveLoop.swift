import BOSBackup
import Foundation

/// Follows each archived database's WAL (`WALFollower`: one generation across
/// the BOS's WAL restarts) and ships each target's new commits at its interval
/// until cancelled: `bosbackup archive` in the foreground, and inside the
/// daemon beside the schedule. A step that fails is logged and started over;
/// a segment is durable before it is cataloged, so a stop at any moment loses
/// nothing shipped.
struct ArchiveLoop {
    let context: Context
    let archivers: [WALArchiver]
    let output: RunOutput

    init(context: Context, policy: Policy, catalog: Catalog, databases: String? = nil, output: RunOutput) {
        self.context = context
        self.output = output
        archivers = policy.archives.filter { databases == nil || $0.database == databases }.map { archive in
            WALArchiver(catalog: catalog, clock: context.clock, policy: policy, archive: archive, scratch: context.scratch) {
                try context.target(named: $0)
            }
        }
    }

    /// How often the WAL is read: the resolution of a commit's time (each target is
    /// shipped to at its own interval from what was read).
    static let poll: TimeInterval = 0.2
    /// How often while the WAL nears its checkpoint size (`WALFollower.wantsSoonerPoll`).
    static let busyPoll: TimeInterval = 0.05

    /// Until cancelled, or until `stop` says so: then every target gets what was
    /// read (the commits queued for a slow target's interval) before it returns.
    func run(stop: StopRequest? = nil) async throws {
        let followers = archivers.map(WALFollower.init)
        defer { followers.forEach { $0.detach() } }
        var due: [String: Date] = [:]
        var failing: Set<String> = []
        while !Task.isCancelled {
            if stop?.requested == true {
                for follower in followers {
                    let name = follower.archiver.archive.database
                    do { report(try await follower.flush(), name) } catch {
                        output.failure("\(name): the last pass before stopping failed: \(error)", priority: .error)
                    }
                }
                return
            }
            let now = Date()
            for follower in followers {
                let name = follower.archiver.archive.database
                // A target with no price per request (a folder) is shipped to by the age of what
                // it waits for: no commit waits there longer than its interval. One that charges
                // per request (S3) gets at most one segment per interval.
                let targets = follower.archiver.archive.targets
                let paced = targets.filter { context.policy?.target(named: $0.target)?.chargesPerRequest ?? true }
                let isDue = { (target: Policy.Archive.Destination) in due[name + "/" + target.target, default: now] <= now }
                let byAge = targets.filter { !paced.contains($0) && isDue($0) }   // not due: after a failed pass
                let ready = paced.filter(isDue)
                let deadlines = Dictionary(uniqueKeysWithValues: byAge.map { ($0.target, $0.interval) })
                var shipping: Set<String> = []
                do {
                    let pass = try await follower.step(shipTo: ready.map(\.target), deadlines: deadlines)
                    shipping = Set(pass.uploadsStarted)
                    report(pass, name)
                    // A new generation may leave an old one past retain:.
                    if pass.started != nil { try await applyRetention(follower.archiver.archive) }
                    if failing.remove(name) != nil { output.done("\(name): archiving again") }
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    // Said once until it recovers, not at every poll; the next step starts over.
                    follower.detach(because: "a pass failed (\(error))")
                    shipping = Set((ready + byAge).map(\.target))   // tried again after their intervals, not at every poll
                    if failing.insert(name).inserted { output.failure("\(name): archive pass failed: \(error)", priority: .error) }
                }
                // A target's next segment waits its interval after one was started; one with
                // nothing to ship stays due, so the next commit goes out at the next poll.
                for destination in ready + (failing.contains(name) ? byAge : []) where shipping.contains(destination.target) {
                    due[name + "/" + destination.target] = now.addingTimeInterval(destination.interval)
                }
            }
            let soon = followers.contains { $0.wantsSoonerPoll }
            try await Task.sleep(nanoseconds: UInt64((soon ? Self.busyPoll : Self.poll) * 1e9))
        }
    }

    func applyRetention(_ archive: Policy.Archive) async throws {
        let outcome = try await context.archiveRetention(archivers[0].catalog).apply(archive, host: archivers[0].policy.host)
        if let line = Context.describe(outcome, database: archive.database, dryRun: false) { output.done(line) }
        for leftover in outcome.leftovers { output.failure("\(archive.database): \(leftover.key) was not deleted: \(leftover.why)", priority: .warning) }
        for failure in outcome.failed { output.failure("\(archive.database): base snapshot \(failure.snapshot.shortID) was not deleted: \(failure.error)", priority: .warning) }
    }

    func report(_ pass: ArchivePass, _ database: String, quiet: Bool = true) {
        if pass.waitingForFirstCommit && !quiet { output.done("\(database): the WAL holds no commit yet; the archive starts at the first one") }
        if let started = pass.started { output.done("\(database): new archive generation \(SnapshotID.short(started.generation)): \(started.reason)") }
        for s in pass.shipped {
            let count = s.lastTxid - s.firstTxid + 1
            output.done("\(database): txid \(s.firstTxid)–\(s.lastTxid) (\(count) commit\(count == 1 ? "" : "s")) → \(s.target) (\(Console.bytes(s.bytes)))")
        }
        if pass.shipped.isEmpty && pass.started == nil && !pass.waitingForFirstCommit && !quiet { output.done("\(database): nothing new to archive") }
    }
}

/// Set from a signal handler, read by the loop between polls.
final class StopRequest: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    var requested: Bool { lock.withLock { flag } }
    func request() { lock.withLock { flag = true } }
}
