import ArgumentParser
import BOSBackup
import Foundation

struct KeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key", abstract: "Encryption keys for targets with encryption_key_file.", subcommands: [Generate.self])

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a new random AES-256 key file (mode 0600; never overwrites).",
            discussion: "Keep a copy somewhere safe and apart from the backups: without it, encrypted snapshots cannot be restored.")
        @Argument(help: "Path of the new key file.") var path: String
        @OptionGroup var common: CommonOptions

        func run() async throws {
            try await reporting {
                let context = try Context(common)
                try context.authorize(.admin, "key generate")
                if context.catalogPath != nil {
                    try context.openCatalog().auditFirst(action: "key", detail: "generating a key file at \(Context.absolute(path))")
                }
                let key = EncryptionKey.generate()
                let folder = (Context.absolute(path) as NSString).deletingLastPathComponent
                let made = !DurableFile.exists(folder)
                try DurableFile.makeDirectory(folder)      // 0700 where it creates one
                try key.write(to: Context.absolute(path))
                if made { Console.out("created folder \(folder) (mode 0700)") }
                Console.out("wrote key \(key.id) to \(Context.absolute(path)) (mode 0600); keep a copy apart from the backups")
                return ExitStatus.ok
            }
        }
    }
}
