import BOSBackup
import Foundation

/// How `timeline` shows its answers: one line per commit, the operator's next command.
struct TimelinePrinter {
    let context: Context
    let database: String
    let limit: Int

    /// "orders −3000, order_items −8912 (one transaction)": what one commit did.
    static func describe(_ counts: [TableCount]) -> String {
        let parts = counts.map { count -> String in
            let kinds = [(count.deleted, "−"), (count.inserted, "+"), (count.changed, "~")].filter { $0.0 > 0 }.map { "\($0.1)\($0.0)" }
            return "\(count.table) \(kinds.joined(separator: " "))"
        }
        return parts.joined(separator: ", ") + (parts.count > 1 ? " (one transaction)" : "")
    }

    /// "10:06:00.412Z txid 5 (committed after 10:05:59.210Z)": the archiver saw the commit at the
    /// first time and the one before it at the second, so it happened between the two.
    func when(_ moment: CommitMoment, _ span: TimelineSpan?) -> String {
        let precise = { ISO8601.string($0, in: context.timeZone, fractional: true) }
        let after = moment.after.map { $0 < moment.seenAt ? " (committed after \(precise($0)))" : " (seen in the same read as the commit before it)" } ?? ""
        return "\(precise(moment.seenAt)) \(txid(moment, span))" + after
    }

    static func key(_ values: [SQLValue], _ names: [String]) -> String {
        values.count == 1 ? literal(values[0]) : "(" + zip(names, values).map { "\($0)=\(literal($1))" }.joined(separator: ", ") + ")"
    }

    static func literal(_ value: SQLValue) -> String {
        switch value {
        case .null: return "NULL"
        case .integer(let v): return String(v)
        case .real(let v): return String(v)
        case .text(let v):
            return "'" + Console.printable(v).replacingOccurrences(of: "'", with: "''") + "'"
        case .blob(let v): return "x'" + v.hex + "'"
        }
    }

    static func row(_ values: [SQLValue], _ columns: [String]) -> String {
        zip(columns, values).map { "\($0)=\(literal($1))" }.joined(separator: ", ")
    }

    /// "walked txids 1…1234 of generation 1a2b3c4d5e6f on nas (10:00:00Z – 14:10:00Z; restored in 0.4 s, walked in 1.2 s)",
    /// or "walked 5000 commits of generations 1a2b3c4d5e6f … 9f8e7d6c5b4a on nas (…)" across rotations.
    func walked(_ span: TimelineSpan?) -> String {
        guard let span else { return "" }
        let range = [span.fromSeen, span.to?.seenAt].compactMap { $0 }.map(context.local).joined(separator: " – ")
        let what: String
        if span.lastGeneration != span.generation {
            what = "\(span.commits) commits of generations \(SnapshotID.short(span.generation)) … \(SnapshotID.short(span.lastGeneration))"
        } else {
            what = "txids " + (span.to.map { "\(span.fromTxid + 1)…\($0.txid)" } ?? "none after \(span.fromTxid)") + " of generation \(SnapshotID.short(span.generation))"
        }
        return "walked \(what) on \(span.target) (\(range); " + String(format: "restored in %.1f s, walked in %.1f s)", span.restoreSeconds, span.walkSeconds)
            + (span.endedBeforeNewest ? "; a newer generation does not continue the last one walked (the archive lost its position in between): give --since in it" : "")
    }

    /// "txid 5", or "txid 5 of generation 1a2b3c4d5e6f" when the walk crossed generations.
    func txid(_ moment: CommitMoment, _ span: TimelineSpan?) -> String {
        "txid \(moment.txid)" + (span.map { $0.generation != $0.lastGeneration } == true ? " of generation \(SnapshotID.short(moment.generation))" : "")
    }

    static func spanJSON(_ span: TimelineSpan?) -> [String: Any] {
        guard let span else { return [:] }
        return ["generation": span.generation, "last_generation": span.lastGeneration, "target": span.target, "base_snapshot": span.base, "from_txid": span.fromTxid, "to_txid": span.to?.txid as Any,
                "commits": span.commits, "from": span.fromSeen.map(ISO8601.string) as Any, "to": span.to.map { ISO8601.string($0.seenAt) } as Any,
                "restore_seconds": span.restoreSeconds, "walk_seconds": span.walkSeconds, "end_seconds": span.endSeconds]
    }

    static func momentJSON(_ moment: CommitMoment) -> [String: Any] {
        ["generation": moment.generation, "txid": moment.txid, "seen_at": ISO8601.string(moment.seenAt), "after": moment.after.map(ISO8601.string) as Any]
    }

    static func countsJSON(_ counts: [TableCount]) -> [[String: Any]] {
        counts.map { ["table": $0.table, "inserted": $0.inserted, "changed": $0.changed, "deleted": $0.deleted] }
    }

