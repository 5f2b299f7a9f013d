import CSQLite
import Foundation

/// The database image of one commit of a WAL-mode database, read page by
/// page inside one read transaction — so compression can start on the first
/// block instead of waiting for a scratch copy (issue #6's pipeline).
///
/// Why it is consistent (sqlite.org/walformat.html): a reader of a commit sees
/// each page from its newest WAL frame ≤ `mxFrame`, else from the database
/// file. While our read transaction is open SQLite holds its read lock, so
/// the WAL cannot restart under frames 1...mxFrame, and a checkpoint only
/// writes into the database file pages that have such a frame (which we take
/// from the WAL) — the pages we read from the file do not change.
///
/// Which commit did SQLite pin? Its read transaction copies the `-shm` header;
/// we read that header before and after starting the transaction and use it
/// only when both reads are equal (no commit or checkpoint in between).
/// Anything unexpected returns nil and the caller falls back to the online
/// backup API; this class never guesses.
final class WALSnapshotImage: BlockSource, @unchecked Sendable {
    let pageSize: Int
    let pageCount: Int64
    var size: Int64 { pageCount * Int64(pageSize) }
    /// The WAL commit pinned: its salts and last frame (where a WAL archive of this snapshot starts).
    let pinned: SnapshotManifestV2.WALPosition

    private let connection: Database
    private let databaseFile: UnsafeMutablePointer<sqlite3_file>
    private let walFile: UnsafeMutablePointer<sqlite3_file>?
    /// Page number → its newest frame ≤ mxFrame (pages absent here come from the file).
    private let frames: [UInt32: UInt32]
    private var open = true

    /// Starts a read transaction on `connection` (a WAL-mode database, no
    /// transaction open) and pins its commit; nil when that cannot be proven.
    static func begin(on connection: Database, attempts: Int = 200) throws -> WALSnapshotImage? {
        guard try connection.scalar("PRAGMA journal_mode")?.string?.lowercased() == "wal",
              let databaseFile = connection.file(SQLITE_FCNTL_FILE_POINTER),
              let shm = Self.sharedMemory(of: databaseFile) else { return nil }
        for _ in 0..<attempts {
            guard let before = WALIndexHeader(shm: shm) else { sched_yield(); continue }
            try connection.execute("BEGIN DEFERRED")
            // Any read starts the read transaction, which copies the header it pins.
            _ = try connection.int("SELECT count(*) FROM sqlite_schema")
            guard let after = WALIndexHeader(shm: shm), after == before else {
                try connection.execute("ROLLBACK")
                continue
            }
            if let image = try? WALSnapshotImage(connection: connection, databaseFile: databaseFile, header: before) {
                return image
            }
            try connection.execute("ROLLBACK")
            return nil
        }
        return nil
    }

    private init(connection: Database, databaseFile: UnsafeMutablePointer<sqlite3_file>, header: WALIndexHeader) throws {
        self.connection = connection
        self.databaseFile = databaseFile
        pinned = .init(salt1: WALFile.bigEndian(header.salt, 0), salt2: WALFile.bigEndian(header.salt, 4), mxFrame: header.mxFrame)
        pageSize = Int(try connection.int("PRAGMA page_size"))
        pageCount = try connection.int("PRAGMA page_count")
        // Frames the checkpointer has all copied (nBackfill = mxFrame): SQLite
        // reads this commit from the database file alone, and so do we.
        guard header.mxFrame > header.backfilled else {
            walFile = nil
            frames = [:]
            return
        }
        guard header.pageSize == pageSize, Int64(header.pageCount) == pageCount,
              let walFile = connection.file(SQLITE_FCNTL_JOURNAL_POINTER) else { throw ImageError.unexpected }
        self.walFile = walFile
        frames = try Self.frameIndex(walFile, pageSize: pageSize, header: header, pageCount: pageCount)
    }

    enum ImageError: Error { case unexpected }

