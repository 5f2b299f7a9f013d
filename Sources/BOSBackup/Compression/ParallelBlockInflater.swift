import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Restores a block-gzip stream on all cores: the stream is cut into its
/// gzip members by the manifest's block table as it arrives, each member is
/// inflated by libdeflate on a worker and written at its offset with
/// `pwrite`, and the raw SHA-256 is taken over the blocks in order. Memory is
/// the blocks in flight (jobs + 1), not the database.
///
/// With `pages` (a link of an incremental chain), a block goes not to
/// `index × blockSize` but page by page to the pages it holds that no newer
/// link holds; blocks holding none are not inflated at all, and each block
/// inflated is checked against its own raw SHA-256 instead.
final class ParallelBlockInflater: @unchecked Sendable {
    /// Where the pages of each block of a chain link go.
    struct PagePlacement: Sendable {
        var pageSize: Int
        /// Per block: (page's position in the block, page number) for the pages to write; empty: skip the block.
        var writes: [[(slot: Int, page: Int)]]
        /// Per block: how many pages it inflates to, and their SHA-256.
        var expected: [(pages: Int, sha256: String)]
        /// Check each block against its SHA-256. The whole image's SHA-256 is checked
        /// anyway; the block checks name the block (and link) that is wrong.
        var checkBlocks = true
    }

    private let blocks: [SnapshotManifest.Block]
    private let blockSize: Int
    private let placement: PagePlacement?
    private let output: FileHandleFD
    private let queue = DispatchQueue(label: "bosbackup.inflate", attributes: .concurrent)
    private let slots: DispatchSemaphore
    private let group = DispatchGroup()
    private let lock = NSLock()

    // Feeding side (one thread).
    private var index = 0
    private var member: UnsafeMutableRawBufferPointer?
    private var filled = 0
    private var trailing: Int64 = 0

    // Shared, under `lock`.
    private var finished: [Int: UnsafeMutableRawBufferPointer] = [:]
    private var nextToHash = 0
    /// One thread at a time hashes, outside the lock, so workers finishing meanwhile do not wait.
    private var hashing = false
    private var raw = SHA256Stream()
    private var failure: String?

    init(blocks: [SnapshotManifest.Block], blockSize: Int, output: FileHandleFD, jobs: Int, pages: PagePlacement? = nil) {
        self.blocks = blocks
        self.blockSize = blockSize
        self.placement = pages
        self.output = output
        slots = DispatchSemaphore(value: max(1, jobs) + 1)
    }

