import BOSBackup
import Foundation

/// `verify --chain`: the WAL archive's segments, links and gaps.
extension VerifyCommand {
    func verifyChain(_ context: Context, _ catalog: Catalog) async throws -> Int32 {
        let (policy, name, archive) = try context.archivedDatabase(database)
        let verifier = ArchiveChainVerifier(catalog: catalog, openTarget: context.target(named:))
        let report = try await verifier.verify(database: name, host: policy.host, targets: archive.targets.map(\.target))
        var pinned: [PinnedStateCheck.Result]?
        if restore {
            let progress = ProgressLine()
            pinned = try await PinnedStateCheck(catalog: catalog, restorer: context.restorer(catalog, progress: progress), scratch: context.scratch,
                                                segmentsOn: context.target(named:), baseOn: context.target(for:))
                .run(database: name, host: policy.host, targets: archive.targets.map(\.target))
            progress.clear()
        }
        let pinnedFailed = pinned?.contains { !$0.ok } ?? false
        if json {
            Console.json([
                "database": name, "ok": report.ok,
                "chains": report.chains.map { ["target": $0.target, "generation": $0.generation, "segments": $0.segments, "commits": $0.commits,
                                               "bytes": $0.bytes, "covered_from": ISO8601.string($0.coveredFrom), "covered_to": ISO8601.string($0.coveredTo)] },
                "damage": report.damage.map { ["target": $0.target, "generation": $0.generation, "key": $0.key, "why": $0.why,
                                               "first_txid": $0.txids.lowerBound, "last_txid": $0.txids.upperBound,
                                               "first_seen": ISO8601.string($0.seen.lowerBound), "last_seen": ISO8601.string($0.seen.upperBound)] },
                "gaps": report.gaps.map { ["target": $0.target, "from": ISO8601.string($0.from), "to": ISO8601.string($0.to), "why": $0.why] },
                "pinned": (pinned ?? []).map { ["target": $0.target, "generation": $0.generation, "txid": $0.txid, "snapshot": $0.snapshot,
                                                "ok": $0.ok, "why": $0.why as Any, "seconds": $0.seconds] },
            ])
        } else {
            for chain in report.chains {
                Console.out("archive of \(name) on \(chain.target), generation \(SnapshotID.short(chain.generation)): \(chain.segments) segments, "
                    + "\(chain.commits) commits, \(Console.bytes(chain.bytes)); covers \(context.local(chain.coveredFrom)) – \(context.local(chain.coveredTo))")
            }
            for gap in report.gaps {
                Console.out("not covered on \(gap.target): \(context.local(gap.from)) – \(context.local(gap.to)) (\(gap.why))")
            }
            for damage in report.damage {
                Console.out(Console.red("DAMAGED") + " \(damage.key) on \(damage.target): \(damage.why); no restore reaches txid \(damage.txids.lowerBound) "
                    + "(seen \(context.local(damage.seen.lowerBound))) or later in generation \(SnapshotID.short(damage.generation)) from this target")
            }
            for p in pinned ?? [] {
                let what = "txid \(p.txid) of generation \(SnapshotID.short(p.generation)) rebuilt from \(p.target) (\(Console.seconds(p.seconds)))"
                Console.out(p.ok ? "ok      \(what): byte for byte the image of snapshot \(SnapshotID.short(p.snapshot)), the base the next generation started from"
                    : Console.red("FAILED") + "  \(what): \(p.why ?? "")")
            }
            Console.out(report.ok ? "the archive of \(name) is whole: every segment read back, checksum, format, links and txids"
                : "\(report.damage.count) damaged segment\(report.damage.count == 1 ? "" : "s") in the archive of \(name)")
        }
        if pinned?.isEmpty == true {
            // Asked for and not possible: "could not check", not "whole".
            Console.error("nothing is pinned yet: the first pinned state comes when the archive starts its next generation (base_every)")
            return report.ok ? ExitStatus.failed : ExitStatus.mismatch
        }
        return report.ok && !pinnedFailed ? ExitStatus.ok : ExitStatus.mismatch
    }
}
