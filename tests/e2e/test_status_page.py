"""The live status page (GET / on the admin address) in a real browser: Debian's headless
Chromium loads it from a running speedmon, lets its JavaScript poll the admin API, and
the test reads what a person would see.

- LivePageTest: after scripted traffic, experiments and a firing alert, a screenshot of
  the right size, and the DOM after JavaScript ran shows the exact counts, the SLA
  verdict, the alert, the request id; then the emulator stops and the page shows its
  endpoint unhealthy.
- StandInApiTest: the same page served next to a stand-in API that speedmon cannot
  produce on demand: hostile strings (they must stay text) and an API that goes away
  (the stale banner, with the last values kept).
- ChartsTest: the "Last 15 minutes" charts after known traffic, through the DevTools
  protocol (tests/e2e/cdp.py): every series with the number of points the API holds and
  the exact totals in its legend, at 1280 px and at a phone's 390 px without horizontal
  overflow, with a screenshot of each.
- ServedPageTest: what GET / and /index.html answer (type, size, no external assets).

Chromium runs with a fresh profile per call, in its own process group, which is killed
after every run; the profile directory is removed.
"""

import decimal
import html.parser
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402
import cdp  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_TIMEOUT = 120.0  # a loaded CI machine; a hung browser is killed, never waited on
# Virtual time: 5 s lets the page poll three times (0, 2 and 4 s). Virtual time stands
# still while a fetch is pending, so a slow speedmon cannot make a render look missing.
VIRTUAL_TIME_MS = 5000
WIDTH, HEIGHT = 1280, 1600
MAX_PAGE_BYTES = 30 * 1024
DASH = "\u2013"
GE = "\u2265"

HEALTH_CHECK = {"path": "/status", "interval": "200ms", "timeout": "150ms",
                "healthy_threshold": 1, "unhealthy_threshold": 1}
ALERT_SUMMARY = "Experiment success <b>low</b> & falling"
ALERT_RULE = {"id": "low_success", "name": "LowExperimentSuccess",
              "metric": "speedrun.experiment_success_rate", "operator": "<",
              "threshold": 95.0, "for": "0s", "severity": "critical",
              "annotations": {"summary": ALERT_SUMMARY}}
OUR_REQUEST_ID = "status-page-test-0001"
ACTIONS, STATUSES = 7, 3


# ---- Chromium ----------------------------------------------------------------------------

def chromium(url, *mode_args):
    """Runs headless Chromium on url with mode_args (--dump-dom or --screenshot=...),
    returns its stdout. Fails with Chromium's stderr on a non-zero exit or a timeout."""
    if not os.access(CHROMIUM, os.X_OK):
        raise AssertionError(f"{CHROMIUM} is missing: run scripts/install-deps.sh")
    profile = tempfile.mkdtemp(prefix="speedmon-chromium-")
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
            f"--virtual-time-budget={VIRTUAL_TIME_MS}", *mode_args, url]
    env = dict(os.environ, TZ="UTC")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=CHROMIUM_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"chromium did not finish in {CHROMIUM_TIMEOUT:.0f}s: "
                             f"{err[-3000:].decode(errors='replace')}") from None
    finally:
        try:  # helpers (zygote, GPU, network service) must not outlive the run
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(profile, ignore_errors=True)
    if proc.returncode != 0:
        raise AssertionError(f"chromium exited {proc.returncode}: "
                             f"{err[-3000:].decode(errors='replace')}")
    return out.decode("utf-8")


def png_size(path):
    """(width, height) of a PNG file; fails if it is not one."""
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise AssertionError(f"{path} is not a PNG: {head!r}")
    return struct.unpack(">II", head[16:24])


# ---- the dumped DOM ----------------------------------------------------------------------

class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.children = tag, dict(attrs), parent, []

    def text(self):
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def walk(self):
        for c in self.children:
            if isinstance(c, Node):
                yield c
                yield from c.walk()

    def all(self, tag=None, **attrs):
        """Descendants with this tag (None: any) and these attributes (testid=... means
        data-testid, other underscores become dashes)."""
        want = {("data-testid" if k == "testid" else k.replace("_", "-")): v
                for k, v in attrs.items()}
        return [n for n in self.walk() if (tag is None or n.tag == tag)
                and all(n.attrs.get(k) == v for k, v in want.items())]

    def one(self, tag=None, **attrs):
        found = self.all(tag, **attrs)
        if len(found) != 1:
            raise AssertionError(f"expected one <{tag or '*'} {attrs}>, found {len(found)}")
        return found[0]

    def cell(self, col):
        """The text of this row's cell data-col=col."""
        return self.one("td", data_col=col).text()

    def cells(self):
        return {n.attrs["data-col"]: n.text() for n in self.all("td") if "data-col" in n.attrs}


