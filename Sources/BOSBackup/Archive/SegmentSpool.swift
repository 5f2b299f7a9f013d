import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A commit read from the WAL, as the archiver keeps it until every target has
/// it: its txid, when it was seen and its pages (as a segment's index has them,
/// each page's offset being where its gzip member lies in `file`, one after the
/// other from `offset`), and the WAL positions before and after it (where a
/// segment starting with it resumes from, and one ending with it ends).
struct SpooledCommit: Sendable {
    var commit: IndexedCommit
    var before: WALPosition
    var after: WALPosition
    var file: SpoolFile
    var offset: Int64
    /// The bytes of its page members.
    var length: Int64
    var end: Int64 { offset + length }
}

/// The archiver's commits between the WAL and the targets, on disk: each page
/// compressed once, as it is read, into unnamed files in scratch (gone with
/// the process; after a crash the archive resumes from the catalog and the
/// WAL), and read back by each target's upload. Memory holds where the pages
/// lie, not the pages: a target with a long interval costs disk, not memory
/// (the bench's archiver held 110–144 MB of queued pages before), and two
/// targets do not compress the same pages twice.
///
/// A new file is begun once the current one passes `fileSize`; a file's space is
/// given back when the last queued commit in it goes (the commits hold it), so
/// the spool stays about the size of what some target still lacks.
final class SegmentSpool {
    private let folder: String
    private let compressor: SegmentFormatV3.PageCompressor
    private var file: SpoolFile
    /// Where the next member goes in `file`.
    private var end: Int64 = 0
    let fileSize: Int64

    init(folder: String, level: Int, fileSize: Int64 = 64 << 20) throws {
        try PrivateFolder.prepare(folder)
        self.folder = folder
        self.fileSize = fileSize
        file = try SpoolFile(folder: folder)
        compressor = try SegmentFormatV3.PageCompressor(pageSize: 65_536, level: level)
    }

    /// Compresses one page onto the end.
    private func append(_ number: UInt32, _ page: UnsafeRawBufferPointer) throws -> IndexedCommit.Page {
        let member = try compressor.compress(page)
        try member.bytes.withUnsafeBytes { try file.fd.write($0, at: end) }
        defer { end += Int64(member.bytes.count) }
        return IndexedCommit.Page(number: number, offset: end, length: UInt32(member.bytes.count), sha256: member.sha256)
    }

    /// Nothing is queued: the next commit starts a fresh file (the old one's space goes with it).
    func startOver() throws {
        if end > 0 { try beginFile() }
    }

    private func beginFile() throws {
        (file, end) = (try SpoolFile(folder: folder), 0)
    }
}

/// One unnamed spool file; closed, and its space given back, when nothing refers to it.
/// Uploads on their way read what the follower appended before (positioned reads and
/// writes on one descriptor need no lock).
final class SpoolFile: @unchecked Sendable {
    let fd: FileHandleFD

    init(folder: String) throws {
        var template = Array((folder + "/wal-spool-XXXXXX").utf8CString)
        let raw = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        let path = String(cString: template)
        guard raw >= 0 else { throw FileError("create", path) }
        close(raw)
        fd = try FileHandleFD(updating: path)
        unlink(path)   // unnamed from now on: nothing is left behind, whatever ends the process
    }

    /// The bytes at `offset`, as many as `buffer` holds.
    func read(_ offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws {
        let n = try BlockGzipWriter.pread(fd: fd.fd, path: fd.path, into: buffer, at: offset)
        guard n == buffer.count else { throw FileError("read", fd.path) }
    }
}

extension SegmentSpool {
    /// The commits in the WAL after `from` (at most `limit` frames of them), each page
    /// spooled as it is read: memory holds one frame, not the log. Numbered from
    /// `firstTxid` and stamped with the time *after* the read: a commit in the WAL when
    /// we read it was made before, so a restore at T never gets a later commit.
    func read(wal path: String, header: WALHeader, after from: WALPosition, firstTxid: Int64, limit: Int = .max,
              clock: Clock) throws -> [SpooledCommit] {
        if end >= fileSize { try beginFile() }
        var commits: [SpooledCommit] = []
        var pages: [IndexedCommit.Page] = []
        var start = end, before = from
        try WALFile.frames(path: path, header: header, after: from, limit: limit, wholeTransactions: true) { number, page in
            pages.append(try append(number, page))
        } commit: { pageCount, after in
            let commit = IndexedCommit(txid: firstTxid + Int64(commits.count), seenAt: .distantPast, pageCount: pageCount, pages: pages)
            commits.append(SpooledCommit(commit: commit, before: before, after: after, file: file, offset: start, length: end - start))
            (before, pages, start) = (after, [], end)
        }
        end = start   // the frames of a transaction not committed yet
        let seen = clock.now()
        for index in commits.indices { commits[index].commit.seenAt = seen }
        return commits
    }
}
