import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Who else is using a database file. Replacing a database that a BOS has
/// open loses everything it commits afterwards: its descriptor still points
/// at the old, unlinked file. Two independent signs, either is enough:
/// a process holding a descriptor on the file or its journal/WAL/shm (from
/// /proc, complete when run as root, our own processes otherwise), and a
/// POSIX lock SQLite holds on it (seen whoever the holder is: every open
/// WAL connection keeps a read lock on a byte of the -shm file).
public enum DatabaseInUse {
    /// One line per user found, e.g. "pid 4711 (bos-server) has it open"; empty when none.
    public static func users(of path: String) -> [String] {
        var found: [String] = []
        var seen = Set<Int32>()
        for pid in openers(of: path) where seen.insert(pid).inserted {
            found.append("pid \(pid) (\(command(of: pid))) has it open")
        }
        for (file, start, length) in [(path, Int64(0x4000_0000), Int64(0x200)), (path + "-shm", Int64(120), Int64(16))] {
            if let pid = lockHolder(file, start: start, length: length), seen.insert(pid).inserted {
                found.append("pid \(pid) (\(command(of: pid))) holds an SQLite lock on \((file as NSString).lastPathComponent)")
            }
        }
        return found
    }

    /// Processes with a descriptor on the database or one of its sidecars.
    static func openers(of path: String) -> [Int32] {
        let files = Set(["", "-wal", "-shm", "-journal"].compactMap { identity(path + $0) })
        guard !files.isEmpty, let pids = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var result: [Int32] = []
        for name in pids {
            guard let pid = Int32(name), pid != getpid(),
                  let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(name)/fd") else { continue }
            if fds.contains(where: { identity("/proc/\(name)/fd/\($0)").map(files.contains) ?? false }) { result.append(pid) }
        }
        return result.sorted()
    }

    /// Device and inode: what makes two paths (or a descriptor) one file.
    private struct FileIdentity: Hashable { let device: UInt64; let inode: UInt64 }

    private static func identity(_ path: String) -> FileIdentity? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    /// The pid of a process holding a lock that conflicts with a write lock on the range.
    static func lockHolder(_ path: String, start: Int64, length: Int64) -> Int32? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = off_t(start)
        lock.l_len = off_t(length)
        guard fcntl(fd, F_GETLK, &lock) == 0, lock.l_type != Int16(F_UNLCK) else { return nil }
        return lock.l_pid
    }

    private static func command(of pid: Int32) -> String {
        ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "?").trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
