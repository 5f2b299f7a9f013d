import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small fault-injecting HTTP/1.1 proxy on 127.0.0.1, in front of the moto server, with
/// plain blocking sockets and one thread per connection. Each client connection carries one
/// request (answers say `Connection: close`); requests go upstream unchanged apart from
/// `Connection` (which SigV4 never signs). Sockets have 30 s timeouts, bodies are capped,
/// and `stop()` closes the listener, so nothing here runs unbounded.
///
/// Faults are rules: the first rule whose `when` matches a request and that has uses left
/// is applied (and used up once); otherwise the request passes through.
final class FaultProxy {
    enum Action {
        /// Answer with this status and an S3 `<Error>` body, without going upstream.
        case status(Int, code: String)
        /// Answer 200 with an `<Error>` body (what CompleteMultipartUpload can do).
        case okWithError(code: String)
        /// Read this many bytes of the request body, then drop the connection (RST).
        case dropRequestBody(after: Int)
        /// Forward, but send only this many bytes of the response body, then close.
        case truncateResponse(after: Int)
    }

    struct Request {
        let method: String
        let target: String
        let contentLength: Int
        /// Request headers, names in lowercase (what was signed and sent: lock headers, Content-MD5,
        /// the Authorization header's `Credential=` access key id).
        var headers: [String: String] = [:]
        var fault: String?
        var path: String { String(target.split(separator: "?", maxSplits: 1).first ?? "") }
        var query: String { target.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? "" }
        var isUploadPart: Bool { method == "PUT" && query.contains("partNumber=") }
        var isCompleteMultipart: Bool { method == "POST" && query.contains("uploadId=") }
    }

    private final class Rule {
        let action: Action
        var remaining: Int
        let when: (Request) -> Bool
        init(action: Action, remaining: Int, when: @escaping (Request) -> Bool) {
            self.action = action
            self.remaining = remaining
            self.when = when
        }
    }

    let port: Int
    let upstreamPort: Int
    private let listener: Int32
    private let lock = NSLock()
    private var rules: [Rule] = []
    private var log: [Request] = []
    private var stopped = false
    static let maxBody = 512 << 20

    init(upstreamPort: Int) throws {
        signal(SIGPIPE, SIG_IGN)
        self.upstreamPort = upstreamPort
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw MotoServer.StartError(description: "proxy socket(): \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = MotoServer.loopbackAddress(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            close(fd)
            throw MotoServer.StartError(description: "proxy bind/listen: \(String(cString: strerror(errno)))")
        }
        listener = fd
        port = try MotoServer.boundPort(fd)
        let thread = Thread { [weak self] in self?.acceptLoop(fd) }
        thread.start()
    }

    deinit { stop() }

    /// Adds a fault for the next `times` matching requests (`Int.max`: always).
    func inject(_ action: Action, times: Int = Int.max, when: @escaping (Request) -> Bool = { _ in true }) {
        lock.lock()
        rules.append(Rule(action: action, remaining: times, when: when))
        lock.unlock()
    }

    func clearFaults() {
        lock.lock()
        rules.removeAll()
        lock.unlock()
    }

    /// Requests seen so far (matching `filter`).
    func requests(where filter: (Request) -> Bool = { _ in true }) -> [Request] {
        lock.lock()
        defer { lock.unlock() }
        return log.filter(filter)
    }

    func resetLog() {
        lock.lock()
        log.removeAll()
        lock.unlock()
    }

    func stop() {
        lock.lock()
        let wasStopped = stopped
        stopped = true
        lock.unlock()
        if !wasStopped {
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
        }
    }

    // MARK: - Serving

