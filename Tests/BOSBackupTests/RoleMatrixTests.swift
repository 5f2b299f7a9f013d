@testable import BOSBackup
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Issue #17, part 1: every command of the table in docs/DESIGN.md ("Roles")
/// run by a real Unix user of each role, made by this test: auditors
/// directly, operators and admins through sudo to the account that owns the
/// catalog (root here), as they are meant to run. A denial exits 2, changes
/// nothing, and is audited; everything else gets past the role check.
final class RoleMatrixTests: XCTestCase {
    struct Account { let user: String; let group: String }
    var accounts: [Role: Account] = [:]
    var stranger: Account!
    var sudoers = ""
    var bos: Database?
    var dir: TempDir!
    var config: String { dir.file("bos.yml") }
    var live: String { dir.file("live.db") }

    override func setUpWithError() throws {
        // A failure, not a skip: make test runs as root (CI does), and a matrix not run is not a pass.
        guard getuid() == 0 else { throw NSError(domain: "RoleMatrixTests", code: 1, userInfo: [NSLocalizedDescriptionKey:
            "the role matrix makes real Unix users and runs bosbackup as them: run it as root"]) }
        let suffix = String(UUID().uuidString.prefix(6)).lowercased()
        for (role, short) in [(Role.admin, "adm"), (.operator, "ops"), (.auditor, "aud")] {
            accounts[role] = try makeAccount("bbt\(short)\(suffix)")
        }
        stranger = try makeAccount("bbtnone\(suffix)")
        sudoers = "/etc/sudoers.d/bosbackup-test-\(suffix)"
        let allowed = [accounts[.admin]!.user, accounts[.operator]!.user].joined(separator: ",")
        try "\(allowed) ALL=(root) NOPASSWD: \(Fixtures.binary)\n".write(toFile: sudoers, atomically: true, encoding: .utf8)
        chmod(sudoers, 0o440)

        dir = TempDir()
        chmod(dir.path, 0o755)
        try Fixtures.sampleDatabase(at: live, orders: 200)
        try """
            timezone: UTC
            host: store-1
            source: { database: live.db }
            catalog: state/catalog.db
            scratch: state/scratch
            targets:
              nas: { url: nas }
            jobs:
              nightly: { target: nas, cron: "0 22 * * *", retention: { keep_last: 1 } }
            archive:
              bos: { targets: { nas: 1s } }
            notify: { command: "true" }
            roles:
              admin:    [group:\(accounts[.admin]!.group)]
              operator: [group:\(accounts[.operator]!.group)]
              auditor:  [group:\(accounts[.auditor]!.group)]
            """.write(toFile: config, atomically: true, encoding: .utf8)
        chmod(config, 0o644)
        for arguments in [["backup", "--job", "nightly"], ["archive", "--once"]] {
            let result = try bosbackup(arguments + ["--config", config])
            XCTAssertEqual(result.status, 0, "\(arguments): \(result.stderr)")
        }
        // The archive starts at the first commit after its base: one change, archived, for `timeline`
        // and the drill. The BOS holds its database open (its last close would checkpoint the WAL away).
        let bos = try Database(path: live)
        self.bos = bos
        try bos.execute("UPDATE orders SET note = 'role matrix' WHERE id = 1")
        for arguments in [["archive", "--once"], ["audit", "seal"]] {
            let result = try bosbackup(arguments + ["--config", config])
            XCTAssertEqual(result.status, 0, "\(arguments): \(result.stderr)")
        }
    }

    override func tearDown() {
        bos = nil
        for account in accounts.values + [stranger].compactMap({ $0 }) {
            _ = try? runProcess("/usr/sbin/userdel", [account.user])
            _ = try? runProcess("/usr/sbin/groupdel", [account.group])
        }
        if !sudoers.isEmpty { unlink(sudoers) }
    }

    func makeAccount(_ name: String) throws -> Account {
        XCTAssertEqual(try runProcess("/usr/sbin/groupadd", [name]).status, 0)
        let made = try runProcess("/usr/sbin/useradd", ["-M", "-N", "-g", name, "-s", "/usr/sbin/nologin", name])
        XCTAssertEqual(made.status, 0, made.stderr)
        return Account(user: name, group: name)
    }

