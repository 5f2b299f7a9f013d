@testable import BOSBackup
import Foundation
import XCTest

final class DatabaseTests: XCTestCase {
    /// `scalar` once answered "no row" with `.null` (a nil literal turned into
    /// SQLValue), so "does a row exist" checks were always yes.
    func testScalarTellsNoRowFromANullValue() throws {
        let db = try Database(path: ":memory:", mode: .readWriteCreate)
        try db.execute("CREATE TABLE t(a); INSERT INTO t VALUES (NULL)")
        XCTAssertNil(try db.scalar("SELECT a FROM t WHERE 0"))
        XCTAssertEqual(try db.scalar("SELECT a FROM t"), .null)
        XCTAssertEqual(try db.scalar("SELECT 7"), .integer(7))
    }

    /// The archiver's barrier must get the write lock between two commits of a writer that
    /// commits back to back (a BOS catching up): with SQLite's busy timeout, which sleeps up
    /// to 100 ms between tries, it waited out most of such a run (767 ms in the archive bench,
    /// and the WAL passed its bound). The writer here holds the lock 5 ms a commit and lets go
    /// for about 30 µs; the barrier must get in while the writer still has commits to make.
    func testAQuickRetryGetsTheWriteLockBetweenABusyWritersCommits() throws {
        let dir = TempDir()
        defer { withExtendedLifetime(dir) {} }   // its deinit removes the folder: not before the writer is done
        let path = dir.file("bos.db")
        let setup = try Database(path: path, mode: .readWriteCreate)
        try setup.execute("PRAGMA journal_mode=WAL; CREATE TABLE t(k INTEGER PRIMARY KEY)")

        let commits = 400
        let made = LockedCounter()
        let started = DispatchSemaphore(value: 0)
        let writer = Thread {
            do {
                let db = try Database(path: path, mode: .readWrite)
                for k in 1...commits {
                    try db.execute("BEGIN IMMEDIATE")
                    if k == 1 { started.signal() }
                    try db.execute("INSERT INTO t VALUES (\(k))")
                    usleep(5_000)
                    try db.execute("COMMIT")
                    made.set(k)
                    usleep(30)
                }
            } catch { XCTFail("the writer: \(error)") }
            made.set(commits + 1)
        }
        writer.start()
        started.wait()
        let barrier = try Database(path: path, mode: .readWrite, busyTimeoutMs: 0)   // as the archiver opens it
        barrier.retryBusyQuickly(timeoutMs: 10_000)
        try barrier.execute("BEGIN IMMEDIATE")
        let at = made.value
        try barrier.execute("ROLLBACK")
        XCTAssertLessThan(at, commits, "the barrier got the lock only when the writer was done")
        while made.value <= commits { usleep(1_000) }   // the writer ends (bounded: 400 commits of 5 ms)
    }
}
