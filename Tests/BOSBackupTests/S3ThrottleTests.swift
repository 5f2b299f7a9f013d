@testable import BOSBackup
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A server asking us to slow down is waited for, by time; housekeeping
/// against a server that is not there is bounded.
final class S3ThrottleTests: XCTestCase {
    /// 503 SlowDown for `THROTTLE_SECONDS` (12 by default, 30 in make torture),
    /// then the server recovers: the upload completes, having outlasted far
    /// more than the old five attempts.
    func testAThrottlingServerIsWaitedForUntilItRecovers() async throws {
        let moto = try MotoServer.shared()
        let bucket = try await moto.makeBucket()
        let proxy = try FaultProxy(upstreamPort: moto.port)
        addTeardownBlock { proxy.stop() }
        let seconds = Double(ProcessInfo.processInfo.environment["THROTTLE_SECONDS"] ?? "12") ?? 12
        let until = Date().addingTimeInterval(seconds)
        proxy.inject(.status(503, code: "SlowDown")) { _ in Date() < until }
        let target = try moto.target(bucket: bucket, prefix: "t", port: proxy.port,
                                     options: .init(retry: S3RetryPolicy(maxTotalTime: seconds + 60, maxDelay: 4)))
        let began = Date()
        try await target.put(key: "slow.bin", data: Data(repeating: 7, count: 4096))
        let elapsed = Date().timeIntervalSince(began)
        XCTAssertGreaterThanOrEqual(elapsed, seconds - 0.5, "it waited the throttling out")
        let throttled = proxy.requests { $0.fault != nil }.count
        XCTAssertGreaterThan(throttled, 5, "more attempts than the attempt bound: throttling is retried by time")
        let back = try await target.get(key: "slow.bin")
        XCTAssertEqual(back, Data(repeating: 7, count: 4096))
        print("s3 throttle: \(Int(seconds)) s of 503 SlowDown, \(throttled) throttled attempts, upload done after \(String(format: "%.1f", elapsed)) s")
    }

    /// Throttling still ends at the time bound, and a Retry-After is what we wait.
    func testThrottlingEndsAtTheTimeBoundAndHonoursRetryAfter() async throws {
        let clock = ManualClock()
        let policy = S3RetryPolicy(maxAttempts: 5, maxTotalTime: 120, sleep: { clock.advance($0) }, now: { clock.now })
        var attempts = 0
        do {
            _ = try await policy.run(operation: "PutObject", resource: "b/k") { _ -> Int in
                attempts += 1
                throw S3Failure.http(status: 503, code: "SlowDown", message: "Please reduce your request rate.", retryAfter: 7)
            }
            XCTFail("must give up")
        } catch let error as S3OperationError {
            XCTAssertTrue("\(error)".contains("retry time limit"), "\(error)")
        }
        XCTAssertEqual(attempts, 18, "every 7 s (Retry-After) for 120 s, not 5 attempts")
        XCTAssertTrue(clock.sleeps.allSatisfy { $0 == 7 }, "\(clock.sleeps)")
        let parsed = S3Target.httpFailure(status: 503, reason: "Slow Down", body: Data(), retryAfter: " 3 ")
        XCTAssertEqual(parsed.retryAfter, 3)
        XCTAssertTrue(parsed.throttled)
        XCTAssertTrue(S3Failure.http(status: 500, code: "InternalError", message: "Please reduce your request rate").throttled)
        XCTAssertFalse(S3Failure.http(status: 500, code: "InternalError", message: "We encountered an internal error").throttled)
    }

    /// A server that accepts connections and never answers: the stale-upload
    /// cleanup at the start of a run gives up within its budget.
    func testCleanupAgainstASilentServerIsBounded() async throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                XCTAssertEqual(bind(listener, $0, length), 0)
                XCTAssertEqual(getsockname(listener, $0, &length), 0)
            }
        }
        XCTAssertEqual(listen(listener, 64), 0)   // accepted by the kernel, never answered
        let port = Int(UInt16(bigEndian: address.sin_port))
        let location = try S3Location(bucket: "silent", endpoint: URL(string: "http://127.0.0.1:\(port)")!)
        let target = S3Target(location: location, credentials: MotoServer.credentials)
        let began = Date()
        do {
            _ = try await target.abortStaleUploads(budget: 6)
            XCTFail("a silent server cannot succeed")
        } catch {}
        let elapsed = Date().timeIntervalSince(began)
        XCTAssertLessThan(elapsed, 15, "bounded by the budget, not by the 300 s request timeout")
    }
}

/// A clock the retry loop's sleeps advance, so time-bound tests take no time.
final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var seconds = 0.0
    private var slept: [Double] = []
    var now: Double { lock.lock(); defer { lock.unlock() }; return seconds }
    var sleeps: [Double] { lock.lock(); defer { lock.unlock() }; return slept }
    func advance(_ by: Double) { lock.lock(); seconds += by; slept.append(by); lock.unlock() }
}
