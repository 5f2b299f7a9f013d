@testable import BOSBackup
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `removeStaleWrites`: what unfinished writers left is removed only under the prefix asked
/// for, only when it was started before the instant given, and never while its writer (on
/// disk: another live process) may still be at work. Real folders, real processes, a real
/// moto server.
final class TargetBlobStoreCleanupTests: XCTestCase {
    var dir: TempDir!
    let key = EncryptionKey.generate()

    // Made when the test starts, so that it is removed when the test finishes (TempDir).
    override func setUp() { dir = TempDir() }

    // MARK: - S3

    /// Two hosts write under `hostA/` and `hostB/` of one bucket; each has a multipart upload
    /// in progress (more than a part written, nothing committed). Cleaning `hostB/` aborts
    /// hostB's upload alone.
    func testS3AbortsOnlyStaleUploadsUnderThePrefix() async throws {
        let moto = try MotoServer.shared()
        let bucket = try await moto.makeBucket()
        let options = S3Target.Options(partSize: S3Target.Options.minimumPartSize)
        let target = try moto.target(bucket: bucket, prefix: "prod", options: options)
        let hostA = try await startUpload(EncryptedTarget(target, key: key), key: "hostA/snap.db.gz.enc")
        let hostB = try await startUpload(target, key: "hostB/snap.db.gz")
        let uploads = try await target.multipartUploads()
        XCTAssertEqual(uploads.map(\.key).sorted(), ["prod/hostA/snap.db.gz.enc", "prod/hostB/snap.db.gz"])

        let removed = try await target.removeStaleWrites(under: "hostB/", startedBefore: Date())
        XCTAssertEqual(removed, 1)
        let left = try await target.multipartUploads()
        XCTAssertEqual(left.map(\.key), ["prod/hostA/snap.db.gz.enc"])

        // Initiated at, or after, the instant given: left alone. moto dates every upload with
        // one fixed `Initiated` (2010-11-10T20:48:33.000Z), so the instants are placed around
        // the time the server reports rather than around our clock.
        let initiated = try XCTUnwrap(left.first?.initiated, "ListMultipartUploads gives Initiated")
        let encrypted = EncryptedTarget(target, key: key)
        for startedBefore in [initiated, initiated.addingTimeInterval(-3600)] {
            let none = try await encrypted.removeStaleWrites(under: "hostA/", startedBefore: startedBefore)
            XCTAssertEqual(none, 0, "\(startedBefore)")
        }
        let still = try await target.multipartUploads()
        XCTAssertEqual(still, left)

        // "" is the whole target.
        let all = try await encrypted.removeStaleWrites(under: "", startedBefore: initiated.addingTimeInterval(0.001))
        XCTAssertEqual(all, 1)
        let none = try await target.multipartUploads()
        XCTAssertEqual(none, [])

        await hostA.abort()
        await hostB.abort()
    }

