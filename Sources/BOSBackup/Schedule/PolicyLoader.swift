import Foundation
import Yams

/// A mistake in the policy file, with the key path and line that hold it.
public struct PolicyError: Error, CustomStringConvertible, CategorizedError, Sendable {
    public let file: String
    public let line: Int?
    public let keyPath: String
    public let message: String

    public var description: String {
        let location = line.map { "\(file):\($0)" } ?? file
        return keyPath.isEmpty ? "\(location): \(message)" : "\(location): \(keyPath): \(message)"
    }
    public var category: ErrorCategory { .input }
}

/// Loads schedules/bos.yml (or any policy file) with Yams, checking every
/// key: unknown keys, wrong types, bad cron, bad duration, bad time zone and
/// jobs naming a target or database that does not exist are reported with key and line.
///
/// `hostname` is the machine's name, the `host` of a policy without `host:`
/// (tests inject one; the default asks the system).
public struct PolicyLoader {
    let file: String
    let hostname: String

    /// The machine's hostname as gethostname(2) gives it ("" if it cannot).
    public static func machineHostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "" }
        return String(cString: buffer)
    }

    public static func load(path: String, hostname: String = PolicyLoader.machineHostname()) throws -> Policy {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PolicyError(file: path, line: nil, keyPath: "", message: "cannot read the policy file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw PolicyError(file: path, line: nil, keyPath: "", message: "not UTF-8 text")
        }
        var policy = try PolicyLoader(file: path, hostname: hostname).parse(text, folder: (path as NSString).deletingLastPathComponent)
        policy.file = path
        return policy
    }

    public static func parse(_ text: String, file: String = "<policy>", folder: String = FileManager.default.currentDirectoryPath,
                             hostname: String = PolicyLoader.machineHostname()) throws -> Policy {
        try PolicyLoader(file: file, hostname: hostname).parse(text, folder: folder)
    }

    func fail(_ node: Node?, _ keyPath: String, _ message: String) -> PolicyError {
        PolicyError(file: file, line: node?.mark?.line, keyPath: keyPath, message: message)
    }

    func parse(_ text: String, folder: String) throws -> Policy {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else { throw fail(nil, "", "the file is empty") }
            root = node
        } catch let error as YamlError {
            throw PolicyError(file: file, line: nil, keyPath: "", message: "not valid YAML: \(String(describing: error).split(separator: "\n").first ?? "")")
        }
        let top = try mapping(root, "", allowed: ["host", "timezone", "source", "databases", "catalog", "scratch", "targets", "jobs", "drill",
                                                  "compression", "metrics", "notify", "archive", "audit", "roles"])
        let absoluteFolder = folder.hasPrefix("/") ? folder : FileManager.default.currentDirectoryPath + "/" + folder
        func resolve(_ path: String) -> String {
            path.hasPrefix("/") ? path : (absoluteFolder as NSString).appendingPathComponent(path)
        }

        var policy = Policy(host: try host(top["host"]))
        if let node = top["timezone"] {
            let name = try string(node, "timezone")
            let zone: TimeZone
            do { zone = try TimeZoneName.resolve(name) } catch let error as TimeZoneError { throw fail(node, "timezone", error.description) }
            policy.timeZone = zone
        }
        if top["source"] != nil, top["databases"] != nil {
            let source = try topKey(root, "source"), databases = try topKey(root, "databases")
            let (first, second) = source.line <= databases.line ? (source, databases) : (databases, source)
            throw fail(second.node, second.name, "cannot be used together with \(first.name): (line \(first.line)); "
                + "source: { database: PATH } is the v1 form of databases: { bos: { path: PATH } }: keep one of them")
        }
        if let node = top["source"] {
            let source = try mapping(node, "source", allowed: ["database"])
            if let db = source["database"] { policy.sourceDatabase = resolve(try string(db, "source.database")) }
        }
        if let node = top["databases"] { policy.databases = try databases(node, resolve: resolve) }
        if let node = top["catalog"] { policy.catalog = resolve(try string(node, "catalog")) }
        if let node = top["scratch"] { policy.scratch = resolve(try string(node, "scratch")) }
        if let node = top["compression"] {
            let compression = try mapping(node, "compression", allowed: ["level", "block_size"])
            if let level = compression["level"] {
                let value = try int(level, "compression.level")
                guard (1...9).contains(value) else { throw fail(level, "compression.level", "must be 1-9, got \(value)") }
                policy.compressionLevel = value
            }
            if let size = compression["block_size"] {
                let text = try string(size, "compression.block_size")
                guard let bytes = Self.parseSize(text), bytes >= 64 << 10, bytes <= 256 << 20 else {
                    throw fail(size, "compression.block_size", "must be a size between 64KiB and 256MiB, e.g. 4MiB; got \"\(text)\"")
                }
                policy.blockSize = bytes
            }
        }
        if let node = top["targets"] {
            for (name, value) in try namedEntries(node, "targets") {
                let key = "targets.\(name)"
                let target = try mapping(value, key, allowed: ["url", "encryption_key_file", "credentials_file", "object_lock",
                                                               "prune_credentials_file", "prune_profile"])
                guard let urlNode = target["url"] else { throw fail(value, key, "missing url") }
                var url = try string(urlNode, key + ".url")
                if !url.contains("://") { url = "file://" + resolve(url) }
                guard url.hasPrefix("file:///") || url.hasPrefix("s3://") else {
                    throw fail(urlNode, key + ".url", "unsupported URL \"\(url)\" (use file:///path or s3://bucket/prefix)")
                }
                var config = Policy.TargetConfig(name: name, url: url,
                                            encryptionKeyFile: try target["encryption_key_file"].map { resolve(try string($0, key + ".encryption_key_file")) },
                                            credentialsFile: try target["credentials_file"].map { resolve(try string($0, key + ".credentials_file")) })
                try cloudOnly(target, key: key, url: url)
                config.objectLock = try target["object_lock"].map { try objectLock($0, key + ".object_lock") }
                config.pruneCredentialsFile = try target["prune_credentials_file"].map { resolve(try string($0, key + ".prune_credentials_file")) }
                config.pruneProfile = try target["prune_profile"].map { try string($0, key + ".prune_profile") }
                policy.targets.append(config)
            }
        }
        if let node = top["jobs"] {
            for (name, value) in try namedEntries(node, "jobs", reserved: Policy.reservation(ofJobName:)) {
                let key = "jobs.\(name)"
                let job = try mapping(value, key, allowed: ["database", "target", "cron", "retention", "grace", "incremental"])
                let database = try jobDatabase(job["database"], of: value, key, in: policy)
                guard let targetNode = job["target"] else { throw fail(value, key, "missing target") }
                let targetName = try string(targetNode, key + ".target")
                guard policy.target(named: targetName) != nil else {
                    let known = policy.targets.map(\.name).joined(separator: ", ")
                    throw fail(targetNode, key + ".target", "unknown target \"\(targetName)\" (targets: \(known.isEmpty ? "none" : known))")
                }
                guard let cronNode = job["cron"] else { throw fail(value, key, "missing cron") }
                let cron = try cronExpression(cronNode, key + ".cron")
                var retention = Policy.Retention()
                if let retentionNode = job["retention"] {
                    let r = try mapping(retentionNode, key + ".retention", allowed: ["keep_last", "keep_daily", "keep_weekly", "keep_monthly"])
                    func count(_ field: String) throws -> Int? {
                        guard let n = r[field] else { return nil }
                        let value = try int(n, "\(key).retention.\(field)")
                        guard value >= 0 else { throw fail(n, "\(key).retention.\(field)", "must be 0 or more") }
                        return value
                    }
                    retention = .init(keepLast: try count("keep_last"), keepDaily: try count("keep_daily"),
                                      keepWeekly: try count("keep_weekly"), keepMonthly: try count("keep_monthly"))
                }
                let grace = try job["grace"].map { try duration($0, key + ".grace") } ?? 3_600
                let incremental = try job["incremental"].map { try self.incremental($0, key + ".incremental") }
                policy.jobs.append(.init(name: name, database: database, target: targetName, cron: cron, retention: retention,
                                         grace: grace, incremental: incremental))
            }
        }
        if let node = top["drill"] {
            let drill = try mapping(node, "drill", allowed: ["cron", "rto"])
            guard let cronNode = drill["cron"] else { throw fail(node, "drill", "missing cron") }
            let rto = try drill["rto"].map { try duration($0, "drill.rto") } ?? 4 * 3_600
            policy.drill = .init(cron: try cronExpression(cronNode, "drill.cron"), rto: rto)
        }
        if let node = top["metrics"] { policy.metricsTextfile = resolve(try metricsTextfile(node)) }
        if let node = top["notify"] { policy.notify = try notify(node) }
        if let node = top["archive"] { policy.archives = try archives(node, in: policy) }
        if let node = top["audit"] { policy.auditSealing = try auditSealing(node) }
        if let node = top["roles"] { policy.roles = try roles(node) }
        return policy
    }

    /// `host:` (the first folder of every object key on shared buckets), else the machine's hostname.
    private func host(_ node: Node?) throws -> String {
        let rule = "letters, digits, '-', '_' or '.', at most 64, starting with a letter or digit, no '..'"
        guard let node else {
            guard Policy.isValidName(hostname) else {
                throw fail(nil, "host", "missing, and the machine's hostname \"\(hostname)\" cannot be used as one (it must be \(rule)): "
                    + "set host: to this machine's name, e.g. host: store-0421")
            }
            return hostname
        }
        let name = try string(node, "host")
        guard Policy.isValidName(name) else {
            throw fail(node, "host", "\"\(name)\" must be \(rule) (it is the first folder of every object key on the targets)")
        }
        return name
    }

    /// `databases: { NAME: { path: PATH }, … }`, in file order. Names are folders on the
    /// targets, so two that differ only in case (one folder on a case-insensitive NAS) are refused.
    private func databases(_ node: Node, resolve: (String) -> String) throws -> [Policy.DatabaseConfig] {
        let entries = try namedEntries(node, "databases")
        guard !entries.isEmpty else {
            throw fail(node, "databases", "is empty: name at least one database, e.g. databases: { bos: { path: /var/lib/bos/bos.db } }")
        }
        var result: [Policy.DatabaseConfig] = []
        for (name, value) in entries {
            let key = "databases.\(name)"
            if let other = result.first(where: { $0.name.caseInsensitiveCompare(name) == .orderedSame }) {
                throw fail(value, key, "differs from database \"\(other.name)\" only in case; they would share one folder on a "
                    + "case-insensitive target: rename one")
            }
            let database = try mapping(value, key, allowed: ["path"])
            guard let pathNode = database["path"] else { throw fail(value, key, "missing path (the SQLite file to back up)") }
            let path = try string(pathNode, key + ".path")
            guard !path.isEmpty else { throw fail(pathNode, key + ".path", "is empty: give the SQLite file to back up") }
            result.append(.init(name: name, path: resolve(path)))
        }
        return result
    }

    /// A job's `database:`, else the only database there is (or `bos` in a policy that names none).
    private func jobDatabase(_ node: Node?, of job: Node, _ key: String, in policy: Policy) throws -> String {
        let known = policy.databases.map(\.name)
        guard let node else {
            guard known.count <= 1 else {
                throw fail(job, key, "missing database: the policy has several (\(known.joined(separator: ", "))), say which one this job backs up")
            }
            return known.first ?? Policy.defaultDatabaseName
        }
        let name = try string(node, key + ".database")
        guard known.contains(name) else {
            throw fail(node, key + ".database",
                       "unknown database \"\(name)\" (databases: \(known.isEmpty ? "none" : known.joined(separator: ", ")))")
        }
        return name
    }

    /// `incremental: { full_every: N }`: one full snapshot and up to N-1 incrementals per chain.
    private func incremental(_ node: Node, _ keyPath: String) throws -> Policy.Incremental {
        let block = try mapping(node, keyPath, allowed: ["full_every"])
        guard let everyNode = block["full_every"] else {
            throw fail(node, keyPath, "missing full_every (how many snapshots a chain holds, the full included, e.g. { full_every: 7 })")
        }
        let every = try int(everyNode, keyPath + ".full_every")
        let range = Policy.Incremental.allowedFullEvery
        guard every != 1 else {
            throw fail(everyNode, keyPath + ".full_every", "1 would make every snapshot a full one: use no incremental: block")
        }
        guard range.contains(every) else {
            throw fail(everyNode, keyPath + ".full_every", "must be \(range.lowerBound)-\(range.upperBound) (one full and up to N-1 "
                + "incremental snapshots per chain), got \(every)")
        }
        return .init(fullEvery: every)
    }

    /// The key node of a top-level entry (for its line).
    private func topKey(_ root: Node, _ name: String) throws -> (name: String, node: Node, line: Int) {
        guard case .mapping(let mapping) = root, let key = mapping.first(where: { $0.key.string == name })?.key else {
            throw fail(root, name, "missing")
        }
        return (name, key, key.mark?.line ?? 0)
    }

    /// `metrics: { textfile: PATH }`. node_exporter's textfile collector reads only
    /// `*.prom` files, so any other name would be written and never scraped.
    private func metricsTextfile(_ node: Node) throws -> String {
        let metrics = try mapping(node, "metrics", allowed: ["textfile"])
        guard let file = metrics["textfile"] else { throw fail(node, "metrics", "missing textfile (the .prom file to write)") }
        let path = try string(file, "metrics.textfile")
        let name = (path as NSString).lastPathComponent
        guard !path.hasSuffix("/"), name.hasSuffix(".prom"), name.count > ".prom".count else {
            throw fail(file, "metrics.textfile", "must name a file ending in .prom (node_exporter's textfile collector "
                + "reads only *.prom files), e.g. /var/lib/node_exporter/textfile_collector/bosbackup.prom; got \"\(path)\"")
        }
        return path
    }

    /// `archive: { bos: { targets: { nas: 1s, cloud: 10s }, retain: 7d } }`: per database,
    /// where its WAL is shipped and how often.
    private func archives(_ node: Node, in policy: Policy) throws -> [Policy.Archive] {
        try namedEntries(node, "archive").map { name, value in
            let key = "archive.\(name)"
            guard policy.database(named: name) != nil else {
                let known = policy.databases.map(\.name).joined(separator: ", ")
                throw fail(value, key, "unknown database \"\(name)\" (databases: \(known.isEmpty ? "none" : known))")
            }
            let entry = try mapping(value, key, allowed: ["targets", "retain", "base_every"])
            guard let targetsNode = entry["targets"] else { throw fail(value, key, "missing targets (e.g. targets: { nas: 1s, cloud: 10s })") }
            let targets = try namedEntries(targetsNode, key + ".targets").map { target, interval -> (String, TimeInterval) in
                guard policy.target(named: target) != nil else {
                    throw fail(interval, "\(key).targets.\(target)", "unknown target \"\(target)\" (targets: \(policy.targets.map(\.name).joined(separator: ", ")))")
                }
                let seconds = try duration(interval, "\(key).targets.\(target)")
                guard seconds >= 1, seconds <= 3_600 else {
                    throw fail(interval, "\(key).targets.\(target)", "must be 1s to 1h: how often new commits are shipped there")
                }
                return (target, seconds)
            }
            guard !targets.isEmpty else { throw fail(targetsNode, key + ".targets", "is empty: name at least one target") }
            let baseEvery = try entry["base_every"].map { try duration($0, key + ".base_every") } ?? Policy.Archive.defaultBaseEvery
            guard baseEvery >= 1 else { throw fail(entry["base_every"]!, key + ".base_every", "must be at least 1s: how often the archive starts on a new base snapshot") }
            let retain = try entry["retain"].map { try duration($0, key + ".retain") }
            if let retain, retain < baseEvery {
                throw fail(entry["retain"]!, key + ".retain", "is shorter than base_every (\(Duration.format(baseEvery))): the archive is dropped a whole generation at a time")
            }
            return Policy.Archive(database: name, targets: targets.map { .init(target: $0.0, interval: $0.1) }, retain: retain,
                                  baseEvery: baseEvery)
        }
    }

    /// Object Lock and split credentials are S3's: a folder can neither lock a file against
    /// its owner nor tell one credential from another.
    private func cloudOnly(_ target: [String: Node], key: String, url: String) throws {
        guard !url.hasPrefix("s3://") else { return }
        for name in ["object_lock", "prune_credentials_file", "prune_profile"] {
            if let node = target[name] {
                throw fail(node, "\(key).\(name)", "needs an s3:// target (a folder cannot lock files or tell credentials apart)")
            }
        }
    }

    /// `object_lock: { mode: COMPLIANCE|GOVERNANCE, days: N }`.
    private func objectLock(_ node: Node, _ keyPath: String) throws -> ObjectLock {
        let lock = try mapping(node, keyPath, allowed: ["mode", "days"])
        guard let modeNode = lock["mode"], let daysNode = lock["days"] else {
            throw fail(node, keyPath, "needs mode and days, e.g. { mode: COMPLIANCE, days: 30 }")
        }
        let text = try string(modeNode, keyPath + ".mode")
        guard let mode = ObjectLock.Mode(rawValue: text.uppercased()) else {
            throw fail(modeNode, keyPath + ".mode", "must be COMPLIANCE or GOVERNANCE, got \"\(text)\"")
        }
        let days = try int(daysNode, keyPath + ".days")
        guard (1...36_500).contains(days) else {
            throw fail(daysNode, keyPath + ".days", "must be 1 to 36500 (days each object stays locked), got \(days)")
        }
        return ObjectLock(mode: mode, days: days)
    }

    /// `notify: { command: "…", timeout: 30s }`: run by /bin/sh, so any shell text is allowed;
    /// the timeout bounds how long one failure can hold up `run`.
    private func notify(_ node: Node) throws -> Policy.Notify {
        let notify = try mapping(node, "notify", allowed: ["command", "timeout"])
        guard let commandNode = notify["command"] else { throw fail(node, "notify", "missing command (a shell command)") }
        let command = try string(commandNode, "notify.command")
        guard !command.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw fail(commandNode, "notify.command", "is empty: give a shell command, e.g. \"mail -s 'bosbackup failed' ops@example.com\"")
        }
        var result = Policy.Notify(command: command)
        if let timeoutNode = notify["timeout"] {
            let timeout = try duration(timeoutNode, "notify.timeout")
            guard timeout <= 3_600 else {
                throw fail(timeoutNode, "notify.timeout", "must be at most 1h: run waits for the command, up to this long per failure")
            }
            result.timeout = timeout
        }
        return result
    }

    // MARK: typed accessors that report key path and line

    func mapping(_ node: Node, _ keyPath: String, allowed: Set<String>) throws -> [String: Node] {
        guard case .mapping(let mapping) = node else { throw fail(node, keyPath, "expected a mapping of keys") }
        var result: [String: Node] = [:]
        for (key, value) in mapping {
            guard let name = key.string else { throw fail(key, keyPath, "keys must be plain text") }
            let path = keyPath.isEmpty ? name : "\(keyPath).\(name)"
            guard allowed.contains(name) else {
                throw fail(key, path, "unknown key (expected one of: \(allowed.sorted().joined(separator: ", ")))")
            }
            guard result[name] == nil else { throw fail(key, path, "key given twice") }
            result[name] = value
        }
        return result
    }

    /// The entries of a mapping of names; `reserved` says why a name may not be used (nil: it may).
    private func namedEntries(_ node: Node, _ keyPath: String,
                              reserved: (String) -> String? = { _ in nil }) throws -> [(String, Node)] {
        guard case .mapping(let mapping) = node else { throw fail(node, keyPath, "expected a mapping of names") }
        var seen = Set<String>()
        return try mapping.map { key, value in
            guard let name = key.string, Policy.isValidName(name) else {
                throw fail(key, keyPath, "name \"\(key.string ?? "?")\" must be letters, digits, '-', '_' or '.'")
            }
            guard seen.insert(name).inserted else { throw fail(key, "\(keyPath).\(name)", "defined twice") }
            if let owner = reserved(name) {
                throw fail(key, "\(keyPath).\(name)", "the name \"\(name)\" is reserved for \(owner); rename the job")
            }
            return (name, value)
        }
    }

    func string(_ node: Node, _ keyPath: String) throws -> String {
        guard case .scalar(let scalar) = node else { throw fail(node, keyPath, "expected a text value") }
        return scalar.string
    }

    func int(_ node: Node, _ keyPath: String) throws -> Int {
        guard case .scalar(let scalar) = node, let value = Int(scalar.string) else {
            throw fail(node, keyPath, "expected a whole number")
        }
        return value
    }

    func duration(_ node: Node, _ keyPath: String) throws -> TimeInterval {
        let text = try string(node, keyPath)
        guard let seconds = Duration.parse(text) else {
            throw fail(node, keyPath, "bad duration \"\(text)\" (use e.g. 4h, 30m, 1h30m, 2d)")
        }
        return seconds
    }

    private func cronExpression(_ node: Node, _ keyPath: String) throws -> CronExpression {
        let text = try string(node, keyPath)
        do { return try CronExpression(text) } catch let error as CronError {
            throw fail(node, keyPath, error.description)
        }
    }

    /// `4MiB`, `512KiB`, `1048576`.
    static func parseSize(_ text: String) -> Int? {
        let units = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10), ("B", 1)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            return Int(text.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)).map { $0 * factor }
        }
        return Int(text)
    }
}
