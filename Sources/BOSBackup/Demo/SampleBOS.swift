import Foundation

/// A deterministic pseudo-random generator (SplitMix64): the same seed gives
/// the same sample database on every machine.
public struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A realistic business operation system database: customers, products,
/// orders with items, payments, shipments, inventory movements, staff and
/// shifts — foreign keys and indexes as a real BOS would have them.
public enum SampleBOS {
    public static let schema = """
        PRAGMA foreign_keys = ON;
        CREATE TABLE customers (
            id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE,
            city TEXT NOT NULL, address TEXT NOT NULL, created_at TEXT NOT NULL);
        CREATE TABLE products (
            id INTEGER PRIMARY KEY, sku TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
            category TEXT NOT NULL, price_cents INTEGER NOT NULL, stock INTEGER NOT NULL);
        CREATE TABLE employees (
            id INTEGER PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, hired_at TEXT NOT NULL);
        CREATE TABLE shifts (
            id INTEGER PRIMARY KEY, employee_id INTEGER NOT NULL REFERENCES employees(id),
            starts_at TEXT NOT NULL, ends_at TEXT NOT NULL);
        CREATE TABLE orders (
            id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
            employee_id INTEGER REFERENCES employees(id), placed_at TEXT NOT NULL,
            status TEXT NOT NULL, total_cents INTEGER NOT NULL, note TEXT);
        CREATE TABLE order_items (
            id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id),
            product_id INTEGER NOT NULL REFERENCES products(id), quantity INTEGER NOT NULL,
            unit_price_cents INTEGER NOT NULL);
        CREATE TABLE payments (
            id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id),
            method TEXT NOT NULL, amount_cents INTEGER NOT NULL, paid_at TEXT NOT NULL, reference TEXT NOT NULL);
        CREATE TABLE shipments (
            id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id),
            carrier TEXT NOT NULL, tracking TEXT NOT NULL, shipped_at TEXT, delivered_at TEXT);
        CREATE TABLE inventory_movements (
            id INTEGER PRIMARY KEY, product_id INTEGER NOT NULL REFERENCES products(id),
            order_id INTEGER REFERENCES orders(id), delta INTEGER NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL);
        CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        CREATE INDEX orders_customer ON orders(customer_id);
        CREATE INDEX orders_placed ON orders(placed_at);
        CREATE INDEX order_items_order ON order_items(order_id);
        CREATE INDEX payments_order ON payments(order_id);
        CREATE INDEX shipments_order ON shipments(order_id);
        CREATE INDEX inventory_product ON inventory_movements(product_id, at);
        CREATE INDEX shifts_employee ON shifts(employee_id, starts_at);
        """

    public struct Options: Sendable {
        public var orders: Int
        public var seed: UInt64
        /// Orders are spread over `days` days ending at `now`.
        public var days: Int
        public var now: Date
        public var walMode: Bool
        public init(orders: Int = 10_000, seed: UInt64 = 42, days: Int = 90,
                    now: Date = Date(timeIntervalSince1970: 1_795_780_800), walMode: Bool = true) {
            self.orders = orders; self.seed = seed; self.days = days; self.now = now; self.walMode = walMode
        }
    }

    static let cities = ["Shanghai", "Beijing", "Shenzhen", "Hangzhou", "Chengdu", "Wuhan", "Nanjing", "Xi'an", "Suzhou", "Tianjin"]
    static let categories = ["grocery", "electronics", "apparel", "home", "toys", "beauty", "sports", "books"]
    static let methods = ["card", "cash", "wechat", "alipay", "transfer"]
    static let carriers = ["SF Express", "JD Logistics", "ZTO", "YTO", "EMS"]
    static let statuses = ["paid", "shipped", "delivered", "delivered", "delivered", "cancelled"]
    static let firstNames = ["Wei", "Fang", "Li", "Min", "Jing", "Lei", "Yan", "Hui", "Tao", "Xin", "Anna", "Marco", "Sara", "Tom"]
    static let lastNames = ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Rossi", "Smith"]

