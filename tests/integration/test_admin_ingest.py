"""The admin ingest API against the real speedmon: a scripted runner session posts
experiments (object, array, NDJSON) and patterns and reuses them, then the exact
/metrics samples, GET /api/v1/sla and GET /api/v1/experiments are checked against values
computed by hand; malformed bodies get their exact 4xx and change no counter; duplicates
are answered 200 and counted once; bearer-token writes; the non-loopback start check;
health-check availability. Restarts and SIGKILL on a SQLite store: test_admin_crash.py,
which imports the helpers and the session from here.
"""

import json
import os
import re
import signal
import subprocess
import sys
import unittest
from unittest import mock

import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402
from harness import prom, rawhttp  # noqa: E402

EXPERIMENTS = "/api/v1/experiments"
PATTERNS = "/api/v1/patterns"
SLA = "/api/v1/sla"
JSON = "application/json"
NDJSON = "application/x-ndjson"

# The speedrun families (README.md, "Metrics"); system gauges move on their own, so a
# before/after comparison looks only at these.
SPEEDRUN_PREFIXES = ("pokemon_speedrun_experiment", "pokemon_speedrun_pattern",
                     "pokemon_speedrun_script", "pokemon_speedrun_checkpoint",
                     "pokemon_speedrun_sla")
DURATION_BOUNDS = [0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600]
LATENCY_BOUNDS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1, 2.5, 5]
STATUSES = ["success", "failure", "timeout", "error", "cancelled"]
PATTERN_TYPES = ["movement", "battle", "menu_navigation", "item_usage", "dialogue",
                 "optimization"]
REQUIREMENTS = ["experiment_success_rate", "script_compilation", "checkpoint_loading",
                "pattern_quality", "system_availability"]
T0 = 1714564800  # 2024-05-01T12:00:00Z
UNUSED_ENDPOINT = "127.0.0.1:9"  # discard; no request is proxied and there is no health check


# ---- helpers shared with test_admin_crash ----------------------------------------------

def ingest_config(store_path="", admin=None, speedrun=None, sla=None):
    """A speedmon config for ingest tests: one listener whose upstream is never contacted
    (the proxy is not under test; a fixed address keeps its labels the same across
    restarts), the admin API on loopback, the store at store_path."""
    cfg = harness.proxy_config({"emu": [UNUSED_ENDPOINT]})
    cfg["admin"].update(admin or {})
    cfg["speedrun"] = {"store_path": store_path, **(speedrun or {})}
    if sla:
        cfg["sla"] = dict(sla)
    return cfg


def speedrun_samples(samples):
    """Only the speedrun ingest and SLA series of a scrape."""
    return {k: v for k, v in samples.items() if k[0].startswith(SPEEDRUN_PREFIXES)}


def steady_samples(samples):
    """Every pokemon_speedrun_* series except the system gauges, which move on their own:
    with no proxy traffic and no health checks, nothing else may change unless ingested."""
    return {k: v for k, v in samples.items() if k[0].startswith("pokemon_speedrun_")
            and not k[0].startswith("pokemon_speedrun_system_")}


def brief(samples):
    return {f"{n}{dict(sorted(lbls))}": v for (n, lbls), v in sorted(
        samples.items(), key=lambda kv: (kv[0][0], sorted(kv[0][1])))}


def encode(body, content_type=JSON):
    """bytes as given; str as UTF-8; list under NDJSON one object a line; else json.dumps."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    if content_type == NDJSON:
        return "".join(json.dumps(x) + "\n" for x in body).encode()
    return json.dumps(body).encode()


class Admin:
    """requests.Session on speedmon's admin address (with a bearer token if given)."""

    def __init__(self, sm, token=None):
        self.url = sm.admin_url
        self.session = requests.Session()
        self.token = token

    def close(self):
        self.session.close()

    def post(self, path, body, content_type=JSON, headers=None):
        h = {} if content_type is None else {"Content-Type": content_type}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        h.update(headers or {})
        return self.session.post(self.url + path, data=encode(body, content_type), headers=h,
                                 timeout=30)

    def request(self, method, path, **kw):
        return self.session.request(method, self.url + path, timeout=30, **kw)

    def raw(self, method, target, headers=(), body=b"", **kw):
        """One request on a fresh raw connection (bytes exactly as given: requests would
        re-quote a malformed %-escape), as a requests-like response."""
        port = int(self.url.rsplit(":", 1)[1])
        with harness.RawHttp(port) as conn:
            return RawAnswer(conn.request(method, target, headers=list(headers), body=body,
                                          **kw))

    def get_json(self, path):
        r = self.session.get(self.url + path, timeout=30)
        if r.status_code != 200:
            raise AssertionError(f"GET {path} -> {r.status_code}: {r.text[:300]}")
        return r.json()


class RawAnswer:
    """The parts of a requests.Response the assertions use, from a harness.Response."""

    def __init__(self, resp):
        self.status_code = resp.status
        self.headers = requests.structures.CaseInsensitiveDict(resp.headers)
        self.text = resp.body.decode("utf-8", "replace")
        self.body = resp.body

    def json(self):
        return json.loads(self.body)


# ---- the scripted session, and what it must produce ------------------------------------

def experiment(i):
    """e-001 .. e-020 as the runner posts them. Hand-computed properties:
    19 success + e-020 FAILURE; compile 62.5 ms except e-007 250 ms; checkpoint 125 ms
    except e-013 750 ms, e-015 reports none; duration 2 s except e-001 12.5, e-020 0.25;
    strategy genetic for 1..10, llm_guided for 11..20."""
    e = {"experiment_id": f"e-{i:03d}", "status": "success", "duration_seconds": 2.0,
         "script_length": 100 + i, "script_compilation_time_ms": 62.5,
         "checkpoint_loading_time_ms": 125.0,
         "ai_strategy": "genetic" if i <= 10 else "llm_guided",
         "pattern_discoveries": i % 3, "timestamp": T0 + i, "performance_score": i / 4}
    if i == 1:
        e["duration_seconds"] = 12.5
    if i == 7:
        e["script_compilation_time_ms"] = 250.0
    if i == 13:
        e["checkpoint_loading_time_ms"] = 750.0
    if i == 15:
        del e["checkpoint_loading_time_ms"]
    if i == 20:
        e.update(status="FAILURE", duration_seconds=0.25, timestamp="2024-05-01T12:00:20Z",
                 error_message="softlock in Viridian Forest", unknown_field={"ignored": True})
    return e


