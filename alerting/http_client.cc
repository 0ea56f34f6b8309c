// Blocking HTTP/1.1 client (see http_client.h). Sender threads and tests.
#include "alerting/http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/strings.h"

namespace speedmon::alerting {
namespace {

using Clock = std::chrono::steady_clock;

using Parse = ResponseParse;

// Decodes a chunked body starting at `data`. kNeedMore until the last chunk and the
// end of the trailers have arrived.
Parse Dechunk(std::string_view data, std::string* out) {
  out->clear();
  size_t pos = 0;
  while (true) {
    size_t eol = data.find("\r\n", pos);
    if (eol == std::string_view::npos) return Parse::kNeedMore;
    std::string_view line = data.substr(pos, eol - pos);
    line = line.substr(0, line.find(';'));
    line = base::TrimSpaceTab(line);
    if (line.empty() || line.size() > 15) return Parse::kBad;
    size_t size = 0;
    for (char c : line) {
      int d = (c >= '0' && c <= '9')   ? c - '0'
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                       : -1;
      if (d < 0) return Parse::kBad;
      size = size * 16 + static_cast<size_t>(d);
    }
    pos = eol + 2;
    if (size == 0) {
      // Trailers (usually none) end with an empty line.
      if (data.substr(pos, 2) == "\r\n") return Parse::kDone;
      return data.find("\r\n\r\n", pos) == std::string_view::npos ? Parse::kNeedMore : Parse::kDone;
    }
    if (data.size() < pos + size + 2) return Parse::kNeedMore;
    if (data.substr(pos + size, 2) != "\r\n") return Parse::kBad;
    out->append(data.substr(pos, size));
    pos += size + 2;
  }
}

}  // namespace

Parse ParseHttpResponse(const std::string& buf, bool eof, HttpResponse* out) {
  size_t head_end = buf.find("\r\n\r\n");
  if (head_end == std::string::npos) return eof ? Parse::kBad : Parse::kNeedMore;
  std::string_view head(buf.data(), head_end);
  size_t eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[8] != ' ') {
    return Parse::kBad;
  }
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (status_line[i] < '0' || status_line[i] > '9') return Parse::kBad;
    status = status * 10 + (status_line[i] - '0');
  }
  bool chunked = false;
  std::optional<size_t> content_length;
  size_t pos = eol == std::string_view::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    size_t next = head.find("\r\n", pos);
    if (next == std::string_view::npos) next = head.size();
    std::string_view line = head.substr(pos, next - pos);
    pos = next + 2;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = base::TrimSpaceTab(line.substr(0, colon));
    std::string_view value = base::TrimSpaceTab(line.substr(colon + 1));
    if (base::EqualsIgnoreCase(name, "transfer-encoding") &&
        base::EqualsIgnoreCase(value, "chunked"))
      chunked = true;
    if (base::EqualsIgnoreCase(name, "content-length")) {
      size_t n = 0;
      if (value.empty() || value.size() > 12) return Parse::kBad;
      for (char c : value) {
        if (c < '0' || c > '9') return Parse::kBad;
        n = n * 10 + static_cast<size_t>(c - '0');
      }
      content_length = n;
    }
  }
  out->status = status;
  std::string_view rest(buf.data() + head_end + 4, buf.size() - head_end - 4);
  if (status == 204 || status == 304 || (status >= 100 && status < 200)) {
    out->body.clear();
    return Parse::kDone;
  }
  if (chunked) {
    Parse p = Dechunk(rest, &out->body);
    if (p == Parse::kNeedMore && eof) return Parse::kBad;
    return p;
  }
  if (content_length) {
    if (rest.size() < *content_length) return eof ? Parse::kBad : Parse::kNeedMore;
    out->body.assign(rest.substr(0, *content_length));
    return Parse::kDone;
  }
  if (!eof) return Parse::kNeedMore;
  out->body.assign(rest);
  return Parse::kDone;
}

