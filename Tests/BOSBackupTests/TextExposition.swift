import Foundation

/// A strict little parser of the Prometheus text exposition format (0.0.4), for checking
/// the metrics file in every run of the suite, promtool or not: every line is a comment,
/// blank, or `name{labels} value [timestamp]`; a family's HELP and TYPE come once each,
/// before its samples; a family's samples stand together; no series appears twice.
struct TextExposition {
    struct Sample: Equatable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    struct ParseError: Error, CustomStringConvertible {
        var line: Int
        var message: String
        var description: String { "line \(line): \(message)" }
    }

    private(set) var samples: [Sample] = []
    private(set) var help: [String: String] = [:]
    private(set) var types: [String: String] = [:]

    /// The value of the one series with exactly these labels.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }

    func series(_ name: String) -> [Sample] { samples.filter { $0.name == name } }
    var names: Set<String> { Set(samples.map(\.name)) }
    var labelNames: Set<String> { Set(samples.flatMap(\.labels.keys)) }

    static func parse(_ text: String) throws -> TextExposition {
        var result = TextExposition()
        guard text.isEmpty || text.hasSuffix("\n") else { throw ParseError(line: 0, message: "the last line does not end with a newline") }
        var seenSeries = Set<String>()
        var finished = Set<String>()      // families whose samples ended (another family's began)
        var current: String?
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().enumerated() {
            let number = index + 1
            func fail(_ message: String) -> ParseError { ParseError(line: number, message: "\(message): \(line)") }
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            if line.hasPrefix("#") {
                let words = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: true)
                guard words.count >= 3, words[0] == "#", words[1] == "HELP" || words[1] == "TYPE" else { continue }  // a plain comment
                let name = String(words[2])
                guard isMetricName(name) else { throw fail("bad metric name in \(words[1])") }
                if result.samples.contains(where: { Self.family(of: $0.name, types: result.types) == name }) {
                    throw fail("\(words[1]) after the family's samples")
                }
                if words[1] == "HELP" {
                    guard result.help[name] == nil else { throw fail("second HELP") }
                    result.help[name] = words.count > 3 ? String(words[3]) : ""
                } else {
                    guard result.types[name] == nil else { throw fail("second TYPE") }
                    guard words.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(words[3]) else {
                        throw fail("bad TYPE")
                    }
                    result.types[name] = String(words[3])
                }
                continue
            }
            var scanner = Substring(line)
            let sample = try parseSample(&scanner, fail: fail)
            let family = Self.family(of: sample.name, types: result.types)
            if family != current {
                guard !finished.contains(family) else { throw fail("samples of \(family) are not together") }
                if let current { finished.insert(current) }
                current = family
            }
            let key = sample.name + "{" + sample.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") + "}"
            guard seenSeries.insert(key).inserted else { throw fail("duplicate series \(key)") }
            result.samples.append(sample)
        }
        return result
    }

    private static func parseSample(_ s: inout Substring, fail: (String) -> ParseError) throws -> Sample {
        let name = take(&s) { $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }
        guard isMetricName(name) else { throw fail("bad metric name") }
        var labels: [String: String] = [:]
        if s.first == "{" {
            s.removeFirst()
            while s.first != "}" {
                let label = take(&s) { $0.isLetter || $0.isNumber || $0 == "_" }
                guard isLabelName(label), !label.hasPrefix("__") else { throw fail("bad label name '\(label)'") }
                guard s.hasPrefix("=\"") else { throw fail("expected =\" after label \(label)") }
                s.removeFirst(2)
                var value = ""
                while true {
                    guard let c = s.popFirst() else { throw fail("unterminated label value") }
                    if c == "\"" { break }
                    if c == "\\" {
                        switch s.popFirst() {
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        case "n": value.append("\n")
                        default: throw fail("bad escape in label value")
                        }
                    } else {
                        value.append(c)
                    }
                }
                guard labels.updateValue(value, forKey: label) == nil else { throw fail("label \(label) twice") }
                if s.first == "," { s.removeFirst() } else if s.first != "}" { throw fail("expected , or }") }
            }
            s.removeFirst()
        }
        guard s.first == " " else { throw fail("expected a space before the value") }
        let fields = s.split(separator: " ")
        guard fields.count == 1 || fields.count == 2 else { throw fail("expected a value and at most a timestamp") }
        guard let value = parseValue(String(fields[0])) else { throw fail("bad value '\(fields[0])'") }
        if fields.count == 2 { guard Int64(fields[1]) != nil else { throw fail("bad timestamp") } }
        return Sample(name: name, labels: labels, value: value)
    }

    private static func take(_ s: inout Substring, while ok: (Character) -> Bool) -> String {
        let taken = s.prefix(while: { $0.isASCII && ok($0) })
        s.removeFirst(taken.count)
        return String(taken)
    }

    static func parseValue(_ text: String) -> Double? {
        switch text {
        case "NaN": return .nan
        case "+Inf", "Inf": return .infinity
        case "-Inf": return -.infinity
        default: return text.allSatisfy({ $0.isNumber || "+-.eE".contains($0) }) ? Double(text) : nil
        }
    }

    static func isMetricName(_ s: String) -> Bool {
        guard let first = s.first, first.isASCII, first.isLetter || first == "_" || first == ":" else { return false }
        return s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == ":") }
    }

    static func isLabelName(_ s: String) -> Bool {
        guard let first = s.first, first.isASCII, first.isLetter || first == "_" else { return false }
        return s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
    }

    /// A histogram's or summary's `_bucket`, `_sum`, `_count` belong to its family.
    private static func family(of name: String, types: [String: String]) -> String {
        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
            let base = String(name.dropLast(suffix.count))
            if types[base] == "histogram" || types[base] == "summary" { return base }
        }
        return name
    }
}
