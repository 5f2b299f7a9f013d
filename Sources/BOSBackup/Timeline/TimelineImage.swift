import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The scratch image the timeline walks forward: a restored database file
/// that archived commits are written onto, page by page, one commit at a time.
/// Before a commit's pages are written their old versions are kept
/// (`PagesBefore`), so both sides of every commit can be read. Written pages
/// are held in memory up to 32 MiB (`HeldPages`: writing each through to the
/// file was a third of the walk), as the members they were shipped as until
/// somebody reads them (`PageVersion`); `flush()` before anyone else reads the file.
final class TimelineImage: PageSource {
    let path: String
    let pageSize: Int
    let usableSize: Int
    private(set) var pageCount: UInt32
    private let file: FileHandleFD
    private let held: HeldPages

    init(path: String) throws {
        self.path = path
        let file = try FileHandleFD(updating: path)
        self.file = file
        var header = [UInt8](repeating: 0, count: 100)
        let read = try header.withUnsafeMutableBytes { try file.readFully(into: $0) }
        guard read == 100, header.starts(with: Array("SQLite format 3\0".utf8)) else {
            throw BTreeFormatError(description: "\(path) is not an SQLite database")
        }
        let size = Int(header[16]) << 8 | Int(header[17])
        pageSize = size == 1 ? 65536 : size
        usableSize = pageSize - Int(header[20])
        // Text encoding (offset 56): 1 is UTF-8, the only one records are decoded in.
        let encoding = UInt32(header[56]) << 24 | UInt32(header[57]) << 16 | UInt32(header[58]) << 8 | UInt32(header[59])
        guard encoding == 1 else { throw BTreeFormatError(description: "the database's text encoding is UTF-16; the timeline reads UTF-8 databases only") }
        pageCount = UInt32((DurableFile.fileSize(path) ?? 0) / Int64(pageSize))
        held = HeldPages(file: file, pageSize: pageSize, limit: 32 << 20)
    }

    func page(_ number: UInt32) throws -> [UInt8] {
        if let bytes = try held.bytes(number) { return bytes }
        return try filePage(number)
    }

    /// The page as the file has it (not what is held).
    fileprivate func filePage(_ number: UInt32) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: pageSize)
        guard number >= 1, number <= pageCount else { return bytes }   // past the end: as SQLite sees it, nothing
        let read = bytes.withUnsafeMutableBytes { pread(file.fd, $0.baseAddress, pageSize, off_t(number - 1) * off_t(pageSize)) }
        guard read >= 0 else { throw FileError("read", path) }   // short: past the file's end, zeros as SQLite reads them
        return bytes
    }

    /// Writes one commit: its pages, then the size it left. Returns the pages as they were.
    func apply(_ commit: TimelineCommit) throws -> PagesBefore {
        // Written out before, not after: while this commit's old side is read, the file still
        // holds every page it wrote that was not held (read from there only if asked for).
        try held.flushIfFull()
        var old: [UInt32: PageVersion] = [:]
        var inFile = Set<UInt32>(), written = Set<UInt32>()
        old.reserveCapacity(commit.pages.count)
        written.reserveCapacity(commit.pages.count)
        let shrinks = commit.pageCount < max(pageCount, Self.top(commit))
        for page in commit.pages where written.insert(page.number).inserted {
            if let version = held.version(page.number) {
                old[page.number] = version
            } else if shrinks {
                old[page.number] = .bytes(try filePage(page.number))   // the file is cut below
            } else {
                inFile.insert(page.number)
            }
        }
        let before = PagesBefore(image: self, old: old, inFile: inFile, written: written, pageCount: pageCount)
        try write(commit)
        return before
    }

    /// The highest page a commit wrote.
    private static func top(_ commit: TimelineCommit) -> UInt32 {
        commit.pages.reduce(0) { max($0, $1.number) }
    }

    /// Writes one commit nobody looks at: its pages, then its size, and no old side kept.
    func pass(_ commit: TimelineCommit) throws {
        try held.flushIfFull()
        try write(commit)
    }

    private func write(_ commit: TimelineCommit) throws {
        for page in commit.pages { held.put(page.number, page.version) }
        pageCount = max(pageCount, Self.top(commit))
        if commit.pageCount < pageCount { try held.cut(to: commit.pageCount) }
        pageCount = commit.pageCount
    }

    /// Writes the pages held in memory to the file (before SQLite or anyone else reads it).
    func flush() throws { try held.flush() }

    func inflate(_ version: PageVersion, page number: UInt32) throws -> [UInt8] { try held.inflater.bytes(version, page: number) }

    /// Where `.stored` pages are read from (the walk's segments on a folder target).
    var stored: StoredPages? {
        get { held.inflater.stored }
        set { held.inflater.stored = newValue }
    }

    /// Where the pages' SHA-256 checks run, when not before each page is used (`PageVerifier`).
    var verifier: PageVerifier? {
        get { held.inflater.verifier }
        set { held.inflater.verifier = newValue }
    }
}

/// An archived commit as the timeline applies it: its pages as they were shipped.
struct TimelineCommit {
    var txid: Int64
    var seenAt: Date
    var pageCount: UInt32
    var pages: [(number: UInt32, version: PageVersion)]

    /// It did not write page 1 (the schema, and its cookie, are there).
    var leavesSchemaAlone: Bool { !pages.contains { $0.number == 1 } }
}

/// The image as it was before a commit: the commit's pages from their kept old
/// versions (or, for those not held, from the file, which is not written while
/// the commit is looked at), every other page as the image has it (the commit
/// did not touch it).
struct PagesBefore: PageSource {
    let image: TimelineImage
    private(set) var old: [UInt32: PageVersion]
    /// Pages the commit wrote whose old version is the file's.
    private(set) var inFile: Set<UInt32>
    /// The pages the commit wrote.
    let written: Set<UInt32>
    let pageCount: UInt32
    var pageSize: Int { image.pageSize }
    var usableSize: Int { image.usableSize }

    func page(_ number: UInt32) throws -> [UInt8] {
        if let version = old[number] { return try image.inflate(version, page: number) }
        if inFile.contains(number) { return try image.filePage(number) }
        guard number <= pageCount else { return [UInt8](repeating: 0, count: pageSize) }
        return try image.page(number)
    }

    /// Reads the old versions the file holds now, before the image is written out (a
    /// commit that changed the schema has the schema read through the file).
    mutating func keepFilePages() throws {
        for number in inFile { old[number] = .bytes(try image.filePage(number)) }
        inFile = []
    }

}
