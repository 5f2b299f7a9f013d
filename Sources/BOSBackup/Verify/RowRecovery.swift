import CSQLite
import Foundation

public enum RecoveryError: Error, CustomStringConvertible, CategorizedError, Sendable {
    case liveLocked(String)
    case foreignKeyViolation(String)
    case noRowid(String)
    case constraintViolation(table: String, String)
    case reviewFileExists(String)

    public var description: String {
        switch self {
        case .liveLocked(let path):
            return "live database \(path) is locked by another connection that is writing; stop the BOS (or wait) and retry — nothing was changed"
        case .foreignKeyViolation(let detail): return "recovery would break foreign keys, nothing was changed: \(detail)"
        case .reviewFileExists(let path): return "\(path) already exists: give another file for the SQL (a review file is never overwritten)"
        case .constraintViolation(let table, let detail):
            return "putting rows back into \(table) breaks a constraint of live that the plan cannot check (\(detail)); nothing was changed"
        case .noRowid(let table): return "table \(table) has no key and columns named rowid, _rowid_ and oid: its rows cannot be told apart for recovery"
        }
    }
    public var category: ErrorCategory {
        switch self {
        case .liveLocked, .foreignKeyViolation, .noRowid, .constraintViolation: return .failure
        case .reviewFileExists: return .input
        }
    }
}

/// What a recovery puts back, per table.
public struct RecoveryPlan: Sendable {
    public struct Table: Sendable {
        public var table: String
        /// Rows to insert (missing from live).
        public var rows: Int64
        /// Why the table is involved: the table asked for, a child, or a parent.
        public var role: String
        /// Rows not put back because of a UNIQUE clash: the clashing rows, the
        /// rows that depend on them, and parents only those needed.
        public var heldBack: Int64 = 0
    }
    /// A row whose UNIQUE value (besides its key) live already has in another row.
    public struct UniqueClash: Sendable {
        public var table: String
        /// The row's key (empty for a table without one).
        public var key: [SQLValue]
        public var columns: [String]
        public var values: [SQLValue]
    }
    public var tables: [Table]
    /// Rows of the asked table whose key is in live with other contents: never overwritten.
    public var conflicts: Int64
    /// Live's triggers on the tables rows go into. Recovery does not run them:
    /// the rows come back as they were, they are not new business events.
    public var triggersNotRun: [String] = []
    /// Rows held back because live has one of their UNIQUE values in another row.
    public var clashes: [UniqueClash] = []
    /// How live's schema differs for the tables rows go into, one line each
    /// (see SchemaDrift): rows go in with the columns both have.
    public var schema: [String] = []
    public var totalRows: Int64 { tables.reduce(0) { $0 + $1.rows } }
    public var heldBack: Int64 { tables.reduce(0) { $0 + $1.heldBack } }
}

/// Puts rows that the live database lost back from a restored snapshot,
/// following foreign keys: the rows of the table asked for, their children
/// (an order's items, payments, shipments), and any parent they need that
/// live lost too. Rows already in live are never overwritten. Everything
/// happens inside SQLite on key sets held in temporary tables.
public final class RowRecovery {
    let db: Database
    public let livePath: String
    public let table: String
    private var keyTables: [String: String] = [:]
    private var lostTables: [String: String] = [:]
    private var keys: [String: TableKey] = [:]
    private var drifts: [String: SchemaDrift] = [:]
    private var roles: [String: String] = [:]
    private var order: [String] = []
    private var conflicts: Int64 = 0
    private var lastPlan: RecoveryPlan?

    public init(snapshotPath: String, livePath: String, table: String) throws {
        self.livePath = livePath
        self.table = table
        _ = try ConsistentCopy.openSource(livePath)
        db = try Database(path: livePath, mode: .readWrite, busyTimeoutMs: 3_000)
        try db.execute("PRAGMA foreign_keys = ON")
        // Live's triggers would treat recovered rows as new events (take stock
        // again, log twice, or fail on the log entry the first insert made).
        // Off on this connection only: the BOS's own connections keep them.
        let rc = bosbackup_enable_triggers(db.handle, 0)
        guard rc == SQLITE_OK else { throw db.error(rc) }
        try db.run("ATTACH DATABASE ? AS snap", .text("file:\(RowDiff.uriPath(snapshotPath))?mode=ro"))
    }

