// TEMPORARY stub until the real engine lands.
import Foundation
public struct CronExpression: Sendable, Equatable, CustomStringConvertible {
    public let text: String
    public init(_ text: String) throws { self.text = text }
    public var description: String { text }
    public func next(after date: Date, in timeZone: TimeZone) -> Date? { nil }
    public func previous(atOrBefore date: Date, in timeZone: TimeZone) -> Date? { nil }
    public func nextTimes(after date: Date, count: Int, in timeZone: TimeZone) -> [Date] { [] }
}
public struct CronError: Error, Equatable, CustomStringConvertible {
    public let field: String
    public let message: String
    public var description: String { message }
}
