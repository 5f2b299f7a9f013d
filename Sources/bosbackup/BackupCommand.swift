import ArgumentParser
import BOSBackup
import Foundation

struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Take a consistent, compressed, checksummed snapshot of the live database now.",
        discussion: """
            Either --job NAME (from the policy file: its source and target) or --source DB --target URL|NAME \
            (recorded as job "manual"). --job with --target only to that job's own target. Usage mistakes \
            exit 2 and record no run.
            """)

    @OptionGroup var common: CommonOptions
    @Option(help: "Job from the policy file (its target and source).") var job: String?
    @Option(help: "Live SQLite database to back up (overrides the policy's).") var source: String?
    @Option(help: "Database from the policy (its path and namespace), where the policy has several.") var database: String?
    @Option(help: "Target URL (file:///path) or a target name from the policy.") var target: String?
    @Option(help: "gzip level 1-9 (default: policy's, else \(BlockGzipWriter.defaultLevel)).") var level: Int?
    @Option(help: "Cores to compress on (default: all).") var jobs: Int?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        try await reporting {
            let context = try Context(common)
            try context.authorize(.operator, "backup")
            // Every mistake in the flags is found before the catalog is touched: a usage
            // error records no run (a production job's failed run would turn status red).
            let (request, destination) = try validatedRequest(context)
            let catalog = try context.openCatalog()
            let lock = try context.lock()
            defer { withExtendedLifetime(lock) {} }
            let runner = JobRunner(catalog: catalog, clock: context.clock)
            let progress = ProgressLine()
            let began = Date()
            let record = try await runner.backup(request, to: destination, scheduledFor: nil) { event in
                progress.update(BackupCommand.describe(event))
            }
            progress.clear()
            if json {
                Console.json(SnapshotsCommand.json(record))
            } else {
                BackupCommand.printSummary(record, seconds: Date().timeIntervalSince(began), context: context)
            }
            return ExitStatus.ok
        }
    }

    /// The backup the flags ask for, or a usage error.
    private func validatedRequest(_ context: Context) throws -> (BackupRequest, Target) {
        let policy = context.policy
        if let level, !(1...9).contains(level) { throw UsageError("--level must be 1-9, got \(level)") }
        if let jobs, jobs < 1 { throw UsageError("--jobs must be at least 1") }
        let policyJob = try job.map { name -> Policy.Job in
            guard let policy else { throw UsageError("--job \(name) needs the policy file that defines it (--config FILE)") }
            guard let found = policy.job(named: name) else {
                throw UsageError("no job \"\(name)\" in \(policy.file ?? "the policy") (jobs: \(policy.jobs.map(\.name).joined(separator: ", ")))")
            }
            return found
        }
        let adHoc = policyJob == nil ? try adHocDatabase(policy) : nil
        let (targetName, destination) = try resolveTarget(context, policyJob: policyJob)
        var request: BackupRequest
        if let policyJob, let policy {
            if let database, database != policyJob.database {
                throw UsageError("job \(policyJob.name) backs up database \(policyJob.database), not \(database)")
            }
            request = try policy.backupRequest(for: policyJob, scratch: context.scratch)
            request.targetName = targetName
        } else {
            let (name, path) = adHoc!
            request = BackupRequest(sourcePath: path, job: Policy.manualJobName, targetName: targetName, scratch: context.scratch,
                                    level: policy?.compressionLevel ?? BlockGzipWriter.defaultLevel,
                                    blockSize: policy?.blockSize ?? BlockGzipWriter.defaultBlockSize)
            request.database = name
            if let policy { request.host = policy.host }
        }
        if let source { request.sourcePath = Context.absolute(source) }
        if let level { request.level = level }
        if let jobs { request.jobs = jobs }
        return (request, destination)
    }

    /// The database of a backup without --job: --database, or the policy's only one,
    /// or --source (the policy's database at that path, else `bos`, as in v1: an ad hoc
    /// copy of some file is not a new database of the policy).
    private func adHocDatabase(_ policy: Policy?) throws -> (name: String, path: String) {
        let databases = policy?.databases ?? []
        if let database {
            guard let found = policy?.database(named: database) else {
                throw UsageError("no database \"\(database)\" in \(policy?.file ?? "the policy") (databases: \(databases.map(\.name).joined(separator: ", ")))")
            }
            return (found.name, found.path)
        }
        if let source {
            let path = Context.absolute(source)
            return (databases.first(where: { $0.path == path })?.name ?? Policy.defaultDatabaseName, path)
        }
        guard databases.count == 1, let only = databases.first else {
            if databases.isEmpty { throw UsageError("no source database: give --source DB or a policy file with source.database") }
            throw UsageError("the policy has several databases (\(databases.map(\.name).joined(separator: ", "))): give --database NAME or --job NAME")
        }
        return (only.name, only.path)
    }

    private func resolveTarget(_ context: Context, policyJob: Policy.Job?) throws -> (String, Target) {
        guard let target else {
            if let policyJob { return (policyJob.target, try context.target(named: policyJob.target)) }
            throw UsageError("give --job NAME (from the policy file) or --source DB --target URL")
        }
        let resolved = try context.target(nameOrURL: target)
        // A job's backup stored elsewhere is no backup of that job: it would count as the job's
        // success while the job's own target got nothing, and the job's retention would weigh it
        // (keep_daily could delete that day's copy on the job's real target in its favour).
        if let policyJob, resolved.name != policyJob.target {
            throw UsageError("job \(policyJob.name) stores to target \(policyJob.target), not \(target); "
                + "for a one-off backup there, leave out --job (it is recorded as \(Policy.manualJobName))")
        }
        return resolved
    }

    static func describe(_ event: BackupProgress) -> String {
        switch event {
        case .copying(let done, let total):
            return "copying live database: \(total > 0 ? done * 100 / total : 0)% of \(total) pages"
        case .compressing(let done, let total):
            return "compressing and storing: \(total > 0 ? done * 100 / total : 0)% (\(Console.bytes(done)) of \(Console.bytes(total)))"
        case .storing:
            return "making the snapshot durable on the target…"
        }
    }

    static func printSummary(_ record: SnapshotRecord, seconds: Double, context: Context) {
        let ratio = record.bytes > 0 ? Double(record.storedBytes) * 100 / Double(record.bytes) : 0
        Console.out("snapshot \(Console.bold(record.id))  \(record.name)")
        Console.out("  job \(record.job) → target \(record.target) (\(record.targetURL))")
        Console.out("  taken \(context.local(record.takenAt)); \(Console.bytes(record.bytes)) → \(Console.bytes(record.storedBytes)) stored (\(String(format: "%.0f", ratio))%) in \(Console.seconds(seconds))")
        if let parent = record.layout.parentID {
            Console.out("  incremental: only the pages changed since \(SnapshotID.short(parent)); restores through its chain from the full \(SnapshotID.short(record.layout.chainRoot ?? "?"))")
        }
        Console.out("  sha256 \(record.sha256)")
        let tables = record.tables.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        Console.out("  rows: \(tables)")
    }
}
