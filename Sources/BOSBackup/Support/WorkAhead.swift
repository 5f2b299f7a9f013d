import Dispatch
import Foundation

/// Work done on a queue of its own ahead of a caller that takes the results in the
/// same order, a batch at a time: the timeline's walk runs on one core, and what it
/// will need next (a segment's index, the leaves of the row it follows) is read,
/// inflated and checked on the other meanwhile. A new batch drops the results of the
/// last that were not taken, and stops its work where it is; a result not taken is
/// never looked at (its errors included: nothing rests on it).
///
/// The queue is Dispatch's, not the cooperative pool, so a walk that waits in `take`
/// cannot starve it.
final class WorkAhead<Key: Hashable, Value>: @unchecked Sendable {
    typealias Job = (key: Key, work: () throws -> Value)

    private let queue: DispatchQueue
    private let done = NSCondition()
    /// Under `done`: the batch on its way, its keys not yet done, and the results not yet taken.
    private var batch = 0
    private var pending: Set<Key> = []
    private var results: [Key: Result<Value, Error>] = [:]

    /// @unchecked: the jobs run on `queue`, one after the other; the state is touched under `done`.
    init(label: String) { queue = DispatchQueue(label: label, qos: .userInitiated) }

    /// Starts on `jobs`, in their order (the previous batch's results not taken are dropped).
    func start(_ jobs: [Job]) {
        done.lock()
        batch += 1
        let mine = batch
        pending = Set(jobs.map(\.key))
        results = [:]
        done.unlock()
        guard !jobs.isEmpty else { return }
        let box = Box(jobs)
        queue.async { [self] in
            for job in box.jobs {
                guard current(mine) else { return }
                let result = Result { try job.work() }
                done.lock()
                if batch == mine {
                    results[job.key] = result
                    pending.remove(job.key)
                    done.broadcast()
                }
                done.unlock()
            }
        }
    }

    /// The result for `key` (waiting for it if it is on its way), or nil when the batch did not have it.
    func take(_ key: Key) throws -> Value? {
        done.lock()
        defer { done.unlock() }
        while results[key] == nil && pending.contains(key) { done.wait() }
        return try results.removeValue(forKey: key)?.get()
    }

    /// Drops what is on its way.
    func stop() { start([]) }

    private func current(_ batch: Int) -> Bool {
        done.lock()
        defer { done.unlock() }
        return self.batch == batch
    }

    /// The jobs, handed to the queue (they run there only).
    private struct Box: @unchecked Sendable {
        let jobs: [Job]
        init(_ jobs: [Job]) { self.jobs = jobs }
    }
}
