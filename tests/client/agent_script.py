"""A runner script written against the in-process monitoring API, unchanged: only the
agent's monitoring modules behind its imports are now speedmon_client's (see agent/)."""

from agent.alert_manager import AlertManager, AlertRule, AlertSeverity
from agent.emulator_pool import EmulatorPool
from agent.monitoring_middleware import monitor_requests_session
from agent.prometheus_metrics import PrometheusMetricsExporter
from agent.speedrun_metrics import (ExperimentResult, ExperimentStatus, PatternDiscovery,
                                    SpeedrunMetricsCollector)
from agent.system_metrics import SystemMetricsCollector

# Initialize components
system_metrics = SystemMetricsCollector()
speedrun_metrics = SpeedrunMetricsCollector()
prometheus_exporter = PrometheusMetricsExporter()

# Start Prometheus HTTP server
prometheus_exporter.start_http_server(port=8000)

# System metrics (automatic)
system_data = system_metrics.get_metrics()
print(f"Memory: {system_data.memory_percent > 0}, "
      f"used {system_data.memory_used_bytes > 0}")

pool = EmulatorPool()
instrumented_session = monitor_requests_session(pool.session)
print("status", pool.status(0)["status"])
pool.act(0, "a")

experiment = ExperimentResult(
    experiment_id="exp_001",
    status=ExperimentStatus.SUCCESS,
    duration_seconds=125.5,
    script_compilation_time_ms=87.3,
    checkpoint_loading_time_ms=425.8,
    ai_strategy="genetic_algorithm"
)
speedrun_metrics.record_experiment(experiment)
speedrun_metrics.record_pattern_discovery(PatternDiscovery(
    pattern_id="p_001", pattern_type="movement", quality_score=0.82,
    experiment_id="exp_001"))
speedrun_metrics.record_pattern_reuse("p_001")

sla_status = speedrun_metrics.get_sla_compliance()
if sla_status["overall_sla_compliant"]:
    print("✅ Meeting SLA requirements")
else:
    print("❌ SLA violation detected")
    for requirement, compliant in sla_status["individual_compliance"].items():
        if not compliant:
            print(f"  - {requirement}: FAILING")

alert_manager = AlertManager()
custom_rule = AlertRule(
    rule_id="custom_performance",
    name="Custom Performance Alert",
    description="Custom performance threshold exceeded",
    metric_name="speedrun.average_script_compilation_ms",
    threshold_value=120.0,  # 120ms threshold
    operator=">",
    severity=AlertSeverity.WARNING
)
alert_manager.add_alert_rule(custom_rule)
alert_manager.start_monitoring()
print("rules", [r["id"] for r in alert_manager.get_alert_rules()])

speedrun_metrics.record_experiment(ExperimentResult(
    experiment_id="exp_002", status=ExperimentStatus.FAILURE, duration_seconds=30.0,
    ai_strategy="genetic_algorithm", error_message="stuck in menu"))
# No flush, no close: what is recorded is delivered when the interpreter exits.
