import ArgumentParser
import BOSBackup
import Foundation

/// `bosbackup notify`: the policy's notify.command for failures `run` cannot see itself,
/// a systemd unit that failed (its OnFailure= hook), and a way to try the command.
struct NotifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notify",
        abstract: "Run the policy's notify.command with an event as JSON on stdin (systemd OnFailure= hook, or a test).",
        discussion: """
            --event unit-failed --unit NAME is what a systemd OnFailure= unit runs
            (bosbackup notify --event unit-failed --unit %n); --event test tries the
            command. Exits 0 when the command exited 0, 1 when it failed or ran past
            notify.timeout, 2 on a usage error. A policy without notify.command: with
            unit-failed one line on stderr and exit 0 (nothing to tell anyone with);
            with test exit 2.
            """)

    @OptionGroup var common: CommonOptions
    @Option(help: "The event: unit-failed or test.") var event: String
    @Option(help: "The systemd unit that failed (with --event unit-failed; systemd's %n).") var unit: String?

    func run() async throws {
        try await reporting {
            let context = try Context(common)
            try context.authorize(.operator, "notify")
            let policy = try context.requirePolicy()
            let kind: NotifyEvent.Kind
            let error: String
            switch (event, unit) {
            case ("unit-failed", let unit?) where !unit.isEmpty:
                kind = .unitFailed
                error = "systemd unit \(unit) failed; see journalctl -u \(unit)"
            case ("unit-failed", _): throw UsageError("--event unit-failed needs --unit NAME (in a systemd unit: --unit %n)")
            case ("test", nil):
                kind = .test
                error = "a test of notify.command (bosbackup notify --event test)"
            case ("test", _?): throw UsageError("--unit goes only with --event unit-failed")
            default: throw UsageError("--event must be unit-failed or test, not \"\(event)\"")
            }
            guard let config = policy.notify else {
                guard kind == .unitFailed else { throw UsageError("the policy has no notify: { command: … } to try") }
                Console.error("the policy has no notify.command: nothing was sent about unit \(unit ?? "")")
                return ExitStatus.ok
            }
            try Notifier(config).send(NotifyEvent(kind: kind, error: error, time: context.clock.now(), unit: unit))
            Console.out("notify command ran for \(kind.rawValue)" + (unit.map { " (\($0))" } ?? ""))
            return ExitStatus.ok
        }
    }
}

extension ExitStatus {
    /// The exit code a failure of this category stands for (the notify JSON's exit_code).
    static func code(for category: ErrorCategory) -> Int32 { code(for: CategoryOnly(category: category)) }

    private struct CategoryOnly: CategorizedError { let category: ErrorCategory }
}