def experiment_json(i):
    """GET /api/v1/experiments' form of experiment(i): every field, absent ones null."""
    e = experiment(i)
    e.pop("unknown_field", None)
    out = {k: None for k in ("experiment_id", "status", "duration_seconds", "script_length",
                             "script_compilation_time_ms", "checkpoint_loading_time_ms",
                             "ai_strategy", "pattern_discoveries", "timestamp",
                             "error_message", "performance_score")}
    out.update(e)
    out["status"] = out["status"].lower()
    out["timestamp"] = T0 + i
    return out


PATTERN_1 = {"pattern_id": "p-1", "pattern_type": "battle", "quality_score": 0.9,
             "discovery_time_seconds": 4.5, "experiment_id": "e-001", "ai_worker": "w1"}
PATTERNS_2_3 = [{"pattern_id": "p-2", "pattern_type": "movement", "quality_score": 0.6},
                {"pattern_id": "p-3", "pattern_type": "MENU_NAVIGATION", "quality_score": 0.6,
                 "reuse_count": 2}]


def histogram(name, observations, bounds):
    """The exposition samples of a histogram holding these observations."""
    out = {}
    for b in bounds + [float("inf")]:
        le = "+Inf" if b == float("inf") else prom_number(b)
        out[(name + "_bucket", frozenset({("le", le)}))] = float(
            sum(1 for x in observations if x <= b))
    out[(name + "_sum", frozenset())] = float(sum(observations))
    out[(name + "_count", frozenset())] = float(len(observations))
    return out


def prom_number(b):
    return str(int(b)) if b == int(b) else repr(b)


def expected_samples(extra=()):
    """The speedrun series after the session (plus experiments `extra`, dicts that report
    neither compile nor checkpoint time)."""
    exps = [experiment(i) for i in range(1, 21)] + list(extra)
    s = {}
    counts = {}
    for e in exps:
        key = (e["status"].lower(), e.get("ai_strategy", "unknown"))
        counts[key] = counts.get(key, 0) + 1
    # Every status of every strategy seen, and of "other", is exported (0 until counted).
    for strategy in {st for _, st in counts} | {"other"}:
        for status in STATUSES:
            s[("pokemon_speedrun_experiments_total",
               frozenset({("status", status), ("strategy", strategy)}))] = 0.0
    for (status, strategy), n in counts.items():
        s[("pokemon_speedrun_experiments_total",
           frozenset({("status", status), ("strategy", strategy)}))] = float(n)
    for t in PATTERN_TYPES:
        n = 1.0 if t in ("battle", "movement", "menu_navigation") else 0.0
        s[("pokemon_speedrun_pattern_discoveries_total", frozenset({("pattern_type", t)}))] = n
    # p-3's 2, then 3 counted POSTs (the retry with its Idempotency-Key counts nothing).
    s[("pokemon_speedrun_pattern_reuses_total", frozenset())] = 5.0
    s.update(histogram("pokemon_speedrun_experiment_duration_seconds",
                       [e["duration_seconds"] for e in exps], DURATION_BOUNDS))
    compile_s = [e["script_compilation_time_ms"] / 1000 for e in exps
                 if "script_compilation_time_ms" in e]
    checkpoint_s = [e["checkpoint_loading_time_ms"] / 1000 for e in exps
                    if "checkpoint_loading_time_ms" in e]
    s.update(histogram("pokemon_speedrun_script_compilation_seconds", compile_s, LATENCY_BOUNDS))
    s.update(histogram("pokemon_speedrun_checkpoint_loading_seconds", checkpoint_s,
                       LATENCY_BOUNDS))
    successes = sum(1 for e in exps if e["status"] == "success")
    s[("pokemon_speedrun_experiment_success_rate", frozenset())] = successes * 100 / len(exps)
    # The window averages in ms, then in seconds: 1437.5 / 20 and 3000 / 19.
    s[("pokemon_speedrun_script_compilation_average_seconds", frozenset())] = (1437.5 / 20) / 1000
    s[("pokemon_speedrun_checkpoint_loading_average_seconds", frozenset())] = (3000 / 19) / 1000
    s[("pokemon_speedrun_pattern_quality_average", frozenset())] = 0.7
    compliant = {"experiment_success_rate": 1.0 if successes * 100 / len(exps) >= 95 else 0.0,
                 "script_compilation": 1.0, "checkpoint_loading": 0.0, "pattern_quality": 1.0}
    for req, v in compliant.items():
        s[("pokemon_speedrun_sla_requirement_compliant", frozenset({("requirement", req)}))] = v
    s[("pokemon_speedrun_sla_compliance", frozenset())] = 0.0  # checkpoint_loading fails
    # What the window holds (all of it fits): the counts and sums behind the values.
    window = {"experiments": len(exps), "experiments_successful": successes,
              "compilations_measured": len(compile_s),
              "compilations_under_target": sum(1 for c in compile_s if c < 0.1),
              "script_compilation_seconds": 1437.5 / 1000,
              "checkpoint_loads_measured": len(checkpoint_s),
              "checkpoint_loads_under_target": sum(1 for c in checkpoint_s if c < 0.5),
              "checkpoint_loading_seconds": 3000 / 1000,
              "patterns": 3, "pattern_quality": 2.1}
    for name, v in window.items():
        s[("pokemon_speedrun_sla_window_" + name, frozenset())] = float(v)
    return s


