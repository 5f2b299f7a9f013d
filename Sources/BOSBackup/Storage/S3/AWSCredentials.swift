import Foundation

/// An AWS access key pair, optionally with a session token (temporary credentials).
///
/// The secret and the token never appear in `description`, `debugDescription`, `dump()` or
/// any error message; the access key ID is shown masked (`AKIA****MPLE`).
public struct AWSCredentials: Sendable, Equatable {
    public let accessKeyID: String
    public let secretAccessKey: String
    public let sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    /// Standard environment variable names.
    public static let accessKeyIDVariable = "AWS_ACCESS_KEY_ID"
    public static let secretAccessKeyVariable = "AWS_SECRET_ACCESS_KEY"
    public static let sessionTokenVariable = "AWS_SESSION_TOKEN"
    public static let sharedCredentialsFileVariable = "AWS_SHARED_CREDENTIALS_FILE"
    public static let profileVariable = "AWS_PROFILE"
    public static let defaultProfile = "default"

    /// The access key ID with all but its first and last four characters hidden; IDs shorter
    /// than 12 characters are hidden entirely.
    public var maskedAccessKeyID: String {
        guard accessKeyID.count >= 12 else { return "****" }
        return "\(accessKeyID.prefix(4))****\(accessKeyID.suffix(4))"
    }
}

extension AWSCredentials: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        "AWSCredentials(accessKeyID: \(maskedAccessKeyID), secretAccessKey: <redacted>, "
            + "sessionToken: \(sessionToken == nil ? "none" : "<redacted>"))"
    }

    public var debugDescription: String { description }

    /// Keeps `dump()` and other Mirror-based printing from reaching the stored secret.
    public var customMirror: Mirror {
        Mirror(self, children: [
            "accessKeyID": maskedAccessKeyID,
            "secretAccessKey": "<redacted>",
            "sessionToken": sessionToken == nil ? "none" : "<redacted>",
        ], displayStyle: .struct)
    }
}

/// Errors from loading credentials. Messages are one line, name the variable, file or
/// profile at fault, and never include a secret or token value.
public enum AWSCredentialsError: Error, Equatable, CustomStringConvertible, LocalizedError {
    /// Neither environment variable of the pair is set.
    case environmentNotSet
    /// One of the pair is set (or empty) but the named one is missing.
    case missingEnvironmentVariable(String)
    case fileUnreadable(path: String, reason: String)
    case profileNotFound(profile: String, path: String)
    case missingKey(key: String, profile: String, path: String)
    /// No source had credentials (used by `resolve`).
    case noCredentialsFound(searched: String)

    public var description: String {
        switch self {
        case .environmentNotSet:
            return "AWS credentials: \(AWSCredentials.accessKeyIDVariable) and "
                + "\(AWSCredentials.secretAccessKeyVariable) are not set"
        case .missingEnvironmentVariable(let name):
            return "AWS credentials: environment variable \(name) is not set or empty"
        case .fileUnreadable(let path, let reason):
            return "AWS credentials: cannot read credentials file \(path): \(reason)"
        case .profileNotFound(let profile, let path):
            return "AWS credentials: profile '\(profile)' not found in \(path)"
        case .missingKey(let key, let profile, let path):
            return "AWS credentials: profile '\(profile)' in \(path) has no \(key)"
        case .noCredentialsFound(let searched):
            return "AWS credentials: none found (\(searched))"
        }
    }

    public var errorDescription: String? { description }
}

extension AWSCredentials {
    // MARK: - Environment

    /// Reads `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and (optional) `AWS_SESSION_TOKEN`
    /// from `environment` (pass `ProcessInfo.processInfo.environment` from the CLI).
    /// Empty values count as unset.
    public static func fromEnvironment(_ environment: [String: String]) throws -> AWSCredentials {
        func value(_ name: String) -> String? {
            guard let v = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !v.isEmpty
            else { return nil }
            return v
        }
        let id = value(accessKeyIDVariable)
        let secret = value(secretAccessKeyVariable)
        switch (id, secret) {
        case let (id?, secret?):
            return AWSCredentials(accessKeyID: id, secretAccessKey: secret,
                                  sessionToken: value(sessionTokenVariable))
        case (nil, nil):
            throw AWSCredentialsError.environmentNotSet
        case (nil, _):
            throw AWSCredentialsError.missingEnvironmentVariable(accessKeyIDVariable)
        case (_, nil):
            throw AWSCredentialsError.missingEnvironmentVariable(secretAccessKeyVariable)
        }
    }

    // MARK: - Shared credentials file

