import Crypto
import Foundation

/// Encrypts everything written to it (format: `EncryptedStreamFormat`) and
/// forwards the ciphertext to another `ObjectWriter`, chunk by chunk.
///
/// Memory is one plaintext chunk and one sealed record, whatever the object
/// size: each chunk is sealed and forwarded as soon as it is full.
/// `commit()` seals the final chunk (possibly empty), then commits the inner
/// writer; `abort()` aborts the inner writer. After any failure the writer
/// only accepts `abort()`.
public final class EncryptingObjectWriter: ObjectWriter {
    public static let defaultChunkSize = EncryptedStreamFormat.defaultChunkSize

    public let chunkSize: Int
    /// The id of the key in use (also in the stream's header).
    public let keyID: String
    /// Plaintext bytes accepted so far.
    public private(set) var plaintextBytes: Int64 = 0
    /// Ciphertext bytes forwarded to the inner writer so far.
    public private(set) var encryptedBytes: Int64 = 0

    private let inner: ObjectWriter
    private var cipher: ChunkCipher
    private let plain: UnsafeMutableRawBufferPointer
    private var filled = 0
    private let record: UnsafeMutableRawBufferPointer
    private var chunkIndex: UInt64 = 0
    private var headerWritten = false
    private enum State { case open, committed, aborted, failed }
    private var state = State.open

    public init(wrapping inner: ObjectWriter, key: EncryptionKey,
                chunkSize: Int = EncryptingObjectWriter.defaultChunkSize) throws {
        guard EncryptedStreamFormat.validChunkSize(chunkSize) else {
            throw EncryptionError.invalidChunkSize(chunkSize)
        }
        self.inner = inner
        self.chunkSize = chunkSize
        self.keyID = key.id
        self.cipher = ChunkCipher(key: key, header: EncryptedStreamHeader(chunkSize: chunkSize, keyIDBytes: key.idBytes))
        self.plain = .allocate(byteCount: chunkSize, alignment: 16)
        self.record = .allocate(byteCount: max(chunkSize + EncryptedStreamFormat.chunkOverhead,
                                               EncryptedStreamFormat.headerSize), alignment: 16)
    }

    deinit {
        // Plaintext does not outlive the writer in freed memory.
        plain.initializeMemory(as: UInt8.self, repeating: 0)
        plain.deallocate()
        record.deallocate()
    }

    /// The header of the stream being written.
    public var header: EncryptedStreamHeader { cipher.header }

    public func write(_ bytes: UnsafeRawBufferPointer) async throws {
        try checkOpen("write")
        var offset = 0
        while offset < bytes.count {
            let remaining = bytes.count - offset
            if filled == 0 && remaining >= chunkSize {
                // A whole chunk in the caller's buffer: seal it from there.
                try await emit(UnsafeRawBufferPointer(rebasing: bytes[offset ..< offset + chunkSize]), final: false)
                offset += chunkSize
                continue
            }
            let n = min(chunkSize - filled, remaining)
            UnsafeMutableRawBufferPointer(rebasing: plain[filled ..< filled + n])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset ..< offset + n]))
            filled += n
            offset += n
            if filled == chunkSize {
                try await emit(UnsafeRawBufferPointer(plain), final: false)
                filled = 0
            }
        }
        plaintextBytes += Int64(bytes.count)
    }

    public func commit() async throws {
        try checkOpen("commit")
        try await emit(UnsafeRawBufferPointer(rebasing: plain[..<filled]), final: true)
        filled = 0
        state = .committed
        do {
            try await inner.commit()
        } catch {
            state = .failed
            throw error
        }
    }

    public func abort() async {
        state = .aborted
        filled = 0
        await inner.abort()
    }

    private func checkOpen(_ operation: String) throws {
        switch state {
        case .open: return
        case .committed: throw EncryptionError.misuse("\(operation) after commit")
        case .aborted: throw EncryptionError.misuse("\(operation) after abort")
        case .failed: throw EncryptionError.misuse("\(operation) after a failed write")
        }
    }

    /// Seals one chunk and forwards it (after the header, the first time).
    private func emit(_ chunk: UnsafeRawBufferPointer, final: Bool) async throws {
        do {
            if !headerWritten {
                let header = cipher.header.bytes
                header.withUnsafeBytes { record.copyMemory(from: $0) }
                try await inner.write(UnsafeRawBufferPointer(rebasing: record[..<header.count]))
                headerWritten = true
                encryptedBytes += Int64(header.count)
            }
            let n = try cipher.seal(chunk, index: chunkIndex, final: final, into: record)
            try await inner.write(UnsafeRawBufferPointer(rebasing: record[..<n]))
            chunkIndex += 1
            encryptedBytes += Int64(n)
        } catch {
            state = .failed
            throw error
        }
    }
}
