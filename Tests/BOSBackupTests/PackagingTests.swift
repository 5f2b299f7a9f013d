@testable import BOSBackup
import Foundation
import XCTest

/// The binary an operator installs: self-contained, stripped, installed by `make install` and
/// by the .deb with its man page, completions, units and system user, and removed cleanly.
final class PackagingTests: XCTestCase {
    var dir: TempDir!

    override func setUp() { dir = TempDir() }

    /// Shared libraries a binary needs, by name, from ldd.
    func sharedLibraries(_ binary: String) throws -> [(name: String, path: String)] {
        let ldd = try runProcess(try Packaging.requireTool("ldd"), [binary])
        XCTAssertEqual(ldd.status, 0, ldd.stderr)
        return ldd.stdout.split(separator: "\n").compactMap { line in
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let name = words.first else { return nil }
            let path = words.count >= 3 && words[1] == "=>" ? String(words[2]) : String(name)
            return (String(name), path)
        }
    }

    func testReleaseBinaryLinksOnlySystemLibrariesAndIsStripped() throws {
        let binary = try Packaging.releaseBinary()
        let libraries = try sharedLibraries(binary)
        // libxml2 (with the ICU and liblzma it links) is there because the library's S3 XML parsing uses
        // FoundationXML's XMLParser, which wraps the system's libxml2 even when Foundation is static.
        let system = ["linux-vdso.so", "libc.so", "libm.so", "libstdc++.so", "libgcc_s.so", "libsqlite3.so", "libz.so",
                      "libdeflate.so", "ld-linux", "libpthread.so", "libdl.so", "librt.so", "libutil.so", "/lib64/ld-linux",
                      "libxml2.so", "libicuuc.so", "libicudata.so", "liblzma.so"]
        let others = libraries.filter { library in !system.contains { library.name.hasPrefix($0) } }
        XCTAssertEqual(others.map(\.name), [], "libraries beyond libc, libsqlite3, zlib, libdeflate, libxml2 and the C++ runtime")
        XCTAssertEqual(libraries.filter { ["libswift", "libFoundation", "libdispatch", "libBlocksRuntime", "lib_Foundation"].contains(where: $0.name.hasPrefix) }.map(\.name),
                       [], "the Swift runtime and Foundation are linked in")
        XCTAssertTrue(libraries.contains { $0.name.hasPrefix("libsqlite3.so") }, "SQLite is the system's")
        if let toolchain = Packaging.toolchainRoot {
            XCTAssertEqual(libraries.filter { $0.path.hasPrefix(toolchain) }.map(\.path), [], "nothing from the toolchain")
        }
        // The same check on SwiftPM's own link of these objects finds the Swift runtime: it can fail.
        if let dynamic = Packaging.dynamicBinary {
            XCTAssertTrue(try sharedLibraries(dynamic).contains { $0.name.hasPrefix("libswiftCore.so") })
        }

        let readelf = try Packaging.requireTool("readelf")
        let sections = try runProcess(readelf, ["-S", "-W", binary])
        XCTAssertEqual(sections.status, 0, sections.stderr)
        XCTAssertFalse(sections.stdout.contains(".symtab"), "stripped: no symbol table")
        XCTAssertFalse(sections.stdout.contains(".debug_info"), "stripped: no debug information")
        let size = (try FileManager.default.attributesOfItem(atPath: binary)[.size] as? Int) ?? 0
        print("release binary \(binary): \(size) bytes; ldd: \(libraries.map(\.name).joined(separator: " "))")
        XCTAssertEqual(try runProcess(binary, ["--version"]).stdout, BOSBackupVersion.string + "\n")
    }

