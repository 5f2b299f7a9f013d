import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A backup that stored its snapshot but found the source damaged.
public enum BackupError: Error, CustomStringConvertible, CategorizedError, Sendable {
    case sourceDamaged(SnapshotRecord, problems: [String])

    public var description: String {
        switch self {
        case .sourceDamaged(let record, let problems):
            return "the source database is damaged (\(problems.joined(separator: "; "))); snapshot \(record.id) (\(record.name)) was stored anyway, marked damaged: it is the best copy there is"
        }
    }
    public var category: ErrorCategory { .mismatch }
}

/// What to back up and where.
public struct BackupRequest: Sendable {
    public var sourcePath: String
    public var job: String
    public var targetName: String
    public var scratch: String
    public var level: Int
    public var blockSize: Int
    /// Cores to compress on.
    public var jobs: Int = BlockGzipWriter.defaultJobs

    public init(sourcePath: String, job: String, targetName: String, scratch: String,
                level: Int = BlockGzipWriter.defaultLevel, blockSize: Int = BlockGzipWriter.defaultBlockSize) {
        self.sourcePath = sourcePath
        self.job = job
        self.targetName = targetName
        self.scratch = scratch
        self.level = level
        self.blockSize = blockSize
    }
}

/// Progress of a backup, for a terminal progress line.
public enum BackupProgress: Sendable {
    case copying(pagesDone: Int64, pagesTotal: Int64)
    case compressing(bytesDone: Int64, bytesTotal: Int64)
    case storing
}

/// Takes one snapshot: consistent image (row counts counted alongside) →
/// block gzip + SHA-256 streamed to the target → manifest → catalog row. The catalog row is
/// written last, so a failure or crash at any earlier step leaves nothing
/// cataloged (and the target writer removes its partial object).
public struct SnapshotWriter {
    public let catalog: Catalog
    public let clock: Clock

    public init(catalog: Catalog, clock: Clock) {
        self.catalog = catalog
        self.clock = clock
    }

    public func backup(_ request: BackupRequest, to target: Target,
                       progress: ((BackupProgress) -> Void)? = nil) async throws -> SnapshotRecord {
        let started = clock.now()
        let source = try ConsistentCopy.openSource(request.sourcePath)
        try await target.checkAccess()
        try PrivateFolder.prepare(request.scratch)
        let id = try newID()
        let image = try ConsistentImage.take(
            source: source, scratchCopy: ScratchFolder(path: request.scratch).temporaryName("snapshot-\(id)", suffix: ".db"), blockSize: request.blockSize,
            clock: clock) { remaining, total in
            progress?(.copying(pagesDone: Int64(total - remaining), pagesTotal: Int64(total)))
        }
        do {
            let stored = try await store(image, request: request, id: id, started: started, to: target, progress: progress)
            await image.close()
            return stored
        } catch {
            await image.close()
            throw error
        }
    }

    /// Compresses and stores the image, then writes its manifest and catalog row.
    private func store(_ image: ConsistentImage, request: BackupRequest, id: String, started: Date, to target: Target,
                       progress: ((BackupProgress) -> Void)?) async throws -> SnapshotRecord {
        let takenAt = image.takenAt
        let name = try uniqueName(job: request.job, takenAt: takenAt, id: id)
        let folder = Self.folder(job: request.job, takenAt: takenAt)
        let objectKey = "\(folder)/\(name).db.gz" + (target.encrypts ? ".enc" : "")
        let manifestKey = "\(folder)/\(name).manifest.json"

        let writer = try await target.makeWriter(key: objectKey)
        let compressed: CompressedObject
        let tables: [String: Int64], damage: [String]
        do {
            compressed = try await BlockGzipWriter(level: request.level, blockSize: request.blockSize, jobs: request.jobs)
                .write(source: image.bytes, to: writer) { done, total in
                    progress?(.compressing(bytesDone: done, bytesTotal: total))
                }
            (tables, damage) = try await image.tableCounts()
            progress?(.storing)
            try await writer.commit()
        } catch {
            await writer.abort()
            throw error
        }
        // The live database's read transaction (or the scratch copy) is no longer needed.
        await image.close()

        let manifest = SnapshotManifest(
            id: id, name: name, job: request.job, takenAt: ISO8601.string(takenAt), startedAt: ISO8601.string(started),
            finishedAt: ISO8601.string(clock.now()), source: request.sourcePath, toolVersion: BOSBackupVersion.string,
            objectKey: objectKey, databaseBytes: compressed.rawBytes, databaseSha256: compressed.rawSHA256,
            pageSize: image.pageSize, storedBytes: compressed.storedBytes, sha256: compressed.storedSHA256,
            compression: "gzip-blocks", level: request.level, blockSize: request.blockSize, blocks: compressed.blocks,
            encrypted: target.encrypts, tables: tables, damage: damage.isEmpty ? nil : damage)
        let manifestData = try manifest.encoded()
        do {
            try await target.put(key: manifestKey, data: manifestData)
        } catch {
            try? await target.delete(key: objectKey)
            throw error
        }

        guard let record = manifest.record(target: request.targetName, targetURL: target.displayURL, manifestKey: manifestKey,
                                           manifestSHA256: SHA256Stream.hex(of: manifestData)) else {
            throw TargetError.failed("internal: manifest time unreadable")
        }
        do {
            try catalog.insert(record)
        } catch {
            // Not cataloged: remove what we stored so no orphan looks like a backup.
            try? await target.delete(key: manifestKey)
            try? await target.delete(key: objectKey)
            throw error
        }
        if !damage.isEmpty {
            // Kept (the best copy there is) and known damaged: the catalog says so
            // as a failed check, and the caller hears it as "found damage".
            try catalog.record(VerificationRecord(snapshotID: record.id, verifiedAt: clock.now(), ok: false, checksumOK: true,
                                                  gzipOK: true, integrityOK: false, countsOK: false, seconds: 0,
                                                  problems: damage.map { "at backup: \($0)" }))
            throw BackupError.sourceDamaged(record, problems: damage)
        }
        return record
    }

    /// `<job>/<YYYY>/<MM>` in UTC, as in DESIGN.md's target layout.
    static func folder(job: String, takenAt: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month], from: takenAt)
        return String(format: "%@/%04d/%02d", job, parts.year!, parts.month!)
    }

    private func newID() throws -> String {
        while true {
            let id = String(format: "%08x", UInt32.random(in: 0...UInt32.max))
            if try !catalog.containsSnapshot(id: id) { return id }
        }
    }

    private func uniqueName(job: String, takenAt: Date, id: String) throws -> String {
        let name = "\(job)-\(ISO8601.compact(takenAt))"
        return try catalog.snapshots(job: job).contains { $0.name == name } ? "\(name)-\(id)" : name
    }
}
