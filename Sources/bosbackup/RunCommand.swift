import ArgumentParser
import BOSBackup
import Foundation

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "The cron entry point: run every due job of the policy, then apply retention.",
        discussion: """
            A job is due when its latest fire time at or before now has no successful
            run; missed fires coalesce into one catch-up run, and a job that never ran
            is due at once. One run at a time: a second concurrent run exits 3 at once.
            Exits 1 if any job failed, or if a deletion failed (a line on stderr after
            all jobs ran names target and snapshot; the snapshot stays marked for
            deletion and every later run tries again).
            After every run (one that found the lock busy included) the policy's
            metrics.textfile is rewritten; after each failed job, damaged source or
            failed drill the policy's notify.command is run with the failure as JSON.
            """)

    @OptionGroup var common: CommonOptions
    @Flag(help: "Show the decisions only; change nothing.") var dryRun = false
    @Flag(help: "Print the result as JSON.") var json = false
    @Flag(help: "Print only what was done and what failed, one line each with its time (for cron's log and journald); nothing when nothing was due.")
    var quiet = false

    func run() async throws {
        try await reporting {
            if quiet && (json || dryRun) { throw UsageError("--quiet goes with neither --json nor --dry-run") }
            do {
                return try await runPolicy()
            } catch let error where json {
                // One JSON document whatever happens: whoever parses it learns why no job ran.
                Console.json(["error": "\(error)", "exit_code": Int(ExitStatus.code(for: error)), "jobs": [Any]()])
                throw error
            }
        }
    }

    private func runPolicy() async throws -> Int32 {
        let context = try Context(common)
        try context.authorize(dryRun ? .auditor : .operator, dryRun ? "run --dry-run" : "run")
        let output = RunOutput(style: quiet ? .quiet : .report, context: context)
        do {
            return try await runPolicy(context, output: output)
        } catch let error where !dryRun && !(error is LockBusyError) {
            // No job could run (a damaged catalog, no source.database): the most urgent failure of all.
            context.notify([NotifyEvent(kind: .runFailed, error: "\(error)", exitCode: ExitStatus.code(for: error), time: context.clock.now())],
                           output: output)
            throw error
        }
    }

    private func runPolicy(_ context: Context, output: RunOutput) async throws -> Int32 {
        let catalog = try context.openCatalog(readOnly: dryRun && context.catalogExists)   // a dry run changes nothing: an auditor may ask
        let scheduled = try context.scheduler(catalog)
        if dryRun {
            let decisions = try scheduled.decide()
            if json {
                Console.json(["now": context.local(context.clock.now()), "dry_run": true,
                              "jobs": decisions.map { RunCommand.json($0, outcome: nil) }])
            } else {
                Console.out("run at \(context.local(context.clock.now())) (dry run: nothing is changed)")
                for d in decisions { Console.out("  \(d.job): \(d.due ? "DUE" : "not due") — \(d.explanation(in: context.timeZone))" + (d.due ? "" : "; next \(d.next.map(context.local) ?? "never")")) }
            }
            return ExitStatus.ok
        }
        let lock: RunLock
        do {
            lock = try context.lock()
        } catch let busy as LockBusyError {
            // The holder may work for hours (a drill, a large upload): the metrics say so
            // now (bosbackup_job_running), and stay fresh, rather than only when it ends.
            _ = context.writeMetrics(catalog, output: output)
            throw busy
        }
        defer { withExtendedLifetime(lock) {} }
        let progress = ProgressLine()
        let report: RunReport
        do {
            report = try await scheduled.run { job, event in progress.update("\(job): \(BackupCommand.describe(event))") }
        } catch {
            progress.clear()
            _ = context.writeMetrics(catalog, output: output)
            throw error
        }
        progress.clear()
        if json {
            Console.json(RunCommand.json(report, context: context))
        } else if quiet {
            RunCommand.printQuiet(report, output: output)
        } else {
            RunCommand.printReport(report, context: context)
        }
        // What needs attention, after every job ran: one line each on stderr.
        for line in RunCommand.warnings(report) { output.failure(line, priority: .warning) }
        await context.sealAuditIfDue(catalog, output: output)
        context.shareFiles()   // a drill's new report
        // Metrics first: monitoring should see the failure before a slow notify command ends.
        let metricsWritten = context.writeMetrics(catalog, output: output)
        context.notify(NotifyEvent.failures(in: report, policy: scheduled.policy, at: context.clock.now(), exitCode: ExitStatus.code(for:)),
                       output: output)
        return report.succeeded && metricsWritten ? ExitStatus.ok : ExitStatus.failed
    }

    /// `--quiet`: a line for each thing done (stdout) and each failure (stderr); none for
    /// jobs that were not due.
    static func printQuiet(_ report: RunReport, output: RunOutput) {
        let recovered = report.recovery
        if recovered.abandonedRuns + recovered.temporaryFiles > 0 {
            output.done("recovered from an interrupted run: \(recovered.abandonedRuns) runs marked abandoned, \(recovered.temporaryFiles) temporary files removed")
        }
        for o in report.jobs where o.decision.due {
            let job = o.decision.job
            let report = o.report.map { "; report \($0)" } ?? ""
            if let error = o.error {
                output.failure("\(job): FAILED — \(error)\(report)", priority: .error)
            } else if let s = o.snapshot {
                var retention = (o.deleted.isEmpty ? "" : "; retention deleted \(o.deleted.map(\.shortID).joined(separator: ", "))") + Self.lockedNote(o)
                if !o.deletionFailures.isEmpty { retention += "; retention could not delete \(o.deletionFailures.map(\.snapshot.shortID).joined(separator: ", "))" }
                output.done("\(job): snapshot \(s.shortID) stored on \(s.target) (\(Console.bytes(s.storedBytes)))\(retention)")
            } else {
                output.done("\(job): passed\(report)")
            }
        }
        if !report.resumedDeletions.isEmpty {
            output.done("finished \(report.resumedDeletions.count) deletion\(report.resumedDeletions.count == 1 ? "" : "s") an earlier run left: "
                + report.resumedDeletions.map(\.id).joined(separator: ", "))
        }
    }

    /// Snapshots retention kept because their target still locks them (object_lock).
    static func lockedNote(_ o: JobOutcome) -> String {
        let kept = o.locked.map(\.lockedUntil).max().map {
            "; retention kept \(o.locked.map(\.snapshot.shortID).joined(separator: ", ")) (locked until \(ISO8601.string($0)) at the latest)"
        }
        return (kept ?? "") + (o.lockProblems.isEmpty ? "" : "; \(o.lockProblems.count) locks not extended: \(o.lockProblems[0])")
    }

    static func printReport(_ report: RunReport, context: Context) {
        Console.out("run at \(context.local(context.clock.now()))")
        let recovered = report.recovery
        if recovered.abandonedRuns + recovered.temporaryFiles > 0 {
            Console.out("  recovered from an interrupted run: \(recovered.abandonedRuns) runs marked abandoned, \(recovered.temporaryFiles) temporary files removed")
        }
        for o in report.jobs {
            let d = o.decision
            guard d.due else {
                Console.out("  \(d.job): not due — \(d.explanation(in: context.timeZone)); next \(d.next.map(context.local) ?? "never")")
                continue
            }
            if let report = o.report {
                Console.out("  \(d.job): " + (o.error == nil ? "passed" : Console.red("FAILED") + " — \(o.error!)") + "; report \(report)")
            } else if let s = o.snapshot {
                var retention = (o.deleted.isEmpty ? "" : "; retention deleted \(o.deleted.map(\.shortID).joined(separator: ", "))") + Self.lockedNote(o)
                if !o.deletionFailures.isEmpty {
                    retention += "; retention could not delete \(o.deletionFailures.map(\.snapshot.shortID).joined(separator: ", ")) (see stderr)"
                }
                if o.retentionError != nil { retention += "; retention " + Console.red("FAILED") + " (see stderr)" }
                Console.out("  \(d.job): \(d.explanation(in: context.timeZone)) → snapshot \(s.shortID) (\(Console.bytes(s.storedBytes)) stored on \(s.target))\(retention)")
            } else {
                Console.out("  \(d.job): " + Console.red("FAILED") + " — \(o.error ?? "unknown error")")
            }
        }
        if !report.resumedDeletions.isEmpty {
            Console.out("  finished \(report.resumedDeletions.count) deletion\(report.resumedDeletions.count == 1 ? "" : "s") an earlier run left: "
                + report.resumedDeletions.map(\.id).joined(separator: ", "))
        }
    }

    /// The lines on stderr after the jobs: clean-ups that failed, retention that failed after
    /// a good backup, and deletions left for later, one line per target.
    static func warnings(_ report: RunReport) -> [String] {
        report.recovery.problems.map { "warning: \($0)" }
            + report.jobs.compactMap { o in o.retentionError.map { "\(o.decision.job): the backup succeeded, but retention failed: \($0)" } }
            + deletionWarnings(report.deletionFailures)
    }

    /// `target cloud: could not delete snapshot 1a2b3c4d (cloud-daily-…): …; it stays marked …`
    static func deletionWarnings(_ failures: [DeletionFailure]) -> [String] {
        var targets: [String] = []
        for failure in failures where !targets.contains(failure.snapshot.target) { targets.append(failure.snapshot.target) }
        return targets.map { target in
            let here = failures.filter { $0.snapshot.target == target }
            let names = here.map { "\($0.snapshot.shortID) (\($0.snapshot.name))" }.joined(separator: ", ")
            let what = here.count == 1 ? "snapshot \(names)" : "\(here.count) snapshots \(names)"
            let marked = here.count == 1 ? "it stays" : "they stay"
            return "target \(target): could not delete \(what): \(here[0].error); \(marked) marked for deletion and every run tries again"
        }
    }

    static func json(_ report: RunReport, context: Context) -> [String: Any] {
        ["now": context.local(context.clock.now()), "ok": report.succeeded,
         "recovered": ["abandoned_runs": report.recovery.abandonedRuns, "resumed_deletions": report.resumedDeletions.count,
                       "temporary_files": report.recovery.temporaryFiles, "problems": report.recovery.problems],
         "jobs": report.jobs.map { RunCommand.json($0.decision, outcome: $0) },
         "resumed_deletions": report.resumedDeletions.map(\.id),
         "deletion_failures": report.deletionFailures.map(json)]
    }

    static func json(_ failure: DeletionFailure) -> [String: Any] {
        ["target": failure.snapshot.target, "snapshot_id": failure.snapshot.id, "snapshot_name": failure.snapshot.name,
         "job": failure.snapshot.job, "error": failure.error]
    }

    static func json(_ d: DueDecision, outcome: JobOutcome?) -> [String: Any] {
        var item: [String: Any] = ["job": d.job, "due": d.due, "reason": d.explanation,
                                   "scheduled_for": d.scheduledFor.map(ISO8601.string) as Any,
                                   "next": d.next.map(ISO8601.string) as Any]
        if let outcome {
            item["ok"] = outcome.succeeded
            item["snapshot_id"] = outcome.snapshot?.id as Any
            item["error"] = outcome.error as Any
            item["deleted"] = outcome.deleted.map(\.id)
            item["not_deleted"] = outcome.deletionFailures.map(\.snapshot.id)
            item["locked"] = outcome.locked.map { ["id": $0.snapshot.id, "locked_until": ISO8601.string($0.lockedUntil)] }
            item["lock_problems"] = outcome.lockProblems
            item["retention_error"] = outcome.retentionError as Any
            item["report"] = outcome.report as Any
        }
        return item
    }
}

