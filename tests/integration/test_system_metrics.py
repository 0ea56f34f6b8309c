"""Host, watched-process and speedmon's own process metrics, checked against what /proc
and statvfs say in the same test: /metrics, GET /api/v1/system, GET /api/v1/processes,
the [sysprobe] cache, and `promtool check metrics`.

Watched processes are children of this test (Debian's python3 -c ...) that allocate
memory when told to over a pipe; their config is written after they are spawned.
"""

import ctypes
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402
from harness import prom  # noqa: E402

PYTHON = "/usr/bin/python3"
MiB = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")
WAIT = 15.0

# A child that holds memory: "alloc N" allocates N MiB in 10 MiB steps, writing to every
# page so it is resident, and answers "allocated TOTAL"; "exit" ends it. argv[1] is a
# marker for cmdline_regex watchers.
CHILD = """
import sys
held = []
print("ready", flush=True)
for line in sys.stdin:
    cmd = line.split()
    if cmd and cmd[0] == "alloc":
        for _ in range(int(cmd[1]) // 10):
            block = bytearray(10 << 20)
            block[::4096] = b"\\x01" * len(range(0, len(block), 4096))
            held.append(block)
        print("allocated", 10 * len(held), flush=True)
    elif cmd and cmd[0] == "exit":
        break
"""

PROCESS_FAMILIES = ["pokemon_speedrun_process_up", "pokemon_speedrun_process_cpu_seconds_total",
                    "pokemon_speedrun_process_resident_memory_bytes",
                    "pokemon_speedrun_process_virtual_memory_bytes",
                    "pokemon_speedrun_process_open_fds", "pokemon_speedrun_process_threads",
                    "pokemon_speedrun_process_restarts_total"]
OWN_FAMILIES = {"process_cpu_seconds_total": "counter", "process_resident_memory_bytes": "gauge",
                "process_virtual_memory_bytes": "gauge", "process_open_fds": "gauge",
                "process_max_fds": "gauge", "process_start_time_seconds": "gauge",
                "process_threads": "gauge"}
HOST_FAMILIES = {"pokemon_speedrun_system_cpu_percent": "gauge",
                 "pokemon_speedrun_system_memory_bytes": "gauge",
                 "pokemon_speedrun_system_memory_percent": "gauge",
                 "pokemon_speedrun_system_memory_total_bytes": "gauge",
                 "pokemon_speedrun_system_memory_available_bytes": "gauge",
                 "pokemon_speedrun_system_disk_percent": "gauge",
                 "pokemon_speedrun_system_disk_used_bytes": "gauge",
                 "pokemon_speedrun_system_load_average": "gauge",
                 "pokemon_speedrun_system_network_bytes_total": "counter",
                 "pokemon_speedrun_system_processes": "gauge",
                 "pokemon_speedrun_system_uptime_seconds": "gauge",
                 "pokemon_speedrun_system_cpus": "gauge"}


# ---- /proc, read the way the kernel documents it ----------------------------------------

def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            out[key] = int(rest.split()[0]) * 1024
    return out


def boot_time():
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("btime "):
                return int(line.split()[1])
    raise AssertionError("no btime in /proc/stat")


def uptime():
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def net_totals():
    """(sent, received) bytes over every interface but lo."""
    sent = recv = 0
    with open("/proc/net/dev") as f:
        for line in f.readlines()[2:]:
            name, _, data = line.partition(":")
            if name.strip() == "lo":
                continue
            fields = data.split()
            recv += int(fields[0])
            sent += int(fields[8])
    return sent, recv


def pid_count():
    return sum(1 for d in os.listdir("/proc") if d.isdigit())


def df(path):
    """(percent, used bytes) as df computes them."""
    st = os.statvfs(path)
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    return 100.0 * used / (used + avail), used