    /// The table in docs/DESIGN.md between the role-matrix markers: command → roles allowed.
    static func documentedMatrix() throws -> [(command: String, allowed: Set<Role>)] {
        let design = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/DESIGN.md").path
        let text = try String(contentsOfFile: design, encoding: .utf8)
        let table = try XCTUnwrap(text.components(separatedBy: "<!-- role-matrix -->").dropFirst().first?
            .components(separatedBy: "<!-- /role-matrix -->").first, "docs/DESIGN.md has no role-matrix table")
        return table.split(separator: "\n").dropFirst(2).map { line in
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            let allowed = Set(zip([Role.auditor, .operator, .admin], cells.dropFirst()).filter { $0.1 == "yes" }.map(\.0))
            return (cells[0], allowed)
        }
    }

    /// How the test runs each documented command (a row it cannot run fails the test).
    func arguments(for command: String, as role: Role) throws -> [String] {
        let latest = try XCTUnwrap(try Catalog(path: dir.file("state/catalog.db")).latest(1).first, "no snapshot left").id
        let p = ["--config", config]
        let commands: [String: [String]] = [
            "`status`": ["status"] + p, "`snapshots`": ["snapshots"] + p, "`schedule show`": ["schedule", "show"] + p,
            "`audit list`": ["audit", "list"] + p, "`audit verify`": ["audit", "verify"] + p,
            "`run --dry-run`": ["run", "--dry-run"] + p, "`prune --dry-run`": ["prune", "--dry-run"] + p,
            "`check`": ["check"] + p, "`backup`": ["backup", "--job", "nightly"] + p, "`run`": ["run"] + p,
            "`archive --once`": ["archive", "--once"] + p, "`verify`": ["verify", "--latest", "1"] + p,
            "`verify --chain`": ["verify", "--chain"] + p, "`drill`": ["drill"] + p,
            "`restore --live` (triage into scratch)": ["restore", "--latest", "1", "--live", live] + p,
            "`restore --into` (inside scratch)": ["restore", "--snapshot", latest, "--into", dir.file("state/scratch/copy-\(role).db")] + p,
            "`diff`": ["diff", "--snapshot", latest, "--live", live] + p,
            "`timeline`": ["timeline", "--table", "orders", "--key", "1"] + p,
            "`recover --sql`": ["recover", "--snapshot", latest, "--live", live, "--table", "orders", "--sql", dir.file("review-\(role).sql")] + p,
            "`audit seal`": ["audit", "seal"] + p, "`scratch clean`": ["scratch", "clean"] + p,
            "`notify`": ["notify", "--event", "test"] + p, "`daemon`": ["daemon"] + p,
            "`restore --into` (outside scratch)": ["restore", "--snapshot", latest, "--into", dir.file("restored-\(role).db")] + p,
            "`recover --apply`": ["recover", "--snapshot", latest, "--live", live, "--table", "orders", "--apply"] + p,
            "`prune`": ["prune"] + p, "`key generate`": ["key", "generate", dir.file("key-\(role).key")] + p,
            "`catalog rebuild`": ["catalog", "rebuild", "--target", "nas"] + p,
            "`schedule install --write`": ["schedule", "install", "--crontab", "--write", try folder("cron-\(role)")] + p,
        ]
        return try XCTUnwrap(commands[command], "docs/DESIGN.md names \(command), which this test does not know how to run")
    }

    func folder(_ name: String) throws -> String {
        try FileManager.default.createDirectory(atPath: dir.file(name), withIntermediateDirectories: true)
        return dir.file(name)
    }

    /// Runs bosbackup as `account`: directly, or through sudo to root (the catalog's owner).
    /// The daemon never ends by itself: it gets 5 s to be denied (which takes milliseconds).
    func run(_ arguments: [String], as account: Account, sudo: Bool, daemon: Bool) throws -> ProcessResult {
        let identity = ["--reuid=\(account.user)", "--regid=\(account.group)", "--init-groups"]
        let command = identity + (sudo ? ["/usr/bin/sudo", "-n", Fixtures.binary] : [Fixtures.binary]) + arguments
        return daemon ? try runProcess("/usr/bin/timeout", ["5", "/usr/bin/setpriv"] + command)
                      : try runProcess("/usr/bin/setpriv", command)
    }

