from speedmon_client.monitoring_middleware import *  # noqa: F401,F403  (the whole module, now speedmon's)
