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
                """)
        @OptionGroup var common: CommonOptions
        @Option(help: "Target name from the policy, or a target URL.") var target: String
        @Flag(help: "Adopt every host's snapshots, not only this host's (to inspect or restore another host's backups).")
        var allHosts = false
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await reporting {
                let context = try Context(common)
                try context.authorize(.admin, "catalog rebuild")
                let catalog = try context.openCatalog()
                let lock = try context.lock()
                defer { withExtendedLifetime(lock) {} }
                let (name, store) = try context.target(nameOrURL: target)
                try catalog.auditFirst(action: "rebuild", detail: "re-cataloging from \(store.displayURL)" + (allHosts ? " (all hosts)" : ""))
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
    }
}
