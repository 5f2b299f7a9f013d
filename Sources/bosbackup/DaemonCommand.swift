import ArgumentParser
import BOSBackup
import Dispatch
import Foundation

struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Run the policy without cron: sleep until the next fire time, run due jobs, repeat.",
        discussion: "SIGTERM or SIGINT stops it cleanly; a snapshot in progress is abandoned and never cataloged.")

    @OptionGroup var common: CommonOptions

    func run() async throws {
        try await reporting {
            guard common.now == nil else { throw UsageError("the daemon runs on the real clock; use `run --now` to simulate time") }
            let context = try Context(common)
            let policy = try context.requirePolicy()
            let loop = Task { try await DaemonCommand.loop(context: context, policy: policy) }
            // Signals cancel the loop: a sleep ends at once, a running backup aborts its upload.
            signal(SIGTERM, SIG_IGN)
            signal(SIGINT, SIG_IGN)
            let sources = [SIGTERM, SIGINT].map { number -> DispatchSourceSignal in
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler {
                    DaemonCommand.log("received \(number == SIGTERM ? "SIGTERM" : "SIGINT"), stopping")
                    loop.cancel()
                }
                source.resume()
                return source
            }
            defer { sources.forEach { $0.cancel() } }
            do { try await loop.value } catch is CancellationError {}
            DaemonCommand.log("stopped")
            return ExitStatus.ok
        }
    }

    static func log(_ line: String) { Console.note("\(ISO8601.string(Date())) bosbackup daemon: \(line)") }

    static func loop(context: Context, policy: Policy) async throws {
        log("started, pid \(getpid()), policy \(policy.file ?? "?"), time zone \(policy.timeZone.identifier)")
        while !Task.isCancelled {
            do {
                let catalog = try context.openCatalog()
                let lock = try context.lock()
                let scheduled = try context.scheduler(catalog)
                for decision in try scheduled.decide() where decision.due { log("\(decision.job): \(decision.explanation)") }
                let report = try await scheduled.run()
                for outcome in report.jobs where outcome.decision.due {
                    if let s = outcome.snapshot {
                        log("\(s.job): snapshot \(s.id) stored on \(s.target) (\(s.storedBytes) bytes)")
                    } else {
                        log("\(outcome.decision.job): FAILED: \(outcome.error ?? "unknown error")")
                    }
                }
                if !report.resumedDeletions.isEmpty {
                    log("finished deletions an earlier run left: \(report.resumedDeletions.map(\.id).joined(separator: ", "))")
                }
                for line in RunCommand.warnings(report) { log(line) }
                withExtendedLifetime(lock) {}
            } catch let busy as LockBusyError {
                log("\(busy)")
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                // A broken catalog or policy must not kill the daemon; it tries again at the next fire.
                log("run failed: \(error)")
            }
            try Task.checkCancellation()
            let now = Date()
            let next = policy.jobs.compactMap { $0.cron.next(after: now, in: policy.timeZone) }.min() ?? now.addingTimeInterval(3600)
            log("sleeping until \(ISO8601.string(next, in: policy.timeZone))")
            try await Task.sleep(nanoseconds: UInt64(max(0, next.timeIntervalSinceNow) * 1e9) + 1_000_000)
        }
    }
}
