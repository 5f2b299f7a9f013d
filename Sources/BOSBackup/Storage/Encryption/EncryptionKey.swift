import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why a key file could not be read or written. One line each, never any
/// key material.
public enum EncryptionKeyError: Error, CategorizedError, CustomStringConvertible, Sendable, Equatable {
    case missing(path: String)
    case unreadable(path: String, reason: String)
    case badFormat(path: String, reason: String)
    case badLength(path: String, byteCount: Int)
    case tooOpen(path: String, mode: UInt32)
    case exists(path: String)
    case writeFailed(path: String, reason: String)

    public var category: ErrorCategory {
        switch self {
        case .writeFailed: return .failure
        default: return .input
        }
    }

    public var description: String {
        switch self {
        case .missing(let path):
            return "encryption key file \(path) does not exist"
        case .unreadable(let path, let reason):
            return "cannot read encryption key file \(path): \(reason)"
        case .badFormat(let path, let reason):
            return "\(path) is not a bosbackup key file: \(reason) (expected one line \(EncryptionKey.fileTag):<base64 of 32 bytes>)"
        case .badLength(let path, let count):
            return "key file \(path) holds a \(count)-byte key; bosbackup keys are \(EncryptionKey.byteCount) bytes (256 bits)"
        case .tooOpen(let path, let mode):
            return "key file \(path) is accessible by group or others (mode \(String(mode, radix: 8))): "
                + "refusing to use it; run: chmod 600 \(path)"
        case .exists(let path):
            return "key file \(path) already exists: refusing to overwrite it"
        case .writeFailed(let path, let reason):
            return "cannot write key file \(path): \(reason)"
        }
    }
}

