import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A process as a run row records it: its pid and when it started (clock ticks after
/// boot, field 22 of /proc/PID/stat). The start time tells a live run from a pid the
/// kernel gave to another process after the run's own died.
public struct ProcessIdentity: Equatable, Sendable {
    public var pid: Int32
    /// nil when /proc could not be read (the pid alone is then the identity).
    public var startTicks: UInt64?

    public init(pid: Int32, startTicks: UInt64?) {
        self.pid = pid
        self.startTicks = startTicks
    }

    public static var current: ProcessIdentity {
        let pid = getpid()
        return ProcessIdentity(pid: pid, startTicks: startTicks(of: pid))
    }

    /// The process still runs, and is the same one (same start time).
    public var isAlive: Bool {
        guard pid > 0 else { return false }
        if let now = Self.startTicks(of: pid) { return startTicks == nil || now == startTicks }
        // /proc hidden (hidepid) or gone: the kernel's answer for the pid is all there is.
        return kill(pid, 0) == 0 || errno == EPERM
    }

    /// Field 22 of /proc/PID/stat. The command name (field 2) is in parentheses and may
    /// hold spaces and parentheses itself, so fields are counted after its last ')'.
    static func startTicks(of pid: Int32) -> UInt64? {
        let text: String
        do {
            text = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        } catch {
            return nil  // no such process, or /proc hides it: the caller falls back to kill(pid, 0)
        }
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state), so field 22 is fields[19].
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }
}
