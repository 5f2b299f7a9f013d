import Foundation
import XCTest

@testable import BOSBackup

/// Parsing of `s3://` targets and construction of request URLs. The key/query encoding is
/// also checked against botocore's serializer in `SigV4Tests.testMatchesBotocore`.
final class S3LocationTests: XCTestCase {
    func testMinimalAWSTarget() throws {
        let location = try S3Location(parsing: "s3://bos-backup")
        XCTAssertEqual(location.bucket, "bos-backup")
        XCTAssertEqual(location.prefix, "")
        XCTAssertEqual(location.region, "us-east-1")
        XCTAssertNil(location.endpoint)
        XCTAssertEqual(location.addressing, .virtual)
        XCTAssertNil(location.credentialsFile)
        XCTAssertNil(location.profile)
        XCTAssertEqual(location.objectURL(key: "a/b").absoluteString, "https://bos-backup.s3.us-east-1.amazonaws.com/a/b")
        XCTAssertEqual(location.bucketURL().absoluteString, "https://bos-backup.s3.us-east-1.amazonaws.com/")
        XCTAssertEqual(location.serviceHost, "s3.us-east-1.amazonaws.com")
    }

    func testFullTargetWithAllParameters() throws {
        let location = try S3Location(parsing:
            "s3://bos-backup/hosts/web01/?region=eu-central-1&endpoint=http://127.0.0.1:9000&addressing=path"
            + "&credentials_file=/etc/bos/creds&profile=backup")
        XCTAssertEqual(location.bucket, "bos-backup")
        XCTAssertEqual(location.prefix, "hosts/web01")
        XCTAssertEqual(location.region, "eu-central-1")
        XCTAssertEqual(location.endpoint?.absoluteString, "http://127.0.0.1:9000")
        XCTAssertEqual(location.addressing, .path)
        XCTAssertEqual(location.credentialsFile, "/etc/bos/creds")
        XCTAssertEqual(location.profile, "backup")
        XCTAssertEqual(location.objectKey("config"), "hosts/web01/config")
        XCTAssertEqual(location.objectURL(key: location.objectKey("data/ab cd")).absoluteString,
                       "http://127.0.0.1:9000/bos-backup/hosts/web01/data/ab%20cd")
        XCTAssertEqual(location.bucketURL(query: [URLQueryItem(name: "list-type", value: "2")]).absoluteString,
                       "http://127.0.0.1:9000/bos-backup?list-type=2")
        XCTAssertEqual(location.serviceHost, "127.0.0.1:9000")
    }

    func testCustomEndpointDefaultsToPathStyle() throws {
        let location = try S3Location(parsing: "s3://bos-backup/p?endpoint=https://minio.example.test/")
        XCTAssertEqual(location.addressing, .path)
        XCTAssertEqual(location.endpoint?.absoluteString, "https://minio.example.test")
        XCTAssertEqual(location.objectURL(key: "p/k").absoluteString, "https://minio.example.test/bos-backup/p/k")
    }

    func testCustomEndpointVirtualHostWithPortAndBasePath() throws {
        let location = try S3Location(parsing: "s3://bos-backup?endpoint=https://s3.example.test:8443/storage/&addressing=virtual&region=garage")
        XCTAssertEqual(location.objectURL(key: "k").absoluteString, "https://bos-backup.s3.example.test:8443/storage/k")
        XCTAssertEqual(location.bucketURL().absoluteString, "https://bos-backup.s3.example.test:8443/storage/")
        XCTAssertEqual(location.region, "garage")
    }

    func testPathStyleOnAWSAndDottedBuckets() throws {
        let explicit = try S3Location(parsing: "s3://bos-backup?addressing=path&region=eu-west-1")
        XCTAssertEqual(explicit.objectURL(key: "k").absoluteString, "https://s3.eu-west-1.amazonaws.com/bos-backup/k")
        // Dotted names default to path-style: they do not match the *.s3 TLS wildcard.
        let dotted = try S3Location(parsing: "s3://my.backup.bucket/x")
        XCTAssertEqual(dotted.addressing, .path)
        XCTAssertEqual(dotted.objectURL(key: "x/k").absoluteString, "https://s3.us-east-1.amazonaws.com/my.backup.bucket/x/k")
        let forced = try S3Location(parsing: "s3://my.backup.bucket?addressing=virtual")
        XCTAssertEqual(forced.objectURL(key: "k").absoluteString, "https://my.backup.bucket.s3.us-east-1.amazonaws.com/k")
    }

    func testChinaPartitionHost() throws {
        let location = try S3Location(parsing: "s3://bos-backup?region=cn-north-1")
        XCTAssertEqual(location.objectURL(key: "k").absoluteString, "https://bos-backup.s3.cn-north-1.amazonaws.com.cn/k")
    }

