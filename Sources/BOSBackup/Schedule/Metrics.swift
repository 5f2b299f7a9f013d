import Foundation

/// The Prometheus textfile (node_exporter's --collector.textfile) that `run`, the daemon
/// and `status --metrics` write: everything is read from the policy and the catalog at
/// `clock.now()`, so whichever of them wrote it last, the file says the same things.
///
/// Labels: `backup_job`, never `job` (Prometheus keeps `job` for the scrape job and would
/// rename ours `exported_job`), and `target`. Every family is a gauge.
///
/// `bosbackup_archive_lag_seconds{database,target}`: how long ago the target last had
/// every commit the WAL held. Absent (never NaN or 0) while a target has no archive yet:
/// NaN compares false with everything, so `lag > 600` would never fire and look healthy,
/// and 0 would claim no lag.
public struct HealthMetrics {
    public let policy: Policy
    public let catalog: Catalog
    public let clock: Clock

    public init(policy: Policy, catalog: Catalog, clock: Clock) {
        self.policy = policy
        self.catalog = catalog
        self.clock = clock
    }

    /// Writes the file atomically (temporary name in the same folder, fsync, rename), mode
    /// 0644 so node_exporter, which runs as another user, can read it.
    public func write(to path: String) throws {
        try DurableFile.write(Data(try render().utf8), to: path, mode: 0o644)
    }

    public func render() throws -> String {
        let status = StatusReport(policy: policy, catalog: catalog, clock: clock)
        var out = Exposition()
        Self.jobs(try status.jobs(), into: &out)
        Self.targets(policy.targets.map(\.name), access: try catalog.targetAccess(), deletions: try status.deletions(), into: &out)
        let nextDrill = try DueJobs(policy: policy, catalog: catalog).decideDrill(at: clock.now())?.next
        Self.drill(try catalog.lastDrill(), next: nextDrill, running: policy.drill == nil ? nil : try status.drillInProgress() != nil, into: &out)
        Self.archive(try policy.archiveStatus(catalog: catalog, now: clock.now()), into: &out)
        return out.text
    }

    static func jobs(_ jobs: [JobStatus], into out: inout Exposition) {
        func family(_ name: String, _ help: String, _ value: (JobStatus) -> Double?) {
            out.gauge(name, help, jobs.compactMap { job in
                value(job).map { Exposition.Sample(labels: [("backup_job", job.job), ("target", job.target)], value: $0) }
            })
        }
        family("bosbackup_last_success_timestamp_seconds", "Unix time the job last finished successfully.") {
            $0.lastSuccess.map { ($0.finishedAt ?? $0.startedAt).timeIntervalSince1970 }
        }
        family("bosbackup_last_snapshot_bytes", "Size of the newest snapshot's database.") { $0.lastSnapshot.map { Double($0.bytes) } }
        family("bosbackup_last_snapshot_stored_bytes", "Stored (compressed) size of the newest snapshot.") {
            $0.lastSnapshot.map { Double($0.storedBytes) }
        }
        family("bosbackup_last_run_duration_seconds", "Duration of the job's last finished run.") { $0.lastFinishedRun?.seconds }
        family("bosbackup_last_run_success", "1 if the job's last finished run succeeded, 0 if it failed or was abandoned.") {
            $0.lastFinishedRun.map { $0.status == .success ? 1 : 0 }
        }
        family("bosbackup_job_running", "1 while a run of the job is in progress (its process alive), else 0.") { $0.running == nil ? 0 : 1 }
        family("bosbackup_overdue", "1 if no successful run covers the latest fire time past its grace period.") { $0.overdue ? 1 : 0 }
        family("bosbackup_last_verify_ok", "1 if the job's most recent verification (of any of its snapshots) passed, 0 if not.") {
            $0.lastVerificationOfJob.map { $0.ok ? 1 : 0 }
        }
        family("bosbackup_last_verify_timestamp_seconds", "Unix time of the job's most recent verification.") {
            $0.lastVerificationOfJob?.verifiedAt.timeIntervalSince1970
        }
        family("bosbackup_next_run_timestamp_seconds", "Unix time of the job's next fire.") { $0.next?.timeIntervalSince1970 }
        family("bosbackup_future_runs", "Runs recorded after now (the clock was ahead or jumped); ignored for the schedule.") {
            Double($0.futureRuns.count)
        }
    }

