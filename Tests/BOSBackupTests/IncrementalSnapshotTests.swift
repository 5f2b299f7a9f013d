@testable import BOSBackup
import Foundation
import XCTest

/// Page-level incremental snapshots (issue #14 items 5–7): a chain stores only
/// changed pages, restores byte for byte, and is proven, damaged and pruned as a whole.
final class IncrementalSnapshotTests: XCTestCase {
    private func incrementalRequest(_ f: BackupFixture, fullEvery: Int = 7) -> BackupRequest {
        var request = f.request
        request.fullEvery = fullEvery
        request.host = "store-0421"
        return request
    }

    private func businessDay(_ f: BackupFixture, _ day: Int) throws {
        _ = try SampleDay.simulate(on: f.live, at: f.clock.now().addingTimeInterval(Double(day) * 86_400), seed: UInt64(day))
    }

    private func restore(_ f: BackupFixture, _ record: SnapshotRecord) throws -> (FetchOutcome, String) {
        let path = f.dir.file("restored-\(record.id).db")
        let outcome = try runAsync { try await SnapshotFetcher(jobs: 2, catalog: f.catalog).fetch(record, from: f.target, into: path) }
        return (outcome, path)
    }

    func testDayTwoStoresOnlyChangedPagesAndRestoresTheDatabaseByteForByte() throws {
        let f = try BackupFixture(orders: 6_000)
        let full = try f.backup(incrementalRequest(f))
        XCTAssertEqual(full.layout.kind, .full)
        XCTAssertEqual(full.layout.format, 2)
        XCTAssertEqual(full.layout.chainRoot, full.id)
        XCTAssertEqual(full.id.count, 32, "128-bit ids")
        XCTAssertTrue(full.objectKey.hasPrefix("store-0421/bos/snapshots/2026/11/local-weekly-"), full.objectKey)
        XCTAssertTrue(full.objectKey.hasSuffix(".db.gz"))
        XCTAssertNotNil(full.layout.pagemapKey)
        // A full is still plain gzip of the whole database.
        let gunzipped = f.dir.file("full.db")
        XCTAssertEqual(try runProcess("/bin/sh", ["-c", "gunzip -c '\(f.objectPath(full))' > '\(gunzipped)'"]).status, 0)
        XCTAssertEqual(try SHA256Stream.hex(ofFile: gunzipped), full.databaseSHA256)

        try businessDay(f, 1)
        let second = try f.backup(incrementalRequest(f))
        XCTAssertEqual(second.layout.kind, .incremental)
        XCTAssertEqual(second.layout.parentID, full.id)
        XCTAssertEqual(second.layout.chainRoot, full.id)
        XCTAssertTrue(second.objectKey.hasSuffix(".pages.gz"), second.objectKey)
        XCTAssertLessThan(second.storedBytes * 2, full.storedBytes, "one business day changes far less than half the pages")

        let manifest = try runAsync { try await Repository(target: f.target).manifestV2(of: second) }
        XCTAssertEqual(manifest.parent, full.id)
        XCTAssertEqual(manifest.parentManifestSha256, full.manifestSHA256)
        let changed = manifest.blocks.flatMap(\.pageNumbers)
        XCTAssertGreaterThan(changed.count, 0)
        XCTAssertLessThan(changed.count, manifest.pageCount)
        XCTAssertEqual(changed, changed.sorted(), "changed pages are stored in page order")

        let (outcome, path) = try restore(f, second)
        XCTAssertTrue(outcome.checksumOK && outcome.gzipOK && outcome.databaseMatches, "\(outcome.problems)")
        XCTAssertEqual(try SHA256Stream.hex(ofFile: path), second.databaseSHA256)
        XCTAssertEqual(try TableCounts.count(atPath: path), try TableCounts.count(atPath: f.live))

        let verified = try f.verify(second)
        XCTAssertEqual(verified.verdict, .passed, "\(verified.problems)")
    }

    func testAChainNeverExceedsFullEveryLinks() throws {
        let f = try BackupFixture(orders: 3_000)
        var kinds: [SnapshotManifestV2.Kind] = []
        var records: [SnapshotRecord] = []
        for day in 0..<5 {
            if day > 0 { try businessDay(f, day) }
            let record = try f.backup(incrementalRequest(f, fullEvery: 3))
            kinds.append(record.layout.kind)
            records.append(record)
        }
        XCTAssertEqual(kinds, [.full, .incremental, .incremental, .full, .incremental])
        XCTAssertEqual(records[2].layout.parentID, records[1].id)
        XCTAssertEqual(records[4].layout.chainRoot, records[3].id)
        let fourth = try runAsync { try await Repository(target: f.target).manifestV2(of: records[3]) }
        XCTAssertEqual(fourth.fullReason, "the chain has 3 links (full_every: 3)")
        for record in records {
            let (outcome, _) = try restore(f, record)
            XCTAssertTrue(outcome.databaseMatches, "\(record.name): \(outcome.problems)")
        }
    }

