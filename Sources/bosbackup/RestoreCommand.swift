import ArgumentParser
import BOSBackup
import Foundation

struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Triage (--latest N [--live DB]) or a real restore (--snapshot ID --into PATH).",
        discussion: """
            restore --latest 3 --live /var/lib/bos/bos.db
                restores the 3 newest snapshots into the scratch folder, verifies each
                and shows per-table rows: cataloged, restored, live, delta = live −
                restored. Live is read-only.
            restore --snapshot ID --into PATH [--force]
                restores one snapshot to PATH; an existing file is only replaced with
                --force, and is first copied aside (the new path is printed). Stop the
                BOS first.
            """)

    @OptionGroup var common: CommonOptions
    @Option(help: "Snapshot id to restore.") var snapshot: String?
    @Option(help: "Restore the state at this time (ISO 8601, or latest) from the WAL archive: the last commit seen at or before it.") var at: String?
    @Option(help: "Restore the state right after this archived commit (txids count from 1 in each archive generation; 0 is its base snapshot).")
    var txid: Int64?
    @Option(help: "With --txid: the archive generation (id or prefix; default the newest).") var generation: String?
    @Option(name: .customLong("from-target"), help: "With --at or --txid: restore from this archive target only (default: the first that can).")
    var fromTarget: String?
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
            let catalog = try context.openCatalog()
            if at != nil || txid != nil {
                guard let into, snapshot == nil, latest == nil, (at == nil) != (txid == nil) else {
                    throw UsageError("--at TIME or --txid N needs --into PATH (and only one of them, no --snapshot or --latest)")
                }
                return try await restoreAt(context, catalog, path: Context.absolute(into))
            }
            if generation != nil { throw UsageError("--generation goes with --txid N") }
            if let into {
                guard let snapshot, latest == nil else { throw UsageError("--into needs --snapshot ID (and no --latest)") }
                return try await restoreInto(context, catalog, snapshot: snapshot, path: Context.absolute(into))
            }
            if snapshot != nil && latest == nil { throw UsageError("--snapshot needs --into PATH (or use --latest N for triage)") }
            return try await triage(context, catalog)
        }
    }

    /// The base snapshot of the generation that covers the time (or holds the txid),
    /// rolled forward by the archived commits up to it.
    private func restoreAt(_ context: Context, _ catalog: Catalog, path: String) async throws -> Int32 {
        let (policy, name, archive) = try context.archivedDatabase(database)
        let pitr = PointInTimeRestore(catalog: catalog)
        let targets = archive.targets.map(\.target).filter { fromTarget == nil || $0 == fromTarget }
        if let fromTarget, targets.isEmpty {
            throw UsageError("\(fromTarget) is not an archive target of database \(name) (\(archive.targets.map(\.target).joined(separator: ", ")))")
        }
        let plans: [PointInTimePlan]
        if let txid {
            plans = try pitr.plans(txid: txid, generation: generation, database: name, host: policy.host, targets: targets)
        } else {
            let when: Date
            if at == "latest" {
                guard let newest = try pitr.latest(database: name, host: policy.host, targets: targets) else {
                    throw PointInTimeError.noGeneration("database \(name) has no WAL archive yet")
                }
                when = newest
            } else {
                guard let text = at, let parsed = ISO8601.parse(text, defaultZone: context.timeZone) else {
                    throw UsageError("--at \(at ?? "") is not an ISO 8601 time (e.g. 2026-11-29T21:59:59+08:00) or latest")
                }
                when = parsed
            }
            plans = try pitr.plans(at: when, database: name, host: policy.host, targets: targets)
        }
        // Each archive target restores alone: when one cannot (damaged, unreachable), the next
        // gives the same state. Nothing is written by an attempt that fails.
        var attempt = 0
        while true {
            let plan = plans[attempt]
            do {
                return try await restore(plan, pitr, context, catalog, name: name, path: path)
            } catch {
                // A mistake in what was asked is the answer; so is the last target's failure.
                guard (error as? CategorizedError)?.category != .input, attempt + 1 < plans.count else { throw error }
                attempt += 1
                Console.error("could not restore from \(plan.target): \(error); trying \(plans[attempt].target)")
            }
        }
    }

    private func restore(_ plan: PointInTimePlan, _ pitr: PointInTimeRestore, _ context: Context, _ catalog: Catalog,
                         name: String, path: String) async throws -> Int32 {
        let segments = try context.target(named: plan.target)
        let progress = ProgressLine()
        var restorer = SnapshotRestorer(catalog: catalog, clock: context.clock)
        restorer.scratch = context.scratch
        restorer.progress = progress.handler
        var applied = PointInTimeRestore.Applied()
        let outcome = try await restorer.restore(plan.base, from: try context.target(for: plan.base), into: path, force: force,
                                                 fullCheck: fullCheck) { copy in
            applied = try await pitr.rollForward(plan, target: segments, onto: copy)
        }
        progress.clear()
        let asOf = applied.seenAt ?? plan.base.takenAt
        if json {
            Console.json(["at": plan.at == .distantFuture ? NSNull() as Any : ISO8601.string(plan.at) as Any, "txid": txid as Any, "base_snapshot": plan.base.id,
                          "generation": plan.generation.id, "last_txid": applied.txid, "last_commit_seen_at": ISO8601.string(asOf),
                          "target": plan.target, "path": outcome.path, "safety_copy": outcome.safetyCopy as Any, "tables": outcome.tables])
        } else {
            let when = plan.at == .distantFuture ? "txid \(applied.txid) of generation \(SnapshotID.short(plan.generation.id))" : context.local(plan.at)
            Console.out("restored \(name) as of \(when) into \(outcome.path): snapshot \(plan.base.shortID) + "
                + "\(applied.txid) archived commit\(applied.txid == 1 ? "" : "s") from \(plan.target) (the last seen at \(context.local(asOf)))")
            if let aside = outcome.safetyCopy { Console.out("the database that was there is kept at \(aside)") }
            Console.out("checked: base snapshot byte-for-byte, each segment's SHA-256, quick_check; \(outcome.tables.values.reduce(0, +)) rows")
        }
        return ExitStatus.ok
    }

    private func restoreInto(_ context: Context, _ catalog: Catalog, snapshot id: String, path: String) async throws -> Int32 {
        let record = try catalog.snapshot(id)
        let progress = ProgressLine()
        var restorer = SnapshotRestorer(catalog: catalog, clock: context.clock)
        restorer.scratch = context.scratch
        restorer.progress = progress.handler
        let outcome = try await restorer.restore(record, from: try context.target(for: record), into: path, force: force, fullCheck: fullCheck)
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
        let hasLive = r.diff.rows.contains { $0.live != nil }
        let header = ["TABLE", "CATALOG", "RESTORED"] + (hasLive ? ["LIVE", "DELTA", "LOST", "NEWER", "CHANGED"] : [])
        let rows = r.diff.rows.map { row -> [String] in
            var cells = [row.table, row.cataloged.map(String.init) ?? "-", row.restored.map(String.init) ?? "-"]
            if hasLive {
                cells.append(row.live.map(String.init) ?? "-")
                cells.append(row.delta.map { $0.formatted(sign: true) } ?? "-")
                cells.append(r.rowDiffs[row.table].map { String($0.missingInLive) } ?? "-")
                cells.append(r.rowDiffs[row.table].map { String($0.onlyInLive) } ?? "-")
                cells.append(r.rowDiffs[row.table].map { String($0.changed) } ?? "-")
            }
            return cells
        }
        let lines = Console.table(header, rows, rightAligned: [1, 2, 3, 4, 5, 6, 7])
        Console.out("  " + lines[0])
        for (line, row) in zip(lines.dropFirst(), r.diff.rows) {
            let lost = (r.rowDiffs[row.table]?.lost ?? 0) > 0 || (row.delta ?? 0) < 0
            Console.out("  " + (lost ? Console.red(line) : line))
        }
        for note in r.schema { Console.out("  schema: \(note)") }
        if hasLive {
            Console.out("  verdict: " + (r.lossSummary.map { "live lost rows this snapshot still holds: \($0)" } ?? "live has every row this snapshot has"))
        }
        Console.out("  restored copy: \(r.scratchPath)")
        Console.out()
    }
}
