from speedmon_client.alert_manager import *  # noqa: F401,F403  (the whole module, now speedmon's)
