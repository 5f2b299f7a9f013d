import Foundation

/// When and how often an S3 request is tried again.
///
/// Transient failures — HTTP 5xx (but 501), 429, the S3 codes `SlowDown`, `RequestTimeout`,
/// `InternalError`, `BadDigest`/`XAmzContentSHA256Mismatch`/`IncompleteBody` (bytes damaged
/// in transit; the request is re-sent from our buffer), timeouts, refused, reset or closed
/// connections — are retried with exponential backoff and full jitter
/// (`sleep = random(0, min(maxDelay, baseDelay × 2^(retry-1)))`), bounded both in attempts
/// and in total time since the first attempt. Everything else (400, 403, 404, signature and
/// credential errors, ...) fails at once. Every attempt is signed anew, with a fresh date.
///
/// Throttling (429, 503, `SlowDown`, a 500 asking to "reduce your request rate") is the
/// server telling us to wait, not failing: it is retried by time alone — until
/// `maxTotalTime` (the target's `retry_for`, 2 minutes unless set), waiting what the
/// server's `Retry-After` asks where it says — not given up after a few attempts.
public struct S3RetryPolicy: Sendable {
    /// Total attempts, the first included (1 = no retry).
    public var maxAttempts: Int
    /// No attempt is started once this many seconds have passed since the first one, and no
    /// backoff sleep is begun that would end past it.
    public var maxTotalTime: Double
    public var baseDelay: Double
    public var maxDelay: Double
    /// Sleeps for a number of seconds; injectable so tests need not wait.
    public var sleep: @Sendable (Double) async throws -> Void
    /// Returns a uniformly random number in `0...upper`; injectable for deterministic tests.
    public var random: @Sendable (Double) -> Double
    /// Monotonic seconds; injectable together with `sleep` to test the time bound.
    public var now: @Sendable () -> Double

    public init(maxAttempts: Int = 5, maxTotalTime: Double = 120, baseDelay: Double = 0.25, maxDelay: Double = 20,
                sleep: @escaping @Sendable (Double) async throws -> Void = S3RetryPolicy.taskSleep,
                random: @escaping @Sendable (Double) -> Double = { $0 > 0 ? Double.random(in: 0...$0) : 0 },
                now: @escaping @Sendable () -> Double = S3RetryPolicy.monotonicSeconds) {
        self.maxAttempts = max(1, maxAttempts)
        self.maxTotalTime = maxTotalTime
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.sleep = sleep
        self.random = random
        self.now = now
    }

    public static let `default` = S3RetryPolicy()

    /// Backoff before retry number `retry` (1 for the second attempt), full jitter.
    public func delay(beforeRetry retry: Int) -> Double {
        let exponent = Double(min(max(retry - 1, 0), 30))
        return random(min(maxDelay, baseDelay * pow(2, exponent)))
    }

    @Sendable public static func taskSleep(_ seconds: Double) async throws {
        guard seconds > 0 else { return }
        try await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))
    }

    @Sendable public static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

// MARK: - Failures

/// One failed S3 attempt, as the request layer sees it.
struct S3Failure: Error {
    enum Kind: Equatable {
        /// S3 answered with an error status (or a 200 carrying an `<Error>` body).
        case http(status: Int, code: String?)
        /// No usable answer: timeout, refused/reset/closed connection, cut-off body.
        case network
        /// The answer does not match what was sent (ETag, size) or cannot be understood.
        case integrity
        case badResponse
    }

    var kind: Kind
    /// Server message or network error text; never contains a credential.
    var detail: String
    var retryable: Bool
    /// The server asks us to slow down: retried by time, not by attempts.
    var throttled = false
    /// Seconds the server's `Retry-After` asked for.
    var retryAfter: Double?

    static func http(status: Int, code: String?, message: String?, retryAfter: Double? = nil) -> S3Failure {
        var failure = S3Failure(kind: .http(status: status, code: code), detail: message ?? "",
                                retryable: isRetryable(status: status, code: code))
        failure.throttled = isThrottling(status: status, code: code, message: message)
        failure.retryAfter = retryAfter
        return failure
    }

