@testable import BOSBackup
import Foundation
import XCTest

/// `timeline` (issue #16): walking the archived commits over one scratch image
/// finds when rows were inserted, changed and deleted, and which commit took
/// the rows live lacks.
final class TimelineTests: ArchiveTestCase {
    func timeline(_ arguments: String...) throws -> ProcessResult { try timeline(arguments) }

    func timeline(_ arguments: [String]) throws -> ProcessResult {
        let result = try bosbackup(["timeline"] + arguments + ["--config", config])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        return result
    }

    /// The guide's story on the sample BOS: orders arrive, one transaction deletes a day's
    /// orders with their items, payments and shipments, new orders keep arriving.
    func testLostNamesTheOneCommitThatDeletedOrdersWithTheirChildrenAndKeyShowsTheRowsLife() throws {
        try commit(1)
        _ = try archive(at: 0)
        for k in 2...4 {
            try commit(k)
            _ = try archive(at: k)
        }
        try bos.execute("UPDATE orders SET status = 'paid', note = 'checked' WHERE id = 120")
        _ = try archive(at: 5)
        let doomed = "SELECT id FROM orders WHERE id BETWEEN 100 AND 159"
        let counts = try ["order_items", "payments", "shipments"].map { table in
            (table, try bos.int("SELECT count(*) FROM \(table) WHERE order_id IN (\(doomed))"))
        }
        XCTAssertTrue(counts.allSatisfy { $0.1 > 0 }, "the sample has children for the orders: \(counts)")
        try bos.execute("""
            BEGIN;
            DELETE FROM order_items WHERE order_id IN (\(doomed));
            DELETE FROM payments WHERE order_id IN (\(doomed));
            DELETE FROM shipments WHERE order_id IN (\(doomed));
            DELETE FROM inventory_movements WHERE order_id IN (\(doomed));
            DELETE FROM orders WHERE id BETWEEN 100 AND 159;
            COMMIT;
            """)
        _ = try archive(at: 6)
        try commit(5)   // an order keeps arriving after the bad script
        _ = try archive(at: 7)

        let lost = try timeline("--table", "orders", "--lost", "--live", live)
        XCTAssertTrue(lost.stdout.contains("bos.orders: 60 rows live lacks went missing in 1 commit"), lost.stdout)
        XCTAssertTrue(lost.stdout.contains("2026-12-01T10:06:00Z txid 5 (committed after 2026-12-01T10:05:00Z)"), lost.stdout)
        for (table, count) in counts { XCTAssertTrue(lost.stdout.contains("\(table) −\(count)"), "\(table) −\(count) in " + lost.stdout) }
        XCTAssertTrue(lost.stdout.contains("(committed after 2026-12-01T10:05:00Z): orders −60, "), "the asked-for table first: " + lost.stdout)
        XCTAssertTrue(lost.stdout.contains("orders missing since: 100, 101, 102, "), "keys in order: " + lost.stdout)
        XCTAssertTrue(lost.stdout.contains("(foreign keys bring children and parents along)"), lost.stdout)
        XCTAssertTrue(lost.stdout.contains("(one transaction)"), lost.stdout)
        XCTAssertTrue(lost.stdout.contains("put back: bosbackup recover --txid 4 --generation"), lost.stdout)
        let json = try jsonObject(try timeline("--table", "orders", "--lost", "--live", live, "--json", "--limit", "100").stdout)
        let losses = try XCTUnwrap(json["losses"] as? [[String: Any]])
        XCTAssertEqual(losses.count, 1)
        XCTAssertEqual(losses.first?["txid"] as? Int, 5)
        XCTAssertEqual((losses.first?["keys"] as? [Int])?.sorted(), Array(100...159))

        let row = try timeline("--table", "orders", "--key", "120")
        XCTAssertTrue(row.stdout.contains("2 commits touched it"), row.stdout)
        XCTAssertTrue(row.stdout.contains("at the start: id=120, customer_id="), row.stdout)
        XCTAssertTrue(row.stdout.contains("txid 4 (committed after 2026-12-01T10:04:00Z)  changed   status: "), row.stdout)
        XCTAssertTrue(row.stdout.contains("→ 'paid', note: "), row.stdout)
        XCTAssertTrue(row.stdout.contains("txid 5 (committed after 2026-12-01T10:05:00Z)  deleted   was id=120"), row.stdout)
        XCTAssertTrue(row.stdout.contains("status='paid'"), row.stdout)
        let ledger = try timeline("--table", "ledger", "--key", "3")
        XCTAssertTrue(ledger.stdout.contains("at the start: not there"), ledger.stdout)
        XCTAssertTrue(ledger.stdout.contains("2026-12-01T10:03:00Z txid 2 (committed after 2026-12-01T10:02:00Z)  inserted  k=3, total=6"), ledger.stdout)

        // The way back the timeline printed: the state right before that commit, children by foreign key.
        let generation = try XCTUnwrap(losses.first?["generation"] as? String)
        let recovered = try bosbackup("recover", "--txid", "4", "--generation", generation, "--live", live, "--table", "orders", "--apply", "--config", config)
        XCTAssertEqual(recovered.status, 0, recovered.stdout + recovered.stderr)
        XCTAssertEqual(try bos.int("SELECT count(*) FROM orders WHERE id BETWEEN 100 AND 159"), 60)
        for (table, count) in counts {
            XCTAssertEqual(try bos.int("SELECT count(*) FROM \(table) WHERE order_id BETWEEN 100 AND 159"), count, "\(table) back with their orders")
        }
        XCTAssertEqual(try bos.int("SELECT count(*) FROM ledger"), 5, "the order that arrived after the script is kept")
        XCTAssertEqual(try bos.scalar("PRAGMA integrity_check")?.string, "ok")
        XCTAssertEqual(try bos.rows("PRAGMA foreign_key_check").count, 0)
        let after = try timeline("--table", "orders", "--lost", "--live", live)
        XCTAssertTrue(after.stdout.contains("bos.orders: 0 rows live lacks went missing in 0 commits"), after.stdout)
    }

