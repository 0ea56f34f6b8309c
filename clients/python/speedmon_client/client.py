"""SpeedmonClient: records go to a durable spool and reach speedmon in the background.

record_experiment / record_pattern_discovery / record_pattern_reuse check the record,
commit it to the spool (see spool.py) and return; they never wait for the network. One
sender thread posts the oldest records, in order, as NDJSON batches
(POST /api/v1/experiments and /api/v1/patterns, answered {"accepted": N, "duplicates": M})
and deletes them from the spool only after a 2xx. While speedmon is down, restarting or
answering 5xx, the same records are sent again (with their ids) after a growing pause;
speedmon stores an id once, so a batch whose answer was lost is not stored twice.
Experiments and patterns are therefore delivered exactly once. A pattern reuse has no id
of its own, so each gets a random Idempotency-Key when it is spooled, sent with every
attempt: one whose answer was lost is counted once too.

A record speedmon refuses for its content (a 4xx other than 401, 403, 408, 429) is moved
to the spool's `rejected` table with speedmon's answer and logged; the others go on.

Thread safety: every public method may be called from any thread.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import re
import ssl
import threading
import time
import urllib.parse
import uuid
from typing import Any, Dict, List, Optional, Tuple, Union

from .alerts import AlertRule
from .errors import ApiError, SpeedmonError
from .records import (ExperimentResult, PatternDiscovery, PatternType, PoolEvent,
                      check_pattern_id, dumps, experiment_json, pattern_json, pool_event_json)
from .spool import Row, Spool
from .transport import Transport

log = logging.getLogger("speedmon_client")

NDJSON = "application/x-ndjson"
EXPERIMENT, PATTERN, REUSE, EVENT = "experiment", "pattern", "reuse", "event"
_BATCH_PATHS = {EXPERIMENT: "/api/v1/experiments", PATTERN: "/api/v1/patterns",
                EVENT: "/api/v1/events"}
_ITEM_FIELD = re.compile(r"items\[(\d+)\]")
# Answers that say "not now" rather than "not this record": kept and sent again.
_RETRY_4XX = {401, 403, 404, 405, 408, 409, 415, 425, 429}


def _list_path(path: str, limit: int, cursor: Optional[str]) -> str:
    path += f"?limit={int(limit)}"
    if cursor is not None:
        path += "&cursor=" + urllib.parse.quote(cursor, safe="")
    return path


def _default_token() -> Optional[str]:
    return os.environ.get("SPEEDMON_AUTH_TOKEN") or None


class SpeedmonClient:
    """A client of one speedmon admin address, with its spool in `spool_dir`.

    url: speedmon's admin address ("http://127.0.0.1:8000").
    spool_dir: a directory for the spool (created if missing); records left there when
      the process ends are sent by the next client opened on the same directory.
    token: the admin token for writes (default: $SPEEDMON_AUTH_TOKEN).
    max_spool_records: record_* raises SpoolFullError when this many records wait.
    batch_size: records per POST (speedmon takes up to 10000 per body).
    timeout: seconds for one HTTP exchange.
    max_backoff: the longest pause between attempts while speedmon is unreachable.
    read_flush_timeout: get_sla_compliance / get_metrics_summary / get_experiments first
      wait up to this long for the records recorded before the call to be delivered, so
      a read sees this client's writes (0: read at once).
    durable: "normal" (survives the process being killed) or "full" (also a power cut;
      one fsync per record).
    """

    def __init__(self, url: str = "http://127.0.0.1:8000", spool_dir: Optional[str] = None,
                 *, token: Optional[str] = None, max_spool_records: int = 1_000_000,
                 batch_size: int = 1000, timeout: float = 10.0, max_backoff: float = 5.0,
                 read_flush_timeout: float = 5.0, durable: str = "normal",
                 ssl_context: Optional[ssl.SSLContext] = None) -> None:
        if spool_dir is None:
            raise ValueError("spool_dir is required: a directory where records wait until "
                             "speedmon has them")
        if not 1 <= batch_size <= 10000:
            raise ValueError("batch_size must be 1 to 10000")
        self.url = url.rstrip("/")
        token = token if token is not None else _default_token()
        self._reads = Transport(self.url, token, timeout, ssl_context)
        self._sends = Transport(self.url, token, timeout, ssl_context)
        self._spool = Spool(spool_dir, max_spool_records, durable)
        self._batch_size = batch_size  # lowered after a 413, or to 1 to find a bad record
        self._configured_batch_size = batch_size
        self._max_backoff = max_backoff
        self.read_flush_timeout = read_flush_timeout
        # _wake: set after every append, so an idle sender starts at once (an Event
        # rather than notifying a Condition: the producers never wait on the sender).
        # _settled: notified by the sender whenever records leave the spool (flush).
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._settled = threading.Condition()
        self._closed = False
        self._close_mu = threading.Lock()
        self._stats_mu = threading.Lock()
        self._stats = {"delivered": 0, "duplicates": 0, "rejected": 0, "batches": 0,
                       "failed_attempts": 0}
        self._thread = threading.Thread(target=self._run, name="speedmon-client-sender",
                                         daemon=True)
        self._thread.start()

    # ---- records ------------------------------------------------------------------------

    def record_experiment(self, experiment: ExperimentResult) -> None:
        """Spools one experiment. ValueError if it is not valid; SpoolFullError when full."""
        self._append(EXPERIMENT, dumps(experiment_json(experiment)))

    def record_pattern_discovery(self, pattern: PatternDiscovery) -> None:
        """Spools one pattern discovery. ValueError if it is not valid."""
        self._append(PATTERN, dumps(pattern_json(pattern)))

    def record_pattern_reuse(self, pattern_id: str) -> None:
        """Spools one reuse of a pattern (sent after everything recorded before it)."""
        record = {"pattern_id": check_pattern_id(pattern_id), "reuse_id": uuid.uuid4().hex}
        self._append(REUSE, dumps(record))

    def record_pool_event(self, event: PoolEvent) -> None:
        """Spools one event of the emulator pool (POST /api/v1/events): a failure counts
        in pokemon_speedrun_process_failures_total, a startup time in the startup
        histogram. An event without an event_id gets a random one, so a retry is not
        counted twice (speedmon remembers the last 100,000 event ids since it started).
        ValueError if it is not valid."""
        doc = pool_event_json(event)
        doc.setdefault("event_id", uuid.uuid4().hex)
        self._append(EVENT, dumps(doc))

    def _append(self, kind: str, body: str) -> None:
        if self._closed:
            raise SpeedmonError("this SpeedmonClient is closed")
        self._spool.append(kind, body)
        self._wake.set()

    @property
    def spool_dir(self) -> str:
        return self._spool.directory

    @property
    def pending(self) -> int:
        """Records in the spool not yet accepted by speedmon."""
        return len(self._spool)

    def stats(self) -> Dict[str, int]:
        """Counters since this client started: delivered (stored as new), duplicates
        (already stored: a retry), rejected, batches, failed_attempts, pending."""
        with self._stats_mu:
            out = dict(self._stats)
        out["pending"] = len(self._spool)
        return out

    def rejected_records(self) -> List[Tuple[str, Dict[str, Any], int, str]]:
        """(kind, record, HTTP status, speedmon's answer) of every record speedmon refused."""
        out = []
        for kind, body, status, answer in self._spool.rejected():
            out.append((kind, json.loads(body), status, answer))
        return out

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Waits until every record recorded before this call has reached speedmon (or
        was rejected). True when they have; False after `timeout` seconds (None: wait as
        long as it takes). The records are kept either way."""
        deadline = None if timeout is None else time.monotonic() + timeout
        target = self._spool.last_seq
        with self._settled:
            while True:
                if self._closed:
                    return len(self._spool) == 0
                if self._spool.delivered_through(target):
                    return True
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._settled.wait(min(left, 1.0) if left is not None else 1.0)

    def close(self, timeout: Optional[float] = 10.0) -> bool:
        """Flushes for up to `timeout` seconds, then stops the sender. Records still
        waiting stay in the spool for the next client on this directory. Returns flush's
        answer. Idempotent."""
        with self._close_mu:
            if self._closed:
                return len(self._spool) == 0
            done = self.flush(timeout)
            self._closed = True
            self._stop.set()
            self._wake.set()
            self._thread.join()
            self._sends.close()
            self._reads.close()
            self._spool.close()
            with self._settled:
                self._settled.notify_all()  # flushes in other threads answer now
            return done

    def __enter__(self) -> "SpeedmonClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- reads and admin calls ----------------------------------------------------------

    def _read_after_writes(self) -> None:
        if self.read_flush_timeout > 0:
            self.flush(self.read_flush_timeout)

    def get_sla_compliance(self) -> Dict[str, Any]:
        """GET /api/v1/sla: overall_sla_compliant, individual_compliance (a requirement
        without data yet is None), values, targets, window."""
        self._read_after_writes()
        return dict(self._reads.call("GET", "/api/v1/sla"))

    def get_metrics_summary(self) -> Dict[str, Any]:
        """GET /api/v1/summary: totals, averages, success per strategy, the most effective
        strategy, discovery and reuse rates."""
        self._read_after_writes()
        return dict(self._reads.call("GET", "/api/v1/summary"))

    def get_experiments(self, limit: int = 100, cursor: Optional[str] = None
                        ) -> Dict[str, Any]:
        """GET /api/v1/experiments: up to `limit` experiments, newest first, older than
        `cursor` (the "next" of the page before), the total, and "next" (None at the end)."""
        self._read_after_writes()
        return dict(self._reads.call("GET", _list_path("/api/v1/experiments", limit, cursor)))

    def get_experiment(self, experiment_id: str) -> Optional[Dict[str, Any]]:
        """GET /api/v1/experiments/{id}: the stored experiment, or None when speedmon has
        no experiment with that id (never posted, or past retention)."""
        self._read_after_writes()
        return self._get_one("/api/v1/experiments/", experiment_id)

    def get_patterns(self, limit: int = 100, pattern_type: Any = None,
                     cursor: Optional[str] = None) -> Dict[str, Any]:
        """GET /api/v1/patterns: as get_experiments, of one PatternType when given."""
        self._read_after_writes()
        path = _list_path("/api/v1/patterns", limit, cursor)
        if pattern_type is not None:
            kind = pattern_type.value if isinstance(pattern_type, PatternType) else pattern_type
            path += "&type=" + urllib.parse.quote(str(kind), safe="")
        return dict(self._reads.call("GET", path))

    def get_pattern(self, pattern_id: str) -> Optional[Dict[str, Any]]:
        """GET /api/v1/patterns/{id}: the stored pattern with its reuse_count, or None."""
        self._read_after_writes()
        return self._get_one("/api/v1/patterns/", pattern_id)

    def _get_one(self, prefix: str, record_id: str) -> Optional[Dict[str, Any]]:
        try:
            return dict(self._reads.call("GET", prefix + urllib.parse.quote(record_id, safe="")))
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def add_alert_rule(self, rule: AlertRule) -> Dict[str, Any]:
        """POST /api/v1/alert-rules; returns the rule as speedmon stored it."""
        return dict(self._reads.call("POST", "/api/v1/alert-rules", rule.to_json(),
                                     ok=(200, 201)))

    def remove_alert_rule(self, rule_id: str) -> None:
        """DELETE /api/v1/alert-rules/{id}."""
        self._reads.call("DELETE", "/api/v1/alert-rules/" + urllib.parse.quote(rule_id, ""))

    def get_alert_rules(self) -> List[Dict[str, Any]]:
        """Every rule with its state (GET /api/v1/alert-rules)."""
        return list(self._reads.call("GET", "/api/v1/alert-rules")["rules"])

    def get_active_alerts(self) -> List[Dict[str, Any]]:
        """Pending and firing alerts (GET /api/v1/alerts "alerts")."""
        return list(self._reads.call("GET", "/api/v1/alerts")["alerts"])

    def get_upstreams(self) -> List[Dict[str, Any]]:
        """GET /api/v1/upstreams: upstreams with their endpoints, listeners and routes."""
        return list(self._reads.call("GET", "/api/v1/upstreams")["upstreams"])

    def get_system_metrics(self) -> Dict[str, Any]:
        """GET /api/v1/system: the host's latest snapshot (cpu_percent, memory_percent,
        disks, load_average, ...)."""
        return dict(self._reads.call("GET", "/api/v1/system"))

    def add_process_collector(self, process: Union[int, Any],
                              name: Optional[str] = None) -> Dict[str, Any]:
        """Has speedmon watch a process from now on (POST /api/v1/processes): its CPU,
        memory and open files as pokemon_speedrun_process_* with label process=name.
        process: a pid, or an object with a `process_id` or `pid` attribute."""
        pid = process
        if not isinstance(process, int):
            pid = getattr(process, "process_id", None) or getattr(process, "pid", None)
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
            raise ValueError(f"add_process_collector needs a positive pid, not {process!r}")
        doc = {"pid": pid, "name": name or f"pid-{pid}"}
        return dict(self._reads.call("POST", "/api/v1/processes", doc, ok=(200, 201)))

    def remove_process_collector(self, name: str) -> None:
        """Stops watching a process added with add_process_collector
        (DELETE /api/v1/processes/{name})."""
        self._reads.call("DELETE", "/api/v1/processes/" + urllib.parse.quote(name, ""))

    def monitor_requests_session(self, session: Any) -> Any:
        """See speedmon_client.monitor_requests_session."""
        from .proxying import monitor_requests_session
        return monitor_requests_session(session, client=self)

    # ---- the sender ---------------------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            self._wake.clear()
            if len(self._spool) == 0:
                self._wake.wait()  # an append or close() sets it
                continue
            try:
                progressed = self._send_oldest()
            except Exception:  # never let the sender die: log, pause, go on
                log.exception("speedmon client: sending failed unexpectedly")
                progressed = False
            if progressed:
                backoff = 0.0
                continue
            with self._stats_mu:
                self._stats["failed_attempts"] += 1
            backoff = min(self._max_backoff, max(0.05, backoff * 2))
            # Jitter, so several runners do not all come back at the same instant.
            self._stop.wait(backoff * random.uniform(0.5, 1.0))

    def _notify_settled(self) -> None:
        with self._settled:
            self._settled.notify_all()

    def _send_oldest(self) -> bool:
        """Sends the oldest run of same-kind records. True when it got an answer that
        settles something (or narrows the batch down), False to pause and retry."""
        rows = self._spool.oldest(self._batch_size)
        if not rows:
            return True
        kind = rows[0][1]
        if kind == REUSE:
            return self._send_reuse(rows[0])
        group = []
        for row in rows:
            if row[1] != kind:
                break
            group.append(row)
        return self._send_batch(kind, group)

    def _post(self, path: str, body: bytes, content_type: Optional[str],
              headers: Optional[Dict[str, str]] = None) -> Optional[Tuple[int, bytes]]:
        with self._sends.lock:
            try:
                return self._sends.request("POST", path, body, content_type, headers)
            except (OSError, http.client.HTTPException) as e:
                log.debug("speedmon client: POST %s: %s", path, e)
                return None

    def _send_batch(self, kind: str, group: List[Row]) -> bool:
        body = "".join(r[2] + "\n" for r in group).encode()
        answer = self._post(_BATCH_PATHS[kind], body, NDJSON)
        if answer is None:
            return False
        status, data = answer
        if 200 <= status < 300:
            self._spool.delete([r[0] for r in group])
            accepted = duplicates = 0
            try:
                doc = json.loads(data)
                accepted, duplicates = int(doc["accepted"]), int(doc["duplicates"])
            except (ValueError, KeyError, TypeError):
                log.warning("speedmon client: unexpected answer to a batch: %r", data[:200])
            with self._stats_mu:
                self._stats["delivered"] += accepted
                self._stats["duplicates"] += duplicates
                self._stats["batches"] += 1
            self._notify_settled()
            return True
        if status == 413 and len(group) > 1:
            self._batch_size = max(1, len(group) // 2)
            return True
        if status >= 500 or status in _RETRY_4XX:
            if status in (401, 403):
                log.error("speedmon client: speedmon refuses the token (%d); records are "
                          "kept and sent again", status)
            return False
        # The batch was refused for its content: find the item and set it aside.
        bad = None
        try:
            match = _ITEM_FIELD.match(str(json.loads(data).get("field") or ""))
            bad = int(match.group(1)) if match else None
        except (ValueError, AttributeError):
            pass
        if bad is None and len(group) > 1:
            self._batch_size = 1  # send one by one until the bad one is found
            return True
        row = group[bad if bad is not None and bad < len(group) else 0]
        self._reject(row, status, data)
        return True

    def _send_reuse(self, row: Row) -> bool:
        record = json.loads(row[2])
        path = "/api/v1/patterns/" + urllib.parse.quote(record["pattern_id"], safe="") + "/reuse"
        answer = self._post(path, b"", None, {"Idempotency-Key": record["reuse_id"]})
        if answer is None:
            return False
        status, data = answer
        if 200 <= status < 300:
            self._spool.delete([row[0]])
            with self._stats_mu:
                self._stats["delivered"] += 1
            self._notify_settled()
            return True
        if status >= 500 or (status in _RETRY_4XX and status not in (404, 409)):
            return False
        self._reject(row, status, data)  # 404: no such pattern; 409: the key is another's
        return True

    def _reject(self, row: Row, status: int, data: bytes) -> None:
        answer = data[:4096].decode("utf-8", "replace")
        log.error("speedmon client: speedmon refused this %s record (%d %s); it is kept in "
                  "the spool's rejected table: %s", row[1], status, answer.strip(), row[2][:300])
        self._spool.reject(row[0], status, answer)
        with self._stats_mu:
            self._stats["rejected"] += 1
        self._notify_settled()
        if self._batch_size == 1:
            self._batch_size = self._configured_batch_size