def sla_targets():
    return {"experiment_success_rate": 95.0, "script_compilation": 95.0,
            "checkpoint_loading": 95.0, "pattern_quality": 0.7, "system_availability": 99.0}


EXPECTED_SLA = {
    "overall_sla_compliant": False,
    "individual_compliance": {"experiment_success_rate": True, "script_compilation": True,
                              "checkpoint_loading": False, "pattern_quality": True,
                              "system_availability": None},
    # 19 of 20 succeeded; 19 of 20 compiled under 100 ms; 18 of the 19 that reported a
    # checkpoint time loaded under 500 ms (e-015 is left out); (0.9 + 0.6 + 0.6) / 3.
    "values": {"experiment_success_rate": 95.0, "script_compilation": 95.0,
               "checkpoint_loading": 1800 / 19, "pattern_quality": 0.7,
               "system_availability": None},
    "targets": sla_targets(),
    "latency_targets_ms": {"script_compilation": 100.0, "checkpoint_loading": 500.0},
    "window": {"experiments": 20, "patterns": 3},
}


class IngestCase(harness.HarnessTestCase):
    def start(self, token=None, **kw):
        sm = self.start_speedmon(ingest_config(**kw))
        admin = Admin(sm, token)
        self.addCleanup(admin.close)
        return sm, admin

    def assertAnswer(self, r, status, body):
        self.assertEqual((r.status_code, r.headers.get("Content-Type")), (status, JSON), r.text)
        self.assertEqual(r.json(), body)

    def assertApiError(self, r, status, field, error=None):
        """A 4xx JSON error {"error": "...", "field": field}."""
        self.assertEqual(r.status_code, status, r.text[:300])
        self.assertEqual(r.headers.get("Content-Type"), JSON)
        body = r.json()
        self.assertEqual(set(body), {"error", "field"}, body)
        self.assertEqual(body["field"], field, body)
        self.assertIsInstance(body["error"], str)
        self.assertTrue(body["error"], body)
        if error is not None:
            self.assertEqual(body["error"], error)
        return body

    def speedrun(self, sm):
        return speedrun_samples(sm.metrics())

    def assertSamples(self, got, expected):
        self.assertEqual(brief(got), brief(expected))

    def state(self, sm, admin):
        """Everything a user can read about ingest: the pokemon_speedrun_* series (but the
        system gauges), the SLA, the recent list."""
        return (brief(steady_samples(sm.metrics())), admin.get_json(SLA),
                admin.get_json(EXPERIMENTS + "?limit=1000"))

    def run_session(self, admin):
        """Posts the session, asserting every answer. Writes are answered after commit,
        so everything is visible once this returns."""
        self.assertAnswer(admin.post(EXPERIMENTS, experiment(1)), 201,
                          {"experiment_id": "e-001", "status": "created"})
        self.assertAnswer(admin.post(EXPERIMENTS, [experiment(i) for i in range(2, 11)]), 201,
                          {"accepted": 9, "duplicates": 0})
        # NDJSON with a blank line and CRLF endings, as a hand-written file might have.
        lines = [json.dumps(experiment(i)) for i in range(11, 21)]
        body = ("\r\n".join(lines[:5]) + "\r\n\r\n" + "\n".join(lines[5:]) + "\n").encode()
        self.assertAnswer(admin.post(EXPERIMENTS, body, NDJSON), 201,
                          {"accepted": 10, "duplicates": 0})
        self.assertAnswer(admin.post(PATTERNS, PATTERN_1), 201,
                          {"pattern_id": "p-1", "status": "created"})
        self.assertAnswer(admin.post(PATTERNS, PATTERNS_2_3), 201,
                          {"accepted": 2, "duplicates": 0})
        for n in (1, 2):
            self.assertAnswer(admin.post(PATTERNS + "/p-1/reuse", b"", None), 200,
                              {"status": "counted", "pattern_id": "p-1", "reuse_count": n})
        # A retry that carries its Idempotency-Key is answered as before and counts nothing.
        for status in ("counted", "duplicate"):
            self.assertAnswer(admin.post(PATTERNS + "/p-3/reuse", b"", None,
                                         headers={"Idempotency-Key": "reuse-p3-1"}), 200,
                              {"status": status, "pattern_id": "p-3", "reuse_count": 3})
        self.assertApiError(admin.post(PATTERNS + "/p-2/reuse", b"", None,
                                       headers={"Idempotency-Key": "reuse-p3-1"}), 409,
                            "Idempotency-Key", "Idempotency-Key was already used for pattern p-3")
        self.assertApiError(admin.post(PATTERNS + "/p-404/reuse", b"", None), 404,
                            "pattern_id", "unknown pattern")


