"""Durability of the admin ingest API against the real speedmon and its SQLite store.

CrashTest: 16 concurrent runner clients post experiments (single objects and small NDJSON
batches) while speedmon is killed with SIGKILL, three times; after each restart on the
same store every acknowledged experiment is there exactly once, nothing unsent appeared,
a batch is all there or not at all, and the restored counters equal the rows. Finally the
runners retry what was never acknowledged, and the store holds every id exactly once.
With SIGTERM instead, every write speedmon recorded was also answered.

DuplicateRaceTest: the same ids from 8 clients at once: one 201 each, the rest 200.

ScrapeConsistencyTest: a scrape during ingest sees each batch whole or not at all.

RestartTest: counters, SLA and the recent list continue exactly after SIGTERM and after
SIGKILL; a smaller window on restart and a SIGHUP on [sla]; retention keeps the totals.
"""

import collections
import json
import os
import signal
import sqlite3
import sys
import threading
import time
import unittest

import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402
import test_admin_ingest as ingest  # noqa: E402  (a module attribute: its tests do not rerun)
from harness import prom  # noqa: E402

EXPERIMENTS = ingest.EXPERIMENTS
PATTERNS = ingest.PATTERNS
SLA = ingest.SLA
NDJSON = ingest.NDJSON
TOTAL = "pokemon_speedrun_experiments_total"

CLIENTS = 16
ROUNDS = 3
TRAFFIC_SECONDS = 2.0
MAX_REQUESTS_PER_CLIENT = 20000  # a bound on each loop, far above what 2 s allow
STATUSES = ["success"] * 6 + ["failure", "timeout", "error", "cancelled"]


def make_experiment(exp_id, n, client):
    """Deterministic fields, so the store's rows can be checked against the counters."""
    e = {"experiment_id": exp_id, "status": STATUSES[n % len(STATUSES)],
         "duration_seconds": n % 7 + 0.5, "ai_strategy": f"strategy-{client % 5}"}
    if n % 2 == 0:
        e["script_compilation_time_ms"] = float(n % 150)
    return e


class Runner(threading.Thread):
    """One runner: a requests.Session posting unique ids until stopped or refused.

    sent: every request as the list of its ids; acked: ids answered 201;
    wrong: answers that are neither the expected 201, a 503 "retry later", nor a lost
    connection."""

    def __init__(self, url, round_no, client, stop):
        super().__init__(daemon=True, name=f"runner-{round_no}-{client}")
        self.url, self.round_no, self.client, self.stop = url, round_no, client, stop
        self.sent, self.acked, self.wrong = [], set(), []

    def run(self):
        with requests.Session() as s:
            for n in range(MAX_REQUESTS_PER_CLIENT):
                if self.stop.is_set():
                    return
                if not self.post(s, n):
                    return

    def post(self, s, n):
        """False once speedmon is gone."""
        size = 0 if n % 3 else n % 8 + 1  # two singles, then a batch of 1..8
        ids = [f"r{self.round_no}-c{self.client}-{n}-{k}" for k in range(max(size, 1))]
        items = [make_experiment(i, n + k, self.client) for k, i in enumerate(ids)]
        if size:
            data = "".join(json.dumps(x) + "\n" for x in items)
            headers = {"Content-Type": NDJSON}
            want = {"accepted": len(ids), "duplicates": 0}
        else:
            data = json.dumps(items[0])
            headers = {"Content-Type": "application/json"}
            want = {"experiment_id": ids[0], "status": "created"}
        self.sent.append(ids)
        try:
            r = s.post(self.url + EXPERIMENTS, data=data, headers=headers, timeout=30)
            body = r.json() if r.status_code in (200, 201, 503) else r.text
        except (requests.RequestException, ValueError):
            return False  # killed mid-request: this request is not acknowledged
        if r.status_code == 201 and body == want:
            self.acked.update(ids)
        elif r.status_code == 503 and "error" in body:
            pass  # refused while stopping: not recorded, the runner would retry
        else:
            self.wrong.append((ids, r.status_code, body))
        return True


