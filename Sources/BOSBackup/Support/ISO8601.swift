import Foundation

/// ISO 8601 text for catalog rows, manifests and JSON.
public enum ISO8601 {
    /// `2026-11-27T14:00:00Z` (UTC, seconds). Formatted by hand: it is called
    /// millions of times when a sample database is generated.
    public static func string(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }

    /// Local wall-clock text with offset, e.g. `2026-11-29T00:00:00+08:00`;
    /// `fractional`: with milliseconds when the time has any (`…T00:00:00.250+08:00`).
    public static func string(_ date: Date, in timeZone: TimeZone, fractional: Bool = false) -> String {
        let f = ISO8601DateFormatter()
        let whole = date.timeIntervalSince1970.rounded(.down) == date.timeIntervalSince1970
        f.formatOptions = fractional && !whole ? [.withInternetDateTime, .withFractionalSeconds] : [.withInternetDateTime]
        f.timeZone = timeZone
        return f.string(from: date)
    }

    /// Parses `2026-11-27T22:00:00Z`, `…+08:00`, fractional seconds, or a
    /// date-time without offset (read in `defaultZone`).
    public static func parse(_ text: String, defaultZone: TimeZone = TimeZone(identifier: "UTC")!) -> Date? {
        let f = ISO8601DateFormatter()
        for options: ISO8601DateFormatter.Options in [[.withInternetDateTime], [.withInternetDateTime, .withFractionalSeconds]] {
            f.formatOptions = options
            if let d = f.date(from: text) { return d }
        }
        let local = DateFormatter()
        local.locale = Locale(identifier: "en_US_POSIX")
        local.timeZone = defaultZone
        for format in ["yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd HH:mm", "yyyy-MM-dd"] {
            local.dateFormat = format
            if let d = local.date(from: text) { return d }
        }
        return nil
    }

    /// Compact UTC stamp for names: `20261127T140000Z`.
    public static func compact(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return f.string(from: date)
    }
}
