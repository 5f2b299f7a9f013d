import Foundation
import XCTest
import BOSBackup

final class CronExpressionTests: XCTestCase {
    let utc = TimeZone(identifier: "UTC")!
    let newYork = TimeZone(identifier: "America/New_York")!
    let berlin = TimeZone(identifier: "Europe/Berlin")!
    let shanghai = TimeZone(identifier: "Asia/Shanghai")!

    // MARK: helpers

    /// Parses "2024-03-10T03:00:00-04:00" / "...Z".
    func at(_ iso: String, file: StaticString = #filePath, line: UInt = #line) -> Date {
        let f = ISO8601DateFormatter()
        guard let d = f.date(from: iso) else {
            XCTFail("bad ISO date \(iso)", file: file, line: line)
            return Date(timeIntervalSince1970: 0)
        }
        return d
    }

    /// Formats in `zone` with its offset, e.g. "2024-03-10T03:00:00-04:00".
    func iso(_ date: Date?, _ zone: TimeZone) -> String {
        guard let date = date else { return "nil" }
        let f = ISO8601DateFormatter()
        f.timeZone = zone
        return f.string(from: date)
    }

    func cron(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> CronExpression {
        do {
            return try CronExpression(text)
        } catch {
            XCTFail("\"\(text)\" should parse: \(error)", file: file, line: line)
            return try! CronExpression("* * * * *")
        }
    }

    func next(_ text: String, after start: String, _ count: Int, in zone: TimeZone) -> [String] {
        cron(text).nextTimes(after: at(start), count: count, in: zone).map { iso($0, zone) }
    }

    func previous(_ text: String, atOrBefore start: String, in zone: TimeZone) -> String {
        iso(cron(text).previous(atOrBefore: at(start), in: zone), zone)
    }

    func assertError(_ text: String, field: String, contains fragment: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        do {
            let e = try CronExpression(text)
            XCTFail("\"\(text)\" should be rejected, parsed as \(e)", file: file, line: line)
        } catch let error as CronError {
            XCTAssertEqual(error.field, field, "\(text): \(error.message)", file: file, line: line)
            XCTAssertTrue(error.message.contains(fragment), "\(text): \"\(error.message)\" lacks \"\(fragment)\"",
                          file: file, line: line)
            XCTAssertTrue(error.message.hasPrefix(field + ": "), error.message, file: file, line: line)
            XCTAssertFalse(error.message.contains("\n"), error.message, file: file, line: line)
            XCTAssertEqual(error.description, error.message, file: file, line: line)
        } catch {
            XCTFail("\"\(text)\": unexpected error type \(error)", file: file, line: line)
        }
    }

    // MARK: parsing

    func testAcceptsVixieSyntax() {
        for text in [
            "* * * * *", "0 0 * * *", "*/15 * * * *", "0-59/5 0-23 1-31 1-12 0-7", "5,10-20,30-40/5 * * * *",
            "0 9-17 * * mon-fri", "0 0 * JAN-Mar,jul sun", "0 0 1 * SAT", "0 0 * * 7", "0 0 * * 5-7",
            "15/10 * * * *", "0 0 * * mon/2", "0 0 29 2 *", "0 0 31 2 1", "00 05 * * *", " 0 0\t* * * ",
            "0 0 */31 */12 */7", "59 23 31 12 6", "0 12 * * 1,3,5", "@yearly", "@annually", "@monthly",
            "@weekly", "@daily", "@midnight", "@hourly", "@DAILY", "0 0 5-5 * *", "0 0 * * 7-7",
        ] {
            XCTAssertNoThrow(try CronExpression(text), text)
        }
    }

    func testErrorsNameTheField() {
        assertError("", field: "expression", contains: "empty")
        assertError("   ", field: "expression", contains: "empty")
        assertError("* * * *", field: "expression", contains: "expected 5 fields")
        assertError("* * * * * *", field: "expression", contains: "got 6")
        assertError("@reboot", field: "expression", contains: "@reboot is not supported")
        assertError("@fortnightly", field: "expression", contains: "unknown macro")
        assertError("@daily echo", field: "expression", contains: "must stand alone")
        assertError("60 * * * *", field: "minute", contains: "value 60 out of range 0-59")
        assertError("x * * * *", field: "minute", contains: "invalid value \"x\"")
        assertError("*/0 * * * *", field: "minute", contains: "bad step")
        assertError("*/90 * * * *", field: "minute", contains: "step 90 exceeds 59")
        assertError("*/ * * * *", field: "minute", contains: "bad step")
        assertError("*/x * * * *", field: "minute", contains: "bad step")
        assertError("1/2/3 * * * *", field: "minute", contains: "bad step")
        assertError("/5 * * * *", field: "minute", contains: "missing value")
        assertError("1,,2 * * * *", field: "minute", contains: "empty list element")
        assertError("1, * * * *", field: "minute", contains: "empty list element")
        assertError("-1 * * * *", field: "minute", contains: "bad range")
        assertError("1-2-3 * * * *", field: "minute", contains: "bad range")
        assertError("30-10 * * * *", field: "minute", contains: "reversed range 30-10")
        assertError("99999999999999999999 * * * *", field: "minute", contains: "out of range")
        assertError("0 24 * * *", field: "hour", contains: "value 24 out of range 0-23")
        assertError("0 22-2 * * *", field: "hour", contains: "reversed range")
        assertError("0 */24 * * *", field: "hour", contains: "step 24 exceeds 23")
        assertError("0 0 0 * *", field: "day-of-month", contains: "value 0 out of range 1-31")
        assertError("0 0 32 * *", field: "day-of-month", contains: "value 32 out of range 1-31")
        assertError("0 0 L * *", field: "day-of-month", contains: "names are only allowed")
        assertError("0 0 15W * *", field: "day-of-month", contains: "invalid value")
        assertError("0 0 ? * *", field: "day-of-month", contains: "invalid value")
        assertError("0 0 * 13 *", field: "month", contains: "value 13 out of range")
        assertError("0 0 * 0 *", field: "month", contains: "value 0 out of range")
        assertError("0 0 * january *", field: "month", contains: "unknown name \"january\"")
        assertError("0 0 * foo *", field: "month", contains: "unknown name")
        assertError("0 0 * dec-jan *", field: "month", contains: "reversed range")
        assertError("0 0 * * 8", field: "day-of-week", contains: "value 8 out of range")
        assertError("0 0 * * sat-sun", field: "day-of-week", contains: "reversed range sat-sun")
        assertError("0 0 * * mon-jan", field: "day-of-week", contains: "unknown name \"jan\"")
        assertError("0 0 * * 1#2", field: "day-of-week", contains: "invalid value")
        assertError("0 0 * * */8", field: "day-of-week", contains: "step 8 exceeds 7")
    }

    func testErrorMessageFormat() {
        XCTAssertThrowsError(try CronExpression("0 0 32 * *")) { error in
            XCTAssertEqual(error as? CronError, CronError(
                field: "day-of-month", message: "day-of-month: value 32 out of range 1-31 in \"0 0 32 * *\""))
        }
    }

    func testImpossibleDatesAreRejectedAtParseTime() {
        assertError("0 0 31 2 *", field: "day-of-month", contains: "day 31 never occurs in February")
        assertError("0 0 30 2 *", field: "day-of-month", contains: "day 30 never occurs in February")
        assertError("0 0 30,31 feb *", field: "day-of-month", contains: "days 30,31 never occur in February")
        assertError("0 0 31 4,6,9,11 *", field: "day-of-month",
                    contains: "never occurs in April, June, September or November")
        // day-of-week starting with "*" means both fields must match, so still impossible
        assertError("0 0 31 2 */2", field: "day-of-month", contains: "never occurs")
        assertError("0 0 31 2 *,1", field: "day-of-month", contains: "never occurs")
        // Feb 29 exists in leap years; with a restricted weekday the fields are OR-ed
        XCTAssertNoThrow(try CronExpression("0 0 29 2 *"))
        XCTAssertNoThrow(try CronExpression("0 0 30,31 2,3 *"))
        XCTAssertNoThrow(try CronExpression("0 0 31 2 mon"))
        XCTAssertNoThrow(try CronExpression("0 0 */30 2 *"))
    }

    func testTextDescriptionAndEquality() throws {
        let a = try CronExpression(" 0  0 * * * ")
        XCTAssertEqual(a.text, " 0  0 * * * ")
        XCTAssertEqual(a.description, " 0  0 * * * ")
        XCTAssertEqual(a, try CronExpression(" 0  0 * * * "))
        XCTAssertNotEqual(try CronExpression("0 0 * * *"), try CronExpression("0 1 * * *"))
    }

    // MARK: semantics (UTC)

    func testBasicNextTimes() {
        XCTAssertEqual(next("*/15 9-17 * * mon-fri", after: "2024-03-08T16:50:00Z", 5, in: utc), [
            "2024-03-08T17:00:00Z", "2024-03-08T17:15:00Z", "2024-03-08T17:30:00Z", "2024-03-08T17:45:00Z",
            "2024-03-11T09:00:00Z",
        ])
        XCTAssertEqual(next("50/3 * * * *", after: "2024-01-01T00:00:00Z", 5, in: utc), [
            "2024-01-01T00:50:00Z", "2024-01-01T00:53:00Z", "2024-01-01T00:56:00Z", "2024-01-01T00:59:00Z",
            "2024-01-01T01:50:00Z",
        ])
        XCTAssertEqual(next("0 0 1 */5 *", after: "2024-01-15T00:00:00Z", 3, in: utc), [
            "2024-06-01T00:00:00Z", "2024-11-01T00:00:00Z", "2025-01-01T00:00:00Z",
        ])
        XCTAssertEqual(next("5,10-20/5,59 3 * * *", after: "2024-01-01T00:00:00Z", 6, in: utc), [
            "2024-01-01T03:05:00Z", "2024-01-01T03:10:00Z", "2024-01-01T03:15:00Z", "2024-01-01T03:20:00Z",
            "2024-01-01T03:59:00Z", "2024-01-02T03:05:00Z",
        ])
    }

    func testNamesAreCaseInsensitiveAndSevenIsSunday() {
        let start = "2024-01-01T00:00:00Z"
        XCTAssertEqual(next("0 0 * JAN-mar Mon,FRI", after: start, 8, in: utc),
                       next("0 0 * 1-3 1,5", after: start, 8, in: utc))
        let sundays = next("0 0 * * 0", after: start, 4, in: utc)
        XCTAssertEqual(sundays, ["2024-01-07T00:00:00Z", "2024-01-14T00:00:00Z", "2024-01-21T00:00:00Z",
                                 "2024-01-28T00:00:00Z"])
        XCTAssertEqual(next("0 0 * * 7", after: start, 4, in: utc), sundays)
        XCTAssertEqual(next("0 0 * * SUN", after: start, 4, in: utc), sundays)
        XCTAssertEqual(next("0 0 * * 7-7", after: start, 4, in: utc), sundays)
        XCTAssertEqual(next("0 0 * * 5-7", after: start, 3, in: utc),
                       ["2024-01-05T00:00:00Z", "2024-01-06T00:00:00Z", "2024-01-07T00:00:00Z"])
        XCTAssertEqual(next("0 0 * * 0-7", after: start, 7, in: utc), next("0 0 * * *", after: start, 7, in: utc))
        // a/n runs to Saturday; 7/n starts at Sunday
        XCTAssertEqual(next("0 0 * * mon/2", after: start, 4, in: utc), next("0 0 * * 1,3,5", after: start, 4, in: utc))
        XCTAssertEqual(next("0 0 * * 7/2", after: start, 8, in: utc), next("0 0 * * 0,2,4,6", after: start, 8, in: utc))
        // equal ends are a single value
        XCTAssertEqual(next("0 0 5-5 * *", after: start, 2, in: utc), ["2024-01-05T00:00:00Z", "2024-02-05T00:00:00Z"])
    }

    func testMacros() {
        let start = "2024-05-15T10:20:00Z"
        let pairs = [("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"), ("@monthly", "0 0 1 * *"),
                     ("@weekly", "0 0 * * 0"), ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"),
                     ("@hourly", "0 * * * *"), ("@Weekly", "0 0 * * sun")]
        for (macro, expansion) in pairs {
            XCTAssertEqual(next(macro, after: start, 3, in: utc), next(expansion, after: start, 3, in: utc), macro)
        }
        XCTAssertEqual(next("@weekly", after: start, 1, in: utc), ["2024-05-19T00:00:00Z"])
    }

    func testDayOfMonthAndDayOfWeekAreOredWhenBothRestricted() {
        // April 2024: the 1st is a Monday; Fridays are 5, 12, 19, 26.
        XCTAssertEqual(next("0 0 1,15 * fri", after: "2024-03-31T12:00:00Z", 5, in: utc), [
            "2024-04-01T00:00:00Z", "2024-04-05T00:00:00Z", "2024-04-12T00:00:00Z", "2024-04-15T00:00:00Z",
            "2024-04-19T00:00:00Z",
        ])
        // A field starting with "*" is unrestricted (Vixie cron): both must match,
        // so "*/2" + fri = odd-numbered Fridays.
        XCTAssertEqual(next("0 0 */2 * fri", after: "2024-03-31T12:00:00Z", 5, in: utc), [
            "2024-04-05T00:00:00Z", "2024-04-19T00:00:00Z", "2024-05-03T00:00:00Z", "2024-05-17T00:00:00Z",
            "2024-05-31T00:00:00Z",
        ])
        // "*,5" starts with "*" (and is every day): just the 13th
        XCTAssertEqual(next("0 0 13 * *,5", after: "2024-01-01T00:00:00Z", 2, in: utc),
                       ["2024-01-13T00:00:00Z", "2024-02-13T00:00:00Z"])
        // "*/5" = Sunday and Friday, AND-ed with the 13th
        XCTAssertEqual(next("0 0 13 * */5", after: "2024-01-01T00:00:00Z", 3, in: utc),
                       ["2024-09-13T00:00:00Z", "2024-10-13T00:00:00Z", "2024-12-13T00:00:00Z"])
        XCTAssertEqual(next("0 0 13 * 5", after: "2024-01-01T00:00:00Z", 3, in: utc),
                       ["2024-01-05T00:00:00Z", "2024-01-12T00:00:00Z", "2024-01-13T00:00:00Z"])
        // "1-31" does not start with "*": restricted, so OR-ed (every day here)
        XCTAssertEqual(next("0 0 1-31 * 5", after: "2024-01-01T00:00:00Z", 2, in: utc),
                       ["2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z"])
    }

    func testStrictlyAfterAndAtOrBefore() {
        let e = cron("0 12 * * *")
        let noon = at("2024-06-01T12:00:00Z")
        XCTAssertEqual(iso(e.next(after: noon, in: utc), utc), "2024-06-02T12:00:00Z")
        XCTAssertEqual(iso(e.next(after: noon.addingTimeInterval(-0.001), in: utc), utc), "2024-06-01T12:00:00Z")
        XCTAssertEqual(iso(e.previous(atOrBefore: noon, in: utc), utc), "2024-06-01T12:00:00Z")
        XCTAssertEqual(iso(e.previous(atOrBefore: noon.addingTimeInterval(-0.001), in: utc), utc),
                       "2024-05-31T12:00:00Z")
        XCTAssertEqual(iso(e.previous(atOrBefore: noon.addingTimeInterval(59.9), in: utc), utc), "2024-06-01T12:00:00Z")
        XCTAssertEqual(e.nextTimes(after: noon, count: 0, in: utc), [])
        XCTAssertEqual(e.nextTimes(after: noon, count: -3, in: utc), [])
        XCTAssertEqual(e.nextTimes(after: noon, count: 400, in: utc).count, 400)
    }

    func testLeapDayAndRareSchedulesAreFoundQuickly() {
        XCTAssertEqual(next("0 0 29 2 *", after: "2024-03-01T00:00:00Z", 3, in: utc),
                       ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z", "2036-02-29T00:00:00Z"])
        // Feb 29 that is a Sunday ("*/7" = Sunday, AND-ed): 2032, 2060, 2088, then 2128 (2100 is no leap year)
        let sunday29 = cron("0 0 29 2 */7")
        XCTAssertEqual(sunday29.nextTimes(after: at("2004-03-01T00:00:00Z"), count: 4, in: utc).map { iso($0, utc) },
                       ["2032-02-29T00:00:00Z", "2060-02-29T00:00:00Z", "2088-02-29T00:00:00Z",
                        "2128-02-29T00:00:00Z"])
        XCTAssertEqual(iso(sunday29.previous(atOrBefore: at("2128-02-28T00:00:00Z"), in: utc), utc),
                       "2088-02-29T00:00:00Z")
        let began = Date()
        for i in 0..<500 {
            _ = sunday29.next(after: at("2004-03-01T00:00:00Z").addingTimeInterval(Double(i) * 86_400), in: newYork)
            _ = sunday29.previous(atOrBefore: at("2130-03-01T00:00:00Z").addingTimeInterval(Double(i) * -86_400),
                                  in: berlin)
        }
        XCTAssertLessThan(Date().timeIntervalSince(began), 5, "next/previous must skip by field")
    }

    func testBoundedAtTheEdges() {
        let e = cron("0 0 * * *")
        XCTAssertNil(e.next(after: Date(timeIntervalSince1970: 1e15), in: utc))
        XCTAssertNil(e.previous(atOrBefore: Date(timeIntervalSince1970: -1e15), in: utc))
        XCTAssertNil(e.next(after: Date(timeIntervalSince1970: .infinity), in: utc))
        XCTAssertNil(e.next(after: Date(timeIntervalSince1970: .nan), in: utc))
        XCTAssertNotNil(e.next(after: .distantFuture, in: newYork))
        XCTAssertNotNil(e.previous(atOrBefore: .distantPast, in: utc))
    }

    // MARK: time zones and daylight saving

    func testNewYorkSpringForward() {
        // 2024-03-10: 02:00 EST jumps to 03:00 EDT (07:00Z); 02:xx does not exist.
        XCTAssertEqual(next("30 2 * * *", after: "2024-03-09T12:00:00-05:00", 3, in: newYork), [
            "2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00", "2024-03-12T02:30:00-04:00",
        ])
        // several matches inside the gap fire once
        XCTAssertEqual(next("*/15 2 * * *", after: "2024-03-10T00:00:00-05:00", 3, in: newYork), [
            "2024-03-10T03:00:00-04:00", "2024-03-11T02:00:00-04:00", "2024-03-11T02:15:00-04:00",
        ])
        // a gap match and a real 03:00 match coincide: once
        XCTAssertEqual(next("0,30 2,3 * * *", after: "2024-03-10T00:00:00-05:00", 3, in: newYork), [
            "2024-03-10T03:00:00-04:00", "2024-03-10T03:30:00-04:00", "2024-03-11T02:00:00-04:00",
        ])
        XCTAssertEqual(next("* * * * *", after: "2024-03-10T01:58:30-05:00", 3, in: newYork), [
            "2024-03-10T01:59:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-10T03:01:00-04:00",
        ])
        XCTAssertEqual(previous("30 2 * * *", atOrBefore: "2024-03-10T03:00:00-04:00", in: newYork),
                       "2024-03-10T03:00:00-04:00")
        XCTAssertEqual(previous("30 2 * * *", atOrBefore: "2024-03-10T01:59:59-05:00", in: newYork),
                       "2024-03-09T02:30:00-05:00")
        XCTAssertEqual(previous("*/15 2 * * *", atOrBefore: "2024-03-10T04:00:00-04:00", in: newYork),
                       "2024-03-10T03:00:00-04:00")
        XCTAssertEqual(previous("* * * * *", atOrBefore: "2024-03-10T03:00:59-04:00", in: newYork),
                       "2024-03-10T03:00:00-04:00")
    }

    func testNewYorkFallBack() {
        // 2024-11-03: 02:00 EDT falls back to 01:00 EST (06:00Z); 01:xx happens twice.
        XCTAssertEqual(next("30 1 * * *", after: "2024-11-03T00:00:00-04:00", 2, in: newYork), [
            "2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00",
        ])
        // starting inside the second 01:xx: the wall time already fired
        XCTAssertEqual(next("30 1 * * *", after: "2024-11-03T01:10:00-05:00", 1, in: newYork),
                       ["2024-11-04T01:30:00-05:00"])
        XCTAssertEqual(next("*/30 * * * *", after: "2024-11-03T00:10:00-04:00", 6, in: newYork), [
            "2024-11-03T00:30:00-04:00", "2024-11-03T01:00:00-04:00", "2024-11-03T01:30:00-04:00",
            "2024-11-03T02:00:00-05:00", "2024-11-03T02:30:00-05:00", "2024-11-03T03:00:00-05:00",
        ])
        XCTAssertEqual(previous("30 1 * * *", atOrBefore: "2024-11-03T01:45:00-05:00", in: newYork),
                       "2024-11-03T01:30:00-04:00")
        XCTAssertEqual(previous("0 * * * *", atOrBefore: "2024-11-03T01:30:00-05:00", in: newYork),
                       "2024-11-03T01:00:00-04:00")
        XCTAssertEqual(previous("0 * * * *", atOrBefore: "2024-11-03T02:00:00-05:00", in: newYork),
                       "2024-11-03T02:00:00-05:00")
        XCTAssertEqual(previous("30 1 * * *", atOrBefore: "2024-11-03T01:29:59-04:00", in: newYork),
                       "2024-11-02T01:30:00-04:00")
    }

    func testBerlinSpringForward() {
        // 2024-03-31: 02:00 CET jumps to 03:00 CEST (01:00Z).
        XCTAssertEqual(next("30 2 * * *", after: "2024-03-30T12:00:00Z", 3, in: berlin), [
            "2024-03-31T03:00:00+02:00", "2024-04-01T02:30:00+02:00", "2024-04-02T02:30:00+02:00",
        ])
        XCTAssertEqual(next("0-59/20 2 * * *", after: "2024-03-31T00:00:00+01:00", 2, in: berlin), [
            "2024-03-31T03:00:00+02:00", "2024-04-01T02:00:00+02:00",
        ])
        XCTAssertEqual(previous("30 2 * * *", atOrBefore: "2024-03-31T03:00:00+02:00", in: berlin),
                       "2024-03-31T03:00:00+02:00")
        XCTAssertEqual(previous("30 2 * * *", atOrBefore: "2024-03-31T02:59:59Z", in: berlin),
                       "2024-03-31T03:00:00+02:00")
        XCTAssertEqual(previous("30 2 * * *", atOrBefore: "2024-03-31T00:59:59Z", in: berlin),
                       "2024-03-30T02:30:00+01:00")
        XCTAssertEqual(next("@daily", after: "2024-03-30T12:00:00Z", 2, in: berlin), [
            "2024-03-31T00:00:00+01:00", "2024-04-01T00:00:00+02:00",
        ])
    }

    func testBerlinFallBack() {
        // 2024-10-27: 03:00 CEST falls back to 02:00 CET (01:00Z); 02:xx happens twice.
        XCTAssertEqual(next("30 2 * * *", after: "2024-10-26T12:00:00Z", 2, in: berlin), [
            "2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00",
        ])
        XCTAssertEqual(next("0 * * * *", after: "2024-10-27T01:30:00+02:00", 3, in: berlin), [
            "2024-10-27T02:00:00+02:00", "2024-10-27T03:00:00+01:00", "2024-10-27T04:00:00+01:00",
        ])
        XCTAssertEqual(previous("30 2 * * *", atOrBefore: "2024-10-27T02:45:00+01:00", in: berlin),
                       "2024-10-27T02:30:00+02:00")
        XCTAssertEqual(previous("*/10 * * * *", atOrBefore: "2024-10-27T02:59:00+01:00", in: berlin),
                       "2024-10-27T02:50:00+02:00")
        XCTAssertEqual(previous("*/10 * * * *", atOrBefore: "2024-10-27T03:00:00+01:00", in: berlin),
                       "2024-10-27T03:00:00+01:00")
    }

    func testShanghaiAndUTCHaveNoDaylightSaving() {
        XCTAssertEqual(next("0 9 * * mon-fri", after: "2024-03-08T12:00:00+08:00", 2, in: shanghai),
                       ["2024-03-11T09:00:00+08:00", "2024-03-12T09:00:00+08:00"])
        XCTAssertEqual(cron("0 9 * * mon-fri").next(after: at("2024-03-08T12:00:00+08:00"), in: shanghai),
                       at("2024-03-11T01:00:00Z"))
        XCTAssertEqual(next("30 2 * * *", after: "2024-03-09T12:00:00Z", 3, in: utc),
                       ["2024-03-10T02:30:00Z", "2024-03-11T02:30:00Z", "2024-03-12T02:30:00Z"])
        XCTAssertEqual(next("30 2 * * *", after: "2024-03-30T12:00:00+08:00", 2, in: shanghai),
                       ["2024-03-31T02:30:00+08:00", "2024-04-01T02:30:00+08:00"])
        XCTAssertEqual(previous("30 2 * * *", atOrBefore: "2024-11-03T02:30:00+08:00", in: shanghai),
                       "2024-11-03T02:30:00+08:00")
    }

    /// Brute force around real transitions: walk every minute and decide from
    /// the rules alone (wall-clock matching taken from the UTC evaluation,
    /// which the croniter differential test covers), then compare next() and
    /// previous() at many points.
    func testMatchesBruteForceAroundTransitions() {
        let windows: [(TimeZone, String)] = [
            (newYork, "2024-03-10T07:00:00Z"), (newYork, "2024-11-03T06:00:00Z"),
            (newYork, "2031-03-09T07:00:00Z"), (newYork, "2031-11-02T06:00:00Z"),
            (berlin, "2024-03-31T01:00:00Z"), (berlin, "2024-10-27T01:00:00Z"),
        ]
        var expressions = [
            "* * * * *", "*/7 * * * *", "30 2 * * *", "0 2 * * *", "59 1 * * *", "0,30 1-3 * * *",
            "*/20 2 * * *", "15 3 * * *", "0 0 * * *", "30 1 * * sun", "0 2 8-14 3 sun", "0 2 */1 3 sun",
            "45 2 * * 0", "0 3 * * *", "0 1 * * *", "30 0-4/2 * * *", "59 2 * * *", "0 2,3 * * *",
        ]
        var rng = CronTestRandom(seed: 7)
        for _ in 0..<12 {
            let m = ["*", "*/5", "0", "30", "15-45/15", "59", "0,20,40"][Int(rng.next() % 7)]
            let h = ["*", "1", "2", "3", "1-3", "0-4/2", "2,3"][Int(rng.next() % 7)]
            let dow = ["*", "sun", "0-6", "*/2", "sat,sun"][Int(rng.next() % 5)]
            expressions.append("\(m) \(h) * * \(dow)")
        }

        var checked = 0
        for (zone, transition) in windows {
            let t0 = Int(at(transition).timeIntervalSince1970)
            let scanStart = t0 - 2 * 86_400
            let scanEnd = t0 + 2 * 86_400
            func local(_ u: Int) -> Int { u + zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(u))) }
            let instants = Array(stride(from: scanStart, through: scanEnd, by: 60))
            let locals = instants.map { local($0) / 60 }   // wall-clock minutes (whole-minute offsets here)

            for text in expressions {
                let e = cron(text)
                // wall-clock minutes that match, from the UTC evaluation
                var matching = Set<Int>()
                var cursor = Date(timeIntervalSince1970: TimeInterval((locals.first! - 1) * 60))
                while let n = e.next(after: cursor, in: utc), Int(n.timeIntervalSince1970) / 60 <= locals.last! {
                    matching.insert(Int(n.timeIntervalSince1970) / 60)
                    cursor = n
                }
                // the rules
                var fires: [Int] = []
                var seen = Set<Int>()
                for (i, u) in instants.enumerated() {
                    let wall = locals[i]
                    var fire = matching.contains(wall) && !seen.contains(wall)     // first occurrence
                    if i > 0, wall > locals[i - 1] + 1 {                            // just after a gap
                        fire = fire || (locals[i - 1] + 1 ..< wall).contains(where: matching.contains)
                    }
                    seen.insert(wall)
                    if fire { fires.append(u) }
                }
                // probe points: a regular grid plus every fire near the transition, +-1 s
                var probes = Array(stride(from: scanStart + 86_400, through: scanEnd - 86_400, by: 37 * 60 + 13))
                for f in fires where abs(f - t0) <= 4 * 3600 { probes += [f - 1, f, f + 1] }
                for p in probes {
                    let date = Date(timeIntervalSince1970: TimeInterval(p))
                    if let expected = fires.first(where: { $0 > p }) {
                        XCTAssertEqual(e.next(after: date, in: zone).map { Int($0.timeIntervalSince1970) }, expected,
                                       "\(text) next after \(iso(date, zone)) in \(zone.identifier)")
                        checked += 1
                    }
                    if let expected = fires.last(where: { $0 <= p }), expected >= scanStart + 86_400 {
                        XCTAssertEqual(e.previous(atOrBefore: date, in: zone).map { Int($0.timeIntervalSince1970) },
                                       expected, "\(text) previous at or before \(iso(date, zone)) in \(zone.identifier)")
                        checked += 1
                    }
                }
            }
        }
        XCTAssertGreaterThan(checked, 10_000)
    }
}

/// Small deterministic PRNG for reproducible test inputs.
private struct CronTestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
