/// How a failure should be treated by whoever runs the library. The CLI maps
/// these to exit codes (DESIGN.md): input → 2, failure → 1, busy → 3,
/// mismatch → 4. The library itself never exits.
public enum ErrorCategory: Sendable {
    /// Bad usage, config or input (a missing source, an unknown snapshot id).
    case input
    /// An operation that should have worked did not (disk full, network).
    case failure
    /// Another run holds the lock.
    case busy
    /// Verification found corruption or a mismatch.
    case mismatch
}

public protocol CategorizedError: Error {
    var category: ErrorCategory { get }
}

extension CatalogError: CategorizedError {
    public var category: ErrorCategory {
        switch self {
        case .unknownSnapshot, .ambiguousSnapshot, .newerSchema, .missing, .emptyReference, .olderSchema: return .input
        case .unreadable: return .failure
        }
    }
}

extension TargetError: CategorizedError {
    public var category: ErrorCategory {
        switch self {
        case .badURL: return .input
        case .notFound: return .mismatch
        default: return .failure
        }
    }
}
