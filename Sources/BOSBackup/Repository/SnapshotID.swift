import Foundation

/// Snapshot ids: 128 random bits as 32 hex digits, so hosts that share a
/// bucket never mint the same id (v1's 32-bit ids clash after ~65,000
/// snapshots by the birthday bound). v1 ids (8 hex digits) stay valid.
public enum SnapshotID {
    public static func generate<G: RandomNumberGenerator>(using generator: inout G) -> String {
        String(format: "%016llx%016llx", generator.next() as UInt64, generator.next() as UInt64)
    }

    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return generate(using: &generator)
    }

    /// How many digits are shown in tables and messages: enough that two
    /// snapshots of one catalog practically never share them (48 bits), and
    /// every command also takes any unambiguous prefix.
    public static let shownDigits = 12

    public static func short(_ id: String) -> String { String(id.prefix(shownDigits)) }
}
