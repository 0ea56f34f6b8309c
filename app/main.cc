// speedmon's main(): flags, config, signals, run.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "alerting/http_client.h"
#include "base/build_info.h"
#include "base/log.h"
#include "config/config.h"
#include "proxy/server.h"

namespace {

constexpr const char kUsage[] =
    "usage: speedmon [--config FILE]\n"
    "       speedmon --check-config [--config FILE]\n"
    "       speedmon --print-default-config\n"
    "       speedmon --version\n";

int Usage(const char* problem) {
  std::fprintf(stderr, "speedmon: %s\n%s", problem, kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" || a == "-c") {
      if (i + 1 >= argc) return Usage("--config needs a FILE");
      config_path = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      config_path = a.substr(9);
    } else if (a == "--check-config") {
      check = true;
    } else if (a == "--print-default-config") {
      std::fputs(speedmon::config::DefaultConfigText().c_str(), stdout);
      return 0;
    } else if (a == "--version") {
      std::printf(
          "speedmon %.*s (revision %.*s, %s build)\n",
          static_cast<int>(speedmon::base::Version().size()), speedmon::base::Version().data(),
          static_cast<int>(speedmon::base::Revision().size()), speedmon::base::Revision().data(),
#ifdef NDEBUG
          "release"
#else
          "debug"
#endif
      );
      return 0;
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      return Usage(("unknown argument: " + a).c_str());
    }
  }

  // The one validation of a config, for --check-config, start-up and (in the server)
  // SIGHUP alike: what Load accepts the components accept. Start-up can still fail on
  // what the machine decides: resolving a name, binding a port, opening the store.
  speedmon::config::LoadResult loaded =
      config_path.empty()
          ? speedmon::config::LoadFromString(speedmon::config::DefaultConfigText(), "<default>")
          : speedmon::config::LoadFromFile(config_path);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.error->ToString().c_str());
    return 1;
  }
  if (check) {
    std::printf("%s: OK\n%s", loaded.config->source.c_str(),
                speedmon::config::Summary(*loaded.config).c_str());
    return 0;
  }

  speedmon::base::SetLogOptions(loaded.config->log.format, loaded.config->log.level);
  // Writes to a closed socket must come back as EPIPE, not kill the daemon.
  std::signal(SIGPIPE, SIG_IGN);
  // libcurl's (and OpenSSL's) process-wide set-up, before Start() makes any thread.
  if (speedmon::base::Status curl = speedmon::alerting::InitHttpClient(); !curl.ok()) {
    speedmon::base::LogError(curl.message());
    return 1;
  }
  speedmon::proxy::Server server(std::move(*loaded.config));
  std::string error = server.Start();
  if (!error.empty()) {
    speedmon::base::LogError(error);
    return 1;
  }
  return server.Run();
}
