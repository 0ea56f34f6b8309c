"""SpeedmonClient against the real speedmon: records arrive with the values sent (compile
and checkpoint times of 0 are "not measured"), bad records raise at once, a record
speedmon refuses is set aside with its answer while the rest of its batch is stored, the
spool bound, records that outlive speedmon's absence and the client process's SIGKILL,
5xx answers retried with the same ids, alert rules and alerts, the instrumented
requests.Session and urllib opener, and the run-time process watch and summary."""

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import unittest

import requests

import clientcase
from clientcase import harness, speedmon_client
from harness import prom
from speedmon_client import (AlertRule, AlertSeverity, ExperimentResult, ExperimentStatus,
                             FailureType, PatternDiscovery, PatternType, PoolEvent)


class QuietHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass


class ClientTest(clientcase.ClientCase):
    def serve(self, handler):
        """An HTTP server on a free port, in a thread, stopped at cleanup."""
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        return server

    def spool(self, *experiments):
        """Puts records in the spool directory before the client under test opens it, so
        its first batch holds all of them (a client on a dead address spools them)."""
        c = speedmon_client.SpeedmonClient("http://127.0.0.1:9",
                                           os.path.join(self.workdir, "spool"))
        for e in experiments:
            c.record_experiment(e)
        self.assertFalse(c.close(timeout=0))

    def test_records_reach_speedmon_with_their_values(self):
        sm = self.start_speedmon(self.config())
        c = self.client(sm)
        c.record_experiment(ExperimentResult(
            experiment_id="exp_001", status=ExperimentStatus.SUCCESS, duration_seconds=125.5,
            script_compilation_time_ms=87.3, checkpoint_loading_time_ms=425.8,
            ai_strategy="genetic_algorithm", timestamp=1714564800.0))
        # The defaults (0.0) are "not measured": absent in speedmon, not averaged in.
        c.record_experiment(ExperimentResult("exp_002", "FAILURE", 30.0,
                                             ai_strategy="genetic_algorithm",
                                             error_message="stuck in menu",
                                             timestamp=1714564801.0))
        c.record_pattern_discovery(PatternDiscovery("p_17", PatternType.MOVEMENT, 0.82,
                                                    experiment_id="exp_002"))
        c.record_pattern_reuse("p_17")
        c.record_pattern_reuse("p_17")
        self.assertTrue(c.flush(30))
        self.assertEqual(c.pending, 0)
        self.assertEqual(c.stats()["delivered"], 5)

        got = {e["experiment_id"]: e for e in c.get_experiments(10)["experiments"]}
        self.assertEqual(set(got), {"exp_001", "exp_002"})
        self.assertEqual((got["exp_001"]["script_compilation_time_ms"],
                          got["exp_001"]["checkpoint_loading_time_ms"],
                          got["exp_001"]["status"], got["exp_001"]["timestamp"]),
                         (87.3, 425.8, "success", 1714564800.0))
        self.assertEqual((got["exp_002"]["script_compilation_time_ms"],
                          got["exp_002"]["checkpoint_loading_time_ms"],
                          got["exp_002"]["status"], got["exp_002"]["error_message"]),
                         (None, None, "failure", "stuck in menu"))

        samples = sm.metrics()
        self.assertEqual(prom.value(samples, "pokemon_speedrun_script_compilation_seconds_count"),
                         1.0)
        self.assertEqual(prom.value(samples, "pokemon_speedrun_experiments_total",
                                    status="failure", strategy="genetic_algorithm"), 1.0)
        self.assertEqual(prom.value(samples, "pokemon_speedrun_pattern_discoveries_total",
                                    pattern_type="movement"), 1.0)
        with clientcase.sqlite3.connect(self.store) as db:
            self.assertEqual(db.execute("SELECT reuse_count FROM patterns WHERE id='p_17'")
                             .fetchall(), [(2,)])

        sla = c.get_sla_compliance()
        self.assertEqual(sla["values"]["experiment_success_rate"], 50.0)
        self.assertIs(sla["individual_compliance"]["experiment_success_rate"], False)
        self.assertIs(sla["overall_sla_compliant"], False)

    def test_an_invalid_record_raises_and_is_not_spooled(self):
        c = self.client("http://127.0.0.1:9")  # never reached: nothing gets that far
        cases = [
            (ExperimentResult("", ExperimentStatus.SUCCESS, 1.0), "experiment_id must be 1 to 128"),
            (ExperimentResult("x" * 129, "success", 1.0), "experiment_id must be 1 to 128"),
            (ExperimentResult("e", "finished", 1.0), "status must be one of success, failure"),
            (ExperimentResult("e", "success", -1.0), "duration_seconds must be >= 0"),
            (ExperimentResult("e", "success", float("nan")), "duration_seconds must be finite"),
            (ExperimentResult("e", "success", 1.0, pattern_discoveries=1.5),
             "pattern_discoveries must be a whole number"),
            (PatternDiscovery("p", "movement", 1.5), "quality_score must be <= 1"),
            (PatternDiscovery("p", "speedrun", 0.5), "pattern_type must be one of movement"),
        ]
        for record, message in cases:
            with self.subTest(message=message):
                with self.assertRaises(ValueError) as e:
                    if isinstance(record, ExperimentResult):
                        c.record_experiment(record)
                    else:
                        c.record_pattern_discovery(record)
                self.assertIn(message, str(e.exception))
        with self.assertRaisesRegex(ValueError, "pattern_id must be 1 to 128"):
            c.record_pattern_reuse("")
        self.assertEqual(c.pending, 0)

    def test_a_record_speedmon_refuses_is_set_aside_and_the_rest_stored(self):
        # Year 11476: the client has no upper bound on timestamps, speedmon has (9999).
        self.spool(ExperimentResult("ok-1", "success", 1.0),
                   ExperimentResult("late", "success", 1.0, timestamp=3e11),
                   ExperimentResult("ok-2", "success", 1.0))
        sm = self.start_speedmon(self.config())
        c = self.client(sm)
        self.assertTrue(c.flush(30))
        self.assertEqual(sorted(clientcase.store_ids(self.store)), ["ok-1", "ok-2"])
        rejected = c.rejected_records()
        self.assertEqual(len(rejected), 1)
        kind, record, status, answer = rejected[0]
        self.assertEqual((kind, record["experiment_id"], status), ("experiment", "late", 400))
        self.assertEqual(json.loads(answer)["field"], "items[1].timestamp")
        self.assertEqual(c.stats()["rejected"], 1)

    def test_the_spool_is_bounded_with_a_clear_error(self):
        c = self.client("http://127.0.0.1:9", max_spool_records=3)
        for n in range(3):
            c.record_experiment(ExperimentResult(f"e{n}", "success", 1.0))
        with self.assertRaises(speedmon_client.SpoolFullError) as e:
            c.record_experiment(ExperimentResult("e3", "success", 1.0))
        self.assertIn("is full: 3 records wait (max_spool_records=3)", str(e.exception))
        self.assertIn(os.path.join(self.workdir, "spool", "spool.db"), str(e.exception))
        self.assertEqual(c.pending, 3)

    def test_close_keeps_what_was_not_delivered(self):
        c = self.client("http://127.0.0.1:9")
        c.record_experiment(ExperimentResult("c1", "success", 1.0))
        self.assertFalse(c.flush(0.2))
        self.assertFalse(c.close(timeout=0.2))
        self.assertFalse(c.close())  # idempotent
        self.assertFalse(c.flush(1))
        with self.assertRaisesRegex(speedmon_client.SpeedmonError, "closed"):
            c.record_experiment(ExperimentResult("c2", "success", 1.0))
        again = self.client("http://127.0.0.1:9")  # the directory is free again
        self.assertEqual(again.pending, 1)

    def test_one_client_per_spool_directory(self):
        self.client("http://127.0.0.1:9")
        with self.assertRaisesRegex(speedmon_client.SpoolLockedError, "in use by another"):
            speedmon_client.SpeedmonClient("http://127.0.0.1:9",
                                           os.path.join(self.workdir, "spool"))

    def test_records_outlive_speedmon_down_and_the_client_killed(self):
        port = harness.free_port()
        spool = os.path.join(self.workdir, "spool")
        # A runner process records while speedmon is not there yet, then dies by SIGKILL.
        script = (
            "import os, signal, sys\n"
            "from speedmon_client import SpeedmonClient, ExperimentResult, PatternDiscovery\n"
            "c = SpeedmonClient(sys.argv[1], sys.argv[2], max_backoff=0.2)\n"
            "for n in range(50):\n"
            "    c.record_experiment(ExperimentResult(f'k{n}', 'success', 1.0))\n"
            "c.record_pattern_discovery(PatternDiscovery('pk', 'battle', 0.9))\n"
            "c.record_pattern_reuse('pk')\n"
            "print(c.pending, flush=True)\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
        p = subprocess.run([sys.executable, "-c", script, f"http://127.0.0.1:{port}", spool],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual((p.returncode, p.stdout), (-signal.SIGKILL, "52\n"), p.stderr)

        # All 52 wait in the spool (read before a client opens it: its sender starts at
        # once, and speedmon is up).
        with clientcase.sqlite3.connect(os.path.join(spool, "spool.db")) as db:
            self.assertEqual(db.execute("SELECT count(*) FROM spool").fetchone(), (52,))
        sm = self.start_speedmon(self.config(admin_port=port))
        c = self.client(sm, spool)
        self.assertTrue(c.flush(30))
        self.assertEqual(c.pending, 0)
        self.assertEqual(sorted(clientcase.store_ids(self.store)),
                         sorted(f"k{n}" for n in range(50)))
        with clientcase.sqlite3.connect(self.store) as db:
            self.assertEqual(db.execute("SELECT id, reuse_count FROM patterns").fetchall(),
                             [("pk", 1)])

    def test_5xx_answers_are_retried_with_the_same_ids(self):
        bodies = []

        class Flaky(QuietHandler):
            """Answers the first two batches 503 and 500, then takes them."""

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                bodies.append((self.path, self.headers["Content-Type"], body))
                status = {1: 503, 2: 500}.get(len(bodies), 201)
                lines = body.decode().splitlines()
                answer = (json.dumps({"accepted": len(lines), "duplicates": 0}) if status == 201
                          else json.dumps({"error": "store is busy", "field": None}))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer.encode())

        server = self.serve(Flaky)
        self.spool(*[ExperimentResult(f"r{n}", "success", 1.0, timestamp=1.0)
                     for n in range(3)])
        c = self.client(f"http://127.0.0.1:{server.server_port}", max_backoff=0.1)
        self.assertTrue(c.flush(30))
        self.assertEqual(len(bodies), 3)
        self.assertEqual({b for b in bodies}, {bodies[0]})  # the same batch three times
        path, content_type, body = bodies[0]
        self.assertEqual((path, content_type), ("/api/v1/experiments", "application/x-ndjson"))
        self.assertEqual([json.loads(line)["experiment_id"] for line in body.splitlines()],
                         ["r0", "r1", "r2"])
        self.assertEqual(c.stats()["failed_attempts"], 2)

    def test_a_reuse_whose_answer_was_lost_is_counted_once(self):
        sm = self.start_speedmon(self.config())
        posts = []

        class LosesTheFirstReuseAnswer(QuietHandler):
            """Passes each POST on to speedmon, but drops speedmon's answer to the first
            reuse: the connection closes after speedmon counted it, as in a crash."""

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                key = self.headers.get("Idempotency-Key")
                posts.append((self.path, key))
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("content-type", "idempotency-key")}
                r = requests.post(sm.admin_url + self.path, data=body, headers=headers,
                                  timeout=30)
                if self.path.endswith("/reuse") and sum(
                        p.endswith("/reuse") for p, _ in posts) == 1:
                    self.close_connection = True  # no answer at all
                    return
                self.send_response(r.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

        server = self.serve(LosesTheFirstReuseAnswer)
        c = self.client(f"http://127.0.0.1:{server.server_port}", max_backoff=0.1)
        c.record_pattern_discovery(PatternDiscovery("p_lost", PatternType.BATTLE, 0.5))
        c.record_pattern_reuse("p_lost")
        c.record_pattern_reuse("p_lost")
        self.assertTrue(c.flush(30))
        reuses = [key for path, key in posts if path.endswith("/reuse")]
        # The first reuse twice (its answer lost), then the second: each with its own key.
        self.assertEqual(len(reuses), 3)
        self.assertEqual(reuses[0], reuses[1])
        self.assertNotEqual(reuses[1], reuses[2])
        self.assertTrue(all(reuses))
        with clientcase.sqlite3.connect(self.store) as db:
            self.assertEqual(db.execute("SELECT reuse_count FROM patterns WHERE id='p_lost'")
                             .fetchall(), [(2,)])
        self.assertEqual(prom.value(sm.metrics(), "pokemon_speedrun_pattern_reuses_total"), 2.0)

    def test_alert_rules_and_active_alerts(self):
        sm = self.start_speedmon(self.config(alerting={"evaluation_interval": "100ms"}))
        c = self.client(sm)
        stored = c.add_alert_rule(AlertRule(
            rule_id="custom_performance", name="Custom Performance Alert",
            description="Custom performance threshold exceeded",
            metric_name="system.memory_percent", threshold_value=0.0, operator=">",
            severity=AlertSeverity.WARNING, minimum_duration_seconds=0.0))
        self.assertEqual({k: stored[k] for k in ("id", "metric", "operator", "threshold", "for",
                                                  "severity", "origin")},
                         {"id": "custom_performance", "metric": "system.memory_percent",
                          "operator": ">", "threshold": 0.0, "for": "0s",
                          "severity": "warning", "origin": "api"})
        self.assertEqual([r["id"] for r in c.get_alert_rules()], ["custom_performance"])
        alerts = harness.wait_for(lambda: [a for a in c.get_active_alerts()
                                           if a["state"] == "firing"], 10,
                                  what="the rule firing")
        self.assertEqual([(a["id"], a["name"], a["severity"]) for a in alerts],
                         [("custom_performance", "Custom Performance Alert", "warning")])
        with self.assertRaises(speedmon_client.ApiError) as e:
            c.add_alert_rule(AlertRule("bad", "Bad", "", "speedrun.nope", 1.0))
        self.assertEqual((e.exception.status, e.exception.field), (400, "metric"))
        c.remove_alert_rule("custom_performance")
        self.assertEqual(c.get_alert_rules(), [])

    def test_monitored_session_and_opener_go_through_the_listener(self):
        fake, other = self.start_fakes(2)
        sm = self.start_speedmon(self.config(upstreams={"emu": [fake.address]}))
        c = self.client(sm)
        session = requests.Session()
        self.addCleanup(session.close)
        self.assertIs(c.monitor_requests_session(session), session)
        r = session.get(f"http://localhost:{fake.port}/status", timeout=10)
        self.assertEqual(r.status_code, 200)
        r = session.post(f"{fake.url}/action", json={"action": "a"}, timeout=10)
        self.assertEqual(r.status_code, 200)
        r = session.get(f"{other.url}/status", timeout=10)  # not behind speedmon: direct
        self.assertEqual(r.status_code, 200)
        opener = speedmon_client.monitored_opener(c)
        with opener.open(f"{fake.url}/status", timeout=10) as resp:
            self.assertEqual(resp.status, 200)

        seen = fake.requests()
        self.assertEqual([(q["method"], q["target"]) for q in seen[-3:]],
                         [("GET", "/status"), ("POST", "/action"), ("GET", "/status")])
        for q in seen[-3:]:
            headers = {k.lower(): v for k, v in q["headers"]}
            self.assertIn("speedmon", headers.get("via", ""), q)
        self.assertEqual({k.lower(): v for k, v in seen[-3]["headers"]}["host"],
                         f"localhost:{fake.port}")  # the Host the agent would have sent
        self.assertNotIn("via", {k.lower() for k, _ in other.requests()[-1]["headers"]})
        samples = self.waitMetricSum(sm, 3.0, "pokemon_speedrun_http_requests_total",
                                     upstream="emu")
        self.assertMetric(samples, 2.0, "pokemon_speedrun_http_requests_total", upstream="emu",
                          route="status", method="GET", code="200")

    def test_add_process_collector_watches_a_pid(self):
        fake = self.start_fake()
        sm = self.start_speedmon(self.config())
        c = self.client(sm)
        answer = c.add_process_collector(fake.proc.pid, name="emulator-9")
        self.assertEqual((answer["status"], answer["name"], answer["pid"]),
                         ("created", "emulator-9", fake.proc.pid))
        # The in-process exporter's way: a collector object naming the pid.
        from speedmon_client.process_metrics_collector import ProcessMetricsCollector
        from speedmon_client.prometheus_metrics import PrometheusMetricsExporter
        other = self.start_fake()
        PrometheusMetricsExporter(client=c).add_process_collector(
            ProcessMetricsCollector(process_id=other.proc.pid))
        procs = {p["name"]: p for p in sm.get_json("/api/v1/processes")["processes"]}
        self.assertEqual((procs["emulator-9"]["running"], procs["emulator-9"]["pid"]),
                         (True, fake.proc.pid))
        self.assertEqual(procs[f"pid-{other.proc.pid}"]["pid"], other.proc.pid)
        samples = sm.metrics()
        self.assertGreater(prom.value(samples, "pokemon_speedrun_process_resident_memory_bytes",
                                      process="emulator-9"), 0)
        c.remove_process_collector("emulator-9")
        names = [p["name"] for p in sm.get_json("/api/v1/processes")["processes"]]
        self.assertEqual(names, [f"pid-{other.proc.pid}"])

    def test_metrics_summary(self):
        sm = self.start_speedmon(self.config())
        c = self.client(sm)
        for n, (status, strategy) in enumerate([("success", "a"), ("failure", "a"),
                                                ("success", "b")]):
            c.record_experiment(ExperimentResult(f"s{n}", status, 1.0, ai_strategy=strategy))
        summary = c.get_metrics_summary()  # waits for the three to be delivered
        self.assertEqual((summary["total_experiments"], summary["most_effective_strategy"]),
                         (3, "b"))

    def test_reads_by_id_and_pages(self):
        sm = self.start_speedmon(self.config())
        c = self.client(sm)
        for n in range(5):
            c.record_pattern_discovery(PatternDiscovery(
                f"p{n}", PatternType.BATTLE if n % 2 else PatternType.MOVEMENT, 0.5))
        c.record_experiment(ExperimentResult("e/1", "success", 2.0, ai_strategy="x"))
        self.assertEqual(c.get_experiment("e/1")["ai_strategy"], "x")  # waits for delivery
        self.assertIsNone(c.get_experiment("e/2"))
        self.assertEqual(c.get_pattern("p3")["pattern_type"], "battle")
        self.assertIsNone(c.get_pattern("nope"))
        pages, cursor = [], None
        while True:
            page = c.get_patterns(limit=2, pattern_type=PatternType.MOVEMENT, cursor=cursor)
            pages.append([p["pattern_id"] for p in page["patterns"]])
            self.assertEqual(page["total"], 3)
            cursor = page["next"]
            if cursor is None:
                break
        self.assertEqual(pages, [["p4", "p2"], ["p0"]])
        with self.assertRaises(speedmon_client.ApiError) as e:
            c.get_patterns(pattern_type="chess")
        self.assertEqual((e.exception.status, e.exception.field), (400, "type"))

    def test_pool_events_are_counted_once(self):
        sm = self.start_speedmon(self.config())
        c = self.client(sm)
        c.record_pool_event(PoolEvent("failure", process="emulator-2",
                                      failure_type=FailureType.OOM))
        c.record_pool_event(PoolEvent("replacement", process="emulator-2",
                                      replaced_by="emulator-6", startup_seconds=4.2,
                                      event_id="swap-1"))
        c.record_pool_event(PoolEvent("replacement", process="emulator-2",
                                      replaced_by="emulator-6", startup_seconds=4.2,
                                      event_id="swap-1"))  # the same event again
        self.assertTrue(c.flush(30))
        self.assertEqual(c.stats()["delivered"], 2)
        self.assertEqual(c.stats()["duplicates"], 1)
        samples = sm.metrics()
        self.assertEqual(prom.value(samples, "pokemon_speedrun_process_failures_total",
                                    failure_type="oom"), 1.0)
        self.assertEqual(prom.value(samples, "pokemon_speedrun_pool_events_total",
                                    event="replacement"), 1.0)
        self.assertEqual(prom.value(samples, "pokemon_speedrun_process_startup_seconds_sum"),
                         4.2)
        for bad in (PoolEvent("failure"), PoolEvent("restart", failure_type="oom"),
                    PoolEvent("reboot"), PoolEvent("restart", startup_seconds=-1)):
            with self.assertRaises(ValueError):
                c.record_pool_event(bad)
        self.assertEqual(c.pending, 0)


if __name__ == "__main__":
    unittest.main()