    /// Creates the sample database at `path` (which must not exist).
    public static func create(at path: String, options: Options = Options()) throws {
        guard !DurableFile.exists(path) else { throw SourceError.notADatabase(path, why: "refusing to overwrite an existing file") }
        let db = try Database(path: path, mode: .readWriteCreate)
        try db.execute("PRAGMA journal_mode=\(options.walMode ? "WAL" : "DELETE"); PRAGMA synchronous=OFF")
        try db.execute(schema)
        var rng = SeededRandom(seed: options.seed)
        let customers = max(10, options.orders / 5)
        let products = max(20, min(5_000, options.orders / 20))
        let employees = max(5, min(200, options.orders / 500))
        let start = options.now.addingTimeInterval(-Double(options.days) * 86_400)
        try db.transaction {
            let addCustomer = try db.prepare("INSERT INTO customers VALUES (?,?,?,?,?,?)")
            for id in 1...customers {
                let name = "\(firstNames.randomElement(using: &rng)!) \(lastNames.randomElement(using: &rng)!)"
                let city = cities.randomElement(using: &rng)!
                try addCustomer.execute([.integer(Int64(id)), .text(name), .text("customer\(id)@example.com"), .text(city),
                                         .text("\(Int.random(in: 1...999, using: &rng)) \(lastNames.randomElement(using: &rng)!) Road, \(city)"),
                                         .text(ISO8601.string(start.addingTimeInterval(-Double.random(in: 0...3e7, using: &rng))))])
            }
            let addProduct = try db.prepare("INSERT INTO products VALUES (?,?,?,?,?,?)")
            for id in 1...products {
                let category = categories.randomElement(using: &rng)!
                try addProduct.execute([.integer(Int64(id)), .text(String(format: "SKU-%06d", id)),
                                        .text("\(category.capitalized) item \(id)"), .text(category),
                                        .integer(Int64.random(in: 99...99_999, using: &rng)),
                                        .integer(Int64.random(in: 0...5_000, using: &rng))])
            }
            let addEmployee = try db.prepare("INSERT INTO employees VALUES (?,?,?,?)")
            let addShift = try db.prepare("INSERT INTO shifts (employee_id, starts_at, ends_at) VALUES (?,?,?)")
            for id in 1...employees {
                try addEmployee.execute([.integer(Int64(id)),
                                         .text("\(firstNames.randomElement(using: &rng)!) \(lastNames.randomElement(using: &rng)!)"),
                                         .text(["cashier", "picker", "driver", "manager", "support"].randomElement(using: &rng)!),
                                         .text(ISO8601.string(start.addingTimeInterval(-Double.random(in: 0...1e8, using: &rng))))])
                for day in stride(from: 0, to: options.days, by: 2) {
                    let begins = start.addingTimeInterval(Double(day) * 86_400 + Double(Int.random(in: 6...14, using: &rng)) * 3_600)
                    try addShift.execute([.integer(Int64(id)), .text(ISO8601.string(begins)),
                                          .text(ISO8601.string(begins.addingTimeInterval(8 * 3_600)))])
                }
            }
            try db.run("INSERT INTO settings VALUES ('store_name', 'Sample BOS'), ('currency', 'CNY'), ('schema', '1')")
            var writer = try OrderWriter(db: db, customers: customers, products: products, employees: employees)
            let span = options.now.timeIntervalSince(start)
            for index in 0..<options.orders {
                // Orders in time order, so order ids grow with placed_at like a real system's.
                let at = start.addingTimeInterval(span * Double(index) / Double(max(1, options.orders)))
                try writer.addOrder(at: at, rng: &rng)
            }
        }
        try db.execute("PRAGMA optimize")
    }

