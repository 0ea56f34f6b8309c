"""Operability: the daemon's log on stderr (every line with time and level, as text or as
one JSON object), which build is running (--version, pokemon_speedrun_build_info)."""

import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import harness  # noqa: E402

TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info|warning|error) +\S")


class LogTest(harness.HarnessTestCase):
    def test_text_lines_have_time_and_level(self):
        fake = self.start_fake()
        sm = self.proxy_for(fake)
        self.assertEqual(sm.stop(), 0)
        lines = [line for line in sm.stderr().splitlines() if line]
        self.assertGreaterEqual(len(lines), 3, sm.stderr())  # listening, draining, stopped
        for line in lines:
            self.assertRegex(line, TEXT_LINE)
        self.assertEqual(len([x for x in lines if " info    listening: " in x]), 1, lines)
        self.assertTrue(lines[-1].endswith(" info    stopped"), lines[-1])

    def test_json_lines_are_objects(self):
        fake = self.start_fake()
        cfg = harness.proxy_config({"emu": [fake.address]})
        cfg["log"] = {"format": "json"}
        sm = self.start_speedmon(cfg)
        self.assertEqual(sm.stop(), 0)
        lines = [line for line in sm.stderr().splitlines() if line]
        self.assertGreaterEqual(len(lines), 3, sm.stderr())
        for line in lines:
            doc = json.loads(line)
            self.assertEqual(set(doc), {"time", "level", "msg"})
            self.assertRegex(doc["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(json.loads(lines[-1])["msg"], "stopped")

    def test_level_filters_lines(self):
        fake = self.start_fake()
        cfg = harness.proxy_config({"emu": [fake.address]})
        cfg["log"] = {"level": "warning"}
        sm = self.start_speedmon(cfg)
        self.assertEqual(sm.stop(), 0)
        self.assertEqual(sm.stderr(), "")


class BuildInfoTest(harness.HarnessTestCase):
    def test_version_prints_the_revision(self):
        out = subprocess.run([harness.speedmon_bin(), "--version"], capture_output=True,
                             text=True, check=True).stdout
        m = re.fullmatch(r"speedmon (\d+\.\d+\.\d+) \(revision ([0-9a-f]{12})(\+dirty)?, "
                         r"(release|debug) build\)\n", out)
        self.assertIsNotNone(m, out)
        # The build was configured at this commit or an earlier one of this checkout.
        log = subprocess.run(["git", "-C", os.environ["SPEEDMON_SOURCE_DIR"], "log",
                              "--format=%h", "--abbrev=12", "-n", "200"],
                             capture_output=True, text=True, check=True).stdout.split()
        self.assertIn(m.group(2), log)

    def test_build_info_metric(self):
        fake = self.start_fake()
        sm = self.proxy_for(fake)
        out = subprocess.run([harness.speedmon_bin(), "--version"], capture_output=True,
                             text=True, check=True).stdout
        version, revision = re.match(r"speedmon (\S+) \(revision ([^,]+),", out).groups()
        self.assertMetric(sm.metrics(), 1, "pokemon_speedrun_build_info", version=version,
                          revision=revision)


if __name__ == "__main__":
    import unittest
    unittest.main()