    private func acceptLoop(_ fd: Int32) {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return  // listener closed
            }
            Self.setTimeouts(client)
            let thread = Thread { [weak self] in
                self?.serve(client)
                close(client)
            }
            thread.start()
        }
    }

    private func serve(_ client: Int32) {
        guard let (head, rest) = Self.readHead(client) else { return }
        var leftover = rest
        let lines = head.components(separatedBy: "\r\n")
        let requestLine = lines[0].split(separator: " ")
        guard requestLine.count >= 2 else { return }
        var headers: [(String, String)] = []
        for line in lines.dropFirst() where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        let contentLength = headers.first { $0.0.lowercased() == "content-length" }.flatMap { Int($0.1) } ?? 0
        guard contentLength <= Self.maxBody else { return }
        var request = Request(method: String(requestLine[0]), target: String(requestLine[1]), contentLength: contentLength)
        for (name, value) in headers { request.headers[name.lowercased()] = value }

        lock.lock()
        var action: Action?
        for rule in rules where rule.remaining > 0 && rule.when(request) {
            if case .dropRequestBody(let after) = rule.action, contentLength <= after { continue }
            action = rule.action
            rule.remaining -= 1
            break
        }
        request.fault = action.map { "\($0)" }
        log.append(request)
        lock.unlock()

        switch action {
        case .status(let status, let code)?:
            guard Self.readBody(client, leftover: &leftover, length: contentLength) != nil else { return }
            Self.answer(client, status: status, code: code, method: request.method)
            return
        case .okWithError(let code)?:
            guard Self.readBody(client, leftover: &leftover, length: contentLength) != nil else { return }
            Self.answer(client, status: 200, code: code, method: request.method)
            return
        case .dropRequestBody(let after)? where contentLength > after:
            _ = Self.readBody(client, leftover: &leftover, length: after)
            // Unread bytes in the receive buffer make close() send a RST.
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(client, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            return
        default:
            break
        }

        guard let body = Self.readBody(client, leftover: &leftover, length: contentLength) else { return }
        // Upstream: the same request, one per connection.
        let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard upstream >= 0 else { return }
        defer { close(upstream) }
        Self.setTimeouts(upstream)
        var address = MotoServer.loopbackAddress(port: upstreamPort)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { Self.answer(client, status: 502, code: "ProxyUpstreamDown", method: request.method); return }
        var outHead = lines[0] + "\r\n"
        for (name, value) in headers where name.lowercased() != "connection" { outHead += "\(name): \(value)\r\n" }
        outHead += "Connection: close\r\n\r\n"
        guard Self.writeAll(upstream, Array(outHead.utf8)), Self.writeAll(upstream, body) else { return }

        // The whole answer (moto closes after it), then on to the client.
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while response.count < Self.maxBody + 65536 {
            let n = recv(upstream, &chunk, chunk.count, 0)
            if n <= 0 { break }
            response.append(contentsOf: chunk[0..<n])
        }
        guard let split = Self.find(Array("\r\n\r\n".utf8), in: response) else { return }
        let responseHead = String(decoding: response[0..<split], as: UTF8.self)
        let responseBody = Array(response[(split + 4)...])
        var responseLines = responseHead.components(separatedBy: "\r\n")
        responseLines.removeAll { $0.lowercased().hasPrefix("connection:") }
        let newHead = responseLines.joined(separator: "\r\n") + "\r\nConnection: close\r\n\r\n"
        var sendBody = responseBody
        if case .truncateResponse(let after)? = action, request.method == "GET", responseBody.count > after {
            sendBody = Array(responseBody[0..<after])
        }
        _ = Self.writeAll(client, Array(newHead.utf8)) && Self.writeAll(client, sendBody)
        shutdown(client, Int32(SHUT_WR))
    }

    // MARK: - Socket helpers

    static func setTimeouts(_ fd: Int32) {
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    static func readHead(_ fd: Int32) -> (String, [UInt8])? {
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while data.count < 65536 {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { return nil }
            data.append(contentsOf: chunk[0..<n])
            if let split = find(Array("\r\n\r\n".utf8), in: data) {
                return (String(decoding: data[0..<split], as: UTF8.self), Array(data[(split + 4)...]))
            }
        }
        return nil
    }

    /// Reads `length` body bytes (starting with `leftover`); nil if the peer went away.
    static func readBody(_ fd: Int32, leftover: inout [UInt8], length: Int) -> [UInt8]? {
        var body = leftover.count > length ? Array(leftover[0..<length]) : leftover
        leftover = []
        body.reserveCapacity(length)
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while body.count < length {
            let n = recv(fd, &chunk, min(chunk.count, length - body.count), 0)
            if n <= 0 { return nil }
            body.append(contentsOf: chunk[0..<n])
        }
        return body
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    static func answer(_ fd: Int32, status: Int, code: String, method: String) {
        let body = method == "HEAD" ? "" :
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>\(code)</Code><Message>injected by FaultProxy</Message><RequestId>FAULT</RequestId></Error>"
        let head = "HTTP/1.1 \(status) \(status == 200 ? "OK" : "Injected")\r\nContent-Type: application/xml\r\n"
            + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
        _ = writeAll(fd, Array((head + body).utf8))
        shutdown(fd, Int32(SHUT_WR))
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var i = 0
        while i <= haystack.count - needle.count {
            if haystack[i] == needle[0] && Array(haystack[i..<(i + needle.count)]) == needle { return i }
            i += 1
        }
        return nil
    }
}
