"""Drop-in SpeedrunMetricsCollector for code written against the in-process collector.

The same names (ExperimentResult, ExperimentStatus, PatternDiscovery, PatternType,
SpeedrunMetricsCollector) and methods, with speedmon behind them: records go through a
process-wide SpeedmonClient (its spool survives speedmon restarts and this process
exiting), reads come from speedmon. Configured by the environment, so existing code
needs no new arguments:

  SPEEDMON_URL          speedmon's admin address (default http://127.0.0.1:8000)
  SPEEDMON_SPOOL_DIR    where records wait (default $XDG_STATE_HOME/speedmon/spool, i.e.
                        ~/.local/state/speedmon/spool); each process takes a free slot
                        directory under it, and adopts what a finished process left there
  SPEEDMON_AUTH_TOKEN   the admin token, when speedmon has one
  SPEEDMON_EXIT_FLUSH_SECONDS  how long the interpreter's exit waits for delivery
                        (default 10; what is not delivered stays spooled)
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from typing import Any, Dict, Optional, Tuple

from .client import SpeedmonClient
from .errors import SpoolLockedError
from .records import ExperimentResult, ExperimentStatus, PatternDiscovery, PatternType

__all__ = ["ExperimentResult", "ExperimentStatus", "PatternDiscovery", "PatternType",
           "SpeedrunMetricsCollector", "default_client"]

log = logging.getLogger("speedmon_client")

_SLOTS = 64
_clients: Dict[Tuple[str, str], SpeedmonClient] = {}
_clients_lock = threading.Lock()


def _default_spool_base() -> str:
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"),
                                                             ".local", "state")
    return os.path.join(state, "speedmon", "spool")


def default_client(url: Optional[str] = None, spool_dir: Optional[str] = None
                   ) -> SpeedmonClient:
    """The process-wide client for (url, spool_dir), created on first use and closed
    (flushed) when the interpreter exits."""
    url = (url or os.environ.get("SPEEDMON_URL") or "http://127.0.0.1:8000").rstrip("/")
    base = spool_dir or os.environ.get("SPEEDMON_SPOOL_DIR") or _default_spool_base()
    with _clients_lock:
        key = (url, os.path.abspath(base))
        if key in _clients:
            return _clients[key]
        # One directory per live process: slot 0, 1, ... whichever is free. A slot a
        # finished process left records in is taken over and emptied.
        for slot in range(_SLOTS):
            try:
                client = SpeedmonClient(url, os.path.join(base, f"slot-{slot}"))
                break
            except SpoolLockedError:
                continue
        else:
            raise SpoolLockedError(f"all {_SLOTS} spool slots under {base} are in use")
        _clients[key] = client
        return client


def client_or_default(client: Optional[SpeedmonClient], url: Optional[str] = None,
                      spool_dir: Optional[str] = None) -> SpeedmonClient:
    """`client`, or the process-wide default_client(url, spool_dir) when it is None."""
    return client if client is not None else default_client(url, spool_dir)


@atexit.register
def _close_clients() -> None:
    seconds = float(os.environ.get("SPEEDMON_EXIT_FLUSH_SECONDS", "10"))
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        if not client.close(timeout=seconds):
            log.warning("speedmon client: %d records not yet delivered stay in %s",
                        client.pending, client.spool_dir)


class SpeedrunMetricsCollector:
    """Records experiments and patterns into speedmon; reads SLA and summary from it.

    Extra constructor arguments of the in-process collector (history sizes and the like)
    are accepted and have no effect: speedmon's [speedrun] and [sla] config decides."""

    def __init__(self, *args: Any, client: Optional[SpeedmonClient] = None,
                 url: Optional[str] = None, spool_dir: Optional[str] = None,
                 **kwargs: Any) -> None:
        if args or kwargs:
            log.debug("SpeedrunMetricsCollector: ignoring %r %r (speedmon's config decides)",
                      args, kwargs)
        self.client = client_or_default(client, url, spool_dir)

    def record_experiment(self, experiment: ExperimentResult) -> None:
        self.client.record_experiment(experiment)

    def record_pattern_discovery(self, pattern: PatternDiscovery) -> None:
        self.client.record_pattern_discovery(pattern)

    def record_pattern_reuse(self, pattern_id: str) -> None:
        self.client.record_pattern_reuse(pattern_id)

    def get_sla_compliance(self) -> Dict[str, Any]:
        return self.client.get_sla_compliance()

    def get_metrics_summary(self) -> Dict[str, Any]:
        return self.client.get_metrics_summary()

    def flush(self, timeout: Optional[float] = None) -> bool:
        return self.client.flush(timeout)
