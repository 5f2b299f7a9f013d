import ArgumentParser
import BOSBackup
import Foundation

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Set up a sample BOS database and a policy file to try bosbackup on.",
        discussion: "`make demo` runs the whole story on top of this (scripts/demo.sh).")

    @Option(help: "Folder for the demo (created).") var dir = "demo-out"
    @Option(help: "Orders in the sample database.") var orders = 100_000
    @Option(help: "Random seed.") var seed: UInt64 = 42

    func run() async throws {
        try await reporting {
            let root = Context.absolute(dir)
            try DurableFile.makeDirectory(root + "/live")
            let live = root + "/live/bos.db"
            if !DurableFile.exists(live) {
                // "Today" is the current day so the story's "today's orders" are real ones.
                try SampleBOS.create(at: live, options: .init(orders: orders, seed: seed, now: Date()))
            }
            let policy = """
                # The documented double-backup policy (schedules/bos.yml), pointed at this demo folder.
                timezone: Asia/Shanghai
                host: store-0421
                source: { database: live/bos.db }
                catalog: catalog.db
                scratch: scratch
                targets:
                  nas:   { url: nas }
                jobs:
                  local-weekly: { target: nas, cron: "0 0 * * 0",  retention: { keep_last: 8 } }
                  nas-daily:    { target: nas, cron: "0 22 * * *", incremental: { full_every: 7 },
                                  retention: { keep_daily: 30, keep_monthly: 12 } }
                drill: { cron: "0 3 1 1,4,7,10 *", rto: 4h }
                archive: { bos: { targets: { nas: 1s } } }

                """
            try DurableFile.write(Data(policy.utf8), to: root + "/bos.yml", mode: 0o644)
            let counts = try TableCounts.count(atPath: live)
            Console.out("sample BOS database: \(live) (\(Console.bytes(DurableFile.fileSize(live) ?? 0)))")
            Console.out("  " + counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            Console.out("policy file: \(root)/bos.yml")
            return ExitStatus.ok
        }
    }
}
