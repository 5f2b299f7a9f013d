import Foundation

public struct TimeZoneError: Error, CustomStringConvertible, CategorizedError, Sendable {
    public let description: String
    public var category: ErrorCategory { .input }
}

/// The time zones a policy or a flag may name: an IANA name (`Asia/Shanghai`),
/// `UTC`, or a fixed offset (`UTC+08:00`, `+0800`, `UTC-5`). Abbreviations are
/// refused: `CST` is China, Central (US) or Cuba Standard Time depending on who
/// reads it, and Foundation silently takes it for America/Chicago — a schedule
/// must not fire 14 hours off because of that.
public enum TimeZoneName {
    public static func resolve(_ text: String) throws -> TimeZone {
        let name = text.trimmingCharacters(in: .whitespaces)
        if ["UTC", "GMT", "Z"].contains(name.uppercased()) { return TimeZone(identifier: "UTC")! }
        if let offset = fixedOffset(name) { return offset }
        if name.contains("/"), TimeZone.knownTimeZoneIdentifiers.contains(name), let zone = TimeZone(identifier: name) { return zone }
        if name.count <= 5, name.allSatisfy({ $0.isLetter || $0.isNumber }) {
            throw TimeZoneError(description: "time zone \(name) is an abbreviation, which means different zones to different readers; use an IANA name such as Asia/Shanghai or America/New_York, or a fixed offset such as UTC+08:00")
        }
        throw TimeZoneError(description: "unknown time zone \(name): use an IANA name such as Asia/Shanghai, or a fixed offset such as UTC+08:00")
    }

    /// `UTC+8`, `UTC+08:00`, `GMT-0530`, `+08:00`, `-0500`.
    static func fixedOffset(_ name: String) -> TimeZone? {
        var rest = Substring(name.uppercased())
        for prefix in ["UTC", "GMT"] where rest.hasPrefix(prefix) { rest = rest.dropFirst(prefix.count) }
        guard let sign = rest.first, sign == "+" || sign == "-" else { return nil }
        let digits = rest.dropFirst().replacingOccurrences(of: ":", with: "")
        guard !digits.isEmpty, digits.count <= 4, digits.allSatisfy(\.isNumber) else { return nil }
        let hours = Int(digits.count <= 2 ? digits : String(digits.dropLast(2)))!
        let minutes = digits.count <= 2 ? 0 : Int(String(digits.suffix(2)))!
        guard hours <= 14, minutes < 60 else { return nil }
        return TimeZone(secondsFromGMT: (sign == "-" ? -1 : 1) * (hours * 3600 + minutes * 60))
    }
}
