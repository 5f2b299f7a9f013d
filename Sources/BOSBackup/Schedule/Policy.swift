import Foundation

/// The backup policy (schedules/bos.yml) as typed values.
public struct Policy: Sendable {
    public struct TargetConfig: Equatable, Sendable {
        public var name: String
        public var url: String
        public var encryptionKeyFile: String?
        /// The credentials everything but pruning uses (backup, archive, verify, restore…):
        /// in the split design they may write and extend locks, never delete.
        public var credentialsFile: String?
        /// `object_lock: { mode, days }` (S3 targets only): every object written is locked.
        public var objectLock: ObjectLock? = nil
        /// `prune_credentials_file` / `prune_profile`: what `prune` (and retention after a run)
        /// deletes with; without them, pruning uses the writer's credentials.
        public var pruneCredentialsFile: String? = nil
        public var pruneProfile: String? = nil
        /// Whether each request costs (an S3 bucket): the archive then sends it at most one
        /// segment per interval. A folder is sent one whenever a commit would otherwise wait
        /// longer than the interval.
        public var chargesPerRequest: Bool { !TargetFactory.isFolder(url: url) }

        public var hasPruneCredentials: Bool { pruneCredentialsFile != nil || pruneProfile != nil }
    }

    public struct Retention: Equatable, Sendable {
        public var keepLast: Int?
        public var keepDaily: Int?
        public var keepWeekly: Int?
        public var keepMonthly: Int?
        public init(keepLast: Int? = nil, keepDaily: Int? = nil, keepWeekly: Int? = nil, keepMonthly: Int? = nil) {
            self.keepLast = keepLast; self.keepDaily = keepDaily; self.keepWeekly = keepWeekly; self.keepMonthly = keepMonthly
        }
        public var isEmpty: Bool { keepLast == nil && keepDaily == nil && keepWeekly == nil && keepMonthly == nil }
    }

    /// One database the policy backs up (`databases.NAME.path`, or v1's `source.database`, named `bos`).
    public struct DatabaseConfig: Equatable, Sendable {
        /// The second folder of every object key on a target (`<host>/<database>/…`).
        public var name: String
        /// Absolute (relative paths in the file resolve against its folder).
        public var path: String
        public init(name: String, path: String) {
            self.name = name
            self.path = path
        }
    }

    /// `incremental: { full_every: N }`: a chain of one full snapshot and up to N-1 incrementals.
    public struct Incremental: Equatable, Sendable {
        /// The most links a chain may have, the full included (2...1000).
        public var fullEvery: Int
        public static let allowedFullEvery = 2...1000
        public init(fullEvery: Int) { self.fullEvery = fullEvery }
    }

    public struct Job: Sendable {
        public var name: String
        public var target: String
        public var cron: CronExpression
        public var retention: Retention
        /// How late a job may be before `status` calls it overdue.
        public var grace: TimeInterval
        /// The name of the database this job backs up (one of `Policy.databases`, resolved at load time;
        /// `Policy.defaultDatabaseName` for a job of a policy that names no database at all).
        public var database: String
        /// nil: every snapshot of this job is a full one.
        public var incremental: Incremental?
    }

    public struct Drill: Sendable {
        public var cron: CronExpression
        public var rto: TimeInterval
    }

    /// The command told about every failure `run` (or the daemon) meets, and how long it may take.
    public struct Notify: Sendable {
        public var command: String
        public var timeout: TimeInterval
        public static let defaultTimeout: TimeInterval = 30
        public init(command: String, timeout: TimeInterval = Notify.defaultTimeout) {
            self.command = command
            self.timeout = timeout
        }
    }

    /// Continuous WAL archiving of one database (`archive: { bos: { targets: { nas: 1s }, retain: 7d } }`).
    public struct Archive: Sendable {
        public struct Destination: Sendable, Equatable {
            public var target: String
            /// How often new commits are shipped there.
            public var interval: TimeInterval
        }
        public var database: String
        public var targets: [Destination]
        /// How long the archive is kept (nil: for ever): a generation goes when the
        /// newest time it covers is older than this.
        public var retain: TimeInterval?
        /// How often the archiver starts a new generation on fresh base snapshots
        /// (incremental): retention drops whole generations, and a point-in-time
        /// restore never replays more than this much archive.
        public var baseEvery: TimeInterval = Archive.defaultBaseEvery
        public static let defaultBaseEvery: TimeInterval = 86_400
    }

