import BOSBackup
import Foundation

/// Human output on stdout, diagnostics on stderr, JSON as one document.
enum Console {
    static func out(_ line: String = "") { print(line) }

    static func error(_ line: String) {
        FileHandle.standardError.write(Data("bosbackup: \(line)\n".utf8))
    }

    static func note(_ line: String) {
        FileHandle.standardError.write(Data("\(line)\n".utf8))
    }

    static func json(_ object: Any) {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        print(String(decoding: data, as: UTF8.self))
    }

    static var stderrIsTerminal: Bool { isatty(2) == 1 }
    static var stdoutIsTerminal: Bool { isatty(1) == 1 }

    static func bytes(_ count: Int64) -> String { ByteCount.format(count) }

    static func seconds(_ value: Double) -> String {
        value < 60 ? String(format: "%.1f s", value) : Duration.format(value)
    }

    /// Renders rows as aligned columns; numbers right-aligned.
    static func table(_ header: [String], _ rows: [[String]], rightAligned: Set<Int> = []) -> [String] {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func render(_ row: [String]) -> String {
            row.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: max(0, widths[i] - cell.count))
                return rightAligned.contains(i) ? pad + cell : cell + pad
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        return [render(header)] + rows.map(render)
    }

    static func bold(_ text: String) -> String { stdoutIsTerminal ? "\u{1B}[1m\(text)\u{1B}[0m" : text }
    /// Text from data (a row, an audit detail) goes to the operator's terminal:
    /// control characters shown, not obeyed.
    static func printable(_ text: String) -> String {
        text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? String(format: "\\x%02x", $0.value) : String($0) }.joined()
    }

    static func red(_ text: String) -> String { stdoutIsTerminal ? "\u{1B}[31;1m\(text)\u{1B}[0m" : text }
}

/// A single self-overwriting progress line on stderr, only on a terminal.
/// Safe to update from several threads (the integrity check's workers).
final class ProgressLine: @unchecked Sendable {
    private var last = Date.distantPast
    private let enabled = Console.stderrIsTerminal
    private let lock = NSLock()
    /// When each phase began, for its rate and ETA.
    private var started: [String: Date] = [:]

    func update(_ text: @autoclosure () -> String) {
        lock.lock(); defer { lock.unlock() }
        guard enabled, Date().timeIntervalSince(last) > 0.1 else { return }
        last = Date()
        FileHandle.standardError.write(Data("\r\u{1B}[K\(text())".utf8))
    }

    /// "fetching snapshot 1a2b3c4d: 45% (164.7 MB of 366.0 MB, 88.1 MB/s, ETA 3 s)".
    func report(_ update: ProgressUpdate) {
        guard enabled else { return }
        let began: Date = lock.withLock {
            if let date = started[update.phase] { return date }
            started[update.phase] = Date()
            return Date()
        }
        self.update(Self.describe(update, elapsed: Date().timeIntervalSince(began)))
    }

    /// The handler to give the library (nil when stderr is no terminal: nothing to compute).
    var handler: ProgressHandler? {
        guard enabled else { return nil }
        return { [self] (update: ProgressUpdate) in self.report(update) }
    }

    static func describe(_ update: ProgressUpdate, elapsed: Double) -> String {
        func amount(_ n: Int64) -> String { update.unit == .bytes ? Console.bytes(n) : "\(n)" }
        var text = update.phase + ": "
        guard let total = update.total, total > 0 else { return text + amount(update.done) }
        text += "\(min(100, update.done * 100 / total))% (\(amount(update.done)) of \(amount(total))"
        if elapsed > 0.5, update.done > 0 {
            let rate = Double(update.done) / elapsed
            if update.unit == .bytes { text += ", \(Console.bytes(Int64(rate)))/s" }
            text += ", ETA \(Console.seconds(max(0, Double(total - update.done) / rate)))"
        }
        return text + ")"
    }

    func clear() {
        guard enabled else { return }
        lock.withLock { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}

/// Log lines for cron's log file and for journald: one event per line.
extension Console {
    /// syslog priorities, which journald reads from a `<N>` at the start of a line.
    enum Priority: Int {
        case error = 3, warning = 4, info = 6
    }

    /// The descriptor is a journald stream: systemd sets JOURNAL_STREAM to its
    /// "device:inode". Compared with the descriptor itself, because the variable is
    /// inherited by everything the service starts, whose output may go elsewhere.
    static func isJournal(_ fd: Int32, environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        guard let value = environment["JOURNAL_STREAM"] else { return false }
        let parts = value.split(separator: ":")
        var st = stat()
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]), fstat(fd, &st) == 0 else { return false }
        return UInt64(st.st_dev) == device && UInt64(st.st_ino) == inode
    }

    /// One event: `<3>text` into the journal (which stamps time and unit itself), else
    /// `TIME bosbackup SOURCE: text` (a cron log file has no time of its own). Never
    /// colours: these lines are for files and the journal.
    static func event(_ text: String, priority: Priority, to fd: Int32, time: @autoclosure () -> String, source: String) {
        // An error text with a newline in it (a server's answer) must not split the event.
        let flat = text.split(whereSeparator: \.isNewline).joined(separator: " ")
        let line = isJournal(fd) ? "<\(priority.rawValue)>\(flat)\n" : "\(time()) bosbackup \(source): \(flat)\n"
        (fd == 2 ? FileHandle.standardError : FileHandle.standardOutput).write(Data(line.utf8))
    }
}
