import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What came out of streaming one stored snapshot back into a database file.
public struct FetchOutcome: Sendable {
    public var storedBytes: Int64 = 0
    public var storedSHA256 = ""
    public var databaseBytes: Int64 = 0
    public var databaseSHA256 = ""
    public var checksumOK = false
    public var gzipOK = false
    public var databaseMatches = false
    public var problems: [String] = []
}

/// Streams a snapshot object from its target, checks the stored bytes'
/// SHA-256 while inflating them, and writes the database to `path` (0600).
/// One pass over the data; memory is one chunk, not the snapshot.
public struct SnapshotFetcher {
    public init() {}

    public func fetch(_ snapshot: SnapshotRecord, from target: Target, into path: String) async throws -> FetchOutcome {
        let output = try FileHandleFD(creating: path, mode: 0o600, truncate: true)
        var outcome = FetchOutcome()
        var stored = SHA256Stream()
        var raw = SHA256Stream()
        var gzipError: String?
        let inflater = try GzipStreamInflater { bytes in
            raw.update(bytes)
            try output.write(bytes)
        }
        do {
            try await target.read(key: snapshot.objectKey) { chunk in
                stored.update(chunk)
                // Keep reading after a gzip error so the checksum still covers every byte.
                if gzipError == nil {
                    do { try inflater.feed(chunk) } catch let error as GzipStreamInflater.Failure {
                        gzipError = error.description
                    }
                }
            }
            if gzipError == nil {
                do { try inflater.finish() } catch { gzipError = "\(error)" }
            }
        } catch let error as TargetError {
            if case .notFound = error { outcome.problems.append("missing: \(error)"); return outcome }
            throw error
        } catch let error as EncryptionError {
            // Wrong key, or the encrypted object was damaged or cut short.
            outcome.problems.append("decrypt: \(error)")
            gzipError = gzipError ?? "not decrypted"
        }
        if snapshot.encrypted && !target.encrypts {
            outcome.problems.append("decrypt: snapshot \(snapshot.id) is encrypted; give the policy file with its target's encryption_key_file")
        }
        try output.sync()

        outcome.storedBytes = stored.count
        outcome.storedSHA256 = stored.hex()
        outcome.databaseBytes = raw.count
        outcome.databaseSHA256 = raw.hex()
        outcome.checksumOK = outcome.storedSHA256 == snapshot.sha256 && outcome.storedBytes == snapshot.storedBytes
        if !outcome.checksumOK {
            outcome.problems.append("checksum: stored object SHA-256 \(outcome.storedSHA256.prefix(12))… (\(outcome.storedBytes) bytes) does not match the catalog's \(snapshot.sha256.prefix(12))… (\(snapshot.storedBytes) bytes)")
        }
        outcome.gzipOK = gzipError == nil
        if let gzipError { outcome.problems.append("gzip: \(gzipError)") }
        outcome.databaseMatches = outcome.gzipOK && outcome.databaseSHA256 == snapshot.databaseSHA256
        if outcome.gzipOK && !outcome.databaseMatches {
            outcome.problems.append("database: inflated database SHA-256 does not match the one recorded at backup")
        }
        return outcome
    }
}
