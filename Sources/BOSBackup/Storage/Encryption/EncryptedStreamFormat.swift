import Crypto
import Foundation

// MARK: - The bosbackup encrypted stream format, version 1
//
// An encrypted object is one header followed by one or more chunk records.
// Everything is big-endian. AES-256-GCM (swift-crypto) does the sealing.
//
//   header (47 bytes)
//     0  6  magic       "BOSENC"
//     6  1  version     1
//     7  4  chunk size  plaintext bytes per non-final chunk, 1 ... 64 MiB
//                       (default 1 MiB); bounds the reader's memory
//    11  4  key id      first 4 bytes of SHA-256(HKDF-SHA256(key, info:
//                       "bosbackup key id v1")): tells "wrong key" apart from
//                       "corrupted" without revealing anything about the key
//    15 32  salt        random per object (file salt / nonce prefix)
//
//   chunk record i = 0, 1, 2, ...
//     4 bytes   length | final flag: bit 31 set on the last chunk, bits 0-30
//               the plaintext length: exactly `chunk size` for every
//               non-final chunk, 0 ... `chunk size` for the final one
//     length    AES-256-GCM ciphertext
//     16 bytes  GCM tag
//
//   file key  = HKDF-SHA256(ikm: key, salt: salt, info: "bosbackup-enc-v1 file key"),
//               32 bytes: a fresh subkey per object, so (file key, nonce)
//               pairs never repeat across objects even though nonces are counters
//   nonce(i)  = 4 zero bytes || UInt64(i)                     (12 bytes)
//   AAD(i)    = header (47 bytes) || UInt64(i) || final flag (1 byte: 0 or 1)
//
// Every stream ends with exactly one chunk flagged final; it may be empty (an
// empty object is a header plus one empty final chunk, and a plaintext that
// is a whole number of chunks ends with an empty final chunk). What this
// catches:
//   - any bit flip in a chunk: GCM tag mismatch;
//   - any bit flip in the header: the header is in every chunk's AAD (and
//     magic, version, chunk size and key id are also checked as parsed);
//   - reordered, dropped or duplicated chunks: the index is in nonce and AAD;
//   - truncation anywhere, including exactly at a chunk boundary: no final
//     chunk was seen;
//   - appended bytes: data after the final chunk;
//   - a header swapped in from another object (even one made with the same
//     key): a different salt gives a different file key;
//   - a wrong key: the key id differs (reported as such), and should the key
//     id be forged or collide, the tags still fail.
// Overhead: 47 bytes + 20 bytes per chunk (0.002 % at 1 MiB chunks).
//
// A reader hands out a chunk's plaintext only once that chunk has
// authenticated, but a stream broken at chunk k has already delivered chunks
// 0 ..< k: whoever consumes it must discard the output when decryption fails.

/// Constants and helpers of the encrypted stream format (see the comment above).
public enum EncryptedStreamFormat {
    public static let magic: [UInt8] = Array("BOSENC".utf8)
    public static let version: UInt8 = 1
    public static let headerSize = 47
    public static let saltSize = 32
    public static let keyIDSize = 4
    public static let tagSize = 16
    /// The length/final-flag word in front of each chunk.
    public static let recordHeaderSize = 4
    /// Bytes each chunk adds on top of its plaintext.
    public static let chunkOverhead = recordHeaderSize + tagSize
    public static let defaultChunkSize = 1 << 20
    public static let maxChunkSize = 64 << 20

    static let finalFlag: UInt32 = 0x8000_0000
    static let fileKeyInfo = Array("bosbackup-enc-v1 file key".utf8)

    /// True when `prefix` begins with the format's magic (no other check):
    /// lets a caller say "this object is encrypted" before it has a key.
    public static func looksEncrypted<D: DataProtocol>(_ prefix: D) -> Bool {
        prefix.count >= magic.count && prefix.prefix(magic.count).elementsEqual(magic)
    }

