import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A folder on a local or mounted disk (the NAS copy). Objects are files
/// under the root; every write goes to a hidden temporary name, is fsynced,
/// renamed into place and the folder fsynced, so a crash never leaves a
/// half-written file under a real name.
public final class FileTarget: Target {
    public let root: String
    public var displayURL: String { "file://" + root }
    public var isLocal: Bool { true }
    public var encrypts: Bool { false }
    /// A ranged read is a pread: only a few page members' worth is worth reading through.
    public var readThroughGap: Int64 { 16 << 10 }

    public init(url: String) throws {
        var path = url
        if path.lowercased().hasPrefix("file://") { path.removeFirst("file://".count) }
        path = (path.removingPercentEncoding ?? path)
        guard path.hasPrefix("/") else { throw TargetError.badURL("file target needs an absolute path: \(url)") }
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        root = path
    }

    func path(for key: String) -> String { root + "/" + key }

    public func makeWriter(key: String) async throws -> ObjectWriter {
        let final = path(for: key)
        let folder = (final as NSString).deletingLastPathComponent
        do {
            try PrivateFolder.prepare(root)
            try DurableFile.makeDirectory(folder)
            return try FileObjectWriter(finalPath: final)
        } catch let error as FileError {
            throw TargetError.notWritable("target folder \(folder) is not writable: \(String(cString: strerror(error.errno)))")
        }
    }

    /// The root folder, or the folder it will be made in, exists and is ours to write.
    public var freeBytes: Int64? {
        var st = statvfs()
        guard statvfs(root, &st) == 0 else { return nil }
        return Int64(st.f_bavail) * Int64(st.f_frsize)
    }

    public func checkAccess() async throws {
        var existing = root
        while !DurableFile.exists(existing) && existing != "/" { existing = (existing as NSString).deletingLastPathComponent }
        if existing == root { try PrivateFolder.check(root) }
        guard access(existing, W_OK) == 0 else {
            throw TargetError.notWritable("target folder \(existing) is not writable: \(String(cString: strerror(errno)))")
        }
    }

    public func put(key: String, data: Data) async throws {
        let final = path(for: key)
        let folder = (final as NSString).deletingLastPathComponent
        do {
            try PrivateFolder.prepare(root)
            try DurableFile.makeDirectory(folder)
            // Through a writer, so a put cut short leaves a temporary file that names its process.
            let writer = try FileObjectWriter(finalPath: final)
            try data.withUnsafeBytes { try writer.append($0) }
            try writer.finish()
        } catch let error as FileError {
            throw TargetError.notWritable("cannot write \(final): \(String(cString: strerror(error.errno)))")
        }
    }

    public func read(key: String, consume: (UnsafeRawBufferPointer) throws -> Void) async throws {
        try await read(key: key, offset: 0, length: .max, consume: consume)
    }

