import ArgumentParser
import BOSBackup
import Foundation

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Per job: last success, next fire, overdue, running, last verification. Exits 1 if a job is overdue or failed, or a deletion failed.",
        discussion: """
            A job whose newest run is still in progress (its process alive) shows RUNNING
            since its start; a run whose process died shows as interrupted (a failure the
            next run cleans up). Each target shows whether the last run could open and list it.
            """)

    @OptionGroup var common: CommonOptions
    @Option(help: "Also write Prometheus textfile-collector metrics to FILE (atomically).") var metrics: String?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        try await reporting {
            let context = try Context(common)
            try context.authorize(.auditor, "status")
            let policy = try context.requirePolicy()
            let catalog = try context.openCatalog(readOnly: true)
            let statusReport = StatusReport(policy: policy, catalog: catalog, clock: context.clock)
            let statuses = try statusReport.jobs()
            let deletions = try statusReport.deletions()
            let lastDrill = try catalog.lastDrill()
            let nextDrill = try DueJobs(policy: policy, catalog: catalog).decideDrill(at: context.clock.now())
            let access = try catalog.targetAccess()
            let archive = try policy.archiveStatus(catalog: catalog, now: context.clock.now())
            if let metrics {
                try HealthMetrics(policy: policy, catalog: catalog, clock: context.clock).write(to: Context.absolute(metrics))
            }
            if json {
                Console.json(["now": context.local(context.clock.now()), "jobs": statuses.map { s -> [String: Any] in
                    ["job": s.job, "target": s.target, "database": policy.job(named: s.job)?.database as Any, "overdue": s.overdue, "last_run_failed": s.lastRunFailed,
                     "last_success": s.lastSuccess.map { ISO8601.string($0.finishedAt ?? $0.startedAt) } as Any,
                     "last_snapshot_id": s.lastSnapshot?.id as Any, "next": s.next.map(ISO8601.string) as Any,
                     "last_run_status": s.lastRun?.status.rawValue as Any, "last_error": s.lastRun?.error as Any,
                     "last_verification": s.lastVerification.map { ["ok": $0.ok, "at": ISO8601.string($0.verifiedAt)] } as Any,
                     "future_runs": s.futureRuns.map { ISO8601.string($0.startedAt) },
                     "running_since": s.running.map { ISO8601.string($0.startedAt) } as Any,
                     "running_pid": s.running?.process.map { Int($0.pid) } as Any, "interrupted": s.interrupted]
                }, "targets": policy.targets.map { t -> [String: Any] in
                    ["target": t.name, "up": access[t.name].map { $0.ok } as Any,
                     "accessed_at": access[t.name].map { ISO8601.string($0.accessedAt) } as Any, "error": access[t.name]?.error as Any]
                }, "drill": ["last": lastDrill.map { ["at": ISO8601.string($0.startedAt), "ok": $0.ok, "report": $0.report as Any,
                                                      "summary": $0.summary] } as Any,
                             "due": nextDrill?.due as Any, "next": nextDrill?.next.map(ISO8601.string) as Any],
                              "archive": archive.map { a -> [String: Any] in
                                  ["database": a.database, "target": a.target, "generation": a.generation as Any, "last_txid": a.lastTxid as Any,
                                   "last_commit_seen": a.lastCommitSeen.map { ISO8601.string($0) } as Any,
                                   "complete_up_to": a.completeUpTo.map { ISO8601.string($0) } as Any, "lag_seconds": a.lag as Any,
                                   "behind": a.behind,
                                   "last_gap": a.lastGap.map { ["from": ISO8601.string($0.from), "to": ISO8601.string($0.to), "why": $0.why] } as Any]
                              },
                              "pending_deletions": deletions.filter { !$0.pending.isEmpty }.map { t -> [String: Any] in
                                  ["target": t.target, "snapshots": t.pending.map(\.id), "failing": t.failing.map(\.id),
                                   "error": t.lastFailure?.lastError as Any,
                                   "last_failed_at": t.lastFailure?.lastFailedAt.map { ISO8601.string($0) } as Any]
                              }])
            } else {
                // Several databases: each job's line says which one it keeps.
                let several = policy.databases.count > 1
                let rows = statuses.map { s -> [String] in
                    (several ? [policy.job(named: s.job)?.database ?? "-"] : []) + [s.job, s.target,
                     s.lastSuccess.map { context.local($0.finishedAt ?? $0.startedAt) } ?? "never",
                     s.next.map(context.local) ?? "never",
                     StatusCommand.state(s, context: context),
                     s.lastVerification.map { $0.ok ? "ok" : "FAILED" } ?? "never"]
                }
                for line in Console.table((several ? ["DATABASE"] : []) + ["JOB", "TARGET", "LAST SUCCESS", "NEXT", "STATE", "VERIFIED"], rows) {
                    Console.out(line)
                }
                if policy.drill != nil {
                    let last = lastDrill.map { "\($0.ok ? "passed" : "FAILED") \(context.local($0.startedAt)) (\($0.report ?? ""))" } ?? "never"
                    let now = try statusReport.drillInProgress().map { "RUNNING since \(context.local($0.startedAt))" }
                        ?? (nextDrill?.due == true ? "DUE now" : "next \(nextDrill?.next.map(context.local) ?? "never")")
                    Console.out("drill: last \(last); " + now)
                }
                var named = Set<String>()
                for a in archive {
                    if let gap = a.lastGap, named.insert(a.database).inserted {
                        Console.out("archive \(a.database): " + Console.red("not covered") + " \(context.local(gap.from)) – \(context.local(gap.to)) (\(gap.why))")
                    }
                    guard let lag = a.lag, let upTo = a.completeUpTo else {
                        Console.out("archive \(a.database) → \(a.target): not started (bosbackup archive, or the daemon, starts it)")
                        continue
                    }
                    let state = a.behind ? Console.red("BEHIND") : "ok"
                    Console.out("archive \(a.database) → \(a.target): \(state), txid \(a.lastTxid ?? 0)"
                        + (a.lastCommitSeen.map { " seen \(context.local($0))" } ?? "")
                        + ", complete up to \(context.local(upTo)) (lag \(Duration.format(lag)))")
                }
                for s in statuses where s.lastRunFailed {
                    if s.interrupted, let run = s.lastRun {
                        let process = run.process.map { "process \($0.pid)" } ?? "its process"
                        Console.out("\(s.job): last run (started \(context.local(run.startedAt))) interrupted: \(process) is gone; "
                            + "the next run marks it abandoned")
                    } else {
                        Console.out("\(s.job): last run \(s.lastRun?.status.rawValue ?? ""): \(s.lastRun?.error ?? "")")
                    }
                }
                for t in policy.targets {
                    guard let a = access[t.name], !a.ok else { continue }
                    Console.out("target \(t.name): the run at \(context.local(a.accessedAt)) could not open or list it: \(a.error ?? "")")
                }
                for s in statuses {
                    guard let latest = s.futureRuns.first else { continue }
                    let count = s.futureRuns.count == 1 ? "a run" : "\(s.futureRuns.count) runs"
                    Console.out("\(s.job): \(count) recorded in the future (latest \(context.local(latest.startedAt))): clock jumped? "
                        + "ignored for the schedule")
                }
                for t in deletions where !t.pending.isEmpty {
                    let ids = t.pending.map(\.shortID).joined(separator: ", ")
                    let why = t.lastFailure.map { f in
                        "last attempt \(f.lastFailedAt.map(context.local) ?? "?") failed: \(f.lastError ?? "")"
                    } ?? "interrupted; the next run finishes it"
                    Console.out("target \(t.target): \(t.pending.count) snapshot\(t.pending.count == 1 ? "" : "s") not deleted yet (\(ids)): \(why)")
                }
            }
            let drillFailed = lastDrill.map { !$0.ok } ?? false
            // A deletion merely interrupted by a crash is finished by the next run; one that failed needs a person.
            let deletionFailed = deletions.contains { !$0.failing.isEmpty }
            let archiveBehind = archive.contains(where: \.behind)
            return statuses.contains { $0.overdue || $0.lastRunFailed } || drillFailed || deletionFailed || archiveBehind ? ExitStatus.failed : ExitStatus.ok
        }
    }

    /// RUNNING beats the rest (what is it doing now?), with OVERDUE beside it when it is also late.
    static func state(_ s: JobStatus, context: Context) -> String {
        if let run = s.running {
            return "RUNNING since \(context.local(run.startedAt))" + (s.overdue ? " (" + Console.red("OVERDUE") + ")" : "")
        }
        return s.overdue ? Console.red("OVERDUE") : (s.lastRunFailed ? Console.red("LAST RUN FAILED") : "ok")
    }
}
