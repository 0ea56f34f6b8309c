#!/usr/bin/python3
"""Profiles the contenders of bench/harness.py on the 1 KiB load, two ways:

  bench/profile.py callgrind [TARGET...]  instructions per request under callgrind:
      counted, not timed, so the figure does not move with the machine's other load;
      speedmon's top functions are printed (callgrind_annotate).
  bench/profile.py perf [TARGET]          perf record (cpu-clock) of one target under
      wrk -t1 -c64, flat profile by library and by symbol.
  bench/profile.py syscalls [TARGET...]   system calls per request (strace -c -f).

TARGET is speedmon, speedmon-norec, nginx or haproxy (default: all, or speedmon for
perf). Uses the same upstream and configs as the harness; every process is stopped by pid.
Build first (scripts/build.sh release, or bench/run.sh).
"""
import glob
import os
import re
import subprocess
import sys
import tempfile
import shutil

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
import harness  # noqa: E402

CALLGRIND_SECONDS = 10
CALLGRIND_CONNS = 8  # callgrind runs the proxy ~50x slower; a few connections keep it busy
PERF_SECONDS = 10


class Profiled(harness.Bench):
    def __init__(self, tmp, wrap):
        super().__init__(tmp)
        self.wrap = wrap

    def argv(self, t):
        return self.wrap(t) + super().argv(t)


def callgrind(targets):
    tmp = tempfile.mkdtemp(prefix="speedmon-profile.")
    out = os.path.join(tmp, "callgrind")
    os.makedirs(out)

    def wrap(t):
        return ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--trace-children=yes",
                f"--callgrind-out-file={out}/{t}.%p"]

    b = Profiled(tmp, wrap)
    rows = []
    try:
        b.make_www()
        b.start_upstream()
        b.prepare_configs()
        for t in targets:
            b.start(t)
            bl.run_wrk(f"http://127.0.0.1:{b.port[t]}/1k.json", CALLGRIND_CONNS, 2)
            pids = b.pids(t)
            for pid in pids:
                subprocess.run(["callgrind_control", "-i", "on", str(pid)],
                               capture_output=True)
            r = bl.run_wrk(f"http://127.0.0.1:{b.port[t]}/1k.json", CALLGRIND_CONNS,
                           CALLGRIND_SECONDS)
            for pid in pids:
                subprocess.run(["callgrind_control", "-i", "off", str(pid)],
                               capture_output=True)
            b.stop(t)
            ir = 0
            for f in glob.glob(f"{out}/{t}.*"):
                with open(f) as fh:
                    m = re.search(r"^totals:\s+(\d+)", fh.read(), re.M)
                ir += int(m.group(1)) if m else 0
            rows.append([t, r["requests"], f"{ir:,}",
                         f"{ir / r['requests']:,.0f}" if r["requests"] else "-",
                         bl.errors_of(r)])
        print(harness.table(["target", "requests", "instructions (Ir)", "Ir per request",
                             "errors"], rows))
        files = sorted(glob.glob(f"{out}/speedmon.*"), key=os.path.getsize)
        if files:
            print("\nspeedmon, top functions by instructions (self cost):\n")
            a = subprocess.run(["callgrind_annotate", "--threshold=95", files[-1]],
                               capture_output=True, text=True).stdout
            print("\n".join(a.splitlines()[:60]))
    finally:
        b.procs.stop_all()
        if os.environ.get("BENCH_KEEP_TMP") == "1":
            print(f"temp dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def perf_report(data, sort, limit):
    rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort",
                          sort, "--percent-limit", str(limit)],
                         capture_output=True, text=True).stdout
    return "\n".join(line.rstrip(" -") for line in rep.splitlines()
                     if line.strip() and not line.startswith("#"))


def under_load(target, tool_argv, seconds):
    """Starts target, warms it, runs tool_argv(pids) beside wrk -c64 for `seconds`; returns
    (wrk result, the tool's output, the temp dir while it still exists)."""
    tmp = tempfile.mkdtemp(prefix="speedmon-profile.")
    b = harness.Bench(tmp)
    try:
        b.make_www()
        b.start_upstream()
        b.prepare_configs()
        b.start(target)
        url = f"http://127.0.0.1:{b.port[target]}/1k.json"
        bl.run_wrk(url, harness.CONNS, 1)
        tool = subprocess.Popen(tool_argv(tmp, b.pids(target)), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                preexec_fn=bl._die_with_parent)
        r = bl.run_wrk(url, harness.CONNS, seconds)
        out = tool.communicate(timeout=seconds + 30)[0]
        b.stop(target)
        return r, out, tmp
    finally:
        b.procs.stop_all()


def perf(target):
    def tool(tmp, pids):
        return ["perf", "record", "-e", "cpu-clock", "-o", f"{tmp}/perf.data", "-p",
                ",".join(map(str, pids)), "--", "sleep", str(PERF_SECONDS)]

    r, _, tmp = under_load(target, tool, PERF_SECONDS)
    try:
        print(f"{target}: {r['rps']:,.0f} req/s, errors {bl.errors_of(r)}\n")
        print(perf_report(f"{tmp}/perf.data", "dso", 0.5) + "\n")
        print(perf_report(f"{tmp}/perf.data", "dso,symbol", 0.7))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def syscalls(targets):
    """System calls per request (strace -c): what each proxy asks of the kernel."""
    for t in targets:
        def tool(tmp, pids):
            argv = ["timeout", "-s", "INT", str(PERF_SECONDS), "strace", "-c", "-f"]
            for pid in pids:
                argv += ["-p", str(pid)]
            return argv

        r, out, tmp = under_load(t, tool, PERF_SECONDS)
        shutil.rmtree(tmp, ignore_errors=True)
        n = r["requests"] or 1
        print(f"\n{t}: {r['requests']} requests under strace ({r['rps']:,.0f} req/s)")
        for line in out.splitlines():
            f = line.split()
            if len(f) >= 5 and f[3].isdigit():
                print(f"  {f[-1]:20s} {int(f[3]) / n:6.2f} per request")


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("callgrind", "perf", "syscalls"):
        print(__doc__)
        return 2
    targets = sys.argv[2:]
    if sys.argv[1] == "callgrind":
        callgrind(targets or harness.PROXIES)
    elif sys.argv[1] == "syscalls":
        syscalls(targets or harness.PROXIES)
    else:
        perf(targets[0] if targets else "speedmon")
    return 0


if __name__ == "__main__":
    sys.exit(main())
