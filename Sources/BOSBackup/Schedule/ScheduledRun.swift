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
    /// Retention failed after the backup succeeded (the catalog could not be read);
    /// deletions a target refused are in `deletionFailures`.
    public var retentionError: String?
    public var deletionFailures: [DeletionFailure] = []
    /// Snapshots retention left in place because their objects are still locked, and the
    /// locks of kept snapshots that could not be extended (reported, never a failure).
    public var locked: [LockedSnapshot] = []
    public var lockProblems: [String] = []
    /// A snapshot stored although its check at backup failed (a damaged source): the
    /// failure is a failed verification, and names the snapshot.
    public var damagedSnapshot: SnapshotRecord?
    /// For a failed drill: the targets that did not restore cleanly.
    public var failedTargets: [String] = []
    /// The job did what was due: its backup (or drill) succeeded. Retention's problems are
    /// reported beside it, not as a failed backup.
    public var succeeded: Bool { !decision.due || error == nil }
}

/// What crash recovery found and cleaned up before the jobs.
public struct Recovery: Sendable {
    public var abandonedRuns = 0
    public var temporaryFiles = 0
    /// Clean-ups that could not be done (a target that could not be opened or listed);
    /// nothing depends on them, and the next run tries again.
    public var problems: [String] = []
}

/// Everything one `run` did.
public struct RunReport: Sendable {
    public var recovery: Recovery
    public var jobs: [JobOutcome]
    /// Deletions an earlier run left marked that this run finished.
    public var resumedDeletions: [SnapshotRecord]
    /// Every deletion that failed in this run: retention's and the resumed ones.
    public var deletionFailures: [DeletionFailure]

    /// Everything that was due succeeded and nothing is left half deleted by this run.
    public var succeeded: Bool {
        jobs.allSatisfy { $0.succeeded && $0.retentionError == nil } && deletionFailures.isEmpty
    }
}