    /// Deletes over several commits, a row changed then deleted, a key deleted twice, and
    /// a key reused with other content: each as it happened.
    func testSpreadDeletesChangesAndKeyReuseAreEachReported() throws {
        for k in 1...8 { try commit(k) }
        _ = try archive(at: 0)
        try bos.execute("UPDATE ledger SET total = -1 WHERE k = 2")        // txid 1
        _ = try archive(at: 1)
        try bos.execute("DELETE FROM ledger WHERE k = 2")                    // txid 2
        _ = try archive(at: 2)
        try bos.execute("DELETE FROM ledger WHERE k IN (3, 4)")              // txid 3
        _ = try archive(at: 3)
        try bos.execute("INSERT INTO ledger VALUES (3, 999)")               // txid 4: key 3 reused
        try bos.execute("DELETE FROM ledger WHERE k = 5")                    // txid 5
        _ = try archive(at: 4)
        try bos.execute("INSERT INTO ledger VALUES (5, 15)")                // txid 6: put back as it was
        _ = try archive(at: 5)
        try bos.execute("DELETE FROM ledger WHERE k = 5")                    // txid 7: deleted again
        _ = try archive(at: 6)
        try bos.execute("DELETE FROM ledger WHERE k = 8")                    // not archived yet

        let lost = try timeline("--table", "ledger", "--lost", "--live", live)
        XCTAssertTrue(lost.stdout.contains("bos.ledger: 3 rows live lacks went missing in 3 commits"), lost.stdout)
        XCTAssertTrue(lost.stdout.contains("txid 2 (committed after 2026-12-01T10:01:00Z): ledger −1"), lost.stdout)
        XCTAssertTrue(lost.stdout.contains("txid 3 (committed after 2026-12-01T10:02:00Z): ledger −2"), lost.stdout)
        XCTAssertTrue(lost.stdout.contains("ledger missing since: 4\n"), lost.stdout)
        XCTAssertTrue(lost.stdout.contains("txid 7 (committed after 2026-12-01T10:05:00Z): ledger −1"), lost.stdout)
        XCTAssertTrue(lost.stdout.contains("deleted again: 5 deleted at txid 5, 7, back at txid 6"), lost.stdout)
        XCTAssertTrue(lost.stdout.contains("key reused: 3 was deleted at txid 3; live has it again with other total"), lost.stdout)
        XCTAssertTrue(lost.stdout.contains("1 row live lacks is still in the newest archived state: deleted after txid 7, not archived yet: 8"), lost.stdout)

        let two = try timeline("--table", "ledger", "--key", "2")
        XCTAssertTrue(two.stdout.contains("txid 1 (committed after 2026-12-01T10:00:00Z)  changed   total: 3 → -1"), two.stdout)
        XCTAssertTrue(two.stdout.contains("txid 2 (committed after 2026-12-01T10:01:00Z)  deleted   was k=2, total=-1"), two.stdout)
        let since = try timeline("--table", "ledger", "--key", "2", "--since", "2026-12-01T10:01:30Z")
        XCTAssertTrue(since.stdout.contains("1 commit touched it"), since.stdout)
        XCTAssertTrue(since.stdout.contains("at the start: k=2, total=-1"), since.stdout)
    }

