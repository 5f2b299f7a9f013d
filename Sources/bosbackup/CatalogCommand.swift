import ArgumentParser
import BOSBackup
import Foundation

struct CatalogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog", abstract: "Maintain the catalog.", subcommands: [Rebuild.self])

    struct Rebuild: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-create catalog rows for the snapshots a target holds (from their manifests).",
            discussion: """
                A damaged catalog: move it aside, then rebuild from every target into a new one.
                On a bucket several hosts share, only this host's snapshots (the policy's host:)
                and v1 snapshots are adopted: another host's would be pruned by this host's retention.
                --as-of TIME (S3 targets) reads the bucket as it was then, from its object versions: keys
                deleted since (delete markers) are found again, and their snapshots are read by version,
                cataloged under the target's URL with as_of= (read-only: never pruned through it).
                """)
        @OptionGroup var common: CommonOptions
        @Option(help: "Target name from the policy, or a target URL.") var target: String
        @Flag(help: "Adopt every host's snapshots, not only this host's (to inspect or restore another host's backups).")
        var allHosts = false
        @Option(name: .customLong("as-of"), help: "Read an S3 target as it was at this ISO 8601 time, from its object versions.")
        var asOf: String?
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await reporting {
                let context = try Context(common)
                try context.authorize(.admin, "catalog rebuild")
                let catalog = try context.openCatalog()
                let lock = try context.lock()
                defer { withExtendedLifetime(lock) {} }
                let (name, store) = try asOf.map { try context.open(url: try pastView(context, at: $0)) } ?? context.target(nameOrURL: target)
                try catalog.auditFirst(action: "rebuild", detail: "re-cataloging from \(store.displayURL)" + (allHosts ? " (all hosts)" : "")
                                       + (asOf.map { " as of \($0)" } ?? ""))
                let progress = ProgressLine()
                var rebuild = CatalogRebuild(catalog: catalog, host: context.policy?.host ?? BackupRequest.machineHostname)
                rebuild.allHosts = allHosts
                rebuild.progress = progress.handler
                let outcome = try await rebuild.rebuild(targetName: name, target: store)
                progress.clear()
                if json {
                    Console.json(["target": name, "added": outcome.added.map(\.id), "already_known": outcome.alreadyKnown,
                                  "other_hosts": outcome.otherHosts, "archive_generations": outcome.archiveGenerations,
                                  "archive_segments": outcome.archiveSegments,
                                  "skipped": outcome.skipped.map { ["key": $0.key, "why": $0.why] }])
                } else {
                    Console.out("\(name): \(outcome.added.count) snapshots added to the catalog, \(outcome.alreadyKnown) already there"
                        + (outcome.otherHosts > 0 ? "; \(outcome.otherHosts) of other hosts left out (--all-hosts adopts them)" : ""))
                    for s in outcome.added { Console.out("  + \(s.shortID)  \(s.name)  \(context.local(s.takenAt))") }
                    if outcome.archiveGenerations + outcome.archiveSegments > 0 {
                        Console.out("  + WAL archive: \(outcome.archiveGenerations) generations, \(outcome.archiveSegments) segments")
                    }
                    for s in outcome.skipped { Console.out("  skipped \(s.key): \(s.why)") }
                }
                return ExitStatus.ok
            }
        }

        /// The target's URL with `as_of=`: the bucket as it was at `time`.
        func pastView(_ context: Context, at time: String) throws -> String {
            guard let date = ISO8601.parse(time, defaultZone: context.timeZone) else {
                throw UsageError("--as-of \(time) is not an ISO 8601 time (e.g. 2026-12-01T22:00:00+08:00)")
            }
            let url = context.policy?.target(named: target)?.url ?? target
            guard url.lowercased().hasPrefix("s3://") else {
                throw UsageError("--as-of needs an S3 target: it reads object versions, which \(target) does not keep")
            }
            guard (try? S3Location(parsing: url))?.asOf == nil else { throw UsageError("give either --as-of or as_of= in the URL") }
            return url + (url.contains("?") ? "&" : "?") + "as_of=" + ISO8601.string(date)
        }
    }
}
