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
            Exits 1 if any job failed.
            """)

    @OptionGroup var common: CommonOptions
    @Flag(help: "Show the decisions only; change nothing.") var dryRun = false
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        try await reporting {
            let context = try Context(common)
            let catalog = try context.openCatalog()
            let scheduled = try context.scheduledRun(catalog)
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
            let recovered = try await scheduled.recoverFromCrash()
            let progress = ProgressLine()
            let outcomes = try await scheduled.execute { job, event in progress.update("\(job): \(BackupCommand.describe(event))") }
            progress.clear()
            if json {
                Console.json(["now": context.local(context.clock.now()),
                              "recovered": ["abandoned_runs": recovered.abandonedRuns, "resumed_deletions": recovered.resumedDeletions,
                                            "temporary_files": recovered.temporaryFiles],
                              "jobs": outcomes.map { RunCommand.json($0.decision, outcome: $0) }])
            } else {
                RunCommand.printOutcomes(outcomes, recovered: recovered, context: context)
            }
            return outcomes.allSatisfy(\.succeeded) ? ExitStatus.ok : ExitStatus.failed
        }
    }

    static func printOutcomes(_ outcomes: [JobOutcome], recovered: (abandonedRuns: Int, resumedDeletions: Int, temporaryFiles: Int), context: Context) {
        Console.out("run at \(context.local(context.clock.now()))")
        if recovered.abandonedRuns + recovered.resumedDeletions + recovered.temporaryFiles > 0 {
            Console.out("  recovered from an interrupted run: \(recovered.abandonedRuns) runs marked abandoned, \(recovered.resumedDeletions) deletions finished, \(recovered.temporaryFiles) temporary files removed")
        }
        for o in outcomes {
            let d = o.decision
            guard d.due else {
                Console.out("  \(d.job): not due — \(d.explanation(in: context.timeZone)); next \(d.next.map(context.local) ?? "never")")
                continue
            }
            if let report = o.report {
                Console.out("  \(d.job): " + (o.error == nil ? "passed" : Console.red("FAILED") + " — \(o.error!)") + "; report \(report)")
            } else if let s = o.snapshot {
                let deleted = o.deleted.isEmpty ? "" : "; retention deleted \(o.deleted.map(\.id).joined(separator: ", "))"
                Console.out("  \(d.job): \(d.explanation(in: context.timeZone)) → snapshot \(s.id) (\(Console.bytes(s.storedBytes)) stored on \(s.target))\(deleted)")
            } else {
                Console.out("  \(d.job): " + Console.red("FAILED") + " — \(o.error ?? "unknown error")")
            }
        }
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
            item["report"] = outcome.report as Any
        }
        return item
    }
}
