import BOSBackup
import Foundation
import XCTest

/// A fresh folder per test, removed when the test finishes.
///
/// Not by `deinit` alone: XCTest keeps every test case object, and so its `dir`, alive
/// until the process ends, and the process ends without releasing them. Each `make test`
/// left thousands of folders (tens of GB) in /tmp, and a full disk failed a CI run.
final class TempDir {
    let path: String
    init(removedBy folders: TestFolders = .shared) {
        path = NSTemporaryDirectory() + "bosbackup-test-\(getpid())-" + UUID().uuidString.prefix(8)
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        folders.adopt(path)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
}

/// Removes the folders tests make: those made during a test when it finishes, the rest
/// (made before the first test, or in a class's set-up) when the test bundle finishes.
final class TestFolders: NSObject, XCTestObservation {
    static let shared: TestFolders = {
        let folders = TestFolders()
        XCTestObservationCenter.shared.addTestObserver(folders)
        return folders
    }()

    private let lock = NSLock()
    /// Not known until the next test starts (registered late, in a test's set-up or in
    /// building the suite): folders made until then are the bundle's, never removed early.
    private var testRunning = false
    private var ofTheTest: [String] = []
    private var ofTheBundle: [String] = []

    func adopt(_ path: String, untilTheBundleEnds: Bool = false) {
        lock.withLock {
            if testRunning && !untilTheBundleEnds { ofTheTest.append(path) } else { ofTheBundle.append(path) }
        }
    }

    /// The folders a finished test leaves to be removed, and no test running until the next starts.
    func takeTheTestsFolders() -> [String] {
        lock.withLock {
            defer { ofTheTest = []; testRunning = false }
            return ofTheTest
        }
    }

    func testCaseWillStart(_ testCase: XCTestCase) { lock.withLock { testRunning = true } }
    func testCaseDidFinish(_ testCase: XCTestCase) { Self.remove(takeTheTestsFolders()) }
    func testBundleDidFinish(_ testBundle: Bundle) {
        Self.remove(takeTheTestsFolders() + lock.withLock { defer { ofTheBundle = [] }; return ofTheBundle })
    }

    /// Tried again while it fails: a file can vanish under the walk (SQLite deleting a `-wal`
    /// as a connection closes), and the walk stops at the first error.
    static func remove(_ paths: [String]) {
        for path in paths {
            for attempt in 1...3 {
                do {
                    try FileManager.default.removeItem(atPath: path)
                    break
                } catch {
                    guard FileManager.default.fileExists(atPath: path) else { break }
                    if attempt == 3 { FileHandle.standardError.write(Data("test folder \(path) not removed: \(error)\n".utf8)) }
                }
            }
        }
    }
}

/// A count several threads read and change.
final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func add() { lock.withLock { count += 1 } }
    func set(_ value: Int) { lock.withLock { count = value } }
}

enum Fixtures {
    /// Sample databases are slow to build in debug mode: build each size once
    /// per test process and copy it.
    nonisolated(unsafe) static var cache: [String: String] = [:]
    static let cacheDir = NSTemporaryDirectory() + "bosbackup-fixtures-\(getpid())"

    static func sampleDatabase(at path: String, orders: Int = 2_000, wal: Bool = true, seed: UInt64 = 42) throws {
        let key = "\(orders)-\(wal)-\(seed)"
        if cache[key] == nil {
            if cache.isEmpty { TestFolders.shared.adopt(cacheDir, untilTheBundleEnds: true) }
            try FileManager.default.createDirectory(atPath: cacheDir, withIntermediateDirectories: true)
            let master = cacheDir + "/\(key).db"
            try? FileManager.default.removeItem(atPath: master)
            try SampleBOS.create(at: master, options: .init(orders: orders, seed: seed, walMode: wal))
            cache[key] = master
        }
        try FileManager.default.copyItem(atPath: cache[key]!, toPath: path)
    }

