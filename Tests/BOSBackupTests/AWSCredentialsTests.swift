import Foundation
import XCTest

@testable import BOSBackup

final class AWSCredentialsTests: XCTestCase {
    static let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    static let token = "IQoJb3JpZ2luX2VjEXAMPLE+token/with=specials=="

    var tempDir: URL!

    override func setUpWithError() throws {
        tempDir = FileManager.default.temporaryDirectory.appendingPathComponent("bos-creds-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tempDir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tempDir)
    }

    func write(_ text: String, name: String = "credentials") throws -> String {
        let url = tempDir.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        chmod(url.path, 0o600)   // as a credentials file must be
        return url.path
    }

    func assertNoSecrets(_ text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(text.contains(Self.secret), "secret leaked: \(text)", file: file, line: line)
        XCTAssertFalse(text.contains("wJalr"), "secret leaked: \(text)", file: file, line: line)
        XCTAssertFalse(text.contains(Self.token), "token leaked: \(text)", file: file, line: line)
        XCTAssertFalse(text.contains("IQoJb3"), "token leaked: \(text)", file: file, line: line)
    }

    // MARK: - Redaction

    func testDescriptionsNeverRevealSecretOrToken() {
        let credentials = AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: Self.secret,
                                         sessionToken: Self.token)
        XCTAssertEqual(credentials.description,
                       "AWSCredentials(accessKeyID: AKIA****MPLE, secretAccessKey: <redacted>, sessionToken: <redacted>)")
        XCTAssertEqual(credentials.debugDescription, credentials.description)
        var dumped = ""
        dump(credentials, to: &dumped)
        for text in ["\(credentials)", String(describing: credentials), String(reflecting: credentials),
                     dumped, "\([credentials])", "\(Optional(credentials) as Any)"] {
            assertNoSecrets(text)
            XCTAssertFalse(text.contains("AKIAIOSFODNN7EXAMPLE"), text)
        }
        XCTAssertTrue(dumped.contains("AKIA****MPLE"), dumped)
    }

    func testMaskingShortKeysAndNoToken() {
        let short = AWSCredentials(accessKeyID: "minioadmin", secretAccessKey: "minioadmin")
        XCTAssertEqual(short.maskedAccessKeyID, "****")
        XCTAssertEqual(short.description, "AWSCredentials(accessKeyID: ****, secretAccessKey: <redacted>, sessionToken: none)")
    }

    // MARK: - Environment

