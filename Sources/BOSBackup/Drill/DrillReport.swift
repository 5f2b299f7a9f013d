import Foundation

/// The drill's report for an auditor: a Markdown file and a self-contained
/// HTML page (no scripts, no external files) with the phase timings as bars.
public struct DrillReport {
    public let result: DrillResult

    public init(result: DrillResult) { self.result = result }

    public static let phases: [(name: String, color: String, seconds: (VerificationResult) -> Double)] = [
        ("fetch + decrypt + decompress + checksum", "#2f6fb0", { $0.restoreSeconds }),
        ("integrity check", "#e0a020", { $0.integritySeconds }),
        ("row counts", "#3c9a5f", { $0.countSeconds }),
    ]

    func local(_ date: Date) -> String { ISO8601.string(date, in: result.timeZone) }
    static func secs(_ v: Double) -> String { String(format: "%.2f s", v) }

    public var verdict: String {
        let worst = result.worstRecoverySeconds
        if result.ok, let worst {
            return "PASS — every target restored and checked; slowest recovery \(Self.secs(worst)) against an objective of \(Duration.format(result.rto)) (margin \(Duration.format(result.rto - worst)))"
        }
        let failed = result.targets.filter { !$0.ok }.map(\.target)
        if !failed.isEmpty { return "FAIL — target\(failed.count == 1 ? "" : "s") \(failed.joined(separator: ", ")) did not restore cleanly" }
        return "FAIL — recovery took \(worst.map(Self.secs) ?? "?"), over the objective of \(Duration.format(result.rto))"
    }

    public var filename: String { "drill-\(ISO8601.compact(result.startedAt))" }

    public func markdown() -> String {
        var md = "# bosbackup restore drill, \(local(result.startedAt))\n\n"
        md += "**\(verdict)**\n\n"
        md += "- Recovery objective (RTO): \(Duration.format(result.rto))\n- Drill took \(Self.secs(result.seconds)) in all\n"
        md += "- Time zone: \(result.timeZone.identifier)\n\n"
        md += "Each target: its newest snapshot and one random older one were fetched, decrypted, decompressed, "
        md += "checksummed, checked with `PRAGMA integrity_check` and counted table by table against the catalog; "
        md += "from each WAL archive target, a random second of the newest archive generation restored from that target alone.\n\n"
        for target in result.targets {
            md += "## Target `\(target.target)` — \(target.ok ? "PASS" : "FAIL")\n\n\(target.targetURL)\n\n"
            if let recovery = target.recoverySeconds {
                md += "Time to recover (the newest snapshot, or a second of the archive, the slower): \(Self.secs(recovery)) (RTO margin \(Duration.format(max(0, result.rto - recovery))))\n\n"
            }
            for problem in target.problems { md += "- ✗ \(problem)\n" }
            for p in target.pointInTime {
                md += "- Point in time: `restore --at \(local(p.at))` of \(p.database) from this target alone — "
                md += p.ok ? "ok in \(Self.secs(p.seconds)) (txid \(p.txid) of generation `\(p.generation ?? "-")`, \(p.rows) rows)\n" : "**FAILED**: \(p.problem ?? "")\n"
            }
            if !target.pointInTime.isEmpty { md += "\n" }
            if !target.samples.isEmpty {
                md += "| snapshot | pick | taken | restore | integrity | counts | total | result |\n|---|---|---|---:|---:|---:|---:|---|\n"
                for s in target.samples {
                    let v = s.verification
                    md += "| `\(s.snapshot.id)` \(s.snapshot.name) | \(s.pick.rawValue) | \(local(s.snapshot.takenAt)) | \(Self.secs(v.restoreSeconds)) | \(Self.secs(v.integritySeconds)) | \(Self.secs(v.countSeconds)) | \(Self.secs(s.totalSeconds)) | \(s.ok ? "ok" : "**\(s.resultLabel)**") |\n"
                }
                md += "\n"
                for s in target.samples where !s.ok {
                    md += "Snapshot `\(s.snapshot.id)` \(s.verification.ok ? "was not checked completely" : "failed"):\n\n" + s.findings.map { "- \($0)\n" }.joined() + "\n"
                }
                md += countsTableMarkdown(target.samples) + "\n"
            }
        }
        return md
    }

