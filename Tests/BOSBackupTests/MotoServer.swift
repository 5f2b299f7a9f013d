@testable import BOSBackup
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real `moto_server` (PyPI `moto[server]`) on a free 127.0.0.1 port, started once per
/// test process and killed when the process exits (an `atexit` hook; a watchdog thread in
/// the server also exits when this process goes away, so a crashed test run leaves no server).
///
/// `sharedVerifyingSignatures()` is a second server that enforces authentication: it has one
/// IAM user (allowed everything) whose access key the tests get, and it checks every SigV4
/// signature, so requests whose wire form differs from what was signed fail there. (moto's
/// own check mis-handles keys with `+`, `=` or non-ASCII characters even for botocore, so
/// odd keys are tested on the plain server.)
///
/// `startPrivate()` is a plain server of the caller's own, which it may SIGKILL (`kill()`)
/// and start again on the same port: the shared servers are never killed.
///
/// Never skips: when moto is missing, `shared()` throws an error that says how to install it.
final class MotoServer {
    let port: Int
    let logPath: String
    private let process: Process
    private let isPrivate: Bool
    var pid: pid_t { process.processIdentifier }
    /// The IAM user's key on a signature-verifying server; nil on the plain one.
    let verifiedCredentials: AWSCredentials?
    var endpoint: URL { URL(string: "http://127.0.0.1:\(port)")! }

    /// Credentials for the tests: moto accepts any; the secret is distinctive so tests can
    /// assert it never shows up in an error.
    /// The environment a bosbackup child process finds the test credentials in.
    static var environment: [String: String] {
        ["AWS_ACCESS_KEY_ID": credentials.accessKeyID, "AWS_SECRET_ACCESS_KEY": credentials.secretAccessKey,
         "AWS_SESSION_TOKEN": credentials.sessionToken!]
    }

    static let credentials = AWSCredentials(
        accessKeyID: "AKIAMOTOTESTKEY12345",
        secretAccessKey: "moto-secret-\(UUID().uuidString)-DO-NOT-PRINT",
        sessionToken: "moto-token-\(UUID().uuidString)-NEVER-SHOWN")

    private static let lock = NSLock()
    nonisolated(unsafe) private static var started: [Bool: Result<MotoServer, Error>] = [:]
    /// Every server this process started and has not killed; SIGTERMed at exit.
    nonisolated(unsafe) private static var runningPIDs: Set<pid_t> = []
    private static let pidLock = NSLock()
    private static let stopAtExit: Void = {
        atexit {
            for pid in MotoServer.runningPIDs { Glibc.kill(pid, SIGTERM) }
            MotoServer.runningPIDs = []
        }
    }()

    private static func track(_ pid: pid_t, running: Bool) {
        _ = stopAtExit
        pidLock.withLock {
            if running { runningPIDs.insert(pid) } else { runningPIDs.remove(pid) }
        }
    }

    static func shared() throws -> MotoServer { try server(verifyingSignatures: false) }
    static func sharedVerifyingSignatures() throws -> MotoServer { try server(verifyingSignatures: true) }

    private static func server(verifyingSignatures: Bool) throws -> MotoServer {
        lock.lock()
        defer { lock.unlock() }
        if started[verifyingSignatures] == nil {
            started[verifyingSignatures] = Result { try start(verifyingSignatures: verifyingSignatures) }
        }
        return try started[verifyingSignatures]!.get()
    }

    /// A plain server for one test alone, on `port` (a free one when nil): the test may kill it
    /// (`kill()`) and start another on the same port. Stopped at exit if still running.
    static func startPrivate(port: Int? = nil) throws -> MotoServer {
        try start(verifyingSignatures: false, port: port, privateTag: "private-" + UUID().uuidString.prefix(8))
    }

    /// SIGKILLs the server (no chance to close anything cleanly) and waits, bounded, until the
    /// process is gone. Only for a server from `startPrivate()`; a server already gone is left be.
    func kill() throws {
        precondition(isPrivate, "a shared moto server is never killed")
        guard process.isRunning else { return }
        Glibc.kill(pid, SIGKILL)
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        guard !process.isRunning else { throw StartError(description: "moto_server \(pid) survived SIGKILL for 10 s") }
        Self.track(pid, running: false)
    }

    private init(port: Int, process: Process, logPath: String, verifiedCredentials: AWSCredentials?, isPrivate: Bool) {
        self.port = port
        self.process = process
        self.isPrivate = isPrivate
        self.logPath = logPath
        self.verifiedCredentials = verifiedCredentials
    }