namespace {

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(left.count());
}

std::string Errno(const char* what, int err) { return std::string(what) + ": " + strerror(err); }

constexpr int kCancelled = -2;

// Waits for `events` on fd until the deadline: 1 ready, 0 timed out, -1 poll failed,
// kCancelled when cancel_fd (if any) became readable first.
int WaitFor(int fd, short events, Clock::time_point deadline, int cancel_fd) {
  pollfd p[2] = {{fd, events, 0}, {cancel_fd, POLLIN, 0}};
  int n = poll(p, cancel_fd >= 0 ? 2 : 1, RemainingMs(deadline));
  if (n > 0 && cancel_fd >= 0 && (p[1].revents & POLLIN)) return kCancelled;
  return n > 0 ? 1 : n;
}

// A connected non-blocking socket, or -1 with *error set.
int Connect(const config::Address& to, Clock::time_point deadline, int cancel_fd,
            std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(to.port);
  int rc = getaddrinfo(to.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    *error = "resolve " + to.host + ": " + gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      *error = Errno("socket", errno);
      continue;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
    if (errno == EINPROGRESS) {
      int n = WaitFor(fd, POLLOUT, deadline, cancel_fd);
      if (n == 1) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0) break;
        *error = Errno("connect", err);
      } else {
        *error = n == 0            ? "connect: timed out"
                 : n == kCancelled ? "cancelled"
                                   : Errno("poll", errno);
      }
    } else {
      *error = Errno("connect", errno);
    }
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  return fd;
}

}  // namespace

HttpResponse HttpRequest(const config::Address& to, std::string_view method, std::string_view path,
                         std::string_view body, std::chrono::milliseconds timeout, int cancel_fd) {
  HttpResponse response;
  const auto deadline = Clock::now() + timeout;
  int fd = Connect(to, deadline, cancel_fd, &response.error);
  if (fd < 0) return response;

  std::string request;
  request.reserve(256 + body.size());
  request.append(method).append(" ").append(path.empty() ? "/" : path).append(" HTTP/1.1\r\n");
  request.append("Host: ").append(to.ToString()).append("\r\n");
  request.append("User-Agent: speedmon\r\nConnection: close\r\nAccept: application/json\r\n");
  if (!body.empty() || method == "POST" || method == "PUT") {
    request.append("Content-Type: application/json\r\n");
    request.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  request.append("\r\n").append(body);

  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int r = WaitFor(fd, POLLOUT, deadline, cancel_fd);
      if (r == 1) continue;
      response.error = r == 0            ? "send: timed out"
                       : r == kCancelled ? "cancelled"
                                         : Errno("poll", errno);
    } else {
      response.error = Errno("send", errno);
    }
    close(fd);
    return response;
  }

  std::string buf;
  char chunk[16384];
  while (true) {
    ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n > 0) {
      buf.append(chunk, static_cast<size_t>(n));
      if (buf.size() > kMaxResponseBytes) {
        response.error = "response larger than 4 MiB";
        break;
      }
      Parse p = ParseHttpResponse(buf, false, &response);
      if (p == Parse::kDone) break;
      if (p == Parse::kBad) {
        response.error = "malformed response";
        break;
      }
      continue;
    }
    if (n == 0) {
      if (ParseHttpResponse(buf, true, &response) != Parse::kDone) {
        response.error = buf.empty() ? "connection closed without a response"
                                     : "malformed or truncated response";
      }
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      int r = WaitFor(fd, POLLIN, deadline, cancel_fd);
      if (r == 1) continue;
      response.error = r == 0            ? "read: timed out"
                       : r == kCancelled ? "cancelled"
                                         : Errno("poll", errno);
      break;
    }
    response.error = Errno("recv", errno);
    break;
  }
  close(fd);
  if (!response.error.empty()) response.status = 0;
  return response;
}

}  // namespace speedmon::alerting