def read_store(path):
    """{id: (status, strategy, has a measured compile time)} of every experiment row, and
    the number of rows (a duplicate id would make it larger than the dict). A time of 0 is
    stored as posted but is "not measured": it is not in the compile histogram."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT id, status, ai_strategy, script_compilation_time_ms "
                          "FROM experiments").fetchall()
    return {r[0]: (r[1], r[2], r[3] is not None and r[3] > 0) for r in rows}, len(rows)


class CrashTest(harness.HarnessTestCase):
    def setUp(self):
        super().setUp()
        self.store = os.path.join(self.workdir, "speedrun.db")
        self.sent = []  # every request's ids, all rounds
        self.acked = set()

    def start(self):
        sm = self.start_speedmon(ingest.ingest_config(store_path=self.store))
        return sm

    def traffic(self, sm, round_no, sig=signal.SIGKILL):
        """Runs the runners, stops speedmon with `sig` in the middle (SIGKILL, or SIGTERM:
        exit code 0), returns once all runners stopped."""
        stop = threading.Event()
        runners = [Runner(sm.admin_url, round_no, c, stop) for c in range(CLIENTS)]
        for r in runners:
            r.start()
        # Traffic for a while, and at least some acknowledgements, before the kill.
        deadline = time.monotonic() + TRAFFIC_SECONDS
        harness.wait_for(lambda: time.monotonic() >= deadline and
                         sum(len(r.acked) for r in runners) >= 50, 60,
                         what="50 acknowledged experiments")
        sm.signal(sig)
        self.assertEqual(sm.wait(30), -signal.SIGKILL if sig == signal.SIGKILL else 0,
                         sm.stderr())
        stop.set()
        for r in runners:
            r.join(60)
            self.assertFalse(r.is_alive(), f"{r.name} did not stop")
        for r in runners:
            self.assertEqual(r.wrong, [], f"{r.name}: unexpected answers")
            self.sent += r.sent
            self.acked |= r.acked
        return sum(len(r.acked) for r in runners)

    def check_restored(self, sm):
        """Reads the store while speedmon runs idle and compares it with what was sent,
        acknowledged and counted."""
        rows, n_rows = read_store(self.store)
        self.assertEqual(n_rows, len(rows), "an id is stored twice")
        missing = self.acked - rows.keys()
        self.assertEqual(sorted(missing)[:10], [], f"{len(missing)} acknowledged ids lost")
        sent_ids = {i for ids in self.sent for i in ids}
        self.assertEqual(sorted(rows.keys() - sent_ids)[:10], [], "ids nobody sent")
        partial = [ids for ids in self.sent if 0 < len(rows.keys() & set(ids)) < len(ids)]
        self.assertEqual(partial[:5], [], "a batch was recorded in part")

        samples = sm.metrics()
        counted = {(dict(k)["status"], dict(k)["strategy"]): v
                   for k, v in prom.nonzero(samples, TOTAL).items()}
        by_label = collections.Counter((s, st) for s, st, _ in rows.values())
        self.assertEqual(counted, {k: float(v) for k, v in by_label.items()})
        self.assertGreaterEqual(prom.sum_values(samples, TOTAL), len(self.acked))
        self.assertEqual(prom.value(samples, "pokemon_speedrun_experiment_duration_seconds_count"),
                         float(len(rows)))
        self.assertEqual(prom.value(samples, "pokemon_speedrun_script_compilation_seconds_count"),
                         float(sum(1 for _, _, c in rows.values() if c)))
        got = sm.get_json(EXPERIMENTS + "?limit=1")
        self.assertEqual(got["total"], len(rows))
        return rows

    def test_sigkill_mid_traffic_loses_no_acknowledged_experiment(self):
        acked_per_round = []
        sm = self.start()
        for round_no in range(1, ROUNDS + 1):
            acked_per_round.append(self.traffic(sm, round_no))
            sm = self.start()
            self.check_restored(sm)
        self.assertEqual(len(acked_per_round), ROUNDS)
        self.assertTrue(all(n >= 50 for n in acked_per_round), acked_per_round)

        # The runners retry every request that got no answer: each id ends up stored once.
        sent_ids = {i for ids in self.sent for i in ids}
        rows, _ = read_store(self.store)
        unanswered = [ids for ids in self.sent if not set(ids) <= self.acked]
        with requests.Session() as s:
            for ids in unanswered:
                n, client = int(ids[0].split("-")[2]), int(ids[0].split("-")[1][1:])
                items = [make_experiment(i, n + k, client) for k, i in enumerate(ids)]
                data = "".join(json.dumps(x) + "\n" for x in items)
                r = s.post(sm.admin_url + EXPERIMENTS, data=data,
                           headers={"Content-Type": NDJSON}, timeout=30)
                already = len(rows.keys() & set(ids))
                self.assertEqual((r.status_code, r.json()),
                                 (201, {"accepted": len(ids) - already, "duplicates": already}))
                self.acked |= set(ids)
        self.assertEqual(self.acked, sent_ids)
        final = self.check_restored(sm)
        self.assertEqual(final.keys(), sent_ids)
        before_stop = ingest.speedrun_samples(sm.metrics())
        self.assertEqual(sm.stop(), 0, sm.stderr())

        # After a clean shutdown, the file alone holds the same: every id exactly once.
        rows, n_rows = read_store(self.store)
        self.assertEqual((n_rows, rows.keys()), (len(sent_ids), sent_ids))
        with sqlite3.connect(f"file:{self.store}?mode=ro", uri=True) as db:
            dup = db.execute("SELECT id, count(*) FROM experiments GROUP BY id "
                             "HAVING count(*) > 1").fetchall()
        self.assertEqual(dup, [])
        self.assertEqual(prom.sum_values(before_stop, TOTAL), float(len(sent_ids)))


    def test_sigterm_mid_traffic_answers_every_recorded_write(self):
        """SIGTERM drains, finishing in-flight requests. A POST speedmon has read
        is either answered after its commit or not recorded: the runner must never get a
        reset for an experiment that is in the store (it would count it as failed)."""
        for round_no in range(1, ROUNDS + 1):
            self.traffic(self.start(), round_no, signal.SIGTERM)
            rows, n_rows = read_store(self.store)
            self.assertEqual(n_rows, len(rows))
            self.assertEqual(sorted(self.acked - rows.keys())[:10], [], "acknowledged ids lost")
            sent_ids = {i for ids in self.sent for i in ids}
            self.assertEqual(sorted(rows.keys() - sent_ids)[:10], [], "ids nobody sent")
            unanswered = sorted(rows.keys() - self.acked)
            self.assertEqual(unanswered[:10], [],
                             f"round {round_no}: {len(unanswered)} experiments were recorded "
                             f"but their POST got no answer ({len(self.acked)} answered)")


class DuplicateRaceTest(harness.HarnessTestCase):
    def test_the_same_ids_from_8_clients_at_once_are_created_once(self):
        sm = self.start_speedmon(ingest.ingest_config(
            store_path=os.path.join(self.workdir, "speedrun.db")))
        ids = [f"race-{i}" for i in range(200)]
        answers = collections.Counter()
        lock = threading.Lock()

        def post_all(client):
            order = ids[client * 25:] + ids[:client * 25]  # each client starts elsewhere
            with requests.Session() as s:
                for n, i in enumerate(order):
                    e = make_experiment(i, int(i.split("-")[1]), 0)
                    if n % 2:  # every other id inside a batch of 1, as NDJSON
                        r = s.post(sm.admin_url + EXPERIMENTS, data=json.dumps(e) + "\n",
                                   headers={"Content-Type": NDJSON}, timeout=30)
                        key = {(201, json.dumps({"accepted": 1, "duplicates": 0})): "created",
                               (201, json.dumps({"accepted": 0, "duplicates": 1})): "duplicate"}
                        got = key.get((r.status_code, json.dumps(r.json())), r.text)
                    else:
                        r = s.post(sm.admin_url + EXPERIMENTS, json=e, timeout=30)
                        got = {201: "created", 200: "duplicate"}.get(r.status_code)
                        if r.json() != {"experiment_id": i, "status": got}:
                            got = r.text  # shows up in the final comparison
                    with lock:
                        answers[(i, got)] += 1

        threads = [threading.Thread(target=post_all, args=(c,)) for c in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(answers, collections.Counter(
            {**{(i, "created"): 1 for i in ids}, **{(i, "duplicate"): 7 for i in ids}}))
        self.assertEqual(prom.sum_values(sm.metrics(), TOTAL), 200.0)
        self.assertEqual(sm.get_json(EXPERIMENTS + "?limit=1")["total"], 200)
        self.assertEqual(sm.stop(), 0, sm.stderr())
        rows, n_rows = read_store(os.path.join(self.workdir, "speedrun.db"))
        self.assertEqual((n_rows, sorted(rows)), (200, sorted(ids)))


class ScrapeConsistencyTest(harness.HarnessTestCase):
    """speedrun_metrics.h: "a scrape sees each committed batch whole or not at all for
    counters". Every POST here is an NDJSON batch of exactly 8 experiments with 8
    different (status, strategy) labels, so every scrape must show a multiple of 8 in
    pokemon_speedrun_experiments_total, and the duration histogram must count the same."""

    BATCH = 8
    CLIENTS = 8
    SECONDS = 3.0

    def test_a_scrape_sees_each_batch_whole(self):
        sm = self.start_speedmon(ingest.ingest_config())
        stop = threading.Event()

        def post_batches(client):
            with requests.Session() as s:
                for n in range(MAX_REQUESTS_PER_CLIENT):
                    if stop.is_set():
                        return
                    items = [{"experiment_id": f"c{client}-{n}-{k}", "duration_seconds": 1,
                              "status": STATUSES[6 + k % 4], "ai_strategy": f"s{k}"}
                             for k in range(self.BATCH)]
                    r = s.post(sm.admin_url + EXPERIMENTS, timeout=30,
                               data="".join(json.dumps(x) + "\n" for x in items),
                               headers={"Content-Type": NDJSON})
                    if r.status_code != 201:
                        return

        clients = [threading.Thread(target=post_batches, args=(c,), daemon=True)
                   for c in range(self.CLIENTS)]
        for c in clients:
            c.start()
        torn = []
        scrapes = 0
        try:
            deadline = time.monotonic() + self.SECONDS
            while time.monotonic() < deadline and len(torn) < 3:
                samples = sm.metrics()
                scrapes += 1
                total = prom.sum_values(samples, TOTAL)
                count = prom.value(samples, "pokemon_speedrun_experiment_duration_seconds_count")
                if total % self.BATCH or count != total:
                    torn.append((total, count))
        finally:
            stop.set()
            for c in clients:
                c.join(60)
        final = sm.metrics()
        self.assertGreater(prom.sum_values(final, TOTAL), 0)
        self.assertEqual(torn, [], f"{len(torn)} torn of {scrapes} scrapes: (sum of {TOTAL}, "
                                   "experiment_duration_seconds_count)")


class RestartTest(ingest.IngestCase):
    def test_counters_and_sla_continue_after_restart(self):
        store = os.path.join(self.workdir, "speedrun.db")
        cfg = ingest.ingest_config(store_path=store)
        sm = self.start_speedmon(cfg)
        admin = ingest.Admin(sm)
        self.addCleanup(admin.close)
        self.run_session(admin)
        before = self.state(sm, admin)
        self.assertSamples(self.speedrun(sm), ingest.expected_samples())
        self.assertEqual(before[1], ingest.EXPECTED_SLA)
        admin.close()
        self.assertEqual(sm.stop(), 0, sm.stderr())

        sm2 = self.start_speedmon(ingest.ingest_config(store_path=store))
        admin2 = ingest.Admin(sm2)
        self.addCleanup(admin2.close)
        self.assertEqual(self.state(sm2, admin2), before)
        # Ids are still known, and counting continues from the restored totals.
        self.assertAnswer(admin2.post(EXPERIMENTS, ingest.experiment(1)), 200,
                          {"experiment_id": "e-001", "status": "duplicate"})
        self.assertAnswer(admin2.post(PATTERNS, ingest.PATTERNS_2_3), 201,
                          {"accepted": 0, "duplicates": 2})
        e21 = {"experiment_id": "e-021", "status": "success", "duration_seconds": 2,
               "ai_strategy": "genetic"}
        self.assertAnswer(admin2.post(EXPERIMENTS, e21), 201,
                          {"experiment_id": "e-021", "status": "created"})
        self.assertAnswer(admin2.post(PATTERNS + "/p-3/reuse", b"", None), 200,
                          {"status": "counted", "pattern_id": "p-3", "reuse_count": 4})
        expected = ingest.expected_samples(extra=[e21])
        expected[("pokemon_speedrun_pattern_reuses_total", frozenset())] = 6.0
        self.assertSamples(self.speedrun(sm2), expected)
        self.assertEqual(admin2.get_json(SLA)["values"],
                         dict(ingest.EXPECTED_SLA["values"], experiment_success_rate=2000 / 21))
        got = admin2.get_json(EXPERIMENTS + "?limit=1000")
        self.assertEqual(got["total"], 21)
        self.assertEqual(got["experiments"][1:], before[2]["experiments"])

        # A SIGKILL after acknowledged writes loses nothing either.
        self.assertAnswer(admin2.post(EXPERIMENTS, dict(e21, experiment_id="e-022")), 201,
                          {"experiment_id": "e-022", "status": "created"})
        after = self.state(sm2, admin2)
        admin2.close()
        sm2.signal(signal.SIGKILL)
        self.assertEqual(sm2.wait(10), -signal.SIGKILL)
        sm3 = self.start_speedmon(ingest.ingest_config(store_path=store))
        admin3 = ingest.Admin(sm3)
        self.addCleanup(admin3.close)
        self.assertEqual(self.state(sm3, admin3), after)

    def test_restart_with_a_smaller_window_and_a_sighup_on_sla(self):
        store = os.path.join(self.workdir, "speedrun.db")
        sm = self.start_speedmon(ingest.ingest_config(store_path=store))
        admin = ingest.Admin(sm)
        self.addCleanup(admin.close)
        self.run_session(admin)
        admin.close()
        self.assertEqual(sm.stop(), 0, sm.stderr())

        # The windows are refilled from the newest rows: e-016 .. e-020 (4 successes of 5,
        # every one compiled in 62.5 ms and loaded its checkpoint in 125 ms) and the last
        # two patterns, p-2 and p-3 (0.6 each).
        cfg = ingest.ingest_config(store_path=store, speedrun={"window_experiments": 5,
                                                         "window_patterns": 2})
        sm2 = self.start_speedmon(cfg)
        admin2 = ingest.Admin(sm2)
        self.addCleanup(admin2.close)
        sla = admin2.get_json(SLA)
        self.assertEqual(sla["values"], {"experiment_success_rate": 80.0,
                                         "script_compilation": 100.0,
                                         "checkpoint_loading": 100.0, "pattern_quality": 0.6,
                                         "system_availability": None})
        self.assertEqual(sla["window"], {"experiments": 5, "patterns": 2})
        self.assertEqual(sla["individual_compliance"], {
            "experiment_success_rate": False, "script_compilation": True,
            "checkpoint_loading": True, "pattern_quality": False, "system_availability": None})
        # Totals are all-time, whatever the window.
        s = self.speedrun(sm2)
        self.assertEqual(prom.nonzero(s, "pokemon_speedrun_experiments_total"),
                         prom.nonzero(ingest.expected_samples(), TOTAL))
        self.assertEqual(s[("pokemon_speedrun_experiment_success_rate", frozenset())], 80.0)

        # SIGHUP with lower minimums: the same window is recounted against them.
        cfg["sla"] = {"experiment_success_rate_min": 80.0, "pattern_quality_min": 0.6}
        with open(sm2.config_path, "w") as f:
            f.write(harness.toml_dumps(cfg))
        sm2.signal(signal.SIGHUP)
        harness.wait_for(lambda: admin2.get_json(SLA)["overall_sla_compliant"] is True, 15,
                         what="SLA compliant after SIGHUP")
        sla = admin2.get_json(SLA)
        self.assertEqual(sla["targets"], dict(ingest.sla_targets(), experiment_success_rate=80.0,
                                              pattern_quality=0.6))
        self.assertEqual(sla["individual_compliance"], {
            "experiment_success_rate": True, "script_compilation": True,
            "checkpoint_loading": True, "pattern_quality": True, "system_availability": None})
        s = self.speedrun(sm2)
        self.assertEqual(s[("pokemon_speedrun_sla_compliance", frozenset())], 1.0)
        self.assertEqual(prom.select(s, "pokemon_speedrun_sla_requirement_compliant"), {
            frozenset({("requirement", r)}): 1.0 for r in ingest.REQUIREMENTS[:4]})

    def test_retention_trims_rows_but_keeps_totals(self):
        store = os.path.join(self.workdir, "speedrun.db")
        cfg = ingest.ingest_config(store_path=store, speedrun={"retention_rows": 1})
        sm = self.start_speedmon(cfg)
        admin = ingest.Admin(sm)
        self.addCleanup(admin.close)
        # Rows kept: max(retention_rows, window, the 1000 recent) = 1000.
        batch = [{"experiment_id": f"r{i:04d}", "status": "success" if i % 4 else "timeout",
                  "duration_seconds": 1} for i in range(1200)]
        self.assertAnswer(admin.post(EXPERIMENTS, batch, NDJSON), 201,
                          {"accepted": 1200, "duplicates": 0})
        self.assertAnswer(admin.post(EXPERIMENTS, batch[1100]), 200,
                          {"experiment_id": "r1100", "status": "duplicate"})
        admin.close()
        self.assertEqual(sm.stop(), 0, sm.stderr())
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
            ids = [r[0] for r in db.execute("SELECT id FROM experiments ORDER BY seq")]
        self.assertEqual(ids, [f"r{i:04d}" for i in range(200, 1200)])

        sm2 = self.start_speedmon(ingest.ingest_config(store_path=store,
                                                speedrun={"retention_rows": 1}))
        admin2 = ingest.Admin(sm2)
        self.addCleanup(admin2.close)
        s = self.speedrun(sm2)
        self.assertEqual(prom.nonzero(s, "pokemon_speedrun_experiments_total"), {
            frozenset({("status", "success"), ("strategy", "unknown")}): 900.0,
            frozenset({("status", "timeout"), ("strategy", "unknown")}): 300.0})
        self.assertEqual(s[("pokemon_speedrun_experiment_duration_seconds_count", frozenset())],
                         1200.0)
        self.assertEqual(admin2.get_json(EXPERIMENTS + "?limit=1")["total"], 1200)
        # The window holds the newest 1000: 750 successes.
        self.assertEqual(admin2.get_json(SLA)["values"]["experiment_success_rate"], 75.0)
        self.assertAnswer(admin2.post(EXPERIMENTS, batch[1199]), 200,
                          {"experiment_id": "r1199", "status": "duplicate"})


if __name__ == "__main__":
    unittest.main()
