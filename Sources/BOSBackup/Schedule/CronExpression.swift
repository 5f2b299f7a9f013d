import Foundation

/// A parse error in a cron expression. `field` names the offending field
/// ("minute", "hour", "day-of-month", "month", "day-of-week") or "expression"
/// for problems with the expression as a whole; `message` is one line.
public struct CronError: Error, Equatable, CustomStringConvertible {
    public let field: String
    public let message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    init(field: String, detail: String, expression: String, hint: String? = nil) {
        var text = "\(field): \(detail) in \"\(CronError.oneLine(expression))\""
        if let hint = hint { text += " (\(hint))" }
        self.init(field: field, message: text)
    }

    public var description: String { message }

    static func oneLine(_ s: String) -> String {
        var out = ""
        for ch in s.unicodeScalars {
            switch ch {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }
}

/// A five-field cron expression with Vixie cron semantics, evaluated on the
/// wall clock of an IANA time zone.
///
/// Syntax: `minute hour day-of-month month day-of-week`, each field a list of
/// `*`, `n`, `a-b`, `*/n`, `a-b/n` or `a/n` (= `a` up to the end of the field:
/// 59, 23, 31, 12, or Saturday). Months and weekdays accept `jan`..`dec` and
/// `sun`..`sat` (any case); day-of-week accepts 0-7 with both 0 and 7 meaning
/// Sunday. Ranges do not wrap around (`sat-sun` is an error). Macros:
/// `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`, `@hourly`.
///
/// Day rule (as Vixie cron/cronie): when neither the day-of-month nor the
/// day-of-week field starts with `*`, a day matches if EITHER field matches;
/// otherwise both must match. So `0 0 1,15 * fri` fires on the 1st, the 15th and
/// every Friday, while `0 0 */2 * fri` fires on Fridays that are odd days.
///
/// Time zones: see `next(after:in:)`.
public struct CronExpression: Sendable, Equatable, CustomStringConvertible {
    /// The expression as given to `init`.
    public let text: String

    let minute: CronField
    let hour: CronField
    let dayOfMonth: CronField
    let month: CronField
    let dayOfWeek: CronField

    static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *",
        "@annually": "0 0 1 1 *",
        "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *",
        "@midnight": "0 0 * * *",
        "@hourly": "0 * * * *",
    ]

    public init(_ text: String) throws {
        self.text = text
        var fields = CronExpression.splitFields(Substring(text))
        func fail(_ detail: String, _ hint: String? = nil) -> CronError {
            CronError(field: "expression", detail: detail, expression: text, hint: hint)
        }
        if fields.isEmpty { throw fail("empty cron expression") }
        if let first = fields.first, first.hasPrefix("@") {
            let name = first.lowercased()
            if name == "@reboot" {
                throw fail("@reboot is not supported", "only time schedules can be evaluated")
            }
            guard let expansion = CronExpression.macros[name] else {
                throw fail("unknown macro \"\(first)\"",
                           "supported: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly")
            }
            if fields.count != 1 {
                throw fail("macro \(first) must stand alone", "found \(fields.count - 1) more field(s)")
            }
            fields = CronExpression.splitFields(Substring(expansion))
        }
        guard fields.count == 5 else {
            throw fail("expected 5 fields (minute hour day-of-month month day-of-week), got \(fields.count)",
                       fields.count > 5 ? "seconds and year fields are not supported" : nil)
        }
        minute = try CronField.parse(fields[0], kind: .minute, expression: text)
        hour = try CronField.parse(fields[1], kind: .hour, expression: text)
        dayOfMonth = try CronField.parse(fields[2], kind: .dayOfMonth, expression: text)
        month = try CronField.parse(fields[3], kind: .month, expression: text)
        dayOfWeek = try CronField.parse(fields[4], kind: .dayOfWeek, expression: text)
        try checkFeasible()
    }

    public var description: String { text }

    private static func splitFields(_ s: Substring) -> [Substring] {
        s.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\u{0B}" || $0 == "\u{0C}" })
    }

    // MARK: - Day rule and feasibility

    /// Vixie cron: if either day field starts with `*`, both must match (AND);
    /// otherwise either may match (OR).
    var daysAreIntersected: Bool { dayOfMonth.startsWithStar || dayOfWeek.startsWithStar }

    func dayMatches(year: Int, month m: Int, day: Int) -> Bool {
        let dom = dayOfMonth.contains(day)
        let dow = dayOfWeek.contains(CivilCalendar.weekday(days: CivilCalendar.days(year: year, month: m, day: day)))
        return daysAreIntersected ? (dom && dow) : (dom || dow)
    }

    /// Rejects expressions that can never fire. Only possible when the days are
    /// intersected and day-of-month is restricted (does not start with `*`, since
    /// `*` and `*/n` always include the 1st): then some listed day must exist in
    /// some listed month (Feb 29 counts: leap years). Every existing date falls
    /// on every weekday within a 400-year Gregorian cycle, so day-of-week cannot
    /// make it impossible.
    private func checkFeasible() throws {
        guard daysAreIntersected, !dayOfMonth.startsWithStar else { return }
        let maxDays = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        let days = dayOfMonth.members
        let months = month.members
        for m in months where days.contains(where: { $0 <= maxDays[m] }) { return }
        let monthNames = ["", "January", "February", "March", "April", "May", "June", "July",
                          "August", "September", "October", "November", "December"]
        let dayList = days.map(String.init).joined(separator: ",")
        var monthList = months.map { monthNames[$0] }
        if monthList.count > 1 {
            let last = monthList.removeLast()
            monthList = [monthList.joined(separator: ", ") + " or " + last]
        }
        throw CronError(field: CronFieldKind.dayOfMonth.name,
                        detail: "\(days.count == 1 ? "day" : "days") \(dayList) never \(days.count == 1 ? "occurs" : "occur") in \(monthList[0])",
                        expression: text, hint: "the expression would never fire")
    }

    // MARK: - Public evaluation

    /// First fire time strictly after `date`, evaluated on the wall clock of `timeZone`.
    ///
    /// Daylight saving: a matching wall time that does not exist (spring-forward
    /// gap) fires at the first instant after the gap, once even if several
    /// matching wall times fall into the same gap; a matching wall time that
    /// occurs twice (fall-back) fires once, at its first occurrence.
    /// Returns nil only if nothing fires within 401 years (which, for a parsed
    /// expression, only happens at the edge of the representable range).
    public func next(after date: Date, in timeZone: TimeZone) -> Date? {
        let ts = date.timeIntervalSince1970
        guard ts.isFinite, abs(ts) < CronExpression.maxSeconds else { return nil }
        let zone = ZoneOffsets(timeZone)
        let s = Int(ts.rounded(.down))
        var candidate = CivilCalendar.floorDiv(s + zone.offset(at: s), 60)
        // Each round moves at least one local minute forward; rounds repeat only
        // for wall times that resolve to an instant <= date (the start minute and
        // minutes of a repeated hour), so this bound is never reached in practice.
        for _ in 0..<20_000 {
            guard let match = nextLocalMatch(atOrAfter: candidate) else { return nil }
            let instant = zone.instant(forLocalMinute: match)
            if Double(instant) > ts { return Date(timeIntervalSince1970: Double(instant)) }
            candidate = match + 1
        }
        return nil
    }

    /// Latest fire time at or before `date` (<=), evaluated on the wall clock of
    /// `timeZone`, with the same daylight-saving rules as `next(after:in:)`.
    public func previous(atOrBefore date: Date, in timeZone: TimeZone) -> Date? {
        let ts = date.timeIntervalSince1970
        guard ts.isFinite, abs(ts) < CronExpression.maxSeconds else { return nil }
        let zone = ZoneOffsets(timeZone)
        let s = Int(ts.rounded(.down))
        let offsetNow = zone.offset(at: s)
        // After a fall-back, wall times later than now's may have occurred
        // (first occurrence) before `date`; start far enough ahead to see them.
        let offsetBefore = max(zone.offset(at: s - 86_400), zone.offset(at: s - 43_200))
        let slack = max(0, offsetBefore - offsetNow)
        var candidate = CivilCalendar.floorDiv(s + offsetNow + slack, 60)
        for _ in 0..<20_000 {
            guard let match = previousLocalMatch(atOrBefore: candidate) else { return nil }
            let instant = zone.instant(forLocalMinute: match)
            if instant <= s { return Date(timeIntervalSince1970: Double(instant)) }
            candidate = match - 1
        }
        return nil
    }

    /// `count` successive fire times after `date` (fewer only if `next` returns nil).
    public func nextTimes(after date: Date, count: Int, in timeZone: TimeZone) -> [Date] {
        var out: [Date] = []
        guard count > 0 else { return out }
        out.reserveCapacity(count)
        var current = date
        while out.count < count, let n = next(after: current, in: timeZone) {
            out.append(n)
            current = n
        }
        return out
    }

    static let maxSeconds: Double = 1e13   // ~317,000 years either side of 1970
    static let searchYears = 401           // a Gregorian cycle repeats every 400 years

    // MARK: - Wall-clock search (local minutes since 1970-01-01 00:00 local)

    /// Smallest matching local minute >= `start`, skipping by field.
    func nextLocalMatch(atOrAfter start: Int) -> Int? {
        let startDays = CivilCalendar.floorDiv(start, 1440)
        let minuteOfDay = start - startDays * 1440
        var (y, m, d) = CivilCalendar.date(days: startDays)
        var h = minuteOfDay / 60
        var mi = minuteOfDay % 60
        let lastYear = y + CronExpression.searchYears
        while y <= lastYear {
            if !month.contains(m) {
                if let nm = month.next(atOrAfter: m + 1) {
                    m = nm
                } else {
                    y += 1
                    m = month.next(atOrAfter: 1)!
                }
                d = 1; h = 0; mi = 0
                continue
            }
            if d > CivilCalendar.daysInMonth(year: y, month: m) {
                m += 1
                if m > 12 { m = 1; y += 1 }
                d = 1; h = 0; mi = 0
                continue
            }
            if !dayMatches(year: y, month: m, day: d) {
                if daysAreIntersected, !dayOfMonth.contains(d) {
                    d = dayOfMonth.next(atOrAfter: d + 1) ?? 32
                } else {
                    d += 1
                }
                h = 0; mi = 0
                continue
            }
            guard let nh = hour.next(atOrAfter: h) else {
                d += 1; h = 0; mi = 0
                continue
            }
            if nh != h { h = nh; mi = 0 }
            guard let nmi = minute.next(atOrAfter: mi) else {
                h += 1; mi = 0
                continue
            }
            return CivilCalendar.days(year: y, month: m, day: d) * 1440 + h * 60 + nmi
        }
        return nil
    }

    /// Largest matching local minute <= `start`, skipping by field.
    func previousLocalMatch(atOrBefore start: Int) -> Int? {
        let startDays = CivilCalendar.floorDiv(start, 1440)
        let minuteOfDay = start - startDays * 1440
        var (y, m, d) = CivilCalendar.date(days: startDays)
        var h = minuteOfDay / 60
        var mi = minuteOfDay % 60
        let firstYear = y - CronExpression.searchYears
        while y >= firstYear {
            if !month.contains(m) {
                if let pm = month.previous(atOrBefore: m - 1) {
                    m = pm
                } else {
                    y -= 1
                    m = month.previous(atOrBefore: 12)!
                }
                d = CivilCalendar.daysInMonth(year: y, month: m); h = 23; mi = 59
                continue
            }
            if d < 1 {
                m -= 1
                if m < 1 { m = 12; y -= 1 }
                d = CivilCalendar.daysInMonth(year: y, month: m); h = 23; mi = 59
                continue
            }
            if !dayMatches(year: y, month: m, day: d) {
                if daysAreIntersected, !dayOfMonth.contains(d) {
                    d = dayOfMonth.previous(atOrBefore: d - 1) ?? 0
                } else {
                    d -= 1
                }
                h = 23; mi = 59
                continue
            }
            guard let ph = hour.previous(atOrBefore: h) else {
                d -= 1; h = 23; mi = 59
                continue
            }
            if ph != h { h = ph; mi = 59 }
            guard let pmi = minute.previous(atOrBefore: mi) else {
                h -= 1; mi = 59
                continue
            }
            return CivilCalendar.days(year: y, month: m, day: d) * 1440 + h * 60 + pmi
        }
        return nil
    }
}

// MARK: - Helpers

extension CronExpression {
    /// Proleptic Gregorian calendar arithmetic on day numbers (days since
    /// 1970-01-01), after Howard Hinnant's `days_from_civil` / `civil_from_days`.
    enum CivilCalendar {
        @inline(__always)
        static func floorDiv(_ a: Int, _ b: Int) -> Int {
            let q = a / b
            return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
        }

