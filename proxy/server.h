// The daemon: the main loop (admin server, health checks, samplers, alert evaluation,
// signals) and the proxy workers, wired from one Config.
//
// Threads: construct, Start and Run on the main thread. Run returns after a drain
// (SIGTERM/SIGINT), when every worker has stopped and every handle is closed.
#pragma once

#include <memory>
#include <string>

#include "config/config.h"

namespace speedmon::proxy {

class ServerImpl;

class Server {
 public:
  explicit Server(config::Config config);
  ~Server();
  // Binds every listener and the admin address, opens the store, starts the workers.
  // Returns "" or an error message (nothing is left running on error).
  std::string Start();
  // Runs until drained. Returns the process exit code (0 after a clean drain).
  int Run();

 private:
  std::unique_ptr<ServerImpl> impl_;
};

}  // namespace speedmon::proxy