    /// Adds `count` new orders (with items, payments, shipments) at `at`, one
    /// transaction per order as a BOS would; used by tests and the demo to
    /// simulate a busy day.
    public static func addOrders(to path: String, count: Int, at: Date, seed: UInt64,
                                 committed: ((_ id: Int64, _ seconds: Double) -> Bool)? = nil) throws -> [Int64] {
        let db = try Database(path: path, mode: .readWrite, busyTimeoutMs: 30_000)
        try db.execute("PRAGMA foreign_keys = ON")
        var rng = SeededRandom(seed: seed)
        var writer = try OrderWriter(db: db)
        var ids: [Int64] = []
        for _ in 0..<count {
            let start = Date()
            let id = try db.transaction { try writer.addOrder(at: at, rng: &rng) }
            ids.append(id)
            // The time one order takes to commit: what a cashier waits for. False: stop.
            if committed?(id, Date().timeIntervalSince(start)) == false { break }
        }
        return ids
    }
}

/// Inserts one order and everything that goes with it.
struct OrderWriter {
    let db: Database
    let customers: Int
    let products: Int
    let employees: Int
    let order, item, payment, shipment, movement: Statement

    init(db: Database, customers: Int? = nil, products: Int? = nil, employees: Int? = nil) throws {
        self.db = db
        self.customers = try customers ?? Int(db.int("SELECT max(id) FROM customers"))
        self.products = try products ?? Int(db.int("SELECT max(id) FROM products"))
        self.employees = try employees ?? Int(db.int("SELECT max(id) FROM employees"))
        order = try db.prepare("INSERT INTO orders (customer_id, employee_id, placed_at, status, total_cents, note) VALUES (?,?,?,?,?,?)")
        item = try db.prepare("INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents) VALUES (?,?,?,?)")
        payment = try db.prepare("INSERT INTO payments (order_id, method, amount_cents, paid_at, reference) VALUES (?,?,?,?,?)")
        shipment = try db.prepare("INSERT INTO shipments (order_id, carrier, tracking, shipped_at, delivered_at) VALUES (?,?,?,?,?)")
        movement = try db.prepare("INSERT INTO inventory_movements (product_id, order_id, delta, reason, at) VALUES (?,?,?,?,?)")
    }

    @discardableResult
    mutating func addOrder(at: Date, rng: inout SeededRandom) throws -> Int64 {
        let when = ISO8601.string(at)
        let status = SampleBOS.statuses.randomElement(using: &rng)!
        let lines = Int.random(in: 1...5, using: &rng)
        var picks: [(product: Int64, quantity: Int64, price: Int64)] = []
        for _ in 0..<lines {
            picks.append((Int64.random(in: 1...Int64(products), using: &rng), Int64.random(in: 1...4, using: &rng),
                          Int64.random(in: 99...49_999, using: &rng)))
        }
        let total = picks.reduce(0) { $0 + $1.quantity * $1.price }
        let note: SQLValue = Int.random(in: 0..<4, using: &rng) == 0 ? .text("Deliver after 18:00, call ahead; gate code \(Int.random(in: 1000...9999, using: &rng))") : .null
        try order.execute([.integer(Int64.random(in: 1...Int64(customers), using: &rng)),
                           .integer(Int64.random(in: 1...Int64(employees), using: &rng)), .text(when), .text(status),
                           .integer(total), note])
        let orderID = db.lastInsertRowID
        for pick in picks {
            try item.execute([.integer(orderID), .integer(pick.product), .integer(pick.quantity), .integer(pick.price)])
            try movement.execute([.integer(pick.product), .integer(orderID), .integer(-pick.quantity), .text("sale"), .text(when)])
        }
        if status != "cancelled" {
            try payment.execute([.integer(orderID), .text(SampleBOS.methods.randomElement(using: &rng)!), .integer(total), .text(when),
                                 .text(String(format: "PAY-%016llx", rng.next()))])
        }
        if status == "shipped" || status == "delivered" {
            let shipped = at.addingTimeInterval(Double.random(in: 3_600...172_800, using: &rng))
            try shipment.execute([.integer(orderID), .text(SampleBOS.carriers.randomElement(using: &rng)!),
                                  .text(String(format: "TRK%012llu", rng.next() % 1_000_000_000_000)), .text(ISO8601.string(shipped)),
                                  status == "delivered" ? .text(ISO8601.string(shipped.addingTimeInterval(86_400))) : .null])
        }
        return orderID
    }
}