    func testKeyEncodingPerSegment() {
        // Each segment encoded with the SigV4 rules, '/' kept; '+' and '=' and '%' encoded.
        XCTAssertEqual(S3Location.encodeKey("a b/データ/x+y=z~_.-/100%/é"),
                       "a%20b/%E3%83%87%E3%83%BC%E3%82%BF/x%2By%3Dz~_.-/100%25/%C3%A9")
        XCTAssertEqual(S3Location.encodeKey("odd/!'()*$&,;:@[]#?"), "odd/%21%27%28%29%2A%24%26%2C%3B%3A%40%5B%5D%23%3F")
        XCTAssertEqual(S3Location.encodeKey("a//b/./c/../d"), "a//b/./c/../d")
    }

    func testQueryEncoding() {
        let query = S3Location.encodeQuery([
            URLQueryItem(name: "uploads", value: nil),
            URLQueryItem(name: "uploadId", value: "a+b/c=d e"),
            URLQueryItem(name: "prefix", value: ""),
        ])
        XCTAssertEqual(query, "uploads&uploadId=a%2Bb%2Fc%3Dd%20e&prefix=")
    }

    func testURLsSignCleanly() throws {
        // The URL path is already the canonical URI, so the signer does not re-encode it.
        let location = try S3Location(parsing: "s3://bos-backup/p?endpoint=http://127.0.0.1:9000")
        let url = location.objectURL(key: "p/a b+c/データ", query: [URLQueryItem(name: "uploadId", value: "x/y+z")])
        let target = SigV4Signer.RequestTarget(url: url)
        let signer = SigV4Signer(credentials: AWSCredentials(accessKeyID: "a", secretAccessKey: "b"), region: "us-east-1")
        XCTAssertEqual(signer.canonicalURI(rawPath: target.rawPath), target.rawPath)
        XCTAssertEqual(target.rawPath, "/bos-backup/p/a%20b%2Bc/%E3%83%87%E3%83%BC%E3%82%BF")
        XCTAssertEqual(target.rawQuery, "uploadId=x%2Fy%2Bz")
        XCTAssertEqual(target.host, "127.0.0.1:9000")
    }

    func testPercentEncodedTargetValues() throws {
        let location = try S3Location(parsing: "s3://bos-backup/my%20backups?endpoint=http%3A%2F%2Fminio%3A9000&credentials_file=%2Ftmp%2Fa%20b")
        XCTAssertEqual(location.prefix, "my backups")
        XCTAssertEqual(location.endpoint?.absoluteString, "http://minio:9000")
        XCTAssertEqual(location.credentialsFile, "/tmp/a b")
        XCTAssertEqual(location.objectURL(key: location.objectKey("k")).absoluteString, "http://minio:9000/bos-backup/my%20backups/k")
    }

    func testSchemeIsCaseInsensitiveAndAddressingValueToo() throws {
        let location = try S3Location(parsing: "S3://bos-backup?addressing=PATH")
        XCTAssertEqual(location.addressing, .path)
    }

    func testDescriptionMentionsTargetButNoSecrets() throws {
        let location = try S3Location(parsing: "s3://bos-backup/p?endpoint=http://127.0.0.1:9000&profile=ci")
        XCTAssertEqual(location.description, "s3://bos-backup/p (region us-east-1, http://127.0.0.1:9000, path-style, profile ci)")
    }

    func testInvalidTargets() {
        let cases: [(String, String)] = [
            ("file:///tmp/x", "not an S3 target"),
            ("s3://", "has no bucket"),
            ("s3:///prefix", "has no bucket"),
            ("s3://ab", "3 to 63 characters"),
            ("s3://Bos-Backup", "invalid bucket name"),
            ("s3://bos_backup", "invalid bucket name"),
            ("s3://-bos", "invalid bucket name"),
            ("s3://a..b", "invalid bucket name"),
            ("s3://192.168.1.10", "IP address"),
            ("s3://bos-backup/a//b", "invalid prefix"),
            ("s3://bos-backup/a/../b", "invalid prefix"),
            ("s3://bos-backup?regoin=us-east-1", "unknown S3 target parameter 'regoin'"),
            ("s3://bos-backup?region=a&region=b", "given twice"),
            ("s3://bos-backup?region=", "has no value"),
            ("s3://bos-backup?region=us east", "invalid region"),
            ("s3://bos-backup?addressing=dns", "invalid addressing"),
            ("s3://bos-backup?endpoint=ftp://h", "invalid endpoint"),
            ("s3://bos-backup?endpoint=http://user:pw@h", "must not contain credentials"),
            ("s3://bos-backup?endpoint=http://127.0.0.1:9000&addressing=virtual", "use addressing=path"),
            ("s3://bos-backup#frag", "must not contain '#'"),
        ]
        for (target, expected) in cases {
            XCTAssertThrowsError(try S3Location(parsing: target), target) { error in
                let message = String(describing: error)
                XCTAssertTrue(message.contains(expected), "\(target): \(message)")
                XCTAssertFalse(message.contains("\n"), "\(target): message must be one line")
            }
        }
    }
}