class SessionTest(IngestCase):
    def setUp(self):
        super().setUp()
        self.sm, self.admin = self.start()
        self.run_session(self.admin)

    def test_metrics_are_exact(self):
        text = self.sm.metrics_text()
        full = prom.parse_full(text)
        self.assertSamples(speedrun_samples(full.samples), expected_samples())
        types = {n: full.types.get(n) for n in (
            "pokemon_speedrun_experiments_total", "pokemon_speedrun_pattern_discoveries_total",
            "pokemon_speedrun_pattern_reuses_total", "pokemon_speedrun_experiment_success_rate",
            "pokemon_speedrun_sla_compliance", "pokemon_speedrun_sla_requirement_compliant",
            "pokemon_speedrun_script_compilation_seconds",
            "pokemon_speedrun_checkpoint_loading_seconds",
            "pokemon_speedrun_experiment_duration_seconds")}
        self.assertEqual(types, {
            "pokemon_speedrun_experiments_total": "counter",
            "pokemon_speedrun_pattern_discoveries_total": "counter",
            "pokemon_speedrun_pattern_reuses_total": "counter",
            "pokemon_speedrun_experiment_success_rate": "gauge",
            "pokemon_speedrun_sla_compliance": "gauge",
            "pokemon_speedrun_sla_requirement_compliant": "gauge",
            "pokemon_speedrun_script_compilation_seconds": "histogram",
            "pokemon_speedrun_checkpoint_loading_seconds": "histogram",
            "pokemon_speedrun_experiment_duration_seconds": "histogram"})

    def test_sla_is_exact(self):
        r = self.admin.request("GET", SLA)
        self.assertAnswer(r, 200, EXPECTED_SLA)

    def test_experiments_newest_first_with_limit(self):
        got = self.admin.get_json(EXPERIMENTS + "?limit=3")
        self.assertIsInstance(got.pop("next"), str)  # an opaque cursor: more pages follow
        self.assertEqual(got, {"experiments": [experiment_json(i) for i in (20, 19, 18)],
                               "total": 20})
        got = self.admin.get_json(EXPERIMENTS)  # default limit 100: all 20
        self.assertEqual([e["experiment_id"] for e in got["experiments"]],
                         [f"e-{i:03d}" for i in range(20, 0, -1)])
        self.assertEqual(got["experiments"], [experiment_json(i) for i in range(20, 0, -1)])
        self.assertEqual(len(self.admin.get_json(EXPERIMENTS + "?limit=1000")["experiments"]),
                         20)
        for bad in ("0", "1001", "-1", "abc", "", "5x"):
            with self.subTest(limit=bad):
                self.assertApiError(self.admin.request("GET", EXPERIMENTS + "?limit=" + bad),
                                    400, "limit",
                                    "limit must be an integer from 1 to 1000")

    def test_duplicates_are_answered_200_and_counted_once(self):
        self.assertAnswer(self.admin.post(EXPERIMENTS, experiment(1)), 200,
                          {"experiment_id": "e-001", "status": "duplicate"})
        # Changed fields do not matter: the id is what makes a duplicate.
        changed = dict(experiment(20), status="success", ai_strategy="other_strategy")
        self.assertAnswer(self.admin.post(EXPERIMENTS, changed), 200,
                          {"experiment_id": "e-020", "status": "duplicate"})
        e21 = {"experiment_id": "e-021", "status": "Success", "duration_seconds": 2,
               "ai_strategy": "genetic"}
        self.assertAnswer(self.admin.post(EXPERIMENTS, [experiment(5), e21, e21], JSON), 201,
                          {"accepted": 1, "duplicates": 2})
        self.assertAnswer(self.admin.post(EXPERIMENTS, [e21, experiment(9)], NDJSON), 201,
                          {"accepted": 0, "duplicates": 2})
        self.assertAnswer(self.admin.post(PATTERNS, PATTERN_1), 200,
                          {"pattern_id": "p-1", "status": "duplicate"})
        self.assertAnswer(self.admin.post(PATTERNS, PATTERNS_2_3, NDJSON), 201,
                          {"accepted": 0, "duplicates": 2})

        # Only e-021 was added: it reports no compile or checkpoint time, so those two
        # requirements keep their values; the success rate is 20 of 21.
        expected = expected_samples(extra=[dict(e21, status="success")])
        self.assertSamples(self.speedrun(self.sm), expected)
        sla = self.admin.get_json(SLA)
        self.assertEqual(sla["values"], dict(EXPECTED_SLA["values"],
                                             experiment_success_rate=2000 / 21))
        self.assertEqual(sla["window"], {"experiments": 21, "patterns": 3})
        got = self.admin.get_json(EXPERIMENTS + "?limit=2")
        self.assertEqual(got["total"], 21)
        self.assertEqual([e["experiment_id"] for e in got["experiments"]], ["e-021", "e-020"])
        self.assertEqual(got["experiments"][1], experiment_json(20))  # not overwritten

    def test_malformed_bodies_answer_4xx_and_change_nothing(self):
        before = self.state(self.sm, self.admin)
        good = {"experiment_id": "bad-1", "status": "success", "duration_seconds": 1}
        deep = b"[" * 10000 + b"]" * 10000
        huge = dict(good, error_message="x" * (2 * 1024 * 1024))
        cases = [
            # (name, path, content type, body, status, field, exact error or None)
            ("truncated", EXPERIMENTS, JSON, b'{"experiment_id":"bad-1","status":"succ', 400,
             None, None),
            ("deep nesting", EXPERIMENTS, JSON, deep, 400, None,
             "JSON nested deeper than 32 levels"),
            ("deep nesting ndjson", EXPERIMENTS, NDJSON, deep + b"\n", 400, "items[0]",
             "line 1: JSON nested deeper than 32 levels"),
            ("2 MB string", EXPERIMENTS, JSON, huge, 413, None,
             "body exceeds max_body_bytes (1048576)"),
            ("2 MB string pattern", PATTERNS, JSON,
             dict(PATTERN_1, pattern_id="bad-p", ai_worker="w" * (2 << 20)), 413, None,
             "body exceeds max_body_bytes (1048576)"),
            ("id is a number", EXPERIMENTS, JSON, dict(good, experiment_id=5), 400,
             "experiment_id", "experiment_id must be a string"),
            ("id too long", EXPERIMENTS, JSON, dict(good, experiment_id="i" * 129), 400,
             "experiment_id", "experiment_id must be 1 to 128 characters"),
            ("id missing", EXPERIMENTS, JSON, {"status": "success", "duration_seconds": 1},
             400, "experiment_id", "experiment_id is required"),
            ("unknown status", EXPERIMENTS, JSON, dict(good, status="won"), 400, "status",
             "status must be one of success, failure, timeout, error, cancelled"),
            ("duration is a string", EXPERIMENTS, JSON, dict(good, duration_seconds="1"), 400,
             "duration_seconds", "duration_seconds must be a number"),
            ("negative duration", EXPERIMENTS, JSON, dict(good, duration_seconds=-0.5), 400,
             "duration_seconds", "duration_seconds must be >= 0"),
            ("fractional script_length", EXPERIMENTS, JSON, dict(good, script_length=1.5), 400,
             "script_length", "script_length must be an integer >= 0"),
            ("bad timestamp", EXPERIMENTS, JSON, dict(good, timestamp="2024-02-30T00:00:00Z"),
             400, "timestamp", None),
            ("strategy too long", EXPERIMENTS, JSON, dict(good, ai_strategy="s" * 65), 400,
             "ai_strategy", "ai_strategy must be 1 to 64 characters"),
            ("bad item in a batch", EXPERIMENTS, JSON,
             [dict(good, experiment_id="bad-2"), dict(good, experiment_id="bad-3"),
              dict(good, experiment_id="bad-4", status="winning")], 400, "items[2].status",
             None),
            ("bad line in NDJSON", EXPERIMENTS, NDJSON,
             encode([dict(good, experiment_id="bad-5")], NDJSON) + b'{"experiment_id": \n',
             400, "items[1]", None),
            ("NDJSON line not an object", EXPERIMENTS, NDJSON,
             encode([dict(good, experiment_id="bad-6")], NDJSON) + b"[1, 2]\n", 400,
             "items[1]", "line 2: not a JSON object"),
            ("array item not an object", EXPERIMENTS, JSON, [good, 7], 400, "items[1]",
             "an experiment must be a JSON object"),
            ("top level is a number", EXPERIMENTS, JSON, b"42", 400, None,
             "body must be a JSON object or array"),
            ("text/plain", EXPERIMENTS, "text/plain", good, 415, None,
             'unsupported Content-Type "text/plain": use application/json or '
             'application/x-ndjson'),
            ("text/plain pattern", PATTERNS, "text/plain", PATTERN_1, 415, None, None),
            ("empty body", EXPERIMENTS, JSON, b"", 400, None, "empty body"),
            ("blank body", EXPERIMENTS, JSON, b" \r\n\t", 400, None, "empty body"),
            ("invalid UTF-8", EXPERIMENTS, JSON,
             b'{"experiment_id":"\xff\xfe","status":"success","duration_seconds":1}', 400,
             None, None),
            ("NaN", EXPERIMENTS, JSON,
             b'{"experiment_id":"bad-7","status":"success","duration_seconds":NaN}', 400, None,
             None),
            ("1e400", EXPERIMENTS, JSON,
             b'{"experiment_id":"bad-8","status":"success","duration_seconds":1e400}', 400,
             None, "invalid JSON: number overflow parsing '1e400'"),
            ("Infinity", EXPERIMENTS, JSON,
             b'{"experiment_id":"bad-9","status":"success","duration_seconds":Infinity}', 400,
             None, None),
            ("quality over 1", PATTERNS, JSON, dict(PATTERN_1, pattern_id="bad-p",
                                                    quality_score=1.5), 400, "quality_score",
             "quality_score must be <= 1"),
            ("unknown pattern type", PATTERNS, JSON, dict(PATTERN_1, pattern_id="bad-p",
                                                          pattern_type="speedhack"), 400,
             "pattern_type", None),
            ("bad pattern in a batch", PATTERNS, JSON,
             [dict(PATTERN_1, pattern_id="bad-p"), dict(PATTERN_1, pattern_id="")], 400,
             "items[1].pattern_id", "pattern_id must be 1 to 128 characters"),
        ]
        for name, path, ctype, body, status, field, error in cases:
            with self.subTest(name):
                r = self.admin.post(path, body, ctype)
                self.assertApiError(r, status, field, error)
                if error is None and status == 400 and name in ("truncated", "invalid UTF-8",
                                                                "NaN", "Infinity"):
                    self.assertTrue(r.json()["error"].startswith("invalid JSON: "), r.text)
        # Malformed reuse ids and the wrong methods and paths.
        self.assertApiError(self.admin.raw("POST", PATTERNS + "/p%2/reuse"), 400,
                            "pattern_id", "pattern_id has a malformed %-escape")
        self.assertApiError(self.admin.post(PATTERNS + "/" + "r" * 129 + "/reuse", b"", None),
                            400, "pattern_id", "pattern_id must be 1 to 128 characters")
        self.assertApiError(self.admin.request("DELETE", PATTERNS), 405, None, "use GET or POST")
        self.assertApiError(self.admin.request("DELETE", EXPERIMENTS), 405, None,
                            "use GET or POST")
        self.assertApiError(self.admin.request("GET", PATTERNS + "/p-1/reuse"), 405, None,
                            "use POST")
        self.assertApiError(self.admin.request("POST", SLA, data=b"{}"), 405, None, "use GET")
        self.assertApiError(self.admin.request("GET", "/api/v1/nope"), 404, None,
                            "no such path: /api/v1/nope")
        self.assertEqual(self.state(self.sm, self.admin), before)
        ids = {e["experiment_id"] for e in before[2]["experiments"]}
        self.assertFalse({i for i in ids if i.startswith("bad-")})
        # Still ingesting afterwards.
        self.assertAnswer(self.admin.post(EXPERIMENTS, dict(good, experiment_id="ok-1")), 201,
                          {"experiment_id": "ok-1", "status": "created"})


