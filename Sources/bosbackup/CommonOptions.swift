import ArgumentParser
import BOSBackup
import Foundation

/// Options every command takes (DESIGN.md "CLI contract").
struct CommonOptions: ParsableArguments {
    @Option(help: "Policy file (default: $BOSBACKUP_CONFIG).")
    var config: String?

    @Option(help: "Catalog database (overrides the policy's).")
    var catalog: String?

    @Option(help: "Scratch folder for restores and temporary copies (overrides the policy's).")
    var scratch: String?

    @Option(help: "Pretend the time is this ISO 8601 instant (tests and simulations).")
    var now: String?
}

/// `--database NAME`: where a policy backs up several databases, which one.
struct DatabaseOption: ParsableArguments {
    @Option(help: "Only this database's snapshots (a name from the policy's databases:).")
    var database: String?
}

/// What a command needs, resolved once from flags, environment and policy.
struct Context {
    let policy: Policy?
    let clock: Clock
    let catalogPath: String?
    let scratch: String
    let environment: [String: String]

    init(_ options: CommonOptions, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        self.environment = environment
        let configPath = options.config ?? environment["BOSBACKUP_CONFIG"]
        policy = try configPath.map { try PolicyLoader.load(path: $0) }
        if let text = options.now {
            guard let date = ISO8601.parse(text, defaultZone: policy?.timeZone ?? TimeZone(identifier: "UTC")!) else {
                throw UsageError("--now \(text) is not an ISO 8601 time (e.g. 2026-11-29T00:00:00+08:00)")
            }
            clock = FixedClock(date)
        } else {
            clock = SystemClock()
        }
        catalogPath = options.catalog.map(Context.absolute) ?? policy?.catalog
        scratch = options.scratch.map(Context.absolute) ?? policy?.scratch
            ?? catalogPath.map { (($0 as NSString).deletingLastPathComponent as NSString).appendingPathComponent("scratch") }
            ?? NSTemporaryDirectory() + "bosbackup"
    }

    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

    var timeZone: TimeZone { policy?.timeZone ?? TimeZone.current }

    /// The policy file, required by scheduler commands.
    func requirePolicy() throws -> Policy {
        guard let policy else { throw UsageError("this command needs a policy file: --config FILE or BOSBACKUP_CONFIG") }
        return policy
    }

    /// Takes the one-run-at-a-time lock that sits beside the catalog.
    func lock() throws -> RunLock {
        guard let catalogPath else { throw UsageError("no catalog: give --catalog FILE or --config FILE") }
        return try RunLock(path: RunLock.path(forCatalog: catalogPath))
    }

    /// One archiver per catalog (`archive`, or the daemon's): two would ship the same commits twice.
    func archiveLock() throws -> RunLock {
        guard let catalogPath else { throw UsageError("no catalog: give --catalog FILE or --config FILE") }
        return try RunLock(path: catalogPath + ".archive.lock", clock: clock)
    }

    func scheduledRun(_ catalog: Catalog) throws -> ScheduledRun {
        ScheduledRun(policy: try requirePolicy(), catalog: catalog, clock: clock, scratch: scratch) { name in
            try self.target(named: name)
        }
    }

    /// A dry run opens an existing catalog to read only (an auditor may ask), and creates
    /// a missing one as any first run would.
    var catalogExists: Bool { catalogPath.map(DurableFile.exists) ?? false }

    /// The catalog, created if missing; `readOnly` for commands that only look
    /// (status, snapshots, schedule show): those never create or change it.
    func openCatalog(readOnly: Bool = false) throws -> Catalog {
        guard let catalogPath else { throw UsageError("no catalog: give --catalog FILE or --config FILE (or set BOSBACKUP_CONFIG)") }
        guard readOnly else {
            let catalog = try Catalog(path: catalogPath, clock: clock)
            shareFiles()
            return catalog
        }
        do {
            return try Catalog(readingAt: catalogPath, clock: clock)
        } catch CatalogError.olderSchema where access(catalogPath, W_OK) == 0 {
            // Just upgraded bosbackup: whoever may write the catalog migrates it, as any command would.
            return try Catalog(path: catalogPath, clock: clock)
        }
    }

