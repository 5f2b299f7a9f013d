import Foundation
import XCTest

/// `schedule install --systemd` / `--crontab` as an admin uses them: the files written, read back
/// the way systemd and cron read them, checked by systemd-analyze, and the cron line run by sh.
final class SystemdUnitTests: XCTestCase {
    var dir: TempDir!
    /// Folders of the policy: not under /tmp (the service has a private /tmp), and never created.
    let root = "/srv/bosbackup-unit-test"
    var config: String { dir.file("bos.yml") }
    var units: String { dir.file("units") }

    override func setUpWithError() throws {
        dir = TempDir()
        try FileManager.default.createDirectory(atPath: units, withIntermediateDirectories: true)
        try """
            timezone: Europe/Berlin
            source: { database: \(root)/live/bos.db }
            catalog: \(root)/state/catalog.db
            scratch: \(root)/scratch
            targets:
              nas:   { url: "file://\(root)/nas" }
              cloud: { url: "s3://bos-backups/prod?region=us-east-1&endpoint=http://127.0.0.1:9000" }
            jobs:
              local-weekly: { target: nas,   cron: "0 0 * * 0" }
              cloud-daily:  { target: cloud, cron: "0 22 * * *" }
            """.write(toFile: config, atomically: true, encoding: .utf8)
    }

    /// Runs the install with the shipped binary (its path is what --binary defaults to).
    @discardableResult
    func install(_ arguments: [String]) throws -> ProcessResult {
        let result = try runProcess(try Packaging.releaseBinary(), ["schedule", "install"] + arguments)
        XCTAssertEqual(result.status, 0, result.stderr)
        return result
    }

