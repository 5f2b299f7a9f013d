import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A folder someone else could write into is a folder where they can plant a
/// symlink at a name we are about to write: root's restore of the BOS then
/// lands in a file that user owns. So the folders bosbackup writes its own
/// files into (scratch, the catalog's, reports, a file target's root) must be
/// ours and not writable by group or others, and so must every folder above
/// them unless it is root's and sticky (/tmp, /var/tmp) — the rule of ssh's
/// StrictModes.
public struct UnsafeFolderError: Error, CustomStringConvertible, CategorizedError, Sendable {
    public let folder: String
    public let why: String
    public let fix: String
    public var description: String { "refusing to use \(folder): \(why); fix: \(fix)" }
    public var category: ErrorCategory { .input }
}

public enum PrivateFolder {
    /// Creates `path` (0700) if missing, then checks it and its parents.
    public static func prepare(_ path: String) throws {
        var st = stat()
        if stat(path, &st) == 0, (st.st_mode & S_IFMT) != S_IFDIR {
            throw UnsafeFolderError(folder: path, why: "it is a file, not a folder", fix: "give a folder (or remove the file)")
        }
        try DurableFile.makeDirectory(path)
        try check(path)
    }

    /// Checks an existing folder: ours, not group/other-writable, reached
    /// through folders nobody else can change.
    public static func check(_ path: String) throws {
        let me = geteuid()
        let user = Self.userName(me)
        var st = stat()
        // The folder as named: a symlink here must be one we (or root) made.
        if lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFLNK, st.st_uid != me, st.st_uid != 0 {
            throw UnsafeFolderError(folder: path, why: "it is a symlink owned by uid \(st.st_uid)", fix: "rm \(path) (as its owner) and let bosbackup create the folder")
        }
        guard let resolved = realpath(path, nil) else { throw FileError("resolve", path) }
        let real = String(cString: resolved)
        free(resolved)
        guard stat(real, &st) == 0 else { throw FileError("stat", real) }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            throw UnsafeFolderError(folder: path, why: "it is not a folder", fix: "give a folder")
        }
        if st.st_uid != me {
            throw UnsafeFolderError(folder: path, why: "it is owned by \(Self.userName(st.st_uid)), not by \(user) who runs bosbackup",
                                    fix: "chown \(user) \(real) (or remove it and let bosbackup create it)")
        }
        if st.st_mode & 0o022 != 0 {
            throw UnsafeFolderError(folder: path, why: "group or others may write into it (mode \(String(st.st_mode & 0o7777, radix: 8)))",
                                    fix: "chmod go-w \(real)")
        }
        var parent = (real as NSString).deletingLastPathComponent
        while !parent.isEmpty {
            guard stat(parent, &st) == 0 else { throw FileError("stat", parent) }
            let sticky = st.st_mode & S_ISVTX != 0
            if st.st_uid != me && st.st_uid != 0 {
                throw UnsafeFolderError(folder: path, why: "the folder above it, \(parent), is owned by \(Self.userName(st.st_uid))",
                                        fix: "use a folder under one owned by root or \(user)")
            }
            if st.st_mode & 0o022 != 0 && !(sticky && st.st_uid == 0) {
                throw UnsafeFolderError(folder: path, why: "the folder above it, \(parent), may be written by group or others",
                                        fix: "chmod go-w \(parent) (or chmod +t if it must be shared)")
            }
            if parent == "/" { break }
            parent = (parent as NSString).deletingLastPathComponent
        }
    }

    static func userName(_ uid: uid_t) -> String {
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return "uid \(uid)" }
        return String(cString: name)
    }
}
