import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Another `run` (or the daemon) holds the lock.
public struct LockBusyError: Error, CustomStringConvertible, CategorizedError, Sendable {
    public let path: String
    public let holder: String?
    public var description: String {
        "another bosbackup run holds the lock \(path)" + (holder.map { " (\($0))" } ?? "") + "; not starting a second one"
    }
    public var category: ErrorCategory { .busy }
}

/// One run at a time: an exclusive `flock` on a file beside the catalog. The
/// kernel drops the lock when the holder dies, even by SIGKILL, so a crashed
/// run never blocks the next one (no stale-PID guessing).
public final class RunLock {
    public let path: String
    private let fd: Int32

    /// Takes the lock or fails at once with `LockBusyError`.
    public init(path: String, clock: Clock = SystemClock()) throws {
        self.path = path
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty { try PrivateFolder.prepare(folder) }
        let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FileError("open lock file", path) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            close(fd)
            throw LockBusyError(path: path, holder: holder?.isEmpty == false ? holder : nil)
        }
        self.fd = fd
        // Who holds it, for the message the second run prints. Informational only.
        let note = "pid \(getpid()) since \(ISO8601.string(Date()))\n"
        ftruncate(fd, 0)
        _ = note.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }

    public static func path(forCatalog catalog: String) -> String { catalog + ".lock" }
}