    static let throttlingCodes: Set<String> = ["SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "ServiceUnavailable"]

    static func isThrottling(status: Int, code: String?, message: String?) -> Bool {
        if let code, throttlingCodes.contains(code) { return true }
        if status == 429 || status == 503 { return true }
        return status == 500 && (message ?? "").lowercased().contains("reduce your request rate")
    }

    static func network(_ detail: String) -> S3Failure {
        S3Failure(kind: .network, detail: detail, retryable: true)
    }

    /// S3 error codes that are worth another attempt whatever their status.
    static let retryableCodes: Set<String> = [
        "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling",
        "ThrottlingException", "RequestLimitExceeded", "BadDigest", "XAmzContentSHA256Mismatch",
        "IncompleteBody", "OperationAborted",
    ]

    /// Codes that mean the request can never succeed as configured.
    static let permanentCodes: Set<String> = [
        "SignatureDoesNotMatch", "InvalidAccessKeyId", "ExpiredToken", "InvalidToken", "AccessDenied",
        "TokenRefreshRequired", "RequestTimeTooSkewed", "NoSuchBucket", "NoSuchKey", "NoSuchUpload",
        "InvalidBucketName", "AllAccessDisabled", "AccountProblem", "NotImplemented",
    ]

    static func isRetryable(status: Int, code: String?) -> Bool {
        if let code {
            if permanentCodes.contains(code) { return false }
            if retryableCodes.contains(code) { return true }
        }
        if status == 429 { return true }
        if status >= 500 { return status != 501 }
        return false
    }
}

/// The error an S3 operation ends with, after its attempts: one line naming the operation,
/// the bucket/key, the HTTP status and S3 error code, and how many attempts were made.
struct S3OperationError: Error, CustomStringConvertible {
    let operation: String
    let resource: String
    let failure: S3Failure
    let attempts: Int
    let elapsed: Double
    /// Why retrying stopped, when it was retryable.
    let gaveUp: String?

    var description: String {
        var text = "S3 \(operation) \(resource) failed"
        if attempts > 1 {
            text += " after \(attempts) attempts in \(String(format: "%.1f", elapsed))s"
        }
        text += ": "
        switch failure.kind {
        case .http(let status, let code):
            text += "HTTP \(status)"
            if let code { text += " \(code)" }
            if !failure.detail.isEmpty { text += " (\(failure.detail))" }
            text += Self.hint(status: status, code: code)
        case .network:
            text += "network error: \(failure.detail)"
        case .integrity:
            text += "integrity check failed: \(failure.detail)"
        case .badResponse:
            text += "unexpected response: \(failure.detail)"
        }
        if let gaveUp { text += " [\(gaveUp)]" }
        // One line, whatever the server sent.
        return text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    var httpStatus: Int? {
        if case .http(let status, _) = failure.kind { return status }
        return nil
    }

    var code: String? {
        if case .http(_, let code) = failure.kind { return code }
        return nil
    }

    static func hint(status: Int, code: String?) -> String {
        switch code {
        case "SignatureDoesNotMatch": return " — check the secret access key and the region"
        case "InvalidAccessKeyId": return " — the access key ID is unknown to this server"
        case "ExpiredToken", "InvalidToken", "TokenRefreshRequired": return " — the session token has expired; refresh the credentials"
        case "AccessDenied", "AllAccessDisabled": return " — check the credentials and the bucket policy"
        case "RequestTimeTooSkewed": return " — this machine's clock is off; fix the time (NTP)"
        case "NoSuchBucket": return " — the bucket does not exist"
        case "BadDigest", "InvalidDigest": return " — the server received other bytes than were sent (Content-MD5)"
        case "InvalidRequest" where status == 400: return " — with object_lock, the bucket must have Object Lock enabled"
        default:
            if status == 403 { return " — check the credentials and the bucket policy" }
            if status == 301 || status == 307 || code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" {
                return " — the bucket is in another region; set region= in the target URL"
            }
            return ""
        }
    }
}

/// Wraps an error thrown by the caller's own code (a consumer closure) so the retry loop
/// passes it through untouched.
struct S3PassThrough: Error {
    let error: Error
}

extension S3RetryPolicy {
    /// Runs `attempt` until it succeeds, fails permanently, or the attempt or time bound is
    /// reached. `attempt` gets the attempt number (1-based) and must build and sign its
    /// request anew each time. Errors other than `S3Failure` end the loop at once
    /// (cancellation, the caller's own errors).
    func run<T>(operation: String, resource: String, _ attempt: (Int) async throws -> T) async throws -> T {
        let start = now()
        var number = 0
        while true {
            number += 1
            do {
                return try await attempt(number)
            } catch let failure as S3Failure {
                let elapsed = now() - start
                func fail(_ gaveUp: String?) -> S3OperationError {
                    S3OperationError(operation: operation, resource: resource, failure: failure,
                                     attempts: number, elapsed: elapsed, gaveUp: gaveUp)
                }
                guard failure.retryable else { throw fail(nil) }
                guard number < maxAttempts || (failure.throttled && maxAttempts > 1) else {
                    throw fail(maxAttempts > 1 ? "giving up: \(maxAttempts) attempts" : nil)
                }
                try Task.checkCancellation()
                let pause = failure.retryAfter.map { min($0, maxDelay) } ?? delay(beforeRetry: number)
                guard elapsed + pause < maxTotalTime else {
                    throw fail("giving up: retry time limit \(Int(maxTotalTime))s reached")
                }
                try await sleep(pause)
            }
        }
    }
}
