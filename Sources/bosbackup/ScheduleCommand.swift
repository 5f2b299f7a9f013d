import ArgumentParser
import BOSBackup
import Foundation

struct ScheduleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule", abstract: "Cron expressions, the policy's schedule, and how to install it.",
        subcommands: [Next.self, Show.self, Install.self])

    struct Next: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The next fire times of a cron expression.")
        @Option(help: "Five-field cron expression or @daily/@weekly/….") var cron: String
        @Option(help: "IANA time zone (default UTC).") var tz = "UTC"
        @Option(help: "Start after this ISO 8601 time (default now).") var after: String?
        @Option(name: .short, help: "How many fire times.") var n = 5
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await reporting {
                let zone = try TimeZoneName.resolve(tz)
                guard (1...1000).contains(n) else { throw UsageError("-n must be 1-1000") }
                let expression = try CronExpression(cron)
                let start = try after.map { text -> Date in
                    guard let date = ISO8601.parse(text, defaultZone: zone) else { throw UsageError("--after \(text) is not an ISO 8601 time") }
                    return date
                } ?? Date()
                let times = expression.nextTimes(after: start, count: n, in: zone).map { ISO8601.string($0, in: zone) }
                if json { Console.json(["times": times]) } else { times.forEach { Console.out($0) } }
                return ExitStatus.ok
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Each job's next fire times and the worst-case data loss (RPO) the policy gives.")
        @OptionGroup var common: CommonOptions
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await reporting {
                let context = try Context(common)
                try context.authorize(.auditor, "schedule show")
                let policy = try context.requirePolicy()
                let now = context.clock.now()
                let zone = policy.timeZone
                func rpo(_ jobs: [Policy.Job]) -> TimeInterval? {
                    RecoveryPointObjective.worstGap(of: jobs.map(\.cron), in: zone, from: now)
                }
                // The WAL archive bounds the loss on a target by its interval (the commits of one
                // interval are not shipped yet), whatever the snapshots' schedule says.
                func archived(_ target: String) -> TimeInterval? {
                    policy.archives.flatMap(\.targets).filter { $0.target == target }.map(\.interval).min()
                }
                let snapshotsOnly = policy.targets.map { target in (target.name, rpo(policy.jobs.filter { $0.target == target.name })) }
                let targets = snapshotsOnly.map { name, gap in
                    (name, [gap, archived(name)].compactMap { $0 }.min())
                }
                let overall = ([rpo(policy.jobs)] + policy.targets.map { archived($0.name) }).compactMap { $0 }.min()
                if json {
                    Console.json([
                        "timezone": zone.identifier,
                        "jobs": policy.jobs.map { ["job": $0.name, "target": $0.target, "cron": $0.cron.text,
                                                   "next": $0.cron.nextTimes(after: now, count: 3, in: zone).map { ISO8601.string($0, in: zone) }] },
                        "rpo_seconds": ["targets": Dictionary(uniqueKeysWithValues: targets.map { ($0.0, $0.1 as Any) }), "overall": overall as Any],
                        "drill": policy.drill.map { ["cron": $0.cron.text, "rto_seconds": $0.rto,
                                                     "next": $0.cron.next(after: now, in: zone).map { ISO8601.string($0, in: zone) } as Any] } as Any,
                    ])
                    return ExitStatus.ok
                }
                Console.out("policy \(policy.file ?? "") in \(zone.identifier)")
                for job in policy.jobs {
                    Console.out("  \(job.name) → \(job.target)  \"\(job.cron.text)\"  keep \(Show.describe(job.retention))")
                    for t in job.cron.nextTimes(after: now, count: 3, in: zone) { Console.out("      \(ISO8601.string(t, in: zone))") }
                }
                if let drill = policy.drill {
                    Console.out("  drill  \"\(drill.cron.text)\"  next \(drill.cron.next(after: now, in: zone).map { ISO8601.string($0, in: zone) } ?? "never"), recovery objective \(Duration.format(drill.rto))")
                }
                Console.out("worst-case data loss (RPO) if the live database is lost just before the next backup:")
                for ((name, gap), (_, snapshotGap)) in zip(targets, snapshotsOnly) {
                    let archive = archived(name).map { " (WAL archive every \(Duration.format($0)); snapshots alone: \(snapshotGap.map(Duration.format) ?? "none"))" } ?? ""
                    Console.out("  \(name): \(gap.map(Duration.format) ?? "no jobs")" + archive)
                }
                Console.out("  overall (any copy): \(overall.map(Duration.format) ?? "no jobs")")
                return ExitStatus.ok
            }
        }

        static func describe(_ r: Policy.Retention) -> String {
            let parts = [("last", r.keepLast), ("daily", r.keepDaily), ("weekly", r.keepWeekly), ("monthly", r.keepMonthly)]
                .compactMap { name, value in value.map { "\(name) \($0)" } }
            return parts.isEmpty ? "everything" : parts.joined(separator: ", ")
        }
    }

    struct Install: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write or print a crontab file, or hardened systemd units, that start `bosbackup run`.",
            discussion: """
                `run` decides what is due, so it is started every 10 minutes; a missed start only delays a job.
                --systemd gives bosbackup.service (oneshot `run`, hardened: a system user, ProtectSystem=strict
                with write access only to the policy's catalog folder, scratch, file targets and source folder),
                bosbackup.timer (every 10 minutes, Persistent=true), bosbackup-daemon.service (`daemon`, instead
                of the timer) and bosbackup-notify@.service (OnFailure=: runs /etc/bosbackup/on-failure UNIT if it
                exists). The policy (--config) is read for those folders: run this again after changing them.
                --crontab gives /etc/cron.d/bosbackup: stdout appended to the log, stderr left to cron's mail.
                Without --write the files are printed, each after a line `# <where it goes>`.
                """)
        @OptionGroup var common: CommonOptions
        @Flag(help: "A file for /etc/cron.d/ (named bosbackup).") var crontab = false
        @Flag(help: "bosbackup.service, bosbackup.timer, bosbackup-daemon.service and bosbackup-notify@.service.") var systemd = false
        @Option(help: ArgumentHelp("Write the files into this folder (e.g. /etc/systemd/system, /etc/cron.d) instead of printing them.", valueName: "dir"))
        var write: String?
        @Option(help: "Path of the installed binary (default: the binary running this command).") var binary: String?
        @Option(help: "User the jobs run as (create it first: the .deb does; see README).") var user = "bosbackup"
        @Option(help: "Group the jobs run as (default: the user's name).") var group: String?
        @Option(help: "systemd: the longest a run may take (TimeoutStartSec=).") var timeout = "6h"
        @Option(help: "crontab: the file stdout is appended to.") var log = "/var/log/bosbackup.log"
        @Flag(help: "crontab: keep no log (stdout discarded); cron mails stderr only: errors and a line when a run fails.") var noLog = false
        @Option(help: ArgumentHelp("The policy path the files name, when it is not --config's (packaging: read one file, name another).", visibility: .hidden))
        var unitConfig: String?

        func run() async throws {
            try await reporting {
                guard crontab != systemd else { throw UsageError("give exactly one of --crontab or --systemd") }
                // Writing units or a crontab changes what runs as whom: an admin's job. Printing them shows nothing secret.
                if let write { try Context(common).authorize(.admin, "schedule install --write \(write)") }
                let config = common.config.map(Context.absolute) ?? ProcessInfo.processInfo.environment["BOSBACKUP_CONFIG"].map(Context.absolute)
                    ?? "/etc/bosbackup/bos.yml"
                let named = unitConfig.map(Context.absolute) ?? config
                let installed = binary.map(Context.absolute) ?? Install.runningBinary()
                for name in [user, group ?? user] where !Install.isValidAccountName(name) {
                    throw UsageError("\"\(name)\" is not a valid user or group name")
                }
                var arguments = ["run", "--config", named]
                if let catalog = common.catalog { arguments += ["--catalog", Context.absolute(catalog)] }
                if let scratch = common.scratch { arguments += ["--scratch", Context.absolute(scratch)] }
                for text in [installed, log] + arguments where text.contains("\n") || text.contains("\0") {
                    throw UsageError("a path with a newline cannot go into a crontab line or a unit file: \(text.debugDescription)")
                }
                let files: [(folder: String, name: String, text: String)]
                if crontab {
                    files = [("/etc/cron.d", "bosbackup", cronFile(binary: installed, arguments: arguments))]
                } else {
                    var options = common
                    options.config = config
                    let units = try SystemdUnits(context: try Context(options), binary: installed, arguments: arguments,
                                                 user: user, group: group ?? user, timeout: timeout, policyPath: named)
                    units.warnings.forEach { Console.note("bosbackup: note: \($0)") }
                    files = units.files.map { ("/etc/systemd/system", $0.name, $0.text) }
                }
                guard let write else {
                    Console.out(files.map { "# \($0.folder)/\($0.name)\n\($0.text)" }.joined(separator: "\n"))
                    return ExitStatus.ok
                }
                let folder = Context.absolute(write)
                var isFolder: ObjCBool = false
                guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
                    throw UsageError("--write \(write): no such folder")
                }
                for file in files {
                    let path = (folder as NSString).appendingPathComponent(file.name)
                    try Install.writeFile(path, file.text)
                    Console.out("wrote \(path)")
                }
                if systemd {
                    Console.out("next: systemctl daemon-reload && systemctl enable --now bosbackup.timer   (or bosbackup-daemon.service instead of the timer)")
                }
                return ExitStatus.ok
            }
        }

        /// /etc/cron.d/bosbackup: stdout to the log, stderr not redirected, so cron mails
        /// bosbackup's diagnostics; a failed run (exit 1: details are in the log) adds a
        /// line on stderr, so it is mailed too.
        func cronFile(binary: String, arguments: [String]) -> String {
            // --quiet: nothing into the log when nothing was due (a line every 10 minutes otherwise).
            let command = ([binary] + arguments + ["--quiet"]).map(Install.shellWord).joined(separator: " ")
            let logTo = noLog ? ">/dev/null" : ">>" + Install.shellWord(log)
            // `$?` after `||` is the run's exit status: 1 a job failed (details in the log), 2 usage
            // or policy, 3 another run holds the lock.
            let line = "*/10 * * * * \(user) \(command) \(logTo) || echo \"bosbackup run failed with exit $?\" >&2"
            return """
                # /etc/cron.d/bosbackup — bosbackup decides which jobs are due (see `bosbackup schedule show`).
                # Runs as \(user) (the .deb creates that user; else: useradd --system --user-group --home-dir /var/lib/bosbackup \(user)).
                # stdout goes to \(noLog ? "nowhere (--no-log)" : "the log (rotate it: packaging/logrotate/bosbackup)"); stderr is mailed by cron (MAILTO).
                SHELL=/bin/sh
                PATH=/usr/sbin:/usr/bin:/sbin:/bin
                \(line.replacingOccurrences(of: "%", with: "\\%"))

                """
        }

        /// The binary running now, by /proc/self/exe (symlinks resolved), else argv[0].
        static func runningBinary() -> String {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
            if count > 0 { return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) }
            return Context.absolute(CommandLine.arguments[0])
        }

        static func isValidAccountName(_ name: String) -> Bool {
            let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
            return !name.isEmpty && name.count <= 32 && name.first != "-" && name.unicodeScalars.allSatisfy { allowed.contains($0) }
        }

        /// One word for /bin/sh: as is when it is plain, else in single quotes.
        static func shellWord(_ word: String) -> String {
            let plain = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:,@")
            if !word.isEmpty && word.unicodeScalars.allSatisfy({ plain.contains($0) }) { return word }
            return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
        }

        /// Temporary name beside it, then rename: a unit is never seen half written.
        static func writeFile(_ path: String, _ text: String) throws {
            let temporary = path + ".tmp-\(getpid())"
            guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: 0o644]) else {
                throw UsageError("cannot write \(temporary)")
            }
            guard rename(temporary, path) == 0 else {
                let reason = String(cString: strerror(errno))
                unlink(temporary)
                throw UsageError("cannot write \(path): \(reason)")
            }
        }
    }
}

