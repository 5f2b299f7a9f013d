import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The bytes of one commit of the live database, ready to compress, and that
/// commit's row counts — counted on a thread of their own while the bytes are
/// compressed.
///
/// Two ways to get there, both one read transaction of the source:
/// - WAL mode: the pages are read from the live database inside the read
///   transaction (`WALSnapshotImage`), so compression starts at once and
///   there is no scratch copy. Writers are not blocked in WAL mode; the WAL
///   only grows until the backup ends, as with any long reader.
/// - Otherwise (rollback journal, or a WAL commit we cannot pin): SQLite's
///   online backup API into a scratch file first. In rollback mode a reader
///   blocks writers, so the transaction lasts only as long as that copy,
///   not as long as the compression.
final class ConsistentImage {
    let bytes: BlockSource
    let pageSize: Int
    /// When the pinned commit was read (the snapshot's time).
    let takenAt: Date
    /// True when the pages come straight from the live database.
    let pipelined: Bool
    /// The WAL commit the image is (WAL mode, read in place; nil for a copy).
    let walPosition: SnapshotManifestV2.WALPosition?
    private let counts: Task<(counts: [String: Int64], damage: [String]), Error>
    private let finish: () -> Void

    private init(bytes: BlockSource, pageSize: Int, takenAt: Date, pipelined: Bool, walPosition: SnapshotManifestV2.WALPosition? = nil,
                 counts: Task<(counts: [String: Int64], damage: [String]), Error>, finish: @escaping () -> Void) {
        (self.bytes, self.pageSize, self.takenAt, self.pipelined, self.walPosition, self.counts, self.finish) =
            (bytes, pageSize, takenAt, pipelined, walPosition, counts, finish)
    }

    /// `scratchCopy` is where the fallback copy goes (removed by `close`);
    /// `blockSize` must be a multiple of the page size for the direct read.
    static func take(source: Database, scratchCopy: String, blockSize: Int, clock: Clock,
                     copyProgress: ((_ remaining: Int32, _ total: Int32) -> Void)? = nil) throws -> ConsistentImage {
        if let image = try WALSnapshotImage.begin(on: source) {
            guard blockSize % image.pageSize == 0 else { image.finish(); return try copied(source, scratchCopy, clock, copyProgress) }
            let connection = UncheckedBox(source)
            return ConsistentImage(bytes: image, pageSize: image.pageSize, takenAt: clock.now(), pipelined: true,
                                   walPosition: image.pinned, counts: onThread { try TableCounts.countStoring(connection.value) },
                                   finish: { image.finish() })
        }
        return try copied(source, scratchCopy, clock, copyProgress)
    }

    private static func copied(_ source: Database, _ scratchCopy: String, _ clock: Clock,
                               _ copyProgress: ((_ remaining: Int32, _ total: Int32) -> Void)?) throws -> ConsistentImage {
        try ConsistentCopy.copy(source: source, to: scratchCopy, progress: copyProgress)
        let takenAt = clock.now()
        let removeCopy = { for suffix in ["", "-journal", "-wal", "-shm"] { unlink(scratchCopy + suffix) } }
        do {
            let copy = try Database(path: scratchCopy, mode: .readOnly)
            let pageSize = Int(try copy.int("PRAGMA page_size"))
            let box = UncheckedBox(copy)
            return ConsistentImage(bytes: try FileBlockSource(path: scratchCopy), pageSize: pageSize, takenAt: takenAt,
                                   pipelined: false, counts: onThread { try TableCounts.countStoring(box.value) },
                                   finish: removeCopy)
        } catch {
            removeCopy()
            throw error
        }
    }

    /// The row counts of the pinned commit (waits for the counting thread), and
    /// the tables SQLite could not count because they are damaged.
    func tableCounts() async throws -> (counts: [String: Int64], damage: [String]) { try await counts.value }

    /// Ends the read transaction or removes the scratch copy. Waits for the
    /// counting thread first: it may still be using the connection or the file.
    func close() async {
        _ = try? await counts.value
        finish()
    }

    /// Runs blocking work (SQLite queries) on a thread of its own, so it does
    /// not hold one of the few cooperative threads the compressors run on.
    private static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) -> Task<T, Error> {
        Task {
            try await withCheckedThrowingContinuation { continuation in
                Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
            }
        }
    }
}

/// Hands a non-Sendable value to one other thread that alone uses it until it is awaited.
private struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
