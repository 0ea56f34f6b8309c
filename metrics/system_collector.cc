// System and process metric families from sysprobe snapshots. See system_collector.h.
#include "metrics/system_collector.h"

namespace speedmon::metrics {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily Family(const char* name, const char* help, MetricType type) {
  return MetricFamily{name, help, type, {}};
}

void Add(MetricFamily* f, double v, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f->type == MetricType::Counter) {
    m.counter.value = v;
  } else {
    m.gauge.value = v;
  }
  f->metric.push_back(std::move(m));
}

}  // namespace

SystemCollector::SystemCollector(std::shared_ptr<sysprobe::SystemSampler> sampler,
                                 std::vector<WatchedProcess> processes)
    : sampler_(std::move(sampler)), processes_(std::move(processes)) {}

void SystemCollector::SetProcesses(std::vector<WatchedProcess> processes) {
  for (WatchedProcess& p : processes_) {
    if (!p.from_api) continue;
    bool taken = false;
    for (const WatchedProcess& c : processes) taken = taken || c.name == p.name;
    if (!taken) processes.push_back(std::move(p));
  }
  processes_ = std::move(processes);
}

base::StatusOr<bool> SystemCollector::AddProcess(WatchedProcess process) {
  for (const WatchedProcess& p : processes_) {
    if (p.name != process.name) continue;
    if (p.selector == process.selector && p.from_api) return false;
    return base::AlreadyExistsError(
        "process \"" + p.name + "\" is already watched (" + p.selector + ")", "name");
  }
  if (processes_.size() >= kMaxProcesses) {
    return base::TooLargeError("at most " + std::to_string(kMaxProcesses) + " watched processes");
  }
  process.last = process.watcher->Sample();
  processes_.push_back(std::move(process));
  return true;
}

base::Status SystemCollector::RemoveProcess(std::string_view name) {
  for (auto it = processes_.begin(); it != processes_.end(); ++it) {
    if (it->name != name) continue;
    if (!it->from_api) {
      return base::Status(
          base::StatusCode::kFailedPrecondition,
          "process \"" + it->name + "\" comes from the config file; remove it there", "name");
    }
    processes_.erase(it);
    return base::OkStatus();
  }
  return base::NotFoundError("no watched process named \"" + std::string(name) + "\"", "name");
}

void SystemCollector::SampleProcesses() const {
  for (auto& p : processes_) p.last = p.watcher->Sample();
}

