/// How far a long operation has come, for whoever shows a progress line (the
/// library itself prints nothing). Handlers may be called from several
/// threads at once and must be cheap: they are called per chunk or piece.
public struct ProgressUpdate: Sendable {
    public enum Unit: Sendable { case bytes, items }
    /// What is being done: "fetching snapshot 1a2b3c4d", "checking 1a2b3c4d".
    public var phase: String
    public var done: Int64
    public var total: Int64?
    public var unit: Unit

    public init(phase: String, done: Int64, total: Int64?, unit: Unit) {
        self.phase = phase
        self.done = done
        self.total = total
        self.unit = unit
    }
}

public typealias ProgressHandler = @Sendable (ProgressUpdate) -> Void
