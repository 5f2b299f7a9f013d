import ArgumentParser
import BOSBackup
import Foundation

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Per job: last success, next fire, overdue, last verification. Exits 1 if a job is overdue or failed.")

    @OptionGroup var common: CommonOptions
    @Option(help: "Also write Prometheus textfile-collector metrics to FILE (atomically).") var metrics: String?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        try await reporting {
            let context = try Context(common)
            let policy = try context.requirePolicy()
            let catalog = try context.openCatalog()
            let statuses = try StatusReport(policy: policy, catalog: catalog, clock: context.clock).jobs()
            let lastDrill = try catalog.lastDrill()
            let nextDrill = try DueJobs(policy: policy, catalog: catalog).decideDrill(at: context.clock.now())
            if let metrics {
                try DurableFile.write(Data(StatusMetrics.render(statuses).utf8), to: Context.absolute(metrics), mode: 0o644)
            }
            if json {
                Console.json(["now": context.local(context.clock.now()), "jobs": statuses.map { s -> [String: Any] in
                    ["job": s.job, "target": s.target, "overdue": s.overdue, "last_run_failed": s.lastRunFailed,
                     "last_success": s.lastSuccess.map { ISO8601.string($0.finishedAt ?? $0.startedAt) } as Any,
                     "last_snapshot_id": s.lastSnapshot?.id as Any, "next": s.next.map(ISO8601.string) as Any,
                     "last_run_status": s.lastRun?.status.rawValue as Any, "last_error": s.lastRun?.error as Any,
                     "last_verification": s.lastVerification.map { ["ok": $0.ok, "at": ISO8601.string($0.verifiedAt)] } as Any,
                     "future_runs": s.futureRuns.map { ISO8601.string($0.startedAt) }]
                }, "drill": ["last": lastDrill.map { ["at": ISO8601.string($0.startedAt), "ok": $0.ok, "report": $0.report as Any,
                                                      "summary": $0.summary] } as Any,
                             "due": nextDrill?.due as Any, "next": nextDrill?.next.map(ISO8601.string) as Any]])
            } else {
                let rows = statuses.map { s -> [String] in
                    [s.job, s.target,
                     s.lastSuccess.map { context.local($0.finishedAt ?? $0.startedAt) } ?? "never",
                     s.next.map(context.local) ?? "never",
                     s.overdue ? Console.red("OVERDUE") : (s.lastRunFailed ? Console.red("LAST RUN FAILED") : "ok"),
                     s.lastVerification.map { $0.ok ? "ok" : "FAILED" } ?? "never"]
                }
                for line in Console.table(["JOB", "TARGET", "LAST SUCCESS", "NEXT", "STATE", "VERIFIED"], rows) { Console.out(line) }
                if policy.drill != nil {
                    let last = lastDrill.map { "\($0.ok ? "passed" : "FAILED") \(context.local($0.startedAt)) (\($0.report ?? ""))" } ?? "never"
                    Console.out("drill: last \(last); " + (nextDrill?.due == true ? "DUE now" : "next \(nextDrill?.next.map(context.local) ?? "never")"))
                }
                for s in statuses where s.lastRunFailed { Console.out("\(s.job): last run \(s.lastRun?.status.rawValue ?? ""): \(s.lastRun?.error ?? "")") }
                for s in statuses {
                    guard let latest = s.futureRuns.first else { continue }
                    let count = s.futureRuns.count == 1 ? "a run" : "\(s.futureRuns.count) runs"
                    Console.out("\(s.job): \(count) recorded in the future (latest \(context.local(latest.startedAt))): clock jumped? "
                        + "ignored for the schedule")
                }
            }
            let drillFailed = lastDrill.map { !$0.ok } ?? false
            return statuses.contains { $0.overdue || $0.lastRunFailed } || drillFailed ? ExitStatus.failed : ExitStatus.ok
        }
    }
}
