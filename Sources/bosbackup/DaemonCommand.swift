import ArgumentParser
import BOSBackup
import Dispatch
import Foundation

struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Run the policy without cron: sleep until the next fire time, run due jobs, repeat.",
        discussion: """
            SIGTERM or SIGINT stops it cleanly; a snapshot in progress is abandoned and never cataloged.
            Like run, it writes the policy's metrics.textfile after every pass, and again every
            5 minutes while it sleeps (overdue is a matter of time), and runs notify.command
            after each failure. It logs one line per event on stderr: with its time, or into
            the journal with a <N> priority.
            """)

    @OptionGroup var common: CommonOptions

    func run() async throws {
        try await reporting {
            guard common.now == nil else { throw UsageError("the daemon runs on the real clock; use `run --now` to simulate time") }
            let context = try Context(common)
            try context.authorize(.operator, "daemon")
            let policy = try context.requirePolicy()
            let output = RunOutput(style: .daemon, context: context)
            // The schedule, and the WAL archive beside it (its own catalog connection, its own lock).
            let stop = StopRequest()
            let schedule = Task { try await DaemonCommand.loop(context: context, policy: policy, output: output) }
            let archiving = Task {
                if !policy.archives.isEmpty { await DaemonCommand.archive(context: context, policy: policy, output: output, stop: stop) }
            }
            // Signals cancel the schedule (a sleep ends at once, a running backup aborts its upload) and
            // stop the archive after it shipped what it read to every target.
            let sources = StopSignals.handle(output, saying: "stopping") {
                stop.request()
                schedule.cancel()
            }
            defer { sources.forEach { $0.cancel() } }
            var failure: Error?
            do { try await schedule.value } catch is CancellationError {} catch { failure = error }
            stop.request()
            await archiving.value
            if let failure { throw failure }
            output.done("stopped")
            return ExitStatus.ok
        }
    }

    /// While it sleeps, the metrics file is rewritten this often: `overdue` turns 1 by
    /// the clock alone, and a file that never changes looks like a dead daemon.
    static let metricsRefresh: TimeInterval = 300

    static func loop(context: Context, policy: Policy, output: RunOutput) async throws {
        output.done("started, pid \(getpid()), policy \(policy.file ?? "?"), time zone \(policy.timeZone.identifier)")
        while !Task.isCancelled {
            await pass(context: context, output: output)
            try Task.checkCancellation()
            let now = Date()
            let next = policy.jobs.compactMap { $0.cron.next(after: now, in: policy.timeZone) }.min() ?? now.addingTimeInterval(3600)
            output.done("sleeping until \(ISO8601.string(next, in: policy.timeZone))")
            while next.timeIntervalSinceNow > 0 {
                let nap = min(next.timeIntervalSinceNow, metricsRefresh)
                try await Task.sleep(nanoseconds: UInt64(max(0, nap) * 1e9) + 1_000_000)
                if next.timeIntervalSinceNow > 0 { refreshMetrics(context: context, output: output) }
            }
        }
    }

    /// `bosbackup archive` inside the daemon, for every database with an archive: entry.
    /// What goes wrong here is logged and never stops the schedule.
    static func archive(context: Context, policy: Policy, output: RunOutput, stop: StopRequest) async {
        do {
            let catalog = try context.openCatalog()
            let lock = try context.archiveLock()
            defer { withExtendedLifetime(lock) {} }
            output.done("archiving \(policy.archives.map(\.database).joined(separator: ", ")) to "
                + Set(policy.archives.flatMap { $0.targets.map(\.target) }).sorted().joined(separator: ", "))
            try await ArchiveLoop(context: context, policy: policy, catalog: catalog, output: output).run(stop: stop)
        } catch is CancellationError {
        } catch let busy as LockBusyError {
            output.failure("not archiving: another bosbackup archive holds \(busy.path)", priority: .warning)
        } catch {
            output.failure("not archiving: \(error)", priority: .error)
        }
    }

    /// One pass, as `run` does it; nothing that goes wrong here stops the daemon.
    static func pass(context: Context, output: RunOutput) async {
        var catalog: Catalog?
        do {
            let opened = try context.openCatalog()
            catalog = opened
            let lock = try context.lock()
            defer { withExtendedLifetime(lock) {} }
            let scheduled = try context.scheduler(opened)
            for decision in try scheduled.decide() where decision.due { output.done("\(decision.job): \(decision.explanation)") }
            let report = try await scheduled.run()
            for outcome in report.jobs where outcome.decision.due {
                if let s = outcome.snapshot {
                    output.done("\(s.job): snapshot \(s.shortID) stored on \(s.target) (\(s.storedBytes) bytes)")
                } else if let error = outcome.error {
                    output.failure("\(outcome.decision.job): FAILED: \(error)", priority: .error)
                } else {
                    output.done("\(outcome.decision.job): passed" + (outcome.report.map { "; report \($0)" } ?? ""))
                }
            }
            if !report.resumedDeletions.isEmpty {
                output.done("finished deletions an earlier run left: \(report.resumedDeletions.map(\.shortID).joined(separator: ", "))")
            }
            for line in RunCommand.warnings(report) { output.failure(line, priority: .warning) }
            await context.sealAuditIfDue(opened, output: output)
            _ = context.writeMetrics(opened, output: output)
            context.notify(NotifyEvent.failures(in: report, policy: scheduled.policy, at: context.clock.now(), exitCode: ExitStatus.code(for:)),
                           output: output)
        } catch let busy as LockBusyError {
            output.failure("\(busy)", priority: .warning)
            if let catalog { _ = context.writeMetrics(catalog, output: output) }
        } catch is CancellationError {
            return
        } catch {
            // A broken catalog or policy must not kill the daemon; it tries again at the next fire.
            output.failure("run failed: \(error)", priority: .error)
            if let catalog { _ = context.writeMetrics(catalog, output: output) }
            context.notify([NotifyEvent(kind: .runFailed, error: "\(error)", exitCode: ExitStatus.code(for: error), time: context.clock.now())],
                           output: output)
        }
    }

    static func refreshMetrics(context: Context, output: RunOutput) {
        guard context.policy?.metricsTextfile != nil else { return }
        do {
            _ = context.writeMetrics(try context.openCatalog(readOnly: true), output: output)
        } catch {
            output.failure("could not open the catalog to refresh the metrics: \(error)", priority: .error)
        }
    }
}
