// speedmon's main(): flags, config, then the daemon (app/daemon.h).
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "app/daemon.h"
#include "base/build_info.h"
#include "base/log.h"
#include "config/config.h"

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
  speedmon::base::StatusOr<speedmon::config::Config> loaded =
      config_path.empty()
          ? speedmon::config::LoadFromString(speedmon::config::DefaultConfigText(), "<default>")
          : speedmon::config::LoadFromFile(config_path);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.status().message().c_str());
    return 1;
  }
  if (check) {
    std::printf("%s: OK\n%s", loaded->source.c_str(), speedmon::config::Summary(*loaded).c_str());
    return 0;
  }

  speedmon::base::SetLogOptions(loaded->log.format, loaded->log.level);
  // Writes to a closed socket must come back as EPIPE, not kill the daemon.
  std::signal(SIGPIPE, SIG_IGN);
  speedmon::app::Daemon daemon(std::move(loaded).value());
  speedmon::base::Status started = daemon.Start();
  if (!started.ok()) {
    speedmon::base::LogError(started.message());
    return 1;
  }
  return daemon.Run();
}
