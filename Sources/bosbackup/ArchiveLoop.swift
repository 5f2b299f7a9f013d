import BOSBackup
import Foundation

/// Ships each archive target's new commits at its interval until cancelled:
/// `bosbackup archive` in the foreground, and inside the daemon beside the
/// schedule. A pass that fails is logged and tried again at the next
/// interval; a segment is durable before it is cataloged, so a stop at any
/// moment loses nothing shipped.
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

    func run() async throws {
        var due: [String: Date] = [:]
        var failing: Set<String> = []
        while !Task.isCancelled {
            let now = Date()
            for archiver in archivers {
                let name = archiver.archive.database
                let ready = archiver.archive.targets.filter { due[name + "/" + $0.target, default: now] <= now }
                guard !ready.isEmpty else { continue }
                do {
                    report(try await archiver.pass(targets: ready.map(\.target)), name)
                    if failing.remove(name) != nil { output.done("\(name): archiving again") }
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    // Said once until it recovers, not at every interval.
                    if failing.insert(name).inserted { output.failure("\(name): archive pass failed: \(error)", priority: .error) }
                }
                for destination in ready { due[name + "/" + destination.target] = now.addingTimeInterval(destination.interval) }
            }
            let next = due.values.min() ?? now.addingTimeInterval(1)
            try await Task.sleep(nanoseconds: UInt64(max(0.05, next.timeIntervalSince(Date())) * 1e9))
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