/// The systemd units for a policy: which folders `run` writes is read from the policy
/// (catalog folder, scratch, file targets, source database folder), so ProtectSystem=strict
/// leaves exactly those writable.
struct SystemdUnits {
    var files: [(name: String, text: String)] = []
    var warnings: [String] = []

    init(context: Context, binary: String, arguments: [String], user: String, group: String, timeout: String, policyPath: String) throws {
        let policy = try context.requirePolicy()
        guard let catalog = context.catalogPath else { throw UsageError("the policy names no catalog: add `catalog:` or give --catalog") }
        guard Duration.parse(timeout) != nil else { throw UsageError("--timeout \(timeout) is not a duration (e.g. 6h, 90m)") }
        guard binary.hasPrefix("/") else { throw UsageError("--binary must be an absolute path") }

        // Folders `run` writes into, each with why.
        var writable: [(path: String, why: String)] = [((catalog as NSString).deletingLastPathComponent, "catalog folder (catalog, its lock, drills/)"),
                                                     (context.scratch, "scratch")]
        var mounts: [String] = []
        for target in policy.targets {
            if case .folder(let path) = try TargetLocation(url: target.url) {
                writable.append((path, "target \(target.name)"))
                mounts.append(path)
            }
        }
        if let metrics = policy.metricsTextfile {
            writable.append(((metrics as NSString).deletingLastPathComponent, "metrics textfile folder (written after every run)"))
        }
        for database in policy.databases {
            // SQLite's readers of a WAL database write its -shm, and a hot journal is rolled back in place.
            writable.append(((database.path as NSString).deletingLastPathComponent,
                             "database \(database.name)'s folder (SQLite writes -shm / rolls back a hot journal)"))
        }
        var lines: [String] = []
        var seen: [String] = []
        for (path, why) in writable {
            let clean = SystemdUnits.normalized(path)
            if SystemdUnits.isUnderTemporaryFolder(clean) {
                if why == "scratch" {
                    lines.append("# scratch \(clean): private to the service (PrivateTmp=yes), removed when it stops")
                } else {
                    warnings.append("\(why) \(clean) is under /tmp or /var/tmp: the service has a private /tmp (PrivateTmp=yes) and would not see it; choose a folder elsewhere")
                }
                continue
            }
            if let holder = seen.first(where: { clean == $0 || $0 == "/" || clean.hasPrefix($0 + "/") }) {
                lines.append("# \(why) \(clean): inside \(holder)")
                continue
            }
            seen.append(clean)
            lines.append("# \(why)")
            lines.append("ReadWritePaths=\(SystemdUnits.quoted(clean))")
        }
        let hardening = ["# Hardening: `systemd-analyze security bosbackup.service` rates it (lower is safer).",
                         "ProtectSystem=strict"] + lines + SystemdUnits.hardening
        // --quiet: the journal gets what was done and what failed, not "nothing due" every 10 minutes.
        let exec = ([binary] + arguments + ["--quiet"]).map(SystemdUnits.quoted).joined(separator: " ")
        // %i, systemd's specifier for the failed unit, must stay unescaped.
        let notify = (([binary, "notify", "--event", "unit-failed", "--unit"]).map(SystemdUnits.quoted) + ["%i"]
            + arguments.dropFirst().map(SystemdUnits.quoted)).joined(separator: " ")
        let daemon = ([binary, "daemon"] + arguments.dropFirst()).map(SystemdUnits.quoted).joined(separator: " ")
        let requires = mounts.isEmpty ? [] : ["RequiresMountsFor=" + mounts.map(SystemdUnits.quoted).joined(separator: " ")]
        let made = ["# Made by `bosbackup schedule install --systemd` from \(policyPath);",
                    "# run it again after changing the policy's folders."]
        let account = ["User=\(user)", "Group=\(group)",
                       "# S3 credentials (AWS_ACCESS_KEY_ID=…, AWS_SECRET_ACCESS_KEY=…): root-only file, read by systemd",
                       "EnvironmentFile=-/etc/bosbackup/env",
                       "UMask=0077", "Nice=10", "IOSchedulingClass=best-effort", "IOSchedulingPriority=7"]

        files.append(("bosbackup.service", (made + [
            "[Unit]",
            "Description=bosbackup: run due BOS backup jobs",
            "Documentation=man:bosbackup(1)",
            "After=network-online.target",
            "Wants=network-online.target",
        ] + requires + [
            "OnFailure=bosbackup-notify@%n.service",
            "",
            "[Service]",
            "Type=oneshot",
            "ExecStart=\(exec)",
            "# exit 3: another run holds the lock (a long backup, or an operator's); the next start retries",
            "SuccessExitStatus=3",
            "TimeoutStartSec=\(timeout)",
        ] + account + hardening).joined(separator: "\n") + "\n"))

        files.append(("bosbackup.timer", [
            "# Made by `bosbackup schedule install --systemd`.",
            "[Unit]",
            "Description=Start bosbackup run every 10 minutes (it decides what is due)",
            "Documentation=man:bosbackup(1)",
            "",
            "[Timer]",
            "OnCalendar=*:0/10",
            "# a start missed while the machine was off happens at boot",
            "Persistent=true",
            "RandomizedDelaySec=30",
            "Unit=bosbackup.service",
            "",
            "[Install]",
            "WantedBy=timers.target",
        ].joined(separator: "\n") + "\n"))

        files.append(("bosbackup-daemon.service", (made + [
            "# Instead of bosbackup.timer: one long-running process that sleeps until the next fire time.",
            "[Unit]",
            "Description=bosbackup daemon: run the BOS backup policy",
            "Documentation=man:bosbackup(1)",
            "After=network-online.target",
            "Wants=network-online.target",
        ] + requires + [
            "Conflicts=bosbackup.timer",
            "OnFailure=bosbackup-notify@%n.service",
            "",
            "[Service]",
            "Type=exec",
            "ExecStart=\(daemon)",
            "Restart=on-failure",
            "RestartSec=5min",
            "# SIGTERM abandons a snapshot in progress (its upload removed, nothing cataloged)",
            "TimeoutStopSec=2min",
        ] + account + hardening + [
            "",
            "[Install]",
            "WantedBy=multi-user.target",
        ]).joined(separator: "\n") + "\n"))

        files.append(("bosbackup-notify@.service", ([
            "# Made by `bosbackup schedule install --systemd`: started by OnFailure= of bosbackup.service",
            "# and bosbackup-daemon.service. It runs the policy's notify.command with the failure as JSON on",
            "# stdin (as run does after a failed job); without a notify.command the failure is logged here.",
            "[Unit]",
            "Description=bosbackup: report that %i failed",
            "Documentation=man:bosbackup(1)",
            "",
            "[Service]",
            "Type=oneshot",
            "ExecStart=\(notify)",
        ] + account).joined(separator: "\n") + "\n"))
    }

    static let hardening = [
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "PrivateIPC=yes",
        "PrivateMounts=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
        "RestrictSUIDSGID=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes",
        "RemoveIPC=yes",
        "KeyringMode=private",
        "DevicePolicy=closed",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged @resources",
        "# libdispatch sets its threads' priorities (a run's system calls: SystemdUnitTests)",
        "SystemCallFilter=setpriority",
        "SystemCallErrorNumber=EPERM",
    ]

    /// A word for a unit file: `%` and `$` escaped, quoted when it has blanks, quotes or backslashes.
    static func quoted(_ word: String) -> String {
        let escaped = word.replacingOccurrences(of: "%", with: "%%").replacingOccurrences(of: "$", with: "$$")
        guard escaped.isEmpty || escaped.contains(where: { " \t\"'\\;".contains($0) }) else { return escaped }
        return "\"" + escaped.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    static func normalized(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") where part != "." {
            if part == ".." { _ = parts.popLast() } else { parts.append(part) }
        }
        return "/" + parts.joined(separator: "/")
    }

    static func isUnderTemporaryFolder(_ path: String) -> Bool {
        ["/tmp", "/var/tmp"].contains { path == $0 || path.hasPrefix($0 + "/") }
    }
}