class EmptyAndLimitsTest(IngestCase):
    def test_no_data_is_null_and_compliant(self):
        sm, admin = self.start()
        self.assertAnswer(admin.request("GET", SLA), 200, {
            "overall_sla_compliant": True,
            "individual_compliance": {r: None for r in REQUIREMENTS},
            "values": {r: None for r in REQUIREMENTS},
            "targets": sla_targets(),
            "latency_targets_ms": {"script_compilation": 100.0, "checkpoint_loading": 500.0},
            "window": {"experiments": 0, "patterns": 0}})
        s = self.speedrun(sm)
        self.assertEqual(s[("pokemon_speedrun_sla_compliance", frozenset())], 1.0)
        # Gauges without data are absent, not 0.
        for name in ("pokemon_speedrun_experiment_success_rate",
                     "pokemon_speedrun_pattern_quality_average",
                     "pokemon_speedrun_sla_requirement_compliant"):
            self.assertEqual(prom.select(s, name), {}, name)
        self.assertEqual(admin.get_json(EXPERIMENTS),
                         {"experiments": [], "total": 0, "next": None})

        # Patterns count before any experiment; an average of 0.69 fails the 0.70 minimum.
        self.assertAnswer(admin.post(PATTERNS, [
            {"pattern_id": "q1", "pattern_type": "dialogue", "quality_score": 0.69}], NDJSON),
            201, {"accepted": 1, "duplicates": 0})
        sla = admin.get_json(SLA)
        self.assertEqual(sla["values"], dict({r: None for r in REQUIREMENTS},
                                             pattern_quality=0.69))
        self.assertEqual(sla["individual_compliance"], dict({r: None for r in REQUIREMENTS},
                                                            pattern_quality=False))
        self.assertIs(sla["overall_sla_compliant"], False)
        s = self.speedrun(sm)
        self.assertEqual(prom.select(s, "pokemon_speedrun_sla_requirement_compliant"),
                         {frozenset({("requirement", "pattern_quality")}): 0.0})
        self.assertEqual(s[("pokemon_speedrun_sla_compliance", frozenset())], 0.0)
        self.assertEqual(prom.select(s, "pokemon_speedrun_experiment_success_rate"), {})

    def test_pipelined_requests_answered_in_order_each_once(self):
        """Answers given at once (reads, scrapes) and one given later by the store writer
        thread (a POST), pipelined in one write: each is answered once, in order, and the
        request after "Connection: close" is never read."""
        sm, admin = self.start()
        post = json.dumps(experiment(1)).encode()
        c = self.raw(sm.admin_port)
        c.send(rawhttp.build_request("GET", "/healthz", [], b"", host="x") +
               rawhttp.build_request("POST", EXPERIMENTS, [("Content-Type", JSON)], post,
                                     host="x") +
               rawhttp.build_request("GET", "/metrics", [], b"", host="x") +
               rawhttp.build_request("GET", EXPERIMENTS + "?limit=5", [("Connection", "close")],
                                     b"", host="x") +
               rawhttp.build_request("POST", EXPERIMENTS, [("Content-Type", JSON)],
                                     json.dumps(experiment(2)).encode(), host="x"))
        answers = [c.read_response("GET"), c.read_response("POST"), c.read_response("GET"),
                   c.read_response("GET")]
        self.assertEqual([a.status for a in answers], [200, 201, 200, 200])
        self.assertEqual(json.loads(answers[0].body), {"status": "ok"})
        self.assertEqual(json.loads(answers[1].body),
                         {"experiment_id": "e-001", "status": "created"})
        scraped = prom.parse(answers[2].body.decode())
        self.assertEqual(scraped[("pokemon_speedrun_experiments_total",
                                  frozenset({("status", "success"), ("strategy", "genetic")}))],
                         1.0)
        listed = json.loads(answers[3].body)
        self.assertEqual([e["experiment_id"] for e in listed["experiments"]], ["e-001"])
        self.assertEqual(answers[3].header("connection"), "close")
        self.assertClosed(c)
        # The POST after the close was not dispatched; e-001 was stored once.
        self.assertEqual(self.speedrun(sm)[("pokemon_speedrun_experiments_total", frozenset(
            {("status", "success"), ("strategy", "genetic")}))], 1.0)
        self.assertEqual(admin.get_json(EXPERIMENTS)["total"], 1)

    def test_body_limit_boundary_and_strategy_folding(self):
        sm, admin = self.start(admin={"max_body_bytes": 4096},
                               speedrun={"max_strategy_labels": 2})
        body = json.dumps({"experiment_id": "fits", "status": "success",
                           "duration_seconds": 1, "ai_strategy": "a"}).encode()
        exact = body + b" " * (4096 - len(body))
        self.assertAnswer(admin.post(EXPERIMENTS, exact), 201,
                          {"experiment_id": "fits", "status": "created"})
        self.assertApiError(admin.post(EXPERIMENTS, exact.replace(b"fits", b"over") + b" "),
                            413, None, "body exceeds max_body_bytes (4096)")

        # The same over-limit body chunked (no Content-Length): refused while streaming.
        r = admin.raw("POST", EXPERIMENTS, [("Content-Type", JSON)],
                      exact.replace(b"fits", b"over") + b" ", chunked=True,
                      chunk_sizes=[1000])
        self.assertApiError(r, 413, None, "body exceeds max_body_bytes (4096)")
        self.assertEqual(r.headers.get("Connection"), "close")

        batch = [{"experiment_id": f"s{i}", "status": "success", "duration_seconds": 1,
                  "ai_strategy": st} for i, st in enumerate(["b", "c", "a", "d", "other"])]
        self.assertAnswer(admin.post(EXPERIMENTS, batch), 201, {"accepted": 5, "duplicates": 0})
        self.assertAnswer(admin.post(EXPERIMENTS, {"experiment_id": "u", "status": "timeout",
                                                   "duration_seconds": 1}), 201,
                          {"experiment_id": "u", "status": "created"})
        # Two labels (a, b) then everything else is "other"; the stored strategy is kept.
        s = self.speedrun(sm)
        self.assertEqual(prom.nonzero(s, "pokemon_speedrun_experiments_total"), {
            frozenset({("status", "success"), ("strategy", "a")}): 2.0,
            frozenset({("status", "success"), ("strategy", "b")}): 1.0,
            frozenset({("status", "success"), ("strategy", "other")}): 3.0,
            frozenset({("status", "timeout"), ("strategy", "other")}): 1.0})
        # Every status of every strategy label is exported, at 0 until counted.
        self.assertEqual({(dict(k)["strategy"], dict(k)["status"])
                          for k in prom.select(s, "pokemon_speedrun_experiments_total")},
                         {(st, status) for st in ("a", "b", "other")
                          for status in STATUSES})
        got = admin.get_json(EXPERIMENTS + "?limit=3")["experiments"]
        self.assertEqual([(e["experiment_id"], e["ai_strategy"]) for e in got],
                         [("u", "unknown"), ("s4", "other"), ("s3", "d")])


    def test_batch_item_limit_and_encoded_reuse_ids(self):
        sm, admin = self.start()
        before = self.state(sm, admin)
        line = '{"experiment_id":"b%05d","status":"success","duration_seconds":1}\n'
        over = "".join(line % i for i in range(10001)).encode()
        self.assertApiError(admin.post(EXPERIMENTS, over, NDJSON), 413, None,
                            "batch has more than 10000 items")
        self.assertEqual(self.state(sm, admin), before)
        self.assertAnswer(admin.post(EXPERIMENTS, over[:over.rindex(b'{"experiment_id')],
                                     NDJSON), 201, {"accepted": 10000, "duplicates": 0})
        s = self.speedrun(sm)
        self.assertEqual(prom.nonzero(s, "pokemon_speedrun_experiments_total"),
                         {frozenset({("status", "success"), ("strategy", "unknown")}): 10000.0})
        self.assertEqual(admin.get_json(EXPERIMENTS + "?limit=1")["total"], 10000)
        self.assertEqual(admin.get_json(SLA)["window"], {"experiments": 1000, "patterns": 0})

        # A pattern id with a space and a slash-free unicode name, reused by its URL form.
        for pid, url in (("p 4", "p%204"), ("pok\u00e9mon", "pok%C3%A9mon")):
            self.assertAnswer(admin.post(PATTERNS, {"pattern_id": pid, "pattern_type": "item_usage",
                                                    "quality_score": 1}), 201,
                              {"pattern_id": pid, "status": "created"})
            self.assertAnswer(admin.raw("POST", f"{PATTERNS}/{url}/reuse"), 200,
                              {"status": "counted", "pattern_id": pid, "reuse_count": 1})
        self.assertAnswer(admin.raw("POST", f"{PATTERNS}/p%2F4/reuse"), 404,
                          {"error": "unknown pattern", "field": "pattern_id"})
        self.assertEqual(self.speedrun(sm)[("pokemon_speedrun_pattern_reuses_total",
                                            frozenset())], 2.0)

    def test_system_availability_from_health_checks(self):
        up = self.start_fake()
        down = self.start_fake("--status-code", "503")
        cfg = harness.proxy_config({"emu": [up.address, down.address]}, health_check={
            "path": "/status", "interval": "200ms", "timeout": "200ms", "healthy_threshold": 1,
            "unhealthy_threshold": 1})
        sm = self.start_speedmon(cfg)
        admin = Admin(sm)
        self.addCleanup(admin.close)
        harness.wait_for(lambda: admin.get_json(SLA)["values"]["system_availability"] == 50.0,
                         15, what="system_availability 50.0 (1 of 2 endpoints healthy)")
        sla = admin.get_json(SLA)
        self.assertEqual(sla["individual_compliance"],
                         dict({r: None for r in REQUIREMENTS}, system_availability=False))
        self.assertIs(sla["overall_sla_compliant"], False)
        s = self.waitMetric(sm, 0.0, "pokemon_speedrun_sla_compliance")
        self.assertEqual(prom.select(s, "pokemon_speedrun_sla_requirement_compliant"),
                         {frozenset({("requirement", "system_availability")}): 0.0})
        down.control(status_code=200)
        harness.wait_for(lambda: admin.get_json(SLA)["values"]["system_availability"] == 100.0,
                         15, what="system_availability 100.0")
        self.assertIs(admin.get_json(SLA)["overall_sla_compliant"], True)
        self.waitMetric(sm, 1.0, "pokemon_speedrun_sla_requirement_compliant",
                        requirement="system_availability")


