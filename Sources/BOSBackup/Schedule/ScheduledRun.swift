import Foundation

/// What happened to one job in a run.
public struct JobOutcome: Sendable {
    public var decision: DueDecision
    public var snapshot: SnapshotRecord?
    public var error: String?
    public var errorCategory: ErrorCategory?
    public var retention: [RetentionDecision]
    public var deleted: [SnapshotRecord]
    /// For the drill: its HTML report.
    public var report: String?
    public var succeeded: Bool { !decision.due || error == nil }
}

/// Everything one `bosbackup run` does, under the run lock: finish what a
/// crashed run left (abandoned runs, half-done deletions, temporary files),
/// decide due jobs, run them, and apply each job's retention after success.
public struct ScheduledRun {
    public let policy: Policy
    public let catalog: Catalog
    public let clock: Clock
    public let scratch: String
    public let openTarget: (String) throws -> Target
    /// Where drill reports go.
    public var reportFolder: String

    public init(policy: Policy, catalog: Catalog, clock: Clock, scratch: String, reportFolder: String? = nil,
                openTarget: @escaping (String) throws -> Target) {
        self.reportFolder = reportFolder ?? (catalog.path as NSString).deletingLastPathComponent + "/drills"
        self.policy = policy
        self.catalog = catalog
        self.clock = clock
        self.scratch = scratch
        self.openTarget = openTarget
    }

    /// Every job's decision, and the drill's last when the policy has one.
    public func decide() throws -> [DueDecision] {
        let due = DueJobs(policy: policy, catalog: catalog)
        return try due.decide(at: clock.now()) + [try due.decideDrill(at: clock.now())].compactMap { $0 }
    }

    /// Leftovers of a killed process. Safe only under the run lock.
    public func recoverFromCrash() async throws -> (abandonedRuns: Int, resumedDeletions: Int, temporaryFiles: Int) {
        let abandoned = try catalog.abandonStaleRuns()
        let resumed = try await Pruner(catalog: catalog, openTarget: openTarget).resumePending()
        var removed = 0
        for target in policy.targets {
            guard let backend = try? openTarget(target.name).backend else { continue }
            if let folder = backend as? FileTarget {
                for file in folder.staleTemporaryFiles() where unlink(file) == 0 { removed += 1 }
            } else if let bucket = backend as? S3Target {
                // Parts of an upload a killed run never completed or aborted cost money and hide nothing.
                removed += (try? await bucket.abortStaleUploads()) ?? 0
            }
        }
        removed += (try? ScratchFolder(path: scratch).removeTemporaryCopies()) ?? 0
        return (abandoned, resumed, removed)
    }

    /// Runs every due job; a failed job does not stop the others.
    public func execute(progress: ((String, BackupProgress) -> Void)? = nil) async throws -> [JobOutcome] {
        guard let source = policy.sourceDatabase else {
            throw PolicyError(file: policy.file ?? "policy", line: nil, keyPath: "source.database", message: "missing: which database to back up")
        }
        var outcomes: [JobOutcome] = []
        for decision in try decide() {
            if decision.job == DrillJob.runName && decision.due {
                outcomes.append(await drill(decision))
                continue
            }
            guard decision.due, let job = policy.job(named: decision.job) else {
                outcomes.append(JobOutcome(decision: decision, retention: [], deleted: []))
                continue
            }
            var outcome = JobOutcome(decision: decision, retention: [], deleted: [])
            do {
                let request = BackupRequest(sourcePath: source, job: job.name, targetName: job.target, scratch: scratch,
                                            level: policy.compressionLevel, blockSize: policy.blockSize)
                outcome.snapshot = try await JobRunner(catalog: catalog, clock: clock)
                    .backup(request, to: try openTarget(job.target), scheduledFor: decision.scheduledFor) { progress?(job.name, $0) }
                (outcome.retention, outcome.deleted) = try await applyRetention(job, justTaken: outcome.snapshot?.id)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                outcome.error = "\(error)"
                outcome.errorCategory = (error as? CategorizedError)?.category ?? .failure
            }
            outcomes.append(outcome)
        }
        return outcomes
    }

    /// Runs the due drill; its failure is the outcome's error, never a thrown one.
    func drill(_ decision: DueDecision) async -> JobOutcome {
        var outcome = JobOutcome(decision: decision, retention: [], deleted: [])
        do {
            let verifier = SnapshotVerifier(catalog: catalog, clock: clock, scratch: scratch)
            let result = try await DrillJob(verifier: verifier, policy: policy, reportFolder: reportFolder)
                .run(scheduledFor: decision.scheduledFor) { try openTarget($0.target) }
            outcome.report = result.html
            if !result.result.ok {
                outcome.error = DrillReport(result: result.result).verdict
                outcome.errorCategory = .mismatch
            }
        } catch {
            outcome.error = "\(error)"
            outcome.errorCategory = (error as? CategorizedError)?.category ?? .failure
        }
        return outcome
    }

    /// The retention plan of one job (what `prune --dry-run` shows); `justTaken` is always kept.
    public func retentionPlan(_ job: Policy.Job, justTaken: String? = nil) throws -> [RetentionDecision] {
        let snapshots = try catalog.snapshotsInCatalogOrder(job: job.name)
        let newestVerified = try snapshots.reversed().first { try catalog.lastVerification(of: $0.id)?.ok == true }?.id
        return RetentionPlanner(rules: job.retention, timeZone: policy.timeZone)
            .plan(snapshots, newestVerified: newestVerified, justTaken: justTaken)
    }

    /// Applies retention to one job; returns the plan and what was deleted.
    public func applyRetention(_ job: Policy.Job, justTaken: String? = nil) async throws -> ([RetentionDecision], [SnapshotRecord]) {
        let plan = try retentionPlan(job, justTaken: justTaken)
        let pruner = Pruner(catalog: catalog, openTarget: openTarget)
        var deleted: [SnapshotRecord] = []
        for decision in plan where !decision.keep {
            try await pruner.delete(decision.snapshot, reason: "retention of job \(job.name): \(decision.reasons.joined(separator: ", "))")
            deleted.append(decision.snapshot)
        }
        return (plan, deleted)
    }
}
