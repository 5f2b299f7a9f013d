import ArgumentParser
import BOSBackup
import Foundation

struct ArchiveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "archive",
        abstract: "Continuous WAL archiving: ship every commit of the policy's archive: databases to their targets.",
        discussion: """
            Runs in the foreground, shipping new commits to each target at its interval
            (archive: { bos: { targets: { nas: 1s, cloud: 10s } } }); --once ships what
            is new now and exits. The first run takes a base snapshot (job archive) the
            archive continues from. Only WAL databases can be archived. bosbackup never
            checkpoints the live database (docs/DESIGN.md: the SQLite WAL-reset bug).
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var database: DatabaseOption
    @Flag(help: "Ship what is new once, then exit.") var once = false

    func run() async throws {
        try await reporting {
            let context = try Context(common)
            let policy = try context.requirePolicy()
            let only = try context.database(database)
            let archives = policy.archives.filter { only == nil || $0.database == only }
            guard !archives.isEmpty else {
                throw UsageError("the policy has no archive: entry" + (only.map { " for database \($0)" } ?? "")
                    + " (e.g. archive: { bos: { targets: { nas: 1s } } })")
            }
            let catalog = try context.openCatalog()
            // One archiver per catalog: two would ship the same commits twice.
            guard let catalogPath = context.catalogPath else { throw UsageError("no catalog: give --catalog FILE or --config FILE") }
            let lock = try RunLock(path: catalogPath + ".archive.lock", clock: context.clock)
            defer { withExtendedLifetime(lock) {} }
            let archivers = archives.map { archive in
                WALArchiver(catalog: catalog, clock: context.clock, policy: policy, archive: archive, scratch: context.scratch) {
                    try context.target(named: $0)
                }
            }
            if once {
                for archiver in archivers { report(try await archiver.pass(), archiver.archive.database, context) }
                return ExitStatus.ok
            }
            try await follow(archivers, context)
            return ExitStatus.ok
        }
    }

    /// Each target at its own interval, until the process is stopped (a segment is durable
    /// before it is cataloged, so a stop at any moment loses nothing shipped).
    private func follow(_ archivers: [WALArchiver], _ context: Context) async throws {
        var due: [String: Date] = [:]
        while !Task.isCancelled {
            let now = Date()
            for archiver in archivers {
                let ready = archiver.archive.targets.filter { due[archiver.archive.database + "/" + $0.target, default: now] <= now }
                guard !ready.isEmpty else { continue }
                report(try await archiver.pass(targets: ready.map(\.target)), archiver.archive.database, context, quiet: true)
                for destination in ready { due[archiver.archive.database + "/" + destination.target] = now.addingTimeInterval(destination.interval) }
            }
            let next = due.values.min() ?? now.addingTimeInterval(1)
            try await Task.sleep(nanoseconds: UInt64(max(0.05, next.timeIntervalSince(Date())) * 1e9))
        }
    }

    private func report(_ pass: ArchivePass, _ database: String, _ context: Context, quiet: Bool = false) {
        if pass.waitingForFirstCommit && !quiet { Console.out("\(database): the WAL holds no commit yet; the archive starts at the first one") }
        if let started = pass.started { Console.out("\(database): new archive generation \(SnapshotID.short(started.generation)): \(started.reason)") }
        for s in pass.shipped {
            let count = s.lastTxid - s.firstTxid + 1
            Console.out("\(database): txid \(s.firstTxid)–\(s.lastTxid) (\(count) commit\(count == 1 ? "" : "s")) → \(s.target) (\(Console.bytes(s.bytes)))")
        }
        if pass.shipped.isEmpty && pass.started == nil && !pass.waitingForFirstCommit && !quiet { Console.out("\(database): nothing new to archive") }
    }
}
