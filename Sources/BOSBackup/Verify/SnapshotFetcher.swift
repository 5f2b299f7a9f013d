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
    public var jobs: Int
    /// Told the stored bytes read so far, against the stored size.
    public var progress: ProgressHandler?
    /// Where an incremental's chain links are looked up.
    public var catalog: Catalog?
    public init(jobs: Int = BlockGzipWriter.defaultJobs, progress: ProgressHandler? = nil, catalog: Catalog? = nil) {
        self.jobs = jobs
        self.progress = progress
        self.catalog = catalog
    }

    /// Restores into `path`, inflating blocks on all cores when the manifest's
    /// block table fits the object, sequentially (zlib, one stream) otherwise.
    /// An incremental is rebuilt from its chain (`ChainFetcher`).
    public func fetch(_ snapshot: SnapshotRecord, from target: Target, into path: String) async throws -> FetchOutcome {
        if snapshot.layout.isIncremental {
            guard let catalog else { throw TargetError.failed("internal: an incremental snapshot needs the catalog to find its chain") }
            return try await ChainFetcher(catalog: catalog, jobs: jobs, progress: progress).fetch(snapshot, from: Repository(target: target), into: path)
        }
        if let blocks = try? await blockTable(snapshot, target: target) {
            let parallel = try await fetch(snapshot, from: target, into: path, blocks: blocks)
            // A stream that does not inflate along the table gets a second, sequential
            // pass: the table may be what is wrong, and the report should say what the data is.
            if parallel.gzipOK { return parallel }
            unlink(path)   // our own file from the first pass: the second one creates it anew
        }
        return try await fetch(snapshot, from: target, into: path, blocks: nil)
    }

    /// The manifest's block table, if it describes this object exactly.
    func blockTable(_ snapshot: SnapshotRecord, target: Target) async throws -> [SnapshotManifest.Block]? {
        let (manifestID, manifestBlockSize, blocks): (String, Int, [SnapshotManifest.Block])
        switch try ManifestDocument.decode(try await Repository(target: target).get(manifestKey: snapshot.manifestKey)) {
        case .v1(let manifest): (manifestID, manifestBlockSize, blocks) = (manifest.id, manifest.blockSize, manifest.blocks)
        case .v2(let manifest):
            guard manifest.blocks.allSatisfy({ $0.object == 0 }) else { return nil }
            (manifestID, manifestBlockSize, blocks) = (manifest.id, manifest.blockSize, manifest.blocks.map { .init(offset: $0.offset, length: $0.length) })
        }
        var offset: Int64 = 0
        for block in blocks {
            guard block.offset == offset, block.length > 0 else { return nil }
            offset += block.length
        }
        guard manifestID == snapshot.id, offset == snapshot.storedBytes, manifestBlockSize == snapshot.blockSize,
              snapshot.blockSize > 0, Int64(blocks.count) == max(1, (snapshot.bytes + Int64(snapshot.blockSize) - 1) / Int64(snapshot.blockSize))
        else { return nil }
        return blocks
    }

    func fetch(_ snapshot: SnapshotRecord, from target: Target, into path: String, blocks: [SnapshotManifest.Block]?) async throws -> FetchOutcome {
        let output = try FileHandleFD(creating: path, mode: 0o600)
        var outcome = FetchOutcome()
        var stored = SHA256Stream()
        var raw = SHA256Stream()
        var gzipError: String?
        let parallel = blocks.map { ParallelBlockInflater(blocks: $0, blockSize: snapshot.blockSize, output: output, jobs: jobs) }
        // One of the two: block-parallel by the table, or one sequential zlib stream.
        let inflater = parallel != nil ? nil : try GzipStreamInflater { bytes in
            raw.update(bytes)
            try output.write(bytes)
        }
        do {
            let phase = "fetching snapshot \(snapshot.id)"
            try await target.read(key: snapshot.objectKey) { chunk in
                stored.update(chunk)
                progress?(ProgressUpdate(phase: phase, done: stored.count, total: snapshot.storedBytes, unit: .bytes))
                if let parallel { parallel.feed(chunk); return }
                // Keep reading after a gzip error so the checksum still covers every byte.
                if gzipError == nil, let inflater {
                    do { try inflater.feed(chunk) } catch let error as GzipStreamInflater.Failure {
                        gzipError = error.description
                    }
                }
            }
            if let inflater, gzipError == nil {
                do { try inflater.finish() } catch { gzipError = "\(error)" }
            }
        } catch let error as TargetError {
            _ = parallel?.finish()
            if case .notFound = error { outcome.problems.append("missing: \(error)"); return outcome }
            throw error
        } catch let error as EncryptionError where error.category == .input {
            _ = parallel?.finish()
            throw error     // a wrong key: no verdict on the snapshot
        } catch let error as EncryptionError {
            // Wrong key, or the encrypted object was damaged or cut short.
            outcome.problems.append("decrypt: \(error)")
            gzipError = gzipError ?? "not decrypted"
        } catch {
            _ = parallel?.finish()      // workers write into `output`: let them end first
            throw error
        }
        if let parallel {
            let result = parallel.finish()
            outcome.databaseBytes = result.bytes
            outcome.databaseSHA256 = result.sha256
            gzipError = gzipError ?? result.problem.map { "gzip data corrupt: \($0)" }
        } else {
            outcome.databaseBytes = raw.count
            outcome.databaseSHA256 = raw.hex()
        }
        if snapshot.encrypted && !target.encrypts {
            outcome.problems.append("decrypt: snapshot \(snapshot.id) is encrypted; give the policy file with its target's encryption_key_file")
        }
        try output.sync()

        outcome.storedBytes = stored.count
        outcome.storedSHA256 = stored.hex()
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
