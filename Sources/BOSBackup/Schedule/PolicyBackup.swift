import Foundation

extension Policy {
    /// The snapshot a job of this policy takes: its database, its host
    /// namespace, its compression and incremental settings.
    public func backupRequest(for job: Job, scratch: String) throws -> BackupRequest {
        guard let database = database(named: job.database) else {
            if databases.isEmpty { throw Self.noDatabase(file) }
            throw PolicyError(file: file ?? "policy", line: nil, keyPath: "jobs.\(job.name).database",
                              message: "unknown database \"\(job.database)\"")
        }
        var request = BackupRequest(sourcePath: database.path, job: job.name, targetName: job.target, scratch: scratch,
                                    level: compressionLevel, blockSize: blockSize)
        request.host = host
        request.database = database.name
        request.fullEvery = job.incremental?.fullEvery
        return request
    }

    static func noDatabase(_ file: String?) -> PolicyError {
        PolicyError(file: file ?? "policy", line: nil, keyPath: "source.database", message: "missing: which database to back up")
    }
}