    func feed(_ chunk: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < chunk.count {
            guard index < blocks.count else {
                trailing += Int64(chunk.count - offset)
                return
            }
            if let placement, placement.writes[index].isEmpty {
                // Every page of this block is newer in a later link: its bytes only pass by
                // (the object's checksum still covers them).
                let take = min(chunk.count - offset, Int(blocks[index].length) - filled)
                filled += take
                offset += take
                if filled == Int(blocks[index].length) { filled = 0; index += 1 }
                continue
            }
            if member == nil {
                member = .allocate(byteCount: Int(blocks[index].length), alignment: 16)
                filled = 0
            }
            let take = min(chunk.count - offset, member!.count - filled)
            UnsafeMutableRawBufferPointer(rebasing: member![filled..<filled + take])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: chunk[offset..<offset + take]))
            filled += take
            offset += take
            if filled == member!.count { dispatch() }
        }
    }

    /// A block's member on its way to the worker that inflates and frees it: it passes
    /// from the feeding thread to that worker whole, and neither touches it after.
    private struct HandedOver: @unchecked Sendable { let bytes: UnsafeMutableRawBufferPointer }

    private func dispatch() {
        let (i, handed) = (index, HandedOver(bytes: member!))
        member = nil
        filled = 0
        index += 1
        slots.wait()
        group.enter()
        queue.async { [self] in
            defer { group.leave() }
            let bytes = handed.bytes
            let out = UnsafeMutableRawBufferPointer.allocate(byteCount: blockSize, alignment: 16)
            var produced = 0
            var problem: String?
            do {
                produced = try GzipBlockDecompressor().decompress(UnsafeRawBufferPointer(bytes), into: out)
                if let placement {
                    try place(UnsafeRawBufferPointer(rebasing: out[..<produced]), block: i, placement)
                } else {
                    try write(UnsafeRawBufferPointer(rebasing: out[..<produced]), at: Int64(i) * Int64(blockSize))
                }
            } catch {
                problem = "block \(i): \(error)"
            }
            bytes.deallocate()
            if placement != nil {
                out.deallocate()
                finishPlaced(problem: problem)
                return
            }
            complete(i, UnsafeMutableRawBufferPointer(rebasing: out[..<produced]), problem: problem)
        }
    }

    /// Checks a chain link's block against its own SHA-256, then writes the pages it is the newest holder of.
    private func place(_ raw: UnsafeRawBufferPointer, block i: Int, _ placement: PagePlacement) throws {
        let expected = placement.expected[i]
        guard raw.count == expected.pages * placement.pageSize else {
            throw CompressionError("inflates to \(raw.count) bytes, not the \(expected.pages) pages of \(placement.pageSize) bytes its manifest lists")
        }
        if placement.checkBlocks {
            var hash = SHA256Stream()
            hash.update(raw)
            guard hash.hex() == expected.sha256 else { throw CompressionError("its pages do not match the SHA-256 its manifest recorded") }
        }
        for (slot, page) in placement.writes[i] {
            let start = slot * placement.pageSize
            try write(UnsafeRawBufferPointer(rebasing: raw[start..<start + placement.pageSize]), at: Int64(page - 1) * Int64(placement.pageSize))
        }
    }

    private func finishPlaced(problem: String?) {
        lock.lock()
        if let problem, failure == nil { failure = problem }
        lock.unlock()
        slots.signal()
    }

    /// Writes in pieces of at most 64 KiB. A restore --at overwrites pages here one by one
    /// afterwards, and the kernel keeps a write's bytes in a page-cache folio as large as
    /// the write: a 4 KiB overwrite into a 4 MiB folio cost 34 µs on ext4 (Linux 6.18),
    /// into a 64 KiB one 4 µs, and writing the image in 64 KiB pieces costs no more.
    private func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(output.fd, bytes.baseAddress! + done, min(bytes.count - done, 64 << 10), off_t(offset) + off_t(done))
            if n < 0 { if errno == EINTR { continue }; throw FileError("write", output.path) }
            done += n
        }
    }

    /// Hashes finished blocks in order and frees their slots. The thread that
    /// finds the next block ready hashes it (and any that follow) outside the
    /// lock; others just leave their block and go back to inflating.
    private func complete(_ i: Int, _ block: UnsafeMutableRawBufferPointer, problem: String?) {
        lock.lock()
        if let problem, failure == nil { failure = problem }
        if block.count < blockSize && i < blocks.count - 1 && failure == nil {
            failure = "block \(i) inflates to \(block.count) bytes, not \(blockSize)"
        }
        finished[i] = block
        guard !hashing else { lock.unlock(); return }
        hashing = true
        while let ready = finished.removeValue(forKey: nextToHash) {
            lock.unlock()
            raw.update(UnsafeRawBufferPointer(ready))
            ready.deallocate()
            slots.signal()
            lock.lock()
            nextToHash += 1
        }
        hashing = false
        lock.unlock()
    }

    /// Waits for every block; returns the raw bytes and SHA-256, or the first problem.
    func finish() -> (bytes: Int64, sha256: String, problem: String?) {
        group.wait()
        member?.deallocate()
        lock.lock()
        defer { lock.unlock() }
        var problem = failure
        if problem == nil && index < blocks.count { problem = "gzip stream truncated in block \(index)" }
        if problem == nil && trailing > 0 { problem = "\(trailing) bytes after the last block" }
        return (raw.count, raw.hex(), problem)
    }
}