class _DomBuilder(html.parser.HTMLParser):
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, None)
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.cur)
        self.cur.children.append(node)
        if tag not in self.VOID:
            self.cur = node

    def handle_endtag(self, tag):
        n = self.cur
        while n is not self.root and n.tag != tag:
            n = n.parent
        if n is not self.root:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def parse_dom(text):
    b = _DomBuilder()
    b.feed(text)
    b.close()
    return b.root


# ---- what the page should print, from the JSON it read -----------------------------------

def js_fixed(v, digits):
    """JavaScript's Number.prototype.toFixed for v >= 0 (ties round up, on the exact
    binary value), which Python's format() does not do."""
    q = decimal.Decimal(1).scaleb(-digits)
    return str(decimal.Decimal(v).quantize(q, rounding=decimal.ROUND_HALF_UP))


def fmt_ms(v):
    return js_fixed(v, 2 if v < 10 else 1 if v < 100 else 0) + " ms"


def fmt_bytes(n):
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n /= 1024
        i += 1
    return (js_fixed(n, 1) if i else str(n)) + " " + units[i]


# ---- a stand-in API next to the page -----------------------------------------------------

class StandIn:
    """Serves the status page at / and JSON documents at api/v1/*: each path answers
    docs[path] for its first `good_rounds` requests and 503 after that (None: always
    good). Unknown paths answer 404."""

    def __init__(self, page, docs, good_rounds=None):
        self.page, self.docs, self.good_rounds = page.encode(), docs, good_rounds
        self.served = {}
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                stand_in.answer(self)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def answer(self, h):
        path = urllib.parse.urlsplit(h.path).path
        if path in ("/", "/index.html"):
            return self._send(h, 200, "text/html; charset=utf-8", self.page)
        key = path.lstrip("/")
        if key not in self.docs:
            return self._send(h, 404, "application/json", b'{"error":"no such path"}')
        with self.lock:
            n = self.served[key] = self.served.get(key, 0) + 1
        if self.good_rounds is not None and n > self.good_rounds:
            return self._send(h, 503, "application/json", b'{"error":"down"}')
        return self._send(h, 200, "application/json", json.dumps(self.docs[key]).encode())

    @staticmethod
    def _send(h, status, ctype, body):
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


# ---- tests -------------------------------------------------------------------------------