    struct ForeignKey { var child: String; var parent: String; var childColumns: [String]; var parentColumns: [String] }

    func foreignKeys() throws -> [ForeignKey] {
        var result: [ForeignKey] = []
        for child in try TableCounts.tableNames(in: db) where try exists(child, in: "snap") {
            // The schema goes in the pragma's argument (a prefix is ignored, see TableKey.of).
            let rows = try db.rows("SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?, 'snap') ORDER BY id, seq", .text(child))
            for group in Dictionary(grouping: rows, by: { $0[0].int ?? 0 }).sorted(by: { $0.key < $1.key }).map(\.value) {
                let parent = group[0][1].string ?? ""
                guard try exists(parent, in: "snap"), try exists(parent, in: "main") else { continue }
                var parentColumns = group.compactMap { $0[3].string }
                if parentColumns.count != group.count {
                    // `REFERENCES parent` alone means the parent's primary key.
                    parentColumns = try db.rows("SELECT name FROM pragma_table_info(?, 'snap') WHERE pk > 0 ORDER BY pk", .text(parent)).compactMap { $0[0].string }
                    // No primary key: SQLite itself rejects such a foreign key ("foreign key mismatch").
                    guard parentColumns.count == group.count else { continue }
                }
                result.append(ForeignKey(child: child, parent: parent, childColumns: group.compactMap { $0[2].string }, parentColumns: parentColumns))
            }
        }
        return result
    }

    func exists(_ table: String, in schema: String) throws -> Bool {
        try db.int("SELECT count(*) FROM \(schema).sqlite_schema WHERE type = 'table' AND name = ?", .text(table)) > 0
    }

    private func key(_ table: String) throws -> TableKey {
        if let key = keys[table] { return key }
        let key = try TableKey.of(table, schema: "snap", in: db)
        if key.kind == .wholeRow && key.rowidName == nil { throw RecoveryError.noRowid(table) }
        keys[table] = key
        return key
    }

    /// How `table` differs between the snapshot and live (it is in both).
    private func drift(_ table: String) throws -> SchemaDrift {
        if let drift = drifts[table] { return drift }
        let drift = SchemaDrift(snapshot: try TableKey.of(table, schema: "snap", in: db), live: try TableKey.of(table, schema: "main", in: db))
        drifts[table] = drift
        return drift
    }

    /// The temp table holding the keys to recover for `table` (created on first use).
    private func keyTable(_ table: String) throws -> String {
        if let name = keyTables[table] { return name }
        let name = "temp.bosbackup_recover_\(keyTables.count)"
        let k = try key(table)
        // Key columns k0, k1, … (the snapshot's rowid for a table without a key)
        // with the key as primary key: planned sets are looked up, never scanned.
        // held = 1: not put back (see holdBackClashes).
        try db.execute("DROP TABLE IF EXISTS \(name); CREATE TABLE \(name) (\(Self.slots(k)), via_parent INTEGER, held INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (\(Self.slots(k)))) WITHOUT ROWID")
        keyTables[table] = name
        order.append(table)
        return name
    }

    /// `k0, k1` for a key's columns in a planned-keys table.
    static func slots(_ k: TableKey) -> String { k.identity.indices.map { "k\($0)" }.joined(separator: ", ") }

    /// `alias.col AS k0, …`: a key selected under the planned-table names.
    static func keySelect(_ k: TableKey, _ alias: String) -> String {
        k.identity.enumerated().map { "\(alias).\($1) AS k\($0)" }.joined(separator: ", ")
    }

