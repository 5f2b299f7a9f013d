import ArgumentParser
import BOSBackup
import Foundation

struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Triage (--latest N | --at TIME, with --live DB) or a real restore (--snapshot ID | --at TIME, with --into PATH).",
        discussion: """
            restore --latest 3 --live /var/lib/bos/bos.db
                restores the 3 newest snapshots into the scratch folder, verifies each
                and shows per-table rows: cataloged, restored, live, delta = live −
                restored. Live is read-only.
            restore --snapshot ID --into PATH [--force]
                restores one snapshot to PATH; an existing file is only replaced with
                --force, and is first copied aside (the new path is printed). Stop the
                BOS first.
            restore --at TIME|latest|--txid N --into PATH [--force]
                the state of the last commit the WAL archive saw at or before TIME
                (or right after txid N): base snapshot + archived commits, from the
                first archive target that can give it.
            restore --at TIME --live DB
                that state restored into scratch and compared with live, row by key.
            """)

    @OptionGroup var common: CommonOptions
    @Option(help: "Snapshot id to restore.") var snapshot: String?
    @OptionGroup var pointInTime: PointInTimeOptions
    @Option(help: "Where to restore the snapshot to.") var into: String?
    @Flag(help: "Replace an existing database at --into (after copying it aside).") var force = false
    @Option(help: "Restore the N newest snapshots into scratch for triage.") var latest: Int?
    @Option(help: "Live database to compare with (opened read-only).") var live: String?
    @OptionGroup var database: DatabaseOption
    @Flag(help: "Run the full integrity_check on what is restored (default: the byte-for-byte SHA-256 match, plus quick_check unless a verify already passed these bytes; the full check is verify's job).")
    var fullCheck = false
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        try await reporting {
            let context = try Context(common)
            try context.authorize(into.map { context.restoreRole(into: Context.absolute($0)) } ?? .operator, into.map { "restore --into \(Context.absolute($0))" } ?? "restore --live (triage into scratch)")
            let catalog = try context.openCatalog()
            if try pointInTime.asked() {
                guard (into == nil) != (live == nil), snapshot == nil, latest == nil else {
                    throw UsageError("--at TIME or --txid N needs --into PATH or --live DB (and no --snapshot or --latest)")
                }
                if let live { return try await triageAt(context, catalog, live: live) }
                return try await restoreAt(context, catalog, path: Context.absolute(into!))
            }
            if let into {
                guard let snapshot, latest == nil else { throw UsageError("--into needs --snapshot ID (and no --latest)") }
                return try await restoreInto(context, catalog, snapshot: snapshot, path: Context.absolute(into))
            }
            if snapshot != nil && latest == nil { throw UsageError("--snapshot needs --into PATH (or use --latest N for triage)") }
            return try await triage(context, catalog)
        }
    }

    private func restoreInto(_ context: Context, _ catalog: Catalog, snapshot id: String, path: String) async throws -> Int32 {
        let record = try catalog.snapshot(id)
        let progress = ProgressLine()
        let outcome = try await context.restorer(catalog, progress: progress).restore(record, from: try context.target(for: record), into: path, force: force, fullCheck: fullCheck)
        progress.clear()
        if json {
            Console.json(["id": record.id, "path": outcome.path, "safety_copy": outcome.safetyCopy as Any,
                          "bytes": outcome.bytes, "tables": outcome.tables])
        } else {
            Console.out("restored snapshot \(record.shortID) (\(record.name), taken \(context.local(record.takenAt))) into \(outcome.path)")
            if let aside = outcome.safetyCopy { Console.out("the database that was there is kept at \(aside)") }
            let structure: String
            switch outcome.structure {
            case .quickCheck: structure = "quick_check"
            case .integrityCheck: structure = "integrity_check"
            case .verified(let at): structure = "the same bytes passed verify at \(context.local(at))"
            case .pagesCheckedWhenRead: structure = "no structure check"
            }
            Console.out("checked: checksum, gzip, byte-for-byte SHA-256, \(structure); \(outcome.tables.count) tables, \(outcome.tables.values.reduce(0, +)) rows")
            for part in outcome.unchecked { Console.out("not checked: \(part)") }
        }
        return ExitStatus.ok
    }

    private func triage(_ context: Context, _ catalog: Catalog) async throws -> Int32 {
        let count = latest ?? 3
        guard count > 0 else { throw UsageError("--latest must be at least 1") }
        let only = try context.database(database, live: live)
        let candidates = try catalog.snapshots().filter { only == nil || $0.databaseName == only }
        let databases = Set(candidates.map(\.databaseName))
        if live != nil, only == nil, databases.count > 1 {
            // Another database's snapshot compared with this live file would report every row lost.
            throw UsageError("the catalog holds snapshots of \(databases.count) databases (\(databases.sorted().joined(separator: ", "))): give --database NAME")
        }
        let (snapshots, duplicates) = Triage.newestDistinct(count, from: candidates)
        // Opened first, so we know whether SQLite had to roll back a crashed writer's journal.
        let liveRecovered = try live.map { try ConsistentCopy.openSourceNoting(Context.absolute($0)).recovered } ?? false
        guard !snapshots.isEmpty else { throw UsageError("the catalog has no snapshots yet") }
        let progress = ProgressLine()
        defer { progress.clear() }
        var verifier = context.verifier(catalog, progress: progress)
        // During an incident the question is "which snapshot has my rows"; the full
        // index-content check (minutes per GB on two cores) is for verify and drills.
        verifier.quick = !fullCheck
        let results = try await Triage(verifier: verifier).run(snapshots, live: live.map(Context.absolute)) {
            try context.target(for: $0)
        }
        if json {
            Console.json(["same_database": duplicates.map { ["id": $0.skipped.id, "target": $0.skipped.target, "same_as": $0.chosen.id] },
                          "snapshots": results.map { r -> [String: Any] in
                ["id": r.snapshot.id, "name": r.snapshot.name, "taken_at": ISO8601.string(r.snapshot.takenAt),
                 "ok": r.verification.verdict == .passed, "problems": r.verification.problems,
                 "unchecked": r.verification.unchecked, "scratch_path": r.scratchPath,
                 "missing_rows": r.missingRows, "changed_rows": r.changedRows, "lost_rows": r.lostRows, "verdict": r.lossSummary as Any, "schema": r.schema,
                 "tables": r.diff.rows.map { row -> [String: Any] in
                     ["name": row.table, "cataloged": row.cataloged as Any, "restored": row.restored as Any,
                      "live": row.live as Any, "delta": row.delta as Any,
                      "missing_in_live": r.rowDiffs[row.table]?.missingInLive as Any,
                      "only_in_live": r.rowDiffs[row.table]?.onlyInLive as Any,
                      "changed": r.rowDiffs[row.table]?.changed as Any]
                 }]
            }])
        } else {
            for r in results { printTriage(r, context: context) }
            if live != nil, let best = Triage.holdingMostLost(results) {
                Console.out(Console.bold("snapshot \(best.snapshot.shortID) holds the most rows live lost") + " (\(best.lossSummary ?? ""))")
                Console.out("  next: bosbackup diff --snapshot \(best.snapshot.shortID) --live \(live!)   then   bosbackup recover --snapshot \(best.snapshot.shortID) --live \(live!) --table TABLE --sql review.sql")
            }
            for (skipped, chosen) in duplicates {
                Console.out("snapshot \(skipped.shortID) on \(skipped.target) is the same database as \(chosen.shortID) on \(chosen.target) (same SHA-256): restored once, from \(chosen.target)")
            }
            if let live {
                Console.out(liveRecovered
                    ? "live database \(live) had a crashed writer's unfinished transaction: SQLite rolled it back to its last commit on opening (as the BOS's next connection would); otherwise it was only read"
                    : "live database \(live) was opened read-only and not changed")
            }
            // The archive reaches past the newest snapshot: say how far, and how to look there.
            if let live, let policy = context.policy {
                let archived = Set(databases)
                for a in try policy.archiveStatus(catalog: catalog, now: context.clock.now()) where archived.contains(a.database) {
                    guard let upTo = a.completeUpTo ?? a.lastCommitSeen else { continue }
                    Console.out("archive \(a.database) → \(a.target): every commit up to \(context.local(upTo))"
                        + (a.lag.map { " (lag \(Duration.format($0)))" } ?? "")
                        + "; any second since its start: bosbackup restore --at TIME --live \(live)")
                }
                // Rows are missing: the archive can say which commit took them.
                for database in archived where policy.archive(of: database) != nil {
                    let lost = results.filter { $0.snapshot.databaseName == database }.flatMap { $0.comparison.rowDiffs.values }
                    guard let worst = lost.filter({ $0.missingInLive > 0 }).max(by: { $0.missingInLive < $1.missingInLive }) else { continue }
                    Console.out("  rows are missing from \(worst.table): find the commit that deleted them with "
                        + "bosbackup timeline --table \(worst.table) --lost --live \(live)" + (databases.count > 1 ? " --database \(database)" : ""))
                }
            }
            Console.out("scratch copies kept in \(Triage(verifier: verifier).restoreFolder) (remove with `bosbackup scratch clean`)")
        }
        return ExitStatus.code(for: results.map(\.verification.verdict))
    }

    private func printTriage(_ r: TriageResult, context: Context) {
        let status: String
        switch r.verification.verdict {
        case .passed: status = "verified"
        case .damaged: status = Console.red("FAILED: " + r.verification.problems.joined(separator: "; "))
        case .couldNotCheck: status = Console.red("COULD NOT CHECK: " + r.verification.unchecked.joined(separator: "; "))
        }
        Console.out(Console.bold("snapshot \(r.snapshot.shortID)") + "  \(r.snapshot.name)  taken \(context.local(r.snapshot.takenAt))  \(status)")
        RestoreCommand.printComparison(r.comparison, copy: "snapshot")
        Console.out("  restored copy: \(r.scratchPath)")
        Console.out()
    }

    /// The counts table (and, beside live, rows lost, newer and changed by key) and the verdict.
    static func printComparison(_ c: LiveComparison, copy: String) {
        let hasLive = c.diff.rows.contains { $0.live != nil }
        let header = ["TABLE", "CATALOG", "RESTORED"] + (hasLive ? ["LIVE", "DELTA", "LOST", "NEWER", "CHANGED"] : [])
        let rows = c.diff.rows.map { row -> [String] in
            var cells = [row.table, row.cataloged.map(String.init) ?? "-", row.restored.map(String.init) ?? "-"]
            if hasLive {
                cells.append(row.live.map(String.init) ?? "-")
                cells.append(row.delta.map { $0.formatted(sign: true) } ?? "-")
                cells.append(c.rowDiffs[row.table].map { String($0.missingInLive) } ?? "-")
                cells.append(c.rowDiffs[row.table].map { String($0.onlyInLive) } ?? "-")
                cells.append(c.rowDiffs[row.table].map { String($0.changed) } ?? "-")
            }
            return cells
        }
        let lines = Console.table(header, rows, rightAligned: [1, 2, 3, 4, 5, 6, 7])
        Console.out("  " + lines[0])
        for (line, row) in zip(lines.dropFirst(), c.diff.rows) {
            let lost = (c.rowDiffs[row.table]?.lost ?? 0) > 0 || (row.delta ?? 0) < 0
            Console.out("  " + (lost ? Console.red(line) : line))
        }
        for note in c.schema { Console.out("  schema: \(note)") }
        if hasLive {
            Console.out("  verdict: " + (c.lossSummary.map { "live lost rows this \(copy) still holds: \($0)" } ?? "live has every row this \(copy) has"))
        }
    }
}
