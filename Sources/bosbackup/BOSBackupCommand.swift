import ArgumentParser
import BOSBackup
import CMalloc
import Foundation

@main
struct BOSBackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bosbackup",
        abstract: "Keeps a business operation system's SQLite database recoverable.",
        discussion: """
            Exit codes: 0 success, 1 an operation failed, 2 usage/config/input error,
            3 another run holds the lock, 4 verification found corruption or a mismatch.
            """,
        version: BOSBackupVersion.string,
        subcommands: [BackupCommand.self, ArchiveCommand.self, SnapshotsCommand.self, VerifyCommand.self, RestoreCommand.self,
                      DiffCommand.self, RecoverCommand.self, TimelineCommand.self, DrillCommand.self, RunCommand.self, DaemonCommand.self, StatusCommand.self, CheckCommand.self, PruneCommand.self, ScheduleCommand.self, NotifyCommand.self,
                      ScratchCommand.self, CatalogCommand.self, KeyCommand.self, AuditCommand.self, DemoCommand.self, SampleCommand.self])

    /// Parses and runs, mapping every failure to the documented exit codes:
    /// ArgumentParser's own usage errors become 2 (not its default 64).
    static func main() async {
        // Block buffers (up to 4 MiB) are allocated and freed all the time; keep
        // glibc from raising its mmap threshold and holding freed blocks in arenas,
        // so peak memory stays the blocks in flight. 256 KiB, not 1 MiB: the
        // archiver's members, records and segment indexes (256 KiB-1 MiB) then go
        // back to the kernel when freed too (`archive --once`, 1 GB sample to a
        // folder and moto: 2.5 MB less anonymous memory at the peak; a day's
        // `timeline --key`, which frees an index a segment, within its noise).
        _ = mallopt(M_MMAP_THRESHOLD, 256 << 10)
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let exit as ExitCode {
            Foundation.exit(exit.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            let message = fullMessage(for: error)
            FileHandle.standardError.write(Data((message.hasSuffix("\n") ? message : message + "\n").utf8))
            Foundation.exit(code == .validationFailure ? ExitStatus.usage : code.rawValue)
        }
    }
}
