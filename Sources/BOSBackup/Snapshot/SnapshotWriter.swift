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
    /// The namespace on the target: `<host>/<database>/snapshots/…`.
    public var host: String = BackupRequest.machineHostname
    public var database: String = "bos"
    /// The job's `incremental: { full_every: N }` (nil: every snapshot is a full).
    public var fullEvery: Int?

    public init(sourcePath: String, job: String, targetName: String, scratch: String,
                level: Int = BlockGzipWriter.defaultLevel, blockSize: Int = BlockGzipWriter.defaultBlockSize) {
        self.sourcePath = sourcePath
        self.job = job
        self.targetName = targetName
        self.scratch = scratch
        self.level = level
        self.blockSize = blockSize
    }

    /// The machine's name, for a request made without a policy's `host:`.
    public static var machineHostname: String {
        let name = PolicyLoader.machineHostname()
        return Policy.isValidName(name) ? name : "localhost"
    }

    /// Where page maps of recent snapshots are kept, so the next incremental need not download them.
    var pageMapCache: PageMapCache { PageMapCache(folder: scratch + "/pagemaps") }
}

/// Progress of a backup, for a terminal progress line.
public enum BackupProgress: Sendable {
    case copying(pagesDone: Int64, pagesTotal: Int64)
    case compressing(bytesDone: Int64, bytesTotal: Int64)
    case storing
}

