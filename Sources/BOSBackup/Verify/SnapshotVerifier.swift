import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The verdict on one snapshot.
public struct VerificationResult: Sendable {
    public var snapshot: SnapshotRecord
    public var checksumOK: Bool
    public var gzipOK: Bool
    public var integrityOK: Bool
    public var countsOK: Bool
    public var seconds: Double
    public var problems: [String]
    /// What could not be checked, and why (not damage: see `verdict`).
    public var unchecked: [String] = []
    public var restoredCounts: [String: Int64]?
    /// Phase timings: fetch + decrypt + decompress + checksum (one streaming pass), integrity check, row counts.
    public var restoreSeconds = 0.0
    public var integritySeconds = 0.0
    public var countSeconds = 0.0
    /// No damage found (some parts may still be `unchecked`).
    public var ok: Bool { checksumOK && gzipOK && integrityOK && countsOK && problems.isEmpty }

    public enum Verdict: Sendable { case passed, damaged, couldNotCheck }
    /// Damage found (exit 4), everything proven (0), or no damage found but
    /// not everything could be checked (exit 1; never recorded as a failure).
    public var verdict: Verdict { !ok ? .damaged : (unchecked.isEmpty ? .passed : .couldNotCheck) }
}

extension VerificationResult {
    /// A snapshot that could not even be fetched or opened (network, permissions):
    /// nothing is known about it, so nothing is damage.
    public init(couldNotRestore snapshot: SnapshotRecord, error: Error) {
        self.init(snapshot: snapshot, checksumOK: true, gzipOK: true, integrityOK: true, countsOK: true, seconds: 0,
                  problems: [], unchecked: ["the snapshot: \(error)"], restoredCounts: nil)
    }
}

/// Proves a snapshot restores: checksum of the stored bytes, gzip integrity,
/// restore into a scratch file, `PRAGMA integrity_check`, per-table row
/// counts equal to the catalog's. The result is recorded in the catalog.
public struct SnapshotVerifier {
    public let catalog: Catalog
    public let clock: Clock
    public let scratch: String
    public var quick = false
    /// Told how the fetch and the check advance (a progress line).
    public var progress: ProgressHandler?

    public init(catalog: Catalog, clock: Clock, scratch: String) {
        self.catalog = catalog
        self.clock = clock
        self.scratch = scratch
    }

    /// Verifies `snapshot` and records the result, unless it could not be
    /// checked completely (that says nothing about the snapshot). `keepAt`,
    /// when set, keeps the restored copy there.
    public func verify(_ snapshot: SnapshotRecord, target: Target, keepAt: String? = nil) async throws -> VerificationResult {
        let result = try await check(snapshot, target: target, keepAt: keepAt)
        if result.verdict != .couldNotCheck { try record(result) }
        return result
    }

    public func record(_ result: VerificationResult) throws {
        try catalog.record(VerificationRecord(snapshotID: result.snapshot.id, verifiedAt: clock.now(), ok: result.ok,
                                              checksumOK: result.checksumOK, gzipOK: result.gzipOK,
                                              integrityOK: result.integrityOK, countsOK: result.countsOK,
                                              seconds: result.seconds, problems: result.problems))
    }

