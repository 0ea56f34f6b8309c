"""scripts/run.sh --demo: the four fake emulators are watched as [[processes]] from the
first moment (process metrics and /api/v1/processes have data), and SIGTERM to the
script, like Ctrl-C (SIGINT to its process group), stops speedmon and every fake it
started, with speedmon's exit code 0."""

import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402
from harness import prom  # noqa: E402

RUN_SH = os.path.join(harness.fake._source_dir(), "scripts", "run.sh")
NAMES = [f"emulator-{i}" for i in range(1, 5)]


def children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(x) for x in f.read().split()]


def gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


class RunDemoTest(unittest.TestCase):
    def start_demo(self):
        ports = harness.free_ports(9)
        workdir = harness.temp_dir()
        env = dict(os.environ, SPEEDMON_BIN=harness.speedmon_bin(),
                   SPEEDMON_DEMO_EMULATOR_PORTS=" ".join(map(str, ports[0:4])),
                   SPEEDMON_DEMO_LISTENER_PORTS=" ".join(map(str, ports[4:8])),
                   SPEEDMON_DEMO_ADMIN_PORT=str(ports[8]), SPEEDMON_DEMO_DIR=workdir)
        out = open(os.path.join(workdir, "run.log"), "wb")
        self.addCleanup(out.close)
        demo = subprocess.Popen(["bash", RUN_SH, "--demo"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        self.addCleanup(self.kill_group, demo)
        self.log = os.path.join(workdir, "run.log")
        self.admin_port = ports[8]
        self.listener_ports = ports[4:8]

        def watched():
            if demo.poll() is not None:
                raise AssertionError(f"run.sh exited {demo.returncode}: {self.output()}")
            try:
                with harness.RawHttp(ports[8]) as conn:
                    doc = conn.request("GET", "/api/v1/processes").json()["processes"]
            except OSError:
                return None
            return doc if [p["name"] for p in doc] == NAMES and all(
                p["running"] for p in doc) else None
        procs = harness.wait_for(watched, 60, what="the four fakes watched and running")
        return demo, procs

    def output(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")[-4000:]

    def kill_group(self, demo):
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()

    def check_stops(self, deliver):
        demo, procs = self.start_demo()
        fakes = [p["pid"] for p in procs]
        started = children(demo.pid)
        self.assertEqual(len(started), 5, started)  # four fakes and speedmon
        self.assertLessEqual(set(fakes), set(started))

        # The first scrape already has the fakes' process metrics.
        with harness.RawHttp(self.admin_port) as conn:
            samples = prom.parse(conn.request("GET", "/metrics").body.decode())
        for name in NAMES:
            self.assertGreater(prom.value(
                samples, "pokemon_speedrun_process_resident_memory_bytes", process=name), 0,
                name)

        deliver(demo)
        self.assertEqual(demo.wait(60), 0, self.output())
        harness.wait_for(lambda: all(gone(p) for p in started), 10,
                         what="every process run.sh started gone")
        for port in self.listener_ports:
            self.assertTrue(harness.connect_refused(port), port)

    def test_sigterm_stops_everything(self):
        self.check_stops(lambda demo: os.kill(demo.pid, signal.SIGTERM))

    def test_ctrl_c_stops_everything(self):
        self.check_stops(lambda demo: os.killpg(demo.pid, signal.SIGINT))


if __name__ == "__main__":
    unittest.main()
