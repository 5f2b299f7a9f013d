import ArgumentParser
import BOSBackup
import Foundation

struct DiffCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Row-level diff of a snapshot, or of a second of the WAL archive (--at), against the live database, by key.",
        discussion: """
            Rows missing in live (lost), only in live (newer), and changed, per table.
            Live is opened read-only. Rows are matched by the primary key, else by a
            UNIQUE index on NOT NULL columns; a table with neither is compared by whole
            rows, each copy of a duplicate counting (its keys are whole rows). Rows are
            compared on the columns both copies have; how the schemas differ is listed.
            """)

    @OptionGroup var common: CommonOptions
    @Option(help: "Snapshot id.") var snapshot: String?
    @OptionGroup var pointInTime: PointInTimeOptions
    @OptionGroup var database: DatabaseOption
    @Option(help: "Live database (opened read-only).") var live: String
    @Option(help: "Only this table.") var table: String?
    @Option(help: "List at most this many keys per kind (0: counts only).") var limit = 20
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        try await reporting {
            let context = try Context(common)
            try context.authorize(.operator, "diff")
            let catalog = try context.openCatalog()
            let copy = try await context.copyToCompare(catalog, snapshot: snapshot, pointInTime, database)
            let progress = ProgressLine()
            defer { progress.clear() }
            let diff = try RowDiff(snapshotPath: copy.path, livePath: Context.absolute(live))
            // One table: one that cannot be compared (not in both, its key changed) is the answer, exit 2.
            let (results, schema) = try table.map { ([try diff.diff(table: $0, limit: limit)], try diff.drift($0).notes()) }
                ?? diff.diffAll(limit: limit, progress: progress.handler)
            progress.clear()
            if json {
                Console.json(copy.json.merging(["live": Context.absolute(live), "schema": schema, "tables": results.map { r -> [String: Any] in
                    ["name": r.table, "key": r.keyColumns.map(Database.unquote), "compared_by": r.wholeRow ? "whole row" : "key", "missing_in_live": r.missingInLive, "only_in_live": r.onlyInLive,
                     "changed": r.changed, "missing_keys": r.missingKeys.map(TableKey.keyValue),
                     "new_keys": r.newKeys.map(TableKey.keyValue), "changed_keys": r.changedKeys.map(TableKey.keyValue),
                     "changed_rows": r.changedRows.map { ["key": TableKey.keyValue($0.key), "columns": $0.columns] }]
                }]) { $1 })
                return ExitStatus.ok
            }
            Console.out("\(copy.what) vs live \(live)")
            let rows = results.map { [$0.table, $0.wholeRow ? "(whole row)" : $0.keyColumns.joined(separator: ","), String($0.missingInLive), String($0.onlyInLive), String($0.changed)] }
            let lines = Console.table(["TABLE", "KEY", "MISSING IN LIVE", "ONLY IN LIVE", "CHANGED"], rows, rightAligned: [2, 3, 4])
            Console.out(lines[0])
            for (line, r) in zip(lines.dropFirst(), results) { Console.out(r.lost > 0 ? Console.red(line) : line) }
            for note in schema { Console.out("schema: \(note)") }
            for r in results where limit != 0 {
                // Changed rows name the columns that differ: "5 (status, note)".
                let changed = r.changedRows.map { "\(TableKey.keyValue($0.key)) (\($0.columns.joined(separator: ", ")))" }
                for (label, shown, total) in [("missing in live", r.missingKeys.map { "\(TableKey.keyValue($0))" }, r.missingInLive),
                                              ("changed", changed, r.changed)] where total > 0 {
                    Console.out("\(r.table) \(label): \(shown.joined(separator: ", "))\(total > shown.count ? " … (\(total - Int64(shown.count)) more; --limit)" : "")")
                }
            }
            return ExitStatus.ok
        }
    }
}