def pid_stat(pid):
    """The fields of /proc/<pid>/stat after the comm, numbered as in proc(5)."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    rest = data[data.rindex(")") + 2:].split()
    return {n: rest[n - 3] for n in range(3, 3 + len(rest))}


def proc_figures(pid):
    st = pid_stat(pid)
    return {
        "cpu_seconds": (int(st[14]) + int(st[15])) / TICKS,
        "threads": int(st[20]),
        "start_time": boot_time() + int(st[22]) / TICKS,
        "virtual_bytes": int(st[23]),
        "resident_bytes": int(st[24]) * PAGE,
        "open_fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def soft_nofile(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line[len("Max open files"):].split()[0])
    raise AssertionError("no Max open files")


# ---- children ----------------------------------------------------------------------------

def _die_with_parent():
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Child:
    """A CHILD process, killed by pid at cleanup."""

    def __init__(self, test, marker="unwatched"):
        self.popen = subprocess.Popen([PYTHON, "-c", CHILD, marker], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, preexec_fn=_die_with_parent)
        self.pid = self.popen.pid
        self.buf = b""
        test.addCleanup(self.kill)
        self.expect("ready")

    def read_line(self, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.popen.stdout], [], [], left)[0]:
                raise AssertionError(f"child {self.pid}: no line within {timeout}s")
            data = os.read(self.popen.stdout.fileno(), 4096)
            if not data:
                raise AssertionError(f"child {self.pid} exited ({self.popen.poll()})")
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()

    def expect(self, line):
        got = self.read_line()
        if got != line:
            raise AssertionError(f"child {self.pid}: expected {line!r}, got {got!r}")

    def tell(self, command):
        self.popen.stdin.write(command.encode() + b"\n")
        self.popen.stdin.flush()

    def kill(self):
        if self.popen.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait()
        self._close()

    def _close(self):
        for f in (self.popen.stdin, self.popen.stdout):
            try:
                f.close()
            except OSError:
                pass


# ---- tests -------------------------------------------------------------------------------

def monitor_config(processes=(), sysprobe=None, health_check=None, upstream=None):
    """A speedmon config whose only upstream points at `upstream` (default: a port with
    nobody on it, never contacted without health checks)."""
    address = upstream or f"127.0.0.1:{harness.free_port()}"
    cfg = harness.proxy_config({"emu": [address]}, health_check=health_check)
    cfg["sysprobe"] = {"cache_duration": "0s", "disk_paths": ["/"], **(sysprobe or {})}
    if processes:
        cfg["processes"] = [dict(p) for p in processes]
    return cfg


class HostMetricsTest(harness.HarnessTestCase):
    """cache_duration 0s: every scrape reads /proc afresh, so a value read from /proc
    before and after a scrape brackets what the scrape reported."""

    MISSING = "/nonexistent-speedmon-disk"

    def setUp(self):
        super().setUp()
        self.sm = self.start_speedmon(monitor_config(
            sysprobe={"disk_paths": ["/", self.workdir, self.MISSING]}))

    def test_memory_matches_meminfo(self):
        s = self.sm.metrics()
        mem = meminfo()
        total = prom.value(s, "pokemon_speedrun_system_memory_total_bytes")
        used = prom.value(s, "pokemon_speedrun_system_memory_bytes")
        avail = prom.value(s, "pokemon_speedrun_system_memory_available_bytes")
        self.assertEqual(total, mem["MemTotal"])
        self.assertEqual(used + avail, total)
        self.assertAlmostEqual(prom.value(s, "pokemon_speedrun_system_memory_percent"),
                               100.0 * used / total, places=9)
        self.assertGreater(avail, 0)
        self.assertLessEqual(avail, total)

    def test_disk_matches_statvfs(self):
        s = self.sm.metrics()
        for path in ("/", self.workdir):
            with self.subTest(path=path):
                percent, used = df(path)
                got = prom.value(s, "pokemon_speedrun_system_disk_percent", path=path)
                self.assertIsNotNone(got, f"no disk_percent for {path}")
                self.assertLess(abs(got - percent), 1.0, f"df says {percent:.2f}%")
                total = os.statvfs(path).f_blocks * os.statvfs(path).f_frsize
                self.assertLess(abs(prom.value(s, "pokemon_speedrun_system_disk_used_bytes",
                                               path=path) - used), total / 100)
        self.assertEqual(prom.select(s, "pokemon_speedrun_system_disk_percent",
                                     path=self.MISSING), {}, "a missing path is not a 0")
        self.assertEqual(prom.select(s, "pokemon_speedrun_system_disk_used_bytes",
                                     path=self.MISSING), {})

    def test_cpus_load_uptime_network_processes(self):
        up0, net0, pids0 = uptime(), net_totals(), pid_count()
        s = self.sm.metrics()
        up1, net1, pids1 = uptime(), net_totals(), pid_count()
        self.assertEqual(prom.value(s, "pokemon_speedrun_system_cpus"), os.cpu_count())
        cpu = prom.value(s, "pokemon_speedrun_system_cpu_percent")
        self.assertTrue(0 <= cpu <= 100, cpu)
        load = {dict(k)["window"]: v for k, v in
                prom.select(s, "pokemon_speedrun_system_load_average").items()}
        self.assertEqual(sorted(load), ["15m", "1m", "5m"])
        self.assertLess(abs(load["15m"] - os.getloadavg()[2]), 0.5)
        self.assertTrue(up0 <= prom.value(s, "pokemon_speedrun_system_uptime_seconds") <= up1)
        sent = prom.value(s, "pokemon_speedrun_system_network_bytes_total", direction="sent")
        recv = prom.value(s, "pokemon_speedrun_system_network_bytes_total",
                          direction="received")
        self.assertTrue(net0[0] <= sent <= net1[0], (net0, sent, net1))
        self.assertTrue(net0[1] <= recv <= net1[1], (net0, recv, net1))
        procs = prom.value(s, "pokemon_speedrun_system_processes")
        self.assertLess(abs(procs - (pids0 + pids1) / 2), 50, (pids0, procs, pids1))

    def test_families_have_types_and_help(self):
        exp = prom.parse_full(self.sm.metrics_text())
        for name, kind in {**HOST_FAMILIES, **OWN_FAMILIES}.items():
            with self.subTest(name=name):
                family = name[:-len("_total")] if kind == "counter" else name
                self.assertEqual(exp.types.get(name, exp.types.get(family)), kind)
                self.assertTrue(exp.helps.get(name, exp.helps.get(family)))

    def test_system_api_agrees_with_proc(self):
        up0 = uptime()
        t0 = time.time()
        doc = self.sm.get_json("/api/v1/system")
        t1 = time.time()
        up1 = uptime()
        self.assertEqual(set(doc), {
            "timestamp", "cpu_percent", "cpu_count", "load_average", "memory_total_bytes",
            "memory_available_bytes", "memory_used_bytes", "memory_percent",
            "swap_total_bytes", "swap_used_bytes", "swap_percent", "disks", "network",
            "process_count", "boot_time", "uptime_seconds"})
        mem = meminfo()
        self.assertEqual(doc["memory_total_bytes"], mem["MemTotal"])
        self.assertEqual(doc["memory_used_bytes"] + doc["memory_available_bytes"],
                         mem["MemTotal"])
        self.assertEqual(doc["swap_total_bytes"], mem["SwapTotal"])
        self.assertEqual(doc["cpu_count"], os.cpu_count())
        self.assertEqual(doc["boot_time"], boot_time())
        self.assertTrue(up0 <= doc["uptime_seconds"] <= up1)
        self.assertTrue(t0 - 1 <= doc["timestamp"] <= t1 + 1, (t0, doc["timestamp"], t1))
        self.assertEqual(len(doc["load_average"]), 3)
        self.assertEqual(set(doc["network"]),
                         {"bytes_sent", "bytes_recv", "packets_sent", "packets_recv"})
        disks = {d["path"]: d for d in doc["disks"]}
        self.assertEqual(sorted(disks), sorted(["/", self.workdir, self.MISSING]))
        root = disks["/"]
        st = os.statvfs("/")
        self.assertEqual(root["total_bytes"], st.f_blocks * st.f_frsize)
        self.assertEqual(root["ok"], True)
        self.assertLess(abs(root["percent"] - df("/")[0]), 1.0)
        self.assertEqual((disks[self.MISSING]["ok"], disks[self.MISSING]["percent"]),
                         (False, None))


class DiskPathsTest(harness.HarnessTestCase):
    def test_a_disk_path_listed_twice_is_one_series_or_a_config_error(self):
        # Two samples with the same labels make an exposition Prometheus rejects.
        cfg = monitor_config(sysprobe={"disk_paths": ["/", "/"]})
        try:
            sm = self.start_speedmon(cfg)
        except AssertionError as e:
            if "exited during startup" in str(e) and "disk_paths" in str(e).split("stderr")[-1]:
                return  # refused with a message naming the field: fine
            raise
        try:
            samples = prom.parse(sm.metrics_text())
        except ValueError as e:
            self.fail(f"disk_paths [\"/\", \"/\"] was accepted and /metrics is invalid: {e}")
        self.assertEqual(len(prom.select(samples, "pokemon_speedrun_system_disk_percent")), 1)
        self.assertEqual(len(sm.get_json("/api/v1/system")["disks"]), 1)


class CacheTest(harness.HarnessTestCase):
    def test_cached_snapshot_is_served_until_it_expires(self):
        sm = self.start_speedmon(monitor_config(sysprobe={"cache_duration": "1h"}))
        first = sm.get_json("/api/v1/system")
        time.sleep(0.05)
        self.assertEqual(sm.get_json("/api/v1/system"), first)
        s = sm.metrics()
        self.assertEqual(prom.value(s, "pokemon_speedrun_system_uptime_seconds"),
                         first["uptime_seconds"])
        self.assertEqual(prom.value(s, "pokemon_speedrun_system_memory_available_bytes"),
                         first["memory_available_bytes"])

    def test_zero_cache_reads_afresh(self):
        sm = self.start_speedmon(monitor_config(sysprobe={"cache_duration": "0s"}))
        first = sm.get_json("/api/v1/system")
        harness.wait_for(lambda: uptime() > first["uptime_seconds"] + 0.02, WAIT,
                         what="uptime to move on")
        self.assertGreater(sm.get_json("/api/v1/system")["timestamp"], first["timestamp"])


class WatchedProcessTest(harness.HarnessTestCase):
    def proc_entry(self, sm, name):
        doc = sm.get_json("/api/v1/processes")
        return {p["name"]: p for p in doc["processes"]}[name]

    def assertMatchesProc(self, s, name, pid):
        """The scrape's figures for `name` are /proc's for pid (read just after)."""
        want = proc_figures(pid)
        got = {k: prom.value(s, f"pokemon_speedrun_process_{m}", process=name) for k, m in [
            ("cpu_seconds", "cpu_seconds_total"), ("threads", "threads"),
            ("virtual_bytes", "virtual_memory_bytes"), ("resident_bytes",
                                                        "resident_memory_bytes"),
            ("open_fds", "open_fds")]}
        self.assertEqual(prom.value(s, "pokemon_speedrun_process_up", process=name), 1)
        self.assertEqual((got["threads"], got["virtual_bytes"], got["open_fds"]),
                         (want["threads"], want["virtual_bytes"], want["open_fds"]))
        self.assertLessEqual(abs(got["resident_bytes"] - want["resident_bytes"]), MiB)
        self.assertTrue(0 <= got["cpu_seconds"] <= want["cpu_seconds"], (got, want))
        return got

    def assertGone(self, s, name, restarts):
        self.assertEqual(prom.value(s, "pokemon_speedrun_process_up", process=name), 0)
        self.assertEqual(prom.value(s, "pokemon_speedrun_process_restarts_total", process=name),
                         restarts)
        for fam in PROCESS_FAMILIES[1:-1]:
            self.assertEqual(prom.select(s, fam, process=name), {}, fam)

    def test_rss_follows_a_100_mib_allocation_then_exit(self):
        child = Child(self)
        missing = os.path.join(self.workdir, "missing.pid")
        sm = self.start_speedmon(monitor_config([
            {"name": "alloc", "pid": child.pid}, {"name": "nobody", "pid_file": missing}]))
        s = sm.metrics()
        before = self.assertMatchesProc(s, "alloc", child.pid)["resident_bytes"]
        self.assertEqual(prom.value(s, "pokemon_speedrun_process_restarts_total",
                                    process="alloc"), 0)
        self.assertGone(s, "nobody", 0)

        child.tell("alloc 100")
        child.expect("allocated 100")
        s = sm.metrics_when(lambda s: prom.value_or_zero(
            s, "pokemon_speedrun_process_resident_memory_bytes", process="alloc")
            >= before + 95 * MiB, timeout=WAIT, what="resident memory up by 95 MiB")
        after = self.assertMatchesProc(s, "alloc", child.pid)["resident_bytes"]
        self.assertGreaterEqual(after - before, 95 * MiB)
        entry = self.proc_entry(sm, "alloc")
        self.assertEqual(set(entry), {"name", "running", "pid", "state", "cpu_seconds",
                                      "resident_bytes", "virtual_bytes", "threads", "open_fds",
                                      "start_time", "restarts", "origin"})
        self.assertEqual((entry["running"], entry["pid"], entry["restarts"], entry["threads"]),
                         (True, child.pid, 0, 1))
        self.assertEqual(entry["start_time"], proc_figures(child.pid)["start_time"])
        self.assertGreaterEqual(entry["resident_bytes"], before + 95 * MiB)
        self.assertIn(entry["state"], ("R", "S"))

        # Exited but not yet reaped: a zombie is not a running process.
        child.tell("exit")
        harness.wait_for(lambda: pid_stat(child.pid)[3] == "Z", WAIT, what="a zombie child")
        self.assertGone(sm.metrics(), "alloc", 0)
        child.kill()  # reaps it
        s = sm.metrics()
        self.assertGone(s, "alloc", 0)
        entry = self.proc_entry(sm, "alloc")
        self.assertEqual((entry["running"], entry["pid"], entry["state"], entry["restarts"]),
                         (False, None, None, 0))

    def test_cmdline_regex_sees_a_restart(self):
        marker = f"speedmon-watch-{uuid.uuid4().hex}"
        pid_file = os.path.join(self.workdir, "emu.pid")
        first = Child(self, marker)
        with open(pid_file, "w") as f:
            f.write(f"{first.pid}\n")
        sm = self.start_speedmon(monitor_config([
            {"name": "by-regex", "cmdline_regex": re.escape(marker) + "$"},
            {"name": "by-file", "pid_file": pid_file}]))
        s = sm.metrics()
        for name in ("by-regex", "by-file"):
            self.assertMatchesProc(s, name, first.pid)
            self.assertEqual(prom.value(s, "pokemon_speedrun_process_restarts_total",
                                        process=name), 0)
        self.assertEqual(self.proc_entry(sm, "by-regex")["pid"], first.pid)

        twin = Child(self, marker)  # a second match does not steal the watch
        self.assertEqual(self.proc_entry(sm, "by-regex")["pid"], first.pid)
        twin.kill()
        first.kill()
        s = sm.metrics()
        self.assertGone(s, "by-regex", 0)
        self.assertGone(s, "by-file", 0)

        again = Child(self, marker)
        with open(pid_file, "w") as f:
            f.write(f"{again.pid}\n")
        s = sm.metrics()
        for name in ("by-regex", "by-file"):
            self.assertMatchesProc(s, name, again.pid)
            self.assertEqual(prom.value(s, "pokemon_speedrun_process_restarts_total",
                                        process=name), 1, name)
        entry = self.proc_entry(sm, "by-regex")
        self.assertEqual((entry["running"], entry["pid"], entry["restarts"]),
                         (True, again.pid, 1))
        self.assertEqual(entry["start_time"], proc_figures(again.pid)["start_time"])

    def test_promtool_reports_nothing(self):
        fake = self.start_fake()
        child = Child(self)
        sm = self.start_speedmon(monitor_config(
            [{"name": "alloc", "pid": child.pid},
             {"name": "nobody", "pid_file": os.path.join(self.workdir, "none.pid")}],
            upstream=fake.address,
            health_check={"path": "/status", "interval": "200ms", "timeout": "200ms"}))
        sm.metrics_when(
            lambda s: prom.value_or_zero(s, "pokemon_speedrun_process_startup_seconds_count")
            == 1, timeout=WAIT, what="the first health check")
        text = sm.metrics_text()
        exp = prom.parse_full(text)
        for fam in PROCESS_FAMILIES + list(HOST_FAMILIES) + list(OWN_FAMILIES):
            self.assertTrue(prom.select(exp.samples, fam), f"{fam} missing")
        promtool = shutil.which("promtool") or "/usr/bin/promtool"
        res = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                             capture_output=True, timeout=60)
        self.assertEqual((res.returncode, res.stdout + res.stderr), (0, b""))


class OwnProcessTest(harness.HarnessTestCase):
    def test_own_process_metrics_are_speedmons(self):
        t0 = time.time()
        sm = self.start_speedmon(monitor_config())
        t1 = time.time()
        pid = sm.proc.pid
        was = proc_figures(pid)
        s = sm.metrics()
        want = proc_figures(pid)
        for name in OWN_FAMILIES:
            self.assertEqual(list(prom.select(s, name)), [frozenset()], name)
        start = prom.value(s, "process_start_time_seconds")
        self.assertTrue(t0 - 2 <= start <= t1 + 2, (t0, start, t1))
        self.assertAlmostEqual(start, want["start_time"], places=6)
        self.assertEqual(prom.value(s, "process_max_fds"), soft_nofile(pid))
        # Figures that may still move just after startup (a thread's first malloc maps a
        # 64 MiB arena): what /proc said just before or just after the scrape.
        self.assertIn(prom.value(s, "process_threads"), (was["threads"], want["threads"]))
        self.assertLessEqual(abs(prom.value(s, "process_virtual_memory_bytes")
                                 - want["virtual_bytes"]), 128 * MiB)
        self.assertLessEqual(abs(prom.value(s, "process_open_fds") - want["open_fds"]), 2)
        self.assertLessEqual(abs(prom.value(s, "process_resident_memory_bytes")
                                 - want["resident_bytes"]), 8 * MiB)
        self.assertTrue(0 <= prom.value(s, "process_cpu_seconds_total") <= want["cpu_seconds"])


if __name__ == "__main__":
    unittest.main()
