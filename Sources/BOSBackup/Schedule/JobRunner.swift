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
        try catalog.auditFirst(action: "backup", detail: "job \(request.job): \(request.database) to \(request.targetName) (\(target.displayURL))")
        let runID = try catalog.startRun(job: request.job, scheduledFor: scheduledFor, at: clock.now())
        let began = Date()
        do {
            let record = try await SnapshotWriter(catalog: catalog, clock: clock).backup(request, to: target, progress: progress)
            try catalog.finishRun(runID, status: .success, error: nil, snapshotID: record.id, seconds: Date().timeIntervalSince(began), at: clock.now())
            return record
        } catch is CancellationError {
            // Stopping: if even this cannot be recorded, the run stays 'running' and the next
            // run marks it abandoned, which says the same.
            try? catalog.finishRun(runID, status: .abandoned, error: "stopped before the snapshot was complete; nothing was cataloged",
                                   snapshotID: nil, seconds: Date().timeIntervalSince(began), at: clock.now())
            throw CancellationError()
        } catch {
            do {
                try catalog.finishRun(runID, status: .failed, error: "\(error)", snapshotID: nil, seconds: Date().timeIntervalSince(began), at: clock.now())
            } catch let recording {
                throw RunNotRecordedError(failure: error, recording: recording)
            }
            throw error
        }
    }
}

/// A backup failed and the catalog could not record that either: both are said.
public struct RunNotRecordedError: Error, CustomStringConvertible, CategorizedError {
    public let failure: Error
    public let recording: Error
    public var description: String { "\(failure) (and the catalog could not record the failed run: \(recording))" }
    public var category: ErrorCategory { (failure as? CategorizedError)?.category ?? .failure }
}
