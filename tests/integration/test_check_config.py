"""`speedmon --check-config` accepts exactly what start-up accepts.

Every valid config of config/testdata/valid/ (the ones config_test loads) and the
embedded default: `--check-config` exits 0, and speedmon starts on it (addresses moved
to free loopback ports, files into a temp dir: what depends on the machine is not the
config's to decide), answers GET /healthz with 200 and exits 0 on SIGTERM.

Configs that used to pass the check and then stop speedmon at start (a webhook URL with
a query, an unknown dotted rule metric, ...) are refused by both with one message.
"""

import copy
import os
import subprocess
import sys
import tomllib
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import harness  # noqa: E402
from harness import procs  # noqa: E402

VALID_DIR = os.path.join(os.environ.get("SPEEDMON_SOURCE_DIR", "../.."),
                         "config", "testdata", "valid")
DEFAULT_CONFIG = os.path.join(os.environ.get("SPEEDMON_SOURCE_DIR", "../.."),
                              "config", "default.toml")

# Valid up to its last line; each bad case appends from line 7 on.
BASE = """listeners = [{name = "l", address = "127.0.0.1:0", upstream = "u"}]
upstreams = [{name = "u", endpoints = ["127.0.0.1:1"]}]
[admin]
address = "127.0.0.1:0"
[speedrun]
store_path = ""
"""

RULE = """[[alerting.rules]]
id = "r"
operator = ">"
threshold = 1
"""

# (name, text after BASE, message after "FILE:").
REFUSED = [
    ("webhook_query",
     '[[alerting.webhooks]]\nurl = "http://127.0.0.1:9999/hook?token=x"\n',
     '8:7: [[alerting.webhooks]].url: invalid URL "http://127.0.0.1:9999/hook?token=x": '
     'queries and fragments are not supported'),
    ("alertmanager_userinfo",
     '[[alerting.alertmanagers]]\nurl = "http://admin:pw@127.0.0.1:9093"\n',
     '8:7: [[alerting.alertmanagers]].url: invalid URL "http://admin:pw@127.0.0.1:9093": '
     'user info is not supported'),
    ("alertmanager_fragment",
     '[[alerting.alertmanagers]]\nurl = "http://127.0.0.1:9093/#alerts"\n',
     '8:7: [[alerting.alertmanagers]].url: invalid URL "http://127.0.0.1:9093/#alerts": '
     'queries and fragments are not supported'),
    ("unknown_dotted_metric",
     RULE + 'metric = "speedrun.nope"\n',
     '11:10: [[alerting.rules]].metric: unknown dotted metric name "speedrun.nope"; use an '
     'exported metric name or a dotted name listed in docs/API.md (e.g. system.cpu_percent)'),
    ("bad_aggregation",
     RULE + 'metric = "m"\naggregation = "median"\n',
     '12:15: [[alerting.rules]].aggregation: "median" is not one of none, max, min, sum, avg, '
     'count'),
    ("reserved_label",
     RULE + 'metric = "m"\nlabels = { severity = "page" }\n',
     '12:10: [[alerting.rules]].labels: label "severity" is set by the rule itself'),
]


def valid_configs():
    """[(name, path)]: config/testdata/valid/*.toml and the embedded default."""
    names = sorted(f for f in os.listdir(VALID_DIR) if f.endswith(".toml"))
    return [(f[:-5], os.path.join(VALID_DIR, f)) for f in names] + [("default", DEFAULT_CONFIG)]


def runnable(config, workdir):
    """config with every address on a free loopback port and every file in workdir.

    Endpoints move too: a name such as "emulator_3" resolves inside Docker, not here."""
    cfg = copy.deepcopy(config)
    endpoints = sum(len(u["endpoints"]) for u in cfg.get("upstreams", []))
    ports = procs.free_ports(1 + len(cfg.get("listeners", [])) + endpoints)
    cfg.setdefault("admin", {})["address"] = f"127.0.0.1:{ports.pop()}"
    for listener in cfg.get("listeners", []):
        listener["address"] = f"127.0.0.1:{ports.pop()}"
    for upstream in cfg.get("upstreams", []):
        upstream["endpoints"] = [f"127.0.0.1:{ports.pop()}" for _ in upstream["endpoints"]]
    speedrun = cfg.setdefault("speedrun", {})
    if speedrun.get("store_path", "speedmon.db"):
        speedrun["store_path"] = os.path.join(workdir, "speedmon.db")
    proxy = cfg.get("proxy", {})
    if proxy.get("access_log", "") not in ("", "-"):
        proxy["access_log"] = os.path.join(workdir, "access.log")
    return cfg


def run(*args, timeout=20):
    """(exit code, stdout, stderr) of speedmon with these arguments."""
    p = subprocess.run([harness.speedmon_bin(), *args], capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


class CheckConfigTest(unittest.TestCase):
    def setUp(self):
        self.workdir = procs.temp_dir()

    def assertChecks(self, path):
        code, out, err = run("--check-config", "--config", path)
        self.assertEqual((code, err), (0, ""), f"--check-config {path}: {out}")
        self.assertTrue(out.startswith(f"{path}: OK\n"), out)

    def test_every_valid_config_checks_and_starts(self):
        configs = valid_configs()
        self.assertGreaterEqual(len(configs), 14)
        for name, path in configs:
            with self.subTest(config=name):
                self.assertChecks(path)
                with open(path, "rb") as f:
                    config = tomllib.load(f)
                workdir = os.path.join(self.workdir, name)
                os.mkdir(workdir)
                sm = harness.Speedmon(runnable(config, workdir), workdir=workdir)
                try:
                    self.assertChecks(sm.config_path)  # the file it started with
                    self.assertEqual(sm.get("/healthz")[0], 200)
                finally:
                    code = sm.stop()
                self.assertEqual(code, 0, f"exit code after SIGTERM; stderr:\n{sm.stderr()}")

    def test_what_start_refuses_check_refuses_with_the_same_message(self):
        for name, text, message in REFUSED:
            with self.subTest(case=name):
                path = os.path.join(self.workdir, name + ".toml")
                with open(path, "w") as f:
                    f.write(BASE + text)
                expected = f"{path}:{message}\n"
                self.assertEqual(run("--check-config", "--config", path), (1, "", expected))
                # Start-up loads the file the same way and stops before binding anything.
                self.assertEqual(run("--config", path), (1, "", expected))


if __name__ == "__main__":
    unittest.main()
