"""Running one child process and measuring it: wall time, CPU time (user + system), peak RSS
(wait4's ru_maxrss), optionally inside a cgroup-v1 memory group with a hard cap (root only),
with a time limit."""

import contextlib
import csv
import os
import re
import signal
import subprocess
import time

CGROUP_ROOT = "/sys/fs/cgroup/memory"
UNITS = {
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
}


@contextlib.contextmanager
def csv_appender(path, fields):
    """A `csv.DictWriter` appending to `path` (the header written when the file is new), and
    its file, to flush after each row so a killed run keeps what it measured."""
    new = not os.path.exists(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        if new:
            w.writeheader()
        yield fh, w


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]i?B|B)\s*", text)
    if not m:
        raise ValueError(f"not a size: {text!r}")
    return int(float(m.group(1)) * UNITS[m.group(2)])


def human(n: float) -> str:
    for unit in ["B", "KiB", "MiB", "GiB", "TiB"]:
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return str(n)


class Cgroup:
    """A cgroup-v1 memory group with a hard limit."""

    def __init__(self, name: str, limit: int):
        self.path = os.path.join(CGROUP_ROOT, name)
        os.makedirs(self.path, exist_ok=True)
        self.write("memory.limit_in_bytes", str(limit))
        self.limit = int(self.read("memory.limit_in_bytes"))

    def read(self, f: str) -> str:
        with open(os.path.join(self.path, f)) as fh:
            return fh.read()

    def write(self, f: str, value: str) -> None:
        with open(os.path.join(self.path, f), "w") as fh:
            fh.write(value)

    def reset_peak(self) -> None:
        self.write("memory.max_usage_in_bytes", "0")

    def peak(self) -> int:
        return int(self.read("memory.max_usage_in_bytes"))

    def oom_kills(self) -> int:
        for line in self.read("memory.oom_control").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def enter_fn(self, cpus):
        procs = os.path.join(self.path, "cgroup.procs")

        def enter():
            with open(procs, "w") as fh:
                fh.write(str(os.getpid()))
            if cpus:
                os.sched_setaffinity(0, cpus)

        return enter


def high_water(pid):
    """The process's peak resident memory so far (VmHWM), in bytes, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class Outcome:
    """How a child ended, and what it used.

    Peak memory is the child's VmHWM, sampled while it runs (it only grows, so the last sample
    is the peak, short of the final few milliseconds). wait4's ru_maxrss is not used: Linux
    carries over the parent's resident size at fork into it, so a child of a large harness
    would appear at least that large."""

    def __init__(self, status, wall, usage, hwm, stdout, stderr, timed_out, oom_killed,
                 cgroup_peak):
        self.status = status
        self.wall = wall
        self.cpu = usage.ru_utime + usage.ru_stime
        self.peak_rss = hwm if hwm is not None else usage.ru_maxrss * 1024
        self.writes = usage.ru_oublock * 512
        self.stdout = stdout
        self.stderr = stderr
        self.timed_out = timed_out
        self.oom_killed = oom_killed
        self.cgroup_peak = cgroup_peak

    @property
    def state(self) -> str:
        if self.timed_out:
            return "timeout"
        if self.oom_killed:
            return "oom-killed"
        return "ok" if self.status == 0 else "failed"


def run_child(cmd, log_path, cgroup=None, cpus=None, timeout=None, env=None) -> Outcome:
    """Runs `cmd` (inside `cgroup` when given), killing it after `timeout` seconds."""
    kills = cgroup.oom_kills() if cgroup else 0
    if cgroup:
        cgroup.reset_peak()
    started = time.monotonic()
    timed_out = False
    with open(log_path + ".out", "w") as out, open(log_path + ".err", "w") as err:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=err,
            env=env,
            preexec_fn=cgroup.enter_fn(cpus) if cgroup else None,
        )
        hwm = None
        while True:
            sample = high_water(proc.pid)
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            # A zombie has no memory left to report: keep samples of the living process.
            if sample:
                hwm = max(hwm or 0, sample)
            if timeout and time.monotonic() - started > timeout:
                timed_out = True
                proc.send_signal(signal.SIGKILL)
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        proc.returncode = status
    wall = time.monotonic() - started
    with open(log_path + ".out") as fh:
        stdout = fh.read()
    with open(log_path + ".err") as fh:
        stderr = fh.read()
    oom = False
    peak = None
    if cgroup:
        peak = cgroup.peak()
        oom = cgroup.oom_kills() > kills or (
            not timed_out and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        )
    return Outcome(status, wall, usage, hwm, stdout, stderr, timed_out, oom, peak)
