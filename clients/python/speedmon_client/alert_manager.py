"""Drop-in AlertManager: rules are added to speedmon, which evaluates them.

start_monitoring() and stop_monitoring() exist for code that calls them; speedmon
evaluates its rules all the time ([alerting] evaluation_interval)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from .alerts import AlertRule, AlertSeverity
from .client import SpeedmonClient
from .speedrun_metrics import client_or_default
from .errors import ApiError

__all__ = ["AlertManager", "AlertRule", "AlertSeverity"]


class AlertManager:
    def __init__(self, *args: Any, client: Optional[SpeedmonClient] = None,
                 url: Optional[str] = None, spool_dir: Optional[str] = None,
                 **kwargs: Any) -> None:
        self.client = client_or_default(client, url, spool_dir)

    def add_alert_rule(self, rule: AlertRule) -> Dict[str, Any]:
        """Adds the rule, replacing one with the same rule_id that was added at run time."""
        try:
            return self.client.add_alert_rule(rule)
        except ApiError as e:
            if e.status != 409:
                raise
        self.client.remove_alert_rule(rule.rule_id)
        return self.client.add_alert_rule(rule)

    def remove_alert_rule(self, rule_id: str) -> None:
        self.client.remove_alert_rule(rule_id)

    def get_alert_rules(self) -> List[Dict[str, Any]]:
        return self.client.get_alert_rules()

    def get_active_alerts(self) -> List[Dict[str, Any]]:
        return self.client.get_active_alerts()

    def start_monitoring(self) -> None:
        pass

    def stop_monitoring(self) -> None:
        pass