    /// A table without a primary key (rows named by rowid), a WITHOUT ROWID table with a
    /// composite key created after the base (the walk reads the new schema), and a row too
    /// big for its page (overflow pages).
    func testTablesWithoutKeyWithoutRowidAndOverflowingRows() throws {
        try bos.execute("CREATE TABLE notes(body TEXT); INSERT INTO notes VALUES ('a'), ('b'), ('c')")
        try commit(1)
        _ = try archive(at: 0)
        try bos.execute("CREATE TABLE stock(site TEXT, sku INTEGER, qty INTEGER, PRIMARY KEY (site, sku)) WITHOUT ROWID")
        try bos.execute("INSERT INTO stock VALUES ('north', 7, 10), ('north', 8, 3), ('south', 7, 1)")
        _ = try archive(at: 1)
        try bos.execute("UPDATE stock SET qty = 9 WHERE site = 'north' AND sku = 7; DELETE FROM notes WHERE body = 'b'")
        _ = try archive(at: 2)
        try bos.execute("DELETE FROM stock WHERE sku = 7")
        let big = String(repeating: "x", count: 9000)
        try bos.execute("INSERT INTO notes VALUES ('\(big)')")
        _ = try archive(at: 3)
        try bos.execute("UPDATE notes SET body = '\(big)y' WHERE rowid = 4")
        _ = try archive(at: 4)
        try bos.execute("INSERT INTO notes VALUES ('red' || char(27) || '[31m alert')")
        _ = try archive(at: 5)

        let stock = try timeline("--table", "stock", "--key", "north", "--key", "7")
        XCTAssertTrue(stock.stdout.contains("bos.stock site,sku=north,7: 3 commits touched it"), stock.stdout)
        XCTAssertTrue(stock.stdout.contains("inserted  site='north', sku=7, qty=10"), stock.stdout)
        XCTAssertTrue(stock.stdout.contains("changed   qty: 10 → 9"), stock.stdout)
        XCTAssertTrue(stock.stdout.contains("deleted   was site='north', sku=7, qty=9"), stock.stdout)
        let lostStock = try timeline("--table", "stock", "--lost", "--live", live)
        XCTAssertTrue(lostStock.stdout.contains("2 rows live lacks went missing in 1 commit"), lostStock.stdout)
        XCTAssertTrue(lostStock.stdout.contains("stock missing since: (site='north', sku=7), (site='south', sku=7)")
                      || lostStock.stdout.contains("stock missing since: (site='south', sku=7), (site='north', sku=7)"), lostStock.stdout)

        let notes = try timeline("--table", "notes", "--lost", "--live", live)
        XCTAssertTrue(notes.stdout.contains("1 row live lacks went missing in 1 commit"), notes.stdout)
        XCTAssertTrue(notes.stdout.contains("notes missing since: 2"), notes.stdout)
        let overflow = try timeline("--table", "notes", "--key", "4", "--json")
        let events = try XCTUnwrap(try jsonObject(overflow.stdout)["events"] as? [[String: Any]])
        XCTAssertEqual(events.map { $0["kind"] as? String }, ["inserted", "changed"])
        XCTAssertEqual((events.last?["new"] as? String)?.count, 9001, "the whole row, read across its overflow pages")
        XCTAssertEqual(events.last?["changed_columns"] as? [String], ["body"])

        let escape = try timeline("--table", "notes", "--key", "5")
        XCTAssertTrue(escape.stdout.contains("inserted  body='red\\x1b[31m alert'"), "a row's control characters are shown, not obeyed: " + escape.stdout)
        XCTAssertFalse(escape.stdout.contains("\u{1b}[31m alert"), escape.stdout)

        let wrong = try bosbackup("timeline", "--table", "stock", "--key", "north", "--config", config)
        XCTAssertEqual(wrong.status, 2, wrong.stderr)
        XCTAssertTrue(wrong.stderr.contains("keyed by site, sku"), wrong.stderr)
        let none = try bosbackup("timeline", "--table", "nope", "--key", "1", "--config", config)
        XCTAssertEqual(none.status, 2, none.stderr)
        let both = try bosbackup("timeline", "--table", "notes", "--key", "1", "--lost", "--live", live, "--config", config)
        XCTAssertEqual(both.status, 2, both.stderr)
        let noLive = try bosbackup("timeline", "--table", "notes", "--lost", "--live", dir.file("nope.db"), "--config", config)
        XCTAssertEqual(noLive.status, 2, noLive.stderr)
        XCTAssertTrue(noLive.stderr.contains("nope.db does not exist"), noLive.stderr)
    }