    /// Loads a profile from an AWS shared credentials file (INI: `[profile]` sections with
    /// `aws_access_key_id`, `aws_secret_access_key`, optional `aws_session_token`).
    public static func fromCredentialsFile(atPath path: String, profile: String = defaultProfile) throws -> AWSCredentials {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw AWSCredentialsError.fileUnreadable(path: path, reason: "no such file")
        }
        guard !isDirectory.boolValue else {
            throw AWSCredentialsError.fileUnreadable(path: path, reason: "is a directory")
        }
        // A secret others can read is refused, as a key file is (ssh does the same).
        var st = stat()
        if stat(path, &st) == 0, st.st_mode & 0o077 != 0 {
            throw AWSCredentialsError.fileUnreadable(path: path, reason: "group or others may read it (mode \(String(st.st_mode & 0o777, radix: 8))); chmod 600 \(path)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AWSCredentialsError.fileUnreadable(path: path, reason: "permission denied or I/O error")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw AWSCredentialsError.fileUnreadable(path: path, reason: "not valid UTF-8 text")
        }
        return try fromCredentialsFileContents(text, profile: profile, path: path)
    }

    /// Parses credentials-file text; `path` is only used in error messages.
    public static func fromCredentialsFileContents(_ text: String, profile: String = defaultProfile,
                                                   path: String) throws -> AWSCredentials {
        let sections = parseINI(text)
        guard let section = sections[profile] else {
            throw AWSCredentialsError.profileNotFound(profile: profile, path: path)
        }
        func required(_ key: String) throws -> String {
            guard let v = section[key], !v.isEmpty else {
                throw AWSCredentialsError.missingKey(key: key, profile: profile, path: path)
            }
            return v
        }
        let id = try required("aws_access_key_id")
        let secret = try required("aws_secret_access_key")
        let token = section["aws_session_token"].flatMap { $0.isEmpty ? nil : $0 }
        return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token)
    }

    /// Minimal INI reader with the conventions of the AWS CLI's files:
    /// `[name]` or `[profile name]` headers; `key = value` or `key: value` (split at the first
    /// separator, so base64 values ending in `=` survive); keys are case-insensitive; lines
    /// starting with `#` or `;` are comments; indented lines continue a nested setting and
    /// are ignored; a section repeated later adds to / overrides the earlier one.
    static func parseINI(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline) {
            if let first = rawLine.first, first == " " || first == "\t" { continue }
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]") else { current = nil; continue }
                var name = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                if name.hasPrefix("profile ") {
                    name = name.dropFirst("profile ".count).trimmingCharacters(in: .whitespaces)
                }
                current = name
                if sections[name] == nil { sections[name] = [:] }
                continue
            }
            guard let section = current,
                  let sep = line.firstIndex(where: { $0 == "=" || $0 == ":" }) else { continue }
            let key = line[..<sep].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: sep)...].trimmingCharacters(in: .whitespaces)
            sections[section, default: [:]][key] = value
        }
        return sections
    }

    // MARK: - Resolution order

    /// Resolves credentials for a backup target, in this order:
    /// 1. if the target names a `credentialsFile` or `profile`: that file (default
    ///    `$AWS_SHARED_CREDENTIALS_FILE`, else `$HOME/.aws/credentials`) and profile (default
    ///    `$AWS_PROFILE`, else `default`);
    /// 2. else the environment variables, if either key variable is set;
    /// 3. else the default shared credentials file, as in 1.
    public static func resolve(environment: [String: String], credentialsFile: String? = nil,
                               profile: String? = nil) throws -> AWSCredentials {
        let defaultFile = environment[sharedCredentialsFileVariable].flatMap { $0.isEmpty ? nil : $0 }
            ?? environment["HOME"].map { ($0.hasSuffix("/") ? $0 : $0 + "/") + ".aws/credentials" }
        let profileName = profile ?? environment[profileVariable].flatMap { $0.isEmpty ? nil : $0 } ?? defaultProfile

        if credentialsFile != nil || profile != nil {
            guard let path = credentialsFile ?? defaultFile else {
                throw AWSCredentialsError.noCredentialsFound(
                    searched: "no credentials_file given and HOME is not set")
            }
            return try fromCredentialsFile(atPath: path, profile: profileName)
        }
        let envHasKeys = [accessKeyIDVariable, secretAccessKeyVariable]
            .contains { !(environment[$0] ?? "").isEmpty }
        if envHasKeys { return try fromEnvironment(environment) }

        guard let path = defaultFile, FileManager.default.fileExists(atPath: path) else {
            throw AWSCredentialsError.noCredentialsFound(
                searched: "set \(accessKeyIDVariable) and \(secretAccessKeyVariable), or create "
                    + (defaultFile ?? "~/.aws/credentials"))
        }
        return try fromCredentialsFile(atPath: path, profile: profileName)
    }
}
