"""speedmon's Python client.

    from speedmon_client import SpeedmonClient, ExperimentResult, ExperimentStatus

    with SpeedmonClient("http://127.0.0.1:8000", spool_dir="/var/lib/agent/speedmon") as c:
        c.record_experiment(ExperimentResult("exp_001", ExperimentStatus.SUCCESS, 125.5,
                                             script_compilation_time_ms=87.3))
        print(c.get_sla_compliance()["overall_sla_compliant"])

Modules named like the in-process monitoring code they replace:
speedmon_client.speedrun_metrics (SpeedrunMetricsCollector), speedmon_client.alert_manager
(AlertManager), speedmon_client.monitoring_middleware (monitor_requests_session).
"""

from .alerts import AlertRule, AlertSeverity
from .client import SpeedmonClient
from .errors import ApiError, SpeedmonError, SpoolFullError, SpoolLockedError
from .proxying import monitor_requests_session, monitored_opener
from .records import (ExperimentResult, ExperimentStatus, FailureType, PatternDiscovery,
                      PatternType, PoolEvent, PoolEventKind)

__version__ = "0.1.0"

__all__ = [
    "AlertRule", "AlertSeverity", "ApiError", "ExperimentResult", "ExperimentStatus",
    "FailureType", "PatternDiscovery", "PatternType", "PoolEvent", "PoolEventKind",
    "SpeedmonClient", "SpeedmonError", "SpoolFullError", "SpoolLockedError",
    "monitor_requests_session", "monitored_opener",
]