    /// `names`: the policy's targets (reachability is only known for those a run opens);
    /// `deletions` may add targets the policy no longer has.
    static func targets(_ names: [String], access: [String: TargetAccess], deletions: [TargetDeletions], into out: inout Exposition) {
        func sample(_ target: String, _ value: Double) -> Exposition.Sample { .init(labels: [("target", target)], value: value) }
        out.gauge("bosbackup_target_up", "1 if the last run could open and list the target, 0 if it could not.",
                  names.compactMap { name in access[name].map { sample(name, $0.ok ? 1 : 0) } })
        out.gauge("bosbackup_target_last_access_timestamp_seconds", "Unix time a run last tried to open and list the target.",
                  names.compactMap { name in access[name].map { sample(name, $0.accessedAt.timeIntervalSince1970) } })
        out.gauge("bosbackup_pending_deletions", "Snapshots marked for deletion whose objects may still be on the target; every run retries them.",
                  deletions.map { sample($0.target, Double($0.pending.count)) })
        out.gauge("bosbackup_failed_deletions", "Pending deletions whose last attempt failed (the target refused or could not be reached).",
                  deletions.map { sample($0.target, Double($0.failing.count)) })
    }

    static func archive(_ targets: [ArchiveTargetStatus], into out: inout Exposition) {
        func samples(_ value: (ArchiveTargetStatus) -> Double?) -> [Exposition.Sample] {
            targets.compactMap { t in value(t).map { .init(labels: [("database", t.database), ("target", t.target)], value: $0) } }
        }
        out.gauge("bosbackup_archive_lag_seconds", "Seconds since the target last held every commit the WAL held.", samples { $0.lag })
        out.gauge("bosbackup_archive_last_commit_timestamp_seconds", "Unix time the newest commit on the target was seen.",
                  samples { $0.lastCommitSeen?.timeIntervalSince1970 })
        // Per database: the span the archive lost at its newest lost position (absent: none yet).
        var seen = Set<String>()
        let gaps = targets.filter { $0.lastGap != nil && seen.insert($0.database).inserted }
        out.gauge("bosbackup_archive_last_gap_seconds", "Length of the newest span no archive covers (a lost WAL position).",
                  gaps.map { .init(labels: [("database", $0.database)], value: $0.lastGap!.to.timeIntervalSince($0.lastGap!.from)) })
        out.gauge("bosbackup_archive_last_gap_end_timestamp_seconds", "Unix time the newest span no archive covers ended.",
                  gaps.map { .init(labels: [("database", $0.database)], value: $0.lastGap!.to.timeIntervalSince1970) })
    }

    /// `running`: nil when the policy has no drill.
    static func drill(_ last: Catalog.DrillRecord?, next: Date?, running: Bool?, into out: inout Exposition) {
        func one(_ value: Double?) -> [Exposition.Sample] { value.map { [Exposition.Sample(labels: [], value: $0)] } ?? [] }
        out.gauge("bosbackup_drill_last_timestamp_seconds", "Unix time the last restore drill finished.", one(last?.finishedAt.timeIntervalSince1970))
        out.gauge("bosbackup_drill_last_ok", "1 if the last restore drill passed, 0 if it failed.", one(last.map { $0.ok ? 1 : 0 }))
        out.gauge("bosbackup_drill_last_duration_seconds", "How long the last restore drill took.", one(last?.seconds))
        out.gauge("bosbackup_drill_rto_margin_seconds",
                  "Recovery objective minus the last drill's slowest recovery of a newest snapshot; negative when over.",
                  one(last.flatMap { drill in drill.recoverySeconds.map { drill.rtoSeconds - $0 } }))
        out.gauge("bosbackup_drill_next_timestamp_seconds", "Unix time the next restore drill is due.", one(next?.timeIntervalSince1970))
        out.gauge("bosbackup_drill_running", "1 while a restore drill is in progress (its process alive), else 0.", one(running.map { $0 ? 1 : 0 }))
    }
}

/// Text exposition format 0.0.4: per family `# HELP`, `# TYPE`, then its samples.
struct Exposition {
    struct Sample {
        var labels: [(String, String)]
        var value: Double
    }

    private(set) var text = ""

    /// A family without samples is left out: HELP and TYPE alone say nothing.
    mutating func gauge(_ name: String, _ help: String, _ samples: [Sample]) {
        guard !samples.isEmpty else { return }
        text += "# HELP \(name) \(Self.escapeHelp(help))\n# TYPE \(name) gauge\n"
        for sample in samples {
            let labels = sample.labels.map { "\($0.0)=\"\(Self.escapeLabel($0.1))\"" }.joined(separator: ",")
            text += name + (labels.isEmpty ? "" : "{\(labels)}") + " " + Self.format(sample.value) + "\n"
        }
    }

    static func escapeLabel(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    static func escapeHelp(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// Whole numbers without a fraction; the format's spellings of the special values.
    static func format(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        return v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }
}