class LivePageTest(harness.HarnessTestCase):
    def setUp(self):
        super().setUp()
        self.fake = self.start_fake()
        cfg = harness.proxy_config({"emu": [self.fake.address]}, health_check=HEALTH_CHECK)
        cfg["alerting"] = {"default_rules": False, "evaluation_interval": "200ms",
                           "rules": [ALERT_RULE]}
        cfg["processes"] = [{"name": "fake-emulator", "pid": self.fake.proc.pid}]
        self.sm = self.start_speedmon(cfg)
        self.page_url = self.sm.admin_url + "/"

    def api(self, path):
        return self.sm.get_json(path)

    def endpoint_healthy(self):
        return self.api("/api/v1/upstreams")["upstreams"][0]["endpoints"][0]["healthy"]

    def route_counts(self):
        routes = self.api("/api/v1/upstreams")["upstreams"][0]["routes"]
        return {r["route"]: r["requests"] for r in routes}

    def drive(self):
        """ACTIONS x POST /action (the first with our X-Request-Id), STATUSES x GET
        /status; 3 successful and 1 failed experiment; waits until speedmon counted it
        all and the alert fired."""
        harness.wait_for(self.endpoint_healthy, 30, what="endpoint healthy")
        with requests.Session() as s:
            for i in range(ACTIONS):
                headers = {"Content-Type": "application/json"}
                if i == 0:
                    headers["X-Request-Id"] = OUR_REQUEST_ID
                r = s.post(self.sm.url + "/action", data=b'{"action_type":"press_key"}',
                           headers=headers, timeout=30)
                self.assertEqual(r.status_code, 200)
            for _ in range(STATUSES):
                self.assertEqual(s.get(self.sm.url + "/status", timeout=30).status_code, 200)
            experiments = [{"experiment_id": f"page-{i}", "status": st, "duration_seconds": 2.5,
                            "script_compilation_time_ms": 40.0 + i,
                            "checkpoint_loading_time_ms": 200.0}
                           for i, st in enumerate(["success", "success", "failure", "success"])]
            r = s.post(self.sm.admin_url + "/api/v1/experiments", json=experiments, timeout=30)
            self.assertEqual(r.status_code, 201, r.text)
        harness.wait_for(lambda: self.route_counts() == {"action": ACTIONS, "status": STATUSES},
                         30, what="the proxied requests counted")
        harness.wait_for(lambda: any(
            x["request_id"] == OUR_REQUEST_ID
            for x in self.api("/api/v1/requests?limit=100")["requests"]), 30,
            what="our request in the recent-requests ring")
        harness.wait_for(lambda: [a["state"] for a in self.api("/api/v1/alerts")["alerts"]]
                         == ["firing"], 30, what="LowExperimentSuccess firing")

    def dump(self):
        return parse_dom(chromium(self.page_url, "--dump-dom"))

    def test_page_shows_what_speedmon_measured(self):
        self.drive()

        shot = os.path.join(self.workdir, "status.png")
        chromium(self.page_url, f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}",
                 "--hide-scrollbars")
        self.assertEqual(png_size(shot), (WIDTH, HEIGHT))
        if os.environ.get("SPEEDMON_KEEP_SCREENSHOT"):
            shutil.copy(shot, os.environ["SPEEDMON_KEEP_SCREENSHOT"])

        dom = self.dump()
        upstreams = self.api("/api/v1/upstreams")
        self.assertEqual(dom.one("title").text(), "speedmon status")
        self.assertIn("hidden", dom.one(id="stale-banner").attrs)
        self.assertRegex(dom.one(id="updated").text(), r"^updated \d\d:\d\d:\d\d$")

        # Upstream, endpoint, per-route counts and latencies as the API gave them.
        up = dom.one(testid="upstream-emu")
        self.assertEqual(up.attrs["data-name"], "emu")
        self.assertEqual(up.one("h3").text(), "emu1 of 1 endpoints healthy")
        ep = up.one("li", testid="endpoint")
        self.assertEqual((ep.attrs["data-address"], ep.attrs["data-healthy"]),
                         (self.fake.address, "true"))
        self.assertEqual(ep.text(), self.fake.address + "healthy")
        api_routes = {r["route"]: r for r in upstreams["upstreams"][0]["routes"]}
        rows = {r.attrs["data-route"]: r.cells() for r in up.all("tr", testid="route-row")}
        self.assertEqual(set(rows), {"action", "status"})
        for route, n in (("action", ACTIONS), ("status", STATUSES)):
            with self.subTest(route=route):
                lat = api_routes[route]["latency_ms"]
                self.assertEqual(rows[route], {
                    "route": route, "requests": str(n), "errors_5xx": "0",
                    "success_rate": "100.0 %", "p50": fmt_ms(lat["p50"]),
                    "p95": fmt_ms(lat["p95"]), "p99": fmt_ms(lat["p99"]),
                    "avg": fmt_ms(lat["avg"]), "max": fmt_ms(lat["max"]),
                    "request_bytes": fmt_bytes(api_routes[route]["request_bytes"]),
                    "response_bytes": fmt_bytes(api_routes[route]["response_bytes"])})

        # SLA: one failed experiment of four is 75 %, under the 95 % target.
        overall = dom.one(id="sla-overall")
        self.assertEqual((overall.text(), overall.attrs["data-state"]),
                         ("not compliant", "violated"))
        self.assertEqual(dom.one(id="sla-window").text(), "window: 4 experiments, 0 patterns")
        sla = {r.attrs["data-testid"][4:]: r.cells() for r in dom.all("tr")
               if r.attrs.get("data-testid", "").startswith("sla-")}
        self.assertEqual(sla["experiment_success_rate"], {
            "requirement": "Experiment success rate", "value": "75.0 %",
            "target": f"{GE} 95.0 %", "state": "missed"})
        self.assertEqual(sla["script_compilation"], {
            "requirement": "Script compilation under target", "value": "100.0 %",
            "target": f"{GE} 95.0 % under 100 ms", "state": "met"})
        self.assertEqual(sla["pattern_quality"], {
            "requirement": "Pattern quality", "value": "no data", "target": f"{GE} 0.70",
            "state": "no data"})
        self.assertEqual(sla["system_availability"]["state"], "met")
        self.assertEqual(len(sla), 5)

        # The alert, its summary as text: the <b> in it must not become an element.
        alerts = dom.one(id="alerts")
        self.assertEqual(alerts.one(id="alerts-count").text(), "1 firing")
        row = alerts.one("tr", testid="alert-row")
        self.assertEqual(row.attrs["data-name"], "LowExperimentSuccess")
        cells = row.cells()
        self.assertRegex(cells.pop("active_at"), r"^\d\d:\d\d:\d\d$")
        self.assertEqual(cells, {"state": "firing", "severity": "critical",
                                 "name": "LowExperimentSuccess", "value": "75.00",
                                 "summary": ALERT_SUMMARY})
        self.assertEqual(dom.all("b"), [])

        # The request the test tagged, in the recent-requests table.
        req = dom.one("tr", testid="request-row", data_request_id=OUR_REQUEST_ID)
        cells = req.cells()
        self.assertRegex(cells.pop("time"), r"^\d\d:\d\d:\d\d$")
        self.assertRegex(cells.pop("duration_ms"), r"^\d+\.\d+ ms$")
        self.assertEqual(cells, {"upstream": "emu", "route": "action", "method": "POST",
                                 "path": "/action", "status": "200",
                                 "request_id": OUR_REQUEST_ID})
        self.assertEqual(len(dom.all("tr", testid="request-row")), ACTIONS + STATUSES)

        # Host and processes.
        system = self.api("/api/v1/system")
        self.assertRegex(dom.one("tr", testid="sys-cpu").cell("value"),
                         rf"^({DASH}|\d+\.\d %) of {system['cpu_count']} cores$")
        self.assertRegex(dom.one("tr", testid="sys-memory").cell("value"),
                         rf"^\d+\.\d % of {fmt_bytes(system['memory_total_bytes'])}$")
        self.assertRegex(dom.one("tr", testid="sys-disk", data_path="/").cell("value"),
                         r"^\d+\.\d % of \d+\.\d [KMGT]iB$")
        self.assertRegex(dom.one("tr", testid="sys-load").cell("value"),
                         r"^\d+\.\d\d / \d+\.\d\d / \d+\.\d\d$")
        self.assertRegex(dom.one("tr", testid="sys-uptime").cell("value"),
                         r"^(\d+d \d+h|\d+h \d+m|\d+m \d+s|\d+s)$")
        proc = dom.one("tr", testid="process-row", data_name="fake-emulator")
        self.assertEqual((proc.cell("state"), proc.cell("pid")),
                         ("running", str(self.fake.proc.pid)))
        check = dom.one("tr", testid="healthcheck-row", data_endpoint=self.fake.address)
        self.assertEqual((check.cell("healthy"), check.cell("last_result")),
                         ("healthy", "success"))

        # The emulator goes away: health checks mark it down, and so does the page.
        self.fake.stop()
        harness.wait_for(lambda: self.endpoint_healthy() is False, 30,
                         what="endpoint marked unhealthy")
        dom = self.dump()
        up = dom.one(testid="upstream-emu")
        ep = up.one("li", testid="endpoint")
        self.assertEqual((ep.attrs["data-healthy"], ep.text()),
                         ("false", self.fake.address + "unhealthy"))
        self.assertEqual(up.one("h3").text(), "emu0 of 1 endpoints healthy")
        self.assertEqual(up.one("tr", testid="route-row", data_route="action")
                         .cell("requests"), str(ACTIONS))
        check = dom.one("tr", testid="healthcheck-row", data_endpoint=self.fake.address)
        self.assertEqual(check.cell("healthy"), "unhealthy")
        proc = dom.one("tr", testid="process-row", data_name="fake-emulator")
        self.assertEqual((proc.cell("state"), proc.cell("pid")), ("not running", DASH))
        self.assertIn("hidden", dom.one(id="stale-banner").attrs)


