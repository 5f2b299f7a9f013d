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
    static func red(_ text: String) -> String { stdoutIsTerminal ? "\u{1B}[31;1m\(text)\u{1B}[0m" : text }
}

/// A single self-overwriting progress line on stderr, only on a terminal.
final class ProgressLine {
    private var last = Date.distantPast
    private let enabled = Console.stderrIsTerminal

    func update(_ text: @autoclosure () -> String) {
        guard enabled, Date().timeIntervalSince(last) > 0.1 else { return }
        last = Date()
        FileHandle.standardError.write(Data("\r\u{1B}[K\(text())".utf8))
    }

    func clear() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