    /// The exact size of the encrypted stream for `plaintextSize` bytes.
    public static func encryptedSize(plaintextSize: Int64, chunkSize: Int = defaultChunkSize) -> Int64 {
        let chunks = plaintextSize / Int64(chunkSize) + 1   // full chunks, then the final one
        return Int64(headerSize) + chunks * Int64(chunkOverhead) + plaintextSize
    }

    static func validChunkSize(_ size: Int) -> Bool { size >= 1 && size <= maxChunkSize }
}

/// The parsed header of an encrypted stream.
public struct EncryptedStreamHeader: Equatable, Sendable {
    public let version: UInt8
    /// Plaintext bytes per non-final chunk.
    public let chunkSize: Int
    /// The short id of the key the stream was encrypted with (8 hex digits).
    public var keyID: String { EncryptedStreamFormat.hex(keyIDBytes) }
    let keyIDBytes: [UInt8]
    let salt: [UInt8]
    /// The header as it is on the wire (authenticated with every chunk).
    public let bytes: [UInt8]

    /// A new header with a fresh random salt.
    init(chunkSize: Int, keyIDBytes: [UInt8]) {
        var salt = [UInt8](repeating: 0, count: EncryptedStreamFormat.saltSize)
        var rng = SystemRandomNumberGenerator()
        for i in salt.indices { salt[i] = rng.next() }
        self.init(version: EncryptedStreamFormat.version, chunkSize: chunkSize, keyIDBytes: keyIDBytes, salt: salt)
    }

    init(version: UInt8, chunkSize: Int, keyIDBytes: [UInt8], salt: [UInt8]) {
        precondition(keyIDBytes.count == EncryptedStreamFormat.keyIDSize && salt.count == EncryptedStreamFormat.saltSize)
        self.version = version
        self.chunkSize = chunkSize
        self.keyIDBytes = keyIDBytes
        self.salt = salt
        var bytes = EncryptedStreamFormat.magic
        bytes.append(version)
        EncryptedStreamFormat.appendBigEndian(UInt32(chunkSize), to: &bytes)
        bytes += keyIDBytes
        bytes += salt
        self.bytes = bytes
    }

    /// Checks the first bytes of a stream as they arrive, so a file that is
    /// not an encrypted stream (or a newer version) fails at once.
    static func checkPrefix(_ prefix: [UInt8]) throws {
        let magic = EncryptedStreamFormat.magic
        let n = min(prefix.count, magic.count)
        if !prefix[..<n].elementsEqual(magic[..<n]) {
            throw EncryptionError.badHeader("not a bosbackup encrypted stream (no BOSENC magic)")
        }
        if prefix.count > magic.count, prefix[magic.count] != EncryptedStreamFormat.version {
            throw EncryptionError.unsupportedVersion(prefix[magic.count])
        }
    }

    /// Parses a header from the first `EncryptedStreamFormat.headerSize`
    /// bytes of a stream (more bytes may follow; they are ignored).
    public static func parse<D: DataProtocol>(_ data: D) throws -> EncryptedStreamHeader {
        let bytes = Array(data.prefix(EncryptedStreamFormat.headerSize))
        try checkPrefix(bytes)
        guard bytes.count == EncryptedStreamFormat.headerSize else {
            throw EncryptionError.truncated("the stream ends inside its \(EncryptedStreamFormat.headerSize)-byte header (after \(bytes.count) bytes)")
        }
        let chunkSize = Int(EncryptedStreamFormat.readBigEndian32(bytes, at: 7))
        guard EncryptedStreamFormat.validChunkSize(chunkSize) else {
            throw EncryptionError.badHeader("chunk size \(chunkSize) is outside 1...\(EncryptedStreamFormat.maxChunkSize)")
        }
        return EncryptedStreamHeader(version: bytes[6], chunkSize: chunkSize,
                                     keyIDBytes: Array(bytes[11..<15]), salt: Array(bytes[15..<47]))
    }

