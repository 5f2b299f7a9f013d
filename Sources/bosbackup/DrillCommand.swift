import ArgumentParser
import BOSBackup
import Foundation

struct DrillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drill",
        abstract: "The quarterly restore drill: restore from every target, time each phase, compare with the RTO.",
        discussion: """
            From every target the newest snapshot and one random older one are fetched,
            decrypted, decompressed, checksummed, integrity-checked and counted. Writes
            drill-<time>.md and .html (for an auditor) and records the drill in the
            catalog. Exits 4 on any failure.
            """)

    @OptionGroup var common: CommonOptions
    @Option(help: "Folder for the reports (default: drills/ beside the catalog).") var report: String?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        try await reporting {
            let context = try Context(common)
            try context.authorize(.operator, "drill")
            let catalog = try context.openCatalog()
            let policy = context.policy ?? Policy()
            let lock = try context.lock()
            defer { withExtendedLifetime(lock) {} }
            let folder = report.map(Context.absolute) ?? (catalog.path as NSString).deletingLastPathComponent + "/drills"
            let progress = ProgressLine()
            defer { progress.clear() }
            let verifier = context.verifier(catalog, progress: progress)
            let outcome = try await DrillJob(verifier: verifier, policy: policy, reportFolder: folder)
                .run(scheduledFor: nil, openTarget: context.target(named:)) { try context.target(for: $0) }
            let result = outcome.result
            context.shareFiles()
            if json {
                Console.json(["ok": result.ok, "rto_seconds": result.rto, "seconds": result.seconds,
                              "report_markdown": outcome.markdown, "report_html": outcome.html,
                              "targets": result.targets.map { t -> [String: Any] in
                                  ["target": t.target, "ok": t.ok, "recovery_seconds": t.recoverySeconds as Any, "problems": t.problems,
                                   "snapshots": t.samples.map { s -> [String: Any] in
                                       ["id": s.snapshot.id, "pick": s.pick.rawValue, "ok": s.ok, "problems": s.verification.problems,
                                        "unchecked": s.verification.unchecked,
                                        "restore_seconds": s.verification.restoreSeconds, "integrity_seconds": s.verification.integritySeconds,
                                        "count_seconds": s.verification.countSeconds]
                                   },
                                   "point_in_time": t.pointInTime.map { p -> [String: Any] in
                                       ["database": p.database, "at": ISO8601.string(p.at), "generation": p.generation as Any, "txid": p.txid,
                                        "seconds": p.seconds, "rows": p.rows, "ok": p.ok, "problem": p.problem as Any]
                                   }]
                              }])
            } else {
                Console.out(DrillReport(result: result).verdict)
                for t in result.targets {
                    Console.out("  \(t.target): \(t.ok ? "ok" : Console.red("FAILED"))" + (t.recoverySeconds.map { ", back in \(Console.seconds($0)) at worst" } ?? ""))
                    for p in t.problems { Console.out("    - \(p)") }
                    for p in t.pointInTime {
                        Console.out("    point in time: \(p.database) at \(context.local(p.at)) " + (p.ok
                            ? "restored (txid \(p.txid), \(p.rows) rows) in \(Console.seconds(p.seconds))" : Console.red("FAILED") + ": \(p.problem ?? "")"))
                    }
                    for s in t.samples where !s.ok {
                        Console.out("    - snapshot \(s.snapshot.shortID) (\(s.pick.rawValue)): \(s.findings.joined(separator: "; "))")
                    }
                }
                Console.out("report: \(outcome.markdown)")
                Console.out("        \(outcome.html)")
            }
            return result.ok ? ExitStatus.ok : (result.couldNotCheck ? ExitStatus.failed : ExitStatus.mismatch)
        }
    }
}
