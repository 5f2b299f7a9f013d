import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A snapshot restored into the scratch folder for triage, diff and recover:
/// reused while it is byte-for-byte the snapshot, restored (and checked) again
/// otherwise.
public struct ScratchRestore {
    public let verifier: SnapshotVerifier

    public init(verifier: SnapshotVerifier) { self.verifier = verifier }

    public var folder: String { verifier.scratch + "/restored" }

    public func path(for snapshot: SnapshotRecord) -> String { "\(folder)/\(snapshot.name).db" }

    /// The path of a verified scratch copy of `snapshot`.
    public func ensure(_ snapshot: SnapshotRecord, target: () throws -> Target) async throws -> String {
        let path = path(for: snapshot)
        try PrivateFolder.prepare(verifier.scratch)
        try PrivateFolder.prepare(folder)
        if Self.isOurRegularFile(path), (try? SHA256Stream.hex(ofFile: path)) == snapshot.databaseSHA256 { return path }
        let result = try await verifier.verify(snapshot, target: try target(), keepAt: path)
        guard result.ok else { throw RestoreError.verificationFailed(snapshot: snapshot.id, problems: result.problems) }
        return path
    }

    /// A plain file of ours, not a symlink: only such a file is reused unread.
    static func isOurRegularFile(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && st.st_uid == geteuid()
    }
}
