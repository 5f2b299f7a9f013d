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
            archive continues from. Only WAL databases can be archived. It checkpoints
            only while it holds the write lock itself, so SQLite's WAL-reset bug cannot
            strike (docs/DESIGN.md "Archive, as built"); --once never checkpoints.
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var database: DatabaseOption
    @Flag(help: "Ship what is new once, then exit.") var once = false

    func run() async throws {
        try await reporting {
            let context = try Context(common)
            try context.authorize(.operator, "archive")
            let policy = try context.requirePolicy()
            let only = try context.database(database)
            let archives = policy.archives.filter { only == nil || $0.database == only }
            guard !archives.isEmpty else {
                throw UsageError("the policy has no archive: entry" + (only.map { " for database \($0)" } ?? "")
                    + " (e.g. archive: { bos: { targets: { nas: 1s } } })")
            }
            let catalog = try context.openCatalog()
            let lock = try context.archiveLock()
            defer { withExtendedLifetime(lock) {} }
            let loop = ArchiveLoop(context: context, policy: policy, catalog: catalog, databases: only,
                                   output: RunOutput(style: .archive, context: context))
            if once {
                for archiver in loop.archivers { loop.report(try await archiver.pass(), archiver.archive.database, quiet: false) }
                return ExitStatus.ok
            }
            // SIGTERM/SIGINT: one last pass ships what every target still lacks, then exit 0.
            let stop = StopRequest()
            let output = RunOutput(style: .archive, context: context)
            let sources = StopSignals.handle(output, saying: "shipping what is read, then stopping") { stop.request() }
            defer { sources.forEach { $0.cancel() } }
            try await loop.run(stop: stop)
            output.done("stopped")
            return ExitStatus.ok
        }
    }
}