std::vector<MetricFamily> SystemCollector::Collect() const {
  std::vector<MetricFamily> out;
  out.reserve(27);  // as many as the families below, so none is moved twice
  auto s = sampler_->Get();
  if (s->cpu_ok) {
    auto cpu =
        Family("pokemon_speedrun_system_cpu_percent",
               "Busy share of all CPUs since the previous sample, percent.", MetricType::Gauge);
    Add(&cpu, s->cpu_percent);
    out.push_back(std::move(cpu));
    auto n = Family("pokemon_speedrun_system_cpus", "Online CPUs.", MetricType::Gauge);
    Add(&n, s->cpu_count);
    out.push_back(std::move(n));
  }
  if (s->memory_ok) {
    auto used = Family("pokemon_speedrun_system_memory_bytes",
                       "Memory in use: total minus available, bytes.", MetricType::Gauge);
    Add(&used, static_cast<double>(s->memory_used));
    out.push_back(std::move(used));
    auto pct = Family("pokemon_speedrun_system_memory_percent", "Memory in use, percent of total.",
                      MetricType::Gauge);
    Add(&pct, s->memory_percent);
    out.push_back(std::move(pct));
    auto total = Family("pokemon_speedrun_system_memory_total_bytes", "Memory in all, bytes.",
                        MetricType::Gauge);
    Add(&total, static_cast<double>(s->memory_total));
    out.push_back(std::move(total));
    auto avail =
        Family("pokemon_speedrun_system_memory_available_bytes",
               "Memory available for new work without swapping, bytes.", MetricType::Gauge);
    Add(&avail, static_cast<double>(s->memory_available));
    out.push_back(std::move(avail));
    auto swap =
        Family("pokemon_speedrun_system_swap_percent", "Swap in use, percent.", MetricType::Gauge);
    Add(&swap, s->swap_percent);
    out.push_back(std::move(swap));
  }
  auto disk = Family("pokemon_speedrun_system_disk_percent",
                     "Disk space in use per configured path, percent (as df).", MetricType::Gauge);
  auto disk_used = Family("pokemon_speedrun_system_disk_used_bytes",
                          "Disk space in use per configured path, bytes.", MetricType::Gauge);
  for (const auto& d : s->disks) {
    if (!d.ok) continue;  // an unreadable path is absent, not a false 0
    Add(&disk, d.percent, {{"path", d.path}});
    Add(&disk_used, static_cast<double>(d.used), {{"path", d.path}});
  }
  if (!disk.metric.empty()) {
    out.push_back(std::move(disk));
    out.push_back(std::move(disk_used));
  }
  if (s->load_ok) {
    auto load = Family("pokemon_speedrun_system_load_average",
                       "Load average over the window in the label.", MetricType::Gauge);
    Add(&load, s->load_average_1m, {{"window", "1m"}});
    Add(&load, s->load_average_5m, {{"window", "5m"}});
    Add(&load, s->load_average_15m, {{"window", "15m"}});
    out.push_back(std::move(load));
  }
  if (s->network_ok) {
    auto bytes = Family("pokemon_speedrun_system_network_bytes_total",
                        "Bytes through all interfaces but lo since boot.", MetricType::Counter);
    Add(&bytes, static_cast<double>(s->bytes_sent), {{"direction", "sent"}});
    Add(&bytes, static_cast<double>(s->bytes_recv), {{"direction", "received"}});
    out.push_back(std::move(bytes));
  }
  if (s->processes_ok) {
    auto procs =
        Family("pokemon_speedrun_system_processes", "Processes on the host.", MetricType::Gauge);
    Add(&procs, static_cast<double>(s->process_count));
    out.push_back(std::move(procs));
  }
  if (s->uptime_ok) {
    auto up = Family("pokemon_speedrun_system_uptime_seconds", "Host uptime.", MetricType::Gauge);
    Add(&up, s->uptime_seconds);
    out.push_back(std::move(up));
  }

  if (!processes_.empty()) {
    SampleProcesses();
    auto up = Family("pokemon_speedrun_process_up",
                     "1 when the watched process is running, else 0.", MetricType::Gauge);
    auto cpu = Family("pokemon_speedrun_process_cpu_seconds_total",
                      "CPU time of the watched process (user + system).", MetricType::Counter);
    auto rss = Family("pokemon_speedrun_process_resident_memory_bytes",
                      "Resident memory of the watched process.", MetricType::Gauge);
    auto vms = Family("pokemon_speedrun_process_virtual_memory_bytes",
                      "Virtual memory of the watched process.", MetricType::Gauge);
    auto fds = Family("pokemon_speedrun_process_open_fds",
                      "Open file descriptors of the watched process.", MetricType::Gauge);
    auto threads = Family("pokemon_speedrun_process_threads", "Threads of the watched process.",
                          MetricType::Gauge);
    auto restarts = Family("pokemon_speedrun_process_restarts_total",
                           "Times the watched process was replaced (new pid or start time).",
                           MetricType::Counter);
    for (const auto& p : processes_) {
      std::vector<ClientMetric::Label> l = {{"process", p.name}};
      Add(&up, p.last.found ? 1 : 0, l);
      Add(&restarts, static_cast<double>(p.last.restarts), l);
      if (!p.last.found) continue;
      Add(&cpu, p.last.cpu_seconds, l);
      Add(&rss, static_cast<double>(p.last.resident_bytes), l);
      Add(&vms, static_cast<double>(p.last.virtual_bytes), l);
      if (p.last.open_fds >= 0) Add(&fds, static_cast<double>(p.last.open_fds), l);
      Add(&threads, static_cast<double>(p.last.threads), l);
    }
    for (MetricFamily* f : {&up, &cpu, &rss, &vms, &fds, &threads, &restarts}) {
      if (!f->metric.empty()) out.push_back(std::move(*f));
    }
  }

  // speedmon's own, under the standard names every Prometheus client exports.
  if (auto self = self_.Sample()) {
    auto cpu = Family("process_cpu_seconds_total",
                      "Total user and system CPU time spent in seconds.", MetricType::Counter);
    Add(&cpu, self->cpu_seconds);
    out.push_back(std::move(cpu));
    auto rss = Family("process_resident_memory_bytes", "Resident memory size in bytes.",
                      MetricType::Gauge);
    Add(&rss, static_cast<double>(self->resident_bytes));
    out.push_back(std::move(rss));
    auto vms =
        Family("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge);
    Add(&vms, static_cast<double>(self->virtual_bytes));
    out.push_back(std::move(vms));
    if (self->open_fds >= 0) {
      auto fds = Family("process_open_fds", "Number of open file descriptors.", MetricType::Gauge);
      Add(&fds, static_cast<double>(self->open_fds));
      out.push_back(std::move(fds));
    }
    if (self->max_fds >= 0) {
      auto mx =
          Family("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge);
      Add(&mx, static_cast<double>(self->max_fds));
      out.push_back(std::move(mx));
    }
    auto start =
        Family("process_start_time_seconds",
               "Start time of the process since unix epoch in seconds.", MetricType::Gauge);
    Add(&start, self->start_time);
    out.push_back(std::move(start));
    auto threads =
        Family("process_threads", "Number of OS threads in the process.", MetricType::Gauge);
    Add(&threads, static_cast<double>(self->threads));
    out.push_back(std::move(threads));
  }
  return out;
}

}  // namespace speedmon::metrics
