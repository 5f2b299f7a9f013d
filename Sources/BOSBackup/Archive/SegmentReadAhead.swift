import Foundation

/// Asks the storage to read the next segments of a walk ahead of it, on a
/// queue of its own: the timeline reads a member or two of every commit, in
/// order, and the kernel's own read-ahead then ran in the walk's thread, one
/// segment at a time, waiting on the disk (on a day's 22 GB archive, most of a
/// cold `timeline --key`'s 100 s). Advice only: nothing is read into memory
/// here, a segment that cannot be advised is read (or found missing) by the
/// walk as before, and at most `window` bytes are asked for ahead of the walk,
/// so the pages it still needs are not pushed out of the cache.
final class SegmentReadAhead: @unchecked Sendable {
    private let target: ReadsRangesNow
    private let segments: [(key: String, bytes: Int64)]
    private let window: Int64
    private let queue = DispatchQueue(label: "bosbackup.segment-read-ahead")
    /// Segments already asked for (touched on the queue only).
    private var asked = 0

    /// @unchecked: `target` is only used on `queue`, and `asked` only there.
    init(target: ReadsRangesNow, segments: [WALSegmentRecord], window: Int64 = 64 << 20) {
        self.target = target
        self.segments = segments.map { ($0.objectKey, $0.bytes) }
        self.window = window
    }

    /// Returns once every `reached` so far has been acted on (tests).
    func settle() { queue.sync {} }

    /// The walk has reached segment `index`: it and the ones after it, up to the window,
    /// are asked for (each once).
    func reached(_ index: Int) {
        queue.async { [self] in
            var ahead: Int64 = 0
            var next = index
            while next < segments.count, ahead < window {
                ahead += segments[next].bytes
                if next >= asked {
                    target.readAhead(key: segments[next].key)
                    asked = next + 1
                }
                next += 1
            }
        }
    }
}
