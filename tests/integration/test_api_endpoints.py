"""The read and pool-manager endpoints against the real speedmon: experiment and pattern
lists paged by cursor past 1000, one record by id, the summary computed by hand, events
feeding the process failure counter and the startup histogram, and a process watched and
unwatched at run time."""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402
from harness import prom  # noqa: E402

NDJSON = {"Content-Type": "application/x-ndjson"}
T0 = 1714564800  # 2024-05-01T12:00:00Z


class ApiEndpointsTest(harness.HarnessTestCase):
    def setUp(self):
        super().setUp()
        cfg = harness.proxy_config({"emu": ["127.0.0.1:9"]})
        cfg["speedrun"] = {"store_path": os.path.join(self.workdir, "speedmon.db"),
                           "window_experiments": 4, "window_patterns": 3}
        self.sm = self.start_speedmon(cfg)

    def call(self, method, path, body=None, headers=None):
        status, _, raw = self.sm.request(method, path, body, headers)
        return status, json.loads(raw)

    def test_experiment_pages_past_1000_and_by_id(self):
        lines = "\n".join(json.dumps({"experiment_id": f"e-{i:04d}", "status": "success",
                                      "duration_seconds": i, "timestamp": T0 + i})
                          for i in range(1, 1206))
        self.assertEqual(self.call("POST", "/api/v1/experiments", lines, NDJSON),
                         (201, {"accepted": 1205, "duplicates": 0}))
        seen, cursor, pages = [], None, 0
        while True:
            path = "/api/v1/experiments?limit=1000" + (f"&cursor={cursor}" if cursor else "")
            status, page = self.call("GET", path)
            self.assertEqual(status, 200, page)
            self.assertEqual(page["total"], 1205)
            seen += [e["experiment_id"] for e in page["experiments"]]
            pages += 1
            cursor = page["next"]
            if cursor is None:
                break
        self.assertEqual(pages, 2)
        self.assertEqual(seen, [f"e-{i:04d}" for i in range(1205, 0, -1)])

        status, page = self.call("GET", "/api/v1/experiments?limit=2")
        self.assertEqual([e["experiment_id"] for e in page["experiments"]], ["e-1205", "e-1204"])
        status, page = self.call("GET", "/api/v1/experiments?limit=2&cursor=" + page["next"])
        self.assertEqual([e["experiment_id"] for e in page["experiments"]], ["e-1203", "e-1202"])

        self.assertEqual(self.call("GET", "/api/v1/experiments?limit=1001"),
                         (400, {"error": "limit must be an integer from 1 to 1000",
                                "field": "limit"}))
        self.assertEqual(self.call("GET", "/api/v1/experiments?cursor=abc"),
                         (400, {"error": 'cursor must be a "next" value of an earlier answer',
                                "field": "cursor"}))
        status, e = self.call("GET", "/api/v1/experiments/e-0007")
        self.assertEqual(status, 200)
        self.assertEqual((e["experiment_id"], e["status"], e["duration_seconds"], e["timestamp"]),
                         ("e-0007", "success", 7, T0 + 7))
        self.assertEqual(self.call("GET", "/api/v1/experiments/nope"),
                         (404, {"error": "unknown experiment", "field": "experiment_id"}))

    def test_patterns_by_type_by_id_and_paging(self):
        patterns = [{"pattern_id": f"p{i}", "pattern_type": t, "quality_score": 0.5,
                     "discovery_time_seconds": 1, "experiment_id": "e"}
                    for i, t in enumerate(["battle", "movement", "battle", "dialogue",
                                           "battle"])]
        self.assertEqual(self.call("POST", "/api/v1/patterns", patterns)[0], 201)
        status, page = self.call("GET", "/api/v1/patterns?type=battle&limit=2")
        self.assertEqual(status, 200)
        self.assertEqual([p["pattern_id"] for p in page["patterns"]], ["p4", "p2"])
        self.assertEqual(page["total"], 3)
        status, page = self.call("GET", "/api/v1/patterns?type=battle&limit=2&cursor="
                                 + page["next"])
        self.assertEqual(([p["pattern_id"] for p in page["patterns"]], page["next"]), (["p0"], None))
        status, page = self.call("GET", "/api/v1/patterns")
        self.assertEqual(([p["pattern_id"] for p in page["patterns"]], page["total"]),
                         (["p4", "p3", "p2", "p1", "p0"], 5))
        self.assertEqual(self.call("GET", "/api/v1/patterns?type=chess")[0], 400)
        self.assertEqual(self.call("POST", "/api/v1/patterns/p3/reuse")[0], 200)
        status, p = self.call("GET", "/api/v1/patterns/p3")
        self.assertEqual((status, p["pattern_type"], p["reuse_count"]), (200, "dialogue", 1))
        self.assertEqual(self.call("GET", "/api/v1/patterns/p9"),
                         (404, {"error": "unknown pattern", "field": "pattern_id"}))

    def test_summary_over_the_windows(self):
        status, empty = self.call("GET", "/api/v1/summary")
        self.assertEqual(status, 200)
        self.assertEqual((empty["total_experiments"], empty["experiment_success_rate"],
                          empty["most_effective_strategy"], empty["strategy_effectiveness"]),
                         (0, None, "unknown", {}))
        # Five experiments; the window (4) drops the first. Compile 0 and absent are not
        # measured; checkpoint 600 is over the 500 ms target.
        rows = [("x0", "failure", "greedy", 9, 999, 999),
                ("x1", "success", "genetic", 10, 80, 400),
                ("x2", "failure", "genetic", 20, 0, 600),
                ("x3", "success", "greedy", 30, 120, None),
                ("x4", "success", "greedy", 40, None, 300)]
        body = [{"experiment_id": i, "status": s, "ai_strategy": a, "duration_seconds": d,
                 **({"script_compilation_time_ms": c} if c is not None else {}),
                 **({"checkpoint_loading_time_ms": k} if k is not None else {})}
                for i, s, a, d, c, k in rows]
        self.assertEqual(self.call("POST", "/api/v1/experiments", body)[0], 201)
        pats = [{"pattern_id": f"q{i}", "pattern_type": "movement", "quality_score": q,
                 "discovery_time_seconds": 1, "experiment_id": "x1", "timestamp": T0 + ts,
                 "reuse_count": r}
                for i, (q, ts, r) in enumerate([(0.1, 0, 0), (0.6, 0, 2), (0.8, 1800, 0),
                                                (1.0, 3600, 1)])]
        self.assertEqual(self.call("POST", "/api/v1/patterns", pats)[0], 201)
        status, s = self.call("GET", "/api/v1/summary")
        self.assertEqual(status, 200)
        del s["timestamp"]
        for key, want in (("average_checkpoint_loading_ms", 1300 / 3),
                          ("checkpoint_target_compliance", 200 / 3),
                          ("average_pattern_quality", 0.8)):
            self.assertAlmostEqual(s.pop(key), want, places=9, msg=key)
        self.assertEqual(s, {
            "total_experiments": 4, "successful_experiments": 3, "failed_experiments": 1,
            "average_experiment_duration": 25.0, "experiment_success_rate": 75.0,
            "average_script_compilation_ms": 100.0, "compilation_target_compliance": 50.0,
            "total_patterns_discovered": 3, "pattern_discovery_rate_per_hour": 3.0,
            "pattern_reuse_rate": 1.0,
            "strategy_effectiveness": {"genetic": 50.0, "greedy": 100.0},
            "most_effective_strategy": "greedy",
            "window": {"experiments": 4, "patterns": 3},
            "all_time": {"experiments": 5, "patterns": 4, "pattern_reuses": 3},
        })

    def test_events_feed_the_process_metrics(self):
        failure = {"event": "failure", "failure_type": "crash", "process": "emulator-1",
                   "event_id": "ev-1"}
        self.assertEqual(self.call("POST", "/api/v1/events", failure),
                         (201, {"status": "created", "event": "failure", "event_id": "ev-1"}))
        self.assertEqual(self.call("POST", "/api/v1/events", failure),
                         (200, {"status": "duplicate", "event": "failure", "event_id": "ev-1"}))
        batch = "\n".join(json.dumps(e) for e in [
            {"event": "restart", "process": "emulator-1", "startup_seconds": 2.5},
            {"event": "replacement", "process": "emulator-2", "replaced_by": "emulator-5",
             "startup_seconds": 7},
            {"event": "failure", "failure_type": "oom"}])
        self.assertEqual(self.call("POST", "/api/v1/events", batch, NDJSON),
                         (201, {"accepted": 3, "duplicates": 0}))
        self.assertEqual(self.call("POST", "/api/v1/events", {"event": "failure"}),
                         (400, {"error": "failure_type is required", "field": "failure_type"}))
        s = self.sm.metrics()
        failures = "pokemon_speedrun_process_failures_total"
        self.assertEqual({k: prom.value(s, failures, failure_type=k)
                          for k in ("crash", "oom", "exit", "timeout")},
                         {"crash": 1, "oom": 1, "exit": 0, "timeout": 0})
        self.assertEqual(prom.value(s, "pokemon_speedrun_process_startup_seconds_count"), 2)
        self.assertEqual(prom.value(s, "pokemon_speedrun_process_startup_seconds_sum"), 9.5)
        self.assertEqual({k: prom.value(s, "pokemon_speedrun_pool_events_total", event=k)
                          for k in ("failure", "restart", "replacement")},
                         {"failure": 2, "restart": 1, "replacement": 1})

    def test_watch_a_process_at_run_time(self):
        child = subprocess.Popen(["sleep", "300"])
        self.addCleanup(child.wait)
        self.addCleanup(child.kill)
        watch = {"name": "emulator-5", "pid": child.pid}
        status, body = self.call("POST", "/api/v1/processes", watch)
        self.assertEqual((status, body), (201, {"status": "created", "name": "emulator-5",
                                                "selector": f"pid {child.pid}",
                                                "running": True, "pid": child.pid}))
        self.assertEqual(self.call("POST", "/api/v1/processes", watch)[1]["status"], "duplicate")
        self.assertEqual(self.call("POST", "/api/v1/processes", {"name": "emulator-5", "pid": 1}),
                         (409, {"error": f'process "emulator-5" is already watched (pid {child.pid})',
                                "field": "name"}))
        procs = self.call("GET", "/api/v1/processes")[1]["processes"]
        self.assertEqual([(p["name"], p["pid"], p["origin"]) for p in procs],
                         [("emulator-5", child.pid, "api")])
        s = self.sm.metrics()
        self.assertEqual(prom.value(s, "pokemon_speedrun_process_up", process="emulator-5"), 1)
        self.assertEqual(self.call("DELETE", "/api/v1/processes/emulator-5"),
                         (200, {"deleted": "emulator-5"}))
        self.assertEqual(self.call("DELETE", "/api/v1/processes/emulator-5"),
                         (404, {"error": 'no watched process named "emulator-5"', "field": "name"}))
        s = self.sm.metrics()
        self.assertEqual(prom.select(s, "pokemon_speedrun_process_up"), {})


if __name__ == "__main__":
    import unittest
    unittest.main()