    /// Adds rows of `table` selected by `source` (a query over snap yielding
    /// the key as k0, k1, …) that live lacks and that are not already planned.
    private func add(_ table: String, role: String, viaParent: Bool, source: String) throws -> Int {
        if let reason = try drift(table).cannotMatch {
            // Which of these rows live lacks cannot be told without a key both
            // copies share: refused, but only when rows of the table are asked for.
            guard try db.int("SELECT count(*) FROM (\(source))") == 0 else { throw SchemaDriftError(reason + "; nothing was changed") }
            return 0
        }
        let k = try key(table)
        let t = Database.quote(table)
        let planned = try keyTable(table)
        // NOT EXISTS looks each key up in live's b-tree; NOT IN would copy all of live's keys first.
        let inLive = k.columns.enumerated().map { "m.\($1) = src.k\($0)" }.joined(separator: " AND ")
        let lost = k.kind == .wholeRow ? "src.k0 IN (SELECT r FROM \(try lostCopies(table)))" : "NOT EXISTS (SELECT 1 FROM main.\(t) m WHERE \(inLive))"
        try db.execute("""
            INSERT OR IGNORE INTO \(planned) (\(Self.slots(k)), via_parent) SELECT \(Self.slots(k)), \(viaParent ? 1 : 0) FROM (\(source)) src
            WHERE \(lost)
            """)
        let added = db.changes
        // The role is why the table's first rows joined the plan.
        if added > 0 && roles[table] == nil { roles[table] = role }
        return added
    }

    /// For a table without a key, the temp table (made once) of the snapshot
    /// rowids of the copies live lacks: per distinct row (on the columns both
    /// copies have), the snapshot's copies numbered past live's count of it.
    private func lostCopies(_ table: String) throws -> String {
        if let name = lostTables[table] { return name }
        let name = "temp.bosbackup_lost_\(lostTables.count)"
        let k = try key(table), t = Database.quote(table)
        let cols = try sharedColumns(table).joined(separator: ", ")
        try db.execute("""
            DROP TABLE IF EXISTS \(name); CREATE TABLE \(name) (r INTEGER PRIMARY KEY);
            INSERT INTO \(name) SELECT bosbackup_r FROM (
                SELECT bosbackup_r,
                       row_number() OVER (PARTITION BY \(cols), bosbackup_r IS NULL ORDER BY bosbackup_r) AS bosbackup_copy,
                       count(*) OVER (PARTITION BY \(cols)) - count(bosbackup_r) OVER (PARTITION BY \(cols)) AS bosbackup_in_live
                FROM (SELECT \(k.identity[0]) AS bosbackup_r, \(cols) FROM snap.\(t) UNION ALL SELECT NULL, \(cols) FROM main.\(t)))
            WHERE bosbackup_r IS NOT NULL AND bosbackup_copy > bosbackup_in_live
            """)
        lostTables[table] = name
        return name
    }

    /// The asked-for table's lost rows and conflicts in one pass over both copies in rowid
    /// order (`RowidMerge`), when both key it by the rowid: the rows live lacks are planned,
    /// and the rows with the same key and other contents counted. Nil: another key, asked
    /// the general way (a look-up in live per snapshot row, twice).
    private func mergeRoot(_ rootKey: TableKey) throws -> Int64? {
        let drift = try drift(table)
        guard rootKey.kind == .rowid, drift.cannotMatch == nil, try TableKey.of(table, schema: "main", in: db).kind == .rowid else { return nil }
        let planned = try keyTable(table)
        let insert = try db.prepare("INSERT OR IGNORE INTO \(planned) (k0, via_parent) VALUES (?, 0)")
        let compared = drift.common.filter { $0.lowercased() != rootKey.columns[0].lowercased() }
        var (lost, conflicts): (Int64, Int64) = (0, 0)
        try RowidMerge(db: db, snapshot: "snap", live: "main").run(table, key: rootKey.columns[0], compared: compared) { row in
            switch row {
            case .missingInLive(let rowid):
                insert.reset()
                try insert.bind([.integer(rowid)])
                _ = try insert.step()
                lost += 1
            case .changed: conflicts += 1
            case .onlyInLive: break
            }
        }
        if lost > 0 { roles[table] = "asked for" }
        return conflicts
    }

