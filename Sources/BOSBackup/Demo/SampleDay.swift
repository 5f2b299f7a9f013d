import Foundation

/// One business day on a sample BOS database, as the benchmarks and the
/// demo need it to show what an incremental backup costs: 1% new orders
/// (each with its items, payment, shipment and stock movements), as many
/// status updates to existing orders, and scattered changes to customers'
/// addresses and products' prices. Deterministic for a seed and a time.
public enum SampleDay {
    public struct Summary: Sendable, Equatable {
        public var newOrders = 0
        public var updatedOrders = 0
        public var movedCustomers = 0
        public var repricedProducts = 0
    }

    public static func simulate(on path: String, at: Date, seed: UInt64) throws -> Summary {
        let db = try Database(path: path, mode: .readWrite, busyTimeoutMs: 30_000)
        try db.execute("PRAGMA foreign_keys = ON")
        var rng = SeededRandom(seed: seed)
        let orders = try db.int("SELECT count(*) FROM orders"), maxOrder = try db.int("SELECT max(id) FROM orders")
        let customers = try db.int("SELECT max(id) FROM customers"), products = try db.int("SELECT max(id) FROM products")
        var summary = Summary()
        summary.newOrders = max(1, Int(orders / 100))
        summary.updatedOrders = summary.newOrders
        summary.movedCustomers = max(1, Int(customers / 500))
        summary.repricedProducts = max(1, Int(products / 50))
        var writer = try OrderWriter(db: db)
        let status = try db.prepare("UPDATE orders SET status = ? WHERE id = ?")
        let address = try db.prepare("UPDATE customers SET address = ? WHERE id = ?")
        let price = try db.prepare("UPDATE products SET price_cents = ? WHERE id = ?")
        // A BOS commits each order on its own; batches of 100 keep a long day quick without changing what is written.
        for batch in stride(from: 0, to: summary.newOrders, by: 100) {
            try db.transaction {
                for i in batch..<min(batch + 100, summary.newOrders) {
                    let when = at.addingTimeInterval(Double(i) * 86_400 / Double(summary.newOrders))
                    try writer.addOrder(at: when, rng: &rng)
                }
            }
        }
        try db.transaction {
            for _ in 0..<summary.updatedOrders {
                try status.execute([.text(SampleBOS.statuses.randomElement(using: &rng)!), .integer(Int64.random(in: 1...maxOrder, using: &rng))])
            }
            for _ in 0..<summary.movedCustomers {
                try address.execute([.text("\(Int.random(in: 1...999, using: &rng)) \(SampleBOS.cities.randomElement(using: &rng)!) Road"),
                                     .integer(Int64.random(in: 1...customers, using: &rng))])
            }
            for _ in 0..<summary.repricedProducts {
                try price.execute([.integer(Int64.random(in: 99...49_999, using: &rng)), .integer(Int64.random(in: 1...products, using: &rng))])
            }
        }
        return summary
    }
}