    func state() throws -> (objects: [String], snapshots: [String], orders: Int64) {
        (try FileManager.default.subpathsOfDirectory(atPath: dir.file("nas")).sorted(),
         try Catalog(path: dir.file("state/catalog.db")).latest(100).map(\.id),
         try Database(path: live).int("SELECT count(*) FROM orders"))
    }

    func testEveryCommandAsEveryRoleMatchesTheTableInTheDocs() throws {
        let matrix = try Self.documentedMatrix()
        XCTAssertGreaterThanOrEqual(matrix.count, 29, "the documented table lost rows")
        var denials = 0
        for role in [Role.auditor, .operator, .admin] {
            let account = accounts[role]!
            for (command, allowed) in matrix {
                let arguments = try arguments(for: command, as: role)
                let before = try state()
                let result = try run(arguments, as: account, sudo: role != .auditor, daemon: command == "`daemon`")
                let said = "\(role) \(command): exit \(result.status) \(result.stdout.suffix(300)) \(result.stderr.suffix(500))"
                if allowed.contains(role) {
                    XCTAssertFalse(result.stderr.contains("denied:"), said)
                    XCTAssertNotEqual(result.status, 2, said)
                } else {
                    denials += 1
                    XCTAssertEqual(result.status, 2, said)
                    XCTAssertTrue(result.stderr.contains("denied: \(account.user) (\(role)) may not"), said)
                    let after = try state()
                    XCTAssertEqual(after.objects, before.objects, "denied \(command) changed the target")
                    XCTAssertEqual(after.snapshots, before.snapshots, "denied \(command) changed the catalog")
                    XCTAssertEqual(after.orders, before.orders, "denied \(command) changed the live database")
                }
            }
        }
        XCTAssertGreaterThan(denials, 20)
        // The operator's denials (through sudo, as root) are on the trail; the auditor's go to the system log.
        let trail = try Catalog(path: dir.file("state/catalog.db")).auditTrail(limit: 10_000)
        let operatorDenials = trail.filter { $0.action == "denied" && $0.detail.contains(accounts[.operator]!.user) }
        XCTAssertEqual(operatorDenials.count, matrix.filter { !$0.allowed.contains(.operator) }.count)
        XCTAssertTrue(trail.contains { $0.action == "prune" }, "the admin's prune is on the trail")
    }

    /// Auditors read the catalog and reports directly (group-readable), and no key.
    func testAuditorsReadTheCatalogButNoKeyAndStrangersNothing() throws {
        let auditor = accounts[.auditor]!
        let snapshots = try run(["snapshots", "--config", config], as: auditor, sudo: false, daemon: false)
        XCTAssertEqual(snapshots.status, 0, snapshots.stdout + snapshots.stderr)
        XCTAssertTrue(snapshots.stdout.contains("nightly"), snapshots.stdout)
        let drill = try bosbackup("drill", "--config", config)
        XCTAssertEqual(drill.status, 0, drill.stderr)
        let reports = try FileManager.default.contentsOfDirectory(atPath: dir.file("state/drills")).filter { $0.hasSuffix(".md") }
        let report = try XCTUnwrap(reports.first)
        let cat = try runProcess("/usr/bin/setpriv", ["--reuid=\(auditor.user)", "--regid=\(auditor.group)", "--init-groups",
                                                      "/bin/cat", dir.file("state/drills/" + report)])
        XCTAssertEqual(cat.status, 0, "the auditor reads the drill report: \(cat.stderr)")
        XCTAssertEqual(try bosbackup("audit", "seal", "--config", config).status, 0)
        let key = try runProcess("/usr/bin/setpriv", ["--reuid=\(auditor.user)", "--regid=\(auditor.group)", "--init-groups",
                                                      "/bin/cat", dir.file(AuditSealKey.privateFileName)])
        XCTAssertNotEqual(key.status, 0, "the seal key is the admin's alone")
        XCTAssertEqual(fileMode(dir.file("state/catalog.db")), 0o640)
        let none = try run(["status", "--config", config], as: stranger, sudo: false, daemon: false)
        XCTAssertEqual(none.status, 2, none.stderr)
        XCTAssertTrue(none.stderr.contains("(no role) may not status"), none.stderr)
    }
}
