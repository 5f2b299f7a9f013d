import Crypto
import Foundation

/// Why an encrypted stream could not be decrypted (or written). Everything
/// about the data itself is category `.mismatch` (the CLI's exit 4).
public enum EncryptionError: Error, CategorizedError, CustomStringConvertible, Sendable, Equatable {
    /// The stream does not start with a valid header.
    case badHeader(String)
    /// A header of a format version this build does not read.
    case unsupportedVersion(UInt8)
    /// The header names another key than the one given.
    case keyMismatch(streamKeyID: String, givenKeyID: String)
    /// A chunk's GCM tag did not verify.
    case authenticationFailed(chunk: UInt64)
    /// The stream ends before its final chunk.
    case truncated(String)
    /// Framing that cannot be right: bad chunk lengths, data after the end.
    case corrupted(String)
    /// A chunk size outside 1 ... `EncryptedStreamFormat.maxChunkSize`.
    case invalidChunkSize(Int)
    /// A writer or stream used after it finished or failed.
    case misuse(String)

    public var category: ErrorCategory {
        switch self {
        // The policy gives another key than the one the snapshot was made with: the
        // operator's configuration, which says nothing about the snapshot's health.
        case .invalidChunkSize, .keyMismatch: return .input
        case .misuse: return .failure
        default: return .mismatch
        }
    }

    public var description: String {
        switch self {
        case .badHeader(let why):
            return "bad encryption header: \(why)"
        case .unsupportedVersion(let version):
            return "unsupported encryption format version \(version) (this bosbackup reads version "
                + "\(EncryptedStreamFormat.version)); a newer bosbackup wrote it, or the header is corrupted"
        case .keyMismatch(let stream, let given):
            return "wrong key: the data was encrypted with key \(stream), not with \(given) (the key given)"
        case .authenticationFailed(let chunk):
            return "decryption failed at chunk \(chunk): wrong key or corrupted data (authentication tag mismatch)"
        case .truncated(let why):
            return "encrypted data is truncated: \(why)"
        case .corrupted(let why):
            return "encrypted data is corrupted: \(why)"
        case .invalidChunkSize(let size):
            return "invalid encryption chunk size \(size): must be 1...\(EncryptedStreamFormat.maxChunkSize) bytes"
        case .misuse(let why):
            return "encryption stream misuse: \(why)"
        }
    }
}

/// Decrypts an encrypted stream (format: `EncryptedStreamFormat`) pushed in
/// pieces of any size, handing the plaintext to `sink` chunk by chunk.
///
/// `sink` sees a chunk only after it authenticated; but when the stream
/// turns out broken at chunk k, chunks before k were already delivered, so
/// the consumer must discard its output when `feed` or `finish` throws.
/// Memory is one chunk (as the header says, at most 64 MiB; 1 MiB by
/// default). After an error every call throws that error again.
public final class DecryptingStream {
    public let key: EncryptionKey
    /// The stream's header, once its bytes have arrived.
    public private(set) var header: EncryptedStreamHeader?
    /// Plaintext bytes delivered to the sink.
    public private(set) var plaintextBytes: Int64 = 0
    /// True once the final chunk authenticated.
    public var isComplete: Bool { if case .done = phase { return true } else { return false } }

    private let sink: (UnsafeRawBufferPointer) throws -> Void
    private enum Phase {
        case header
        case recordWord
        case recordBody(length: Int, final: Bool)
        case done
    }
    private var phase = Phase.header
    private var failure: Error?
    private var headerBytes: [UInt8] = []
    private var cipher: ChunkCipher?
    /// Set when the header names another key: the cipher that assumes the
    /// key id field is damaged, tried on chunk 0 to tell which it is.
    private var keyIDCheck: ChunkCipher?
    private var word: UInt32 = 0
    private var wordFilled = 0
    private var record: UnsafeMutableRawBufferPointer?
    private var filled = 0
    private var chunkIndex: UInt64 = 0

    public init(key: EncryptionKey, sink: @escaping (UnsafeRawBufferPointer) throws -> Void) {
        self.key = key
        self.sink = sink
    }

    /// A stream fed from the record of chunk `firstChunk` on, its header read apart (a
    /// ranged read): the chunks are authenticated as in a whole stream, with their index.
    init(key: EncryptionKey, header: EncryptedStreamHeader, firstChunk: UInt64,
         sink: @escaping (UnsafeRawBufferPointer) throws -> Void) {
        self.key = key
        self.sink = sink
        self.headerBytes = header.bytes
        self.chunkIndex = firstChunk
        start(parsed: header)
    }

    /// The index of the next chunk expected.
    var nextChunk: UInt64 { chunkIndex }
    /// True between two records: every byte fed so far belonged to a whole chunk.
    var isBetweenChunks: Bool {
        if case .recordWord = phase { return wordFilled == 0 }
        return false
    }

    deinit { record?.deallocate() }

    public func feed(_ data: Data) throws {
        try data.withUnsafeBytes { try feed($0) }
    }

    /// Takes the next bytes of the stream (any amount, even none).
    public func feed(_ ciphertext: UnsafeRawBufferPointer) throws {
        if let failure { throw failure }
        do {
            try consume(ciphertext)
        } catch {
            let reported = reportable(error)
            failure = reported
            throw reported
        }
    }

