import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How a command ended, and what it printed.
public struct CommandResult: Sendable {
    public enum Ending: Sendable, Equatable {
        case exited(Int32)
        case signaled(Int32)
        /// Still running at the timeout: its process group was sent SIGTERM, then SIGKILL.
        case timedOut
        /// It ended, but its status could not be collected (another waiter reaped it).
        case unknown
    }
    public var ending: Ending
    /// stdout and stderr together; only the last `ShellCommand.keptOutput` bytes.
    public var output: String
    public var seconds: Double
    public var succeeded: Bool { ending == .exited(0) }
}

/// The command could not even be started (no /bin/sh, no file descriptors left).
public struct CommandStartError: Error, CustomStringConvertible, CategorizedError, Sendable {
    public let description: String
    public var category: ErrorCategory { .failure }
}

/// Runs `/bin/sh -c COMMAND` with `input` on stdin, and returns by `timeout` whatever the
/// command does: it gets its own process group, so at the timeout the shell and whatever
/// it started are stopped together; a background child that keeps the output pipe open
/// is not waited for once the shell itself has exited.
public struct ShellCommand {
    public var command: String
    public var timeout: TimeInterval
    /// Added to this process's environment.
    public var environment: [String: String]
    /// After SIGTERM at the timeout, how long before SIGKILL (and again before giving up
    /// on a process that not even SIGKILL ends, one stuck in the kernel).
    public var killGrace: TimeInterval = 2
    public static let keptOutput = 16 << 10

    public init(command: String, timeout: TimeInterval, environment: [String: String] = [:]) {
        self.command = command
        self.timeout = timeout
        self.environment = environment
    }

    public func run(input: Data) throws -> CommandResult {
        let began = Date()
        let stdin = try Self.inputFile(input)
        defer { close(stdin) }
        var output: [Int32] = [-1, -1]
        // pipe2 and mkostemp are not imported; nothing else spawns while a notify runs, so
        // setting close-on-exec just after creation leaves no other child these descriptors.
        guard pipe(&output) == 0 else { throw CommandStartError(description: "cannot create a pipe: \(Self.errnoText())") }
        output.forEach { _ = fcntl($0, F_SETFD, FD_CLOEXEC) }
        defer { close(output[0]) }
        // The waiter thread says "exited" on a socket, not a pipe: its send cannot raise
        // SIGPIPE in this process if we stopped listening first.
        var exitSignal: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &exitSignal) == 0 else {
            close(output[1])
            throw CommandStartError(description: "cannot create a socket pair: \(Self.errnoText())")
        }
        defer { close(exitSignal[0]) }
        let pid: pid_t
        do {
            pid = try spawn(stdin: stdin, output: output[1])
            close(output[1])
        } catch {
            close(output[1])
            close(exitSignal[1])
            throw error
        }
        let waiter = ExitWaiter(pid: pid, signal: exitSignal[1])
        var captured = Data()
        var pump = Pump(output: output[0], exited: exitSignal[0])
        var ending: CommandResult.Ending
        if pump.run(until: began.addingTimeInterval(timeout), into: &captured) {
            ending = waiter.ending
        } else {
            kill(-pid, SIGTERM)
            if !pump.run(until: Date().addingTimeInterval(killGrace), into: &captured) {
                kill(-pid, SIGKILL)
                _ = pump.run(until: Date().addingTimeInterval(killGrace), into: &captured)
            }
            ending = .timedOut
        }
        Self.drain(output[0], into: &captured)
        if captured.count > Self.keptOutput { captured = captured.suffix(Self.keptOutput) }
        return CommandResult(ending: ending, output: String(decoding: captured, as: UTF8.self), seconds: Date().timeIntervalSince(began))
    }

    /// posix_spawn, so the child can get its own process group and default signal
    /// handling: the daemon ignores SIGTERM and SIGINT, and ignored signals are inherited.
    private func spawn(stdin: Int32, output: Int32) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        posix_spawn_file_actions_adddup2(&actions, output, 1)
        posix_spawn_file_actions_adddup2(&actions, output, 2)
        // Nothing else of ours reaches the command: a descriptor this process inherited
        // without close-on-exec (a copy of its own stdout, say) would otherwise be held open
        // by whatever the command leaves running, and whoever reads our output would wait
        // for it. (A close of a descriptor that is no longer open is ignored by posix_spawn.)
        for fd in Self.openDescriptors() where fd > 2 { posix_spawn_file_actions_addclose(&actions, fd) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setpgroup(&attributes, 0)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for number in [SIGTERM, SIGINT, SIGPIPE, SIGHUP, SIGQUIT, SIGCHLD] { sigaddset(&defaults, number) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let arguments = ["/bin/sh", "-c", command]
        let variables = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { "\($0.key)=\($0.value)" }
        var pid = pid_t()
        let result = Self.withCStrings(arguments) { argv in
            Self.withCStrings(variables) { envp in posix_spawn(&pid, "/bin/sh", &actions, &attributes, argv, envp) }
        }
        guard result == 0 else { throw CommandStartError(description: "cannot start /bin/sh: \(String(cString: strerror(result)))") }
        return pid
    }

    /// stdin is an unlinked temporary file: the command may read it or not, and a
    /// command that never reads cannot block us the way a full pipe would.
    static func inputFile(_ data: Data) throws -> Int32 {
        var template = Array((NSTemporaryDirectory() + "/bosbackup-notify-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw CommandStartError(description: "cannot create the notify input file in \(NSTemporaryDirectory()): \(errnoText())") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        unlink(String(cString: template))
        do {
            try data.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { throw CommandStartError(description: "cannot write the notify input file: \(errnoText())") }
                    offset += n
                }
            }
            guard lseek(fd, 0, SEEK_SET) == 0 else { throw CommandStartError(description: "cannot rewind the notify input file: \(errnoText())") }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// What is already in the pipe, without waiting for more.
    static func drain(_ fd: Int32, into data: inout Data) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            data.append(contentsOf: buffer[0..<n])
        }
    }

    /// This process's open descriptors, from /proc (none listed where there is no /proc:
    /// then only close-on-exec keeps them from the command).
    static func openDescriptors() -> [Int32] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").compactMap { Int32($0) }
        } catch {
            return []
        }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }

    static func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
        let pointers = strings.map { strdup($0) }
        defer { pointers.forEach { free($0) } }
        return body(pointers + [nil])
    }
}

