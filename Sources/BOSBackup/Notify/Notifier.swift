import Foundation

/// The notify command failed (or could not start, or ran past its timeout): one line
/// that says how, with the end of what it printed.
public struct NotifyError: Error, CustomStringConvertible, CategorizedError, Sendable {
    public let description: String
    public var category: ErrorCategory { .failure }
}

/// Tells the policy's `notify.command` about one event: the event's JSON on stdin, and
/// BOSBACKUP_EVENT, BOSBACKUP_JOB and BOSBACKUP_MESSAGE in its environment for commands
/// that want no JSON parser (`mail -s "$BOSBACKUP_MESSAGE" ops@example.com`).
public struct Notifier {
    public let config: Policy.Notify

    public init(_ config: Policy.Notify) { self.config = config }

    /// Returns when the command exited 0; throws `NotifyError` otherwise. Never takes much
    /// longer than the timeout (see `ShellCommand`).
    public func send(_ event: NotifyEvent) throws {
        let what = "notify command (\(event.kind.rawValue)\(event.job.map { " \($0)" } ?? ""))"
        let command = ShellCommand(command: config.command, timeout: config.timeout, environment: [
            "BOSBACKUP_EVENT": event.kind.rawValue, "BOSBACKUP_JOB": event.job ?? "", "BOSBACKUP_MESSAGE": event.message,
        ])
        let result: CommandResult
        do {
            result = try command.run(input: try event.json())
        } catch {
            throw NotifyError(description: "\(what) could not be started: \(error)")
        }
        let seconds = String(format: "%.1f s", result.seconds)
        switch result.ending {
        case .exited(0): return
        case .exited(let code): throw NotifyError(description: "\(what) exited \(code) after \(seconds)" + Self.tail(result.output))
        case .signaled(let number): throw NotifyError(description: "\(what) was killed by signal \(number) after \(seconds)" + Self.tail(result.output))
        case .unknown: throw NotifyError(description: "\(what) ended after \(seconds), but its exit status could not be read" + Self.tail(result.output))
        case .timedOut:
            throw NotifyError(description: "\(what) did not finish within \(Duration.format(config.timeout)) and was stopped"
                + Self.tail(result.output))
        }
    }

    /// `: <its last line>`, at most 300 characters, or nothing when it printed nothing.
    static func tail(_ output: String) -> String {
        guard let last = output.split(whereSeparator: \.isNewline).last(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else {
            return " (no output)"
        }
        let line = last.trimmingCharacters(in: .whitespaces)
        return ": " + (line.count > 300 ? String(line.prefix(300)) + "…" : line)
    }
}
