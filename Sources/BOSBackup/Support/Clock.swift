import Foundation

/// Where the library gets "now". Injected everywhere a decision depends on
/// time, so tests and `--now` simulations control it.
public protocol Clock: Sendable {
    func now() -> Date
}

public struct SystemClock: Clock {
    public init() {}
    public func now() -> Date { Date() }
}

/// A clock that always says the same instant (for `--now` and tests).
public struct FixedClock: Clock {
    public let date: Date
    public init(_ date: Date) { self.date = date }
    public func now() -> Date { date }
}
