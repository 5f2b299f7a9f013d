@testable import BOSBackup
import Foundation
import XCTest

/// Snapshots, manifests, catalog and key files are private whatever the
/// umask, and no secret ever reaches output.
final class PermissionsTests: XCTestCase {
    func testEverythingIsCreatedPrivateUnderAWideOpenUmask() throws {
        let dir = TempDir()
        try Fixtures.sampleDatabase(at: dir.file("live.db"), orders: 200)
        let script = """
            umask 000
            '\(Fixtures.binary)' key generate '\(dir.file("keys/cloud.key"))' >/dev/null 2>&1 || exit 9
            '\(Fixtures.binary)' backup --source '\(dir.file("live.db"))' --target 'file://\(dir.file("nas"))' --catalog '\(dir.file("state/catalog.db"))' >/dev/null
            """
        let result = try runProcess("/bin/sh", ["-c", script])
        XCTAssertEqual(result.status, 0, result.stderr)
        var checked = 0
        for root in ["nas", "state"] {
            let enumerator = FileManager.default.enumerator(atPath: dir.file(root))!
            while let relative = enumerator.nextObject() as? String {
                let path = dir.file(root + "/" + relative)
                var isDir: ObjCBool = false
                FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
                XCTAssertEqual(fileMode(path), isDir.boolValue ? 0o700 : 0o600, path)
                checked += 1
            }
        }
        XCTAssertEqual(fileMode(dir.file("keys/cloud.key")), 0o600)
        XCTAssertGreaterThan(checked, 6)
    }

    func testKeyMaterialNeverAppearsInOutput() throws {
        let dir = TempDir()
        let generated = try bosbackup("key", "generate", dir.file("k.key"))
        let keyText = try String(contentsOfFile: dir.file("k.key"), encoding: .utf8)
        let secret = String(try XCTUnwrap(keyText.split(separator: ":").last).trimmingCharacters(in: .whitespacesAndNewlines))
        XCTAssertGreaterThan(secret.count, 20)
        XCTAssertFalse(generated.stdout.contains(secret) || generated.stderr.contains(secret))
        let again = try bosbackup("key", "generate", dir.file("k.key"))
        XCTAssertEqual(again.status, 2, "never overwrites a key")
        XCTAssertFalse(again.stderr.contains(secret))
        chmod(dir.file("k.key"), 0o644)
        XCTAssertThrowsError(try EncryptionKey.load(path: dir.file("k.key"))) { error in
            XCTAssertTrue("\(error)".contains("chmod 600"), "\(error)")
            XCTAssertFalse("\(error)".contains(secret))
        }
    }
}