HOSTILE = '<img src=x onerror="document.title=\'pwned\'">'

STAND_IN_DOCS = {
    "api/v1/upstreams": {"upstreams": [{
        "name": HOSTILE, "endpoints": [{"address": "10.0.0.1:1<script>", "healthy": False}],
        "routes": [{"route": "<i>r</i>", "requests": 2, "errors_5xx": 1, "success_rate": 50.0,
                    "request_bytes": 2048, "response_bytes": 3 * 1024 * 1024,
                    "latency_ms": {"min": 1, "avg": 12.25, "p50": 0.125, "p95": 150.5,
                                   "p99": 2000, "max": 2100}}]}]},
    "api/v1/system": {"cpu_percent": None, "cpu_count": 4, "memory_percent": 95.5,
                      "memory_total_bytes": 8 * 1024 ** 3,
                      "disks": [{"path": "/<u>data</u>", "percent": 50.0,
                                 "total_bytes": 1024 ** 4}],
                      "load_average": [1, 2.5, 3.125], "uptime_seconds": 90061},
    "api/v1/sla": {"overall_sla_compliant": True,
                   "individual_compliance": {"experiment_success_rate": None,
                                             "<em>custom</em>": True, "toString": False},
                   "values": {"experiment_success_rate": None, "<em>custom</em>": 3},
                   "targets": {"experiment_success_rate": 95.0}, "window": {}},
    "api/v1/alerts": {"alerts": [{"name": "<svg onload=alert(1)>", "state": "pending",
                                  "severity": "<script>", "value": None,
                                  "activeAt": "not a time",
                                  "annotations": {"summary": "</td></tr><tr><td>x"}}],
                      "resolved": [{"name": "Old", "severity": "info",
                                    "resolvedAt": "2026-01-02T03:04:05Z",
                                    "annotations": {}}]},
    "api/v1/requests": {"requests": [{"time": 0, "upstream": "u", "route": "r",
                                      "method": "GET", "path": "/<script>alert(1)</script>",
                                      "status": 502, "duration_ms": 1500,
                                      "request_id": "\"><b>id</b>"}]},
    "api/v1/processes": {"processes": [], "endpoints": []},
    "api/v1/timeseries": {"interval_seconds": 5, "capacity": 180, "time": [1000, 1005],
                          "seconds": [5, 5],
                          "upstreams": [{"name": HOSTILE, "requests": [1, 2],
                                         "requests_per_second": [0.2, 0.4],
                                         "successes": [1, 1], "success_percent": [100, 50],
                                         "errors_5xx": [0, 1], "p95_ms": [None, 12.5]}],
                          "experiments": [0, 1], "experiment_successes": [0, 0],
                          "experiment_success_rate": [None, 0],
                          "cpu_percent": [10, 20], "memory_percent": [30, None]},
}
# The only attributes of the charts' <svg> elements (the DOM parser lowercases names).
CHART_SVG_ATTRS = {"viewbox", "preserveaspectratio", "class", "aria-hidden"}