    func print(_ timeline: KeyTimeline, json: Bool) {
        if json {
            Console.json(["table": timeline.table, "key": timeline.key, "walked": Self.spanJSON(timeline.span),
                          "at_start": timeline.atStart.map { TableKey.keyValue($0) } as Any,
                          "events": timeline.events.map { event -> [String: Any] in
                              Self.momentJSON(event.moment).merging(["kind": event.change.kind.rawValue, "changed_columns": event.changedColumns,
                                                                     "old": event.change.old.map { TableKey.keyValue($0) } as Any,
                                                                     "new": event.change.new.map { TableKey.keyValue($0) } as Any,
                                                                     "commit": Self.countsJSON(event.commit)]) { $1 }
                          }])
            return
        }
        let name = "\(database).\(timeline.table) \(timeline.keyNames.joined(separator: ","))=\(timeline.key.joined(separator: ","))"
        Console.out(Console.bold(name) + ": \(timeline.events.count) commit\(timeline.events.count == 1 ? "" : "s") touched it; \(walked(timeline.span))")
        Console.out("  at the start: " + (timeline.atStart.map { Self.row($0, timeline.columns) } ?? "not there"))
        for event in timeline.events {
            let what: String
            switch event.change.kind {
            case .inserted: what = "inserted  " + Self.row(event.change.new ?? [], timeline.columns)
            case .deleted: what = "deleted   was " + Self.row(event.change.old ?? [], timeline.columns)
            case .changed:
                let columns = event.changedColumns.compactMap { column -> String? in
                    guard let i = timeline.columns.firstIndex(of: column), let old = event.change.old?[i], let new = event.change.new?[i] else { return nil }
                    return "\(column): \(Self.literal(old)) → \(Self.literal(new))"
                }
                what = "changed   " + columns.joined(separator: ", ")
            }
            let line = "  \(when(event.moment, timeline.span))  \(what)"
            Console.out(event.change.kind == .deleted ? Console.red(line) : line)
            if event.commit.count > 1 || (event.commit.first.map { $0.inserted + $0.changed + $0.deleted } ?? 0) > 1 {
                Console.out("      that commit: \(Self.describe(event.commit))")
            }
        }
    }

    func print(_ timeline: LostRowsTimeline, live: String, json: Bool) {
        if json {
            Console.json(["table": timeline.table, "live": Context.absolute(live), "walked": Self.spanJSON(timeline.span), "lost_rows": timeline.lostRows,
                          "losses": timeline.losses.map { loss -> [String: Any] in
                              Self.momentJSON(loss.moment).merging(["rows": loss.keys.count, "keys": loss.keys.prefix(limit).map(TableKey.keyValue),
                                                                    "commit": Self.countsJSON(loss.commit)]) { $1 }
                          },
                          "deleted_again": timeline.deletedAgain.map { ["key": TableKey.keyValue($0.key), "deleted_at": $0.deletions.map(\.txid), "inserted_at": $0.insertions.map(\.txid)] },
                          "reused": timeline.reused.map { ["key": TableKey.keyValue($0.key), "deleted_at": $0.deletions.map(\.txid), "other_columns": $0.otherColumns] },
                          "not_yet_archived": timeline.notYetArchived])
            return
        }
        let commits = timeline.losses.count
        Console.out(Console.bold("\(database).\(timeline.table)") + ": \(timeline.lostRows) row\(timeline.lostRows == 1 ? "" : "s") live lacks went missing in "
                    + "\(commits) commit\(commits == 1 ? "" : "s"); \(walked(timeline.span))")
        for loss in timeline.losses {
            Console.out(Console.red("  \(when(loss.moment, timeline.span)): \(Self.describe(loss.commit))"))
            if limit != 0 {
                let shown = loss.keys.prefix(limit).map { Self.key($0, timeline.keyNames) }
                Console.out("      \(timeline.table) missing since: \(shown.joined(separator: ", "))" + (loss.keys.count > shown.count ? " … (\(loss.keys.count - shown.count) more; --limit)" : ""))
            }
            Console.out("      put back: bosbackup recover --txid \(loss.moment.txid - 1) --generation \(SnapshotID.short(loss.moment.generation)) "
                        + "--live \(live) --table \(timeline.table) --sql review.sql   (foreign keys bring children and parents along)")
        }
        for key in timeline.deletedAgain.prefix(limit) {
            Console.out("  deleted again: \(Self.key(key.key, timeline.keyNames)) deleted at txid \(key.deletions.map { String($0.txid) }.joined(separator: ", "))"
                        + (key.insertions.isEmpty ? "" : ", back at txid \(key.insertions.map { String($0.txid) }.joined(separator: ", "))"))
        }
        for key in timeline.reused.prefix(limit) {
            Console.out("  key reused: \(Self.key(key.key, timeline.keyNames)) was deleted at txid \(key.deletions.last.map { String($0.txid) } ?? "?"); "
                        + "live has it again with other \(key.otherColumns.joined(separator: ", "))")
        }
        for (label, list) in [("deleted again", timeline.deletedAgain), ("key reused", timeline.reused)] where list.count > limit {
            Console.out("  \(label): … (\(list.count - limit) more; --limit)")
        }
        if timeline.notYetArchived > 0 {
            let shown = timeline.notYetArchivedKeys.prefix(max(limit, 0)).map { Self.key($0, timeline.keyNames) }
            Console.out("  \(timeline.notYetArchived) row\(timeline.notYetArchived == 1 ? "" : "s") live lacks \(timeline.notYetArchived == 1 ? "is" : "are") still in the newest archived state: "
                        + "deleted after \(timeline.span?.to.map { "txid \($0.txid)" } ?? "it"), not archived yet" + (shown.isEmpty ? "" : ": " + shown.joined(separator: ", ")))
        }
        if timeline.lostRows == 0 && timeline.notYetArchived == 0 {
            Console.out("  nothing live lacks went missing in the commits walked (rows deleted before \(timeline.span?.fromSeen.map(context.local) ?? "the start"): give --since earlier)")
        }
    }
}
