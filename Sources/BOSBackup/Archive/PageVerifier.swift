import Dispatch
import Foundation

/// Checks inflated pages against the SHA-256 their index holds on another core,
/// while the timeline's walk goes on with them: on a day's archive that hash was
/// about 15% of a `timeline --key` run's CPU, on one core of two. A page is handed over as soon as it is
/// inflated (its member's CRC-32 already checked by the inflate); `finish()` waits
/// for every check and throws the first page that was not the page shipped. The
/// walk calls it before it returns anything, so no answer rests on an unchecked
/// page; a damaged page also stops the walk at its next page.
///
/// The checks run on a Dispatch queue, not the cooperative pool, `batchSize` pages
/// at a time; at most `batches` batches wait (the walk waits when the checks fall
/// behind), so memory holds a few hundred kilobytes of pages at most.
final class PageVerifier: @unchecked Sendable {
    /// A page and what names it if it is not the page shipped (not its member's bytes:
    /// those are inflated already, and need not wait for the hash).
    private struct Check {
        var page: [UInt8]
        var digest: PageDigest
        var key: String
        var offset: Int64
        var number: UInt32
    }
    private let queue = DispatchQueue(label: "bosbackup.page-verifier", qos: .userInitiated)
    /// Batches handed over and not yet checked (the walk waits when none is free).
    private let room: DispatchSemaphore
    private let batchSize: Int
    private var batch: [Check] = []
    private let lock = NSLock()
    /// Written on the queue, read by the walk (under `lock`).
    private var damage: PointInTimeError?

    /// Pages are handed over `batchSize` at a time (one hand-over per page cost more
    /// than the hash); at most `batches` of them wait.
    init(batchSize: Int = 32, batches: Int = 4) {
        (self.batchSize, room) = (batchSize, DispatchSemaphore(value: batches))
        batch.reserveCapacity(batchSize)
    }

    /// Queues the check of `page` against `member`'s digest; throws a damage already found.
    func check(_ page: [UInt8], _ member: PageMember, number: UInt32) throws {
        batch.append(Check(page: page, digest: member.digest, key: member.key, offset: member.offset, number: number))
        if batch.count >= batchSize { try handOver() }
    }

    /// Waits for every queued check; throws the first page that failed.
    func finish() throws {
        try handOver()
        queue.sync {}
        if let damage = found() { throw damage }
    }

    private func handOver() throws {
        if let damage = found() { throw damage }
        guard !batch.isEmpty else { return }
        let checks = batch
        batch.removeAll(keepingCapacity: true)
        room.wait()
        queue.async { [self] in
            defer { room.signal() }
            guard let bad = checks.first(where: { check in check.page.withUnsafeBytes { PageDigest(of: $0) } != check.digest }) else { return }
            lock.withLock {
                if damage == nil {
                    damage = .segmentDamaged(key: bad.key, why: "page \(bad.number) at byte \(bad.offset) is not the page shipped")
                }
            }
        }
    }

    private func found() -> PointInTimeError? { lock.withLock { damage } }
}