    /// The same header naming another key id (used to tell a damaged key id
    /// field from a wrong key).
    func replacingKeyID(_ keyIDBytes: [UInt8]) -> EncryptedStreamHeader {
        EncryptedStreamHeader(version: version, chunkSize: chunkSize, keyIDBytes: keyIDBytes, salt: salt)
    }
}

/// Seals and opens the chunks of one stream: the per-object key, nonces and
/// AAD of the format. State is the header and a few bytes.
struct ChunkCipher {
    let header: EncryptedStreamHeader
    private let fileKey: SymmetricKey
    /// header || index (8) || final (1); the last 9 bytes change per chunk.
    private var aad: [UInt8]
    private var nonceBytes = [UInt8](repeating: 0, count: 12)

    init(key: EncryptionKey, header: EncryptedStreamHeader) {
        self.header = header
        self.fileKey = HKDF<SHA256>.deriveKey(inputKeyMaterial: key.symmetricKey, salt: header.salt,
                                              info: EncryptedStreamFormat.fileKeyInfo, outputByteCount: 32)
        self.aad = header.bytes + [UInt8](repeating: 0, count: 9)
    }

    private mutating func prepare(index: UInt64, final: Bool) -> AES.GCM.Nonce {
        let h = header.bytes.count
        for b in 0..<8 {
            let byte = UInt8(truncatingIfNeeded: index >> (56 - 8 * UInt64(b)))
            aad[h + b] = byte
            nonceBytes[4 + b] = byte
        }
        aad[h + 8] = final ? 1 : 0
        return try! AES.GCM.Nonce(data: nonceBytes)   // 12 bytes: always valid
    }

    /// Seals chunk `index` and writes its whole record (length word,
    /// ciphertext, tag) into `out`, which must hold
    /// `plaintext.count + EncryptedStreamFormat.chunkOverhead` bytes.
    /// Returns the record's size.
    mutating func seal(_ plaintext: UnsafeRawBufferPointer, index: UInt64, final: Bool,
                       into out: UnsafeMutableRawBufferPointer) throws -> Int {
        let nonce = prepare(index: index, final: final)
        let box = try AES.GCM.seal(plaintext, using: fileKey, nonce: nonce, authenticating: aad)
        var word = UInt32(plaintext.count) | (final ? EncryptedStreamFormat.finalFlag : 0)
        word = word.bigEndian
        withUnsafeBytes(of: &word) { out.copyMemory(from: $0) }
        var offset = EncryptedStreamFormat.recordHeaderSize
        box.ciphertext.copyBytes(to: UnsafeMutableRawBufferPointer(rebasing: out[offset...]))
        offset += plaintext.count
        box.tag.copyBytes(to: UnsafeMutableRawBufferPointer(rebasing: out[offset...]))
        return offset + EncryptedStreamFormat.tagSize
    }

    /// Opens chunk `index` from its ciphertext followed by its tag; throws
    /// CryptoKit's error when it does not authenticate.
    mutating func open(_ sealed: UnsafeRawBufferPointer, index: UInt64, final: Bool) throws -> Data {
        let nonce = prepare(index: index, final: final)
        let split = sealed.count - EncryptedStreamFormat.tagSize
        let box = try AES.GCM.SealedBox(nonce: nonce,
                                        ciphertext: UnsafeRawBufferPointer(rebasing: sealed[..<split]),
                                        tag: UnsafeRawBufferPointer(rebasing: sealed[split...]))
        return try AES.GCM.open(box, using: fileKey, authenticating: aad)
    }
}

// MARK: - Byte helpers

extension EncryptedStreamFormat {
    static func appendBigEndian(_ value: UInt32, to bytes: inout [UInt8]) {
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    static func readBigEndian32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 << 8 | UInt32(bytes[offset + $1]) }
    }

    static func hex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xf)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
