import ArgumentParser
import BOSBackup
import Foundation

struct RecoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Put rows that live lost back from a snapshot or a second of the WAL archive (--at), with their dependent rows, without touching newer ones.",
        discussion: """
            Follows foreign keys: an order comes back with its items, payments and
            shipments, and with any parent row live lost too. A row whose key exists in
            live is never overwritten. Rows go in with the columns both copies have
            (columns only live has get their defaults); how the schemas differ is
            listed. --sql FILE writes the statements for review; --apply copies the
            live database aside and then inserts everything in one transaction.
            """)

    @OptionGroup var common: CommonOptions
    @Option(help: "Snapshot id.") var snapshot: String?
    @OptionGroup var pointInTime: PointInTimeOptions
    @OptionGroup var database: DatabaseOption
    @Option(help: "Live database to repair.") var live: String
    @Option(help: "Table whose missing rows to put back.") var table: String
    @Option(help: "Write the SQL for review instead of applying it.") var sql: String?
    @Flag(help: "Apply it (after copying the live database aside).") var apply = false
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        try await reporting {
            guard (sql != nil) != apply else { throw UsageError("give exactly one of --sql FILE (review) or --apply") }
            let context = try Context(common)
            try context.authorize(apply ? .admin : .operator, apply ? "recover --apply" : "recover --sql")
            // Before minutes of restoring: a review file already there is never replaced.
            if let sql, DurableFile.exists(Context.absolute(sql)) { throw RecoveryError.reviewFileExists(Context.absolute(sql)) }
            let catalog = try context.openCatalog()
            let copy = try await context.copyToCompare(catalog, snapshot: snapshot, pointInTime, database)
            let livePath = Context.absolute(live)
            let recovery = try RowRecovery(snapshotPath: copy.path, livePath: livePath, table: table)
            var safetyCopy: String?
            let plan: RecoveryPlan
            if let sql {
                plan = try recovery.planForReview()
                try recovery.writeSQL(to: Context.absolute(sql), header: "bosbackup recover: \(table) from \(copy.what) into \(livePath)")
            } else {
                plan = try recovery.apply { plan in
                    let aside = DurableFile.unusedPath(livePath + ".before-recover-" + ISO8601.compact(context.clock.now()))
                    try ConsistentCopy.safetyCopy(of: livePath, to: aside, inflight: try InflightFiles(scratch: context.scratch))
                    safetyCopy = aside
                    // The row before the live database changes; no row, no change.
                    try catalog.auditFirst(action: "recover", snapshotID: copy.snapshotID, detail: "into \(livePath)"
                        + (copy.state.map { " from txid \($0.txid) of archive generation \($0.generation)" + ($0.seenAt.map { " seen \(ISO8601.string($0))" } ?? "") } ?? "")
                        + ": " + plan.tables.map { "\($0.table) +\($0.rows)" }.joined(separator: ", ") + "; safety copy \(aside)")
                }
            }
            if json {
                Console.json(copy.json.merging(["live": livePath, "applied": apply, "sql": sql.map(Context.absolute) as Any,
                              "safety_copy": safetyCopy as Any, "conflicts": plan.conflicts, "triggers_not_run": plan.triggersNotRun, "schema": plan.schema,
                              "tables": plan.tables.map { ["name": $0.table, "rows": $0.rows, "role": $0.role, "held_back": $0.heldBack] },
                              "clashes": plan.clashes.map { ["table": $0.table, "key": TableKey.keyValue($0.key), "columns": $0.columns,
                                                             "values": $0.values.map { TableKey.keyValue([$0]) }] }]) { $1 })
                return ExitStatus.ok
            }
            Console.out(apply ? "recovered from \(copy.what) into \(livePath) (one transaction):"
                              : "plan to recover from \(copy.what); statements written to \(sql!) for review:")
            for t in plan.tables { Console.out("  \(t.table): +\(t.rows) rows (\(t.role))" + (t.heldBack > 0 ? ", \(t.heldBack) held back" : "")) }
            for note in plan.schema { Console.out("  schema: \(note)") }
            if !plan.triggersNotRun.isEmpty {
                Console.out("  triggers not run (the rows come back as they were, not as new events): \(plan.triggersNotRun.joined(separator: ", "))"
                            + (apply ? "" : "; the file drops and recreates them inside its transaction"))
            }
            if !plan.clashes.isEmpty {
                Console.out("  \(plan.heldBack) rows held back: live has a UNIQUE value of theirs in another row (or they depend on such a row; resolve, then run again):")
                for clash in plan.clashes.prefix(20) {
                    let values = zip(clash.columns, clash.values).map { "\($0) = \(TableKey.keyValue([$1]))" }.joined(separator: ", ")
                    Console.out("    \(clash.table)" + (clash.key.isEmpty ? "" : " \(TableKey.keyValue(clash.key))") + ": \(values)")
                }
                if plan.clashes.count > 20 { Console.out("    … \(plan.clashes.count - 20) more (--json lists all)") }
            }
            if plan.conflicts > 0 {
                Console.out("  \(plan.conflicts) rows of \(table) exist in live with other contents: not overwritten (see `bosbackup diff`)")
            }
            if let safetyCopy { Console.out("the live database as it was before is kept at \(safetyCopy)") }
            return ExitStatus.ok
        }
    }
}