class StandInApiTest(harness.HarnessTestCase):
    """The page from speedmon, served beside an API that says what a test needs."""

    def setUp(self):
        super().setUp()
        sm = self.start_speedmon(harness.proxy_config({"emu": [self.start_fake().address]}))
        status, headers, body = sm.get("/")
        self.assertEqual(status, 200)
        self.page = body.decode("utf-8")

    def stand_in(self, **kw):
        s = StandIn(self.page, STAND_IN_DOCS, **kw)
        self.addCleanup(s.stop)
        return s

    def test_data_is_shown_as_text_never_as_markup(self):
        dom = parse_dom(chromium(self.stand_in().url, "--dump-dom"))
        self.assertEqual(dom.one("title").text(), "speedmon status")
        self.assertEqual(len(dom.all("script")), 1)  # the page's own
        for tag in ("img", "i", "u", "em", "b"):
            self.assertEqual(dom.all(tag), [], f"<{tag}> from data became an element")
        # The charts' own <svg>s, and no other (the upstream name is an <svg onload>).
        svgs = dom.all("svg")
        self.assertEqual(len(svgs), 8)
        for s in svgs:
            self.assertLessEqual(set(s.attrs), CHART_SVG_ATTRS)
            self.assertEqual(s.attrs["class"], "spark")
        legend = dom.one(testid="chart-requests").one("li", data_series=HOSTILE)
        self.assertEqual(legend.text(), HOSTILE + "3 requests")
        self.assertEqual(dom.one(testid="chart-p95").one("li").text(), HOSTILE + "12.5 ms")
        self.assertEqual(dom.one(testid="chart-success").one("li").text(), HOSTILE + "66.7 %")
        self.assertEqual(dom.one(testid="chart-memory").one("li").text(), "memory30.0 %")
        self.assertIn("hidden", dom.one(id="stale-banner").attrs)

        up = dom.one(testid="upstream-" + HOSTILE)
        self.assertEqual(up.one("h3").text(), HOSTILE + "0 of 1 endpoints healthy")
        self.assertEqual(up.one("li", testid="endpoint").text(), "10.0.0.1:1<script>unhealthy")
        self.assertEqual(up.one("tr", testid="route-row").cells(), {
            "route": "<i>r</i>", "requests": "2", "errors_5xx": "1", "success_rate": "50.0 %",
            "p50": "0.13 ms", "p95": "151 ms", "p99": "2000 ms", "avg": "12.3 ms",
            "max": "2100 ms", "request_bytes": "2.0 KiB", "response_bytes": "3.0 MiB"})

        self.assertEqual(dom.one("tr", testid="sys-cpu").cell("value"), f"{DASH} of 4 cores")
        self.assertEqual(dom.one("tr", testid="sys-memory").cell("value"),
                         "95.5 % of 8.0 GiB")
        self.assertEqual(dom.one("tr", testid="sys-disk", data_path="/<u>data</u>")
                         .cell("value"), "50.0 % of 1.0 TiB")
        self.assertEqual(dom.one("tr", testid="sys-load").cell("value"), "1.00 / 2.50 / 3.13")
        self.assertEqual(dom.one("tr", testid="sys-uptime").cell("value"), "1d 1h")

        self.assertEqual(dom.one(id="sla-overall").text(), "compliant")
        self.assertEqual(dom.one(id="sla-window").text(), "window: 0 experiments, 0 patterns")
        self.assertEqual(dom.one("tr", testid="sla-experiment_success_rate").cells(), {
            "requirement": "Experiment success rate", "value": "no data",
            "target": f"{GE} 95.0 %", "state": "no data"})
        self.assertEqual(dom.one("tr", testid="sla-<em>custom</em>").cells(), {
            "requirement": "<em>custom</em>", "value": "3.00", "target": DASH, "state": "met"})
        self.assertEqual(dom.one("tr", testid="sla-toString").cells(), {
            "requirement": "toString", "value": "no data", "target": DASH, "state": "missed"})

        self.assertEqual(dom.one(id="alerts-count").text(), "0 firing, 1 pending")
        self.assertEqual(dom.one("tr", testid="alert-row").cells(), {
            "state": "pending", "severity": "<script>", "name": "<svg onload=alert(1)>",
            "value": DASH, "active_at": DASH, "summary": "</td></tr><tr><td>x"})
        self.assertEqual(dom.one("tr", testid="resolved-row").cells(), {
            "name": "Old", "severity": "info", "resolved_at": "03:04:05", "summary": ""})

        req = dom.one("tr", testid="request-row")
        self.assertEqual(req.attrs["data-request-id"], "\"><b>id</b>")
        self.assertEqual(req.cells(), {
            "time": "00:00:00", "upstream": "u", "route": "r", "method": "GET",
            "path": "/<script>alert(1)</script>", "status": "502", "duration_ms": "1500 ms",
            "request_id": "\"><b>id</b>"})
        self.assertEqual(dom.one(id="processes-body").text(),
                         "No watched processes ([[processes]] in the config).")

    def test_unreachable_api_shows_stale_banner_and_keeps_last_values(self):
        # The first poll succeeds, the ones 2 s and 4 s later get 503 (but for the
        # samples, sampled every 5 s: the page does not ask for them again before that).
        stand_in = self.stand_in(good_rounds=1)
        dom = parse_dom(chromium(stand_in.url, "--dump-dom"))
        self.assertEqual(stand_in.served["api/v1/timeseries"], 1)
        self.assertEqual(stand_in.served["api/v1/upstreams"], 3)
        banner = dom.one(id="stale-banner")
        self.assertNotIn("hidden", banner.attrs)
        self.assertRegex(banner.text(), r"^Stale \u2014 cannot reach\s+speedmon\. Last update "
                         r"\d\d:\d\d:\d\d; failed: upstreams: HTTP 503, system: HTTP 503, "
                         r"sla: HTTP 503, alerts: HTTP 503, requests: HTTP 503, "
                         r"processes: HTTP 503$")
        self.assertEqual(dom.one("body").attrs.get("class"), "stale")
        self.assertEqual(dom.one(testid="upstream-" + HOSTILE).one("tr", testid="route-row")
                         .cell("requests"), "2")
        self.assertEqual(dom.one(testid="chart-requests").one("li").text(),
                         HOSTILE + "3 requests")

    def test_never_reached_api(self):
        dom = parse_dom(chromium(self.stand_in(good_rounds=0).url, "--dump-dom"))
        self.assertIn("Last update never; failed: upstreams: HTTP 503",
                      dom.one(id="stale-banner").text())
        self.assertEqual(dom.one(id="updated").text(), "no data yet")
        self.assertEqual(dom.one(id="sla-overall").text(), "no data")
        self.assertEqual(dom.one(id="upstreams-body").text().strip(), "")


