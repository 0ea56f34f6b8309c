"""docs/API.md is checked against a live speedmon: every route of admin/router.cc has a
section, every curl example runs, in document order, with the status code its
`<!-- expect: N -->` line states, and every Python client example runs (exit 0, its
asserts hold) against a second speedmon, with the client from clients/python."""

import os
import re
import shlex
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

SOURCE = os.environ.get("SPEEDMON_SOURCE_DIR",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DOC = os.path.join(SOURCE, "docs", "API.md")
ROUTER = os.path.join(SOURCE, "admin", "router.cc")
DOC_BASE = "http://127.0.0.1:8000"

PYTHON = re.compile(r"```python\n(.*?)\n```", re.S)
CLIENT = os.path.join(SOURCE, "clients", "python")
EXAMPLE = re.compile(r"<!-- expect: (\d{3}) -->\n```sh\n(.*?)\n```", re.S)
HEADING = re.compile(r"^### `([A-Z]+) (/[^`]*)`", re.M)
# A route row: {"/prefix", "suffix", has_param, Route::kX, kGet | kPost}.
ROUTE = re.compile(r'\{"(/[^"]*)", "([^"]*)", (true|false), Route::\w+, ([\w |]+)\}')
METHODS = {"kGet": "GET", "kPost": "POST", "kDelete": "DELETE"}


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def examples(text):
    """[(status, argv)] of the document's examples, in order."""
    out = []
    for status, command in EXAMPLE.findall(text):
        argv = shlex.split(command.replace("\\\n", " "))
        out.append((int(status), argv))
    return out


def documented_routes(text):
    """{(method, path with every {param} as {})} of the section headings."""
    return {(m, re.sub(r"\{[a-z_]+\}", "{}", p)) for m, p in HEADING.findall(text)}


def router_routes(source):
    routes = set()
    for prefix, suffix, has_param, methods in ROUTE.findall(source):
        path = prefix + ("{}" + suffix if has_param == "true" else "")
        for bit in methods.split("|"):
            routes.add((METHODS[bit.strip()], path))
    return routes


class ApiDocTest(harness.HarnessTestCase):
    def test_every_route_has_a_section(self):
        routes = router_routes(read(ROUTER))
        self.assertGreater(len(routes), 20)  # the pattern still reads the table
        missing = routes - documented_routes(read(DOC)) - {("GET", "/index.html")}
        self.assertEqual(missing, set(), "routes without a section in docs/API.md")
        # Each section has one example or more and a place for the Python client's.
        sections = re.split(r"^### ", read(DOC), flags=re.M)[1:]
        for s in sections:
            title = s.splitlines()[0]
            self.assertIn("<!-- expect: ", s, title)
            self.assertIn("Python client: <!-- python-client-example: ", s, title)

    def test_python_client_examples_run(self):
        cfg = harness.proxy_config({"emu": ["127.0.0.1:9"]})
        cfg["speedrun"] = {"store_path": os.path.join(self.workdir, "speedmon.db")}
        cfg["alerting"] = {"default_rules": True}
        sm = self.start_speedmon(cfg)
        snippets = PYTHON.findall(read(DOC))
        self.assertGreaterEqual(len(snippets), 12)
        spool = os.path.join(self.workdir, "spool")
        env = dict(os.environ, PYTHONPATH=CLIENT)
        for code in snippets:
            self.assertIn(DOC_BASE, code)
            code = code.replace(DOC_BASE, sm.admin_url).replace("/tmp/speedmon-spool", spool)
            done = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True,
                                  text=True, timeout=60, env=env, cwd=self.workdir)
            self.assertEqual(done.returncode, 0, f"{code}\n--- stderr ---\n{done.stderr}")

    def test_examples_answer_as_documented(self):
        cfg = harness.proxy_config({"emu": ["127.0.0.1:9"]})
        cfg["speedrun"] = {"store_path": os.path.join(self.workdir, "speedmon.db")}
        cfg["alerting"] = {"default_rules": True}
        sm = self.start_speedmon(cfg)
        runs = examples(read(DOC))
        self.assertGreater(len(runs), 30)
        for status, argv in runs:
            self.assertEqual(argv[0], "curl")
            argv = [a.replace(DOC_BASE, sm.admin_url) for a in argv]
            self.assertTrue(any(a.startswith(sm.admin_url) for a in argv), argv)
            done = subprocess.run(argv + ["-o", "/dev/null", "-w", "%{http_code}",
                                          "--max-time", "30"],
                                  capture_output=True, text=True, timeout=60)
            self.assertEqual(done.returncode, 0, f"{argv}: {done.stderr}")
            self.assertEqual(int(done.stdout), status, shlex.join(argv))


if __name__ == "__main__":
    unittest.main()