    public func read(key: String, offset: Int64, length: Int64, consume: (UnsafeRawBufferPointer) throws -> Void) async throws {
        let range = try ByteRange(offset: offset, length: length, key: key)
        let file: FileHandleFD
        do { file = try FileHandleFD(readingFrom: path(for: key)) } catch let error as FileError where error.errno == ENOENT {
            throw TargetError.notFound(key: key, target: displayURL)
        }
        // No bigger than the range: a restore --at reads thousands of page runs of a few KiB,
        // and a megabyte each was an mmap and an munmap each (a TLB shootdown on every core:
        // 2.2 s of a 21 s restore of 1.2 M commits).
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(max(1, min(1 << 20, range.upperBound - range.lowerBound))), alignment: 16)
        defer { buffer.deallocate() }
        var position = range.lowerBound
        while position < range.upperBound {
            let wanted = Int(min(Int64(buffer.count), range.upperBound - position))
            let n = try Self.pread(file, into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<wanted]), at: position)
            if n == 0 { break }
            try consume(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
            position += Int64(n)
        }
    }

    /// pread(2), again on EINTR; 0 at the end of the file.
    private static func pread(_ file: FileHandleFD, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        while true {
            let n = Glibc.pread(file.fd, buffer.baseAddress, buffer.count, off_t(offset))
            if n >= 0 { return n }
            if errno != EINTR { throw TargetError.failed(FileError("read", file.path).description) }
        }
    }

    public func get(key: String) async throws -> Data {
        var data = Data()
        try await read(key: key) { data.append(contentsOf: $0) }
        return data
    }

    public func head(key: String) async throws -> ObjectInfo? {
        DurableFile.fileSize(path(for: key)).map { ObjectInfo(key: key, size: $0) }
    }

    /// One page per folder: the folders still to walk are the cursor.
    public func objects(prefix: String) -> AsyncThrowingStream<ObjectInfo, Error> {
        ObjectPages.stream { (pending: [String]?) in
            var pending = pending ?? [""]
            let folder = try self.readFolder(pending.removeLast(), prefix: prefix)
            pending += folder.subfolders.reversed()
            return (folder.objects, pending.isEmpty ? nil : pending)
        }
    }

    public func delete(key: String) async throws {
        let file = path(for: key)
        if unlink(file) != 0 && errno != ENOENT { throw TargetError.failed(FileError("delete", file).description) }
        try? DurableFile.syncDirectory((file as NSString).deletingLastPathComponent)
    }

    /// Temporary files left by a writer that was killed; removed by the next run.
    public func staleTemporaryFiles() -> [String] {
        ((try? temporaryFiles(prefix: "")) ?? []).map { path(for: $0.relative) }
    }

    /// The temporary files under `prefix` whose writer is not another live process and that
    /// were last written before `startedBefore`: a writer still at work touches its file.
    /// One that cannot be removed costs only space and is tried again next time: it is not
    /// counted, and does not make a reachable folder look failed.
    public func removeStaleWrites(under prefix: String, startedBefore: Date) async throws -> Int {
        try temporaryFiles(prefix: prefix).filter { temporary in
            temporary.lastModified < startedBefore && !temporary.name.isOwnedByAnotherLiveProcess
                && unlink(path(for: temporary.relative)) == 0
        }.count
    }

    // MARK: - Walking the folder

    struct TemporaryFile {
        let relative: String
        let name: TemporaryName
        let lastModified: Date
    }

    /// What one folder holds: objects, temporary files of writers, and the subfolders that
    /// may hold keys under the prefix.
    struct Folder {
        var objects: [ObjectInfo] = []
        var temporaries: [TemporaryFile] = []
        var subfolders: [String] = []
    }

    /// Reads the folder at `relative` ("" for the root), keeping what lies under `prefix`.
    /// A missing root is an empty target; an unreadable subfolder (`lost+found` at the root
    /// of a mount) is skipped, as it cannot hold anything we wrote.
    func readFolder(_ relative: String, prefix: String) throws -> Folder {
        let directory = relative.isEmpty ? root : path(for: relative)
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            if !relative.isEmpty || !DurableFile.exists(root) { return Folder() }
            throw TargetError.failed("cannot list \(directory): \(error.localizedDescription)")
        }
        var folder = Folder()
        for name in names.sorted() {
            let key = relative.isEmpty ? name : relative + "/" + name
            var st = stat()
            guard lstat(path(for: key), &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                // Only folders that can hold keys starting with the prefix are walked.
                if (key + "/").hasPrefix(prefix) || prefix.hasPrefix(key + "/") { folder.subfolders.append(key) }
            } else if let temporary = TemporaryName(parsing: name) {
                let finalKey = relative.isEmpty ? temporary.finalName : relative + "/" + temporary.finalName
                guard finalKey.hasPrefix(prefix) else { continue }
                let modified = Date(timeIntervalSince1970: Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9)
                folder.temporaries.append(TemporaryFile(relative: key, name: temporary, lastModified: modified))
            } else if key.hasPrefix(prefix), stat(path(for: key), &st) == 0, (st.st_mode & S_IFMT) == S_IFREG {
                // A symlink to a file is an object, as it reads like one.
                folder.objects.append(ObjectInfo(key: key, size: Int64(st.st_size)))
            }
        }
        return folder
    }

    /// Every temporary file under `prefix`, whoever writes it.
    func temporaryFiles(prefix: String) throws -> [TemporaryFile] {
        var result: [TemporaryFile] = []
        var pending = [""]
        while let relative = pending.popLast() {
            let folder = try readFolder(relative, prefix: prefix)
            result += folder.temporaries
            pending += folder.subfolders
        }
        return result
    }
}