CHART_INTERVAL = "500ms"  # 180 samples: 90 s before the oldest goes, far more than a run
CHARTS = {  # testid: series, for two upstreams
    "requests": ["emu-a", "emu-b"], "p95": ["emu-a", "emu-b"], "errors": ["emu-a", "emu-b"],
    "success": ["emu-a", "emu-b"], "experiments": ["stored", "success"],
    "experiment-success": ["success rate"], "cpu": ["cpu"], "memory": ["memory"]}
# Each chart's series as API columns: (upstream column | top-level column) per series.
COLUMNS = {"requests": "requests_per_second", "p95": "p95_ms", "errors": "errors_5xx",
           "success": "success_percent", "experiments": ["experiments", "experiment_successes"],
           "experiment-success": ["experiment_success_rate"], "cpu": ["cpu_percent"],
           "memory": ["memory_percent"]}
# The layout of the page as a browser measures it.
LAYOUT_JS = """(() => {
  const d = document.documentElement, r = (e) => e.getBoundingClientRect();
  return {scroll: d.scrollWidth, client: d.clientWidth,
          charts: [...document.querySelectorAll("figure.chart")].map((f) => ({
            left: r(f).left, right: r(f).right, top: Math.round(r(f).top),
            plot: r(f.querySelector("svg.spark")).width}))};
})()"""


