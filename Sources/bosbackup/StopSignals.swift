import Foundation

/// SIGTERM and SIGINT handled on a dispatch source instead of killing the
/// process: `then` runs once per signal (cancel a loop, request a clean stop).
/// The sources live as long as the returned value; cancel them when done.
enum StopSignals {
    static func handle(_ output: RunOutput, saying doing: String, then action: @escaping @Sendable () -> Void) -> [DispatchSourceSignal] {
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        return [SIGTERM, SIGINT].map { number -> DispatchSourceSignal in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                output.done("received \(number == SIGTERM ? "SIGTERM" : "SIGINT"), \(doing)")
                action()
            }
            source.resume()
            return source
        }
    }
}
