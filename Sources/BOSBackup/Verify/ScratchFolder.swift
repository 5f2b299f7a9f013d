import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The scratch folder: triage restores (kept until cleaned) and temporary
/// copies a killed process may have left.
///
/// Every temporary file is named `.bosbackup-<pid>-<what>-<random><suffix>`:
/// unpredictable (nobody can plant a file at the name first), and owned by a
/// process we can ask about, so a sweep removes only what no live process is
/// still using — a cron `run` never pulls the copy from under a running verify.
public struct ScratchFolder: Sendable {
    public let path: String
    public init(path: String) { self.path = path }

    static let prefix = ".bosbackup-"

    /// A fresh temporary name in the folder, owned by this process.
    public func temporaryName(_ what: String, suffix: String = "") -> String {
        "\(path)/\(Self.prefix)\(getpid())-\(what)-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))\(suffix)"
    }

    /// Removes everything bosbackup put there that no live process owns; returns how much.
    public func clean() throws -> (files: Int, bytes: Int64) {
        let stale = try staleTemporaries()
        var files = stale.count, bytes: Int64 = 0
        for path in stale { bytes += DurableFile.fileSize(path) ?? 0 }
        for victim in try triageRestores() {
            files += 1
            bytes += DurableFile.fileSize(victim) ?? 0
            try remove(victim)
        }
        files += try sweep(stale)
        return (files, bytes)
    }

    /// Removes only the temporary copies killed processes left (and the
    /// restore temporaries they registered elsewhere), keeping triage restores
    /// for the operator; returns how many files went.
    public func removeTemporaryCopies() throws -> Int {
        try sweep(try staleTemporaries())
    }

    /// Temporary files of processes that are gone.
    func staleTemporaries() throws -> [String] {
        try names().filter { $0.hasPrefix(Self.prefix) && !Self.ownerIsAlive($0) }.map { path + "/" + $0 }
    }

    private func sweep(_ stale: [String]) throws -> Int {
        var removed = 0
        for file in stale {
            if file.hasSuffix(InflightFiles.suffix) { removed += try InflightFiles.removeListed(in: file) }
            try remove(file)
            removed += 1
        }
        return removed
    }

    private func triageRestores() throws -> [String] {
        let folder = path + "/restored"
        guard DurableFile.exists(folder) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: folder).map { folder + "/" + $0 }
    }

    private func names() throws -> [String] {
        guard DurableFile.exists(path) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: path)
    }

    private func remove(_ file: String) throws {
        if unlink(file) != 0 && errno != ENOENT { throw FileError("remove", file) }
    }

    /// A name `.bosbackup-<pid>-…` whose process still runs. Names without a
    /// pid come from older releases, whose processes are long gone.
    static func ownerIsAlive(_ name: String) -> Bool {
        guard let pid = Int32(name.dropFirst(prefix.count).prefix { $0.isNumber }), pid > 0 else { return false }
        if pid == getpid() { return true }
        return kill(pid, 0) == 0 || errno == EPERM
    }
}

/// Files a process writes outside the scratch folder — a restore's temporary
/// beside its destination, a safety copy being made — listed in a scratch
/// file of its own, so that if the process is killed the next sweep of the
/// scratch folder (`run`, `scratch clean`) removes them. The list goes when
/// the process finishes.
public final class InflightFiles {
    static let suffix = ".inflight"
    public let list: String
    private let file: FileHandleFD

    public init(scratch: String) throws {
        try PrivateFolder.prepare(scratch)
        list = ScratchFolder(path: scratch).temporaryName("writing", suffix: Self.suffix)
        file = try FileHandleFD(creating: list)
    }

    deinit { unlink(list) }

    /// Notes `path` (and its SQLite sidecars) before the first byte is written to it.
    public func register(_ path: String) throws {
        try file.write(Array((path + "\n").utf8))
        try file.sync()
    }

    /// Removes the files a dead process listed: only our temporary names
    /// (`DurableFile.temporaryName`), never a file someone else named.
    static func removeListed(in list: String) throws -> Int {
        let text = try String(contentsOfFile: list, encoding: .utf8)
        var removed = 0
        for path in text.split(separator: "\n").map(String.init)
        where (path as NSString).lastPathComponent.contains(DurableFile.temporaryMarker) {
            for file in [path, path + "-journal", path + "-wal", path + "-shm"] where unlink(file) == 0 { removed += 1 }
        }
        return removed
    }
}
