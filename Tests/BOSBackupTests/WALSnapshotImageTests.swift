@testable import BOSBackup
import Foundation
import XCTest

/// The pipelined snapshot of a WAL database: pages read inside one read
/// transaction, each from its newest WAL frame of the pinned commit or from
/// the database file — checked against what SQLite itself reads.
final class WALSnapshotImageTests: XCTestCase {
    /// A writer that keeps its commits in the WAL (no automatic checkpoint)
    /// and stays open, so the WAL is not folded back into the file on close.
    func openWriter(_ path: String) throws -> Database {
        let writer = try Database(path: path, mode: .readWrite)
        try writer.execute("PRAGMA wal_autocheckpoint=0")
        return writer
    }

    func insertProbeRows(_ writer: Database, from: Int, count: Int) throws {
        try writer.execute("CREATE TABLE IF NOT EXISTS wal_probe(id INTEGER PRIMARY KEY, body TEXT)")
        try writer.transaction {
            let insert = try writer.prepare("INSERT INTO wal_probe VALUES (?, ?)")
            for i in from..<from + count {
                try insert.execute([.integer(Int64(i)), .text(String(repeating: "p\(i)", count: 20))])
            }
        }
    }

    func image(_ image: WALSnapshotImage, writtenTo path: String) throws {
        let out = try FileHandleFD(creating: path)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * image.pageSize, alignment: 16)
        defer { buffer.deallocate() }
        var offset: Int64 = 0
        while offset < image.size {
            let n = try image.read(into: buffer, at: offset)
            try out.write(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
            offset += Int64(n)
        }
    }

    func dump(_ path: String) throws -> String {
        let result = try runProcess("/usr/bin/sqlite3", [path, ".dump"])
        XCTAssertEqual(result.status, 0, result.stderr)
        return result.stdout
    }

    func testBackupOfAWALDatabaseReadsUncheckpointedFramesWithoutAScratchCopy() throws {
        let f = try BackupFixture(orders: 1_500)
        let writer = try openWriter(f.live)
        try insertProbeRows(writer, from: 0, count: 4_000)
        try writer.execute("UPDATE orders SET status = 'refunded' WHERE id % 7 = 0")
        XCTAssertGreaterThan(try FileHandleFD(readingFrom: f.live + "-wal").size, 0, "the changes are still in the WAL")

        var events: [BackupProgress] = []
        let record = try runAsync {
            try await SnapshotWriter(catalog: f.catalog, clock: f.clock).backup(f.request, to: f.target) { events.append($0) }
        }
        XCTAssertFalse(events.contains { if case .copying = $0 { return true } else { return false } },
                       "a WAL database is compressed as it is read, not copied first")
        XCTAssertTrue(events.contains { if case .compressing = $0 { return true } else { return false } })

        let restored = f.dir.file("restored.db")
        XCTAssertEqual(try runProcess("/bin/sh", ["-c", "gunzip -c '\(f.objectPath(record))' > '\(restored)'"]).status, 0)
        XCTAssertEqual(try SHA256Stream.hex(ofFile: restored), record.databaseSHA256)
        XCTAssertEqual(try runProcess("/usr/bin/sqlite3", [restored, "PRAGMA integrity_check"]).stdout, "ok\n")
        // The image holds exactly what a reader of the live database sees, WAL included.
        XCTAssertEqual(try dump(restored), try dump(f.live))
        XCTAssertEqual(record.tables["wal_probe"], 4_000)
        XCTAssertEqual(record.tables, try TableCounts.count(atPath: restored))
        XCTAssertTrue(try f.verify(record).ok)
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: f.dir.file("scratch"))) ?? [], [])
    }

    func testPinnedImageIgnoresLaterCommitsAndCheckpoints() throws {
        let f = try BackupFixture(orders: 1_000)
        let writer = try openWriter(f.live)
        try insertProbeRows(writer, from: 0, count: 3_000)
        let pinnedDump = try dump(f.live)

        let reader = try ConsistentCopy.openSource(f.live)
        let pinned = try XCTUnwrap(try WALSnapshotImage.begin(on: reader))
        // After the commit is pinned: more commits, rows changed on pages the image
        // reads from the file, and checkpoints that copy what they may into the file.
        try insertProbeRows(writer, from: 3_000, count: 2_000)
        try writer.execute("UPDATE orders SET status = 'changed-after-pin'")
        try writer.execute("DELETE FROM wal_probe WHERE id < 100")
        let passive = try writer.rows("PRAGMA wal_checkpoint(PASSIVE)")
        XCTAssertEqual(passive.first?.first?.int, 0, "a passive checkpoint runs")
        try writer.execute("PRAGMA busy_timeout=0")   // answer at once instead of waiting for our reader
        let truncate = try writer.rows("PRAGMA wal_checkpoint(TRUNCATE)")
        XCTAssertEqual(truncate.first?.first?.int, 1, "our read transaction keeps the WAL from being reset under the image")

        try image(pinned, writtenTo: f.dir.file("pinned.db"))
        pinned.finish()
        XCTAssertEqual(try runProcess("/usr/bin/sqlite3", [f.dir.file("pinned.db"), "PRAGMA integrity_check"]).stdout, "ok\n")
        XCTAssertEqual(try dump(f.dir.file("pinned.db")), pinnedDump)
        XCTAssertNotEqual(try dump(f.live), pinnedDump, "the live database did move on")
    }

    func testImageOfAFullyCheckpointedWALReadsTheFileAlone() throws {
        let f = try BackupFixture(orders: 800)
        let writer = try openWriter(f.live)
        try insertProbeRows(writer, from: 0, count: 1_000)
        _ = try writer.rows("PRAGMA wal_checkpoint(PASSIVE)")
        let reader = try ConsistentCopy.openSource(f.live)
        let pinned = try XCTUnwrap(try WALSnapshotImage.begin(on: reader))
        try image(pinned, writtenTo: f.dir.file("pinned.db"))
        pinned.finish()
        XCTAssertEqual(try dump(f.dir.file("pinned.db")), try dump(f.live))
    }

    func testRollbackJournalDatabaseIsCopiedFirst() throws {
        let f = try BackupFixture(orders: 300, wal: false)
        let reader = try ConsistentCopy.openSource(f.live)
        XCTAssertNil(try WALSnapshotImage.begin(on: reader), "a reader blocks writers in rollback mode: keep its transaction short")
        var events: [BackupProgress] = []
        let record = try runAsync {
            try await SnapshotWriter(catalog: f.catalog, clock: f.clock).backup(f.request, to: f.target) { events.append($0) }
        }
        XCTAssertTrue(events.contains { if case .copying = $0 { return true } else { return false } })
        XCTAssertTrue(try f.verify(record).ok)
    }
}
