import ArgumentParser
import BOSBackup
import Foundation

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "The tamper-evident audit trail: list it, verify its chain and seals, seal its head.",
        discussion: """
            Every state-changing command writes its row first (and does nothing if it cannot). Rows are
            hash-chained; the chain's head is signed (Ed25519, audit-seal.key in the policy folder) and the
            seal stored on every target, every audit.seal_every rows or audit.seal_interval.
            """,
        subcommands: [List.self, Verify.self, Seal.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The newest rows of the audit trail, newest first.")
        @OptionGroup var common: CommonOptions
        @Option(help: "How many rows.") var limit = 50
        @Flag(help: "Print the rows as JSON.") var json = false

        func run() async throws {
            try await reporting {
                let context = try Context(common)
                try context.authorize(.auditor, "audit list")
                guard limit > 0 else { throw UsageError("--limit must be at least 1") }
                let rows = try context.openCatalog(readOnly: true).auditTrail(limit: limit)
                if json {
                    Console.json(rows.map { row -> [String: Any] in
                        ["id": row.id, "at": context.local(row.at), "actor": row.actor, "action": row.action,
                         "snapshot": row.snapshotID ?? NSNull(), "detail": row.detail, "sha256": row.sha256 ?? NSNull()]
                    })
                } else {
                    for row in rows {
                        let snapshot = row.snapshotID.map { " " + SnapshotID.short($0) } ?? ""
                        Console.out("\(row.id)  \(context.local(row.at))  \(row.actor)  \(row.action)\(snapshot)  \(Console.printable(row.detail))")
                    }
                }
                return ExitStatus.ok
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every link of the chain and every seal on every target.",
            discussion: "Exits 4 naming the first bad row (edited, removed, moved, or cut off after a seal), 1 when a target could not be read.")
        @OptionGroup var common: CommonOptions
        @Option(help: "The trusted public key (default: audit-seal.pub in the policy folder); an auditor's own copy.")
        var publicKey: String?
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await reporting {
                let context = try Context(common)
                try context.authorize(.auditor, "audit verify")
                let policy = try context.requirePolicy()
                let catalog = try context.openCatalog(readOnly: true)
                let keyPath = publicKey.map(Context.absolute) ?? context.auditKeyFolder(policy) + "/" + AuditSealKey.publicFileName
                let verifier = AuditVerifier(catalog: catalog, host: policy.host, publicKey: try AuditSealKey.loadPublic(path: keyPath))
                let result = try await verifier.verify(targets: policy.targets.map(\.name), open: context.repository(named:))
                if json {
                    Console.json(["verdict": "\(result.verdict)", "rows": result.rows, "head_row": result.headRowID,
                                  "first_bad_row": result.firstBadRow.map { $0 as Any } ?? NSNull(),
                                  "seals_checked": result.sealsChecked, "damage": result.damage.map(\.what),
                                  "unreadable_targets": result.unreadableTargets.map { ["target": $0.target, "error": $0.error] }])
                } else {
                    print(result, context: context)
                }
                return ExitStatus.code(for: [result.verdict])
            }
        }

        private func print(_ result: AuditVerification, context: Context) {
            for damage in result.damage { Console.error(Console.red("DAMAGED ") + damage.what) }
            for (target, error) in result.unreadableTargets { Console.error("could not read the seals on \(target): \(error)") }
            let newest = result.newestSeal.map { "newest seal: row \($0.rowID) on \($0.target) at \(context.local($0.at))" }
                ?? "no seal on any target yet: rows cut off at the end could not be noticed"
            switch result.verdict {
            case .damaged:
                Console.out("audit trail DAMAGED from row \(result.firstBadRow.map(String.init) ?? "?"): \(result.rows) rows, \(result.sealsChecked) seals checked")
            case .couldNotCheck:
                Console.out("audit trail chain ok (\(result.rows) rows), but not every target's seals could be checked; \(newest)")
            case .passed:
                Console.out("audit trail ok: \(result.rows) rows chained, \(result.sealsChecked) seals verified; \(newest)")
            }
        }
    }

    struct Seal: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Seal the chain's head onto every target now (when it moved since the last seal).")
        @OptionGroup var common: CommonOptions

        func run() async throws {
            try await reporting {
                let context = try Context(common)
                try context.authorize(.operator, "audit seal")
                let catalog = try context.openCatalog()
                let outcome = try await context.sealAudit(catalog, force: true)
                if outcome.keyCreated, let policy = context.policy {
                    Console.out("made the audit seal key \(context.auditKeyFolder(policy))/\(AuditSealKey.privateFileName) (mode 0600) and its "
                                + "public half \(AuditSealKey.publicFileName): give the auditors a copy of the public half")
                }
                for (target, error) in outcome.failures { Console.error("could not store the audit seal on \(target): \(error)") }
                guard let sealed = outcome.sealed else {
                    if !outcome.failures.isEmpty { return ExitStatus.failed }
                    Console.out("nothing to seal: the newest row is sealed already")
                    return ExitStatus.ok
                }
                Console.out("sealed row \(sealed.rowID) on \(sealed.targets.joined(separator: ", ")) (\(sealed.objectKey))")
                return outcome.failures.isEmpty ? ExitStatus.ok : ExitStatus.failed
            }
        }
    }
}

extension Context {
    /// Where the seal key pair lives: the policy file's folder.
    func auditKeyFolder(_ policy: Policy) -> String {
        ((policy.file.map(Context.absolute) ?? FileManager.default.currentDirectoryPath) as NSString).deletingLastPathComponent
    }

    func repository(named name: String) throws -> Repository { Repository(target: try target(named: name)) }

    /// Seals the head when due (or, with `force`, whenever it moved); prints nothing.
    func sealAudit(_ catalog: Catalog, force: Bool = false) async throws -> AuditSealOutcome {
        guard let policy else { return AuditSealOutcome() }
        let sealer = AuditSealer(catalog: catalog, host: policy.host, keyFolder: auditKeyFolder(policy),
                                 sealing: policy.auditSealing, clock: clock)
        return try await sealer.sealIfDue(targets: policy.targets.map(\.name), force: force, open: repository(named:))
    }

    /// After `run` and each daemon pass: seal when due. A seal that one target missed is
    /// anchored by the others (and that target's trouble is the jobs' to report); only a
    /// seal no target took is said, as a warning: the run's own work stands.
    func sealAuditIfDue(_ catalog: Catalog, output: RunOutput) async {
        do {
            let outcome = try await sealAudit(catalog)
            if outcome.sealed == nil, let first = outcome.failures.first {
                output.failure("could not seal the audit trail on any target (\(first.target): \(first.error))", priority: .warning)
            }
        } catch {
            output.failure("could not seal the audit trail: \(error)", priority: .warning)
        }
    }
}
