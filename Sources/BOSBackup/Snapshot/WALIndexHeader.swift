import Foundation

/// The wal-index header SQLite keeps at the start of a WAL database's `-shm`
/// file (sqlite.org/walformat.html §2.1): which WAL frames make up the newest
/// commit, and how far the checkpointer has copied them into the database.
///
/// Layout (native byte order): two copies of the 48-byte `WalIndexHdr`, then
/// `WalCkptInfo` whose first word is `nBackfill`. A writer updates copy 1,
/// then copy 2, so two equal copies are a consistent read.
struct WALIndexHeader: Equatable {
    /// The header plus `nBackfill`, compared whole: any commit changes
    /// `iChange`, `mxFrame` and the checksums; a checkpoint changes `nBackfill`.
    let bytes: [UInt8]

    static let size = 48
    static let walIndexVersion: UInt32 = 3_007_000

    /// Reads the header from the mapped `-shm` region; nil while a writer is
    /// between the two copies, or when the index is not initialised.
    init?(shm: UnsafeRawPointer) {
        var raw = [UInt8](repeating: 0, count: 2 * Self.size + 4)
        raw.withUnsafeMutableBytes { _ = memcpy($0.baseAddress!, shm, $0.count) }
        guard raw[0..<Self.size] == raw[Self.size..<2 * Self.size] else { return nil }
        bytes = Array(raw[0..<Self.size]) + raw[(2 * Self.size)...]
        guard version == Self.walIndexVersion, isInitialised else { return nil }
    }

    private func word(_ offset: Int) -> UInt32 {
        bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self) }
    }

    var version: UInt32 { word(0) }
    var isInitialised: Bool { bytes[12] == 1 }
    /// Page size; 1 stands for 65536 because the field has 16 bits.
    var pageSize: Int {
        let raw = Int(bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 14, as: UInt16.self) })
        return raw == 1 ? 65_536 : raw
    }
    /// The last frame of the newest commit: a reader of this commit sees frames 1...mxFrame.
    var mxFrame: UInt32 { word(16) }
    /// Database size in pages after that commit.
    var pageCount: UInt32 { word(20) }
    /// The WAL header's salts, as bytes: every valid frame repeats them.
    var salt: ArraySlice<UInt8> { bytes[32..<40] }
    /// Frames already copied into the database file by checkpoints.
    var backfilled: UInt32 { word(Self.size) }
}
