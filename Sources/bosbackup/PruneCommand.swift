import ArgumentParser
import BOSBackup
import Foundation

struct PruneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Apply each job's retention (keep_last/daily/weekly/monthly, restic's meaning).",
        discussion: "The newest snapshot of a job and its newest verified one are never deleted.")

    @OptionGroup var common: CommonOptions
    @Option(help: "Only this job.") var job: String?
    @Flag(help: "Show what would go and why; delete nothing.") var dryRun = false
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        try await reporting {
            let context = try Context(common)
            let policy = try context.requirePolicy()
            let catalog = try context.openCatalog()
            let scheduled = try context.scheduledRun(catalog)
            let jobs = try policy.jobs.filter { job == nil || $0.name == job }.nonEmpty(or: UsageError("no job \"\(job ?? "")\" in the policy"))
            let lock = dryRun ? nil : try context.lock()
            defer { withExtendedLifetime(lock) {} }
            if !dryRun { _ = try await scheduled.recoverFromCrash() }
            var report: [[String: Any]] = []
            for job in jobs {
                let plan = dryRun ? try scheduled.retentionPlan(job) : try await scheduled.applyRetention(job).0
                report.append(["job": job.name, "snapshots": plan.map {
                    ["id": $0.snapshot.id, "name": $0.snapshot.name, "keep": $0.keep, "reasons": $0.reasons] as [String: Any]
                }])
                if !json {
                    let deleted = plan.filter { !$0.keep }.count
                    Console.out("\(job.name): keep \(plan.count - deleted), \(dryRun ? "would delete" : "deleted") \(deleted)")
                    for d in plan {
                        Console.out("  \(d.keep ? "keep  " : (dryRun ? "delete" : "deleted")) \(d.snapshot.id)  \(context.local(d.snapshot.takenAt))  \(d.reasons.joined(separator: ", "))")
                    }
                }
            }
            if json { Console.json(["dry_run": dryRun, "jobs": report]) }
            return ExitStatus.ok
        }
    }
}

extension Array {
    func nonEmpty(or error: Error) throws -> [Element] {
        if isEmpty { throw error }
        return self
    }
}
