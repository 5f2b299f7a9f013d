import ArgumentParser
import BOSBackup
import Foundation

struct SnapshotsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshots", abstract: "List the cataloged snapshots, oldest first.")

    @OptionGroup var common: CommonOptions
    @Option(help: "Only this job's snapshots.") var job: String?
    @OptionGroup var database: DatabaseOption
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        try await reporting {
            let context = try Context(common)
            try context.authorize(.auditor, "snapshots")
            let catalog = try context.openCatalog(readOnly: true)
            let only = try context.database(database)
            let snapshots = try catalog.snapshots(job: job).filter { only == nil || $0.databaseName == only }
            // Marked for deletion but still (maybe) on their target: listed apart, never offered for use.
            let deleting = try catalog.pendingDeletions().filter { job == nil || $0.snapshot.job == job }
            if json {
                Console.json(["snapshots": try snapshots.map { s -> [String: Any] in
                                  var item = SnapshotsCommand.json(s)
                                  let verification = try catalog.lastVerification(of: s.id)
                                  item["verification"] = verification.map {
                                      ["ok": $0.ok, "at": ISO8601.string($0.verifiedAt), "problems": $0.problems]
                                  } as Any
                                  item["verified_at"] = verification.map { ISO8601.string($0.verifiedAt) } as Any
                                  return item
                              },
                              "deleting": deleting.map { pending -> [String: Any] in
                                  var item = SnapshotsCommand.json(pending.snapshot)
                                  item["state"] = "deleting"
                                  item["delete_error"] = pending.lastError as Any
                                  return item
                              }])
                return ExitStatus.ok
            }
            defer {
                for pending in deleting {
                    Console.out("deleting \(pending.shortID)  \(context.local(pending.snapshot.takenAt))  \(pending.snapshot.job)  \(pending.target)  "
                        + (pending.lastError.map { "not deleted yet: \($0)" } ?? "interrupted; the next run finishes it"))
                }
            }
            guard !snapshots.isEmpty else {
                Console.out("no snapshots in \(catalog.path)" + (job.map { " for job \($0)" } ?? ""))
                return ExitStatus.ok
            }
            let rows = try snapshots.map { s -> [String] in
                let verification = try catalog.lastVerification(of: s.id)
                let verified = verification.map { $0.ok ? "ok \(context.local($0.verifiedAt).prefix(10))" : "FAILED" } ?? "never"
                // An incremental names its parent: what it cannot be restored without.
                let kind = s.layout.parentID.map { "incr ← \(SnapshotID.short($0))" } ?? "full"
                return [s.shortID, context.local(s.takenAt), s.job, s.target, kind, Console.bytes(s.bytes), Console.bytes(s.storedBytes),
                        String(s.tables.values.reduce(0, +)), verified]
            }
            for line in Console.table(["ID", "TAKEN (\(context.timeZone.identifier))", "JOB", "TARGET", "KIND", "SIZE", "STORED", "ROWS", "VERIFIED"],
                                      rows, rightAligned: [5, 6, 7]) {
                Console.out(line)
            }
            Console.out("\(snapshots.count) snapshot\(snapshots.count == 1 ? "" : "s")")
            return ExitStatus.ok
        }
    }

    /// The `snapshots --json` shape of DESIGN.md (more fields are welcome). `stored_bytes`
    /// and `sha256` are those of the gzip stream (before encryption: what gunzip reads);
    /// `object_bytes` is the size of the object on the target.
    static func json(_ s: SnapshotRecord) -> [String: Any] {
        ["id": s.id, "name": s.name, "job": s.job, "target": s.target, "target_url": s.targetURL,
         "taken_at": ISO8601.string(s.takenAt), "bytes": s.bytes, "stored_bytes": s.storedBytes, "sha256": s.sha256,
         "sha256_of": "gzip stream",
         "object_bytes": s.encrypted ? EncryptedStreamFormat.encryptedSize(plaintextSize: s.storedBytes) : s.storedBytes,
         "database_sha256": s.databaseSHA256, "object_key": s.objectKey, "level": s.level, "block_size": s.blockSize,
         "encrypted": s.encrypted, "tables": s.tables, "state": "complete",
         "format": s.layout.format, "kind": s.layout.kind.rawValue, "parent": s.layout.parentID as Any,
         "chain_root": s.layout.chainRoot as Any, "host": s.layout.host as Any, "database": s.layout.database as Any,
         "manifest_key": s.manifestKey, "pagemap_key": s.layout.pagemapKey as Any]
    }
}