/// A 256-bit AES key for encryption at rest.
///
/// Key file: one text line `bosbackup-key-v1:<base64 of the 32 bytes>` and a
/// newline, mode 0600. Its short `id` (8 hex digits) is stored in every
/// encrypted stream so a wrong key is reported as such; it is derived through
/// a domain-separated KDF, so it tells nothing about the key. Neither
/// `description`, `debugDescription` nor the mirror (`dump`) shows key bytes.
public struct EncryptionKey: Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable,
    @unchecked Sendable /* SymmetricKey is immutable storage, not yet marked Sendable by swift-crypto 3.x */ {
    public static let byteCount = 32
    public static let fileTag = "bosbackup-key-v1"
    static let keyIDInfo = Array("bosbackup key id v1".utf8)
    /// Largest key file accepted (a key line is 62 bytes).
    static let maxFileSize = 4096

    let symmetricKey: SymmetricKey
    let idBytes: [UInt8]

    /// 8 hex digits naming the key (safe to print and log).
    public var id: String { EncryptedStreamFormat.hex(idBytes) }

    init(_ key: SymmetricKey) {
        precondition(key.bitCount == EncryptionKey.byteCount * 8)
        symmetricKey = key
        let material = HKDF<SHA256>.deriveKey(inputKeyMaterial: key, info: EncryptionKey.keyIDInfo, outputByteCount: 32)
        let digest = material.withUnsafeBytes { SHA256.hash(data: $0) }
        idBytes = Array(digest.prefix(EncryptedStreamFormat.keyIDSize))
    }

    /// A new random key from the system's secure generator.
    public static func generate() -> EncryptionKey {
        EncryptionKey(SymmetricKey(size: .bits256))
    }

    /// A key from its 32 raw bytes.
    public init<D: ContiguousBytes>(rawBytes: D) throws {
        let count = rawBytes.withUnsafeBytes { $0.count }
        guard count == EncryptionKey.byteCount else {
            throw EncryptionKeyError.badLength(path: "(raw bytes)", byteCount: count)
        }
        self.init(SymmetricKey(data: rawBytes))
    }

    public static func == (lhs: EncryptionKey, rhs: EncryptionKey) -> Bool {
        lhs.symmetricKey == rhs.symmetricKey   // constant-time in swift-crypto
    }

    public var description: String { "EncryptionKey(id: \(id))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["id": id], displayStyle: .struct) }

    /// The key file's text. Internal: only `write(to:)` needs it.
    var fileText: String {
        let base64 = symmetricKey.withUnsafeBytes { Data($0).base64EncodedString() }
        return EncryptionKey.fileTag + ":" + base64 + "\n"
    }

    // MARK: Key files

    /// Reads a key file, refusing one that group or others can access.
    public static func load(path: String) throws -> EncryptionKey {
        var buffer = try readPrivateFile(path: path)
        defer { for i in buffer.indices { buffer[i] = 0 } }
        return try parse(fileBytes: buffer[...], path: path)
    }

    /// The bytes of a small key file (at most `maxFileSize`), refused unless it is a
    /// regular file no group or other may access. The caller zeroes them when done.
    static func readPrivateFile(path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw EncryptionKeyError.missing(path: path) }
            throw EncryptionKeyError.unreadable(path: path, reason: String(cString: strerror(code)))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw EncryptionKeyError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw EncryptionKeyError.badFormat(path: path, reason: "not a regular file")
        }
        let permissions = UInt32(st.st_mode) & 0o777
        guard permissions & 0o077 == 0 else {
            throw EncryptionKeyError.tooOpen(path: path, mode: permissions)
        }
        guard st.st_size <= maxFileSize else {
            throw EncryptionKeyError.badFormat(path: path, reason: "file is \(st.st_size) bytes, far too large")
        }
        var buffer = [UInt8](repeating: 0, count: maxFileSize + 1)
        var total = 0
        while total < buffer.count {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + total, $0.count - total) }
            if n < 0 {
                if errno == EINTR { continue }
                throw EncryptionKeyError.unreadable(path: path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            total += n
        }
        guard total <= maxFileSize else {
            for i in buffer.indices { buffer[i] = 0 }
            throw EncryptionKeyError.badFormat(path: path, reason: "file is far too large")
        }
        let bytes = Array(buffer[..<total])
        for i in buffer.indices { buffer[i] = 0 }
        return bytes
    }

    static func parse(fileBytes: ArraySlice<UInt8>, path: String) throws -> EncryptionKey {
        guard fileBytes.count <= maxFileSize else {
            throw EncryptionKeyError.badFormat(path: path, reason: "file is far too large")
        }
        var line = fileBytes
        if line.last == UInt8(ascii: "\n") { line.removeLast() }
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        if line.isEmpty { throw EncryptionKeyError.badFormat(path: path, reason: "file is empty") }
        if line.contains(UInt8(ascii: "\n")) {
            throw EncryptionKeyError.badFormat(path: path, reason: "more than one line")
        }
        let tag = Array((fileTag + ":").utf8)
        guard line.starts(with: tag) else {
            if line.starts(with: Array("bosbackup-key-v".utf8)) {
                throw EncryptionKeyError.badFormat(path: path, reason: "unsupported key file version")
            }
            throw EncryptionKeyError.badFormat(path: path, reason: "it does not start with \(fileTag):")
        }
        guard var raw = Data(base64Encoded: Data(line.dropFirst(tag.count))) else {
            throw EncryptionKeyError.badFormat(path: path, reason: "the key is not valid base64")
        }
        defer { raw.resetBytes(in: 0..<raw.count) }
        guard raw.count == byteCount else {
            throw EncryptionKeyError.badLength(path: path, byteCount: raw.count)
        }
        return EncryptionKey(SymmetricKey(data: raw))
    }

    /// Writes the key file with mode 0600 whatever the umask. Never
    /// overwrites: fails with `.exists` if anything is at `path`. The file
    /// appears complete or not at all (written aside, fsynced, then hard-linked
    /// into place; on file systems without hard links, created in place).
    public func write(to path: String) throws {
        try Self.writeNewPrivateFile(Array(fileText.utf8), to: path)
    }

    /// Writes a new file of `text` with mode 0600 (the way `write(to:)` writes a key):
    /// never over anything, complete or not at all.
    static func writeNewPrivateFile(_ text: [UInt8], to path: String, mode: mode_t = 0o600) throws {
        if anythingExists(at: path) { throw EncryptionKeyError.exists(path: path) }
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = DurableFile.temporaryName(for: path)
        do {
            try writeSynced(text, to: temporary, mode: mode)
        } catch {
            unlink(temporary)
            throw EncryptionKeyError.writeFailed(path: path, reason: "\(error)")
        }
        defer { unlink(temporary) }
        if link(temporary, path) != 0 {
            let code = errno
            switch code {
            case EEXIST:
                throw EncryptionKeyError.exists(path: path)
            case EPERM, ENOTSUP, EOPNOTSUPP, ENOSYS, EMLINK, EXDEV:
                // No hard links here (some FUSE and FAT file systems): create in place.
                do {
                    try writeSynced(text, to: path, mode: mode)
                } catch let error as FileError where error.errno == EEXIST {
                    throw EncryptionKeyError.exists(path: path)
                } catch {
                    unlink(path)
                    throw EncryptionKeyError.writeFailed(path: path, reason: "\(error)")
                }
            default:
                throw EncryptionKeyError.writeFailed(path: path, reason: String(cString: strerror(code)))
            }
        }
        do {
            try DurableFile.syncDirectory(directory.isEmpty ? "." : directory)
        } catch {
            throw EncryptionKeyError.writeFailed(path: path, reason: "\(error)")
        }
    }

    private static func writeSynced(_ bytes: [UInt8], to path: String, mode: mode_t) throws {
        let file = try FileHandleFD(creating: path, mode: mode)   // O_EXCL, then fchmod
        try file.write(bytes)
        try file.sync()
    }

    /// Also true for a dangling symlink (`stat` would say no).
    private static func anythingExists(at path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }
}
