"""Drop-in PrometheusMetricsExporter: speedmon is the exporter (GET /metrics on its admin
address), so start_http_server only says where that is; add_process_collector has
speedmon watch the process (POST /api/v1/processes)."""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional

from .client import SpeedmonClient
from .speedrun_metrics import client_or_default

__all__ = ["PrometheusMetricsExporter"]

log = logging.getLogger("speedmon_client")


class PrometheusMetricsExporter:
    def __init__(self, *args: Any, client: Optional[SpeedmonClient] = None,
                 url: Optional[str] = None, spool_dir: Optional[str] = None,
                 **kwargs: Any) -> None:
        self.client = client_or_default(client, url, spool_dir)

    def start_http_server(self, port: int = 8000, *args: Any, **kwargs: Any) -> None:
        log.info("speedmon serves the metrics at %s/metrics (port %s is not opened here)",
                 self.client.url, port)

    def add_process_collector(self, collector: Any, name: Optional[str] = None
                              ) -> Dict[str, Any]:
        """collector: a ProcessMetricsCollector, anything with `process_id` or `pid`, or
        a pid."""
        return self.client.add_process_collector(
            collector, name=name or getattr(collector, "name", None))
