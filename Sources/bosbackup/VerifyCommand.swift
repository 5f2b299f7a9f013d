import ArgumentParser
import BOSBackup
import Foundation

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Prove snapshots restore: checksum, gzip, scratch restore, integrity check, row counts.",
        discussion: "Exits 4 when any snapshot (or, with --chain, any archived WAL segment) fails a check; each snapshot's result is recorded in the catalog.")

    @OptionGroup var common: CommonOptions
    @Option(help: "Snapshot id (or name, or unique id prefix).") var snapshot: String?
    @Option(help: "Verify the N newest snapshots.") var latest: Int?
    @OptionGroup var database: DatabaseOption
    @Flag(help: "PRAGMA quick_check instead of the full integrity_check (faster, skips index content checks).") var quick = false
    @Flag(help: "Check the WAL archive instead: every segment's SHA-256, format, links and txid continuity, and the spans no archive covers.")
    var chain = false
    @Flag(help: "With --chain: also rebuild the newest pinned state from each archive target and compare it with the archive's own checksum (the SHA-256 of the base snapshot that continued it).")
    var restore = false
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        try await reporting {
            let context = try Context(common)
            try context.authorize(.operator, "verify")
            let catalog = try context.openCatalog()
            if restore && !chain { throw UsageError("--restore goes with --chain") }
            if chain {
                guard snapshot == nil, latest == nil else { throw UsageError("--chain checks the archive: no --snapshot or --latest") }
                return try await verifyChain(context, catalog)
            }
            let snapshots = try context.selectSnapshots(catalog, id: snapshot, latest: latest, database: try context.database(database))
            let progress = ProgressLine()
            var verifier = context.verifier(catalog, progress: progress)
            verifier.quick = quick
            var results: [VerificationResult] = []
            var errors: [(snapshot: SnapshotRecord, error: Error)] = []
            // Every snapshot gets its answer: one that cannot be read does not stop the others.
            for snapshot in snapshots {
                do {
                    let result = try await verifier.verify(snapshot, target: try context.target(for: snapshot))
                    progress.clear()
                    results.append(result)
                    if !json { VerifyCommand.printResult(result) }
                } catch let error as CategorizedError where error.category == .input {
                    throw error   // a usage or config mistake is the command's answer, not one snapshot's
                } catch {
                    progress.clear()
                    errors.append((snapshot, error))
                    // A diagnostic, on stderr; the others' results still follow on stdout.
                    Console.error("snapshot \(snapshot.shortID) (\(snapshot.name)) could not be checked: \(error)")
                }
            }
            if json {
                Console.json(["results": results.map(VerifyCommand.json) + errors.map { ["id": $0.snapshot.id, "name": $0.snapshot.name, "ok": false, "error": "\($0.error)"] }])
            } else if results.count + errors.count > 1 {
                let total = results.count + errors.count
                let failed = results.filter { !$0.ok }.count
                let unchecked = results.filter { $0.verdict == .couldNotCheck }.count + errors.count
                Console.out(failed == 0 && unchecked == 0 ? "all \(total) snapshots verified"
                    : [failed > 0 ? "\(failed) of \(total) snapshots FAILED verification" : nil,
                       unchecked > 0 ? "\(unchecked) of \(total) could not be checked completely" : nil]
                        .compactMap { $0 }.joined(separator: "; "))
            }
            let worst = ExitStatus.code(for: results.map(\.verdict) + errors.map { _ in .couldNotCheck })
            // An error that is a usage or input error (an unknown target) keeps its own code when nothing was damaged.
            return worst == ExitStatus.mismatch ? worst : errors.map { ExitStatus.code(for: $0.error) }.reduce(worst, max)
        }
    }

    static func printResult(_ r: VerificationResult) {
        let s = r.snapshot
        if r.verdict == .couldNotCheck {
            Console.out("UNCHECKED \(s.shortID)  \(s.name)  no damage found, but not everything could be checked (not recorded):")
            for part in r.unchecked { Console.out("        - could not check \(part)") }
        } else if r.ok {
            Console.out("ok      \(s.shortID)  \(s.name)  checksum, gzip, integrity, \(s.tables.count) table counts  (\(Console.seconds(r.seconds)))")
        } else {
            let failed = [("checksum", r.checksumOK), ("gzip", r.gzipOK), ("integrity", r.integrityOK), ("counts", r.countsOK)]
                .filter { !$0.1 }.map(\.0)
            Console.out(Console.red("FAILED") + "  \(s.shortID)  \(s.name)  failed: \(failed.isEmpty ? "manifest" : failed.joined(separator: ", "))")
            for problem in r.problems { Console.out("        - \(problem)") }
        }
    }

    /// The `verify --json` shape of DESIGN.md.
    static func json(_ r: VerificationResult) -> [String: Any] {
        ["id": r.snapshot.id, "name": r.snapshot.name, "ok": r.ok, "checksum_ok": r.checksumOK, "gzip_ok": r.gzipOK,
         "integrity_ok": r.integrityOK, "counts_ok": r.countsOK, "seconds": r.seconds, "problems": r.problems,
         "unchecked": r.unchecked]
    }
}
