// Tests only: a tiny HTTP/1.1 server on 127.0.0.1 that records every request and answers
// with a chosen status. Real sockets, one accept thread, one request per connection.
//
// Thread: the test thread calls everything; the server thread only touches what is
// behind mu_.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace speedmon::alerting::testing {

class TestReceiver {
 public:
  struct Request {
    std::string method;
    std::string path;
    std::map<std::string, std::string> headers;  // names lower-cased
    std::string body;
  };

  // Listens on 127.0.0.1:port (0 = any free port). port() is 0 when bind failed.
  explicit TestReceiver(uint16_t port = 0) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        listen(listen_fd_, 64) != 0) {
      close(listen_fd_);
      listen_fd_ = -1;
      return;
    }
    socklen_t len = sizeof(addr);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    if (pipe(stop_pipe_) != 0) return;
    thread_ = std::thread([this] { Serve(); });
  }

  ~TestReceiver() {
    if (thread_.joinable()) {
      char c = 0;
      (void)!write(stop_pipe_[1], &c, 1);
      thread_.join();
    }
    if (stop_pipe_[0] >= 0) close(stop_pipe_[0]);
    if (stop_pipe_[1] >= 0) close(stop_pipe_[1]);
    if (listen_fd_ >= 0) close(listen_fd_);
  }

  uint16_t port() const { return port_; }
  std::string url(const std::string& path = "") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  void SetStatus(int status) {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = status;
  }

  std::vector<Request> Requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

  // True once at least n requests have arrived (waits at most `timeout`).
  bool WaitForRequests(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
  }

 private:
  void Serve() {
    while (true) {
      pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) continue;
      if (fds[1].revents) return;
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      Handle(fd);
      close(fd);
    }
  }

  void Handle(int fd) {
    std::string buf;
    char chunk[8192];
    size_t head_end = std::string::npos;
    size_t content_length = 0;
    while (true) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 5000) != 1) return;
      ssize_t n = read(fd, chunk, sizeof(chunk));
      if (n <= 0) return;
      buf.append(chunk, static_cast<size_t>(n));
      if (head_end == std::string::npos) {
        head_end = buf.find("\r\n\r\n");
        if (head_end == std::string::npos) continue;
        Request r = ParseHead(buf.substr(0, head_end));
        auto it = r.headers.find("content-length");
        if (it != r.headers.end()) content_length = std::stoul(it->second);
      }
      if (buf.size() >= head_end + 4 + content_length) break;
    }
    Request r = ParseHead(buf.substr(0, head_end));
    r.body = buf.substr(head_end + 4, content_length);
    int status;
    {
      // Recorded before answering: once the client has its answer, the test sees it.
      std::lock_guard<std::mutex> lock(mu_);
      status = status_;
      requests_.push_back(std::move(r));
    }
    cv_.notify_all();
    std::string response = "HTTP/1.1 " + std::to_string(status) +
                           " X\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                           "Connection: close\r\n\r\n{}";
    (void)!write(fd, response.data(), response.size());
  }

  static Request ParseHead(const std::string& head) {
    Request r;
    size_t eol = head.find("\r\n");
    std::string line = head.substr(0, eol);
    size_t sp1 = line.find(' ');
    size_t sp2 = line.find(' ', sp1 + 1);
    r.method = line.substr(0, sp1);
    r.path = line.substr(sp1 + 1, sp2 - sp1 - 1);
    size_t pos = eol == std::string::npos ? head.size() : eol + 2;
    while (pos < head.size()) {
      size_t next = head.find("\r\n", pos);
      if (next == std::string::npos) next = head.size();
      std::string h = head.substr(pos, next - pos);
      pos = next + 2;
      size_t colon = h.find(':');
      if (colon == std::string::npos) continue;
      std::string name = h.substr(0, colon);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      size_t v = h.find_first_not_of(' ', colon + 1);
      r.headers[name] = v == std::string::npos ? "" : h.substr(v);
    }
    return r;
  }

  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  int status_ = 200;
  std::vector<Request> requests_;
};

}  // namespace speedmon::alerting::testing