    func testADamagedLinkFailsEverySnapshotThatDependsOnItAndNamesIt() throws {
        let f = try BackupFixture(orders: 3_000)
        var records: [SnapshotRecord] = []
        for day in 0..<3 {
            if day > 0 { try businessDay(f, day) }
            records.append(try f.backup(incrementalRequest(f)))
        }
        // Flip one byte in the middle link's stored pages.
        let middle = records[1]
        let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: f.objectPath(middle)))
        handle.seek(toFileOffset: UInt64(middle.storedBytes / 2))
        let byte = handle.readData(ofLength: 1)
        handle.seek(toFileOffset: UInt64(middle.storedBytes / 2))
        handle.write(Data([byte[0] ^ 0xFF]))
        handle.closeFile()

        XCTAssertEqual(try f.verify(records[0]).verdict, .passed, "the full does not depend on the damaged link")
        for dependent in records[1...] {
            let result = try f.verify(dependent)
            XCTAssertEqual(result.verdict, .damaged)
            XCTAssertTrue(result.problems.contains { $0.contains("link \(SnapshotID.short(middle.id))") }, "\(result.problems)")
        }
        // The next backup does not build on a chain with a link known damaged.
        try businessDay(f, 3)
        let next = try f.backup(incrementalRequest(f))
        XCTAssertEqual(next.layout.kind, .full)
    }

    func testAMissingParentPageMapMeansAFullNotAGuess() throws {
        let f = try BackupFixture(orders: 2_000)
        let full = try f.backup(incrementalRequest(f))
        try runAsync { try await f.target.delete(key: full.layout.pagemapKey!) }
        try? FileManager.default.removeItem(atPath: f.dir.file("scratch/pagemaps"))
        try businessDay(f, 1)
        let next = try f.backup(incrementalRequest(f))
        XCTAssertEqual(next.layout.kind, .full)
        let manifest = try runAsync { try await Repository(target: f.target).manifestV2(of: next) }
        XCTAssertTrue(manifest.fullReason?.contains("page map") == true, manifest.fullReason ?? "nil")
    }

    func testTheLocalPageMapCacheSavesTheDownloadAndAStaleOneIsNotTrusted() throws {
        let f = try BackupFixture(orders: 2_000)
        let full = try f.backup(incrementalRequest(f))
        let cached = f.dir.file("scratch/pagemaps/\(full.id).pagemap")
        XCTAssertTrue(FileManager.default.fileExists(atPath: cached))
        // A cache file that is not the page map the manifest names is ignored, not used.
        try Data("BOSPMAP1 garbage".utf8).write(to: URL(fileURLWithPath: cached))
        try businessDay(f, 1)
        let next = try f.backup(incrementalRequest(f))
        XCTAssertEqual(next.layout.kind, .incremental)
        let (outcome, _) = try restore(f, next)
        XCTAssertTrue(outcome.databaseMatches, "\(outcome.problems)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: cached), "the parent's cached map is dropped once the child's is written")
        XCTAssertTrue(FileManager.default.fileExists(atPath: f.dir.file("scratch/pagemaps/\(next.id).pagemap")))
    }

    /// A link's block whose every page a newer link holds is skipped, not
    /// inflated — and the blocks after it still land where they belong.
    func testBlocksSupersededWholeAreSkippedAndTheRestStillLandInPlace() throws {
        let f = try BackupFixture(orders: 200)
        let db = try Database(path: f.live)
        try Fixtures.addAttachments(to: db, count: 24)
        let full = try f.backup(incrementalRequest(f))
        // Every other blob rewritten in place: whole 256 KiB blocks of the full are superseded, alternately.
        try db.execute("UPDATE attachments SET body = randomblob(262144) WHERE id % 2 = 0")
        let next = try f.backup(incrementalRequest(f))
        XCTAssertEqual(next.layout.parentID, full.id)
        let manifest = try runAsync { try await Repository(target: f.target).manifestV2(of: full) }
        let newer = Set(try runAsync { try await Repository(target: f.target).manifestV2(of: next) }.blocks.flatMap(\.pageNumbers))
        let skipped = manifest.blocks.indices.filter { i in manifest.blocks[i].pageNumbers.allSatisfy(newer.contains) }
        XCTAssertTrue(skipped.contains { $0 > 0 && !skipped.contains($0 - 1) }, "a skipped block follows an inflated one: \(skipped)")
        let (outcome, path) = try restore(f, next)
        XCTAssertTrue(outcome.checksumOK && outcome.gzipOK && outcome.databaseMatches, "\(outcome.problems)")
        XCTAssertEqual(try SHA256Stream.hex(ofFile: path), next.databaseSHA256)
    }

    /// Restoring a chain reads all its links: once its increments outweigh its
    /// full, the next snapshot is a full, whatever full_every allows.
    func testIncrementsOutweighingTheirFullStartANewChain() throws {
        let f = try BackupFixture(orders: 100)
        let db = try Database(path: f.live)
        try Fixtures.addAttachments(to: db, count: 20)
        var records = [try f.backup(incrementalRequest(f))]
        for _ in 0..<3 {
            // 60% of the database rewritten: one such day fits in a chain, two outweigh its full.
            try db.execute("UPDATE attachments SET body = randomblob(262144) WHERE id <= 12")
            records.append(try f.backup(incrementalRequest(f)))
        }
        XCTAssertEqual(records.map(\.layout.kind), [.full, .incremental, .incremental, .full])
        let last = try XCTUnwrap(records.last)
        let manifest = try runAsync { try await Repository(target: f.target).manifestV2(of: last) }
        XCTAssertTrue(manifest.fullReason?.contains("add up to more than its full") == true, manifest.fullReason ?? "nil")
    }

    /// block_size need not be a multiple of the page size in the policy; the
    /// blocks are cut at whole pages anyway, so every block's page list is right.
    func testABlockSizeThatIsNoMultipleOfThePageSizeIsCutAtWholePages() throws {
        let f = try BackupFixture(orders: 1_000)
        try Database(path: f.live).execute("PRAGMA journal_mode = DELETE; PRAGMA page_size = 65536; VACUUM; PRAGMA journal_mode = WAL")
        var request = incrementalRequest(f)
        request.blockSize = 100 << 10
        let full = try f.backup(request)
        XCTAssertEqual(full.pageSize, 65_536)
        XCTAssertEqual(full.blockSize, 65_536, "100 KiB cut down to one 64 KiB page")
        try businessDay(f, 1)
        let next = try f.backup(request)
        XCTAssertEqual(next.layout.kind, .incremental)
        for record in [full, next] {
            let (outcome, _) = try restore(f, record)
            XCTAssertTrue(outcome.databaseMatches, "\(record.layout.kind): \(outcome.problems)")
        }
    }

    func testRollbackJournalSourcesAreIncrementalToo() throws {
        let f = try BackupFixture(orders: 2_000, wal: false)
        _ = try f.backup(incrementalRequest(f))
        try businessDay(f, 1)
        let next = try f.backup(incrementalRequest(f))
        XCTAssertEqual(next.layout.kind, .incremental)
        let (outcome, path) = try restore(f, next)
        XCTAssertTrue(outcome.databaseMatches, "\(outcome.problems)")
        XCTAssertEqual(try TableCounts.count(atPath: path), try TableCounts.count(atPath: f.live))
    }

    func testRetentionKeepsEveryParentOfAKeptIncremental() throws {
        let f = try BackupFixture(orders: 2_000)
        var records: [SnapshotRecord] = []
        for day in 0..<4 {
            if day > 0 { try businessDay(f, day) }
            records.append(try f.backup(incrementalRequest(f)))
        }
        let plan = RetentionPlanner(rules: .init(keepLast: 1), timeZone: TimeZone(identifier: "UTC")!)
            .plan(try f.catalog.snapshotsInCatalogOrder(job: "local-weekly"), newestVerified: nil)
        XCTAssertTrue(plan.allSatisfy(\.keep), "\(plan.map(\.reasons))")
        let reasons = Dictionary(uniqueKeysWithValues: plan.map { ($0.snapshot.id, $0.reasons) })
        XCTAssertEqual(reasons[records[2].id], ["parent of \(SnapshotID.short(records[3].id))"])
        XCTAssertEqual(reasons[records[0].id], ["parent of \(SnapshotID.short(records[1].id))"])
    }
}
