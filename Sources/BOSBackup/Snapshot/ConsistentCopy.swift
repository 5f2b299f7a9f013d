import CSQLite
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum SourceError: Error, CustomStringConvertible, CategorizedError, Sendable {
    case missing(String)
    case notADatabase(String, why: String)
    case unreadable(String, why: String)
    /// Another process holds it locked the whole time (a BOS in locking_mode=EXCLUSIVE).
    case locked(String, why: String)

    public var description: String {
        switch self {
        case .missing(let path): return "source database \(path) does not exist"
        case .notADatabase(let path, let why): return "source \(path) is not a usable SQLite database: \(why)"
        case .unreadable(let path, let why): return "cannot read source database \(path): \(why)"
        case .locked(let path, let why):
            return "source database \(path) stayed locked by another process for 10 s (\(why)); a BOS with PRAGMA locking_mode=EXCLUSIVE cannot be backed up while it runs"
        }
    }
    /// A locked source is an operation that could not run now (try again), not bad input.
    public var category: ErrorCategory {
        if case .locked = self { return .failure }
        return .input
    }
}

/// The scratch folder could not take the copy (a failure, not bad input).
public struct ScratchError: Error, CustomStringConvertible, CategorizedError, Sendable {
    public let path: String
    public let why: String
    public var description: String { "cannot write the snapshot copy \(path) in the scratch folder: \(why)" }
    public var category: ErrorCategory { .failure }
}

/// A point-in-time copy of a live database, made with SQLite's online backup
/// API from a read-only connection while the BOS keeps writing.
public enum ConsistentCopy {
    /// Opens the live database read-only and checks that it is one.
    public static func openSource(_ path: String) throws -> Database {
        try openSourceNoting(path).database
    }

    /// The same, and whether opening it had SQLite roll back a crashed writer's
    /// hot journal (or recover its WAL): then the live file did change, to its
    /// last committed state, and whoever reports "not changed" must not.
    public static func openSourceNoting(_ path: String) throws -> (database: Database, recovered: Bool) {
        var st = stat()
        guard stat(path, &st) == 0 else { throw SourceError.missing(path) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw SourceError.notADatabase(path, why: "not a regular file") }
        // SQLite calls an empty file an empty database; for a BOS it is a wrong path or a truncated file.
        guard st.st_size > 0 else { throw SourceError.notADatabase(path, why: "the file is empty (0 bytes)") }
        do {
            do {
                let db = try Database(path: path, mode: .readOnly, busyTimeoutMs: 10_000)
                _ = try db.int("SELECT count(*) FROM sqlite_schema")
                return (db, false)
            // 776 = SQLITE_READONLY_ROLLBACK, 264 = SQLITE_READONLY_RECOVERY (C macros Swift cannot import).
            } catch let error as SQLiteError where error.code == 776 || error.code == 264 {
                // A writer crashed mid-transaction and left a hot journal (or a WAL
                // needing recovery). A read-only connection may not repair that;
                // SQLite's own recovery, which the BOS's next connection would run
                // anyway, restores the last committed state. We write no data.
                let db = try Database(path: path, mode: .readWrite, busyTimeoutMs: 10_000)
                _ = try db.int("SELECT count(*) FROM sqlite_schema")
                return (db, true)
            }
        } catch let error as SQLiteError where error.isCorruptOrNotADatabase {
            throw SourceError.notADatabase(path, why: error.message)
        } catch let error as SQLiteError where error.isBusyOrLocked {
            throw SourceError.locked(path, why: error.message)
        } catch let error as SQLiteError {
            throw SourceError.unreadable(path, why: error.message)
        }
    }

    /// Copies `source` into a new file at `destination` (mode 0600) in one
    /// read transaction: the copy is the database as of one commit.
    public static func copy(source: Database, to destination: String,
                            progress: ((_ remaining: Int32, _ total: Int32) -> Void)? = nil) throws {
        _ = try FileHandleFD(creating: destination, mode: 0o600)
        do {
            let target = try Database(path: destination, mode: .readWrite)
            // A scratch file needs no journal or fsync of its own: it is thrown away on failure.
            try target.execute("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF")
            try OnlineBackup.copy(from: source, to: target, progress: progress)
        } catch let error as SQLiteError {
            unlink(destination)
            if error.isCorruptOrNotADatabase { throw SourceError.notADatabase(source.path, why: error.message) }
            // A full or failing scratch disk is the copy's problem, not the live database's.
            if error.primaryCode == SQLITE_FULL || error.primaryCode == SQLITE_IOERR || error.primaryCode == SQLITE_CANTOPEN {
                throw ScratchError(path: destination, why: error.primaryCode == SQLITE_FULL ? "disk full" : error.message)
            }
            throw SourceError.unreadable(source.path, why: error.description)
        }
    }

    /// A safety copy of a live database, made before it is changed: the copy
    /// of one commit (as `copy`), written under a temporary name that
    /// `inflight` lists, fsynced, and only then renamed to `destination` — a
    /// killed process never leaves a partial copy under the name an operator
    /// would trust.
    public static func safetyCopy(of livePath: String, to destination: String, inflight: InflightFiles?) throws {
        let temporary = DurableFile.temporaryName(for: destination)
        try inflight?.register(temporary)
        do {
            try copy(source: try openSource(livePath), to: temporary)
            try FileHandleFD(readingFrom: temporary).sync()
            try DurableFile.commit(temporary: temporary, to: destination)
        } catch {
            unlink(temporary)
            throw error
        }
    }
}
