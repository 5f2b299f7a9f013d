import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Rebuilds the database image of an incremental snapshot from its chain:
/// each page is written once, from the newest link that holds it, at its
/// offset. Links are streamed whole — their stored SHA-256 is checked — but
/// only blocks holding a page still wanted are inflated, on every core, each
/// against its own SHA-256. The image is used only when its SHA-256 is the
/// one recorded at backup. Every problem names the link it is in, so a
/// damaged link fails each snapshot that depends on it, and says which.
struct ChainFetcher {
    let catalog: Catalog
    let jobs: Int
    let progress: ProgressHandler?

    /// One link as read: its catalog row and its manifest.
    private struct Link {
        var record: SnapshotRecord
        var manifest: SnapshotManifestV2
        var name: String { "link \(SnapshotID.short(record.id)) (\(record.name))" }
    }

    /// The image SHA-256 alone decides; the first pass skips the per-block checks
    /// (a third of the CPU of a chain restore). Only when the image is wrong does a
    /// second pass check every block, to name the link that is.
    func fetch(_ snapshot: SnapshotRecord, from repository: Repository, into path: String) async throws -> FetchOutcome {
        let first = try await fetch(snapshot, from: repository, into: path, checkBlocks: false)
        guard first.gzipOK, first.checksumOK, !first.databaseMatches else { return first }
        unlink(path)
        return try await fetch(snapshot, from: repository, into: path, checkBlocks: true)
    }

    private func fetch(_ snapshot: SnapshotRecord, from repository: Repository, into path: String, checkBlocks: Bool) async throws -> FetchOutcome {
        var outcome = FetchOutcome()
        let output = try FileHandleFD(creating: path, mode: 0o600)
        let (links, linkProblems) = try await readLinks(of: snapshot, repository: repository)
        outcome.problems = linkProblems
        guard linkProblems.isEmpty, let newest = links.first else { return outcome }

        let pageSize = newest.manifest.pageSize, pageCount = newest.manifest.pageCount
        guard ftruncate(output.fd, off_t(pageCount) * off_t(pageSize)) == 0 else { throw FileError("size", path) }
        var claimed = [Bool](repeating: false, count: pageCount + 1)
        var checksumsOK = true, gzipOK = true
        let storedTotal = links.reduce(Int64(0)) { $0 + $1.record.storedBytes }
        var storedSoFar: Int64 = 0
        for link in links {
            var placement = claim(link.manifest, pageSize: pageSize, pageCount: pageCount, claimed: &claimed)
            placement.checkBlocks = checkBlocks
            let result = try await stream(link, placement: placement, from: repository, output: output) { done in
                progress?(ProgressUpdate(phase: "fetching snapshot \(SnapshotID.short(snapshot.id)) (\(links.count) links)",
                                         done: storedSoFar + done, total: storedTotal, unit: .bytes))
            }
            storedSoFar += link.record.storedBytes
            outcome.storedBytes += result.bytes
            if link.record.id == snapshot.id { outcome.storedSHA256 = result.sha256 }
            if result.sha256 != link.record.sha256 || result.bytes != link.record.storedBytes {
                checksumsOK = false
                outcome.problems.append("checksum: \(link.name): stored object SHA-256 \(result.sha256.prefix(12))… (\(result.bytes) bytes) does not match the catalog's \(link.record.sha256.prefix(12))… (\(link.record.storedBytes) bytes)")
            }
            if let problem = result.problem {
                gzipOK = false
                outcome.problems.append("gzip: \(link.name): \(problem)")
            }
        }
        let uncovered = (1...max(1, pageCount)).filter { $0 <= pageCount && !claimed[$0] }
        if !uncovered.isEmpty {
            gzipOK = false
            outcome.problems.append("coverage: \(uncovered.count) pages (first \(uncovered[0])) are in no link of the chain")
        }
        try output.sync()
        outcome.checksumOK = checksumsOK
        outcome.gzipOK = gzipOK
        outcome.databaseBytes = Int64(pageCount) * Int64(pageSize)
        if gzipOK {
            outcome.databaseSHA256 = try SHA256Stream.hex(ofFile: path)
            outcome.databaseMatches = outcome.databaseSHA256 == snapshot.databaseSHA256
            if !outcome.databaseMatches {
                outcome.problems.append("database: the image rebuilt from \(links.count) links has SHA-256 \(outcome.databaseSHA256.prefix(12))…, not the \(snapshot.databaseSHA256.prefix(12))… recorded at backup")
            }
        }
        return outcome
    }

