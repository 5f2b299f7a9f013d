import ArgumentParser
import BOSBackup
import Foundation

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Preflight of the policy: source, catalog and scratch folders, every target (a probe object written and deleted).",
        discussion: "One line per check; exits 0 when all pass, 1 when any fails. Run it after installing or changing the policy.")

    @OptionGroup var common: CommonOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        try await reporting {
            let context = try Context(common)
            try context.authorize(.operator, "check")
            let policy = try context.requirePolicy()
            var preflight = Preflight(policy: policy, catalogPath: context.catalogPath, scratch: context.scratch,
                                      clock: context.clock) { try context.open($0, role: $1) }
            preflight.environment = context.environment
            let checks = await preflight.run()
            if json {
                Console.json(["ok": checks.allSatisfy(\.ok),
                              "checks": checks.map { ["subject": $0.subject, "ok": $0.ok, "detail": $0.detail] }])
            } else {
                for check in checks {
                    Console.out((check.ok ? "ok    " : Console.red("FAIL  ")) + "\(check.subject): \(check.detail)")
                }
            }
            return checks.allSatisfy(\.ok) ? ExitStatus.ok : ExitStatus.failed
        }
    }
}
