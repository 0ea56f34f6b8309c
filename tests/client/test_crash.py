"""Nothing is lost: 10,000 experiments recorded through one SpeedmonClient from 8 threads
while speedmon is killed with SIGKILL and restarted twice on the same store; afterwards
the store holds every id exactly once. Also measures records/s through the client (the
figures are printed; docs/BENCHMARKS.md quotes them; nothing is asserted on them)."""

import collections
import os
import signal
import threading
import time
import unittest

import clientcase
from clientcase import harness
from speedmon_client import ExperimentResult

THREADS = 8
PER_THREAD = 1250  # 10,000 in all
KILL_AFTER = (2000, 6000)  # delivered records at which speedmon is killed


def experiment(thread, n):
    return ExperimentResult(f"t{thread}-{n}", "success" if n % 10 else "failure",
                            n % 7 + 0.5, script_compilation_time_ms=float(n % 150),
                            ai_strategy=f"strategy-{str(thread)[-1]}",
                            timestamp=1714564800.0 + n)


class Producer(threading.Thread):
    def __init__(self, client, thread, start_gate, count=PER_THREAD):
        super().__init__(daemon=True, name=f"producer-{thread}")
        self.client, self.thread, self.start_gate, self.count = client, thread, start_gate, count
        self.error = None

    def run(self):
        try:
            self.start_gate.wait()
            for n in range(self.count):
                self.client.record_experiment(experiment(self.thread, n))
        except BaseException as e:  # reported by the test
            self.error = e


class CrashTest(clientcase.ClientCase):
    def test_sigkill_twice_mid_delivery_loses_and_doubles_nothing(self):
        cfg = self.config()
        sm = self.start_speedmon(cfg)
        c = self.client(sm, batch_size=500, max_backoff=0.2)
        gate = threading.Event()
        producers = [Producer(c, t, gate) for t in range(THREADS)]
        for p in producers:
            p.start()
        began = time.monotonic()
        gate.set()

        pending_at_kill = []
        for threshold in KILL_AFTER:
            harness.wait_for(lambda: c.stats()["delivered"] >= threshold, 120,
                             what=f"{threshold} records delivered")
            sm.signal(signal.SIGKILL)
            pending_at_kill.append(c.pending)
            self.assertEqual(sm.wait(30), -signal.SIGKILL)
            # The same admin address and store: what the client sees is a restart.
            sm = self.start_speedmon(cfg)
            self.assertEqual(sm.admin_url, c.url)

        for p in producers:
            p.join(120)
            self.assertFalse(p.is_alive())
            self.assertIsNone(p.error)
        self.assertTrue(c.flush(120), c.stats())
        elapsed = time.monotonic() - began

        ids = clientcase.store_ids(self.store)
        twice = [i for i, n in collections.Counter(ids).items() if n > 1]
        self.assertEqual(twice, [])
        expected = {f"t{t}-{n}" for t in range(THREADS) for n in range(PER_THREAD)}
        self.assertEqual(len(ids), 10000)
        self.assertEqual(set(ids), expected)
        self.assertEqual(sm.get_json("/api/v1/experiments?limit=1")["total"], 10000)
        stats = c.stats()
        self.assertEqual(stats["pending"], 0)
        self.assertEqual(stats["rejected"], 0)
        # Accepted as new, or answered "duplicate" when a batch committed before the kill
        # was sent again because its answer never came: together at least every record.
        self.assertGreaterEqual(stats["delivered"] + stats["duplicates"], 10000)
        self.assertLessEqual(stats["delivered"], 10000)
        print(f"\n10,000 records through 2 SIGKILLs in {elapsed:.2f} s; pending at the "
              f"kills {pending_at_kill}; {stats}")

    def test_throughput(self):
        """records/s through the client with speedmon up: record_* calls into the spool,
        and recorded-to-stored end to end, from 1 thread and from 8 threads."""
        sm = self.start_speedmon(self.config())
        c = self.client(sm)
        lines = []
        for threads, per_thread, tag in ((1, 5000, "a"), (THREADS, PER_THREAD, "b")):
            gate = threading.Event()
            producers = [Producer(c, f"{tag}{t}", gate, per_thread) for t in range(threads)]
            for p in producers:
                p.start()
            began = time.monotonic()
            gate.set()
            for p in producers:
                p.join(120)
                self.assertIsNone(p.error)
            recorded = time.monotonic() - began
            self.assertTrue(c.flush(120))
            stored = time.monotonic() - began
            n = threads * per_thread
            lines.append(f"{n:,} experiments from {threads} thread(s): record_* "
                         f"{n / recorded:,.0f} records/s, recorded to stored "
                         f"{n / stored:,.0f} records/s")
        self.assertEqual(len(clientcase.store_ids(self.store)), 15000)
        print("\nclient throughput: " + "; ".join(lines) + f"; {c.stats()['batches']} batches")


if __name__ == "__main__":
    unittest.main()
