"""Drop-in SystemMetricsCollector: the host's CPU, memory and disk as speedmon samples
them (GET /api/v1/system), instead of sampling in the agent's process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .client import SpeedmonClient
from .speedrun_metrics import client_or_default

__all__ = ["SystemMetrics", "SystemMetricsCollector"]


@dataclass
class SystemMetrics:
    """One snapshot. Percentages are None until speedmon has a sample."""

    cpu_percent: Optional[float]
    memory_percent: Optional[float]
    memory_used_bytes: int
    memory_total_bytes: int
    disk_percent: Optional[float]  # of the first disk path speedmon watches
    load_average: List[float]
    timestamp: float
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)


class SystemMetricsCollector:
    """cache_duration and the like are accepted and have no effect: speedmon's [sysprobe]
    cache_duration decides how fresh a sample is."""

    def __init__(self, *args: Any, client: Optional[SpeedmonClient] = None,
                 url: Optional[str] = None, spool_dir: Optional[str] = None,
                 **kwargs: Any) -> None:
        self.client = client_or_default(client, url, spool_dir)

    def get_metrics(self) -> SystemMetrics:
        s = self.client.get_system_metrics()
        disks = [d for d in s.get("disks") or [] if d.get("ok")]
        return SystemMetrics(
            cpu_percent=s.get("cpu_percent"), memory_percent=s.get("memory_percent"),
            memory_used_bytes=int(s.get("memory_used_bytes") or 0),
            memory_total_bytes=int(s.get("memory_total_bytes") or 0),
            disk_percent=disks[0].get("percent") if disks else None,
            load_average=list(s.get("load_average") or []),
            timestamp=float(s.get("timestamp") or 0.0), raw=s)
