import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Pages written onto a database file, each held in memory (its last version)
/// until `limit` bytes of them are, then written to the file: a BOS rewrites
/// the same pages commit after commit, and writing each through was a large
/// part of rolling an archive forward. Used by `restore --at` and the timeline.
final class HeldPages {
    let file: FileHandleFD
    let pageSize: Int
    let limit: Int
    private var held: [UInt32: [UInt8]] = [:]

    init(file: FileHandleFD, pageSize: Int, limit: Int) {
        (self.file, self.pageSize, self.limit) = (file, pageSize, limit)
    }

    subscript(number: UInt32) -> [UInt8]? { held[number] }

    func put(_ number: UInt32, _ bytes: [UInt8]) {
        held[number] = bytes
    }

    /// Writes what is held once it passes the limit (memory stays flat on any archive).
    func flushIfFull() throws {
        if held.count * pageSize > limit { try flush() }
    }

    /// The database shrank to `count` pages: pages past it are dropped and the file is cut
    /// (a page it later grows back into is then zeros, as in SQLite's own file).
    func cut(to count: UInt32) throws {
        held = held.filter { $0.key <= count }
        guard ftruncate(file.fd, off_t(count) * off_t(pageSize)) == 0 else { throw FileError("size", file.path) }
    }

    /// Writes every held page at its offset.
    func flush() throws {
        for (number, bytes) in held {
            try bytes.withUnsafeBytes { try file.write($0, at: Int64(number - 1) * Int64(pageSize)) }
        }
        held.removeAll(keepingCapacity: true)
    }
}