    /// SQLite rewrites a row of the same size in place and writes only the pages whose bytes
    /// differ: a change in a long row's tail writes its overflow page alone, not its leaf.
    /// `--key` follows the row's overflow pages too (it missed such a change before).
    func testAChangeOnlyARowsOverflowPageHoldsIsFound() throws {
        let head = String(repeating: "a", count: 9000)
        try bos.execute("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes VALUES (1, '\(head)x'), (2, 'short')")
        try commit(1)
        _ = try archive(at: 0)
        let leaf = try bos.int("SELECT pageno FROM dbstat WHERE name = 'notes' AND pagetype = 'leaf'")
        try bos.execute("UPDATE notes SET body = '\(head)y' WHERE id = 1")   // txid 1: the last overflow page only
        _ = try archive(at: 1)
        try bos.execute("UPDATE notes SET body = 'changed' WHERE id = 2")
        _ = try archive(at: 2)
        let written = try archivedPages(txid: 1)
        XCTAssertFalse(written.contains(UInt32(leaf)), "the premise: SQLite rewrote the row without writing its leaf \(leaf) (wrote \(written.sorted()))")

        let result = try timeline("--table", "notes", "--key", "1", "--json")
        let events = try XCTUnwrap(try jsonObject(result.stdout)["events"] as? [[String: Any]])
        XCTAssertEqual(events.map { $0["txid"] as? Int }, [1], result.stdout)
        XCTAssertEqual(events.first?["kind"] as? String, "changed")
        XCTAssertEqual(((events.first?["new"] as? [Any])?.last as? String)?.suffix(2), "ay", "the whole row, its tail from the overflow page")
        XCTAssertEqual(events.first?["changed_columns"] as? [String], ["body"])
    }

    /// A page member forged to inflate cleanly (its own CRC-32 right) to other bytes than
    /// the page shipped: only the SHA-256 the index holds tells. The timeline checks those
    /// on another core while it walks (`PageVerifier`), and must still answer "damaged"
    /// (exit 4, naming the segment) and print nothing of what the forged page said.
    func testAForgedPageTheTimelineReadsIsDamageAndNothingIsPrinted() throws {
        let filler = String(repeating: "the same words again ", count: 20)
        try bos.execute("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT)")
        for id in 1...5 { try bos.execute("INSERT INTO notes VALUES (\(id), '\(filler)')") }
        try commit(1)
        _ = try archive(at: 0)
        try bos.execute("INSERT INTO notes VALUES (500, 'the row asked for \(filler)')")   // txid 1
        _ = try archive(at: 1)
        try bos.execute("INSERT INTO notes VALUES (501, 'a later row')")
        _ = try archive(at: 2)

        let catalog = try Catalog(readingAt: dir.file("catalog.db"))
        let generation = try XCTUnwrap(try catalog.generations(database: "bos", host: "store-0421").last)
        let segment = try XCTUnwrap(try catalog.segments(generation: generation.id, target: "nas").first { $0.firstTxid <= 1 && 1 <= $0.lastTxid })
        let index = try runAsync {
            try await Repository(target: try TargetFactory.open(url: "file://" + self.dir.file("nas"))).segmentIndex(segment, try XCTUnwrap(segment.index))
        }
        let path = dir.file("nas") + "/" + segment.objectKey
        var stored = try XCTUnwrap(FileManager.default.contents(atPath: path).map { [UInt8]($0) })
        var forged = 0
        for page in try XCTUnwrap(index.first { $0.txid == 1 }).pages {
            let place = Int(page.offset)..<Int(page.offset) + Int(page.length)
            var bytes = [UInt8](repeating: 0, count: 4096)
            let produced = try bytes.withUnsafeMutableBytes { out in try Array(stored[place]).withUnsafeBytes { try GzipBlockDecompressor().decompress($0, into: out) } }
            XCTAssertEqual(produced, 4096)
            let asked = Array("asked for".utf8)
            guard let at = (0...bytes.count - asked.count).first(where: { Array(bytes[$0..<$0 + asked.count]) == asked }) else { continue }
            bytes[at + asked.count - 1] = UInt8(ascii: "x")   // "asked fox"
            if let member = try Self.member(of: bytes, length: place.count) {
                stored.replaceSubrange(place, with: member)
                forged += 1
            }
        }
        XCTAssertEqual(forged, 1, "the premise: the leaf holding row 500 at txid 1 was forged")
        try Data(stored).write(to: URL(fileURLWithPath: path))

        let result = try bosbackup(["timeline", "--table", "notes", "--key", "500", "--config", config])
        XCTAssertEqual(result.status, 4, result.stdout + result.stderr)
        XCTAssertTrue(result.stderr.contains(segment.objectKey) && result.stderr.contains("is not the page shipped"), result.stderr)
        XCTAssertFalse(result.stdout.contains("fox") || result.stdout.contains("inserted"), "nothing the forged page said is printed: \(result.stdout)")
    }

