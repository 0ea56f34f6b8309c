from speedmon_client.process_metrics_collector import *  # noqa: F401,F403  (the whole module, now speedmon's)
