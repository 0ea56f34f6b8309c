"""GET /api/v1/timeseries, the samples behind the status page's charts, against the
real speedmon sampling every 200 ms: after known traffic the interval counts add up to
exactly what was sent (requests, 2xx-3xx, 5xx, experiments and their successes), each
sample's rates and percentages follow from its own counts, and the p95 of requests that
took 198 ms is the midpoint of their fine bucket, 204.8 ms (or of a later bucket that the
slowest one, as the client timed it, reached). The page itself, in a browser:
tests/e2e/test_status_page.py.
"""

import os
import sys
import time
import unittest

import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

TIMESERIES = "/api/v1/timeseries"
# 198 ms falls in the fine bucket [196.608, 212.992) ms, midpoint 204.8 ms.
SLOW_MS, SLOW_P95 = 198, 204.8


def fine_bucket(micros):
    """The log-linear bucket of metrics/request_stats.cc: 8 per power of two."""
    if micros < 16:
        return micros
    e = micros.bit_length() - 1
    return 16 + (e - 4) * 8 + ((micros >> (e - 3)) & 7)


def fine_midpoint_ms(bucket):
    e, sub = (bucket - 16) // 8 + 4, (bucket - 16) % 8
    return ((1 << e) + (sub << (e - 3)) + (1 << (e - 4))) / 1000


class TimeseriesApiTest(harness.HarnessTestCase):
    def setUp(self):
        super().setUp()
        cfg = harness.proxy_config({"emu": [self.start_fake().address]})
        cfg["admin"]["timeseries_interval"] = "200ms"
        self.sm = self.start_speedmon(cfg)

    def series(self):
        return self.sm.get_json(TIMESERIES)

    def test_samples_add_up_to_the_traffic(self):
        sm = self.sm
        t = self.series()
        self.assertEqual((t["interval_seconds"], t["capacity"]), (0.2, 180))
        self.assertEqual([u["name"] for u in t["upstreams"]], ["emu"])

        with requests.Session() as s:
            # Phase 1: only slow requests, so every sample with requests has their p95.
            slowest = 0.0
            for _ in range(4):
                start = time.monotonic()
                r = s.post(f"{sm.url}/action?misbehave=slow&ms={SLOW_MS}",
                           json={"action_type": "press_key"}, timeout=30)
                slowest = max(slowest, time.monotonic() - start)
                self.assertEqual(r.status_code, 200)
            harness.wait_for(lambda: sum(self.series()["upstreams"][0]["requests"]) == 4, 30,
                             what="the slow requests sampled")
            slow = self.series()
            # Phase 2: answers of every kind; a 404 is not a success, a 302 is.
            for code in (200, 200, 200, 302, 404, 503):
                r = s.get(f"{sm.url}/status?misbehave=status&code={code}", timeout=30,
                          allow_redirects=False)
                self.assertEqual(r.status_code, code)
            body = [{"experiment_id": "ts-1", "status": "success", "duration_seconds": 1.0},
                    {"experiment_id": "ts-2", "status": "failure", "duration_seconds": 1.0}]
            self.assertEqual(s.post(sm.admin_url + "/api/v1/experiments", json=body,
                                    timeout=30).status_code, 201)

        def done():
            t = self.series()
            return (sum(t["upstreams"][0]["requests"]), sum(t["experiments"])) == (10, 2)
        harness.wait_for(done, 30, what="all the traffic sampled")
        t = self.series()
        up = t["upstreams"][0]
        n = len(t["time"])
        self.assertLess(n, t["capacity"])  # nothing dropped yet
        for key in ("seconds", "experiments", "experiment_successes", "experiment_success_rate",
                    "cpu_percent", "memory_percent"):
            self.assertEqual(len(t[key]), n, key)
        for key in ("requests", "requests_per_second", "successes", "success_percent",
                    "errors_5xx", "p95_ms"):
            self.assertEqual(len(up[key]), n, key)
        self.assertEqual(sum(up["requests"]), 10)
        self.assertEqual(sum(up["successes"]), 8)
        self.assertEqual(sum(up["errors_5xx"]), 1)
        self.assertEqual(sum(t["experiments"]), 2)
        self.assertEqual(sum(t["experiment_successes"]), 1)
        self.assertEqual(t["experiment_success_rate"][-1], 50.0)
        self.assertEqual(t["time"], sorted(t["time"]))
        for i in range(n):
            with self.subTest(sample=i):
                self.assertGreater(t["seconds"][i], 0)
                self.assertEqual(up["requests_per_second"][i], up["requests"][i] / t["seconds"][i])
                if up["requests"][i]:
                    self.assertEqual(up["success_percent"][i],
                                     up["successes"][i] * 100 / up["requests"][i])
                    self.assertIsNotNone(up["p95_ms"][i])
                else:
                    self.assertIsNone(up["success_percent"][i])
                    self.assertIsNone(up["p95_ms"][i])
        # The phase-1 samples, still the first ones: the slow requests' bucket. The proxy
        # times each one at no less than 198 ms and no more than the client waited, so a
        # sample's p95 is 204.8 ms unless a loaded machine pushed one past 212.992 ms.
        self.assertEqual(fine_midpoint_ms(fine_bucket(SLOW_MS * 1000)), SLOW_P95)
        possible = {fine_midpoint_ms(b) for b in range(fine_bucket(SLOW_MS * 1000),
                                                       fine_bucket(int(slowest * 1e6)) + 1)}
        p95 = [v for v in slow["upstreams"][0]["p95_ms"] if v is not None]
        self.assertGreaterEqual(len(p95), 1)
        self.assertLessEqual(set(p95), possible)
        self.assertEqual(up["p95_ms"][:len(slow["time"])], slow["upstreams"][0]["p95_ms"])

    def test_get_and_head_only(self):
        url = self.sm.admin_url + TIMESERIES
        self.assertEqual(requests.head(url, timeout=30).status_code, 200)
        r = requests.post(url, timeout=30)
        self.assertEqual(r.status_code, 405)
        self.assertEqual(r.headers["Allow"], "GET, HEAD")
        self.assertEqual(r.json(), {"error": "use GET", "field": None})


if __name__ == "__main__":
    unittest.main()