    struct StartError: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs moto's server from Python with a watchdog on our pid. Plain mode runs
    /// `moto.server.main` (what the `moto_server` script and `python3 -m moto.server` run).
    /// Verifying mode turns authentication on after three unauthenticated calls, which create
    /// the IAM user, its policy and its access key; the key is written to argv[4] (0600).
    static let launcher = """
        import json, os, sys, threading, time
        port, parent, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        def watch():
            while True:
                if os.getppid() != parent:
                    os._exit(0)
                time.sleep(0.5)
        threading.Thread(target=watch, daemon=True).start()
        if mode == "verify":
            os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
        try:
            from moto.server import main, ThreadedMotoServer
            import flask, flask_cors  # the [server] extra
            import boto3
        except ImportError as error:
            sys.stderr.write("MOTO-MISSING: %s\\n" % error)
            sys.exit(3)
        if mode != "verify":
            main(["-H", "127.0.0.1", "-p", port])
            sys.exit(0)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(port))
        server.start()
        iam = boto3.client("iam", endpoint_url="http://127.0.0.1:" + port, region_name="us-east-1",
                           aws_access_key_id="setup", aws_secret_access_key="setup")
        iam.create_user(UserName="bosbackup")
        iam.put_user_policy(UserName="bosbackup", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="bosbackup")["AccessKey"]
        path = sys.argv[4]
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, json.dumps({"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}).encode())
        os.close(fd)
        os.rename(path + ".tmp", path)
        sys.stderr.write("READY\\n")
        while True:
            time.sleep(3600)
        """

    private static func start(verifyingSignatures: Bool, port: Int? = nil, privateTag: String? = nil) throws -> MotoServer {
        guard let python = findExecutable("python3") else {
            throw StartError(description: "moto_server needs python3, which is not on PATH; install python3 and `pip install 'moto[server]'` (make test-deps)")
        }
        let port = try port ?? freeLoopbackPort()
        let mode = verifyingSignatures ? "verify" : "plain"
        let logPath = NSTemporaryDirectory() + "bosbackup-moto-\(getpid())-\(privateTag ?? mode).log"
        let keyPath = NSTemporaryDirectory() + "bosbackup-moto-\(getpid())-key.json"
        try? FileManager.default.removeItem(atPath: keyPath)
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = FileHandle(forWritingAtPath: logPath)!

        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", launcher, String(port), String(getpid()), mode, keyPath]
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONUNBUFFERED"] = "1"
        environment.removeValue(forKey: "AWS_PROFILE")
        process.environment = environment
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        track(process.processIdentifier, running: true)

        // Ready when the port accepts connections; bounded, and fails fast if moto exits.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if !process.isRunning {
                track(process.processIdentifier, running: false)
                let output = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
                if output.contains("MOTO-MISSING") || process.terminationStatus == 3 {
                    throw StartError(description: "moto_server is not installed (\(output.trimmingCharacters(in: .whitespacesAndNewlines))): "
                        + "run `make test-deps` or `python3 -m pip install 'moto[server]'`")
                }
                throw StartError(description: "moto_server exited with status \(process.terminationStatus): \(output.suffix(2000))")
            }
            if !verifyingSignatures, canConnect(port: port) {
                return MotoServer(port: port, process: process, logPath: logPath, verifiedCredentials: nil,
                                  isPrivate: privateTag != nil)
            }
            if verifyingSignatures, let data = FileManager.default.contents(atPath: keyPath),
               let key = try? JSONSerialization.jsonObject(with: data) as? [String: String],
               let id = key["id"], let secret = key["secret"] {
                try? FileManager.default.removeItem(atPath: keyPath)
                return MotoServer(port: port, process: process, logPath: logPath,
                                  verifiedCredentials: AWSCredentials(accessKeyID: id, secretAccessKey: secret), isPrivate: false)
            }
            usleep(50_000)
        }
        process.terminate()
        track(process.processIdentifier, running: false)
        throw StartError(description: "moto_server did not accept connections on 127.0.0.1:\(port) within 60 s (log: \(logPath))")
    }

    // MARK: - Per-test buckets

    /// A new, empty bucket on this server (named `name`, else a fresh name); returns its name.
    /// `objectLock`: a bucket with Object Lock enabled (and so versioned).
    func makeBucket(_ name: String? = nil, prefix: String = "", objectLock: Bool = false) async throws -> String {
        let bucket = name ?? "t-" + String(UUID().uuidString.lowercased().prefix(18))
        let location = try S3Location(bucket: bucket, prefix: prefix, endpoint: endpoint)
        try await S3Target(location: location, credentials: verifiedCredentials ?? Self.credentials).createBucket(objectLockEnabled: objectLock)
        return bucket
    }

    func target(bucket: String, prefix: String = "", port: Int? = nil, credentials: AWSCredentials? = nil,
                options: S3Target.Options = .init()) throws -> S3Target {
        let endpoint = URL(string: "http://127.0.0.1:\(port ?? self.port)")!
        let location = try S3Location(bucket: bucket, prefix: prefix, endpoint: endpoint)
        return S3Target(location: location, credentials: credentials ?? verifiedCredentials ?? Self.credentials,
                        options: options)
    }

    // MARK: - Helpers

    static func findExecutable(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw StartError(description: "socket(): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = loopbackAddress(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw StartError(description: "bind(): \(String(cString: strerror(errno)))") }
        return try boundPort(fd)
    }

    static func loopbackAddress(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    static func boundPort(_ fd: Int32) throws -> Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard ok == 0 else { throw StartError(description: "getsockname(): \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func canConnect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = loopbackAddress(port: port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
