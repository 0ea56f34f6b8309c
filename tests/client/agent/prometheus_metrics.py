from speedmon_client.prometheus_metrics import *  # noqa: F401,F403  (the whole module, now speedmon's)