    static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The `bosbackup` binary built beside the test bundle.
    static var binary: String {
        if let env = ProcessInfo.processInfo.environment["BOSBACKUP_BIN"] { return env }
        let here = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [here, here.deletingLastPathComponent(), URL(fileURLWithPath: repoRoot + "/.build/debug")] {
            let path = candidate.appendingPathComponent("bosbackup").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return repoRoot + "/.build/debug/bosbackup"
    }
}

/// The result of running a real child process.
struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// A real child process whose stdout and stderr are collected while it runs.
final class ChildProcess {
    private let process: Process
    private let executable: String
    private let group = DispatchGroup()
    private final class Box: @unchecked Sendable { var data = Data() }
    private let outData = Box(), errData = Box()

    init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws {
        self.executable = executable
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes concurrently so a chatty child never blocks on a full pipe.
        let outData = self.outData, errData = self.errData
        group.enter(); DispatchQueue.global().async { [group] in outData.data = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter(); DispatchQueue.global().async { [group] in errData.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    }

    var isRunning: Bool { process.isRunning }
    var pid: Int32 { process.processIdentifier }

    /// Waits for the child to exit (it is terminated, and this throws, after `timeout` seconds).
    func wait(timeout: TimeInterval = 300) throws -> ProcessResult {
        if group.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            throw NSError(domain: "test", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(executable) timed out after \(Int(timeout)) s"])
        }
        process.waitUntilExit()
        return ProcessResult(status: process.terminationStatus, stdout: String(decoding: outData.data, as: UTF8.self),
                             stderr: String(decoding: errData.data, as: UTF8.self))
    }
}

/// Runs the real bosbackup binary (or another program) and waits for it.
@discardableResult
func runProcess(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                timeout: TimeInterval = 300) throws -> ProcessResult {
    try ChildProcess(executable, arguments, environment: environment).wait(timeout: timeout)
}

func bosbackup(_ arguments: String..., environment: [String: String]? = nil) throws -> ProcessResult {
    try runProcess(Fixtures.binary, arguments, environment: environment)
}

func bosbackup(_ arguments: [String], environment: [String: String]? = nil) throws -> ProcessResult {
    try runProcess(Fixtures.binary, arguments, environment: environment)
}

func jsonObject(_ text: String) throws -> [String: Any] {
    try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not JSON: \(text)")
}

func fileMode(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions]) as? Int) ?? -1
}

/// Runs an async body synchronously in XCTest (keeps tests plain functions).
func runAsync<T>(_ body: @escaping () async throws -> T) throws -> T {
    var result: Result<T, Error>!
    let done = DispatchSemaphore(value: 0)
    Task {
        do { result = .success(try await body()) } catch { result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try result.get()
}

extension Fixtures {
    /// Overwrites the header of the last page of `employees` (a table without
    /// indexes, so `count(*)` must read it): the file still opens, SQLite
    /// reports the table malformed. Returns the page number.
    /// Adds `count` random (incompressible) blobs of 256 KiB in a table
    /// `attachments`: pages whose changes a test controls row by row.
    static func addAttachments(to db: Database, count: Int) throws {
        try db.execute("""
            CREATE TABLE attachments(id INTEGER PRIMARY KEY, body BLOB);
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(count))
            INSERT INTO attachments(body) SELECT randomblob(262144) FROM n;
            """)
    }

    @discardableResult
    static func breakEmployeesPage(_ path: String) throws -> Int64 {
        let page = try Database(path: path, mode: .readOnly)
            .int("SELECT pageno FROM dbstat WHERE name = 'employees' ORDER BY pageno DESC LIMIT 1")
        let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: UInt64((Int(page) - 1) * 4096))
        try handle.write(contentsOf: Data(repeating: 0xff, count: 12))
        try handle.close()
        return page
    }
}

/// `bosbackup daemon` started, and its stderr read until it says it sleeps
/// (bounded: the pipe closes if it dies). The caller stops it.
func startDaemonUntilSleeping(config: String) throws -> (daemon: Process, stderr: Pipe, log: String) {
    let daemon = Process()
    daemon.executableURL = URL(fileURLWithPath: Fixtures.binary)
    daemon.arguments = ["daemon", "--config", config]
    let err = Pipe()
    daemon.standardError = err
    daemon.standardOutput = FileHandle.nullDevice
    try daemon.run()
    var log = ""
    while !log.contains("sleeping until") {
        let chunk = err.fileHandleForReading.availableData
        if chunk.isEmpty { break }
        log += String(decoding: chunk, as: UTF8.self)
    }
    return (daemon, err, log)
}
