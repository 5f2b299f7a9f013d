import CSQLite

/// SQLite's online backup API: copies a database page by page into another
/// connection. With all pages copied in one step the copy is one read
/// transaction of the source, so it is a consistent point in time even while
/// other processes keep writing (in WAL mode they are not even blocked).
public enum OnlineBackup {
    /// Copies `source` into `destination` (both already open).
    /// `pagesPerStep` < 0 copies everything inside one read transaction.
    public static func copy(from source: Database, to destination: Database,
                            pagesPerStep: Int32 = -1,
                            progress: ((_ remaining: Int32, _ total: Int32) -> Void)? = nil) throws {
        guard let backup = sqlite3_backup_init(destination.handle, "main", source.handle, "main") else {
            throw destination.error(sqlite3_errcode(destination.handle))
        }
        var rc: Int32
        var busyRetries = 0
        repeat {
            rc = sqlite3_backup_step(backup, pagesPerStep)
            progress?(sqlite3_backup_remaining(backup), sqlite3_backup_pagecount(backup))
            if rc == SQLITE_BUSY || rc == SQLITE_LOCKED {
                // The source's busy handler already waited; give a writer that
                // holds the lock a bounded number of further chances (~60 s).
                busyRetries += 1
                if busyRetries > 3000 { break }
                sqlite3_sleep(20)
            }
        } while rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED
        let finish = sqlite3_backup_finish(backup)
        if rc != SQLITE_DONE {
            // The step's error is the one to report; it names the source problem.
            throw SQLiteError(code: rc, message: String(cString: sqlite3_errstr(rc)), path: source.path)
        }
        if finish != SQLITE_OK { throw destination.error(finish) }
    }
}
