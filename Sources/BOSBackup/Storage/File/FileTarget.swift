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
            try DurableFile.write(data, to: final)
        } catch let error as FileError {
            throw TargetError.notWritable("cannot write \(final): \(String(cString: strerror(error.errno)))")
        }
    }

    public func read(key: String, consume: (UnsafeRawBufferPointer) throws -> Void) async throws {
        let file: FileHandleFD
        do { file = try FileHandleFD(readingFrom: path(for: key)) } catch let error as FileError where error.errno == ENOENT {
            throw TargetError.notFound(key: key, target: displayURL)
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = try file.read(into: buffer)
            if n == 0 { break }
            try consume(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
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

    public func list(prefix: String) async throws -> [ObjectInfo] {
        guard let enumerator = FileManager.default.enumerator(atPath: root) else { return [] }
        var result: [ObjectInfo] = []
        while let relative = enumerator.nextObject() as? String {
            guard relative.hasPrefix(prefix) else { continue }
            let name = (relative as NSString).lastPathComponent
            if name.hasPrefix(".") && name.contains(DurableFile.temporaryMarker) { continue }
            var st = stat()
            guard stat(path(for: relative), &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            result.append(ObjectInfo(key: relative, size: Int64(st.st_size)))
        }
        return result.sorted { $0.key < $1.key }
    }

    public func delete(key: String) async throws {
        let file = path(for: key)
        if unlink(file) != 0 && errno != ENOENT { throw TargetError.failed(FileError("delete", file).description) }
        try? DurableFile.syncDirectory((file as NSString).deletingLastPathComponent)
    }

    /// Temporary files left by a writer that was killed; removed by the next run.
    public func staleTemporaryFiles() -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: root) else { return [] }
        var result: [String] = []
        while let relative = enumerator.nextObject() as? String {
            let name = (relative as NSString).lastPathComponent
            if name.hasPrefix(".") && name.contains(DurableFile.temporaryMarker) { result.append(path(for: relative)) }
        }
        return result
    }
}

/// Streams into `.name.tmp-XXXX` beside the final path; commit = fsync, rename, fsync folder.
final class FileObjectWriter: ObjectWriter {
    let finalPath: String
    let temporaryPath: String
    private var file: FileHandleFD?

    init(finalPath: String) throws {
        self.finalPath = finalPath
        self.temporaryPath = DurableFile.temporaryName(for: finalPath)
        self.file = try FileHandleFD(creating: temporaryPath, mode: 0o600)
    }

    func write(_ bytes: UnsafeRawBufferPointer) async throws {
        guard let file else { throw TargetError.failed("write after commit or abort: \(finalPath)") }
        do { try file.write(bytes) } catch let error as FileError {
            throw TargetError.failed(error.isNoSpace ? "target disk full while writing \(finalPath)" : error.description)
        }
    }

    func commit() async throws {
        guard let file else { throw TargetError.failed("commit twice: \(finalPath)") }
        do {
            try file.sync()
            self.file = nil
            try DurableFile.commit(temporary: temporaryPath, to: finalPath)
        } catch let error as FileError {
            await abort()
            throw TargetError.failed(error.isNoSpace ? "target disk full while writing \(finalPath)" : error.description)
        }
    }

    func abort() async {
        file = nil
        unlink(temporaryPath)
    }

    deinit {
        // A writer dropped without commit leaves nothing behind.
        if file != nil { unlink(temporaryPath) }
    }
}