/// Everything one `bosbackup run` does, under the run lock: clean up what a
/// crashed run left (abandoned runs, temporary files), decide due jobs, run them,
/// apply each job's retention after its backup, then retry unfinished deletions.
public struct ScheduledRun {
    public let policy: Policy
    public let catalog: Catalog
    public let clock: Clock
    public let scratch: String
    public let openTarget: (String) throws -> Target
    /// The target that holds a cataloged snapshot, for deleting it. By default the policy
    /// target of its name; the CLI also opens the URL the catalog recorded, so snapshots
    /// on a target renamed or removed from the policy can still be deleted.
    public var openSnapshotTarget: (SnapshotRecord) throws -> Target
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
        openSnapshotTarget = { try openTarget($0.target) }
    }

    /// Every job's decision, and the drill's last when the policy has one.
    public func decide() throws -> [DueDecision] {
        let due = DueJobs(policy: policy, catalog: catalog)
        return try due.decide(at: clock.now()) + [try due.decideDrill(at: clock.now())].compactMap { $0 }
    }

    /// One `run`: recover from a crash, run every due job (each followed by its
    /// retention), then retry the deletions earlier runs left marked. A deletion that
    /// fails is its target's problem: it never stops a job, and is retried next time.
    /// The retries come after the jobs: a target that cannot delete holds up no backup.
    public func run(progress: ((String, BackupProgress) -> Void)? = nil) async throws -> RunReport {
        let recovery = try await recoverFromCrash()
        let jobs = try await execute(progress: progress)
        let triedNow = Set(jobs.flatMap { $0.deletionFailures.map(\.snapshot.id) })
        let (resumed, failed) = try await pruner.resumePending(skipping: triedNow)
        return RunReport(recovery: recovery, jobs: jobs, resumedDeletions: resumed,
                         deletionFailures: jobs.flatMap(\.deletionFailures) + failed)
    }

    var pruner: Pruner { Pruner(catalog: catalog, openTarget: openSnapshotTarget) }

    /// Leftovers of a killed process: runs left 'running', temporary files and uploads.
    /// Half-done deletions are left to `run` (after the jobs). Safe only under the run lock.
    public func recoverFromCrash() async throws -> Recovery {
        var recovery = Recovery(abandonedRuns: try catalog.abandonStaleRuns())
        // What this run writes starts after this instant; under the run lock, what a writer
        // started before it is a killed run's, unless its live process says otherwise. The
        // real clock, not `clock`: file times and S3's upload times are real (`--now` is not).
        let runStart = Date()
        for target in policy.targets {
            // This look at every target, each run, is also what bosbackup_target_up reports.
            var problem: String?
            do {
                // Temporary files and multipart uploads a killed run never committed or aborted
                // cost space or money and hide nothing. Only this host's: on a shared bucket
                // another host's upload in flight is not ours to abort.
                recovery.temporaryFiles += try await Repository(target: openTarget(target.name))
                    .removeStaleWrites(ofHost: policy.host, startedBefore: runStart)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                problem = "\(error)"
                recovery.problems.append("target \(target.name): could not look for leftovers of interrupted runs: \(error)")
            }
            try catalog.recordTargetAccess(TargetAccess(target: target.name, accessedAt: clock.now(), ok: problem == nil, error: problem))
        }
        do {
            recovery.temporaryFiles += try ScratchFolder(path: scratch).removeTemporaryCopies()
        } catch {
            recovery.problems.append("scratch \(scratch): could not remove temporary copies: \(error)")
        }
        return recovery
    }

    /// Runs every due job; a failed job does not stop the others.
    public func execute(progress: ((String, BackupProgress) -> Void)? = nil) async throws -> [JobOutcome] {
        guard !policy.databases.isEmpty else { throw Policy.noDatabase(policy.file) }
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
                let request = try policy.backupRequest(for: job, scratch: scratch)
                let snapshot = try await JobRunner(catalog: catalog, clock: clock)
                    .backup(request, to: try openTarget(job.target), scheduledFor: decision.scheduledFor) { progress?(job.name, $0) }
                outcome.snapshot = snapshot
                // The backup is done and recorded; what retention does next is reported beside it.
                do {
                    let retention = try await applyRetention(job, justTaken: snapshot.id)
                    (outcome.retention, outcome.deleted, outcome.deletionFailures) = (retention.plan, retention.deleted, retention.failed)
                    (outcome.locked, outcome.lockProblems) = (retention.locked, retention.lockProblems)
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    outcome.retentionError = "\(error)"
                }
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                outcome.error = "\(error)"
                outcome.errorCategory = (error as? CategorizedError)?.category ?? .failure
                if case BackupError.sourceDamaged(let stored, _) = error { outcome.damagedSnapshot = stored }
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
                .run(scheduledFor: decision.scheduledFor, openTarget: openTarget) { try openTarget($0.target) }
            outcome.report = result.html
            if !result.result.ok {
                outcome.error = DrillReport(result: result.result).verdict
                // Only parts that could not be checked: a failure (exit 1), not damage (4), as `drill` says.
                outcome.errorCategory = result.result.couldNotCheck ? .failure : .mismatch
                outcome.failedTargets = result.result.targets.filter { !$0.ok }.map(\.target)
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

    /// Applies retention to one job: the plan, what was deleted, and what its target did
    /// not delete (left marked for a later run). Throws only when the catalog fails.
    public func applyRetention(_ job: Policy.Job, justTaken: String? = nil) async throws -> RetentionOutcome {
        var outcome = RetentionOutcome(plan: try retentionPlan(job, justTaken: justTaken))
        for decision in outcome.plan where !decision.keep {
            let reason = "retention of job \(job.name): \(decision.reasons.joined(separator: ", "))"
            switch try await pruner.deleteUnlessLocked(decision.snapshot, reason: reason) {
            case .deleted: outcome.deleted.append(decision.snapshot)
            case .locked(let until): outcome.locked.append(LockedSnapshot(snapshot: decision.snapshot, lockedUntil: until))
            case .failed(let failure): outcome.failed.append(failure)
            }
        }
        try await extendLocks(of: outcome.plan.filter(\.keep).map(\.snapshot), &outcome)
        return outcome
    }

    /// What retention keeps stays locked while it is kept: each kept snapshot's objects get
    /// their lock pushed out (a kept incremental keeps its parents, so a chain's full too).
    /// By the real clock, as the server's locks are. A target that fails is reported, not fatal.
    private func extendLocks(of kept: [SnapshotRecord], _ outcome: inout RetentionOutcome) async throws {
        for snapshot in kept {
            guard let target = try? openSnapshotTarget(snapshot), target.locksObjects else { continue }
            do {
                outcome.locksExtended += try await Repository(target: target).extendLocks(of: snapshot, now: Date())
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                outcome.lockProblems.append("lock of snapshot \(snapshot.shortID) on \(snapshot.target) not extended: \(error)")
            }
        }
    }

    /// Retries the deletions earlier runs left marked (what `prune` does after retention).
    public func resumePendingDeletions(skipping: Set<String> = [], jobs: Set<String>? = nil) async throws
        -> (finished: [SnapshotRecord], failed: [DeletionFailure]) {
        try await pruner.resumePending(skipping: skipping, jobs: jobs)
    }
}
