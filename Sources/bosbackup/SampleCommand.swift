import ArgumentParser
import BOSBackup
import Foundation

struct SampleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample", abstract: "Make or feed a sample BOS database (for trials, tests and benchmarks).",
        subcommands: [Create.self, AddOrders.self, Day.self])

    /// `--at TIME`, or now.
    static func time(_ at: String?) throws -> Date {
        guard let at else { return Date() }
        guard let date = ISO8601.parse(at) else { throw UsageError("--at \(at) is not an ISO 8601 time") }
        return date
    }

    struct Day: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Simulate one business day: 1% new orders, as many order updates, some address and price changes.")
        @Argument(help: "The sample database to change.") var path: String
        @Option(help: "Random seed; the same seed, time and database give the same day.") var seed: UInt64 = 1
        @Option(help: "When the day starts (ISO 8601; default now).") var at: String?

        func run() async throws {
            try await reporting {
                let when = try SampleCommand.time(at)
                let day = try SampleDay.simulate(on: Context.absolute(path), at: when, seed: seed)
                Console.out("one day on \(path): +\(day.newOrders) orders, \(day.updatedOrders) order updates, "
                    + "\(day.movedCustomers) customers moved, \(day.repricedProducts) products repriced")
                return ExitStatus.ok
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a deterministic sample BOS database.")
        @Argument(help: "Path of the new database (must not exist).") var path: String
        @Option(help: "Number of orders (100000 ≈ 60 MB).") var orders = 10_000
        @Option(help: "Random seed; the same seed gives the same database.") var seed: UInt64 = 42
        @Option(help: "Days the orders are spread over.") var days = 90
        @Option(help: "The 'now' the last orders are placed at (ISO 8601).") var now: String?
        @Flag(help: "Use a rollback journal instead of WAL.") var rollbackJournal = false

        func run() async throws {
            try await reporting {
                var options = SampleBOS.Options(orders: orders, seed: seed, days: days, walMode: !rollbackJournal)
                if let now {
                    guard let date = ISO8601.parse(now) else { throw UsageError("--now \(now) is not an ISO 8601 time") }
                    options.now = date
                }
                let path = Context.absolute(path)
                try SampleBOS.create(at: path, options: options)
                Console.out("created \(path): \(orders) orders, \(Console.bytes(DurableFile.fileSize(path) ?? 0))")
                return ExitStatus.ok
            }
        }
    }

    struct AddOrders: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-orders", abstract: "Add orders one transaction each, as a busy BOS would.")
        @Argument(help: "The database to write to.") var path: String
        @Option(help: "How many orders.") var count = 100
        @Option(help: "Placed-at time (ISO 8601; default now).") var at: String?
        @Option(help: "Random seed.") var seed: UInt64 = 7
        @Flag(help: "Print each new order id as it commits (for tests that follow the writer).") var announce = false
        @Flag(help: "At the end, print commit latency percentiles as JSON.") var latency = false
        @Option(help: "Stop early once this file exists (tests end a writer without killing it).") var stopFile: String?

        func run() async throws {
            try await reporting {
                let when = try SampleCommand.time(at)
                var latencies: [Double] = []
                let began = Date()
                _ = try SampleBOS.addOrders(to: Context.absolute(path), count: count, at: when, seed: seed) { id, seconds in
                    latencies.append(seconds)
                    if announce { print(id); fflush(stdout) }
                    return stopFile.map { !DurableFile.exists($0) } ?? true
                }
                let elapsed = Date().timeIntervalSince(began)
                if latency {
                    let sorted = latencies.sorted()
                    func p(_ q: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))] * 1000 }
                    Console.json(["commits": sorted.count, "per_second": Double(sorted.count) / max(elapsed, 0.001),
                                  "p50_ms": p(0.5), "p99_ms": p(0.99), "max_ms": (sorted.last ?? 0) * 1000])
                } else if !announce {
                    Console.out("added \(count) orders to \(path)")
                }
                return ExitStatus.ok
            }
        }
    }
}