class AuthTest(IngestCase):
    TOKEN = "s3cret-Token_1"

    def test_writes_need_the_bearer_token(self):
        sm, admin = self.start(token=self.TOKEN, admin={"auth_token": self.TOKEN})
        anon = Admin(sm)
        self.addCleanup(anon.close)
        e = {"experiment_id": "a-1", "status": "success", "duration_seconds": 1}
        before = self.state(sm, admin)
        for headers in ({}, {"Authorization": "Bearer wrong"},
                        {"Authorization": "Bearer " + self.TOKEN + "x"},
                        {"Authorization": "Bearer " + self.TOKEN[:-1]},
                        {"Authorization": "Basic " + self.TOKEN},
                        {"Authorization": self.TOKEN}, {"Authorization": "Bearer "}):
            for path, body in ((EXPERIMENTS, e), (PATTERNS, PATTERN_1),
                               (PATTERNS + "/p-1/reuse", b"")):
                with self.subTest(headers=headers, path=path):
                    r = anon.post(path, body, headers=headers)
                    self.assertApiError(r, 401, None,
                                        'this write needs "Authorization: Bearer <token>"')
                    self.assertEqual(r.headers.get("WWW-Authenticate"),
                                     'Bearer realm="speedmon"')
        self.assertEqual(self.state(sm, admin), before)
        # Reads need no token.
        for path in (SLA, EXPERIMENTS, "/metrics", "/healthz"):
            self.assertEqual(anon.request("GET", path).status_code, 200, path)
        self.assertAnswer(admin.post(EXPERIMENTS, e), 201,
                          {"experiment_id": "a-1", "status": "created"})
        self.assertAnswer(admin.post(PATTERNS, PATTERN_1), 201,
                          {"pattern_id": "p-1", "status": "created"})
        self.assertAnswer(admin.post(PATTERNS + "/p-1/reuse", b"", None), 200,
                          {"status": "counted", "pattern_id": "p-1", "reuse_count": 1})
        s = self.speedrun(sm)
        self.assertEqual(prom.nonzero(s, "pokemon_speedrun_experiments_total"),
                         {frozenset({("status", "success"), ("strategy", "unknown")}): 1.0})
        self.assertEqual(s[("pokemon_speedrun_pattern_reuses_total", frozenset())], 1.0)

    def test_token_from_a_file_rotated_by_sighup_and_the_environment_override(self):
        # A Kubernetes Secret mounted as a file: `kubectl create secret` data ends in a
        # newline when made from `echo`, which is trimmed.
        token_file = os.path.join(self.workdir, "auth-token")
        with open(token_file, "w") as f:
            f.write("file-Token_1\n")
        e = {"experiment_id": "f-1", "status": "success", "duration_seconds": 1}
        with mock.patch.dict(os.environ):
            os.environ.pop("SPEEDMON_AUTH_TOKEN", None)
            sm, by_file = self.start(token="file-Token_1",
                                     admin={"address": f"0.0.0.0:{harness.free_port()}",
                                            "auth_token_file": token_file})
        anon = Admin(sm)
        self.addCleanup(anon.close)
        self.assertEqual(anon.post(EXPERIMENTS, e).status_code, 401)
        self.assertEqual(anon.post(EXPERIMENTS, e, headers={
            "Authorization": "Bearer file-Token_"}).status_code, 401)
        self.assertAnswer(by_file.post(EXPERIMENTS, e), 201,
                          {"experiment_id": "f-1", "status": "created"})

        # The file is read again at SIGHUP: the new token works at once, the old one not.
        with open(token_file, "w") as f:
            f.write("file-Token_2\n")
        sm.signal(signal.SIGHUP)
        sm.metrics_when(lambda s: prom.value_or_zero(s, "pokemon_speedrun_config_reloads_total",
                                                     result="success") == 1,
                        what="one successful reload")
        self.assertEqual(by_file.post(EXPERIMENTS, e).status_code, 401)
        rotated = Admin(sm, "file-Token_2")
        self.addCleanup(rotated.close)
        self.assertAnswer(rotated.post(EXPERIMENTS, e), 200,
                          {"experiment_id": "f-1", "status": "duplicate"})

        # An empty file on a non-loopback address is refused; the running token stays.
        open(token_file, "w").close()
        sm.signal(signal.SIGHUP)
        sm.metrics_when(lambda s: prom.value_or_zero(s, "pokemon_speedrun_config_reloads_total",
                                                     result="failure") == 1,
                        what="one failed reload")
        self.assertIn("[admin].auth_token_file: \"" + token_file + "\" is empty", sm.stderr())
        self.assertEqual(anon.post(EXPERIMENTS, e).status_code, 401)
        self.assertEqual(rotated.post(EXPERIMENTS, e).status_code, 200)

        # SPEEDMON_AUTH_TOKEN wins over the file.
        with open(token_file, "w") as f:
            f.write("file-Token_3\n")
        with mock.patch.dict(os.environ, {"SPEEDMON_AUTH_TOKEN": "env-Token"}):
            sm2, by_env = self.start(token="env-Token", admin={"auth_token_file": token_file})
        by_file2 = Admin(sm2, "file-Token_3")
        self.addCleanup(by_file2.close)
        self.assertEqual(by_file2.post(EXPERIMENTS, e).status_code, 401)
        self.assertAnswer(by_env.post(EXPERIMENTS, e), 201,
                          {"experiment_id": "f-1", "status": "created"})

    def test_token_file_and_inline_token_together_refuse_to_start(self):
        token_file = os.path.join(self.workdir, "auth-token")
        with open(token_file, "w") as f:
            f.write("t\n")
        cfg = ingest_config(admin={"auth_token": "inline", "auth_token_file": token_file})
        path = os.path.join(self.workdir, "both.toml")
        with open(path, "w") as f:
            f.write(harness.toml_dumps(cfg))
        r = subprocess.run([harness.speedmon_bin(), "--check-config", "--config", path],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stdout + r.stderr, re.escape(path) + r":\d+:\d+: "
                         r"\[admin\]\.auth_token_file: set auth_token or auth_token_file, "
                         r"not both")

    def test_non_loopback_admin_needs_a_token_or_an_explicit_opt_out(self):
        cfg = ingest_config()
        cfg["admin"]["address"] = f"0.0.0.0:{harness.free_port()}"
        path = os.path.join(self.workdir, "open.toml")
        with open(path, "w") as f:
            f.write(harness.toml_dumps(cfg))
        proc = harness.Process([harness.speedmon_bin(), "--config", path], name="refused",
                               workdir=self.workdir)
        self.addCleanup(proc.kill)
        code = proc.wait(20)
        self.assertEqual(code, 1, proc.stderr())
        self.assertIn("[admin].auth_token", proc.stderr())
        self.assertIn(f"[admin].address {cfg['admin']['address']} is not loopback",
                      proc.stderr())

        # allow_unauthenticated_writes = true: it starts, and writes need no token.
        sm, admin = self.start(admin={"address": f"0.0.0.0:{harness.free_port()}",
                                      "allow_unauthenticated_writes": True})
        self.assertAnswer(admin.post(EXPERIMENTS, {"experiment_id": "open-1",
                                                   "status": "error",
                                                   "duration_seconds": 0}), 201,
                          {"experiment_id": "open-1", "status": "created"})
        # With a token instead, it starts too, and the token is required.
        sm2, admin2 = self.start(token=self.TOKEN,
                                 admin={"address": f"0.0.0.0:{harness.free_port()}",
                                        "auth_token": self.TOKEN})
        anon2 = Admin(sm2)
        self.addCleanup(anon2.close)
        self.assertEqual(anon2.post(EXPERIMENTS, {}).status_code, 401)
        self.assertAnswer(admin2.post(EXPERIMENTS, {"experiment_id": "tok-1",
                                                    "status": "cancelled",
                                                    "duration_seconds": 0}), 201,
                          {"experiment_id": "tok-1", "status": "created"})


if __name__ == "__main__":
    unittest.main()
