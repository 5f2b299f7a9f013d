import Foundation

/// The WAL archive's part of `catalog rebuild`: generations from their
/// markers, segments from their own bytes (each carries its link: generation,
/// previous segment, WAL positions), so a host lost with its catalog can
/// still restore to a second from what its targets hold.
extension CatalogRebuild {
    func rebuildArchive(targetName: String, repository: Repository, keys: [String], _ outcome: inout Outcome) async throws {
        var touched: Set<[String]> = []
        var checks: [(generation: String, txid: Int64, snapshot: String)] = []
        for markerKey in keys where markerKey.hasSuffix("/generation.json") && markerKey.contains("/wal/") {
            let marker: GenerationMarker
            do { marker = try await repository.generationMarker(key: markerKey) } catch let error as RepositoryError {
                outcome.skipped.append((markerKey, error.description))
                continue
            }
            if !allHosts, let host, marker.host != host { continue }
            guard try catalog.containsSnapshot(id: marker.targetBaseSnapshot) else {
                outcome.skipped.append((markerKey, "its base snapshot \(SnapshotID.short(marker.targetBaseSnapshot)) is not in the catalog"))
                continue
            }
            if try !catalog.containsGeneration(id: marker.generation) {
                try catalog.insert(marker.walGeneration)
                outcome.archiveGenerations += 1
            }
            try catalog.insert(marker.base(target: targetName))
            if let older = marker.continuesGeneration, let txid = marker.continuesTxid { checks.append((older, txid, marker.targetBaseSnapshot)) }
            touched.insert([marker.host, marker.database])
            let namespace = RepositoryNamespace(host: marker.host, database: marker.database)
            let segments = keys.compactMap { key in namespace.parseSegmentKey(key).flatMap { $0.generation == marker.generation ? (key, $0.first) : nil } }
            for (key, _) in segments.sorted(by: { $0.1 < $1.1 }) where try !catalog.containsSegment(objectKey: key, target: targetName) {
                let read: ReadSegment
                let index: SegmentIndexRef?
                do {
                    read = try await repository.readSegment(key: key)
                    index = read.indexed ? try await repository.segmentIndexRef(key: key, size: read.storedBytes) : nil
                } catch let error as PointInTimeError {
                    outcome.skipped.append((key, error.reason))
                    continue
                }
                guard let link = read.link, let first = read.commits.first, let last = read.commits.last else {
                    outcome.skipped.append((key, "a segment without its link (BOSWAL01) or without commits cannot be re-cataloged"))
                    continue
                }
                try catalog.insert(WALSegmentRecord(generation: marker.generation, target: targetName, objectKey: key,
                                                    firstTxid: first.txid, lastTxid: last.txid, firstSeen: first.seenAt, lastSeen: last.seenAt,
                                                    position: link.to, pageCount: Int64(last.pageCount), bytes: read.storedBytes,
                                                    sha256: read.storedSHA256, shippedAt: last.seenAt, index: index))
                outcome.archiveSegments += 1
            }
        }
        // Markers are read in key order, not in time: an older generation is known only now.
        for check in checks where try catalog.containsGeneration(id: check.generation) {
            try catalog.recordCheck(generation: check.generation, txid: check.txid, snapshot: check.snapshot)
        }
        // Only the newest generation of a database can still be open; the archiver ends it too
        // when the WAL it finds is not the one it left.
        for pair in touched {
            let generations = try catalog.generations(database: pair[1], host: pair[0])
            for (older, newer) in zip(generations, generations.dropFirst()) {
                try catalog.endGeneration(older.id, at: newer.startedAt,
                                          reason: "ended when generation \(SnapshotID.short(newer.id)) started (re-cataloged from \(targetName))")
            }
        }
    }
}
