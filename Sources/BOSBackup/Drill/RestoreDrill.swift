import Foundation

/// One snapshot restored in a drill, phase by phase.
public struct DrillSample: Sendable {
    public enum Pick: String, Sendable { case newest, older = "random older" }
    public var pick: Pick
    public var verification: VerificationResult
    public var snapshot: SnapshotRecord { verification.snapshot }
    public var ok: Bool { verification.verdict == .passed }
    /// What kept it from passing: damage found, or parts that could not be checked.
    public var findings: [String] { verification.problems + verification.unchecked.map { "could not check \($0)" } }
    public var resultLabel: String {
        switch verification.verdict {
        case .passed: return "ok"
        case .damaged: return "FAILED"
        case .couldNotCheck: return "not checked completely"
        }
    }
    public var totalSeconds: Double {
        verification.restoreSeconds + verification.integritySeconds + verification.countSeconds
    }
}

/// The drill of one target: is it restorable, and how fast.
public struct DrillTargetResult: Sendable {
    public var target: String
    public var targetURL: String
    public var samples: [DrillSample]
    public var problems: [String]
    /// A point-in-time restore per database archived to this target.
    public var pointInTime: [PointInTimeSample] = []
    public var ok: Bool { problems.isEmpty && !samples.isEmpty && samples.allSatisfy(\.ok) && pointInTime.allSatisfy(\.ok) }
    /// Time to bring back the newest snapshot, or a second of the archive, from this
    /// target (the slower): what an incident would cost.
    public var recoverySeconds: Double? {
        guard let newest = samples.first(where: { $0.pick == .newest })?.totalSeconds else { return nil }
        return max(newest, pointInTime.map(\.seconds).max() ?? 0)
    }
}

public struct DrillResult: Sendable {
    public var startedAt: Date
    public var finishedAt: Date
    public var timeZone: TimeZone
    public var rto: TimeInterval
    public var targets: [DrillTargetResult]
    public var ok: Bool { !targets.isEmpty && targets.allSatisfy { $0.ok && ($0.recoverySeconds ?? .infinity) <= rto } }
    public var seconds: Double { finishedAt.timeIntervalSince(startedAt) }
    /// Not passed only because some snapshot could not be checked completely
    /// (no damage, objective met): "could not check", exit 1 rather than 4.
    public var couldNotCheck: Bool {
        !ok && targets.allSatisfy { $0.problems.isEmpty && !$0.samples.isEmpty && $0.samples.allSatisfy { $0.verification.ok }
            && !$0.pointInTime.contains(where: \.damaged) }
            && targets.allSatisfy { ($0.recoverySeconds ?? .infinity) <= rto }
    }
    /// The slowest target's recovery time against the objective.
    public var worstRecoverySeconds: Double? { targets.compactMap(\.recoverySeconds).max() }
}

/// The quarterly restore drill: from every target, the newest snapshot and
/// one random older one are fetched, decrypted, decompressed, checked and
/// counted, each phase timed, and the time compared with the recovery
/// objective.
public struct RestoreDrill {
    public let verifier: SnapshotVerifier
    public let rto: TimeInterval
    public let timeZone: TimeZone
    /// Point-in-time restores from each archive target (nil: snapshots only).
    public var pointInTime: PointInTimeDrill?

    public init(verifier: SnapshotVerifier, rto: TimeInterval, timeZone: TimeZone, pointInTime: PointInTimeDrill? = nil) {
        self.verifier = verifier
        self.rto = rto
        self.timeZone = timeZone
        self.pointInTime = pointInTime
    }

    /// `targets` are the target names to drill (every target of the policy);
    /// a target without snapshots fails the drill.
    public func run<R: RandomNumberGenerator>(targets: [String], open: (SnapshotRecord) throws -> Target, using rng: inout R) async throws -> DrillResult {
        let started = verifier.clock.now()
        let began = Date()
        let all = try verifier.catalog.snapshots()
        var results: [DrillTargetResult] = []
        for name in targets {
            let onTarget = all.filter { $0.target == name }.sorted { $0.takenAt > $1.takenAt }
            var result = DrillTargetResult(target: name, targetURL: onTarget.first?.targetURL ?? "", samples: [], problems: [])
            guard let newest = onTarget.first else {
                result.problems.append("no snapshot of target \(name) in the catalog: nothing to restore from")
                results.append(result)
                continue
            }
            var picks: [(SnapshotRecord, DrillSample.Pick)] = [(newest, .newest)]
            if onTarget.count > 1 { picks.append((onTarget[1...].randomElement(using: &rng)!, .older)) }
            for (snapshot, pick) in picks {
                do {
                    let verification = try await verifier.verify(snapshot, target: try open(snapshot))
                    result.samples.append(DrillSample(pick: pick, verification: verification))
                } catch {
                    result.problems.append("\(snapshot.id): \(error)")
                }
            }
            result.pointInTime = try await pointInTime?.samples(target: name, using: &rng) ?? []
            results.append(result)
        }
        return DrillResult(startedAt: started, finishedAt: started.addingTimeInterval(Date().timeIntervalSince(began)),
                           timeZone: timeZone, rto: rto, targets: results)
    }
}
