import Crypto
import Foundation

/// A signed statement that row `rowID` of trail `trail` had hash `rowSHA256`
/// at `sealedAt` (CloudTrail's digest files, for one catalog). Stored as JSON on
/// every target, where the host's catalog cannot reach it back: a trail cut
/// short or recomputed after a seal no longer matches it.
public struct AuditSeal: Codable, Equatable, Sendable {
    public var format = 1
    public var trail: String
    public var host: String
    public var rowID: Int64
    public var rowSHA256: String
    /// Unix seconds.
    public var sealedAt: Double
    /// The signer's Ed25519 public key, base64 (for messages; trust comes from the policy folder's copy).
    public var publicKey: String
    /// Ed25519 over `signedBytes`, base64.
    public var signature: String

    enum CodingKeys: String, CodingKey {
        case format, trail, host, signature
        case rowID = "row_id", rowSHA256 = "row_sha256", sealedAt = "sealed_at", publicKey = "public_key"
    }

    /// What the signature covers: every field but the signature, in a fixed order.
    var signedBytes: Data {
        Data("bosbackup audit seal v1\n\(trail)\n\(host)\n\(rowID)\n\(rowSHA256)\n\(String(sealedAt.bitPattern, radix: 16))\n".utf8)
    }

    /// Seals `row` (which must be chained) with `key`.
    public static func make(trail: String, host: String, row: AuditRow, at date: Date, key: AuditSealKey) throws -> AuditSeal {
        var seal = AuditSeal(trail: trail, host: host, rowID: row.id, rowSHA256: row.sha256 ?? "", sealedAt: date.timeIntervalSince1970,
                             publicKey: key.publicKeyBase64, signature: "")
        seal.signature = try key.sign(seal.signedBytes).base64EncodedString()
        return seal
    }

    /// True when `publicKey` (the trusted one, not the seal's own) signed this seal.
    public func isSigned(by publicKey: Curve25519.Signing.PublicKey) -> Bool {
        guard let signature = Data(base64Encoded: signature) else { return false }
        return publicKey.isValidSignature(signature, for: signedBytes)
    }

    public var date: Date { Date(timeIntervalSince1970: sealedAt) }
}

/// The host's Ed25519 seal key: `audit-seal.key` (mode 0600, admin only) and
/// `audit-seal.pub` beside it in the policy folder. Made on first use.
public struct AuditSealKey: @unchecked Sendable /* swift-crypto's keys are immutable values */ {
    public static let privateFileName = "audit-seal.key"
    public static let publicFileName = "audit-seal.pub"
    static let privateTag = "bosbackup-seal-key-v1:"
    static let publicTag = "bosbackup-seal-pub-v1:"

    let privateKey: Curve25519.Signing.PrivateKey

    public var publicKey: Curve25519.Signing.PublicKey { privateKey.publicKey }
    public var publicKeyBase64: String { privateKey.publicKey.rawRepresentation.base64EncodedString() }

    func sign(_ data: Data) throws -> Data { try privateKey.signature(for: data) }

    /// The key in `folder`, made (both files) when there is none. `created` says it was.
    public static func loadOrCreate(folder: String) throws -> (key: AuditSealKey, created: Bool) {
        let path = (folder as NSString).appendingPathComponent(privateFileName)
        if DurableFile.exists(path) {
            var bytes = try EncryptionKey.readPrivateFile(path: path)
            defer { for i in bytes.indices { bytes[i] = 0 } }
            let raw = try decode(bytes, tag: privateTag, path: path)
            return (AuditSealKey(privateKey: try Curve25519.Signing.PrivateKey(rawRepresentation: raw)), false)
        }
        let key = AuditSealKey(privateKey: Curve25519.Signing.PrivateKey())
        let publicPath = (folder as NSString).appendingPathComponent(publicFileName)
        // The public half first: a private key nobody can check against would be worse than none.
        if !DurableFile.exists(publicPath) {
            try EncryptionKey.writeNewPrivateFile(Array((publicTag + key.publicKeyBase64 + "\n").utf8), to: publicPath, mode: 0o644)
        }
        let text = privateTag + key.privateKey.rawRepresentation.base64EncodedString() + "\n"
        try EncryptionKey.writeNewPrivateFile(Array(text.utf8), to: path)
        return (key, true)
    }

    /// The trusted public key: `audit-seal.pub` of the policy folder, or an auditor's own copy.
    public static func loadPublic(path: String) throws -> Curve25519.Signing.PublicKey {
        guard let data = FileManager.default.contents(atPath: path) else { throw AuditKeyMissing(path: path) }
        guard data.count < 4096 else { throw EncryptionKeyError.badFormat(path: path, reason: "file is \(data.count) bytes, far too large") }
        return try Curve25519.Signing.PublicKey(rawRepresentation: try decode(Array(data), tag: publicTag, path: path))
    }

    private static func decode(_ bytes: [UInt8], tag: String, path: String) throws -> Data {
        let line = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard line.hasPrefix(tag), let raw = Data(base64Encoded: String(line.dropFirst(tag.count))), raw.count == 32 else {
            throw EncryptionKeyError.badFormat(path: path, reason: "expected one line \(tag)<base64 of 32 bytes>")
        }
        return raw
    }
}

/// No trusted public key to check seals with.
public struct AuditKeyMissing: Error, CustomStringConvertible, CategorizedError, Sendable {
    public let path: String
    public var description: String {
        "no audit seal public key at \(path) (it is made with the first seal; give an auditor's copy with --public-key FILE)"
    }
    public var category: ErrorCategory { .input }
}