    /// The binary works on a machine without Swift: the toolchain's folder is hidden under an empty
    /// tmpfs in a private mount namespace, and a sample database is backed up, verified and restored.
    func testReleaseBinaryRunsWithTheToolchainHidden() throws {
        try Packaging.requireRoot("a private mount namespace hides the toolchain")
        let unshare = try Packaging.requireTool("unshare")
        let toolchain = try XCTUnwrap(Packaging.toolchainRoot, "no libswiftCore.so in this process's maps")
        let binary = try Packaging.releaseBinary()
        let q = Packaging.quote
        let d = dir.path
        let script = """
            set -e
            mount -t tmpfs tmpfs \(q(toolchain))
            test ! -e \(q(toolchain + "/usr/lib/swift/linux/libswiftCore.so"))
            B=\(q(binary))
            "$B" --version
            "$B" sample create \(q(d + "/live.db")) --orders 300 >/dev/null
            "$B" backup --source \(q(d + "/live.db")) --target \(q("file://" + d + "/nas")) --catalog \(q(d + "/catalog.db")) >/dev/null
            "$B" verify --latest 1 --catalog \(q(d + "/catalog.db")) >/dev/null
            ID=$("$B" snapshots --catalog \(q(d + "/catalog.db")) --json | sed -n 's/.*"id" *: *"\\([^"]*\\)".*/\\1/p' | head -n 1)
            "$B" restore --snapshot "$ID" --catalog \(q(d + "/catalog.db")) --into \(q(d + "/restored.db")) >/dev/null
            "$B" schedule next --cron '0 22 * * *' --tz Asia/Shanghai --after 2026-03-08T00:00:00Z -n 1
            """ + (Packaging.dynamicBinary.map { "\n! \(q($0)) --version 2>" + q(d + "/dynamic.err") } ?? "")
        let result = try runProcess(unshare, ["-m", "/bin/sh", "-c", script])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertEqual(result.stdout, "\(BOSBackupVersion.string)\n2026-03-08T22:00:00+08:00\n", "time zones work without the toolchain's ICU")
        let count = "SELECT count(*) FROM orders"
        XCTAssertEqual(try runProcess("/usr/bin/sqlite3", [d + "/restored.db", "PRAGMA integrity_check; " + count]).stdout,
                       "ok\n" + (try runProcess("/usr/bin/sqlite3", [d + "/live.db", count]).stdout), "restored, whole")
        if Packaging.dynamicBinary != nil {
            // The control: SwiftPM's dynamically linked binary does not start there, so the toolchain was hidden.
            let error = try Packaging.read(d + "/dynamic.err")
            XCTAssertTrue(error.contains("libswift"), error)
        }
    }

