from speedmon_client.speedrun_metrics import *  # noqa: F401,F403  (the whole module, now speedmon's)