    /// A gzip member of exactly `length` bytes inflating to `page`: compressed harder than
    /// the archiver does, then padded with a header comment (FCOMMENT), which gunzip and
    /// libdeflate skip. Nil when it does not fit.
    static func member(of page: [UInt8], length: Int) throws -> [UInt8]? {
        let compressor = try GzipBlockCompressor(level: 9, blockSize: page.count)   // its output is valid while it lives
        let compressed = try page.withUnsafeBytes { Array(try compressor.compress($0)) }
        guard compressed.count < length else { return nil }
        var member = Array(compressed[..<10])
        member[3] |= 0x10
        member += [UInt8](repeating: UInt8(ascii: "p"), count: length - compressed.count - 1) + [0]
        return member + compressed[10...]
    }

    /// Random commits (inserts, updates, deletes, bulk inserts that split pages, bulk deletes
    /// that free them, rows past a page, keys reused) on a rowid and a WITHOUT ROWID table:
    /// the timeline of every key and the lost rows are exactly what the test's own model of
    /// each commit says.
    func testRandomCommitsTimelineMatchesWhatEachCommitDid() throws {
        try checkRandomCommits(seed: 1_606, initialRows: 200, bulkDelete: 40)
    }

    /// The same on trees three levels deep, with bulk deletes wide enough to merge
    /// interior pages: the shapes updated in place must stay exact.
    func testRandomCommitsOnDeepTreesWithInteriorMerges() throws {
        try checkRandomCommits(seed: 1_607, initialRows: 9_000, bulkDelete: 600)
    }

