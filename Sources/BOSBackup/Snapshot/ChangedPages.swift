import Foundation

/// The changed pages of a database image, one after another, as a block
/// source: block-gzip compresses them like a whole database, and each
/// block's page list comes from `pages(inBlock:)`.
struct ChangedPagesSource: BlockSource, @unchecked Sendable {
    let base: BlockSource
    /// 1-based page numbers, ascending.
    let pages: [Int]
    let pageSize: Int

    var size: Int64 { Int64(pages.count) * Int64(pageSize) }

    /// `offset` and `buffer.count` are whole pages (block sizes are page multiples).
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        var index = Int(offset / Int64(pageSize))
        var filled = 0
        while filled + pageSize <= buffer.count, index < pages.count {
            let slot = UnsafeMutableRawBufferPointer(rebasing: buffer[filled..<filled + pageSize])
            let n = try base.read(into: slot, at: Int64(pages[index] - 1) * Int64(pageSize))
            guard n == pageSize else { throw TargetError.failed("page \(pages[index]) of the database image could not be read whole") }
            filled += pageSize
            index += 1
        }
        return filled
    }

    /// Page numbers as `[first, count]` runs.
    static func runs(of pages: ArraySlice<Int>) -> [[Int]] {
        var runs: [[Int]] = []
        for page in pages {
            if let last = runs.last, last[0] + last[1] == page { runs[runs.count - 1][1] += 1 } else { runs.append([page, 1]) }
        }
        return runs
    }
}