    func testS3UploadTimesAreParsed() {
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?>
            <ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <Bucket>b</Bucket><IsTruncated>false</IsTruncated>
              <Upload><Key>a</Key><UploadId>1</UploadId><Initiated>2026-12-01T22:44:57.250Z</Initiated></Upload>
              <Upload><Key>b</Key><UploadId>2</UploadId><Initiated>2026-12-01T22:44:57Z</Initiated></Upload>
              <Upload><Key>c</Key><UploadId>3</UploadId></Upload>
            </ListMultipartUploadsResult>
            """
        let page = S3XML.uploadsPage(Data(xml.utf8))
        let second = Date(timeIntervalSince1970: 1_796_165_097)
        XCTAssertEqual(page?.uploads.map(\.initiated), [second.addingTimeInterval(0.25), second, nil])
    }

    /// Writes more than one part through a new writer and leaves it open: the multipart
    /// upload exists on the server. The caller keeps the writer (a writer dropped unfinished
    /// aborts its upload) and aborts it at the end.
    func startUpload(_ target: Target, key: String) async throws -> ObjectWriter {
        let writer = try await target.makeWriter(key: key)
        try await S3TargetTests.write(S3TargetTests.bytes(S3Target.Options.minimumPartSize + 1_000), to: writer)
        return writer
    }

    // MARK: - Folder

    /// Temporary files under `hostB/`: one of a dead writer, one of a v1 writer (no pid),
    /// both old: removed. One of a live other process (`sleep 30`, old), one written after
    /// the instant given, one under `hostA/`, and objects: kept.
    func testFolderRemovesStaleTemporariesOfDeadWritersOnly() async throws {
        let folder = try FileTarget(url: "file://" + dir.file("nas"))
        try await folder.put(key: "hostA/kept.db.gz", data: Data("a".utf8))
        try await folder.put(key: "hostB/2026/kept.db.gz", data: Data("b".utf8))

        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["30"]
        try sleeper.run()
        defer {
            // SIGKILL: the test runner's children may not heed SIGTERM.
            if sleeper.isRunning { kill(sleeper.processIdentifier, SIGKILL) }
            sleeper.waitUntilExit()
        }
        let live = sleeper.processIdentifier
        let dead = try deadPID()

        let longAgo = Date().addingTimeInterval(-3600)
        let startedBefore = Date().addingTimeInterval(-60)
        let stale = [
            try temporary(folder, "hostB/2026/.snap.db.gz.tmp-\(dead)-9f3a", modified: longAgo),
            try temporary(folder, "hostB/.manifest.json.tmp-0123abcd", modified: longAgo),   // v1: no pid
        ]
        let kept = [
            try temporary(folder, "hostB/2026/.live.db.gz.tmp-\(live)-77", modified: longAgo),
            try temporary(folder, "hostB/2026/.new.db.gz.tmp-\(dead)-78", modified: Date()),
            try temporary(folder, "hostA/.snap.db.gz.tmp-\(dead)-79", modified: longAgo),
        ]
        XCTAssertEqual(Set(folder.staleTemporaryFiles()), Set(stale + kept))

        let removed = try await EncryptedTarget(folder, key: key).removeStaleWrites(under: "hostB/", startedBefore: startedBefore)
        XCTAssertEqual(removed, 2)
        XCTAssertEqual(Set(folder.staleTemporaryFiles()), Set(kept))
        let objects = try await folder.list(prefix: "")
        XCTAssertEqual(objects.map(\.key), ["hostA/kept.db.gz", "hostB/2026/kept.db.gz"])

        // Once the other process is gone, its old temporary is stale too.
        kill(live, SIGKILL)
        sleeper.waitUntilExit()
        let afterExit = try await folder.removeStaleWrites(under: "hostB/", startedBefore: startedBefore)
        XCTAssertEqual(afterExit, 1)
        XCTAssertEqual(Set(folder.staleTemporaryFiles()), Set(kept.dropFirst()))
    }

    /// A writer's temporary names its process, and a live writer of this process started
    /// after the instant given is not touched.
    func testFolderTemporaryNamesCarryThePID() async throws {
        let folder = try FileTarget(url: "file://" + dir.file("nas"))
        let startedBefore = Date().addingTimeInterval(-60)
        let writer = try await folder.makeWriter(key: "hostB/snap.db.gz")
        try await S3TargetTests.write(Data("partial".utf8), to: writer)
        let temporaries = folder.staleTemporaryFiles()
        XCTAssertEqual(temporaries.count, 1)
        let name = ((temporaries.first ?? "") as NSString).lastPathComponent
        XCTAssertTrue(name.hasPrefix(".snap.db.gz.tmp-\(getpid())-"), name)
        XCTAssertEqual(TemporaryName(parsing: name), TemporaryName(parsing: ".snap.db.gz.tmp-\(getpid())-0"))
        XCTAssertEqual(TemporaryName(parsing: name)?.finalName, "snap.db.gz")

        let removed = try await folder.removeStaleWrites(under: "", startedBefore: startedBefore)
        XCTAssertEqual(removed, 0)
        try await writer.commit()
        let got = try await folder.get(key: "hostB/snap.db.gz")
        XCTAssertEqual(got, Data("partial".utf8))
        XCTAssertEqual(folder.staleTemporaryFiles(), [])
    }

    // MARK: - Helpers

    /// Creates `relative` under the folder with the given modification time; returns its path.
    func temporary(_ folder: FileTarget, _ relative: String, modified: Date) throws -> String {
        let path = folder.path(for: relative)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data("partial".utf8)))
        let seconds = Int(modified.timeIntervalSince1970)
        var times = [timespec(tv_sec: seconds, tv_nsec: 0), timespec(tv_sec: seconds, tv_nsec: 0)]
        XCTAssertEqual(utimensat(AT_FDCWD, path, &times, 0), 0)
        return path
    }

    /// The pid of a process that has exited and been reaped.
    func deadPID() throws -> pid_t {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/true")
        try process.run()
        process.waitUntilExit()
        let pid = process.processIdentifier
        XCTAssertNotEqual(kill(pid, 0), 0, "pid \(pid) is gone")
        return pid
    }
}