def path_points(d):
    """The points of an SVG path as the page writes it (M/L x y, h0 after a segment's
    first point)."""
    return sum(1 for tok in d.split() if tok[0] in "ML")


class ChartsTest(harness.HarnessTestCase):
    def setUp(self):
        super().setUp()
        fake = self.start_fake()
        cfg = harness.proxy_config({"emu-a": [fake.address], "emu-b": [fake.address]})
        cfg["admin"]["timeseries_interval"] = CHART_INTERVAL
        self.sm = self.start_speedmon(cfg)
        self.browser = cdp.Browser()
        self.addCleanup(self.browser.close)

    def totals(self):
        t = self.sm.get_json("/api/v1/timeseries")
        return ({u["name"]: sum(u["requests"]) for u in t["upstreams"]}, sum(t["experiments"]))

    def keep(self, shot, name):
        keep = os.environ.get("SPEEDMON_KEEP_SCREENSHOT")
        if keep:
            shutil.copy(shot, os.path.join(os.path.dirname(keep) or ".", name))

    def test_charts_show_the_sampled_traffic_at_desktop_and_phone_width(self):
        sm = self.sm
        url = {n: f"http://127.0.0.1:{sm.listener_port(n)}" for n in ("emu-a", "emu-b")}
        with requests.Session() as s:
            for _ in range(6):
                self.assertEqual(s.post(url["emu-a"] + "/action", json={"action": "a"},
                                        timeout=30).status_code, 200)
            for _ in range(2):
                self.assertEqual(s.get(url["emu-a"] + "/status?misbehave=status&code=500",
                                       timeout=30).status_code, 500)
            for _ in range(3):
                self.assertEqual(s.get(url["emu-b"] + "/status", timeout=30).status_code, 200)
            experiments = [{"experiment_id": f"chart-{i}", "status": st, "duration_seconds": 2.5}
                           for i, st in enumerate(["success", "success", "failure", "success"])]
            r = s.post(sm.admin_url + "/api/v1/experiments", json=experiments, timeout=30)
            self.assertEqual(r.status_code, 201, r.text)
        harness.wait_for(lambda: self.totals() == ({"emu-a": 8, "emu-b": 3}, 4), 30,
                         what="the traffic in the sampled points")

        b = self.browser
        b.open(sm.admin_url + "/", 1280, 900)
        b.wait_for("""(() => {
          const v = (c, s) => document.querySelector(
              `[data-testid=chart-${c}] li[data-series="${s}"] .val`);
          return v("requests", "emu-a") && v("requests", "emu-a").textContent === "8 requests"
              && v("experiments", "stored").textContent === "4";
        })()""", what="the charts with all the traffic")
        dom = parse_dom(b.html())
        shot = os.path.join(self.workdir, "charts-1280.png")
        b.screenshot(shot)
        self.assertEqual(png_size(shot), (1280, 900))
        self.keep(shot, "charts-1280.png")
        wide = b.evaluate(LAYOUT_JS)
        api = sm.get_json("/api/v1/timeseries")

        # The points the page drew are the first n the API holds (the ring only grows
        # in a run this short), each series with one point per sample that has a value.
        figures = dom.one(testid="charts").all("figure")
        self.assertEqual([f.attrs["data-testid"] for f in figures],
                         ["chart-" + c for c in CHARTS])
        n = int(figures[0].attrs["data-points"])
        self.assertLess(len(api["time"]), api["capacity"])
        self.assertGreaterEqual(len(api["time"]), n)
        self.assertGreaterEqual(n, 1)
        ups = {u["name"]: u for u in api["upstreams"]}
        for f in figures:
            chart = f.attrs["data-testid"][len("chart-"):]
            with self.subTest(chart=chart):
                self.assertEqual(f.attrs["data-points"], str(n))
                paths = f.all("path")
                self.assertEqual([p.attrs["data-series"] for p in paths], CHARTS[chart])
                self.assertEqual(f.attrs["data-series"], str(len(CHARTS[chart])))
                cols = COLUMNS[chart]
                for i, p in enumerate(paths):
                    col = (ups[CHARTS[chart][i]][cols] if isinstance(cols, str)
                           else api[cols[i]])[:n]
                    want = sum(1 for v in col if v is not None)
                    self.assertEqual(path_points(p.attrs["d"]), want, p.attrs["d"])
                    self.assertEqual(p.attrs["data-points"], str(want))
        # Requests/s, 5xx and experiments have a value in every sample; the newest is
        # drawn at the right edge.
        rps = figures[0].one("path", data_series="emu-a").attrs["d"]
        self.assertEqual(path_points(rps), n)
        self.assertEqual([t for t in rps.split() if t[0] in "ML"][-1][1:], "300.0")

        def legend(chart):
            return {li.attrs["data-series"]: li.one("span", **{"class": "val"}).text()
                    for li in dom.one(testid="chart-" + chart).all("li")}
        self.assertEqual(legend("requests"), {"emu-a": "8 requests", "emu-b": "3 requests"})
        self.assertEqual(legend("errors"), {"emu-a": "2 5xx", "emu-b": "0 5xx"})
        self.assertEqual(legend("success"), {"emu-a": "75.0 %", "emu-b": "100.0 %"})
        self.assertEqual(legend("experiments"), {"stored": "4", "success": "3"})
        self.assertEqual(legend("experiment-success"), {"success rate": "75.0 %"})
        last = lambda col: [v for v in col[:n] if v is not None][-1]  # noqa: E731
        self.assertEqual(legend("p95"), {u: fmt_ms(last(ups[u]["p95_ms"])) for u in ups})
        self.assertEqual(legend("cpu"), {"cpu": js_fixed(last(api["cpu_percent"]), 1) + " %"})
        self.assertEqual(legend("memory"),
                         {"memory": js_fixed(last(api["memory_percent"]), 1) + " %"})
        self.assertEqual(dom.one(testid="chart-requests").one("div", **{"class": "axis"}).text(),
                         "\u22121.5mnow")
        self.assertEqual(dom.one(id="charts-span").text(), "1.5 minutes")

        # 1280 px: four charts a row, two rows, nothing wider than the window.
        self.assertEqual(wide["scroll"], wide["client"])
        self.assertEqual(len({c["top"] for c in wide["charts"]}), 2)
        for c in wide["charts"]:
            self.assertGreaterEqual(c["plot"], 250)
            self.assertLessEqual(c["right"], 1280)

        # A phone: one chart a row, each nearly the window's width, no sideways scroll.
        b.resize(390, 844, mobile=True)
        b.call("Page.reload")
        b.wait_for('document.querySelectorAll("figure.chart").length === 8',
                   what="the charts at 390 px")
        phone = b.evaluate(LAYOUT_JS)
        self.assertEqual((phone["scroll"], phone["client"]), (390, 390))
        self.assertEqual(len({c["top"] for c in phone["charts"]}), 8)
        for c in phone["charts"]:
            self.assertGreaterEqual(c["left"], 0)
            self.assertLessEqual(c["right"], 390)
            self.assertGreaterEqual(c["plot"], 300)
        shot = os.path.join(self.workdir, "charts-390.png")
        b.screenshot(shot)
        self.assertEqual(png_size(shot), (390, 844))
        self.keep(shot, "charts-390.png")


