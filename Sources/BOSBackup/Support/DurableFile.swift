import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// File-system errors with the path and the errno text.
public struct FileError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let operation: String
    public let errno: Int32
    public init(_ operation: String, _ path: String, errno: Int32 = Glibc.errno) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }
    public var isNoSpace: Bool { errno == ENOSPC || errno == EDQUOT }
    public var description: String {
        "cannot \(operation) \(path): \(String(cString: strerror(errno)))"
    }
}

/// A file descriptor owned by scope: closed on deinit.
public final class FileHandleFD {
    public let fd: Int32
    public let path: String

    /// Opens for reading.
    public init(readingFrom path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError("open", path) }
        self.fd = fd
        self.path = path
    }

    /// Creates a new file with `mode`, whatever the umask. Never an existing
    /// file and never through a symlink (O_EXCL|O_NOFOLLOW): a name someone
    /// planted fails instead of redirecting our write.
    public init(creating path: String, mode: mode_t = 0o600) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw FileError("create", path) }
        fchmod(fd, mode)
        self.fd = fd
        self.path = path
    }

    /// Opens an existing file of ours for positioned writes (never through a symlink).
    public init(updating path: String) throws {
        let fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw FileError("open", path) }
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    /// Writes all of `buffer` at `offset` (pwrite).
    public func write(_ buffer: UnsafeRawBufferPointer, at offset: Int64) throws {
        var done = 0
        while done < buffer.count {
            let n = pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 { if errno == EINTR { continue }; throw FileError("write", path) }
            done += n
        }
    }

    /// Reads up to `count` bytes into `buffer`; returns the number read (0 at end).
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw FileError("read", path)
        }
    }

    /// Fills `buffer` unless the file ends first; returns bytes read.
    public func readFully(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var total = 0
        while total < buffer.count {
            let n = try read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[total...]))
            if n == 0 { break }
            total += n
        }
        return total
    }

    public func write(_ buffer: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < buffer.count {
            let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError("write", path)
            }
            offset += n
        }
    }

    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    public func sync() throws {
        if fsync(fd) != 0 { throw FileError("fsync", path) }
    }

    public var size: Int64 {
        var st = stat()
        return fstat(fd, &st) == 0 ? Int64(st.st_size) : 0
    }
}

/// Durable file operations: the rules every stored artefact follows.
public enum DurableFile {
    /// fsyncs a directory so a rename or create inside it survives a crash.
    public static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError("open directory", path) }
        defer { close(fd) }
        if fsync(fd) != 0 { throw FileError("fsync directory", path) }
    }

    /// Atomically replaces `path` with `temporary` and makes it durable.
    public static func commit(temporary: String, to path: String) throws {
        if rename(temporary, path) != 0 { throw FileError("rename into", path) }
        try syncDirectory((path as NSString).deletingLastPathComponent)
    }

    /// Writes small content (manifests, reports, metrics) via temp+fsync+rename.
    public static func write(_ data: Data, to path: String, mode: mode_t = 0o600) throws {
        let temporary = temporaryName(for: path)
        do {
            let file = try FileHandleFD(creating: temporary, mode: mode)
            try data.withUnsafeBytes { try file.write($0) }
            try file.sync()
            try commit(temporary: temporary, to: path)
        } catch {
            unlink(temporary)
            throw error
        }
    }

    /// Creates a folder (and parents) with mode 0700 where it creates one.
    public static func makeDirectory(_ path: String, mode: mode_t = 0o700) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
            if isDir.boolValue { return }
            throw FileError("create directory (a file is in the way)", path, errno: ENOTDIR)
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty && parent != path { try makeDirectory(parent, mode: mode) }
        if mkdir(path, mode) != 0 && errno != EEXIST { throw FileError("create directory", path) }
        chmod(path, mode)
    }

    /// `dir/.name.tmp-<random>`: hidden, recognisable, and cleaned by the next run.
    public static func temporaryName(for path: String) -> String {
        let dir = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        let random = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        return (dir.isEmpty ? "" : dir + "/") + "." + name + temporaryMarker + random
    }

    public static let temporaryMarker = ".tmp-"

    /// `base`, or `base-2`, `base-3`… — the first name not taken (safety copies made in the same second).
    public static func unusedPath(_ base: String) -> String {
        var candidate = base
        var n = 2
        while exists(candidate) { candidate = "\(base)-\(n)"; n += 1 }
        return candidate
    }

    public static func fileSize(_ path: String) -> Int64? {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : nil
    }

    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }
}
