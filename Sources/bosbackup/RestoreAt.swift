import BOSBackup
import Foundation

/// `restore --at TIME | --txid N`: from the WAL archive, into a path or (with
/// `--live`) into scratch for triage beside the live database.
extension RestoreCommand {
    func restorePointInTime(_ context: Context, _ catalog: Catalog, into path: String, force: Bool)
        async throws -> (name: String, restored: PointInTimeRestore.Restored) {
        let (name, plans) = try context.pointInTimePlans(catalog, pointInTime, database)
        let progress = ProgressLine()
        defer { progress.clear() }
        let restored = try await PointInTimeRestore(catalog: catalog).restore(
            plans, into: path, force: force, using: context.restorer(catalog, progress: progress), fullCheck: fullCheck,
            segmentsOn: context.target(named:), baseOn: context.target(for:))
        progress.clear()
        for (target, error) in restored.unusable { Console.error("could not restore from \(target): \(error); restored from the next archive target") }
        return (name, restored)
    }

    /// "2026-12-01T10:04:30Z" or "txid 412 of generation 1a2b3c4d5e6f".
    func describeState(_ restored: PointInTimeRestore.Restored, _ context: Context) -> String {
        restored.plan.at == .distantFuture ? "txid \(restored.applied.txid) of generation \(SnapshotID.short(restored.plan.generation.id))"
            : context.local(restored.plan.at)
    }

    func json(_ restored: PointInTimeRestore.Restored) -> [String: Any] {
        let plan = restored.plan
        return ["at": plan.at == .distantFuture ? NSNull() as Any : ISO8601.string(plan.at) as Any, "txid": pointInTime.txid as Any,
                "base_snapshot": plan.base.id, "generation": plan.generation.id, "last_txid": restored.applied.txid,
                "last_commit_seen_at": ISO8601.string(restored.asOf), "target": plan.target, "path": restored.outcome.path,
                "safety_copy": restored.outcome.safetyCopy as Any, "tables": restored.outcome.tables]
    }

    /// What a restore from the archive is made of, one line.
    func madeOf(_ r: PointInTimeRestore.Restored, _ context: Context) -> String {
        "snapshot \(r.plan.base.shortID) + \(r.applied.txid) archived commit\(r.applied.txid == 1 ? "" : "s") from \(r.plan.target) "
            + "(the last seen at \(context.local(r.asOf)))"
    }

    func restoreAt(_ context: Context, _ catalog: Catalog, path: String) async throws -> Int32 {
        let (name, restored) = try await restorePointInTime(context, catalog, into: path, force: force)
        if json {
            Console.json(json(restored))
        } else {
            Console.out("restored \(name) as of \(describeState(restored, context)) into \(restored.outcome.path): \(madeOf(restored, context))")
            if let aside = restored.outcome.safetyCopy { Console.out("the database that was there is kept at \(aside)") }
            Console.out("checked: base snapshot byte-for-byte, each segment's SHA-256, quick_check; \(restored.outcome.tables.values.reduce(0, +)) rows")
        }
        return ExitStatus.ok
    }

    /// `restore --at TIME --live DB`: the state at TIME restored into scratch (kept, and
    /// reused by `diff --at` and `recover --at`) and compared with live, which is only read.
    func triageAt(_ context: Context, _ catalog: Catalog, live: String) async throws -> Int32 {
        let (name, path, state) = try await context.pointInTimeCopy(catalog, pointInTime, database, fullCheck: fullCheck)
        let livePath = Context.absolute(live)
        let liveCounts = try TableCounts.count(in: try ConsistentCopy.openSource(livePath))
        let comparison = try LiveComparison.compare(copyAt: path, cataloged: [:], restored: state.tables, liveCounts: liveCounts,
                                                    rowsAgainst: livePath)
        if json {
            Console.json(["generation": state.generation, "last_txid": state.txid, "last_commit_seen_at": state.seenAt.map(ISO8601.string) as Any,
                          "base_snapshot": state.baseSnapshot, "target": state.target, "path": path, "live": livePath,
                          "missing_rows": comparison.missingRows, "changed_rows": comparison.changedRows, "verdict": comparison.lossSummary as Any,
                          "tables": comparison.diff.rows.map { row -> [String: Any] in
                              ["name": row.table, "restored": row.restored as Any, "live": row.live as Any, "delta": row.delta as Any,
                               "missing_in_live": comparison.rowDiffs[row.table]?.missingInLive as Any,
                               "only_in_live": comparison.rowDiffs[row.table]?.onlyInLive as Any, "changed": comparison.rowDiffs[row.table]?.changed as Any]
                          }])
        } else {
            Console.out(Console.bold(context.describe(state, database: name)) + "  verified")
            RestoreCommand.printComparison(comparison, copy: "state")
            Console.out("  restored copy: \(path)")
            let again = pointInTime.txid.map { "--txid \($0)" + (pointInTime.generation.map { " --generation \($0)" } ?? "") } ?? "--at \(pointInTime.at ?? "")"
            if comparison.lostRows > 0 {
                Console.out("  next: bosbackup diff \(again) --live \(live)   then   bosbackup recover \(again) --live \(live) --table TABLE --sql review.sql")
            }
            Console.out("live database \(livePath) was opened read-only and not changed")
            Console.out("scratch copies kept in \((path as NSString).deletingLastPathComponent) (remove with `bosbackup scratch clean`)")
        }
        return ExitStatus.ok
    }
}
