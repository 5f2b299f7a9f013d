/// Per-table counts side by side: what the catalog recorded, what a restore
/// holds, and (optionally) what the live database has now.
public struct RowCountDiff: Equatable, Sendable {
    public struct Row: Equatable, Sendable {
        public var table: String
        public var cataloged: Int64?
        public var restored: Int64?
        public var live: Int64?
        /// live − restored: negative when the live database lost rows.
        public var delta: Int64? {
            guard let live, let restored else { return nil }
            return live - restored
        }
    }

    public var rows: [Row]

    public init(cataloged: [String: Int64], restored: [String: Int64]?, live: [String: Int64]? = nil) {
        let names = Set(cataloged.keys).union(restored?.keys ?? [:].keys).union(live?.keys ?? [:].keys)
        rows = names.sorted().map { Row(table: $0, cataloged: cataloged[$0], restored: restored?[$0], live: live?[$0]) }
    }

    /// Tables where the restored counts differ from the catalog's.
    public var catalogMismatches: [Row] { rows.filter { $0.cataloged != $0.restored } }

    /// Tables that have fewer rows live than in the snapshot.
    public var losses: [Row] { rows.filter { ($0.delta ?? 0) < 0 } }
}