    /// Works out every row to put back. Call inside the transaction that applies it.
    public func plan() throws -> RecoveryPlan {
        guard try exists(table, in: "snap") else { throw SchemaDriftError("the snapshot has no table \(table): there are no rows of it to put back") }
        guard try exists(table, in: "main") else {
            throw SchemaDriftError(RowDiff.notInLive(table) + ": there is nothing to put its rows back into; nothing was changed")
        }
        let rootKey = try key(table)
        let t = Database.quote(table)
        if let merged = try mergeRoot(rootKey) {
            conflicts = merged
        } else {
            _ = try add(table, role: "asked for", viaParent: false, source: "SELECT \(Self.keySelect(rootKey, "s")) FROM snap.\(t) s")
            let differs = try sharedColumns(table).map { RowDiff.differs($0, "s", "m") }.joined(separator: " OR ")
            // Without a key, "same key, other contents" does not exist: such a row is a lost copy and a newer one.
            conflicts = rootKey.kind == .wholeRow || keyTables[table] == nil ? 0
                : try db.int("SELECT count(*) FROM snap.\(t) s JOIN main.\(t) m ON \(rootKey.match("s", "m")) WHERE \(differs.isEmpty ? "0" : differs)")
        }
        let edges = try foreignKeys()
        var changed = true
        var rounds = 0
        // Each query's answer depends only on the planned rows it starts from (the copies do
        // not change while planning): one whose start has not grown since it last ran would
        // add nothing, and is not run again. A child without an index on its foreign key is
        // scanned whole by it (7.5 M inventory movements on the day-scale bench).
        var asked: [String: Int64] = [:]
        func grown(_ query: String, from table: String) throws -> Bool {
            guard let planned = keyTables[table] else { return false }
            let rows = try db.int("SELECT count(*) FROM \(planned)")
            defer { asked[query] = rows }
            return asked[query] != rows
        }
        while changed && rounds < 64 {
            changed = false
            rounds += 1
            for (number, fk) in edges.enumerated() {
                let join = zip(fk.childColumns, fk.parentColumns).map { "c.\(Database.quote($0)) = p.\(Database.quote($1))" }.joined(separator: " AND ")
                // Children of rows being put back come back with them.
                if let parents = keyTables[fk.parent], try grown("children \(number)", from: fk.parent) {
                    let pk = try key(fk.parent), ck = try key(fk.child)
                    let source = """
                        SELECT \(Self.keySelect(ck, "c")) FROM snap.\(Database.quote(fk.child)) c
                        JOIN snap.\(Database.quote(fk.parent)) p ON \(join)
                        WHERE \(pk.tuple(prefix: "p.")) IN (SELECT \(Self.slots(pk)) FROM \(parents) WHERE via_parent = 0)
                        """
                    if try add(fk.child, role: "child of \(fk.parent)", viaParent: false, source: source) > 0 { changed = true }
                }
                // A parent that live lost too must come back, or the foreign key breaks.
                if let children = keyTables[fk.child], try grown("parents \(number)", from: fk.child) {
                    let pk = try key(fk.parent), ck = try key(fk.child)
                    let source = """
                        SELECT \(Self.keySelect(pk, "p")) FROM snap.\(Database.quote(fk.parent)) p
                        JOIN snap.\(Database.quote(fk.child)) c ON \(join)
                        WHERE \(ck.tuple(prefix: "c.")) IN (SELECT \(Self.slots(ck)) FROM \(children))
                        """
                    if try add(fk.parent, role: "parent of \(fk.child)", viaParent: true, source: source) > 0 { changed = true }
                }
            }
        }
        let clashes = try holdBackClashes(edges)
        let tables = try order.map {
            RecoveryPlan.Table(table: $0, rows: try db.int("SELECT count(*) FROM \(keyTables[$0]!) WHERE held = 0"), role: roles[$0] ?? "asked for",
                               heldBack: try db.int("SELECT count(*) FROM \(keyTables[$0]!) WHERE held = 1"))
        }
        // Checked once the plan is known: only a table rows really go into must take them.
        for planned in tables where planned.rows > 0 {
            if let reason = try drift(planned.table).refusal { throw SchemaDriftError(reason + "; nothing was changed") }
        }
        var plan = RecoveryPlan(tables: tables.filter { $0.rows > 0 || $0.heldBack > 0 || $0.table == table }, conflicts: conflicts)
        plan.clashes = clashes
        plan.schema = try schemaNotes(plan.tables)
        plan.triggersNotRun = try triggers(on: plan.tables.filter { $0.rows > 0 }.map(\.table)).map(\.name)
        lastPlan = plan
        return plan
    }