/// Reads the command's output until it exits or a deadline passes.
private struct Pump {
    let output: Int32
    let exited: Int32
    var outputOpen = true
    var hasExited = false

    init(output: Int32, exited: Int32) {
        self.output = output
        self.exited = exited
    }

    /// True once the command has exited; false at the deadline.
    mutating func run(until deadline: Date, into data: inout Data) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !hasExited {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { return false }
            var fds = [pollfd(fd: exited, events: Int16(POLLIN), revents: 0)]
            if outputOpen { fds.append(pollfd(fd: output, events: Int16(POLLIN), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), Int32(min(remaining * 1000 + 1, 60_000)))
            if ready < 0 && errno == EINTR { continue }
            guard ready >= 0 else { return false }
            if outputOpen && fds[1].revents != 0 {
                let n = read(output, &buffer, buffer.count)
                if n > 0 {
                    data.append(contentsOf: buffer[0..<n])
                    if data.count > 4 * ShellCommand.keptOutput { data = data.suffix(ShellCommand.keptOutput) }
                } else if n == 0 || errno != EINTR {
                    outputOpen = false
                }
            }
            if fds[0].revents != 0 { hasExited = true }
        }
        return true
    }
}

/// Reaps the child on its own thread (waitpid blocks) and says so on a socket the pump polls.
private final class ExitWaiter: @unchecked Sendable {
    private let lock = NSLock()
    private var status: Int32?

    init(pid: pid_t, signal fd: Int32) {
        Thread { [self] in
            var status: Int32 = 0
            var result = waitpid(pid, &status, 0)
            while result < 0 && errno == EINTR { result = waitpid(pid, &status, 0) }
            lock.withLock { self.status = result == pid ? status : nil }
            var byte: UInt8 = 1
            _ = send(fd, &byte, 1, Int32(MSG_NOSIGNAL))
            close(fd)
        }.start()
    }

    /// Only read after the socket said the child exited.
    var ending: CommandResult.Ending {
        guard let status = lock.withLock({ self.status }) else { return .unknown }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import.
        return status & 0x7f == 0 ? .exited((status >> 8) & 0xff) : .signaled(status & 0x7f)
    }
}