    /// Declares the end of the stream: throws unless the final chunk was seen.
    public func finish() throws {
        if let failure { throw failure }
        let error: EncryptionError
        switch phase {
        case .done:
            return
        case .header:
            error = .truncated(headerBytes.isEmpty
                ? "the stream is empty (no header)"
                : "the stream ends inside its \(EncryptedStreamFormat.headerSize)-byte header (after \(headerBytes.count) bytes)")
        case .recordWord:
            error = .truncated(wordFilled == 0
                ? "the stream ends after \(chunkIndex) chunk\(chunkIndex == 1 ? "" : "s") without its final chunk"
                : "the stream ends inside the length of chunk \(chunkIndex)")
        case .recordBody(let length, _):
            error = .truncated("the stream ends inside chunk \(chunkIndex) "
                + "(\(filled) of \(length + EncryptedStreamFormat.tagSize) bytes)")
        }
        let reported = reportable(error)
        failure = reported
        throw reported
    }

    /// Decrypts a whole small stream in memory (manifests, tests).
    public static func decrypt(_ data: Data, key: EncryptionKey) throws -> Data {
        var out = Data()
        let stream = DecryptingStream(key: key) { out.append(contentsOf: $0) }
        try stream.feed(data)
        try stream.finish()
        return out
    }

    /// While the header names another key, any failure before chunk 0
    /// authenticated is best explained as the wrong key.
    private func reportable(_ error: Error) -> Error {
        if let cipher, keyIDCheck != nil, error is EncryptionError {
            return EncryptionError.keyMismatch(streamKeyID: cipher.header.keyID, givenKeyID: key.id)
        }
        return error
    }

    private func consume(_ input: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < input.count {
            let remaining = input.count - offset
            switch phase {
            case .header:
                let n = min(EncryptedStreamFormat.headerSize - headerBytes.count, remaining)
                headerBytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[offset ..< offset + n]))
                offset += n
                try EncryptedStreamHeader.checkPrefix(headerBytes)
                if headerBytes.count == EncryptedStreamFormat.headerSize { try start() }

            case .recordWord:
                word = word << 8 | UInt32(input[offset])
                wordFilled += 1
                offset += 1
                if wordFilled == 4 { try beginRecord() }

            case .recordBody(let length, let final):
                let needed = length + EncryptedStreamFormat.tagSize
                if filled == 0 && remaining >= needed {
                    // The whole chunk is in the caller's buffer: open it from there.
                    try openChunk(UnsafeRawBufferPointer(rebasing: input[offset ..< offset + needed]), final: final)
                    offset += needed
                } else {
                    let n = min(needed - filled, remaining)
                    UnsafeMutableRawBufferPointer(rebasing: record![filled ..< filled + n])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: input[offset ..< offset + n]))
                    filled += n
                    offset += n
                    if filled == needed {
                        try openChunk(UnsafeRawBufferPointer(rebasing: record![..<needed]), final: final)
                    }
                }

            case .done:
                throw EncryptionError.corrupted("\(remaining) unexpected byte\(remaining == 1 ? "" : "s") after the final chunk (appended data)")
            }
        }
    }

    private func start() throws {
        start(parsed: try EncryptedStreamHeader.parse(headerBytes))
    }

    private func start(parsed: EncryptedStreamHeader) {
        header = parsed
        cipher = ChunkCipher(key: key, header: parsed)
        if parsed.keyIDBytes != key.idBytes {
            keyIDCheck = ChunkCipher(key: key, header: parsed.replacingKeyID(key.idBytes))
        }
        record = .allocate(byteCount: parsed.chunkSize + EncryptedStreamFormat.tagSize, alignment: 16)
        phase = .recordWord
    }

    private func beginRecord() throws {
        let final = word & EncryptedStreamFormat.finalFlag != 0
        let length = Int(word & ~EncryptedStreamFormat.finalFlag)
        let chunkSize = header!.chunkSize
        if final ? length > chunkSize : length != chunkSize {
            throw EncryptionError.corrupted("chunk \(chunkIndex) claims \(length) bytes "
                + "(\(final ? "at most" : "exactly") \(chunkSize) expected)")
        }
        word = 0
        wordFilled = 0
        filled = 0
        phase = .recordBody(length: length, final: final)
    }

    private func openChunk(_ sealed: UnsafeRawBufferPointer, final: Bool) throws {
        let plaintext: Data
        do {
            plaintext = try cipher!.open(sealed, index: chunkIndex, final: final)
        } catch {
            // Until the first chunk fed (chunk 0, or a range's first) authenticates, a
            // failure may be the key id field's or the key's: the other cipher tells.
            if keyIDCheck != nil {
                if (try? keyIDCheck!.open(sealed, index: chunkIndex, final: final)) != nil {
                    // Our key opens the data once the header names it: the
                    // key is right and the key id field was damaged.
                    keyIDCheck = nil
                    throw EncryptionError.badHeader("the key id field is damaged (the key itself is right)")
                }
                throw EncryptionError.keyMismatch(streamKeyID: cipher!.header.keyID, givenKeyID: key.id)
            }
            throw EncryptionError.authenticationFailed(chunk: chunkIndex)
        }
        // Authenticated: the header (key id included) is what the writer wrote.
        keyIDCheck = nil
        chunkIndex += 1
        filled = 0
        phase = final ? .done : .recordWord
        if !plaintext.isEmpty {
            plaintextBytes += Int64(plaintext.count)
            try plaintext.withUnsafeBytes { try sink($0) }
        }
    }
}
