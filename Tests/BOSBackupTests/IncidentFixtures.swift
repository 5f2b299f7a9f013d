@testable import BOSBackup
import Foundation
import XCTest

/// A live sample BOS with a catalog and a file target beside it, for tests
/// that drive the real CLI through an incident (issue #12 items 10, 11).
struct Incident {
    let dir = TempDir()
    var live: String { dir.file("live.db") }
    var catalog: String { dir.file("catalog.db") }
    var target: String { "file://" + dir.file("nas") }

    init(orders: Int = 200, setup: String = "") throws {
        try Fixtures.sampleDatabase(at: dir.file("live.db"), orders: orders)
        if !setup.isEmpty { try Database(path: dir.file("live.db")).execute(setup) }
    }

    /// SQL run on live (the BOS's own connection: foreign keys on, triggers on).
    func onLive(_ sql: String) throws {
        let db = try Database(path: live)
        try db.execute("PRAGMA foreign_keys = ON")
        try db.execute(sql)
    }

    /// A backup with the real CLI; returns the snapshot id.
    func backup(file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let result = try run("backup", "--source", live, "--target", target, "--json")
        XCTAssertEqual(result.status, 0, result.stderr, file: file, line: line)
        return try XCTUnwrap(try jsonObject(result.stdout)["id"] as? String, file: file, line: line)
    }

    /// The real CLI with this incident's catalog.
    func run(_ arguments: String...) throws -> ProcessResult {
        try bosbackup(arguments + ["--catalog", catalog])
    }

    /// Deletes orders matching `condition` and every row that refers to them.
    static func deleteOrders(where condition: String) -> String {
        let ids = "SELECT id FROM orders WHERE \(condition)"
        return """
            CREATE TEMP TABLE doomed AS \(ids);
            DELETE FROM order_items WHERE order_id IN (SELECT id FROM doomed); DELETE FROM payments WHERE order_id IN (SELECT id FROM doomed);
            DELETE FROM shipments WHERE order_id IN (SELECT id FROM doomed); DELETE FROM inventory_movements WHERE order_id IN (SELECT id FROM doomed);
            DELETE FROM orders WHERE id IN (SELECT id FROM doomed); DROP TABLE doomed;
            """
    }
}

/// The cells of the line of `table` in a printed triage table.
func triageCells(_ output: String, table: String) -> [String]? {
    output.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }.first { $0.first == table }
}
