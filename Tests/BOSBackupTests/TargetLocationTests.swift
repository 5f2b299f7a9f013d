@testable import BOSBackup
import Foundation
import XCTest

/// A target is matched by where its objects live, not by how its URL is spelled.
final class TargetLocationTests: XCTestCase {
    func testEverySpellingOfOneBucketPrefixIsOneLocation() throws {
        let policy = try TargetLocation(url: "s3://bos/g?region=us-east-1&endpoint=http://127.0.0.1:9000")
        for spelling in ["s3://bos/g/?region=us-east-1&endpoint=http://127.0.0.1:9000",
                         "S3://bos/g?endpoint=http://127.0.0.1:9000&region=us-east-1",
                         "s3://bos//g?endpoint=http://127.0.0.1:9000",
                         "s3://bos/g?endpoint=HTTP://127.0.0.1:9000/",
                         "s3://bos/g?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=eu-west-1&part_size=16MiB"] {
            XCTAssertEqual(try TargetLocation(url: spelling), policy, spelling)
        }
        XCTAssertTrue(policy.contains(try TargetLocation(url: "s3://bos/g/daily?endpoint=http://127.0.0.1:9000")))
        for other in ["s3://bos/gx?endpoint=http://127.0.0.1:9000", "s3://bos?endpoint=http://127.0.0.1:9000",
                      "s3://bos2/g?endpoint=http://127.0.0.1:9000", "s3://bos/g?endpoint=http://127.0.0.1:9001", "s3://bos/g"] {
            XCTAssertFalse(policy.contains(try TargetLocation(url: other)), other)
        }
    }

    func testEverySpellingOfOneFolderIsOneLocation() throws {
        let dir = TempDir()
        try FileManager.default.createDirectory(atPath: dir.file("vault"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir.file("link"), withDestinationPath: dir.file("vault"))
        let policy = try TargetLocation(url: "file://" + dir.file("vault"))
        for spelling in ["file://\(dir.path)/vault/", "file://\(dir.path)//vault", "\(dir.path)/./vault", "\(dir.path)/a/../vault",
                         "FILE://\(dir.path)/vault", "file://\(dir.path)/link", "file://\(dir.path)/v%61ult"] {
            XCTAssertEqual(try TargetLocation(url: spelling), policy, spelling)
        }
        XCTAssertTrue(policy.contains(try TargetLocation(url: "\(dir.path)/link/not-yet/made")))
        XCTAssertFalse(policy.contains(try TargetLocation(url: "\(dir.path)/vault2")))
        XCTAssertFalse(policy.contains(try TargetLocation(url: dir.path)))
        XCTAssertThrowsError(try TargetLocation(url: "file://relative/path"))
    }
}
