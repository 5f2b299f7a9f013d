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

    func run() async throws {
        let followers = archivers.map(WALFollower.init)
        defer { followers.forEach { $0.detach() } }
        var due: [String: Date] = [:]
        var failing: Set<String> = []
        while !Task.isCancelled {
            let now = Date()
            for follower in followers {
                let name = follower.archiver.archive.database
                let ready = follower.archiver.archive.targets.filter { due[name + "/" + $0.target, default: now] <= now }
                do {
                    report(try await follower.step(shipTo: ready.map(\.target)), name)
                    if failing.remove(name) != nil { output.done("\(name): archiving again") }
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    // Said once until it recovers, not at every poll; the next step starts over.
                    follower.detach()
                    if failing.insert(name).inserted { output.failure("\(name): archive pass failed: \(error)", priority: .error) }
                }
                for destination in ready { due[name + "/" + destination.target] = now.addingTimeInterval(destination.interval) }
            }
            try await Task.sleep(nanoseconds: UInt64(Self.poll * 1e9))
        }
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