    func countsTableMarkdown(_ samples: [DrillSample]) -> String {
        let tables = Set(samples.flatMap { $0.snapshot.tables.keys }).sorted()
        var md = "| table | " + samples.map { "`\($0.snapshot.id)` catalog / restored" }.joined(separator: " | ") + " |\n"
        md += "|---|" + samples.map { _ in "---:|" }.joined() + "\n"
        for table in tables {
            md += "| \(table) | " + samples.map { s in
                let cataloged = s.snapshot.tables[table].map(String.init) ?? "–"
                let restored = s.verification.restoredCounts?[table].map(String.init) ?? "–"
                return cataloged == restored ? cataloged : "\(cataloged) / **\(restored)**"
            }.joined(separator: " | ") + " |\n"
        }
        return md
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    public func html() -> String {
        let e = Self.escape
        let longest = max(result.targets.flatMap(\.samples).map(\.totalSeconds).max() ?? 0, 0.001)
        var body = "<h1>Restore drill, \(e(local(result.startedAt)))</h1>\n"
        body += "<p class=\"verdict \(result.ok ? "pass" : "fail")\">\(e(verdict))</p>\n"
        body += "<p>Recovery objective (RTO) <b>\(Duration.format(result.rto))</b>; the drill took \(Self.secs(result.seconds)).</p>\n"
        body += "<div class=\"legend\">" + Self.phases.map { "<span><i style=\"background:\($0.color)\"></i>\(e($0.name))</span>" }.joined() + "</div>\n"
        for target in result.targets {
            body += "<section><h2>Target <code>\(e(target.target))</code> <span class=\"badge \(target.ok ? "pass" : "fail")\">\(target.ok ? "PASS" : "FAIL")</span></h2>\n"
            body += "<p class=\"url\">\(e(target.targetURL))</p>\n"
            for problem in target.problems { body += "<p class=\"problem\">✗ \(e(problem))</p>\n" }
            for p in target.pointInTime {
                body += "<p>Point in time: <code>restore --at \(e(local(p.at)))</code> of \(e(p.database)) from this target alone — "
                body += p.ok ? "ok in \(Self.secs(p.seconds)) (txid \(p.txid), \(p.rows) rows)</p>\n" : "<b class=\"failtext\">FAILED</b>: \(e(p.problem ?? ""))</p>\n"
            }
            for s in target.samples {
                let v = s.verification
                body += "<div class=\"sample\"><div class=\"label\"><code>\(e(s.snapshot.id))</code> \(e(s.pick.rawValue)), taken \(e(local(s.snapshot.takenAt))) — \(s.ok ? "ok" : "<b class=\"failtext\">\(e(s.resultLabel))</b>") in \(Self.secs(s.totalSeconds))</div>\n<div class=\"bar\">"
                for phase in Self.phases {
                    let width = max(0.5, phase.seconds(v) / longest * 100)
                    body += "<span title=\"\(e(phase.name)): \(Self.secs(phase.seconds(v)))\" style=\"width:\(String(format: "%.2f", width))%;background:\(phase.color)\"></span>"
                }
                body += "</div>\n"
                for problem in s.findings { body += "<p class=\"problem\">✗ \(e(problem))</p>\n" }
                body += "</div>\n"
            }
            if !target.samples.isEmpty {
                let tables = Set(target.samples.flatMap { $0.snapshot.tables.keys }).sorted()
                body += "<table><tr><th>table</th>" + target.samples.map { "<th><code>\(e($0.snapshot.id))</code><br>catalog / restored</th>" }.joined() + "</tr>\n"
                for table in tables {
                    body += "<tr><td>\(e(table))</td>" + target.samples.map { s in
                        let cataloged = s.snapshot.tables[table].map(String.init) ?? "–"
                        let restored = s.verification.restoredCounts?[table].map(String.init) ?? "–"
                        return cataloged == restored ? "<td>\(cataloged)</td>" : "<td class=\"failtext\">\(cataloged) / \(restored)</td>"
                    }.joined() + "</tr>\n"
                }
                body += "</table>\n"
            }
            body += "</section>\n"
        }
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>bosbackup restore drill \(e(local(result.startedAt)))</title>
            <style>
            body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
            .verdict { font-size: 1.2em; padding: .6em .9em; border-radius: 6px; }
            .verdict.pass, .badge.pass { background: #dff3e4; color: #1d6b35; }
            .verdict.fail, .badge.fail { background: #fbe0e0; color: #a11d1d; }
            .badge { font-size: .7em; padding: .15em .5em; border-radius: 4px; vertical-align: middle; }
            .legend span { margin-right: 1.5em; } .legend i { display: inline-block; width: 1em; height: 1em; margin-right: .4em; vertical-align: -2px; }
            .bar { display: flex; height: 1.6em; background: #f1f1f1; margin: .2em 0 .8em; }
            .bar span { display: block; height: 100%; }
            .url { color: #666; font-family: monospace; } .problem, .failtext { color: #a11d1d; }
            table { border-collapse: collapse; margin: .5em 0 1.5em; } td, th { border: 1px solid #ddd; padding: .2em .6em; text-align: right; }
            td:first-child, th:first-child { text-align: left; }
            </style></head><body>
            \(body)</body></html>

            """
    }

    /// Writes `<dir>/drill-<time>.md` and `.html`; returns the HTML path.
    public func write(to dir: String) throws -> (markdown: String, html: String) {
        try PrivateFolder.prepare(dir)
        let md = "\(dir)/\(filename).md", page = "\(dir)/\(filename).html"
        try DurableFile.write(Data(markdown().utf8), to: md, mode: 0o644)
        try DurableFile.write(Data(html().utf8), to: page, mode: 0o644)
        return (md, page)
    }
}
