import Crypto
import Foundation

/// One row of the audit trail as stored.
public struct AuditRow: Equatable, Sendable {
    public var id: Int64
    /// Unix seconds as stored (a Date would not give back the same bits).
    public var unixTime: Double
    public var at: Date { Date(timeIntervalSince1970: unixTime) }
    public var actor: String
    public var action: String
    public var snapshotID: String?
    public var detail: String
    /// The SHA-256 of the row before (for the first row: of the trail's name).
    public var previousSHA256: String?
    public var sha256: String?
}

/// The audit trail as a hash chain (docs/DESIGN.md "The audit trail"): each
/// row's SHA-256 covers its fields and the SHA-256 of the row before, so an
/// edited, removed or reordered row breaks every link after it. What the chain
/// cannot show alone, that its newest rows were cut off or the whole chain was
/// recomputed, the signed seals on the targets show (`AuditSeal`).
public enum AuditChain {
    /// The predecessor of a trail's first row: ties the chain to its name, so
    /// the rows of another trail do not verify as this one.
    public static func genesis(trail: String) -> String {
        SHA256.hash(data: Data(("bosbackup audit trail " + trail).utf8)).hex
    }

    /// The SHA-256 of a row: its fields, length-prefixed (no separator can be
    /// forged inside a field), and the previous row's hash. The time is hashed
    /// as the bits of the stored REAL, which SQLite keeps exactly.
    public static func hash(of row: AuditRow, previous: String) -> String {
        var hasher = SHA256()
        func field(_ text: String) {
            let bytes = Array(text.utf8)
            withUnsafeBytes(of: UInt32(bytes.count).littleEndian) { hasher.update(bufferPointer: $0) }
            hasher.update(data: bytes)
        }
        field("bosbackup audit row v1")
        field(String(row.id))
        field(String(row.unixTime.bitPattern, radix: 16))
        field(row.actor)
        field(row.action)
        field(row.snapshotID.map { "1" + $0 } ?? "0")
        field(row.detail)
        field(previous)
        return hasher.finalize().hex
    }

    /// Appends a row to the chain, in one write transaction of its own (or of
    /// the caller's, when one is open): the head is read and the row written
    /// with no other writer between. With `synchronous=FULL` the commit is on
    /// disk when this returns.
    static func append(_ db: Database, at: Date, actor: String, action: String, snapshotID: String?, detail: String) throws -> AuditRow {
        func insert() throws -> AuditRow {
            let head = try db.rows("SELECT id, sha256 FROM audit ORDER BY id DESC LIMIT 1").first
            let previous = try head.map { $0[1].string ?? "" } ?? genesis(trail: trailID(db))
            var row = AuditRow(id: (head?[0].int ?? 0) + 1, unixTime: at.timeIntervalSince1970, actor: actor, action: action, snapshotID: snapshotID,
                               detail: detail, previousSHA256: previous)
            row.sha256 = hash(of: row, previous: previous)
            try db.run("INSERT INTO audit (id, at, actor, action, snapshot_id, detail, prev_sha256, sha256) VALUES (?,?,?,?,?,?,?,?)",
                       .integer(row.id), .real(row.unixTime), .text(actor), .text(action), SQLValue(snapshotID),
                       .text(detail), .text(previous), SQLValue(row.sha256))
            return row
        }
        return db.inTransaction ? try insert() : try db.transaction("IMMEDIATE", insert)
    }

    /// The trail's name (made at the migration that started the chain).
    static func trailID(_ db: Database) throws -> String {
        guard let id = try db.scalar("SELECT id FROM audit_trail LIMIT 1")?.string else {
            throw CatalogError.unreadable(path: db.path, why: "its audit trail has no name (table audit_trail is empty)")
        }
        return id
    }

    /// Chains rows written before the chain existed (a catalog just upgraded),
    /// in id order. From then on the chain vouches for them; it cannot say what
    /// they were before.
    static func chainUnchained(_ db: Database) throws {
        let unchained = try db.int("SELECT count(*) FROM audit WHERE sha256 IS NULL")
        guard unchained > 0 else { return }
        var previous = genesis(trail: try trailID(db))
        for var row in try rows(db) {
            if let stored = row.sha256 { previous = stored; continue }
            let sha = hash(of: row, previous: previous)
            try db.run("UPDATE audit SET prev_sha256 = ?, sha256 = ? WHERE id = ?", .text(previous), .text(sha), .integer(row.id))
            row.sha256 = sha
            previous = sha
        }
    }

    static func rows(_ db: Database, after id: Int64 = 0, newestFirst: Bool = false, limit: Int? = nil) throws -> [AuditRow] {
        let order = newestFirst ? "DESC" : "ASC"
        let cap = limit.map { " LIMIT \($0)" } ?? ""
        return try db.rows("SELECT id, at, actor, action, snapshot_id, detail, prev_sha256, sha256 FROM audit WHERE id > ? ORDER BY id \(order)\(cap)",
                           .integer(id)).map {
            AuditRow(id: $0[0].int ?? 0, unixTime: $0[1].double ?? 0, actor: $0[2].string ?? "",
                     action: $0[3].string ?? "", snapshotID: $0[4].string, detail: $0[5].string ?? "",
                     previousSHA256: $0[6].string, sha256: $0[7].string)
        }
    }
}