    func writeUnits(_ extra: [String] = []) throws -> [String: String] {
        try install(["--systemd", "--config", config, "--write", units] + extra)
        var files: [String: String] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: units) { files[name] = try Packaging.read(units + "/" + name) }
        return files
    }

    /// `run` writes the metrics textfile: under ProtectSystem=strict its folder must be writable.
    func testTheMetricsTextfileFolderIsWritable() throws {
        try (try Packaging.read(config) + "\nmetrics: { textfile: \(root)/textfiles/bosbackup.prom }\n")
            .write(toFile: config, atomically: true, encoding: .utf8)
        let service = UnitFile(try XCTUnwrap(try writeUnits()["bosbackup.service"]))
        XCTAssertTrue(service.values("Service", "ReadWritePaths").contains("\(root)/textfiles"), "\(service.values("Service", "ReadWritePaths"))")
    }

    func testWriteGivesTheFourUnitsHardenedWithTheFoldersOfThePolicy() throws {
        let files = try writeUnits()
        XCTAssertEqual(Set(files.keys), ["bosbackup.service", "bosbackup.timer", "bosbackup-daemon.service", "bosbackup-notify@.service"])
        XCTAssertEqual(fileMode(units + "/bosbackup.service"), 0o644)
        let binary = URL(fileURLWithPath: try Packaging.releaseBinary()).resolvingSymlinksInPath().path
        for name in ["bosbackup.service", "bosbackup-daemon.service"] {
            let unit = UnitFile(try XCTUnwrap(files[name]))
            XCTAssertEqual(unit.value("Service", "User"), "bosbackup", name)
            XCTAssertEqual(unit.value("Service", "Group"), "bosbackup", name)
            XCTAssertEqual(unit.value("Service", "ProtectSystem"), "strict", name)
            // Exactly the folders `run` writes: the catalog's, scratch, the file target, the source's.
            XCTAssertEqual(unit.values("Service", "ReadWritePaths"),
                           ["\(root)/state", "\(root)/scratch", "\(root)/nas", "\(root)/live"], name)
            XCTAssertEqual(unit.value("Unit", "RequiresMountsFor"), "\(root)/nas", name)
            for (key, value) in [("PrivateTmp", "yes"), ("NoNewPrivileges", "yes"), ("UMask", "0077"), ("ProtectHome", "yes"),
                                 ("CapabilityBoundingSet", ""), ("AmbientCapabilities", ""), ("PrivateDevices", "yes"),
                                 ("ProtectKernelTunables", "yes"), ("ProtectKernelModules", "yes"), ("ProtectKernelLogs", "yes"),
                                 ("ProtectControlGroups", "yes"), ("ProtectClock", "yes"), ("ProtectHostname", "yes"),
                                 ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"), ("RestrictNamespaces", "yes"),
                                 ("RestrictRealtime", "yes"), ("RestrictSUIDSGID", "yes"), ("MemoryDenyWriteExecute", "yes"),
                                 ("LockPersonality", "yes"), ("SystemCallArchitectures", "native"),
                                 ("EnvironmentFile", "-/etc/bosbackup/env")] {
                XCTAssertEqual(unit.value("Service", key), value, "\(name) \(key)")
            }
            XCTAssertEqual(unit.values("Service", "SystemCallFilter"), ["@system-service", "~@privileged @resources", "setpriority"], name)
            XCTAssertEqual(unit.value("Unit", "OnFailure"), "bosbackup-notify@%n.service", name)
        }
        let service = UnitFile(files["bosbackup.service"]!)
        XCTAssertEqual(service.value("Service", "Type"), "oneshot")
        XCTAssertEqual(service.value("Service", "ExecStart"), "\(binary) run --config \(config) --quiet", "the running binary, by default")
        XCTAssertEqual(service.value("Service", "TimeoutStartSec"), "6h")
        XCTAssertEqual(service.value("Service", "SuccessExitStatus"), "3", "another run holding the lock is not a failure")
        let daemon = UnitFile(files["bosbackup-daemon.service"]!)
        XCTAssertEqual(daemon.value("Service", "ExecStart"), "\(binary) daemon --config \(config)")
        XCTAssertEqual(daemon.value("Unit", "Conflicts"), "bosbackup.timer")
        XCTAssertEqual(daemon.value("Install", "WantedBy"), "multi-user.target")
        let timer = UnitFile(files["bosbackup.timer"]!)
        XCTAssertEqual(timer.value("Timer", "OnCalendar"), "*:0/10")
        XCTAssertEqual(timer.value("Timer", "Persistent"), "true")
        XCTAssertEqual(timer.value("Install", "WantedBy"), "timers.target")
        let notify = UnitFile(files["bosbackup-notify@.service"]!)
        XCTAssertEqual(notify.value("Service", "ExecStart"), "\(binary) notify --event unit-failed --unit %i --config \(config)",
                       "the policy's notify.command, told which unit failed")
    }

    func testCatalogScratchUserAndBinaryGivenToInstallReachTheUnits() throws {
        let files = try writeUnits(["--catalog", "\(root)/other/catalog.db", "--scratch", "\(root)/scratch2",
                                    "--user", "backup", "--group", "backupgrp", "--binary", "/usr/bin/bosbackup", "--timeout", "90m"])
        let service = UnitFile(try XCTUnwrap(files["bosbackup.service"]))
        XCTAssertEqual(service.value("Service", "ExecStart"),
                       "/usr/bin/bosbackup run --config \(config) --catalog \(root)/other/catalog.db --scratch \(root)/scratch2 --quiet")
        XCTAssertEqual(service.values("Service", "ReadWritePaths"), ["\(root)/other", "\(root)/scratch2", "\(root)/nas", "\(root)/live"])
        XCTAssertEqual(service.value("Service", "User"), "backup")
        XCTAssertEqual(service.value("Service", "Group"), "backupgrp")
        XCTAssertEqual(service.value("Service", "TimeoutStartSec"), "90m")
        XCTAssertEqual(UnitFile(files["bosbackup-daemon.service"]!).value("Service", "ExecStart"),
                       "/usr/bin/bosbackup daemon --config \(config) --catalog \(root)/other/catalog.db --scratch \(root)/scratch2")

        let cron = try install(["--crontab", "--config", config, "--catalog", "\(root)/other/catalog.db", "--scratch", "\(root)/scratch2",
                                "--binary", "/usr/bin/bosbackup"]).stdout
        XCTAssertTrue(cron.contains(" /usr/bin/bosbackup run --config \(config) --catalog \(root)/other/catalog.db --scratch \(root)/scratch2 --quiet >>"), cron)

        let bad = try runProcess(try Packaging.releaseBinary(), ["schedule", "install", "--systemd", "--config", config, "--user", "no body"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("not a valid user"), bad.stderr)
    }

    func testPrintedUnitsAreTheWrittenOnesEachAfterItsPath() throws {
        let written = try writeUnits()
        let printed = try install(["--systemd", "--config", config]).stdout
        var files: [String: String] = [:]
        var current: String?
        for line in printed.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# /etc/systemd/system/") { current = String(line.dropFirst("# /etc/systemd/system/".count)); files[current!] = ""; continue }
            guard let name = current else { XCTFail("text before the first file: \(line)"); continue }
            files[name]! += line + "\n"
        }
        XCTAssertEqual(Set(files.keys), Set(written.keys))
        for (name, text) in written {
            // The files are separated by one blank line in print.
            XCTAssertEqual(files[name]?.trimmingCharacters(in: .newlines), text.trimmingCharacters(in: .newlines), name)
        }
    }

    func testUnitsVerifyCleanAndAMissingBinaryDoesNot() throws {
        let analyze = try Packaging.requireTool("systemd-analyze")
        _ = try writeUnits()
        let names = ["bosbackup.service", "bosbackup.timer", "bosbackup-daemon.service", "bosbackup-notify@.service"]
        // --man=no: the man page is not installed here (PackagingTests verifies the installed .deb with it).
        let verify = try runProcess(analyze, ["verify", "--man=no"] + names.map { units + "/" + $0 })
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)
        XCTAssertEqual((verify.stdout + verify.stderr).trimmingCharacters(in: .whitespacesAndNewlines), "", "no warnings")

        // The same check fails when ExecStart names no executable: it does look.
        let other = dir.file("other")
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        try install(["--systemd", "--config", config, "--write", other, "--binary", dir.file("missing/bosbackup")])
        let broken = try runProcess(analyze, ["verify", "--man=no", other + "/bosbackup.service"])
        XCTAssertNotEqual(broken.status, 0)
        XCTAssertTrue(broken.stderr.contains("is not executable"), broken.stderr)
    }

    func testServiceExposureIsAtMostThree() throws {
        let analyze = try Packaging.requireTool("systemd-analyze")
        _ = try writeUnits()
        for name in ["bosbackup.service", "bosbackup-daemon.service"] {
            let result = try runProcess(analyze, ["security", "--offline=true", units + "/" + name])
            let line = try XCTUnwrap(result.stdout.split(separator: "\n").first { $0.contains("Overall exposure level for \(name):") },
                                     result.stdout + result.stderr)
            let number = line.split(separator: ":").last!.split(separator: " ").first.flatMap { Double($0) }
            let exposure = try XCTUnwrap(number, String(line))
            print("systemd-analyze security \(name): \(exposure)")
            XCTAssertLessThanOrEqual(exposure, 3.0, result.stdout)
        }
        // A bare service rates far worse: the score measures the hardening lines.
        try "[Service]\nExecStart=/bin/true\n".write(toFile: dir.file("bare.service"), atomically: true, encoding: .utf8)
        let bare = try runProcess(analyze, ["security", "--offline=true", dir.file("bare.service")])
        XCTAssertTrue(bare.stdout.contains("Overall exposure level for bare.service: 9."), bare.stdout)
    }

    func testFoldersUnderTmpAreNotMadeWritableAndTheCatalogThereIsWarnedAbout() throws {
        try """
            timezone: UTC
            catalog: /tmp/bosbackup-unit-test/catalog.db
            scratch: /var/tmp/bosbackup
            targets: { nas: { url: "file://\(root)/nas" } }
            jobs: { local: { target: nas, cron: "0 0 * * *" } }
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let result = try install(["--systemd", "--config", config, "--write", units])
        XCTAssertTrue(result.stderr.contains("catalog folder (catalog, its lock, drills/) /tmp/bosbackup-unit-test is under /tmp"), result.stderr)
        let text = try Packaging.read(units + "/bosbackup.service")
        XCTAssertEqual(UnitFile(text).values("Service", "ReadWritePaths"), ["\(root)/nas"])
        XCTAssertTrue(text.contains("# scratch /var/tmp/bosbackup: private to the service (PrivateTmp=yes)"), text)
    }

    func testOddPathsAreQuotedForSystemd() throws {
        let odd = dir.file("my policies/100% bos.yml")
        try FileManager.default.createDirectory(atPath: dir.file("my policies"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: config, toPath: odd)
        _ = try install(["--systemd", "--config", odd, "--write", units])
        let exec = UnitFile(try Packaging.read(units + "/bosbackup.service")).value("Service", "ExecStart")
        XCTAssertTrue(exec?.hasSuffix(" run --config \"\(dir.path)/my policies/100%% bos.yml\" --quiet") == true, exec ?? "")
        if let analyze = Packaging.tool("systemd-analyze") {
            let verify = try runProcess(analyze, ["verify", "--man=no", units + "/bosbackup.service"])
            XCTAssertEqual(verify.status, 0, verify.stderr)
        }
    }

    /// A real `run` (a backup to a folder, retention, a restore drill), traced by strace as the
    /// service runs it, as an unprivileged user, against what the units promise: every system call
    /// passes the seccomp filter (`@system-service` less `@privileged` and `@resources`, plus
    /// `setpriority`), no memory is mapped writable and executable (MemoryDenyWriteExecute=), the
    /// devices are those PrivateDevices= leaves, and every write lands in the policy's folders
    /// (ProtectSystem=strict with ReadWritePaths=), none in /home or /root (ProtectHome=).
    func testARunAsTheServiceRunsItStaysInsideTheUnitsSandbox() throws {
        let strace = try Packaging.requireTool("strace")
        let analyze = try Packaging.requireTool("systemd-analyze")
        let setpriv = try Packaging.requireTool("setpriv")
        try Packaging.requireRoot("the run is traced as an unprivileged user (nobody), as User= runs it")
        let binary = try Packaging.releaseBinary()
        let folders = ["live", "state", "scratch", "nas"].map(dir.file)
        for folder in folders {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            XCTAssertEqual(chown(folder, 65534, 65534), 0)
        }
        try Fixtures.sampleDatabase(at: dir.file("live/bos.db"), orders: 300)
        XCTAssertEqual(chown(dir.file("live/bos.db"), 65534, 65534), 0)
        try """
            timezone: UTC
            source: { database: live/bos.db }
            catalog: state/catalog.db
            scratch: scratch
            targets: { nas: { url: nas } }
            jobs: { local: { target: nas, cron: "0 0 * * *", retention: { keep_last: 1 } } }
            drill: { cron: "0 3 * * *", rto: 4h }
            """.write(toFile: config, atomically: true, encoding: .utf8)
        // The ReadWritePaths= these units get for this policy (the install's own rule, see the tests above).
        let unit = UnitFile(try install(["--systemd", "--config", config]).stdout)
        XCTAssertTrue(unit.values("Service", "ReadWritePaths").isEmpty, "all under /tmp here: the writes are checked against the policy's folders")

        var calls: [String] = []
        for (index, now) in ["2026-03-01T04:00:00Z", "2026-03-02T04:00:00Z"].enumerated() {
            let trace = dir.file("trace-\(index)")
            let run = try runProcess(strace, ["-f", "-qq", "-s", "4096", "-o", trace, setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
                                              binary, "run", "--config", config, "--now", now], environment: ["HOME": "/nonexistent"])
            XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
            if index == 1 { XCTAssertTrue(run.stdout.contains("drill: passed"), "the drill ran: \(run.stdout)") }
            // From bosbackup's execve on (setpriv's own calls come before).
            let lines = try Packaging.read(trace).split(separator: "\n").map(String.init)
            let start = try XCTUnwrap(lines.firstIndex { $0.contains("execve(\"\(binary)\"") }, "no execve of \(binary)")
            calls += lines[start...].compactMap { line -> String? in
                let text = line.drop { $0.isNumber }.drop { $0 == " " }
                return text.hasPrefix("<") || text.hasPrefix("+++") || text.hasPrefix("---") ? nil : String(text)
            }
        }
        let used = Set(calls.compactMap { call in call.firstIndex(of: "(").map { String(call[..<$0]) } })
        XCTAssertTrue(used.isSuperset(of: ["openat", "rename", "fdatasync"]) && used.count > 30, "traced: \(used.sorted())")

        let groups = try Self.syscallGroups(analyze)
        func expand(_ name: String) -> Set<String> {
            guard name.hasPrefix("@") else { return [name] }
            return (groups[name] ?? []).reduce(into: Set<String>()) { $0.formUnion(expand($1)) }
        }
        // systemd always permits these, whatever the filter (systemd.exec(5), SystemCallFilter=).
        let always: Set<String> = ["execve", "exit", "exit_group", "getrlimit", "rt_sigreturn", "sigreturn"]
        let service = UnitFile(try Packaging.read(try writeUnitsFile()))
        var allowed = Set<String>()
        for (index, line) in service.values("Service", "SystemCallFilter").enumerated() {
            let deny = line.hasPrefix("~")
            let names = line.dropFirst(deny ? 1 : 0).split(separator: " ").map(String.init).reduce(into: Set<String>()) { $0.formUnion(expand($1)) }
            if deny { allowed.subtract(names) } else { allowed.formUnion(names) }
            if index == 0 { XCTAssertFalse(deny, "an allow-list first") }
        }
        allowed.formUnion(always)
        XCTAssertFalse(allowed.contains("chown") || allowed.contains("mount"), "~@privileged takes chown and mount out: the groups were read")
        XCTAssertEqual(used.subtracting(allowed).sorted(), [], "system calls a run makes that the unit's filter refuses")

        let writableAndExecutable: [String] = calls.filter { call in
            (call.hasPrefix("mmap(") && call.contains("PROT_WRITE|PROT_EXEC")) || (call.hasPrefix("mprotect(") && call.contains("PROT_EXEC"))
        }
        XCTAssertEqual(writableAndExecutable, [], "MemoryDenyWriteExecute=yes refuses these")
        let devices = Set(calls.compactMap { Self.openedPath($0) }.filter { $0.hasPrefix("/dev/") })
        XCTAssertEqual(devices.subtracting(["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"]).sorted(), [],
                       "PrivateDevices=yes leaves only the pseudo devices")
        let written = calls.flatMap { Self.writtenPaths($0) }
        print("traced run: \(calls.count) calls, \(used.count) distinct system calls, \(written.count) writes by path, devices \(devices.sorted())")
        XCTAssertGreaterThan(written.count, 10)
        let outside = written.filter { path in path != "/dev/null" && !folders.contains { path == $0 || path.hasPrefix($0 + "/") } }
        XCTAssertEqual(Set(outside).sorted(), [], "writes outside the policy's folders: ProtectSystem=strict refuses them")
        let home = calls.compactMap { Self.openedPath($0) }.filter { $0.hasPrefix("/root") || $0.hasPrefix("/home") }
        XCTAssertEqual(home, [], "ProtectHome=yes hides these")
    }

    func writeUnitsFile() throws -> String {
        try install(["--systemd", "--config", config, "--write", units])
        return units + "/bosbackup.service"
    }

    /// The path of an `openat(AT_FDCWD, "/…", …)` or `open("/…", …)` line.
    static func openedPath(_ call: String) -> String? {
        for prefix in ["openat(AT_FDCWD, \"", "open(\""] where call.hasPrefix(prefix) {
            return call.dropFirst(prefix.count).split(separator: "\"", maxSplits: 1).first.map(String.init)
        }
        return nil
    }

    /// Paths a traced call writes: opened for writing or created, made, renamed, removed, linked.
    static func writtenPaths(_ call: String) -> [String] {
        guard !call.contains("= -1 ") else { return [] }
        if let path = openedPath(call) {
            return ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"].contains { call.contains($0) } ? [path] : []
        }
        let writing = ["mkdir(", "mkdirat(", "rename(", "renameat(", "renameat2(", "unlink(", "unlinkat(", "rmdir(", "link(", "linkat(",
                       "symlink(", "symlinkat(", "truncate(", "chmod(", "fchmodat(", "utimensat(", "mknod(", "mknodat("]
        guard writing.contains(where: { call.hasPrefix($0) }) else { return [] }
        // Every absolute path among the arguments (relative ones are against an fd: not judged here).
        return call.split(separator: "\"").enumerated().filter { $0.offset % 2 == 1 && $0.element.hasPrefix("/") }.map { String($0.element) }
    }

    /// `systemd-analyze syscall-filter`: each group, then its members (system calls or @groups), indented.
    static func syscallGroups(_ analyze: String) throws -> [String: [String]] {
        let listing = try runProcess(analyze, ["syscall-filter"])
        XCTAssertEqual(listing.status, 0, listing.stderr)
        var groups: [String: [String]] = [:]
        var current: String?
        for raw in listing.stdout.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if !raw.hasPrefix(" ") && line.hasPrefix("@") { current = line; groups[line] = []; continue }
            if let current { groups[current]!.append(line) }
        }
        XCTAssertNotNil(groups["@system-service"], "syscall-filter listed no @system-service")
        return groups
    }

    // MARK: cron

    /// The command part of the line: what cron hands to /bin/sh (after the 5 time fields and
    /// the user), with cron's `\%` made `%` again.
    func cronCommand(_ file: String, user: String = "bosbackup") throws -> String {
        let line = try XCTUnwrap(file.split(separator: "\n").first { $0.hasPrefix("*/10 ") }, file)
        var fields = line.split(separator: " ", maxSplits: 6, omittingEmptySubsequences: true)
        XCTAssertEqual(fields.count, 7, String(line))
        XCTAssertEqual(String(fields[5]), user, "the user field of /etc/cron.d")
        return String(fields.removeLast()).replacingOccurrences(of: "\\%", with: "%")
    }

    func testCrontabLogsStdoutAndLeavesStderrAndFailuresToCronsMail() throws {
        let file = try install(["--crontab", "--config", config, "--binary", "/usr/local/bin/bosbackup"]).stdout
        let command = try cronCommand(file)
        XCTAssertEqual(command, "/usr/local/bin/bosbackup run --config \(config) --quiet >>/var/log/bosbackup.log || echo \"bosbackup run failed with exit $?\" >&2")
        XCTAssertFalse(file.contains("2>&1"), "stderr stays with cron")

        // Run the line as cron would, with a stand-in that writes to both streams and fails.
        let fake = dir.file("fake-bosbackup")
        try "#!/bin/sh\necho \"out $*\"\necho \"err\" >&2\nexit ${FAKE_EXIT:-1}\n".write(toFile: fake, atomically: true, encoding: .utf8)
        chmod(fake, 0o755)
        let log = dir.file("odd log %.txt")
        let line = try cronCommand(try install(["--crontab", "--config", config, "--binary", fake, "--log", log]).stdout)
        let failed = try runProcess("/bin/sh", ["-c", line])
        XCTAssertEqual(failed.stdout, "", "stdout went to the log")
        XCTAssertEqual(failed.stderr, "err\nbosbackup run failed with exit 1\n", "what cron mails")
        XCTAssertEqual(try Packaging.read(log), "out run --config \(config) --quiet\n")
        let passed = try runProcess("/bin/sh", ["-c", line], environment: ["FAKE_EXIT": "0"])
        XCTAssertEqual(passed.stderr, "err\n", "a good run mails only what bosbackup itself put on stderr")
        XCTAssertEqual(try Packaging.read(log).split(separator: "\n").count, 2, "appended")

        // --no-log: nothing kept, failures still mailed.
        let quiet = try cronCommand(try install(["--crontab", "--config", config, "--binary", fake, "--no-log"]).stdout)
        XCTAssertTrue(quiet.contains(">/dev/null ||"), quiet)
        let quietRun = try runProcess("/bin/sh", ["-c", quiet])
        XCTAssertEqual(quietRun.stdout, "")
        XCTAssertEqual(quietRun.stderr, "err\nbosbackup run failed with exit 1\n")
    }

    func testCrontabLineRunsTheRealBinary() throws {
        try Fixtures.sampleDatabase(at: dir.file("live.db"), orders: 200)
        try """
            timezone: UTC
            source: { database: live.db }
            catalog: catalog.db
            targets: { nas: { url: nas } }
            jobs: { local: { target: nas, cron: "0 0 * * *" } }
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let log = dir.file("bosbackup.log")
        let line = try cronCommand(try install(["--crontab", "--config", config, "--log", log, "--user", "root"]).stdout, user: "root")
        let result = try runProcess("/bin/sh", ["-c", line])
        XCTAssertEqual(result.stderr, "", "nothing to mail")
        let logged = try Packaging.read(log)
        XCTAssertTrue(logged.contains("bosbackup run: local: snapshot") && logged.contains("stored on nas"), "--quiet: what was done, one line: \(logged)")
        XCTAssertEqual(try bosbackup("snapshots", "--config", config, "--json").status, 0)
    }

    func testCrontabWriteMakesAFileCronReads() throws {
        let result = try install(["--crontab", "--config", config, "--write", units])
        XCTAssertTrue(result.stdout.contains("wrote \(units)/bosbackup"), result.stdout)
        // cron.d ignores names with a dot; the file must not be writable by others.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: units), ["bosbackup"])
        XCTAssertEqual(fileMode(units + "/bosbackup"), 0o644)
        XCTAssertTrue(try Packaging.read(units + "/bosbackup").contains("run --config \(config) --quiet >>/var/log/bosbackup.log"))
    }

    func testLogrotateSnippetRotatesTheCronLog() throws {
        let logrotate = try Packaging.requireTool("logrotate")
        let snippet = try Packaging.read(Fixtures.repoRoot + "/packaging/logrotate/bosbackup")
        XCTAssertTrue(snippet.contains("/var/log/bosbackup.log {"), snippet)
        XCTAssertTrue(snippet.contains("create 0640 bosbackup adm"), snippet)
        // The same rules on a log of this test's own (owned by root: the bosbackup user may not exist here).
        let log = dir.file("bosbackup.log")
        try "run at 2026-03-01T00:00:00Z\n".write(toFile: log, atomically: true, encoding: .utf8)
        let conf = dir.file("logrotate.conf")
        try snippet.replacingOccurrences(of: "/var/log/bosbackup.log", with: log)
            .replacingOccurrences(of: "create 0640 bosbackup adm", with: "create 0640 root root")
            .write(toFile: conf, atomically: true, encoding: .utf8)
        chmod(conf, 0o644)
        let check = try runProcess(logrotate, ["-d", "-s", dir.file("state"), conf])
        XCTAssertEqual(check.status, 0, check.stderr)
        let rotate = try runProcess(logrotate, ["-f", "-s", dir.file("state"), conf])
        XCTAssertEqual(rotate.status, 0, rotate.stderr)
        XCTAssertEqual(try Packaging.read(log + ".1"), "run at 2026-03-01T00:00:00Z\n", "moved aside (compressed at the next rotation)")
        XCTAssertEqual(try Packaging.read(log), "", "a new empty log")
        XCTAssertEqual(fileMode(log), 0o640)
    }
}
