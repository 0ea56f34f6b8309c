#!/usr/bin/python3
"""scripts/install-deps.sh's groups, read with DRY_RUN=1 (prints a group's packages, one a
line, and installs nothing): build holds the compiler, cmake and the -dev libraries and no
package only the tests or the benchmarks use, so monitoring/Dockerfile's build stage (which
installs `build` only) stays small; test and bench hold build; all (the default, what
scripts/test.sh, run.sh and CI use) is every group.

    /usr/bin/python3 monitoring/install_deps_test.py [-v]
"""

import os
import re
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SCRIPT = os.path.join(REPO, "scripts", "install-deps.sh")
sys.dont_write_bytecode = True

BUILD = {"build-essential", "cmake", "pkg-config", "clang-format", "libuv1-dev", "node-llhttp",
         "prometheus-cpp-dev", "libtomlplusplus-dev", "libsqlite3-dev", "nlohmann-json3-dev",
         "zlib1g-dev", "libcurl4-openssl-dev"}
TEST_ONLY = {"googletest", "libgtest-dev", "libgmock-dev", "prometheus",
             "prometheus-alertmanager", "chromium", "python3-yaml", "python3-requests", "curl",
             "python3-pip", "python3-setuptools", "python3-wheel", "python3-venv", "mypy",
             "clang-14", "libfuzzer-14-dev", "libclang-rt-14-dev"}
BENCH_ONLY = {"libbenchmark-dev", "wrk", "nginx-light", "haproxy", "prometheus-node-exporter",
              "strace", "valgrind", "linux-perf"}


def packages(*args):
    r = subprocess.run([SCRIPT, *args], env=dict(os.environ, DRY_RUN="1"),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert len(lines) == len(set(lines)), f"a package twice: {lines}"
    return set(lines)


class InstallDepsTest(unittest.TestCase):
    def test_build_has_no_test_or_bench_package(self):
        build = packages("build")
        self.assertEqual(build, BUILD)
        self.assertFalse(build & (TEST_ONLY | BENCH_ONLY))

    def test_groups_hold_build(self):
        build = packages("build")
        self.assertEqual(packages("test"), build | TEST_ONLY | {"python3"})
        self.assertEqual(packages("bench"), build | BENCH_ONLY | {"python3"})
        self.assertFalse(packages("bench") & TEST_ONLY)
        self.assertFalse(packages("test") & BENCH_ONLY)

    def test_default_is_all(self):
        everything = packages("all")
        self.assertEqual(packages(), everything)
        self.assertEqual(everything, packages("test") | packages("bench"))

    def test_unknown_group_is_refused(self):
        r = subprocess.run([SCRIPT, "tests"], env=dict(os.environ, DRY_RUN="1"),
                           capture_output=True, text=True, timeout=30)
        self.assertEqual((r.returncode, r.stdout), (2, ""))
        self.assertIn("usage:", r.stderr)

    def test_dockerfile_installs_the_build_group_and_builds_without_tests(self):
        with open(os.path.join(HERE, "Dockerfile"), encoding="utf-8") as f:
            build_stage = f.read().split("\nFROM debian:bookworm-slim")[0]
        self.assertEqual(re.findall(r"^RUN .*install-deps.*$", build_stage, re.M),
                         ["RUN scripts/install-deps.sh build && rm -rf /var/lib/apt/lists/*"])
        # Without googletest and Google Benchmark, the tree is configured without them.
        self.assertIn("RUN scripts/build.sh release -DSPEEDMON_TESTS=OFF -DSPEEDMON_BENCH=OFF",
                      build_stage)


if __name__ == "__main__":
    unittest.main()