    /// Holds back planned rows that would break one of live's UNIQUE indexes
    /// (a customer who registered again with the same email), instead of
    /// letting one row fail the whole recovery. Then the rows that depend on a
    /// held row (they would be orphans), and parents only held rows needed.
    private func holdBackClashes(_ edges: [ForeignKey]) throws -> [RecoveryPlan.UniqueClash] {
        var clashes: [RecoveryPlan.UniqueClash] = []
        for table in order {
            let k = try key(table), t = Database.quote(table), planned = keyTables[table]!
            for index in try checkableUniqueIndexes(table) {
                let same = index.map { "m.\(Database.quote($0.column)) = s.\(Database.quote($0.column)) COLLATE \($0.collation)" }.joined(separator: " AND ")
                let clashing = """
                    SELECT \(Self.keySelect(k, "s")), \(index.map { "s.\(Database.quote($0.column))" }.joined(separator: ", ")) FROM snap.\(t) s
                    WHERE \(k.tuple(prefix: "s.")) IN (SELECT \(Self.slots(k)) FROM \(planned) WHERE held = 0)
                      AND EXISTS (SELECT 1 FROM main.\(t) m WHERE \(same))
                    """
                for row in try db.rows(clashing) {
                    clashes.append(.init(table: table, key: k.kind == .wholeRow ? [] : Array(row.prefix(k.identity.count)),
                                         columns: index.map(\.column), values: Array(row.dropFirst(k.identity.count))))
                }
                try db.execute("UPDATE \(planned) SET held = 1 WHERE (\(Self.slots(k))) IN (SELECT \(Self.slots(k)) FROM (\(clashing)))")
            }
        }
        guard !clashes.isEmpty else { return clashes }
        var changed = true
        while changed {
            changed = false
            for fk in edges {
                guard let parents = keyTables[fk.parent], let children = keyTables[fk.child] else { continue }
                let pk = try key(fk.parent), ck = try key(fk.child)
                let (c, p) = (Database.quote(fk.child), Database.quote(fk.parent))
                let join = zip(fk.childColumns, fk.parentColumns).map { "c.\(Database.quote($0)) = p.\(Database.quote($1))" }.joined(separator: " AND ")
                // A child of a held row would be an orphan.
                try db.execute("""
                    UPDATE \(children) SET held = 1 WHERE held = 0 AND (\(Self.slots(ck))) IN (
                        SELECT \(Self.keySelect(ck, "c")) FROM snap.\(c) c JOIN snap.\(p) p ON \(join)
                        WHERE \(pk.tuple(prefix: "p.")) IN (SELECT \(Self.slots(pk)) FROM \(parents) WHERE held = 1))
                    """)
                if db.changes > 0 { changed = true }
            }
            // A parent that came only for rows now held is not needed either.
            for parent in order {
                let incoming = edges.filter { $0.parent == parent && keyTables[$0.child] != nil }
                let pk = try key(parent)
                let needed = try incoming.map { fk -> String in
                    let ck = try key(fk.child)
                    let join = zip(fk.childColumns, fk.parentColumns).map { "c.\(Database.quote($0)) = p.\(Database.quote($1))" }.joined(separator: " AND ")
                    return """
                        (\(Self.slots(pk))) IN (SELECT \(Self.keySelect(pk, "p")) FROM snap.\(Database.quote(parent)) p
                            JOIN snap.\(Database.quote(fk.child)) c ON \(join)
                            WHERE \(ck.tuple(prefix: "c.")) IN (SELECT \(Self.slots(ck)) FROM \(keyTables[fk.child]!) WHERE held = 0))
                        """
                }
                try db.execute("UPDATE \(keyTables[parent]!) SET held = 1 WHERE held = 0 AND via_parent = 1 AND NOT (\(needed.isEmpty ? "0" : needed.joined(separator: " OR ")))")
                if db.changes > 0 { changed = true }
            }
        }
        return clashes
    }

    /// What differs in the schema of the tables rows go into; for a column
    /// live lacks, how many rows put back hold a value it leaves out.
    private func schemaNotes(_ tables: [RecoveryPlan.Table]) throws -> [String] {
        try tables.flatMap { planned -> [String] in
            let drift = try drift(planned.table)
            var leftOut: [String: Int64] = [:]
            if planned.rows > 0 {
                let (_, from) = try selection(planned.table)
                for column in drift.onlyInSnapshot {
                    leftOut[column] = try db.int("SELECT count(*) \(from) AND \(Database.quote(column)) IS NOT NULL")
                }
            }
            return drift.notes(leftOut: leftOut)
        }
    }

