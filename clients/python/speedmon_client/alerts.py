"""AlertRule and AlertSeverity: a rule as the agent's code describes it, and its JSON for
POST /api/v1/alert-rules (id, metric, threshold, for, ...)."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, Dict, Union

_OPERATORS = (">", "<", ">=", "<=", "==", "!=")


class AlertSeverity(enum.Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass
class AlertRule:
    """One alert rule. metric_name is a dotted name ("system.cpu_percent",
    "speedrun.average_script_compilation_ms", ...) or an exported metric name, optionally
    with labels ('pokemon_speedrun_upstream_healthy{upstream="emulator-1"}').
    minimum_duration_seconds: how long the condition must hold before the alert fires."""

    rule_id: str
    name: str
    description: str
    metric_name: str
    threshold_value: float
    operator: str = ">"
    severity: Union[AlertSeverity, str] = AlertSeverity.WARNING
    minimum_duration_seconds: float = 0.0
    labels: Dict[str, str] = field(default_factory=dict)
    annotations: Dict[str, str] = field(default_factory=dict)

    def to_json(self) -> Dict[str, Any]:
        """speedmon's rule fields; ValueError for what speedmon would refuse anyway."""
        if self.operator not in _OPERATORS:
            raise ValueError(f"operator must be one of {' '.join(_OPERATORS)}")
        if isinstance(self.threshold_value, bool) or not isinstance(
                self.threshold_value, (int, float)) or not math.isfinite(self.threshold_value):
            raise ValueError("threshold_value must be a finite number")
        seconds = float(self.minimum_duration_seconds)
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError("minimum_duration_seconds must be >= 0")
        severity = (self.severity.value if isinstance(self.severity, AlertSeverity)
                    else str(self.severity).lower())
        doc: Dict[str, Any] = {
            "id": self.rule_id, "name": self.name, "description": self.description,
            "metric": self.metric_name, "operator": self.operator,
            "threshold": float(self.threshold_value),
            "for": f"{round(seconds * 1000)}ms", "severity": severity,
        }
        if self.labels:
            doc["labels"] = dict(self.labels)
        if self.annotations:
            doc["annotations"] = dict(self.annotations)
        return doc