class ServedPageTest(harness.HarnessTestCase):
    def test_root_and_index_html(self):
        sm = self.start_speedmon(harness.proxy_config({"emu": [self.start_fake().address]}))
        pages = []
        for path in ("/", "/index.html"):
            with self.subTest(path=path):
                status, headers, body = sm.get(path)
                self.assertEqual(status, 200)
                ctype = {k.lower(): v for k, v in headers.items()}["content-type"]
                self.assertEqual(ctype, "text/html; charset=utf-8")
                pages.append(body)
        self.assertEqual(pages[0], pages[1])
        page = pages[0].decode("utf-8")
        self.assertLess(len(pages[0]), MAX_PAGE_BYTES)
        self.assertTrue(page.startswith("<!DOCTYPE html>"))
        self.assertIn("<h1>speedmon status</h1>", page)
        self.assertIn("<noscript>", page)
        # Closed networks: nothing may come from elsewhere; data never goes through HTML.
        # The one URL is the SVG namespace, a name that is never fetched.
        svg_ns = '"http://www.w3.org/2000/svg"'
        self.assertEqual(page.count(svg_ns), 1)
        page = page.replace(svg_ns, "")
        for banned in ("http://", "https://", "src=", "@import", "url(", "innerHTML",
                       "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            self.assertNotIn(banned, page)


if __name__ == "__main__":
    unittest.main()