    func testFromEnvironment() throws {
        let credentials = try AWSCredentials.fromEnvironment([
            "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": Self.secret,
            "AWS_SESSION_TOKEN": Self.token, "UNRELATED": "x",
        ])
        XCTAssertEqual(credentials, AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: Self.secret,
                                                   sessionToken: Self.token))
        let noToken = try AWSCredentials.fromEnvironment([
            "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": Self.secret, "AWS_SESSION_TOKEN": "",
        ])
        XCTAssertNil(noToken.sessionToken)
    }

    func testFromEnvironmentErrors() {
        let cases: [([String: String], AWSCredentialsError)] = [
            ([:], .environmentNotSet),
            (["AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE"], .missingEnvironmentVariable("AWS_SECRET_ACCESS_KEY")),
            (["AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "  "],
             .missingEnvironmentVariable("AWS_SECRET_ACCESS_KEY")),
            (["AWS_SECRET_ACCESS_KEY": Self.secret, "AWS_SESSION_TOKEN": Self.token],
             .missingEnvironmentVariable("AWS_ACCESS_KEY_ID")),
        ]
        for (environment, expected) in cases {
            XCTAssertThrowsError(try AWSCredentials.fromEnvironment(environment)) { error in
                XCTAssertEqual(error as? AWSCredentialsError, expected)
                assertNoSecrets(String(describing: error))
                assertNoSecrets(error.localizedDescription)
            }
        }
        XCTAssertEqual(AWSCredentialsError.missingEnvironmentVariable("AWS_SECRET_ACCESS_KEY").description,
                       "AWS credentials: environment variable AWS_SECRET_ACCESS_KEY is not set or empty")
    }

    // MARK: - Credentials file

    static let sampleFile = """
        # comment
        ; another comment
        [default]
        aws_access_key_id = AKIADEFAULTEXAMPLE01
        aws_secret_access_key = \(secret)

        [backup]
        AWS_Access_Key_ID=AKIABACKUPEXAMPLE002
        aws_secret_access_key=\(secret)
        aws_session_token = \(token)
        region = eu-west-1
        s3 =
          max_concurrent_requests = 20

        [profile legacy]
        aws_access_key_id: AKIALEGACYEXAMPLE003
        aws_secret_access_key: \(secret)

        [incomplete]
        aws_access_key_id = AKIAINCOMPLETEEXMPL4
        """

    func testParsesProfiles() throws {
        let path = try write(Self.sampleFile)
        let defaultProfile = try AWSCredentials.fromCredentialsFile(atPath: path)
        XCTAssertEqual(defaultProfile, AWSCredentials(accessKeyID: "AKIADEFAULTEXAMPLE01", secretAccessKey: Self.secret))

        let backup = try AWSCredentials.fromCredentialsFile(atPath: path, profile: "backup")
        XCTAssertEqual(backup.accessKeyID, "AKIABACKUPEXAMPLE002")
        XCTAssertEqual(backup.sessionToken, Self.token)  // '=' inside the value survives

        let legacy = try AWSCredentials.fromCredentialsFile(atPath: path, profile: "legacy")
        XCTAssertEqual(legacy.accessKeyID, "AKIALEGACYEXAMPLE003")
        XCTAssertEqual(legacy.secretAccessKey, Self.secret)
    }

    func testCRLFLineEndings() throws {
        let text = "[default]\r\naws_access_key_id = AKIACRLFEXAMPLE00001\r\naws_secret_access_key = \(Self.secret)\r\n"
        let credentials = try AWSCredentials.fromCredentialsFileContents(text, path: "mem")
        XCTAssertEqual(credentials.accessKeyID, "AKIACRLFEXAMPLE00001")
        XCTAssertEqual(credentials.secretAccessKey, Self.secret)
    }

    func testFileErrorsAreOneLineAndSecretFree() throws {
        let path = try write(Self.sampleFile)
        let missing = tempDir.appendingPathComponent("nope").path
        let unreadable = try write("[default]\naws_access_key_id = a\naws_secret_access_key = \(Self.secret)\n", name: "locked")
        try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: unreadable)
        let notUTF8 = tempDir.appendingPathComponent("binary")
        try Data([0x5B, 0xFF, 0xFE, 0x5D]).write(to: notUTF8)
        chmod(notUTF8.path, 0o600)
        let shared = try write("[default]\naws_access_key_id = a\naws_secret_access_key = \(Self.secret)\n", name: "shared")
        chmod(shared, 0o644)

        var cases: [(String, String, AWSCredentialsError)] = [
            // A secret others can read is refused, as a key file is.
            (shared, "default", .fileUnreadable(path: shared, reason: "group or others may read it (mode 644); chmod 600 \(shared)")),
            (path, "nosuch", .profileNotFound(profile: "nosuch", path: path)),
            (path, "incomplete", .missingKey(key: "aws_secret_access_key", profile: "incomplete", path: path)),
            (missing, "default", .fileUnreadable(path: missing, reason: "no such file")),
            (tempDir.path, "default", .fileUnreadable(path: tempDir.path, reason: "is a directory")),
            (notUTF8.path, "default", .fileUnreadable(path: notUTF8.path, reason: "not valid UTF-8 text")),
        ]
        // root can read a mode-000 file, so only check permissions when they are enforced.
        if !FileManager.default.isReadableFile(atPath: unreadable) {
            cases.append((unreadable, "default", .fileUnreadable(path: unreadable, reason: "permission denied or I/O error")))
        }
        for (file, profile, expected) in cases {
            XCTAssertThrowsError(try AWSCredentials.fromCredentialsFile(atPath: file, profile: profile)) { error in
                XCTAssertEqual(error as? AWSCredentialsError, expected)
                let message = String(describing: error)
                assertNoSecrets(message)
                XCTAssertFalse(message.contains("\n"), message)
                XCTAssertTrue(message.contains(file), message)
            }
        }
        XCTAssertEqual(AWSCredentialsError.missingKey(key: "aws_secret_access_key", profile: "incomplete", path: "/p").description,
                       "AWS credentials: profile 'incomplete' in /p has no aws_secret_access_key")
    }

    // MARK: - Resolution order

    func testResolveOrder() throws {
        let home = tempDir.appendingPathComponent("home")
        try FileManager.default.createDirectory(at: home.appendingPathComponent(".aws"), withIntermediateDirectories: true)
        try Self.sampleFile.write(to: home.appendingPathComponent(".aws/credentials"), atomically: true, encoding: .utf8)
        chmod(home.appendingPathComponent(".aws/credentials").path, 0o600)
        let other = try write("[default]\naws_access_key_id = AKIAOTHERFILEEXAMPL5\naws_secret_access_key = s\n", name: "other")
        let env = ["HOME": home.path, "AWS_ACCESS_KEY_ID": "AKIAENVIRONMENTEXMP6", "AWS_SECRET_ACCESS_KEY": "s"]

        // Environment wins when the target names no file/profile.
        XCTAssertEqual(try AWSCredentials.resolve(environment: env).accessKeyID, "AKIAENVIRONMENTEXMP6")
        // A profile or file named by the target wins over the environment.
        XCTAssertEqual(try AWSCredentials.resolve(environment: env, profile: "backup").accessKeyID, "AKIABACKUPEXAMPLE002")
        XCTAssertEqual(try AWSCredentials.resolve(environment: env, credentialsFile: other).accessKeyID, "AKIAOTHERFILEEXAMPL5")
        // Otherwise the default file, with AWS_PROFILE / AWS_SHARED_CREDENTIALS_FILE honoured.
        XCTAssertEqual(try AWSCredentials.resolve(environment: ["HOME": home.path]).accessKeyID, "AKIADEFAULTEXAMPLE01")
        XCTAssertEqual(try AWSCredentials.resolve(environment: ["HOME": home.path, "AWS_PROFILE": "legacy"]).accessKeyID,
                       "AKIALEGACYEXAMPLE003")
        XCTAssertEqual(try AWSCredentials.resolve(environment: ["AWS_SHARED_CREDENTIALS_FILE": other]).accessKeyID,
                       "AKIAOTHERFILEEXAMPL5")

        XCTAssertThrowsError(try AWSCredentials.resolve(environment: ["HOME": tempDir.appendingPathComponent("empty").path])) { error in
            guard case .noCredentialsFound = error as? AWSCredentialsError else { return XCTFail("\(error)") }
            XCTAssertTrue(String(describing: error).contains("AWS_ACCESS_KEY_ID"))
        }
        XCTAssertThrowsError(try AWSCredentials.resolve(environment: ["AWS_ACCESS_KEY_ID": "AKIAONLYIDEXAMPLE007"])) { error in
            XCTAssertEqual(error as? AWSCredentialsError, .missingEnvironmentVariable("AWS_SECRET_ACCESS_KEY"))
        }
    }
}
