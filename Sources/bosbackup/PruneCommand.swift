import ArgumentParser
import BOSBackup
import Foundation

struct PruneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Apply each job's retention (keep_last/daily/weekly/monthly, restic's meaning).",
        discussion: """
            The newest snapshot of a job (the last cataloged) and its newest verified one are never deleted. \
            Also retries the deletions earlier runs left unfinished. A snapshot its target does not delete \
            stays marked for deletion: a line on stderr names target and snapshot, and prune exits 1. \
            A snapshot whose objects the target still locks (object_lock) is left as it is and reported \
            ("locked until …"), not an error; the locks of kept snapshots are pushed out. Deletes with the \
            target's prune credentials when it has them.
            """)

    @OptionGroup var common: CommonOptions
    @Option(help: "Only this job.") var job: String?
    @Flag(help: "Show what would go and why; delete nothing.") var dryRun = false
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        try await reporting {
            let context = try Context(common)
            try context.authorize(dryRun ? .auditor : .admin, dryRun ? "prune --dry-run" : "prune")
            let policy = try context.requirePolicy()
            let catalog = try context.openCatalog(readOnly: dryRun && context.catalogExists)   // a dry run changes nothing: an auditor may ask
            let scheduled = try context.scheduler(catalog)
            let jobs = try policy.jobs.filter { job == nil || $0.name == job }.nonEmpty(or: UsageError("no job \"\(job ?? "")\" in the policy"))
            let lock = dryRun ? nil : try context.lock()
            defer { withExtendedLifetime(lock) {} }
            let cleanupProblems = dryRun ? [] : try await scheduled.recoverFromCrash().problems
            var report: [[String: Any]] = []
            var failures: [DeletionFailure] = []
            var lockProblems: [String] = []
            for job in jobs {
                var plan = try scheduled.retentionPlan(job)
                var notDeleted: Set<String> = []
                var locked: [String: Date] = [:]
                if !dryRun {
                    let outcome = try await scheduled.applyRetention(job)
                    plan = outcome.plan
                    failures += outcome.failed
                    notDeleted = Set(outcome.failed.map(\.snapshot.id))
                    locked = Dictionary(outcome.locked.map { ($0.snapshot.id, $0.lockedUntil) }, uniquingKeysWith: { a, _ in a })
                    lockProblems += outcome.lockProblems
                }
                report.append(["job": job.name, "snapshots": plan.map {
                    ["id": $0.snapshot.id, "name": $0.snapshot.name, "keep": $0.keep, "reasons": $0.reasons,
                     "not_deleted": notDeleted.contains($0.snapshot.id),
                     "locked_until": locked[$0.snapshot.id].map { ISO8601.string($0) } as Any] as [String: Any]
                }])
                if !json {
                    let deleted = plan.filter { !$0.keep && !notDeleted.contains($0.snapshot.id) && locked[$0.snapshot.id] == nil }.count
                    Console.out("\(job.name): keep \(plan.count - deleted - notDeleted.count - locked.count), \(dryRun ? "would delete" : "deleted") \(deleted)"
                        + (notDeleted.isEmpty ? "" : ", could not delete \(notDeleted.count)")
                        + (locked.isEmpty ? "" : ", \(locked.count) still locked"))
                    for d in plan {
                        let action = d.keep ? "keep  " : dryRun ? "delete" : notDeleted.contains(d.snapshot.id) ? "NOT deleted"
                            : locked[d.snapshot.id].map { "locked until \(context.local($0)), kept" } ?? "deleted"
                        Console.out("  \(action) \(d.snapshot.shortID)  \(context.local(d.snapshot.takenAt))  \(d.reasons.joined(separator: ", "))")
                    }
                }
            }
            // The WAL archive's retain:, when no single job was asked for.
            var archiveReport: [[String: Any]] = []
            for archive in job == nil ? policy.archives : [] {
                let outcome = try await context.archiveRetention(catalog).apply(archive, host: policy.host, dryRun: dryRun)
                failures += outcome.failed
                lockProblems += outcome.lockProblems
                archiveReport.append(["database": archive.database, "generations": outcome.generations.map(\.id), "segments": outcome.segments,
                                      "base_snapshots": outcome.bases.map(\.id), "leftovers": outcome.leftovers.map(\.key),
                                      "locked": outcome.locked.map { ["generation": $0.generation.id, "locked_until": ISO8601.string($0.until)] }])
                for (generation, until) in outcome.locked where !json {
                    Console.out("\(archive.database): archive generation \(generation.id) still locked until \(context.local(until)), kept")
                }
                if !json, let line = Context.describe(outcome, database: archive.database, dryRun: dryRun) { Console.out(line) }
                for leftover in outcome.leftovers { Console.error("warning: \(leftover.key) was not deleted: \(leftover.why)") }
            }
            // Deletions earlier runs left marked, of these jobs only.
            let resumed = dryRun ? (finished: [], failed: [])
                : try await scheduled.resumePendingDeletions(skipping: Set(failures.map(\.snapshot.id)), jobs: Set(jobs.map(\.name)))
            failures += resumed.failed
            if json {
                Console.json(["dry_run": dryRun, "jobs": report, "archive": archiveReport, "resumed_deletions": resumed.finished.map(\.id),
                              "deletion_failures": failures.map(RunCommand.json)])
            } else if !resumed.finished.isEmpty {
                Console.out("finished \(resumed.finished.count) deletions an earlier run left: \(resumed.finished.map(\.shortID).joined(separator: ", "))")
            }
            for line in (cleanupProblems + lockProblems).map({ "warning: \($0)" }) + RunCommand.deletionWarnings(failures) { Console.error(line) }
            return failures.isEmpty ? ExitStatus.ok : ExitStatus.failed
        }
    }
}

extension Array {
    func nonEmpty(or error: Error) throws -> [Element] {
        if isEmpty { throw error }
        return self
    }
}
