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
            """)

    @OptionGroup var common: CommonOptions
    @Flag(help: "Show the decisions only; change nothing.") var dryRun = false
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        try await reporting {
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
        let catalog = try context.openCatalog()
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
        let lock = try context.lock()
        defer { withExtendedLifetime(lock) {} }
        let progress = ProgressLine()
        let report = try await scheduled.run { job, event in progress.update("\(job): \(BackupCommand.describe(event))") }
        progress.clear()
        if json {
            Console.json(RunCommand.json(report, context: context))
        } else {
            RunCommand.printReport(report, context: context)
        }
        // What needs attention, after every job ran: one line each on stderr.
        for line in RunCommand.warnings(report) { Console.error(line) }
        return report.succeeded ? ExitStatus.ok : ExitStatus.failed
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
                var retention = o.deleted.isEmpty ? "" : "; retention deleted \(o.deleted.map(\.id).joined(separator: ", "))"
                if !o.deletionFailures.isEmpty {
                    retention += "; retention could not delete \(o.deletionFailures.map(\.snapshot.id).joined(separator: ", ")) (see stderr)"
                }
                if o.retentionError != nil { retention += "; retention " + Console.red("FAILED") + " (see stderr)" }
                Console.out("  \(d.job): \(d.explanation(in: context.timeZone)) → snapshot \(s.id) (\(Console.bytes(s.storedBytes)) stored on \(s.target))\(retention)")
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
            let names = here.map { "\($0.snapshot.id) (\($0.snapshot.name))" }.joined(separator: ", ")
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
            item["retention_error"] = outcome.retentionError as Any
            item["report"] = outcome.report as Any
        }
        return item
    }
}

extension Context {
    /// The scheduler as `run`, `prune` and the daemon use it. Deletions open a snapshot's
    /// target by its policy name, else by the URL the catalog recorded (a target renamed or
    /// removed from the policy), so they can finish instead of waiting forever.
    func scheduler(_ catalog: Catalog) throws -> ScheduledRun {
        var scheduled = try scheduledRun(catalog)
        scheduled.openSnapshotTarget = { try self.target(for: $0) }
        return scheduled
    }
}