    /// The chain's catalog rows and manifests, newest first, or what breaks it.
    /// A manifest that cannot be fetched is thrown (could not check); one that
    /// is missing, changed or names another parent is damage to that link.
    private func readLinks(of snapshot: SnapshotRecord, repository: Repository) async throws -> ([Link], [String]) {
        let records = try catalog.chain(of: snapshot)
        var links: [Link] = []
        var problems: [String] = []
        for (index, record) in records.enumerated() {
            let name = "link \(SnapshotID.short(record.id)) (\(record.name))"
            do {
                let manifest = try await repository.manifestV2(of: record)
                links.append(Link(record: record, manifest: manifest))
                if let parent = manifest.parent, index + 1 < records.count, records[index + 1].manifestSHA256 != nil,
                   manifest.parentManifestSha256 != records[index + 1].manifestSHA256 {
                    problems.append("chain: \(name) was taken on another version of its parent \(SnapshotID.short(parent))")
                }
            } catch TargetError.notFound {
                problems.append("missing: \(name): its manifest \(record.manifestKey) is gone")
            } catch let error as RepositoryError {
                problems.append("manifest: \(name): \(error)")
            }
        }
        if let root = records.last, root.layout.kind != .full {
            problems.append("missing: the chain of \(SnapshotID.short(snapshot.id)) needs \(SnapshotID.short(root.layout.parentID ?? "?")), the parent of \(SnapshotID.short(root.id)), which is not in the catalog")
        }
        if let pageSize = links.first?.manifest.pageSize, links.contains(where: { $0.manifest.pageSize != pageSize }) {
            problems.append("chain: its links have different page sizes")
        }
        return (links, problems)
    }

    /// Marks the pages this link is the newest holder of; says where each goes.
    private func claim(_ manifest: SnapshotManifestV2, pageSize: Int, pageCount: Int,
                       claimed: inout [Bool]) -> ParallelBlockInflater.PagePlacement {
        var writes: [[(slot: Int, page: Int)]] = []
        var expected: [(pages: Int, sha256: String)] = []
        for block in manifest.blocks {
            let pages = block.pageNumbers
            var mine: [(slot: Int, page: Int)] = []
            for (slot, page) in pages.enumerated() where page >= 1 && page <= pageCount && !claimed[page] {
                claimed[page] = true
                mine.append((slot, page))
            }
            writes.append(mine)
            expected.append((pages.count, block.rawSha256))
        }
        return .init(pageSize: pageSize, writes: writes, expected: expected)
    }

    /// Streams one link's object through the inflater; its stored bytes' SHA-256.
    private func stream(_ link: Link, placement: ParallelBlockInflater.PagePlacement, from repository: Repository,
                        output: FileHandleFD, progress: (Int64) -> Void) async throws -> (bytes: Int64, sha256: String, problem: String?) {
        let blocks = link.manifest.blocks.map { SnapshotManifest.Block(offset: $0.offset, length: $0.length) }
        var offset: Int64 = 0
        for block in blocks {
            guard block.offset == offset else { return (0, "", "its block table is not contiguous at offset \(offset)") }
            offset += block.length
        }
        let inflater = ParallelBlockInflater(blocks: blocks, blockSize: max(link.manifest.blockSize, link.manifest.pageSize),
                                             output: output, jobs: jobs, pages: placement)
        var stored = SHA256Stream()
        var problem: String?
        do {
            try await repository.target.read(key: link.record.objectKey) { chunk in
                stored.update(chunk)
                inflater.feed(chunk)
                progress(stored.count)
            }
        } catch let error as TargetError {
            _ = inflater.finish()
            if case .notFound = error { return (stored.count, stored.hex(), "its object \(link.record.objectKey) is missing") }
            throw error
        } catch let error as EncryptionError where error.category == .input {
            _ = inflater.finish()
            throw error     // a wrong key: no verdict
        } catch let error as EncryptionError {
            problem = "not decrypted: \(error)"
        } catch {
            _ = inflater.finish()
            throw error
        }
        let finished = inflater.finish()
        return (stored.count, stored.hex(), problem ?? finished.problem)
    }
}