    func checkRandomCommits(seed: UInt64, initialRows: Int, bulkDelete: Int64) throws {
        var rng = SeededRandom(seed: seed)
        func text(_ rng: inout SeededRandom) -> String {
            let length = Int.random(in: 0..<10, using: &rng) == 0 ? Int.random(in: 3_000...9_000, using: &rng) : Int.random(in: 1...300, using: &rng)
            return String((0..<length).map { _ in Character(UnicodeScalar(UInt8.random(in: 97...122, using: &rng))) })
        }
        try bos.execute("CREATE TABLE items(id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE pairs(a TEXT, b INTEGER, v TEXT, PRIMARY KEY (a, b)) WITHOUT ROWID")
        var items: [Int64: String] = [:], pairs: [String: String] = [:]   // pairs by "a,b"
        var next: Int64 = 1
        var sql: [String] = []
        for _ in 0..<initialRows {
            items[next] = text(&rng)
            sql.append("INSERT INTO items VALUES (\(next), '\(items[next]!)')")
            next += 1
        }
        try bos.execute(sql.joined(separator: ";"))
        _ = try archive(at: 0)
        var expected: [String: [[String]]] = [:]   // "items 5" → [[txid, kind]]
        var deletedAt: [String: [Int]] = [:], lastDeleted: [String: String] = [:]
        func record<K: Hashable>(_ table: String, _ before: [K: String], _ after: [K: String], txid: Int, name: (K) -> String) {
            for key in Set(before.keys).union(after.keys) {
                let kind: String
                switch (before[key], after[key]) {
                case (nil, _?): kind = "inserted"
                case (let old?, nil):
                    kind = "deleted"
                    deletedAt["\(table) \(name(key))", default: []].append(txid)
                    lastDeleted["\(table) \(name(key))"] = old
                case (let old?, let new?) where old != new: kind = "changed"
                default: continue
                }
                expected["\(table) \(name(key))", default: []].append([String(txid), kind])
            }
        }
        for txid in 1...200 {
            let (beforeItems, beforePairs) = (items, pairs)
            sql = ["BEGIN"]
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                let existing = items.keys.randomElement(using: &rng)
                switch Int.random(in: 0..<12, using: &rng) {
                case 0...2:
                    // Mostly new keys, sometimes a deleted one back (a key reused).
                    let id = Int.random(in: 0..<4, using: &rng) == 0 ? Int64.random(in: 1..<next, using: &rng) : { defer { next += 1 }; return next }()
                    items[id] = text(&rng)
                    sql.append("INSERT OR REPLACE INTO items VALUES (\(id), '\(items[id]!)')")
                case 3...4:
                    guard let id = existing else { continue }
                    items[id] = text(&rng)
                    sql.append("UPDATE items SET v = '\(items[id]!)' WHERE id = \(id)")
                case 5...6:
                    guard let id = existing else { continue }
                    items[id] = nil
                    sql.append("DELETE FROM items WHERE id = \(id)")
                case 7:
                    guard let id = existing else { continue }
                    for gone in items.keys where gone >= id && gone < id + bulkDelete { items[gone] = nil }
                    sql.append("DELETE FROM items WHERE id >= \(id) AND id < \(id + bulkDelete)")
                case 8:
                    for _ in 0..<60 {
                        items[next] = text(&rng)
                        sql.append("INSERT INTO items VALUES (\(next), '\(items[next]!)')")
                        next += 1
                    }
                case 9...10:
                    let (a, b) = (["north", "south", "east"].randomElement(using: &rng)!, Int.random(in: 1...40, using: &rng))
                    pairs["\(a),\(b)"] = text(&rng)
                    sql.append("INSERT OR REPLACE INTO pairs VALUES ('\(a)', \(b), '\(pairs["\(a),\(b)"]!)')")
                default:
                    guard let key = pairs.keys.randomElement(using: &rng) else { continue }
                    pairs[key] = nil
                    let parts = key.split(separator: ",")
                    sql.append("DELETE FROM pairs WHERE a = '\(parts[0])' AND b = \(parts[1])")
                }
            }
            try bos.execute((sql + ["COMMIT"]).joined(separator: ";"))
            record("items", beforeItems, items, txid: txid) { String($0) }
            record("pairs", beforePairs, pairs, txid: txid) { $0 }
            if txid % 10 == 0 { _ = try archive(at: txid / 10) }
        }

        let keys = expected.keys.sorted().shuffled(using: &rng).prefix(25) + deletedAt.keys.sorted().prefix(5)
        for name in keys {
            let parts = name.split(separator: " ")
            let key = parts[0] == "items" ? [String(parts[1])] : parts[1].split(separator: ",").flatMap { ["--key", String($0)] }.dropFirst().map { $0 }
            let result = try timeline(["--table", String(parts[0]), "--key"] + key + ["--json"])
            let events = try XCTUnwrap(try jsonObject(result.stdout)["events"] as? [[String: Any]])
            XCTAssertEqual(events.map { ["\($0["txid"] as? Int ?? -1)", $0["kind"] as? String ?? "?"] }, expected[name], name)
        }
        for table in ["items", "pairs"] {
            let lost = try jsonObject(try timeline(["--table", table, "--lost", "--live", live, "--json", "--limit", "100000"]).stdout)
            var found: [String: Int] = [:]
            for loss in try XCTUnwrap(lost["losses"] as? [[String: Any]]) {
                for key in loss["keys"] as? [Any] ?? [] {
                    let name = (key as? [Any]).map { $0.map { "\($0)" }.joined(separator: ",") } ?? "\(key)"
                    found["\(table) \(name)"] = loss["txid"] as? Int
                }
            }
            let gone = deletedAt.filter { $0.key.hasPrefix(table + " ") && (table == "items" ? items[Int64($0.key.split(separator: " ")[1])!] : pairs[String($0.key.split(separator: " ")[1])]) == nil }
            XCTAssertEqual(found, gone.mapValues { $0.last! }, table)
            let reused = Set((lost["reused"] as? [[String: Any]] ?? []).map { entry in "\(table) " + ((entry["key"] as? [Any]).map { $0.map { "\($0)" }.joined(separator: ",") } ?? "\(entry["key"]!)") })
            let back = Set(lastDeleted.filter { name, old in
                guard name.hasPrefix(table + " ") else { return false }
                let key = String(name.split(separator: " ")[1])
                let now = table == "items" ? items[Int64(key)!] : pairs[key]
                return now != nil && now != old
            }.keys)
            XCTAssertEqual(reused, back, table)
            XCTAssertGreaterThan(found.count, 20, "the run deleted rows for good")
        }
    }
}
