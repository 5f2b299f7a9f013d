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

    func scheduledRun(_ catalog: Catalog) throws -> ScheduledRun {
        ScheduledRun(policy: try requirePolicy(), catalog: catalog, clock: clock, scratch: scratch) { name in
            try self.target(named: name)
        }
    }

    func openCatalog() throws -> Catalog {
        guard let catalogPath else { throw UsageError("no catalog: give --catalog FILE or --config FILE (or set BOSBACKUP_CONFIG)") }
        return try Catalog(path: catalogPath, clock: clock)
    }

    /// The target a snapshot lives on: by its name in the policy, else the URL the catalog recorded.
    func target(for snapshot: SnapshotRecord) throws -> Target {
        if let configured = policy?.target(named: snapshot.target) { return try open(configured) }
        return try TargetFactory.open(url: snapshot.targetURL, environment: environment)
    }

    func target(named name: String) throws -> Target {
        guard let configured = policy?.target(named: name) else {
            let known = policy?.targets.map(\.name).joined(separator: ", ") ?? "none (no policy file)"
            throw UsageError("unknown target \"\(name)\" (targets: \(known))")
        }
        return try open(configured)
    }

    /// A target given on the command line: a policy target's name, or a URL (`file:///…`,
    /// `s3://…`, or an absolute path). A URL that belongs to a policy target is opened as
    /// that target — with its encryption key and credentials — and goes by its name, so
    /// snapshots stored or rebuilt through it are the ones the policy knows.
    func target(nameOrURL given: String) throws -> (name: String, target: Target) {
        guard given.contains("://") || given.hasPrefix("/") else { return (given, try target(named: given)) }
        let url = given.hasPrefix("/") ? "file://" + given : given
        if let configured = policy?.targets.first(where: { $0.url == url }) { return (configured.name, try open(configured)) }
        return (url, try TargetFactory.open(url: url, environment: environment))
    }

    func open(_ target: Policy.TargetConfig) throws -> Target {
        try TargetFactory.open(target, environment: environment)
    }

    /// Snapshots selected by `--snapshot ID` or `--latest N`.
    func selectSnapshots(_ catalog: Catalog, id: String?, latest: Int?) throws -> [SnapshotRecord] {
        switch (id, latest) {
        case (let id?, nil): return [try catalog.snapshot(id)]
        case (nil, let n?):
            guard n > 0 else { throw UsageError("--latest must be at least 1") }
            let found = try catalog.latest(n)
            guard !found.isEmpty else { throw UsageError("the catalog has no snapshots yet") }
            return found
        default: throw UsageError("give exactly one of --snapshot ID or --latest N")
        }
    }

    func local(_ date: Date) -> String { ISO8601.string(date, in: timeZone) }
}
