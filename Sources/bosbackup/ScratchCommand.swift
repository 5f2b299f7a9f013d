import ArgumentParser
import BOSBackup
import Foundation

struct ScratchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scratch", abstract: "Manage the scratch folder (triage copies, temporary files).",
        subcommands: [Clean.self])

    struct Clean: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove the restored triage copies and leftover temporary files.")
        @OptionGroup var common: CommonOptions

        func run() async throws {
            try await reporting {
                let context = try Context(common)
                try context.authorize(.operator, "scratch clean")
                // Triage copies are evidence of an incident: their removal is on the trail (when there is one).
                if context.catalogPath != nil { try context.openCatalog().auditFirst(action: "scratch-clean", detail: "removing \(context.scratch)") }
                let removed = try ScratchFolder(path: context.scratch).clean()
                Console.out(removed.files == 0 ? "scratch folder \(context.scratch) is already clean"
                            : "removed \(removed.files) files (\(Console.bytes(removed.bytes))) from \(context.scratch)")
                return ExitStatus.ok
            }
        }
    }
}
