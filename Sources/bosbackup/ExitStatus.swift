import ArgumentParser
import BOSBackup
import Foundation

/// The exit codes of DESIGN.md, and the one place errors become them.
enum ExitStatus {
    static let ok: Int32 = 0
    static let failed: Int32 = 1
    static let usage: Int32 = 2
    static let locked: Int32 = 3
    static let mismatch: Int32 = 4

    static func code(for error: Error) -> Int32 {
        if let categorized = error as? CategorizedError {
            switch categorized.category {
            case .input: return usage
            case .failure: return failed
            case .busy: return locked
            case .mismatch: return mismatch
            }
        }
        if error is PolicyError || error is ValidationError || error is CronError { return usage }
        return failed
    }

    /// The worst of several verdicts: damage anywhere is 4; otherwise anything
    /// not checked completely is 1.
    static func code(for verdicts: [VerificationResult.Verdict]) -> Int32 {
        if verdicts.contains(.damaged) { return mismatch }
        return verdicts.contains(.couldNotCheck) ? failed : ok
    }
}

/// A usage mistake found after parsing (a missing combination of flags).
struct UsageError: Error, CustomStringConvertible, CategorizedError {
    let description: String
    init(_ description: String) { self.description = description }
    var category: ErrorCategory { .input }
}

/// Runs a command body: errors become one line on stderr and the right exit code.
func reporting(_ body: () async throws -> Int32) async throws {
    let code: Int32
    do {
        code = try await body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        Console.error("\(error)")
        throw ExitCode(ExitStatus.code(for: error))
    }
    if code != 0 { throw ExitCode(code) }
}