    /// The target a snapshot lives on: by its name in the policy, else the URL the catalog recorded.
    func target(for snapshot: SnapshotRecord) throws -> Target { try target(for: snapshot, role: .write) }
    func target(named name: String) throws -> Target { try target(named: name, role: .write) }

    /// The same, opened with the credentials of `role` (`.prune` for deletions).
    func target(for snapshot: SnapshotRecord, role: CredentialRole) throws -> Target {
        if let configured = policy?.target(named: snapshot.target) { return try open(configured, role: role) }
        return try open(url: snapshot.targetURL, role: role).target
    }

    func target(named name: String, role: CredentialRole) throws -> Target {
        guard let configured = policy?.target(named: name) else {
            let known = policy?.targets.map(\.name).joined(separator: ", ") ?? "none (no policy file)"
            throw UsageError("unknown target \"\(name)\" (targets: \(known))")
        }
        return try open(configured, role: role)
    }

    /// A target given on the command line: a policy target's name, or a URL (`file:///…`,
    /// `s3://…`, or an absolute path).
    func target(nameOrURL given: String) throws -> (name: String, target: Target) {
        guard given.contains("://") || given.hasPrefix("/") else { return (given, try target(named: given)) }
        return try open(url: given.hasPrefix("/") ? "file://" + given : given)
    }

    /// A URL opened as the policy target whose location holds it, however it is
    /// spelled (see `TargetLocation`): with that target's encryption key and
    /// credentials, so no spelling stores an encrypted target's data in the
    /// clear. The policy target itself goes by its name; a place inside it by its URL.
    func open(url: String, role: CredentialRole = .write) throws -> (name: String, target: Target) {
        let location = try TargetLocation(url: url)
        let holders = try (policy?.targets ?? []).map { ($0, try TargetLocation(url: $0.url)) }.filter { $0.1.contains(location) }
        guard let (configured, holder) = holders.max(by: { $0.1.depth < $1.1.depth }) else {
            return (url, try TargetFactory.open(url: url, environment: environment))
        }
        // A view of the bucket's past (`as_of=`) is not the policy target itself: it opens by its URL.
        if holder == location, (try? S3Location(parsing: url))?.asOf == nil { return (configured.name, try open(configured, role: role)) }
        var inside = configured
        inside.url = url
        return (url, try open(inside, role: role))
    }

    func open(_ target: Policy.TargetConfig, role: CredentialRole = .write) throws -> Target {
        try TargetFactory.open(target, role: role, environment: environment)
    }

    /// The database `--database` names (checked against the policy), else the
    /// policy's database at `live`'s path, else nil: every database.
    func database(_ option: DatabaseOption, live: String? = nil) throws -> String? {
        let databases = policy?.databases ?? []
        if let name = option.database {
            guard databases.isEmpty || databases.contains(where: { $0.name == name }) else {
                throw UsageError("no database \"\(name)\" in \(policy?.file ?? "the policy") (databases: \(databases.map(\.name).joined(separator: ", ")))")
            }
            return name
        }
        guard let live else { return nil }
        return databases.first { $0.path == Context.absolute(live) }?.name
    }

    /// Snapshots selected by `--snapshot ID` or `--latest N` (of one database, when given).
    func selectSnapshots(_ catalog: Catalog, id: String?, latest: Int?, database: String? = nil) throws -> [SnapshotRecord] {
        switch (id, latest) {
        case (let id?, nil): return [try catalog.snapshot(id)]
        case (nil, let n?):
            guard n > 0 else { throw UsageError("--latest must be at least 1") }
            let found = try catalog.latest(n, database: database)
            guard !found.isEmpty else { throw UsageError("the catalog has no snapshots yet") }
            return found
        default: throw UsageError("give exactly one of --snapshot ID or --latest N")
        }
    }

    func local(_ date: Date) -> String { ISO8601.string(date, in: timeZone) }

    /// A verifier with this command's scratch and clock, reporting to `progress`.
    func verifier(_ catalog: Catalog, progress: ProgressLine? = nil) -> SnapshotVerifier {
        var verifier = SnapshotVerifier(catalog: catalog, clock: clock, scratch: scratch)
        verifier.progress = progress?.handler
        return verifier
    }
}
