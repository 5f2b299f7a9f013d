"""Running the commands a benchmark measures: shared by bench.py and archive_bench.py."""
import os, subprocess, sys, time


class Shell:
    """Shell commands in one environment; a failure stops the benchmark with the command's stderr."""

    def __init__(self, name, env, work):
        self.name, self.env, self.work = name, env, work

    def fail(self, message):
        sys.exit(f"{self.name}: {message}")

    def sh(self, cmd):
        """Runs a shell command; its stdout."""
        p = subprocess.run(cmd, shell=True, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode:
            self.fail(f"{cmd}\nexited {p.returncode}: {p.stderr.strip()}")
        return p.stdout

    def timed_out(self, cmd):
        """(wall, cpu (user+sys), peak RSS in MB), stdout of a shell command."""
        fmt = os.path.join(self.work, "time.txt")
        start = time.monotonic()
        p = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", fmt, "sh", "-c", cmd], env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wall = time.monotonic() - start
        if p.returncode:
            self.fail(f"{cmd}\nexited {p.returncode}: {p.stderr.strip()}")
        user, system, rss = open(fmt).read().split()[-3:]
        return (wall, float(user) + float(system), int(rss) / 1024), p.stdout

    def timed(self, cmd):
        """wall, cpu (user+sys), peak RSS in MB of a shell command."""
        return self.timed_out(cmd)[0]


def size(path):
    """Bytes of a file, or of everything below a folder."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