        static func days(year: Int, month: Int, day: Int) -> Int {
            let y = month <= 2 ? year - 1 : year
            let era = (y >= 0 ? y : y - 399) / 400
            let yoe = y - era * 400
            let mp = (month + 9) % 12
            let doy = (153 * mp + 2) / 5 + day - 1
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
            return era * 146_097 + doe - 719_468
        }

        static func date(days: Int) -> (year: Int, month: Int, day: Int) {
            let z = days + 719_468
            let era = (z >= 0 ? z : z - 146_096) / 146_097
            let doe = z - era * 146_097
            let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
            let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
            let mp = (5 * doy + 2) / 153
            let d = doy - (153 * mp + 2) / 5 + 1
            let m = mp < 10 ? mp + 3 : mp - 9
            return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
        }

        /// 0 = Sunday ... 6 = Saturday (1970-01-01 was a Thursday).
        static func weekday(days: Int) -> Int {
            let r = (days + 4) % 7
            return r < 0 ? r + 7 : r
        }

        static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

        static func daysInMonth(year: Int, month: Int) -> Int {
            switch month {
            case 2: return isLeap(year) ? 29 : 28
            case 4, 6, 9, 11: return 30
            default: return 31
            }
        }
    }

    /// Maps between instants (Unix seconds) and local wall-clock time in a zone.
    struct ZoneOffsets {
        let zone: TimeZone
        init(_ zone: TimeZone) { self.zone = zone }