    /// Live's UNIQUE indexes on `table` that comparing columns can check: not
    /// partial, no expressions, on columns the snapshot has. SQLite still
    /// enforces the others when the rows go in (see apply).
    private func checkableUniqueIndexes(_ table: String) throws -> [[(column: String, collation: String)]] {
        let snapshotColumns = Set(try drift(table).common.map { $0.lowercased() })
        var result: [[(column: String, collation: String)]] = []
        for index in try db.rows("SELECT name FROM pragma_index_list(?, 'main') WHERE \"unique\" = 1 AND partial = 0 ORDER BY name", .text(table)) {
            let parts = try db.rows("SELECT cid, name, coll FROM pragma_index_xinfo(?, 'main') WHERE key = 1 ORDER BY seqno", .text(index[0].string ?? ""))
            let columns = parts.compactMap { part -> (column: String, collation: String)? in
                guard (part[0].int ?? -1) >= 0, let name = part[1].string, snapshotColumns.contains(Database.quote(name).lowercased()) else { return nil }
                return (name, Database.quote(part[2].string ?? "BINARY"))
            }
            if columns.count == parts.count && !columns.isEmpty { result.append(columns) }
        }
        return result
    }

    /// Live's triggers on `tables` (SQLite matches table names case-insensitively).
    private func triggers(on tables: [String]) throws -> [(name: String, sql: String)] {
        try tables.flatMap { try db.rows("SELECT name, sql FROM main.sqlite_schema WHERE type = 'trigger' AND tbl_name = ? COLLATE NOCASE", .text($0)) }
            .map { (name: $0[0].string ?? "", sql: $0[1].string ?? "") }
            .sorted { $0.name < $1.name }
    }

    /// Columns both copies have: rows go in with these, columns only live
    /// has get their defaults (see SchemaDrift).
    private func sharedColumns(_ table: String) throws -> [String] { try drift(table).common }

    private func selection(_ table: String) throws -> (columns: [String], from: String) {
        let k = try key(table)
        // Never the rowid of a table without a key: it means nothing in live, which gives the rows new ones.
        let columns = try sharedColumns(table)
        let from = "FROM snap.\(Database.quote(table)) WHERE \(k.tuple()) IN (SELECT \(Self.slots(k)) FROM \(keyTables[table]!) WHERE held = 0)"
        return (columns, from)
    }

    /// Writes the INSERT statements for review (the plan must have run).
    ///
    /// SQL cannot switch triggers off, so the file drops live's triggers on the
    /// recovered tables inside its transaction and creates them again, as they
    /// are now, before COMMIT: running it fires none of them, like `--apply`.
    public func writeSQL(to path: String, header: String) throws {
        // An operator's earlier review file (perhaps edited) is never replaced.
        guard !DurableFile.exists(path) else { throw RecoveryError.reviewFileExists(path) }
        let triggers = try triggers(on: (lastPlan?.tables ?? []).filter { $0.rows > 0 }.map(\.table))
        var text = "-- \(header)\n-- Review, then run with: sqlite3 \(livePath) < \(path)\n"
        if !triggers.isEmpty {
            text += """
                -- Live's triggers on these tables are not run, as with --apply (recovered rows are
                -- not new events): \(triggers.map(\.name).joined(separator: ", ")).
                -- The file drops them inside its transaction and creates them again, exactly as
                -- they were when it was written, before COMMIT. Run it soon, or write it again.

                """
        }
        for note in lastPlan?.schema ?? [] { text += "-- Schema: \(note)\n" }
        let held = (lastPlan?.tables ?? []).filter { $0.heldBack > 0 }
        if !held.isEmpty {
            text += "-- Rows held back, not in this file (a UNIQUE value of theirs is in live in another row, or they depend on one): "
                + held.map { "\($0.table) \($0.heldBack)" }.joined(separator: ", ") + ".\n"
        }
        // The shell goes on after a failed statement and would COMMIT the rest: stop instead
        // (the open transaction is rolled back when sqlite3 exits).
        text += ".bail on\nPRAGMA foreign_keys = ON;\nBEGIN IMMEDIATE;\nPRAGMA defer_foreign_keys = ON;\n"
        for trigger in triggers { text += "DROP TRIGGER main.\(Database.quote(trigger.name));\n" }
        let temporary = DurableFile.temporaryName(for: path)
        let file = try FileHandleFD(creating: temporary, mode: 0o600)
        do {
            // Bytes, not Swift strings: text that is not valid UTF-8 is written as it is stored.
            var buffer = Array(text.utf8)
            for table in order {
                let (columns, from) = try selection(table)
                let values = columns.map(Self.literal).joined(separator: " || ', ' || ")
                let statement = try db.prepare("SELECT CAST('INSERT INTO \(Database.quote(table).replacingOccurrences(of: "'", with: "''")) (\(columns.joined(separator: ", ").replacingOccurrences(of: "'", with: "''"))) VALUES (' || \(values) || ');' AS BLOB) \(from) ORDER BY 1")
                buffer += Array("-- \(table)\n".utf8)
                while try statement.step() {
                    if case .blob(let bytes) = statement.value(at: 0) { buffer += bytes }
                    buffer.append(UInt8(ascii: "\n"))
                    if buffer.count > 1 << 20 { try file.write(buffer); buffer.removeAll(keepingCapacity: true) }
                }
            }
            for trigger in triggers { buffer += Array((trigger.sql + ";\n").utf8) }
            buffer += Array("COMMIT;\n".utf8)
            try file.write(buffer)
            try file.sync()
            try DurableFile.commit(temporary: temporary, to: path)
        } catch {
            unlink(temporary)
            throw error
        }
    }