    /// `make install` copies the binary `make build` made; with SWIFT=/bin/false any build would fail.
    func testMakeInstallInstallsTheBuiltBinaryWithoutBuilding() throws {
        let binary = try Packaging.releaseBinary()
        let prefix = dir.file("prefix")
        let make = try runProcess(try Packaging.requireTool("make"),
                                  ["-C", Fixtures.repoRoot, "install", "PREFIX=\(prefix)", "DIST=\(binary)", "SWIFT=/bin/false"])
        XCTAssertEqual(make.status, 0, make.stdout + make.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: prefix + "/bin/bosbackup")), try Data(contentsOf: URL(fileURLWithPath: binary)))
        XCTAssertEqual(fileMode(prefix + "/bin/bosbackup"), 0o755)
        XCTAssertEqual(try Packaging.read(prefix + "/share/bosbackup/bos.yml"), try Packaging.read(Fixtures.repoRoot + "/schedules/bos.yml"))
        XCTAssertEqual(try Packaging.read(prefix + "/share/bosbackup/logrotate"), try Packaging.read(Fixtures.repoRoot + "/packaging/logrotate/bosbackup"))
        for (path, shell) in [("share/bash-completion/completions/bosbackup", "bash"), ("share/zsh/site-functions/_bosbackup", "zsh"),
                              ("share/fish/vendor_completions.d/bosbackup.fish", "fish")] {
            let generated = try runProcess(binary, ["--generate-completion-script", shell]).stdout
            XCTAssertEqual(try Packaging.read(prefix + "/" + path), generated, path)
            XCTAssertTrue(generated.contains("schedule"), "\(shell) completion names the commands")
        }
        let page = try Packaging.read(prefix + "/share/man/man1/bosbackup.1")
        XCTAssertTrue(page.contains(".TH BOSBACKUP 1 \"\" \"bosbackup \(BOSBackupVersion.string)\""), String(page.prefix(300)))

        // Installed into a staging root (DESTDIR) as packagers do.
        let staged = try runProcess("/usr/bin/make", ["-C", Fixtures.repoRoot, "install", "DESTDIR=\(dir.file("root"))", "PREFIX=/opt/bb",
                                                      "DIST=\(binary)", "SWIFT=/bin/false"])
        XCTAssertEqual(staged.status, 0, staged.stderr)
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: dir.file("root/opt/bb/bin/bosbackup")))
    }

    func testMakeInstallWithoutABuiltBinarySaysRunMakeBuildFirst() throws {
        let make = try runProcess(try Packaging.requireTool("make"),
                                  ["-C", Fixtures.repoRoot, "install", "PREFIX=\(dir.file("prefix"))", "DIST=\(dir.file("none/bosbackup"))", "SWIFT=/bin/false"])
        XCTAssertNotEqual(make.status, 0)
        XCTAssertTrue(make.stderr.contains("run make build first"), make.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.file("prefix")), "nothing installed")
        let deb = try runProcess("/usr/bin/make", ["-C", Fixtures.repoRoot, "deb", "DEB_DIR=\(dir.file("deb"))", "DIST=\(dir.file("none/bosbackup"))", "SWIFT=/bin/false"])
        XCTAssertNotEqual(deb.status, 0)
        XCTAssertTrue(deb.stderr.contains("run make build first"), deb.stderr)
    }

    func testManPageDescribesEveryCommandAndRendersWithoutWarnings() throws {
        let binary = try Packaging.releaseBinary()
        let page = dir.file("bosbackup.1")
        let made = try runProcess("/usr/bin/python3", [Fixtures.repoRoot + "/scripts/manpage.py", binary])
        XCTAssertEqual(made.status, 0, made.stderr)
        try made.stdout.write(toFile: page, atomically: true, encoding: .utf8)
        let help = try runProcess(binary, ["--experimental-dump-help"])
        let root = try XCTUnwrap(try jsonObject(help.stdout)["command"] as? [String: Any])
        let commands = try XCTUnwrap(root["subcommands"] as? [[String: Any]]).compactMap { $0["commandName"] as? String }.filter { $0 != "help" }
        XCTAssertTrue(commands.contains("backup") && commands.contains("schedule"), "\(commands)")
        for command in commands {
            XCTAssertTrue(made.stdout.contains(".SS \"bosbackup \(command)\""), "no section for \(command)")
        }
        XCTAssertTrue(made.stdout.contains(".SS \"bosbackup schedule install\""), "subcommands of subcommands too")
        XCTAssertTrue(made.stdout.contains("\\fB\\-\\-systemd\\fR"), "options with their help")

        let groff = try Packaging.requireTool("groff")
        // -P-cbou: plain text out (no overstrike, bold or underline), so it can be searched.
        let render = try runProcess(groff, ["-man", "-Tutf8", "-ww", "-P-cbou", page])
        XCTAssertEqual(render.status, 0, render.stderr)
        XCTAssertEqual(render.stderr, "", "groff warnings")
        XCTAssertTrue(render.stdout.contains("bosbackup schedule install"), String(render.stdout.prefix(500)))
    }

    /// The bash completion from --generate-completion-script, loaded into a real bash and asked.
    func testBashCompletionCompletesCommandsAndOptions() throws {
        let binary = try Packaging.releaseBinary()
        let script = dir.file("bosbackup.bash")
        try runProcess(binary, ["--generate-completion-script", "bash"]).stdout.write(toFile: script, atomically: true, encoding: .utf8)
        func complete(_ words: [String]) throws -> [String] {
            let line = words.joined(separator: " ")
            let bash = """
                PATH=\(Packaging.quote((binary as NSString).deletingLastPathComponent)):$PATH
                source \(Packaging.quote(script))
                COMP_WORDS=(\(words.map(Packaging.quote).joined(separator: " "))); COMP_CWORD=\(words.count - 1)
                COMP_LINE=\(Packaging.quote(line)); COMP_POINT=\(line.utf8.count)
                func=$(complete -p bosbackup | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p')
                "$func" bosbackup \(Packaging.quote(words.last!)) \(Packaging.quote(words[words.count - 2]))
                printf '%s\\n' "${COMPREPLY[@]}"
                """
            let result = try runProcess("/bin/bash", ["-c", bash])
            XCTAssertEqual(result.status, 0, result.stderr)
            return result.stdout.split(separator: "\n").map(String.init)
        }
        XCTAssertEqual(try complete(["bosbackup", "sched"]), ["schedule"])
        XCTAssertEqual(try complete(["bosbackup", "schedule", "ins"]), ["install"])
        XCTAssertTrue(try complete(["bosbackup", "schedule", "install", "--sys"]).contains("--systemd"))
    }

    /// dpkg, once apt or another dpkg is done: the frontend lock is waited for (a blocking fcntl
    /// lock, as apt takes it) and held while dpkg runs with DPKG_FRONTEND_LOCKED=1.
    func dpkgWhenFree(_ arguments: [String]) throws -> ProcessResult {
        try runProcess("/usr/bin/python3", ["-c", """
            import fcntl, os, subprocess, sys
            fd = os.open("/var/lib/dpkg/lock-frontend", os.O_RDWR | os.O_CREAT, 0o640)
            fcntl.lockf(fd, fcntl.LOCK_EX)
            sys.exit(subprocess.call(["dpkg"] + sys.argv[1:], env=dict(os.environ, DPKG_FRONTEND_LOCKED="1")))
            """] + arguments)
    }

    /// `make deb`, then dpkg -i into this very system, the binary run as the bosbackup user it
    /// created (with the toolchain hidden), the installed units verified, dpkg -r and -P.
    func testDebInstallsRunsAsItsUserAndRemovesCleanly() throws {
        try Packaging.requireRoot("dpkg -i into the real system")
        let dpkg = try Packaging.requireTool("dpkg")
        let dpkgDeb = try Packaging.requireTool("dpkg-deb")
        let binary = try Packaging.releaseBinary()
        // One such test at a time on this machine (other checkouts may run theirs).
        let lock = open("/run/bosbackup-deb-test.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        XCTAssertGreaterThanOrEqual(lock, 0)
        XCTAssertEqual(flock(lock, LOCK_EX), 0)
        defer { close(lock) }
        let status = try runProcess(dpkg, ["-s", "bosbackup"])
        guard status.status != 0 || !status.stdout.contains("Status: install ok installed") else {
            throw XCTSkip("a bosbackup package is installed on this machine; not replacing it")
        }
        let userExisted = getpwnam("bosbackup") != nil, groupExisted = getgrnam("bosbackup") != nil
        addTeardownBlock {
            _ = try? self.dpkgWhenFree(["-P", "bosbackup"])
            if !userExisted { _ = try? runProcess("/usr/sbin/userdel", ["bosbackup"]) }
            if !groupExisted && getgrnam("bosbackup") != nil { _ = try? runProcess("/usr/sbin/groupdel", ["bosbackup"]) }
        }

        let make = try runProcess("/usr/bin/make", ["-C", Fixtures.repoRoot, "deb", "DIST=\(binary)", "DEB_DIR=\(dir.file("deb"))", "SWIFT=/bin/false"])
        XCTAssertEqual(make.status, 0, make.stdout + make.stderr)
        let arch = try runProcess(dpkg, ["--print-architecture"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let deb = dir.file("deb/bosbackup_\(BOSBackupVersion.string)_\(arch).deb")
        XCTAssertEqual(try runProcess(dpkgDeb, ["-f", deb, "Package", "Version"]).stdout,
                       "Package: bosbackup\nVersion: \(BOSBackupVersion.string)\n", "the version of Version.swift")
        let depends = try runProcess(dpkgDeb, ["-f", deb, "Depends"]).stdout
        XCTAssertTrue(depends.contains("libsqlite3-0") && depends.contains("adduser"), depends)
        let files = try runProcess(dpkgDeb, ["-c", deb]).stdout.split(separator: "\n").compactMap { $0.split(separator: " ").last.map(String.init) }
        let shipped = ["./usr/bin/bosbackup", "./lib/systemd/system/bosbackup.service", "./lib/systemd/system/bosbackup.timer",
                       "./lib/systemd/system/bosbackup-daemon.service", "./lib/systemd/system/bosbackup-notify@.service",
                       "./usr/share/man/man1/bosbackup.1.gz", "./usr/share/bash-completion/completions/bosbackup",
                       "./usr/share/zsh/vendor-completions/_bosbackup", "./usr/share/fish/vendor_completions.d/bosbackup.fish",
                       "./usr/share/bosbackup/bos.yml", "./etc/logrotate.d/bosbackup"]
        XCTAssertEqual(Set(shipped).subtracting(files).sorted(), [], "missing from the package")

        let install = try dpkgWhenFree(["-i", deb])
        XCTAssertEqual(install.status, 0, install.stdout + install.stderr)
        let user = try XCTUnwrap(getpwnam("bosbackup"), "postinst made the user")
        XCTAssertLessThan(user.pointee.pw_uid, 1000, "a system user")
        XCTAssertEqual(String(cString: user.pointee.pw_dir), "/var/lib/bosbackup")
        XCTAssertTrue(String(cString: user.pointee.pw_shell).hasSuffix("nologin") || String(cString: user.pointee.pw_shell).hasSuffix("false"))
        var info = stat()
        XCTAssertEqual(stat("/var/lib/bosbackup", &info), 0)
        XCTAssertEqual(info.st_uid, user.pointee.pw_uid)
        XCTAssertEqual(info.st_mode & 0o777, 0o700)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "/usr/bin/bosbackup")), try Data(contentsOf: URL(fileURLWithPath: binary)))

        let setpriv = try Packaging.requireTool("setpriv")
        let asUser = try runProcess(setpriv, ["--reuid=bosbackup", "--regid=bosbackup", "--clear-groups", "/usr/bin/bosbackup", "--version"])
        XCTAssertEqual(asUser.stdout, BOSBackupVersion.string + "\n", asUser.stderr)
        if let unshare = Packaging.tool("unshare"), let toolchain = Packaging.toolchainRoot {
            let hidden = try runProcess(unshare, ["-m", "/bin/sh", "-c", """
                set -e; mount -t tmpfs tmpfs \(Packaging.quote(toolchain)); test ! -e \(Packaging.quote(toolchain + "/usr/bin"))
                exec \(setpriv) --reuid=bosbackup --regid=bosbackup --clear-groups /usr/bin/bosbackup --version
                """])
            XCTAssertEqual(hidden.stdout, BOSBackupVersion.string + "\n", hidden.stderr)
        }
        let service = UnitFile(try Packaging.read("/lib/systemd/system/bosbackup.service"))
        XCTAssertEqual(service.value("Service", "ExecStart"), "/usr/bin/bosbackup run --config /etc/bosbackup/bos.yml --quiet")
        XCTAssertEqual(service.value("Service", "User"), "bosbackup")
        if let analyze = Packaging.tool("systemd-analyze") {
            // With the man page installed, Documentation=man:bosbackup(1) is checked too.
            let verify = try runProcess(analyze, ["verify", "/lib/systemd/system/bosbackup.service", "/lib/systemd/system/bosbackup.timer",
                                                  "/lib/systemd/system/bosbackup-daemon.service"])
            XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)
            XCTAssertEqual((verify.stdout + verify.stderr).trimmingCharacters(in: .whitespacesAndNewlines), "")
        }
        if let man = Packaging.tool("man") {
            XCTAssertEqual(try runProcess(man, ["-w", "bosbackup"]).stdout, "/usr/share/man/man1/bosbackup.1.gz\n")
        }

        let remove = try dpkgWhenFree(["-r", "bosbackup"])
        XCTAssertEqual(remove.status, 0, remove.stdout + remove.stderr)
        let left = shipped.map { String($0.dropFirst()) }.filter { FileManager.default.fileExists(atPath: $0) }
        XCTAssertEqual(left, ["/etc/logrotate.d/bosbackup"], "only the conffile stays until purge")
        XCTAssertTrue(try runProcess(dpkg, ["-s", "bosbackup"]).stdout.contains("Status: deinstall ok config-files"))
        let purge = try dpkgWhenFree(["-P", "bosbackup"])
        XCTAssertEqual(purge.status, 0, purge.stdout + purge.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/etc/logrotate.d/bosbackup"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/var/lib/bosbackup"), "the empty catalog folder goes with purge")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/var/log/bosbackup.log"))
        XCTAssertNotEqual(try runProcess(dpkg, ["-s", "bosbackup"]).status, 0, "dpkg knows it no more")
    }
}