        func offset(at instant: Int) -> Int {
            zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(instant)))
        }

        /// The instant at which a matching wall-clock minute fires:
        /// its first occurrence if it exists (once or twice), otherwise - inside a
        /// spring-forward gap - the first instant after the gap.
        func instant(forLocalMinute minute: Int) -> Int {
            let local = minute * 60
            // Offsets in force within +-18h of that wall time (no zone is further
            // from UTC); normally one value, two around a transition.
            var offsets: [Int] = []
            for probe in [local - 64_800, local, local + 64_800] {
                let o = offset(at: probe)
                if !offsets.contains(o) { offsets.append(o) }
            }
            var best: Int?
            for o in offsets {
                let candidate = local - o
                if offset(at: candidate) == o, best.map({ candidate < $0 }) ?? true { best = candidate }
            }
            if let best = best { return best }
            // The wall time falls into a gap: find the transition, i.e. the first
            // instant whose wall time is later than `local`.
            guard let lo = offsets.min(), let hi = offsets.max(), lo < hi else { return local - offsets[0] }
            var before = local - hi   // wall time < local
            var after = local - lo    // wall time > local
            guard before + offset(at: before) < local, after + offset(at: after) > local else { return after }
            while after - before > 1 {
                let mid = before + (after - before) / 2
                if mid + offset(at: mid) > local { after = mid } else { before = mid }
            }
            return after
        }
    }
}
