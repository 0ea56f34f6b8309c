"""Drop-in ProcessMetricsCollector: names a process for speedmon to watch. Passed to
PrometheusMetricsExporter.add_process_collector, speedmon samples it from then on."""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["ProcessMetricsCollector"]


class ProcessMetricsCollector:
    def __init__(self, process_id: int, name: Optional[str] = None, *args: Any,
                 **kwargs: Any) -> None:
        self.process_id = process_id
        self.name = name
