import Foundation
import XCTest

/// What the packaging and unit tests need: the shipped binary, tools on PATH, unit files.
enum Packaging {
    /// The self-contained binary `make build` links (.build/dist/bosbackup). `make test` names it
    /// in BOSBACKUP_RELEASE_BIN and a missing one fails; a plain `swift test` without it skips.
    static func releaseBinary() throws -> String {
        if let path = ProcessInfo.processInfo.environment["BOSBACKUP_RELEASE_BIN"] {
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw NSError(domain: "test", code: 1, userInfo: [NSLocalizedDescriptionKey: "BOSBACKUP_RELEASE_BIN=\(path) is not an executable"])
            }
            return path
        }
        let path = Fixtures.repoRoot + "/.build/dist/bosbackup"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw XCTSkip("no release binary at \(path): `make build` (or `make test`) links it")
        }
        return path
    }

    /// SwiftPM's own link of the same objects, with the Swift runtime as shared libraries.
    static var dynamicBinary: String? {
        let path = Fixtures.repoRoot + "/.build/release/bosbackup"
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    static func tool(_ name: String) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        for folder in path + ["/usr/sbin", "/sbin"] {
            let path = "\(folder)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    static func requireTool(_ name: String) throws -> String {
        guard let path = tool(name) else { throw XCTSkip("\(name) is not installed") }
        return path
    }

    static func requireRoot(_ why: String) throws {
        guard getuid() == 0 else { throw XCTSkip("needs root: \(why)") }
    }

    /// The Swift toolchain this test process runs on: the folder above usr/lib/swift that holds
    /// the libswiftCore.so mapped into this process (/opt/swift here).
    static var toolchainRoot: String? {
        // /proc files report size 0: read to the end rather than by their size.
        guard let handle = FileHandle(forReadingAtPath: "/proc/self/maps") else { return nil }
        let maps = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        for line in maps.split(separator: "\n") {
            guard let slash = line.firstIndex(of: "/") else { continue }
            let path = String(line[slash...])
            if path.hasSuffix("/libswiftCore.so"), let range = path.range(of: "/usr/lib/swift/") {
                return String(path[..<range.lowerBound])
            }
        }
        return nil
    }

    static func sh(_ script: String, environment: [String: String]? = nil, timeout: TimeInterval = 300) throws -> ProcessResult {
        try runProcess("/bin/sh", ["-c", script], environment: environment, timeout: timeout)
    }

    static func quote(_ word: String) -> String { "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    static func read(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }
}

/// A unit file as systemd reads it: per section, each key's values in order (comments dropped).
struct UnitFile {
    var sections: [String: [(key: String, value: String)]] = [:]

    init(_ text: String) {
        var section = ""
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") { section = String(line.dropFirst().dropLast()); continue }
            guard let eq = line.firstIndex(of: "=") else { continue }
            sections[section, default: []].append((String(line[..<eq]), String(line[line.index(after: eq)...])))
        }
    }

    func values(_ section: String, _ key: String) -> [String] {
        (sections[section] ?? []).filter { $0.key == key }.map(\.value)
    }

    func value(_ section: String, _ key: String) -> String? { values(section, key).last }
}