    /// The checks alone, without touching the catalog (safe to run concurrently).
    public func check(_ snapshot: SnapshotRecord, target: Target, keepAt: String? = nil) async throws -> VerificationResult {
        let begin = Date()
        try PrivateFolder.prepare(scratch)
        // A name of this process's own, even when the copy is to be kept: two
        // verifies never share a file, and nobody can plant one at the name.
        let path = ScratchFolder(path: scratch).temporaryName("verify-\(snapshot.id)", suffix: ".db")
        defer { for suffix in ["", "-journal", "-wal", "-shm"] { unlink(path + suffix) } }
        var phase = Date()
        func lap() -> Double { defer { phase = Date() }; return Date().timeIntervalSince(phase) }
        let fetched = try await SnapshotFetcher(progress: progress, catalog: catalog).fetch(snapshot, from: target, into: path)
        let restoreSeconds = lap()
        var integritySeconds = 0.0, countSeconds = 0.0
        var problems = fetched.problems
        var unchecked: [String] = []
        var integrityOK = false
        var countsOK = false
        var restored: [String: Int64]?
        if fetched.gzipOK {
            let integrity = IntegrityCheck.run(path: path, quick: quick, weights: snapshot.tables,
                                               progress: progress, phase: "checking snapshot \(snapshot.id)")
            integritySeconds = lap()
            integrityOK = integrity.sound
            problems += integrity.problems.map { "integrity: \($0)" }
            unchecked = integrity.unchecked
            var counts: [String: Int64]?
            do { counts = try TableCounts.count(atPath: path) } catch let error as SQLiteError where error.isCorruptOrNotADatabase {
                counts = nil   // damage; anything else (EMFILE, EIO) is "could not check" and is thrown
            }
            countSeconds = lap()
            if let counts {
                restored = counts
                let diff = RowCountDiff(cataloged: snapshot.tables, restored: counts)
                countsOK = diff.catalogMismatches.isEmpty
                for row in diff.catalogMismatches {
                    problems.append("counts: table \(row.table) has \(row.restored.map(String.init) ?? "no table") rows restored, catalog says \(row.cataloged.map(String.init) ?? "no table")")
                }
            } else {
                problems.append("counts: SQLite reports the restored database damaged while counting rows")
            }
        }
        problems += try await manifestProblems(snapshot, target: target)
        if let keepAt, fetched.gzipOK, fetched.checksumOK {
            // rename replaces whatever is at the name (even a symlink) instead of writing through it.
            try DurableFile.commit(temporary: path, to: keepAt)
        }
        return VerificationResult(snapshot: snapshot, checksumOK: fetched.checksumOK, gzipOK: fetched.gzipOK,
                                  integrityOK: integrityOK, countsOK: countsOK,
                                  seconds: Date().timeIntervalSince(begin), problems: problems, unchecked: unchecked,
                                  restoredCounts: restored, restoreSeconds: restoreSeconds,
                                  integritySeconds: integritySeconds, countSeconds: countSeconds)
    }

    /// The manifest beside the object must exist and agree with the catalog,
    /// or a catalog rebuild from this target would bring back wrong facts.
    /// A manifest that is not there is a finding; one that could not be
    /// fetched (network, permissions) is an error: "could not check".
    func manifestProblems(_ snapshot: SnapshotRecord, target: Target) async throws -> [String] {
        let data: Data
        do { data = try await Repository(target: target).get(manifestKey: snapshot.manifestKey) } catch TargetError.notFound {
            return ["manifest: \(snapshot.manifestKey) is missing on \(target.displayURL)"]
        }
        if let expected = snapshot.manifestSHA256, SHA256Stream.hex(of: data) != expected {
            return ["manifest: \(snapshot.manifestKey) of snapshot \(snapshot.id) was changed after the backup (SHA-256 differs from the catalog's)"]
        }
        // Not decodable is a finding about these bytes, not a failure to check them.
        guard let document = try? ManifestDocument.decode(data) else {
            return ["manifest: \(snapshot.manifestKey) is not a readable manifest"]
        }
        let (id, sha256, tables): (String, String?, [String: Int64])
        switch document {
        case .v1(let manifest): (id, sha256, tables) = (manifest.id, manifest.sha256, manifest.tables)
        case .v2(let manifest): (id, sha256, tables) = (manifest.id, manifest.objects.first?.sha256, manifest.tables)
        }
        var problems: [String] = []
        if id != snapshot.id { problems.append("manifest: belongs to snapshot \(id), not \(snapshot.id)") }
        if sha256 != snapshot.sha256 { problems.append("manifest: SHA-256 differs from the catalog's") }
        if tables != snapshot.tables { problems.append("manifest: per-table counts differ from the catalog's") }
        return problems
    }
}
