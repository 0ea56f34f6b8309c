// Delivers alert notices to Alertmanagers (API v2) and webhooks without ever blocking
// the caller.
//
// Threads: Send, Stats and WaitIdle are called from the main thread (Stats also from a
// scrape); each target has its own sender thread, so a dead or slow target delays
// nobody else. Everything a sender thread shares is behind its target's mutex, which is
// never held during network I/O.
//
// Delivery, per target:
//   - Send() appends to the target's queue and returns. The queue holds at most
//     max_pending notices; a newer notice for the same alert (fingerprint) replaces the
//     queued one (only the latest state matters); beyond the bound the oldest is dropped
//     and counted as "dropped".
//   - The sender posts up to max_batch notices per request: Alertmanager gets
//     POST {url}/api/v2/alerts with AlertmanagerBody; a webhook gets POST {url} with
//     WebhookBody, and only transitions (fired, resolved), not the periodic re-sends.
//   - A 2xx answer counts each notice "sent". A transport error (resolve, connect, TLS,
//     a timeout, a response over kMaxResponseBytes), a 5xx, a 408
//     or a 429 counts each "failed" and keeps them queued; the target then backs off,
//     initial_backoff doubling up to max_backoff, and retries (newer notices wait behind
//     the back-off too). Any other answer (a 4xx: the payload itself is refused) counts
//     them "failed" and drops them, since repeating the same body cannot succeed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "alerting/http_client.h"
#include "alerting/payload.h"
#include "base/status.h"
#include "config/config.h"

namespace speedmon::alerting {

enum class TargetKind { kAlertmanager, kWebhook };

struct TargetConfig {
  TargetKind kind = TargetKind::kAlertmanager;
  std::string url;                 // "http://127.0.0.1:9093" (Alertmanager base) or the webhook URL
  config::Duration timeout{2000};  // resolve + connect + TLS + send + receive, per request
  config::HttpClientConfig http;   // TLS and auth (secrets already read from their files)
  bool operator==(const TargetConfig&) const = default;
};

struct NotifierOptions {
  size_t max_pending = 1024;  // notices queued per target
  size_t max_batch = 64;      // notices per request
  config::Duration initial_backoff{500};
  config::Duration max_backoff{30000};
  std::string external_url = "http://127.0.0.1:8000";  // the webhook's externalURL
  std::function<void(const std::string&)> log;         // default: stderr
};

struct TargetStats {
  std::string target;  // the URL as configured: the `target` label
  TargetKind kind = TargetKind::kAlertmanager;
  uint64_t sent = 0;     // notices delivered (2xx)
  uint64_t failed = 0;   // notices in failed attempts (each retry counts again)
  uint64_t dropped = 0;  // notices pushed out of a full queue
  size_t queued = 0;     // notices waiting now
};

class Notifier {
 public:
  // Starts one sender thread per target. When a URL does not parse with
  // config::ParseHttpUrl (which config::Load ran on the configured ones), its status with
  // the target in front: kInvalidArgument "alertmanager URL \"x\": only http:// and
  // https:// URLs are supported", field "url".
  static base::StatusOr<std::shared_ptr<Notifier>> Create(const std::vector<TargetConfig>& targets,
                                                          NotifierOptions options);
  // Stops and joins the sender threads (waiting at most one request timeout each);
  // whatever is still queued is abandoned (call WaitIdle first to drain). Idempotent;
  // Stats stay readable afterwards. The destructor calls it.
  void Stop();
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Queues the notices for every target. Never blocks on the network.
  void Send(const std::vector<AlertNotice>& notices);

  std::vector<TargetStats> Stats() const;

  // Waits until every queue is empty and no request is in flight, at most `timeout`.
  // True when idle. (A target that is down stays busy: this then returns false.)
  bool WaitIdle(std::chrono::milliseconds timeout);

 private:
  struct Target {
    TargetConfig config;
    config::HttpUrl url;  // path: the request target, "/api/v2/alerts" appended for Alertmanager
    mutable std::mutex mu;
    std::condition_variable cv;
    std::deque<AlertNotice> queue;
    bool stop = false;
    bool in_flight = false;
    int cancel[2] = {-1, -1};  // a pipe: Stop() writes to end a request in flight
    TargetStats stats;
    std::thread thread;
  };

  explicit Notifier(NotifierOptions options);
  void Run(Target* t);
  // REQUIRES: t->mu held. Adds n, replacing a queued notice with its fingerprint; at the
  // front (a retried batch) or the back (new). A retried notice loses to a newer one.
  void Enqueue(Target* t, AlertNotice n, bool front);

  NotifierOptions options_;
  std::vector<std::unique_ptr<Target>> targets_;
};

}  // namespace speedmon::alerting