/// Where the lines of a run go. Plain `run` keeps its report (stdout) and `bosbackup:`
/// lines on stderr; `run --quiet` and the daemon write one line per event, with its time
/// (or, into the journal, its priority): `run --quiet` what was done on stdout and what
/// failed on stderr, the daemon everything on stderr, as it always logged.
struct RunOutput {
    /// `archive`: like `quiet`, one timed line per event, from `bosbackup archive`.
    enum Style { case report, quiet, daemon, archive }
    let style: Style
    let context: Context

    private var source: String { style == .daemon ? "daemon" : style == .archive ? "archive" : "run" }
    private var time: String { context.local(context.clock.now()) }

    func done(_ line: String) {
        Console.event(line, priority: .info, to: style == .daemon ? 2 : 1, time: time, source: source)
    }

    func failure(_ line: String, priority: Console.Priority) {
        guard style != .report else { return Console.error(line) }
        Console.event(line, priority: priority, to: 2, time: time, source: source)
    }
}

extension Context {
    /// Rewrites the policy's metrics.textfile, if it names one. False (with a line on
    /// stderr) when it could not: monitoring would then read an old file.
    func writeMetrics(_ catalog: Catalog, output: RunOutput) -> Bool {
        guard let policy, let path = policy.metricsTextfile else { return true }
        do {
            try HealthMetrics(policy: policy, catalog: catalog, clock: clock).write(to: path)
            return true
        } catch {
            output.failure("could not write the metrics file \(path): \(error)", priority: .error)
            return false
        }
    }

    /// Runs the policy's notify.command once per event. Its own failure is one line on
    /// stderr and changes no exit code: the failure it was to report is already reported.
    func notify(_ events: [NotifyEvent], output: RunOutput) {
        guard let config = policy?.notify else { return }
        for event in events {
            do { try Notifier(config).send(event) } catch { output.failure("\(error)", priority: .warning) }
        }
    }

    /// The scheduler as `run`, `prune` and the daemon use it. Deletions open a snapshot's
    /// target by its policy name, else by the URL the catalog recorded (a target renamed or
    /// removed from the policy), so they can finish instead of waiting forever.
    func scheduler(_ catalog: Catalog) throws -> ScheduledRun {
        var scheduled = try scheduledRun(catalog)
        scheduled.openSnapshotTarget = { try self.target(for: $0, role: .prune) }   // deletions: the prune credentials
        return scheduled
    }
}