/// The name of a writer's temporary file: `.<name>.tmp-<pid>-<random>` beside the final
/// path. The pid tells a temporary of a live writer of another process (left alone) from one
/// a killed writer left; names without it (`.<name>.tmp-<random>`, v1 and `DurableFile`)
/// have no known owner.
struct TemporaryName: Equatable {
    /// The name the file gets on commit.
    let finalName: String
    /// The writer's process, when the name says.
    let pid: pid_t?

    static func make(for finalPath: String) -> String {
        let folder = (finalPath as NSString).deletingLastPathComponent
        let name = (finalPath as NSString).lastPathComponent
        let random = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        return (folder.isEmpty ? "" : folder + "/") + "." + name + DurableFile.temporaryMarker + "\(getpid())-" + random
    }

    init?(parsing fileName: String) {
        guard fileName.hasPrefix("."), let marker = fileName.range(of: DurableFile.temporaryMarker, options: .backwards) else {
            return nil
        }
        finalName = String(fileName[fileName.index(after: fileName.startIndex) ..< marker.lowerBound])
        let tail = fileName[marker.upperBound...]
        if let dash = tail.firstIndex(of: "-"), let pid = pid_t(tail[..<dash]), pid > 0 {
            self.pid = pid
        } else {
            self.pid = nil
        }
    }

    /// True while the writer is a process other than this one that is still running
    /// (kill(pid, 0) succeeds, or fails only for want of permission).
    var isOwnedByAnotherLiveProcess: Bool {
        guard let pid, pid != getpid() else { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }
}

/// Streams into `.name.tmp-<pid>-<random>` beside the final path; commit = fsync, rename,
/// fsync folder.
final class FileObjectWriter: ObjectWriter {
    let finalPath: String
    let temporaryPath: String
    private var file: FileHandleFD?

    init(finalPath: String) throws {
        self.finalPath = finalPath
        self.temporaryPath = TemporaryName.make(for: finalPath)
        self.file = try FileHandleFD(creating: temporaryPath, mode: 0o600)
    }

    func write(_ bytes: UnsafeRawBufferPointer) async throws {
        do { try append(bytes) } catch let error as FileError {
            throw TargetError.failed(error.isNoSpace ? "target disk full while writing \(finalPath)" : error.description)
        }
    }

    func commit() async throws {
        do { try finish() } catch let error as FileError {
            throw TargetError.failed(error.isNoSpace ? "target disk full while writing \(finalPath)" : error.description)
        }
    }

    func abort() async {
        file = nil
        unlink(temporaryPath)
    }

    /// `write` with the file system's error as it is.
    func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard let file else { throw TargetError.failed("write after commit or abort: \(finalPath)") }
        try file.write(bytes)
    }

    /// `commit` with the file system's error as it is; on failure nothing is left.
    func finish() throws {
        guard let file else { throw TargetError.failed("commit twice: \(finalPath)") }
        do {
            try file.sync()
            self.file = nil
            try DurableFile.commit(temporary: temporaryPath, to: finalPath)
        } catch {
            self.file = nil
            unlink(temporaryPath)
            throw error
        }
    }

    deinit {
        // A writer dropped without commit leaves nothing behind.
        if file != nil { unlink(temporaryPath) }
    }
}

extension FileTarget: ReadsRangesNow {
    public func rangeReader(key: String) throws -> RangeReader {
        do { return FileRangeReader(file: try FileHandleFD(readingFrom: path(for: key))) } catch let error as FileError where error.errno == ENOENT {
            throw TargetError.notFound(key: key, target: displayURL)
        }
    }

    public func readAhead(key: String) {
        // Advice only: a file that cannot be opened here is reported by the read that needs it.
        let fd = open(path(for: key), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_WILLNEED))
        close(fd)
    }
}

private final class FileRangeReader: RangeReader {
    let file: FileHandleFD
    init(file: FileHandleFD) { self.file = file }

    func read(_ offset: Int64, _ length: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: length)
        let n = try bytes.withUnsafeMutableBytes { try BlockGzipWriter.pread(fd: file.fd, path: file.path, into: $0, at: offset) }
        return n == length ? bytes : Array(bytes[..<n])
    }
}
