import Foundation

/// Runs one backup as a recorded run: the catalog's `runs` table says when it
/// was scheduled, started, finished, and how it ended.
public struct JobRunner {
    public let catalog: Catalog
    public let clock: Clock

    public init(catalog: Catalog, clock: Clock) {
        self.catalog = catalog
        self.clock = clock
    }

    public func backup(_ request: BackupRequest, to target: Target, scheduledFor: Date?,
                       progress: ((BackupProgress) -> Void)? = nil) async throws -> SnapshotRecord {
        let runID = try catalog.startRun(job: request.job, scheduledFor: scheduledFor, at: clock.now())
        let began = Date()
        do {
            let record = try await SnapshotWriter(catalog: catalog, clock: clock).backup(request, to: target, progress: progress)
            try catalog.finishRun(runID, status: .success, error: nil, snapshotID: record.id, seconds: Date().timeIntervalSince(began), at: clock.now())
            return record
        } catch is CancellationError {
            try? catalog.finishRun(runID, status: .abandoned, error: "stopped before the snapshot was complete; nothing was cataloged",
                                   snapshotID: nil, seconds: Date().timeIntervalSince(began), at: clock.now())
            throw CancellationError()
        } catch {
            try? catalog.finishRun(runID, status: .failed, error: "\(error)", snapshotID: nil, seconds: Date().timeIntervalSince(began), at: clock.now())
            throw error
        }
    }
}
