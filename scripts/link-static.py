#!/usr/bin/env python3
"""Links the self-contained bosbackup: the Swift runtime and Foundation linked in
statically, symbols stripped.

Usage: scripts/link-static.py [OUTPUT]     (default .build/dist/bosbackup)

Why not `swift build --static-swift-stdlib`: that flag compiles every module
against the static resource folder, where XCTest does not exist, so the test
build cannot use it, and the tests and the shipped binary would need two cold
builds of the whole dependency tree. Instead `swift build -c release` compiles
once (tests included), and this script runs SwiftPM's own link command for the
`bosbackup` product (read from .build/release.yaml) with the two flags
--static-swift-stdlib adds at link time: `-static-stdlib`, and here also
`-Xlinker --strip-all`. The $ORIGIN rpath is dropped (nothing is loaded from
beside the binary). Relinks only when SwiftPM's binary, or this script, is newer
than OUTPUT.

`-Xlinker --no-export-dynamic`: the Swift driver links executables with every
symbol exported (51,000: 4.6 MB of .dynsym, .dynstr and .gnu.hash here), and the
dynamic linker reads those tables at every symbol it resolves, so they were
about 4 MB of every process's resident memory (`archive --once` of the 1 GB
sample to a folder and moto: peak RSS 66.4-66.9 MB before, 61.4-63.8 after,
same build). Nothing links against the executable; what is lost is the names in
a crash backtrace of the stripped binary (addresses remain). The binary stays
position-independent: `-no-pie` saved 5 MB more (the relocations) but gives up
ASLR for the executable, and it reads archives and S3 answers.

Objects compiled against the shared Foundation name only its own libraries;
the static ones need more (CoreFoundation, _FoundationICU, ...; FoundationXML
needs _CFXMLInterface and the system's libxml2). Which, the toolchain says: a
one-line probe importing the same Foundation modules is compiled with
-static-stdlib and its autolink entries are added to the link.
"""
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, ".build")
output = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(BUILD, "dist", "bosbackup"))

plan = os.path.join(BUILD, "release.yaml")
if not os.path.exists(plan):
    sys.exit("link-static: %s is missing: run `make build` first" % plan)
text = open(plan, encoding="utf-8").read()
match = re.search(r'^  "C\.bosbackup-[^"]*-release\.exe":\n(?:    .*\n)*?    outputs: \["([^"]+)"\]\n(?:    .*\n)*?    args: (\[.*\])$',
                  text, re.M)
if not match:
    sys.exit("link-static: no link command for the bosbackup product in %s" % plan)
swiftpm_binary, args = match.group(1), json.loads(match.group(2))
if not os.path.exists(swiftpm_binary):
    sys.exit("link-static: %s is missing: run `make build` first" % swiftpm_binary)
# Relinked when SwiftPM's binary or this script (its flags) is newer.
if os.path.exists(output) and os.path.getmtime(output) >= max(os.path.getmtime(swiftpm_binary), os.path.getmtime(__file__)):
    sys.exit(0)

link = []
i = 0
while i < len(args):
    a = args[i]
    if a == "-Xlinker" and i + 1 < len(args) and args[i + 1].startswith("-rpath="):
        i += 2
        continue
    if a == "-o":
        link += ["-o", output + ".tmp"]
        i += 2
        continue
    if a != "-g":
        link.append(a)
    i += 1
swiftc = link[0]
bindir = os.path.dirname(swiftc)
objects_list = next(a[1:] for a in link if a.startswith("@") and a.endswith("Objects.LinkFileList"))
def autolink_entries(objects):
    """The -l flags Swift objects ask for (their .swift1_autolink_entries sections)."""
    out = os.path.join(BUILD, "dist", "autolink.txt")
    done = subprocess.run([os.path.join(bindir, "swift-autolink-extract")] + objects + ["-o", out], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit("link-static: swift-autolink-extract failed: %s" % done.stderr.strip()[:2000])
    return open(out).read().split()


os.makedirs(os.path.join(BUILD, "dist"), exist_ok=True)
objects = [l.strip() for l in open(objects_list) if l.strip().endswith(".swift.o")]
autolink = autolink_entries(objects)
modules = sorted({flag[2:] for flag in autolink if re.fullmatch(r"-lFoundation(Essentials|Internationalization|XML|Networking)?", flag)})
extra = []
if modules:
    probe_dir = os.path.join(BUILD, "dist", "static-probe")
    os.makedirs(probe_dir, exist_ok=True)
    probe = os.path.join(probe_dir, "probe.swift")
    with open(probe, "w") as f:
        f.write("".join("import %s\n" % m for m in modules))
    subprocess.run([swiftc, "-static-stdlib", "-O", "-parse-as-library", "-module-name", "probe", "-c", probe,
                    "-o", probe + ".o"], check=True)
    probed = autolink_entries([probe + ".o"])
    # Static archives are searched once each, in order: listed twice, each finds what the
    # others it depends on (CoreFoundation needs _FoundationICU) define.
    extra = [flag for flag in dict.fromkeys(probed) if flag not in autolink] * 2
link += extra + ["-static-stdlib", "-Xlinker", "--strip-all", "-Xlinker", "--no-export-dynamic"]

os.makedirs(os.path.dirname(output), exist_ok=True)
print("Linking %s (Swift runtime static, stripped)" % os.path.relpath(output, ROOT), flush=True)
result = subprocess.run(link, cwd=ROOT)
if result.returncode != 0:
    sys.exit("link-static: the link failed (exit %d); the command: %s ... %s" % (result.returncode, " ".join(link[:3]), " ".join(link[-12:])))
os.rename(output + ".tmp", output)