    /// Reads every frame header up to mxFrame: the newest frame of each page.
    private static func frameIndex(_ wal: UnsafeMutablePointer<sqlite3_file>, pageSize: Int, header: WALIndexHeader,
                                   pageCount: Int64) throws -> [UInt32: UInt32] {
        var frames: [UInt32: UInt32] = [:]
        var frameHeader = [UInt8](repeating: 0, count: 24)
        for frame in 1...header.mxFrame {
            let offset = 32 + Int64(frame - 1) * Int64(pageSize + 24)
            try frameHeader.withUnsafeMutableBytes { try readExactly(wal, into: $0, at: offset) }
            // Frames of this commit carry the WAL header's salts; a mismatch means we misread.
            guard frameHeader[8..<16] == header.salt else { throw ImageError.unexpected }
            frames[bigEndian(frameHeader, 0)] = frame
            if frame == header.mxFrame, Int64(bigEndian(frameHeader, 4)) != pageCount { throw ImageError.unexpected }
        }
        return frames
    }

    /// Positioned read of the image; runs of pages not in the WAL are read from the file in one call.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        precondition(offset % Int64(pageSize) == 0 && buffer.count % pageSize == 0, "block reads are page-aligned")
        let length = Int(max(0, min(Int64(buffer.count), size - offset)))
        var done = 0
        while done < length {
            let page = UInt32((offset + Int64(done)) / Int64(pageSize)) + 1
            if let frame = frames[page], let walFile {
                let at = 32 + Int64(frame - 1) * Int64(pageSize + 24) + 24
                try Self.readExactly(walFile, into: UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + pageSize]), at: at)
                done += pageSize
                continue
            }
            var run = pageSize
            while done + run < length, frames[page + UInt32(run / pageSize)] == nil { run += pageSize }
            try Self.readExactly(databaseFile, into: UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + run]),
                                 at: offset + Int64(done))
            done += run
        }
        return length
    }

    /// Ends the read transaction (the connection stays open).
    func finish() {
        guard open else { return }
        open = false
        try? connection.execute("ROLLBACK")
    }

    deinit { finish() }

    // MARK: SQLite's own file objects

    /// Reads through SQLite's VFS file object — the same descriptor SQLite
    /// holds its locks on (our own descriptor, once closed, would drop them:
    /// POSIX locks belong to the process). unix `xRead` is a `pread`, safe
    /// from several threads.
    private static func readExactly(_ file: UnsafeMutablePointer<sqlite3_file>, into buffer: UnsafeMutableRawBufferPointer,
                                    at offset: Int64) throws {
        let rc = file.pointee.pMethods.pointee.xRead(file, buffer.baseAddress, Int32(buffer.count), sqlite3_int64(offset))
        // A short read (past the end of a file) is zero-filled by SQLite: for us it is a wrong image, an error.
        guard rc == SQLITE_OK else { throw SQLiteError(code: rc, message: "reading the database image: \(String(cString: sqlite3_errstr(rc)))") }
    }

    /// The `-shm` region 0 SQLite has mapped for this connection.
    private static func sharedMemory(of file: UnsafeMutablePointer<sqlite3_file>) -> UnsafeRawPointer? {
        guard let methods = file.pointee.pMethods, methods.pointee.iVersion >= 2, let map = methods.pointee.xShmMap else { return nil }
        var region: UnsafeMutableRawPointer?
        guard map(file, 0, 32_768, 0, &region) == SQLITE_OK, let region else { return nil }
        return UnsafeRawPointer(region)
    }

    private static func bigEndian(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        bytes[at..<at + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }
}

extension Database {
    /// One of SQLite's file objects for the main database (`SQLITE_FCNTL_FILE_POINTER`,
    /// `SQLITE_FCNTL_JOURNAL_POINTER` — the WAL in WAL mode).
    func file(_ op: Int32) -> UnsafeMutablePointer<sqlite3_file>? {
        var file: UnsafeMutablePointer<sqlite3_file>?
        guard sqlite3_file_control(handle, "main", op, &file) == SQLITE_OK, let file, file.pointee.pMethods != nil else { return nil }
        return file
    }
}
