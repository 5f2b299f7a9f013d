import Foundation
import NIOCore

/// Streams an object to S3. Bytes are gathered into parts of `partSize`; when the first part
/// fills, a multipart upload is created and each full part is uploaded (with `Content-MD5`,
/// its ETag checked) while the next one fills. Two part buffers are allocated for the whole
/// upload and used in turn, so memory is two parts at most, whatever the object's size (one,
/// with `overlapsParts` off: each part's upload is waited for before the next fills). At
/// commit, an object that never filled a part goes as a single PUT; otherwise the last part
/// is sent and the upload completed. Either way the stored object is then checked with HEAD.
///
/// Nothing is visible under the key before `commit()` returns. `abort()` (and a failed
/// `commit()`) aborts the multipart upload, so no orphan parts stay billed in the bucket.
final class S3ObjectWriter: ObjectWriter {
    private enum State { case open, committed, aborted, failed }

    let target: S3Target
    let key: String
    let fullKey: String
    let partSize: Int
    let overlapsParts: Bool
    /// The retain-until date of the object's lock (nil: the target locks nothing), fixed when
    /// the writer starts so the create, the PUT and the check after commit agree.
    let lockedUntil: Date?

    private var state = State.open
    /// Why the writer failed, repeated to a caller that writes on.
    private var failure: Error?
    /// The part being filled; allocated on the first write.
    private var buffer: S3PartBuffer?
    /// The other part buffer, free once the part it held has been uploaded.
    private var spare: S3PartBuffer?
    private var uploadID: String?
    private var partNumber = 0
    private var completed: [(number: Int, etag: String)] = []
    private var partMD5s: [[UInt8]] = []
    private var inFlight: (task: Task<String, Error>, buffer: S3PartBuffer)?
    private var total: Int64 = 0
    /// Set when the object may exist under its key although commit failed (the check after
    /// CompleteMultipartUpload or PUT found it wrong): abort deletes it.
    private var mayExist = false

    init(target: S3Target, key: String) {
        self.target = target
        self.key = key
        self.fullKey = target.location.objectKey(key)
        self.partSize = target.options.partSize
        self.overlapsParts = target.options.overlapsParts
        self.lockedUntil = target.objectLock?.retainUntil(from: Date())
    }

    func write(_ bytes: UnsafeRawBufferPointer) async throws {
        try checkOpen("write")
        var rest = bytes
        while !rest.isEmpty {
            if buffer == nil { (buffer, spare) = (spare ?? S3PartBuffer(capacity: partSize), nil) }
            let part = buffer!
            let n = part.append(rest)
            rest = UnsafeRawBufferPointer(rebasing: rest[n...])
            total += Int64(n)
            if part.isFull {
                try await failing { try await sendPart() }
            }
        }
    }

    func commit() async throws {
        try checkOpen("commit")
        try await failing {
            if uploadID == nil {
                let body = buffer.map { S3Body.part($0) } ?? .bytes(ByteBuffer())
                try await target.putObject(fullKey: fullKey, body: body, lockedUntil: lockedUntil)
                buffer = nil
                mayExist = true
                try await target.verifySize(fullKey: fullKey, expected: total, multipartETag: nil, lockedUntil: lockedUntil)
            } else {
                if let part = buffer, part.count > 0 { try await sendPart() }
                try await finishInFlight()
                try await target.completeMultipartUpload(fullKey: fullKey, uploadID: uploadID!, parts: completed)
                mayExist = true
                try await target.verifySize(fullKey: fullKey, expected: total,
                                            multipartETag: S3Target.multipartETag(partMD5s: partMD5s), lockedUntil: lockedUntil)
            }
            state = .committed
            uploadID = nil
        }
    }

    func abort() async {
        guard state != .committed, state != .aborted else { return }
        state = .aborted
        await cleanUp()
    }

    deinit {
        // Dropped without commit or abort: abort the upload in the background (best effort;
        // `S3Target.abortStaleUploads` catches what a killed process leaves).
        if state != .committed, state != .aborted, let uploadID {
            let target = self.target, fullKey = self.fullKey, inFlight = self.inFlight?.task
            Task {
                _ = try? await inFlight?.value
                try? await target.abortMultipartUpload(fullKey: fullKey, uploadID: uploadID)
            }
        }
    }

    private func checkOpen(_ what: String) throws {
        switch state {
        case .open: return
        case .failed: throw failure ?? TargetError.failed("\(what) after a failed upload: \(target.resource(fullKey))")
        case .committed, .aborted: throw TargetError.failed("\(what) after commit or abort: \(target.resource(fullKey))")
        }
    }

    // MARK: - Parts

    /// Hands the full buffer to an upload task, after the previous part's upload has
    /// finished (so one part is in flight while the other buffer fills).
    private func sendPart() async throws {
        if uploadID == nil {
            uploadID = try await target.createMultipartUpload(fullKey: fullKey, lockedUntil: lockedUntil)
        }
        try await finishInFlight()
        partNumber += 1
        guard partNumber <= S3Target.Options.maximumParts else {
            throw TargetError.failed("S3 upload \(target.resource(fullKey)) needs more than \(S3Target.Options.maximumParts) parts "
                + "of \(partSize) bytes; use a larger part size")
        }
        guard let part = buffer else { return }
        buffer = spare
        spare = nil
        let md5 = S3Target.md5(.part(part))
        partMD5s.append(md5)
        let target = self.target, fullKey = self.fullKey, id = uploadID!, number = partNumber
        let task = Task {
            try await target.uploadPart(fullKey: fullKey, uploadID: id, number: number, body: .part(part), md5: md5)
        }
        inFlight = (task, part)
        if !overlapsParts { try await finishInFlight() }
    }

    /// Waits for the part in flight; its buffer becomes the spare, emptied for the next part.
    private func finishInFlight() async throws {
        guard let (task, part) = inFlight else { return }
        inFlight = nil
        let etag = try await task.value
        completed.append((partNumber, etag))
        part.reset()
        spare = part
    }

    /// Runs writer work; on failure the writer is dead: the upload is aborted and the error
    /// is thrown as a `TargetError`.
    private func failing(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            state = .failed
            await cleanUp(afterLosingTheServer: Self.isUnreachable(error))
            let reported = (error as? S3OperationError).map { target.targetError($0) as Error } ?? error
            failure = reported
            throw reported
        }
    }

    /// A network failure that outlasted every retry: the server is gone (killed, unreachable).
    private static func isUnreachable(_ error: Error) -> Bool {
        guard let error = error as? S3OperationError else { return false }
        return error.failure.kind == .network
    }

    /// Waits for a part still uploading (so it cannot land after the abort), aborts the
    /// multipart upload, and removes an object that a failed commit may have left.
    ///
    /// After losing the server, one attempt each: the operation has just spent its whole retry
    /// budget on a server that does not answer, another would only double the time to the
    /// error, and the next `run` aborts what is left (`abortStaleUploads`).
    private func cleanUp(afterLosingTheServer: Bool = false) async {
        var retry = target.options.retry
        if afterLosingTheServer { retry.maxAttempts = 1 }
        if let (task, _) = inFlight {
            inFlight = nil
            _ = try? await task.value
        }
        buffer = nil
        spare = nil
        if let id = uploadID {
            uploadID = nil
            try? await target.abortMultipartUpload(fullKey: fullKey, uploadID: id, retry: retry)
        }
        if mayExist {
            mayExist = false
            try? await target.deleteObject(fullKey: fullKey, retry: retry)
        }
    }
}
