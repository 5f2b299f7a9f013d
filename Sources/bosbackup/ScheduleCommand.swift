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
                let policy = try context.requirePolicy()
                let now = context.clock.now()
                let zone = policy.timeZone
                func rpo(_ jobs: [Policy.Job]) -> TimeInterval? {
                    RecoveryPointObjective.worstGap(of: jobs.map(\.cron), in: zone, from: now)
                }
                let targets = policy.targets.map { target in (target.name, rpo(policy.jobs.filter { $0.target == target.name })) }
                let overall = rpo(policy.jobs)
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
                for (name, gap) in targets { Console.out("  \(name): \(gap.map(Duration.format) ?? "no jobs")") }
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
            abstract: "Print a crontab line or a systemd service + timer that runs `bosbackup run`.",
            discussion: "`run` decides what is due, so it is started every 10 minutes; a missed start only delays a job.")
        @OptionGroup var common: CommonOptions
        @Flag(help: "A line for /etc/cron.d/bosbackup.") var crontab = false
        @Flag(help: "bosbackup.service and bosbackup.timer (Persistent=true).") var systemd = false
        @Option(help: "Path of the installed binary.") var binary = "/usr/local/bin/bosbackup"

        func run() async throws {
            try await reporting {
                guard crontab != systemd else { throw UsageError("give exactly one of --crontab or --systemd") }
                let config = common.config.map(Context.absolute) ?? ProcessInfo.processInfo.environment["BOSBACKUP_CONFIG"] ?? "/etc/bosbackup/bos.yml"
                if crontab {
                    Console.out("# /etc/cron.d/bosbackup — bosbackup decides which jobs are due (see `bosbackup schedule show`)")
                    Console.out("*/10 * * * * root \(binary) run --config \(config) >>/var/log/bosbackup.log 2>&1")
                } else {
                    Console.out("""
                        # /etc/systemd/system/bosbackup.service
                        [Unit]
                        Description=bosbackup: run due BOS backup jobs
                        After=network-online.target
                        Wants=network-online.target

                        [Service]
                        Type=oneshot
                        ExecStart=\(binary) run --config \(config)
                        Nice=10
                        IOSchedulingClass=best-effort
                        IOSchedulingPriority=7

                        # /etc/systemd/system/bosbackup.timer
                        [Unit]
                        Description=Start bosbackup run every 10 minutes (it decides what is due)

                        [Timer]
                        OnCalendar=*:0/10
                        Persistent=true
                        RandomizedDelaySec=30

                        [Install]
                        WantedBy=timers.target
                        """)
                }
                return ExitStatus.ok
            }
        }
    }
}