/// Takes one snapshot: consistent image (row counts counted alongside) →
/// block gzip + SHA-256 streamed to the target → page map → manifest →
/// catalog row. The catalog row is written last, so a failure or crash at
/// any earlier step leaves nothing cataloged (and the target writer removes
/// its partial object). A job with `incremental:` stores only the pages whose
/// hash differs from its parent's page map (`IncrementalPlan` says when).
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
        let plan = try IncrementalPlan.decide(catalog: catalog, job: request.job, target: request.targetName,
                                              database: request.database, fullEvery: request.fullEvery)
        let image = try ConsistentImage.take(
            source: source, scratchCopy: ScratchFolder(path: request.scratch).temporaryName("snapshot-\(id)", suffix: ".db"), blockSize: request.blockSize,
            clock: clock) { remaining, total in
            progress?(.copying(pagesDone: Int64(total - remaining), pagesTotal: Int64(total)))
        }
        do {
            let stored = try await store(image, plan: plan, request: request, id: id, started: started,
                                         to: Repository(target: target), progress: progress)
            await image.close()
            return stored
        } catch {
            await image.close()
            throw error
        }
    }

    /// What the pages went into: the stored object and the manifest's view of it.
    private struct StoredPages {
        var object: SnapshotManifestV2.Object
        var blocks: [SnapshotManifestV2.Block]
        var databaseBytes: Int64
        var databaseSHA256: String
        /// The page map as stored (before gzip), for a job with incrementals.
        var encodedPageMap: Data?
    }

    /// Compresses and stores the image, then writes its manifest and catalog row.
    private func store(_ image: ConsistentImage, plan: IncrementalPlan, request: BackupRequest, id: String, started: Date,
                       to repository: Repository, progress: ((BackupProgress) -> Void)?) async throws -> SnapshotRecord {
        let takenAt = image.takenAt
        let name = try uniqueName(job: request.job, takenAt: takenAt, id: id)
        let keys = RepositoryNamespace(host: request.host, database: request.database)
            .keys(name: name, takenAt: takenAt, encrypted: repository.encrypts)
        var (plan, parentMap) = await usablePlan(plan, image: image, repository: repository, cache: request.pageMapCache)
        // Blocks are whole pages, so a block's page list is its offset over the page size
        // (block_size 100KiB with 64 KiB pages would otherwise mislabel every block).
        var request = request
        request.blockSize = max(image.pageSize, request.blockSize / image.pageSize * image.pageSize)

        var written: [String] = []
        var pages: StoredPages, tables: [String: Int64], damage: [String]
        do {
            switch plan {
            case .full:
                written.append(keys.database)
                pages = try await storeFull(image, request: request, key: keys.database, to: repository, progress: progress)
            case .incremental:
                written.append(keys.pages)
                pages = try await storeChanges(image, since: &parentMap, request: request, key: keys.pages, to: repository, progress: progress)
            }
            (tables, damage) = try await image.tableCounts()
        } catch {
            await repository.discard(written)
            throw error
        }
        // The live database's read transaction (or the scratch copy) is no longer needed.
        await image.close()
        progress?(.storing)

        do {
            var objects = [pages.object]
            var pagemapRef: SnapshotManifestV2.PageMapRef?
            // Encoded once: stored on the target, then kept in the local cache.
            let encodedMap = pages.encodedPageMap
            pages.encodedPageMap = nil
            if let encodedMap {
                written.append(keys.pagemap)
                let stored = try await repository.putPageMap(encodedMap, key: keys.pagemap, level: request.level)
                objects.append(stored.object)
                pagemapRef = stored.ref
            }
            let parent: SnapshotRecord?, chainRoot: String, fullReason: String?
            switch plan {
            case .full(let reason): (parent, chainRoot, fullReason) = (nil, id, reason)
            case .incremental(let p, let chain): (parent, chainRoot, fullReason) = (p, chain.last!.id, nil)
            }
            let manifest = SnapshotManifestV2(
                id: id, name: name, host: request.host, database: request.database, job: request.job,
                kind: parent == nil ? .full : .incremental, parent: parent?.id, chainRoot: chainRoot,
                parentManifestSha256: parent?.manifestSHA256, fullReason: fullReason,
                takenAt: ISO8601.string(takenAt), startedAt: ISO8601.string(started), finishedAt: ISO8601.string(clock.now()),
                source: request.sourcePath, toolVersion: BOSBackupVersion.string, pageSize: image.pageSize,
                pageCount: Int(pages.databaseBytes / Int64(image.pageSize)), databaseBytes: pages.databaseBytes,
                databaseSha256: pages.databaseSHA256, walPosition: image.walPosition, level: request.level, blockSize: request.blockSize,
                encrypted: repository.encrypts, objects: objects, blocks: pages.blocks, pagemap: pagemapRef,
                tables: tables, damage: damage.isEmpty ? nil : damage)
            let manifestData = try manifest.encoded()
            written.append(keys.manifest)
            let manifestSHA256 = try await repository.putManifest(manifestData, key: keys.manifest)
            guard let record = manifest.record(target: request.targetName, targetURL: repository.displayURL,
                                               manifestKey: keys.manifest, manifestSHA256: manifestSHA256) else {
                throw TargetError.failed("internal: manifest time unreadable")
            }
            // Not cataloged: what we stored is removed (by the catch) so no orphan looks like a backup.
            try catalog.insert(record)
            written = []
            if let encodedMap {
                request.pageMapCache.store(encoded: encodedMap, snapshotID: id)
                if let parent { request.pageMapCache.remove(snapshotID: parent.id) }
            }
            try recordDamage(damage, of: record)
            return record
        } catch {
            await repository.discard(written.reversed())
            throw error
        }
    }

    /// The plan, turned into a full when the parent's page map cannot be used:
    /// a full then costs more, an incremental on a wrong map would lose pages.
    private func usablePlan(_ plan: IncrementalPlan, image: ConsistentImage, repository: Repository,
                            cache: PageMapCache) async -> (IncrementalPlan, PageMap?) {
        guard case .incremental(let parent, _) = plan else { return (plan, nil) }
        guard parent.pageSize == image.pageSize else {
            return (.full(reason: "the page size changed from \(parent.pageSize) to \(image.pageSize)"), nil)
        }
        do {
            let map = try await repository.pageMap(of: parent, cache: cache)
            guard map.pageSize == image.pageSize else { return (.full(reason: "the parent's page map is for another page size"), nil) }
            return (plan, map)
        } catch {
            return (.full(reason: "the parent's page map could not be used: \(error)"), nil)
        }
    }

    /// Every page, in order: plain gzip of the whole database (and its page map, for a job with incrementals).
    private func storeFull(_ image: ConsistentImage, request: BackupRequest, key: String, to repository: Repository,
                           progress: ((BackupProgress) -> Void)?) async throws -> StoredPages {
        let hashes = request.fullEvery == nil ? nil : PageMapBuilder(pageSize: image.pageSize, pageCount: Int(image.bytes.size / Int64(image.pageSize)))
        let compressor = BlockGzipWriter(level: request.level, blockSize: request.blockSize, jobs: request.jobs)
        let compressed = try await repository.writeObject(key: key) { writer in
            let report: (Int64, Int64) -> Void = { done, total in progress?(.compressing(bytesDone: done, bytesTotal: total)) }
            if let hashes { return try await compressor.write(source: image.bytes, to: writer, pageHashes: hashes, progress: report) }
            return try await compressor.write(source: image.bytes, to: writer, progress: report)
        }
        let pagesPerBlock = request.blockSize / image.pageSize
        let pageCount = Int(compressed.rawBytes / Int64(image.pageSize))
        let blocks = compressed.blocks.enumerated().map { index, block in
            SnapshotManifestV2.Block(object: 0, offset: block.offset, length: block.length, firstPage: index * pagesPerBlock + 1,
                                     pageCount: max(0, min(pagesPerBlock, pageCount - index * pagesPerBlock)), pages: nil,
                                     rawSha256: compressed.blockRawSHA256[index])
        }
        return StoredPages(object: .init(key: key, bytes: compressed.storedBytes, sha256: compressed.storedSHA256), blocks: blocks,
                           databaseBytes: compressed.rawBytes, databaseSHA256: compressed.rawSHA256, encodedPageMap: hashes?.encoded())
    }

    /// Hashes every page (one pass on all cores), then compresses only the
    /// pages whose hash is not the parent's.
    private func storeChanges(_ image: ConsistentImage, since parentMap: inout PageMap?, request: BackupRequest, key: String,
                              to repository: Repository, progress: ((BackupProgress) -> Void)?) async throws -> StoredPages {
        let builder = PageMapBuilder(pageSize: image.pageSize, pageCount: Int(image.bytes.size / Int64(image.pageSize)))
        let compressor = BlockGzipWriter(level: request.level, blockSize: request.blockSize, jobs: request.jobs)
        let whole = try await compressor.hashPages(of: image.bytes, into: builder) { done, total in
            progress?(.compressing(bytesDone: done / 2, bytesTotal: total))
        }
        let changed = builder.changedPages(since: parentMap!)
        parentMap = nil   // 4 MB per GB of database: freed before the compression's buffers are taken
        let source = ChangedPagesSource(base: image.bytes, pages: changed, pageSize: image.pageSize)
        let compressed = try await repository.writeObject(key: key) { writer in
            try await compressor.write(source: source, to: writer) { done, total in
                progress?(.compressing(bytesDone: whole.bytes / 2 + (total == 0 ? 0 : done * (whole.bytes / 2) / total), bytesTotal: whole.bytes))
            }
        }
        let pagesPerBlock = request.blockSize / image.pageSize
        let blocks = compressed.blocks.enumerated().map { index, block in
            let held = changed[min(changed.count, index * pagesPerBlock)..<min(changed.count, (index + 1) * pagesPerBlock)]
            return SnapshotManifestV2.Block(object: 0, offset: block.offset, length: block.length, firstPage: nil, pageCount: nil,
                                            pages: ChangedPagesSource.runs(of: held), rawSha256: compressed.blockRawSHA256[index])
        }
        return StoredPages(object: .init(key: key, bytes: compressed.storedBytes, sha256: compressed.storedSHA256), blocks: blocks,
                           databaseBytes: whole.bytes, databaseSHA256: whole.sha256, encodedPageMap: builder.encoded())
    }

    /// A snapshot kept (the best copy there is) and known damaged: the catalog
    /// says so as a failed check, and the caller hears it as "found damage".
    private func recordDamage(_ damage: [String], of record: SnapshotRecord) throws {
        guard !damage.isEmpty else { return }
        try catalog.record(VerificationRecord(snapshotID: record.id, verifiedAt: clock.now(), ok: false, checksumOK: true,
                                              gzipOK: true, integrityOK: false, countsOK: false, seconds: 0,
                                              problems: damage.map { "at backup: \($0)" }))
        throw BackupError.sourceDamaged(record, problems: damage)
    }

    private func newID() throws -> String {
        while true {
            let id = SnapshotID.generate()
            if try !catalog.containsSnapshot(id: id) { return id }
        }
    }

    private func uniqueName(job: String, takenAt: Date, id: String) throws -> String {
        let name = "\(job)-\(ISO8601.compact(takenAt))"
        return try catalog.snapshots(job: job).contains { $0.name == name } ? "\(name)-\(SnapshotID.short(id))" : name
    }
}
