import ArgumentParser
import BOSBackup
import Foundation

struct TimelineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "timeline",
        abstract: "When rows appeared, changed and vanished, from the WAL archive: one row's history (--key), or the commits after which the rows live lacks went missing (--lost).",
        discussion: """
            The state at --since (default: the start of the newest archive generation) is
            restored into scratch, then every later archived commit is applied to it in
            order; only the pages each commit wrote are read. A commit's time is when the
            archiver saw it: it happened after the commit before it was seen.
            --key names a row by its primary key (once per column of a composite key), or
            by its rowid in a table without one. --lost compares with the live database,
            which is only read.
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var database: DatabaseOption
    @Option(help: "The table.") var table: String
    @Option(help: "The row's key value (repeat for each column of a composite key).") var key: [String] = []
    @Flag(help: "The rows live lacks that the archive held: the commit after which each went missing.") var lost = false
    @Option(help: "With --lost: the live database (opened read-only).") var live: String?
    @Option(help: "Walk from the state at this time (default: the newest generation's start).") var since: String?
    @Option(name: .customLong("from-target"), help: "From this archive target only (default: the first that can).") var fromTarget: String?
    @Option(help: "List at most this many keys per commit (0: counts only).") var limit = 20
    @Flag(help: "Print the result as JSON.") var json = false

    func validate() throws {
        guard lost != !key.isEmpty else { throw ValidationError("give --key K (one row's history) or --lost --live DB") }
        if lost && live == nil { throw ValidationError("--lost needs --live DB: the rows lost are those live lacks") }
        if !lost && live != nil { throw ValidationError("--live goes with --lost") }
    }

    func run() async throws {
        try await reporting {
            let context = try Context(common)
            try context.authorize(.operator, "timeline")
            // A wrong live path is said before minutes of restoring and walking, not after.
            if let live { _ = try ConsistentCopy.openSource(Context.absolute(live)) }
            let catalog = try context.openCatalog()
            let (name, plans) = try context.timelinePlans(catalog, since: since, fromTarget: fromTarget, database)
            let timeline = ArchiveTimeline(catalog: catalog, scratch: context.scratch)
            let progress = ProgressLine()
            defer { progress.clear() }
            let restorer = context.restorer(catalog, progress: progress)
            if lost, let live {
                let result = try await LostRowsTimeline.build(table: table, live: Context.absolute(live), plans: plans, timeline: timeline, using: restorer,
                                                              segmentsOn: context.target(named:), baseOn: context.target(for:))
                progress.clear()
                TimelinePrinter(context: context, database: name, limit: limit).print(result, live: live, json: json)
            } else {
                let result = try await KeyTimeline.build(table: table, key: key, plans: plans, timeline: timeline, using: restorer,
                                                         segmentsOn: context.target(named:), baseOn: context.target(for:))
                progress.clear()
                TimelinePrinter(context: context, database: name, limit: limit).print(result, json: json)
            }
            return ExitStatus.ok
        }
    }
}

extension Context {
    /// The ways to the state a timeline starts from: `--since`, else the newest generation's start.
    func timelinePlans(_ catalog: Catalog, since: String?, fromTarget: String?, _ option: DatabaseOption) throws -> (String, [PointInTimePlan]) {
        let (policy, name, archive) = try archivedDatabase(option)
        let targets = archive.targets.map(\.target).filter { fromTarget == nil || $0 == fromTarget }
        if let only = fromTarget, targets.isEmpty {
            throw UsageError("\(only) is not an archive target of database \(name) (\(archive.targets.map(\.target).joined(separator: ", ")))")
        }
        let when: Date
        if let since {
            guard let parsed = ISO8601.parse(since, defaultZone: timeZone) else {
                throw UsageError("--since \(since) is not an ISO 8601 time (e.g. 2026-11-29T08:00:00+08:00)")
            }
            when = parsed
        } else {
            guard let newest = try catalog.generations(database: name, host: policy.host).last else {
                throw PointInTimeError.noGeneration("database \(name) has no WAL archive yet")
            }
            when = newest.startedAt
        }
        return (name, try PointInTimeRestore(catalog: catalog).plans(at: when, database: name, host: policy.host, targets: targets))
    }
}
