import Foundation

/// The scratch folder: triage restores (kept until cleaned) and temporary
/// copies a killed process may have left.
public struct ScratchFolder {
    public let path: String
    public init(path: String) { self.path = path }

    /// Removes everything bosbackup put there; returns how much.
    public func clean() throws -> (files: Int, bytes: Int64) {
        guard let enumerator = FileManager.default.enumerator(atPath: path) else { return (0, 0) }
        var files = 0
        var bytes: Int64 = 0
        var victims: [String] = []
        while let relative = enumerator.nextObject() as? String {
            let full = path + "/" + relative
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: full, isDirectory: &isDir), !isDir.boolValue else { continue }
            let name = (relative as NSString).lastPathComponent
            guard relative.hasPrefix("restored/") || name.hasPrefix(".bosbackup-") else { continue }
            files += 1
            bytes += DurableFile.fileSize(full) ?? 0
            victims.append(full)
        }
        for victim in victims { try FileManager.default.removeItem(atPath: victim) }
        return (files, bytes)
    }

    /// Removes only the temporary copies a killed backup or verify left
    /// (`.bosbackup-*`), keeping triage restores for the operator.
    public func removeTemporaryCopies() throws -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        var removed = 0
        for name in names where name.hasPrefix(".bosbackup-") {
            try FileManager.default.removeItem(atPath: path + "/" + name)
            removed += 1
        }
        return removed
    }
}
