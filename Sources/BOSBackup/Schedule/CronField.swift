import Foundation

/// One of the five fields of a cron expression, with its value range and names.
enum CronFieldKind: Int, CaseIterable, Sendable {
    case minute, hour, dayOfMonth, month, dayOfWeek

    /// The name used in `CronError.field` and in messages.
    var name: String {
        switch self {
        case .minute: return "minute"
        case .hour: return "hour"
        case .dayOfMonth: return "day-of-month"
        case .month: return "month"
        case .dayOfWeek: return "day-of-week"
        }
    }

    /// Smallest value that may be written.
    var low: Int {
        switch self {
        case .minute, .hour, .dayOfWeek: return 0
        case .dayOfMonth, .month: return 1
        }
    }

    /// Largest value that may be written (`7` is accepted as Sunday in day-of-week).
    var high: Int {
        switch self {
        case .minute: return 59
        case .hour: return 23
        case .dayOfMonth: return 31
        case .month: return 12
        case .dayOfWeek: return 7
        }
    }

    /// Last value of the field's cycle: where `*` and `a/n` end.
    /// For day-of-week that is Saturday (6); `7` is only an alias of Sunday.
    var cycleEnd: Int { self == .dayOfWeek ? 6 : high }

    /// Three-letter names accepted for the field (index + `low` = value).
    var names: [String]? {
        switch self {
        case .month: return ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        case .dayOfWeek: return ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
        default: return nil
        }
    }

    var valueRangeText: String {
        switch self {
        case .month: return "1-12 or jan-dec"
        case .dayOfWeek: return "0-7 (0 and 7 are Sunday) or sun-sat"
        default: return "\(low)-\(high)"
        }
    }
}

/// A parsed field: the set of allowed values as a bit mask, and whether the
/// field text starts with `*` (Vixie cron's "unrestricted" test, which decides
/// whether day-of-month and day-of-week are OR-ed or AND-ed).
struct CronField: Sendable, Equatable {
    var mask: UInt64
    var startsWithStar: Bool

    func contains(_ value: Int) -> Bool {
        value >= 0 && value < 64 && (mask >> UInt64(value)) & 1 == 1
    }

    /// Smallest member >= `value`, or nil.
    func next(atOrAfter value: Int) -> Int? {
        if value >= 64 { return nil }
        let from = max(value, 0)
        let rest = mask & (~UInt64(0) << UInt64(from))
        return rest == 0 ? nil : rest.trailingZeroBitCount
    }

    /// Largest member <= `value`, or nil.
    func previous(atOrBefore value: Int) -> Int? {
        if value < 0 { return nil }
        let upTo = min(value, 63)
        let keep: UInt64 = upTo == 63 ? ~0 : (UInt64(1) << UInt64(upTo + 1)) - 1
        let rest = mask & keep
        return rest == 0 ? nil : 63 - rest.leadingZeroBitCount
    }

    var members: [Int] { (0..<64).filter { contains($0) } }

    /// Parses one field of `expression`. Throws `CronError` naming the field.
    static func parse(_ text: Substring, kind: CronFieldKind, expression: String) throws -> CronField {
        func fail(_ detail: String, hint: String? = nil) -> CronError {
            CronError(field: kind.name, detail: detail, expression: expression, hint: hint)
        }
        var mask: UInt64 = 0
        let items = text.split(separator: ",", omittingEmptySubsequences: false)
        for item in items {
            if item.isEmpty { throw fail("empty list element") }
            let parts = item.split(separator: "/", omittingEmptySubsequences: false)
            if parts.count > 2 { throw fail("bad step \"\(item)\"", hint: "only one / allowed") }
            let base = parts[0]
            var step = 1
            if parts.count == 2 {
                let s = parts[1]
                guard !s.isEmpty, s.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                    throw fail("bad step \"\(item)\"", hint: "the step must be a positive number")
                }
                guard s.count <= 9, let n = Int(s) else {
                    throw fail("step \(s) exceeds \(kind.high)")
                }
                if n == 0 { throw fail("bad step \"\(item)\"", hint: "the step must be at least 1") }
                if n > kind.high {
                    throw fail("step \(n) exceeds \(kind.high)", hint: "a step never carries over into the next \(kind == .minute ? "hour" : kind == .hour ? "day" : kind == .dayOfMonth ? "month" : kind == .month ? "year" : "week")")
                }
                step = n
            }
            if base.isEmpty { throw fail("missing value before \"/\"") }

            var lo: Int
            var hi: Int
            if base == "*" {
                lo = kind.low
                hi = kind.cycleEnd
            } else {
                let ends = base.split(separator: "-", omittingEmptySubsequences: false)
                if ends.count > 2 || ends.contains(where: { $0.isEmpty }) {
                    throw fail("bad range \"\(base)\"", hint: "expected a-b with two values")
                }
                lo = try value(ends[0], kind: kind, fail: fail)
                if ends.count == 2 {
                    hi = try value(ends[1], kind: kind, fail: fail)
                    if lo > hi {
                        let named = kind.names != nil && ends[0].allSatisfy({ $0.isLetter })
                        let last = named ? kind.names!.last! : String(kind.cycleEnd)
                        let first = named ? kind.names!.first! : String(kind.low)
                        throw fail("reversed range \(base)",
                                   hint: "ranges do not wrap around; list both parts instead: \(ends[0])-\(last),\(first)-\(ends[1])")
                    }
                } else if parts.count == 2 {
                    // `a/n`: from a to the end of the field's cycle.
                    if kind == .dayOfWeek && lo == 7 { lo = 0 }
                    hi = kind.cycleEnd
                } else {
                    hi = lo
                }
            }
            var v = lo
            while v <= hi {
                mask |= UInt64(1) << UInt64(v)
                v += step
            }
        }
        if kind == .dayOfWeek, (mask >> 7) & 1 == 1 {
            mask &= ~(UInt64(1) << 7)
            mask |= 1
        }
        return CronField(mask: mask, startsWithStar: text.first == "*")
    }

    private static func value(_ token: Substring, kind: CronFieldKind, fail: (String, String?) -> CronError) throws -> Int {
        if token.allSatisfy({ $0.isASCII && $0.isNumber }) {
            guard token.count <= 9, let n = Int(token), n >= kind.low, n <= kind.high else {
                throw fail("value \(token) out of range \(kind.valueRangeText)", nil)
            }
            return n
        }
        if token.allSatisfy({ $0.isASCII && $0.isLetter }) {
            guard let names = kind.names else {
                throw fail("invalid value \"\(token)\"", "names are only allowed in month and day-of-week")
            }
            if let i = names.firstIndex(of: token.lowercased()) { return i + kind.low }
            throw fail("unknown name \"\(token)\"", "expected one of \(names.joined(separator: ", "))")
        }
        throw fail("invalid value \"\(token)\"", nil)
    }
}