    public var file: String?
    public var timeZone: TimeZone
    /// `host:`, else the machine's hostname: the first folder of every object key on a target.
    public var host: String
    /// `databases:` in file order (v1's `source: { database: PATH }` is one database named `bos`).
    public var databases: [DatabaseConfig]
    public var catalog: String?
    public var scratch: String?
    public var compressionLevel: Int
    public var blockSize: Int
    public var targets: [TargetConfig]
    public var jobs: [Job]
    public var drill: Drill?
    /// Where `run` and the daemon write the Prometheus textfile after every pass (`metrics.textfile`).
    public var metricsTextfile: String?
    public var notify: Notify?
    public var archives: [Archive] = []
    /// When the audit trail's head is sealed onto the targets (`audit:`).
    public var auditSealing = AuditSealing()
    /// Who may do what (`roles:`); nil: no roles, whoever may run bosbackup may do anything (v1).
    public var roles: RolePolicy?
    public func archive(of database: String) -> Archive? { archives.first { $0.database == database } }

    public init(timeZone: TimeZone = TimeZone(identifier: "UTC")!, host: String = PolicyLoader.machineHostname()) {
        self.timeZone = timeZone
        self.host = host
        databases = []
        compressionLevel = BlockGzipWriter.defaultLevel
        blockSize = BlockGzipWriter.defaultBlockSize
        targets = []
        jobs = []
    }

    public func target(named name: String) -> TargetConfig? { targets.first { $0.name == name } }
    public func job(named name: String) -> Job? { jobs.first { $0.name == name } }
    public func database(named name: String) -> DatabaseConfig? { databases.first { $0.name == name } }

    /// The name v1's `source: { database: PATH }` gives its database, and the database of
    /// jobs in a policy that names none (their source then comes from `backup --source`).
    public static let defaultDatabaseName = "bos"

    /// v1's single source: the path of the only database; nil when the policy has none or several.
    /// Setting it replaces the databases with one named `bos` (nil: none).
    public var sourceDatabase: String? {
        get { databases.count == 1 ? databases[0].path : nil }
        set { databases = newValue.map { [DatabaseConfig(name: Self.defaultDatabaseName, path: $0)] } ?? [] }
    }

    /// The job name of ad hoc backups (`backup --source … --target …` without `--job`).
    public static let manualJobName = "manual"
    /// The job name of the base snapshots WAL archive generations start from.
    public static let archiveJobName = "archive"

    /// Run names bosbackup records for itself: a policy job of the same name would
    /// share their runs (and so their due-ness and status). Compared ignoring case,
    /// as snapshot folders on a case-insensitive NAS share would be.
    public static let reservedJobNames: [String: String] = [
        DrillJob.runName: "the restore drill's runs", manualJobName: "ad hoc backups (backup without --job)",
        archiveJobName: "the base snapshots of the WAL archive",
    ]

    public static func reservation(ofJobName name: String) -> String? {
        reservedJobNames.first { $0.key.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    /// Names usable as folder names on a target and in snapshot names.
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, CharacterSet.alphanumerics.contains(first), name.count <= 64 else { return false }
        let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
        return name.unicodeScalars.allSatisfy { allowed.contains($0) } && !name.contains("..")
    }
}

/// Parses durations like `4h`, `30m`, `1h30m`, `2d`, `90s`.
public enum Duration {
    public static func parse(_ text: String) -> TimeInterval? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800]
        var total = 0.0
        var number = ""
        var sawUnit = false
        for ch in text.trimmingCharacters(in: .whitespaces) {
            if ch.isNumber || ch == "." { number.append(ch); continue }
            guard let unit = units[ch], let value = Double(number) else { return nil }
            total += value * unit
            number = ""
            sawUnit = true
        }
        guard number.isEmpty, sawUnit, total > 0 else { return nil }
        return total
    }

    /// `4h`, `1h30m`, `2d3h`, `45s`: the short form people write.
    public static func format(_ seconds: TimeInterval) -> String {
        var rest = Int(seconds.rounded())
        if rest == 0 { return "0s" }
        var parts: [String] = []
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] where rest >= size {
            parts.append("\(rest / size)\(unit)")
            rest %= size
        }
        return parts.joined()
    }
}

extension Policy.Job {
    public init(name: String, database: String = Policy.defaultDatabaseName, target: String, cron: CronExpression,
                retention: Policy.Retention = .init(), grace: TimeInterval = 3_600, incremental: Policy.Incremental? = nil) {
        self.name = name
        self.database = database
        self.target = target
        self.cron = cron
        self.retention = retention
        self.grace = grace
        self.incremental = incremental
    }
}