    /// SQL that turns column `c` into a literal reading back byte for byte:
    /// quote() cuts text at a NUL (so such text is written as its bytes cast to
    /// text) and writes infinities as `Inf`, which SQL reads as a column name.
    static func literal(_ c: String) -> String {
        """
        CASE WHEN typeof(\(c)) = 'text' AND instr(CAST(\(c) AS BLOB), X'00') > 0 THEN 'CAST(X''' || hex(\(c)) || ''' AS TEXT)' \
        WHEN typeof(\(c)) = 'real' AND abs(\(c)) = 9e999 THEN (CASE WHEN \(c) > 0 THEN '9e999' ELSE '-9e999' END) \
        ELSE quote(\(c)) END
        """
    }

    /// Plans and applies in one write transaction. `beforeChange` runs once the
    /// write lock is held and before anything changes (the safety copy).
    public func apply(beforeChange: (RecoveryPlan) throws -> Void) throws -> RecoveryPlan {
        do { try db.execute("BEGIN IMMEDIATE") } catch let error as SQLiteError where error.isBusyOrLocked {
            throw RecoveryError.liveLocked(livePath)
        }
        do {
            let plan = try self.plan()
            guard plan.totalRows > 0 else {
                try db.execute("ROLLBACK")
                return plan
            }
            try beforeChange(plan)
            try db.execute("PRAGMA defer_foreign_keys = ON")
            for table in order {
                let (columns, from) = try selection(table)
                do {
                    try db.execute("INSERT INTO main.\(Database.quote(table)) (\(columns.joined(separator: ", "))) SELECT \(columns.joined(separator: ", ")) \(from)")
                } catch let error as SQLiteError where error.primaryCode == SQLITE_CONSTRAINT {
                    // A partial or expression UNIQUE index, a CHECK live added…: the plan could not see it coming.
                    throw RecoveryError.constraintViolation(table: table, error.message)
                }
            }
            do { try db.execute("COMMIT") } catch let error as SQLiteError where error.primaryCode == SQLITE_CONSTRAINT {
                throw RecoveryError.foreignKeyViolation(error.message)
            }
            return plan
        } catch {
            try? db.execute("ROLLBACK")     // the first error is the one to report
            throw error
        }
    }

    /// Plans inside a read transaction (for `--sql`).
    public func planForReview() throws -> RecoveryPlan {
        try db.execute("BEGIN")
        do {
            let plan = try plan()
            // The plan's temp tables were written in it: a failing COMMIT is reported.
            try db.execute("COMMIT")
            return plan
        } catch {
            try? db.execute("ROLLBACK")     // the first error is the one to report
            throw error
        }
    }
}
