// The daemon: wires the components from one Config and owns the process lifecycle.
//
//   proxy::DataPlane      workers, listeners, upstream pools, health checks
//   admin::Server + Api   the admin HTTP server on the main loop
//   speedrun::Service     experiment and pattern ingest, the store, SLA
//   alerting::Service     rules, evaluation every evaluation_interval, notifications
//   metrics::SystemCollector  host and process metrics from /proc
//
// Signals: SIGTERM/SIGINT drain (stop accepting, finish in-flight requests, commit the
// store, send queued notices, exit 0), SIGHUP reloads the config file (see Reload in
// daemon.cc for what applies), SIGUSR1 reopens the access log.
//
// Threads: construct, Start and Run on the main thread. Run returns after a drain, when
// every worker has stopped and every handle is closed.
#pragma once

#include <memory>

#include "base/status.h"
#include "config/config.h"

namespace speedmon::app {

class DaemonImpl;

class Daemon {
 public:
  explicit Daemon(config::Config config);
  ~Daemon();
  // Binds every listener and the admin address, opens the store, starts the workers.
  // Nothing is left running on error.
  base::Status Start();
  // Runs until drained. Returns the process exit code (0 after a clean drain).
  int Run();

 private:
  std::unique_ptr<DaemonImpl> impl_;
};

}  // namespace speedmon::app
