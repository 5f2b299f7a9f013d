import Foundation

/// What a target is opened for: everything but pruning writes and reads (`write`); `prune`
/// deletes. With split credentials (issue #17) the writer's key may store objects and extend
/// their locks but not delete, and only the prune key may delete.
public enum CredentialRole: String, Sendable, CaseIterable {
    case write
    case prune
}

/// Which credentials a policy target is opened with, said without a secret: where they come
/// from and the access key id with its middle hidden.
public enum TargetCredentials {
    /// The commands that open targets, by the credentials they open them with. `run` and the daemon
    /// back up and archive with the writer's and apply retention with the prune credentials.
    public static let commands: [(command: String, roles: [CredentialRole])] = [
        ("backup", [.write]), ("archive", [.write]), ("run/daemon", [.write, .prune]), ("verify", [.write]),
        ("restore/diff/recover", [.write]), ("drill", [.write]), ("catalog rebuild", [.write]), ("check", [.write]),
        ("prune", [.prune]),
    ]

    /// "credentials file /etc/bosbackup/writer.ini, profile default, key AKIA…2345", or why
    /// they cannot be loaded. Nil for a folder target.
    public static func describe(_ config: Policy.TargetConfig, role: CredentialRole, environment: [String: String]) -> String? {
        guard config.url.lowercased().hasPrefix("s3://") else { return nil }
        let pruning = role == .prune && config.hasPruneCredentials
        let location = try? S3Location(parsing: config.url)
        let file = pruning ? config.pruneCredentialsFile ?? config.credentialsFile ?? location?.credentialsFile
            : config.credentialsFile ?? location?.credentialsFile
        let profile = pruning ? config.pruneProfile ?? location?.profile : location?.profile
        var source: String
        if file != nil || profile != nil {
            source = "credentials file \(file ?? "(default)"), profile \(profile ?? "default")"
        } else if [AWSCredentials.accessKeyIDVariable, AWSCredentials.secretAccessKeyVariable].contains(where: { !(environment[$0] ?? "").isEmpty }) {
            source = "environment \(AWSCredentials.accessKeyIDVariable)"
        } else {
            source = "default credentials file"
        }
        do {
            let credentials = try AWSCredentials.resolve(environment: environment, credentialsFile: file, profile: profile)
            source += ", key \(maskedKeyID(credentials.accessKeyID))"
        } catch {
            source += " (cannot be loaded: \(error))"
        }
        return source
    }

    /// The first and last four characters of an access key id: enough to tell two keys apart.
    public static func maskedKeyID(_ id: String) -> String {
        id.count > 8 ? "\(id.prefix(4))…\(id.suffix(4))" : "…"
    }
}
