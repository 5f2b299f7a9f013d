import Foundation

/// The next segment's index, read, checked (SHA-256) and decoded on the other core
/// while the walk walks this one (`WorkAhead`; a folder's segments): on a day's
/// archive the indexes are 740 MB, and inflating and hashing them was a third of
/// `timeline --key`'s own time.
final class SegmentIndexAhead {
    private let work = WorkAhead<String, [IndexedCommit]?>(label: "bosbackup.timeline.index-ahead")
    private let target: ReadsRangesNow
    private let repository: Repository

    init(target: ReadsRangesNow, repository: Repository) { (self.target, self.repository) = (target, repository) }

    /// Starts on `record`'s index (dropping one not taken).
    func prefetch(_ record: WALSegmentRecord) {
        guard let ref = record.index else { return work.stop() }
        let target = self.target, repository = self.repository
        work.start([(record.objectKey, {
            // Missing or cut short: nil, and the walk's own read of it says which (with the
            // object's size); only a complete index is checked and decoded here.
            guard let stored = try? target.rangeReader(key: record.objectKey).read(ref.offset, Int(ref.length)),
                  stored.count == ref.length else { return nil }
            return try repository.segmentIndex(record, ref, stored: stored)
        })])
    }

    /// `record`'s index if it was prefetched and read whole (a damaged one throws); nil: the walk reads it.
    func take(_ record: WALSegmentRecord) throws -> [IndexedCommit]? { try work.take(record.objectKey) ?? nil }

    func stop() { work.stop() }
}
