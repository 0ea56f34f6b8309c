// Sender threads, queues and back-off (see notifier.h).
#include "alerting/notifier.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "base/boundary.h"
#include "base/log.h"

namespace speedmon::alerting {
namespace {

using Clock = std::chrono::steady_clock;

bool Retryable(const base::StatusOr<HttpResponse>& r) {
  return !r.ok() || r->status >= 500 || r->status == 408 || r->status == 429;
}

}  // namespace

Notifier::Notifier(NotifierOptions options) : options_(std::move(options)) {
  if (!options_.log) {
    options_.log = [](const std::string& line) { base::LogWarning(line); };
  }
  options_.max_pending = std::max<size_t>(options_.max_pending, 1);
  options_.max_batch = std::max<size_t>(options_.max_batch, 1);
}

base::StatusOr<std::shared_ptr<Notifier>> Notifier::Create(const std::vector<TargetConfig>& targets,
                                                           NotifierOptions options) {
  std::shared_ptr<Notifier> n(new Notifier(std::move(options)));
  for (const auto& tc : targets) {
    auto t = std::make_unique<Target>();
    t->config = tc;
    base::StatusOr<config::HttpUrl> url = config::ParseHttpUrl(tc.url);
    if (!url.ok()) {
      return url.status().WithContext(
          std::string(tc.kind == TargetKind::kAlertmanager ? "alertmanager" : "webhook") +
          " URL \"" + tc.url + "\"");
    }
    std::string_view path = url->path;
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    t->url = *url;
    t->url.path = tc.kind == TargetKind::kAlertmanager ? std::string(path) + "/api/v2/alerts"
                                                       : (path.empty() ? "/" : std::string(path));
    t->stats.target = tc.url;
    t->stats.kind = tc.kind;
    n->targets_.push_back(std::move(t));
  }
  // libcurl is loaded only when there is something to send to (see http_client.cc).
  if (!n->targets_.empty()) {
    if (base::Status curl = InitHttpClient(); !curl.ok()) return curl;
  }
  for (auto& t : n->targets_) {
    Target* raw = t.get();
    if (pipe2(t->cancel, O_NONBLOCK | O_CLOEXEC) != 0) t->cancel[0] = t->cancel[1] = -1;
    t->thread = std::thread([n = n.get(), raw] {
      base::Guard(base::Component::kNotifier, "notifier thread", [&] { n->Run(raw); });
    });
  }
  return n;
}

Notifier::~Notifier() { Stop(); }

void Notifier::Stop() {
  for (auto& t : targets_) {
    std::lock_guard<std::mutex> lock(t->mu);
    t->stop = true;
    t->cv.notify_all();
    // A request in flight to a target that hangs ends now, not at its timeout: stopping
    // (SIGTERM, a reload) must never wait on a peer.
    if (t->cancel[1] >= 0) {
      char b = 1;
      [[maybe_unused]] ssize_t n = write(t->cancel[1], &b, 1);
    }
  }
  for (auto& t : targets_) {
    if (t->thread.joinable()) t->thread.join();
    for (int& fd : t->cancel) {
      if (fd >= 0) close(fd);
      fd = -1;
    }
  }
}

void Notifier::Enqueue(Target* t, AlertNotice n, bool front) {
  auto same = std::find_if(t->queue.begin(), t->queue.end(),
                           [&n](const AlertNotice& q) { return q.fingerprint == n.fingerprint; });
  if (same != t->queue.end()) {
    if (front) return;  // a newer notice for this alert is already waiting
    t->queue.erase(same);
  }
  if (front) {
    t->queue.push_front(std::move(n));
  } else {
    t->queue.push_back(std::move(n));
  }
  while (t->queue.size() > options_.max_pending) {
    t->queue.pop_front();
    ++t->stats.dropped;
  }
}

void Notifier::Send(const std::vector<AlertNotice>& notices) {
  if (notices.empty()) return;
  for (auto& t : targets_) {
    std::lock_guard<std::mutex> lock(t->mu);
    bool added = false;
    for (const auto& n : notices) {
      if (t->config.kind == TargetKind::kWebhook && !n.transition) continue;
      Enqueue(t.get(), n, false);
      added = true;
    }
    if (added) t->cv.notify_all();
  }
}

void Notifier::Run(Target* t) {
  int failures_in_a_row = 0;
  Clock::time_point retry_at{};
  std::unique_lock<std::mutex> lock(t->mu);
  while (true) {
    t->cv.wait(lock, [t] { return t->stop || !t->queue.empty(); });
    if (t->stop) break;
    if (Clock::now() < retry_at) {
      t->cv.wait_until(lock, retry_at, [t] { return t->stop; });
      continue;
    }
    size_t take = std::min(t->queue.size(), options_.max_batch);
    std::vector<AlertNotice> batch(std::make_move_iterator(t->queue.begin()),
                                   std::make_move_iterator(t->queue.begin() + take));
    t->queue.erase(t->queue.begin(), t->queue.begin() + take);
    t->in_flight = true;
    lock.unlock();

    base::StatusOr<HttpResponse> r = base::InternalError("not sent");
    base::Guard(
        base::Component::kNotifier, "notifier",
        [&] {
          std::string body = t->config.kind == TargetKind::kAlertmanager
                                 ? AlertmanagerBody(batch)
                                 : WebhookBody(batch, options_.external_url);
          r = HttpRequest(t->url, "POST", body, t->config.timeout, t->config.http, t->cancel[0]);
        },
        [&] { r = base::InternalError("internal error"); });
    const bool delivered = r.ok() && r->status >= 200 && r->status < 300;
    std::string message;
    if (delivered) {
      if (failures_in_a_row > 0) {
        message = "alerting: " + t->config.url + " reachable again after " +
                  std::to_string(failures_in_a_row) + " failed attempts";
      }
      failures_in_a_row = 0;
      retry_at = {};
    } else if (Retryable(r)) {
      ++failures_in_a_row;
      auto backoff = options_.initial_backoff;
      for (int i = 1; i < failures_in_a_row && backoff < options_.max_backoff; ++i) backoff *= 2;
      backoff = std::min(backoff, options_.max_backoff);
      retry_at = Clock::now() + backoff;
      if (failures_in_a_row == 1) {  // once per outage, not once per retry
        message = "alerting: sending to " + t->config.url + " failed (" +
                  (r.ok() ? "HTTP " + std::to_string(r->status) : r.status().message()) +
                  "); retrying with back-off";
      }
    } else {
      message = "alerting: " + t->config.url + " refused " + std::to_string(batch.size()) +
                " alerts with HTTP " + std::to_string(r->status) + ": " + r->body.substr(0, 200);
    }
    if (!message.empty()) options_.log(message);

    lock.lock();
    t->in_flight = false;
    if (delivered) {
      t->stats.sent += batch.size();
    } else {
      t->stats.failed += batch.size();
      if (Retryable(r)) {
        for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
          Enqueue(t, std::move(*it), true);
        }
      }
    }
    t->cv.notify_all();
  }
}

std::vector<TargetStats> Notifier::Stats() const {
  std::vector<TargetStats> out;
  for (const auto& t : targets_) {
    std::lock_guard<std::mutex> lock(t->mu);
    TargetStats s = t->stats;
    s.queued = t->queue.size();
    out.push_back(std::move(s));
  }
  return out;
}

bool Notifier::WaitIdle(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (auto& t : targets_) {
    std::unique_lock<std::mutex> lock(t->mu);
    if (!t->cv.wait_until(lock, deadline, [&t] { return t->queue.empty() && !t->in_flight; })) {
      return false;
    }
  }
  return true;
}

}  // namespace speedmon::alerting
