// Outbound HTTP through libcurl (see http_client.h). Sender threads and tests.
//
// Each request gets its own easy handle inside its own multi handle: the multi interface
// is what lets the wait include the cancel pipe (curl_multi_poll's extra_fds), and
// nothing is shared between threads, so no locks and no connection cache to reason about
// (notices are rare; one connection per request, as before).
#include "alerting/http_client.h"

#include <curl/curl.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace speedmon::alerting {
namespace {

// CURLOPT_QUICK_EXIT (7.87.0) and CURLOPT_PROTOCOLS_STR (7.85.0) are needed below.
static_assert(LIBCURL_VERSION_NUM >= 0x075700, "libcurl 7.87.0 or newer is required");

using Clock = std::chrono::steady_clock;

// libcurl is opened with dlopen on first use instead of being linked. Linked, it brings
// about 29 shared libraries (OpenSSL, GnuTLS, Kerberos, LDAP, ...) into every speedmon,
// some 7 MB of resident memory, while most configurations name no notice target and
// never send a request. The table holds the libcurl functions this file calls; their
// types come from curl.h, so a call through it is checked as a direct call would be.
struct CurlLib {
  decltype(&curl_global_init) global_init;
  decltype(&curl_easy_init) easy_init;
  decltype(&curl_easy_cleanup) easy_cleanup;
  decltype(&curl_easy_setopt) easy_setopt;
  decltype(&curl_easy_getinfo) easy_getinfo;
  decltype(&curl_easy_strerror) easy_strerror;
  decltype(&curl_multi_init) multi_init;
  decltype(&curl_multi_cleanup) multi_cleanup;
  decltype(&curl_multi_add_handle) multi_add_handle;
  decltype(&curl_multi_remove_handle) multi_remove_handle;
  decltype(&curl_multi_perform) multi_perform;
  decltype(&curl_multi_poll) multi_poll;
  decltype(&curl_multi_info_read) multi_info_read;
  decltype(&curl_multi_strerror) multi_strerror;
  decltype(&curl_slist_append) slist_append;
  decltype(&curl_slist_free_all) slist_free_all;
};

const CurlLib* g_lib = nullptr;  // set once by InitHttpClient, then read-only

const CurlLib& Lib() { return *g_lib; }

// Opens libcurl.so.4 and binds the table; the error names what is missing.
base::StatusOr<const CurlLib*> OpenCurl() {
  void* handle = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    return base::UnavailableError(std::string("cannot load libcurl: ") + (why ? why : "?"));
  }
  static CurlLib api;
  std::string missing;
  auto Bind = [&](auto* slot, const char* name) {
    void* symbol = dlsym(handle, name);
    if (symbol == nullptr) missing = name;
    *slot = reinterpret_cast<std::remove_pointer_t<decltype(slot)>>(symbol);
    return symbol != nullptr;
  };
  bool bound =
      Bind(&api.global_init, "curl_global_init") && Bind(&api.easy_init, "curl_easy_init") &&
      Bind(&api.easy_cleanup, "curl_easy_cleanup") && Bind(&api.easy_setopt, "curl_easy_setopt") &&
      Bind(&api.easy_getinfo, "curl_easy_getinfo") &&
      Bind(&api.easy_strerror, "curl_easy_strerror") && Bind(&api.multi_init, "curl_multi_init") &&
      Bind(&api.multi_cleanup, "curl_multi_cleanup") &&
      Bind(&api.multi_add_handle, "curl_multi_add_handle") &&
      Bind(&api.multi_remove_handle, "curl_multi_remove_handle") &&
      Bind(&api.multi_perform, "curl_multi_perform") && Bind(&api.multi_poll, "curl_multi_poll") &&
      Bind(&api.multi_info_read, "curl_multi_info_read") &&
      Bind(&api.multi_strerror, "curl_multi_strerror") &&
      Bind(&api.slist_append, "curl_slist_append") &&
      Bind(&api.slist_free_all, "curl_slist_free_all") && true;
  if (!bound) return base::UnavailableError("libcurl.so.4 has no " + missing);
  return &api;
}

struct Sink {
  std::string body;
  bool too_large = false;
};

// CURLOPT_WRITEFUNCTION: appends up to kMaxResponseBytes; returning less than given
// makes curl end the transfer with CURLE_WRITE_ERROR. Never throws (a C callback):
// append could only fail on memory, and the bound keeps that at 4 MiB.
size_t WriteBody(char* data, size_t size, size_t count, void* user) noexcept {
  auto* sink = static_cast<Sink*>(user);
  size_t n = size * count;
  if (n > kMaxResponseBytes - sink->body.size()) {
    sink->too_large = true;
    return 0;
  }
  try {
    sink->body.append(data, n);
  } catch (...) {
    return 0;
  }
  return n;
}

// The handles of one request, released in the order curl asks for.
struct Handles {
  CURLM* multi = Lib().multi_init();
  CURL* easy = Lib().easy_init();
  curl_slist* headers = nullptr;
  curl_slist* connect_to = nullptr;
  bool added = false;
  ~Handles() {
    if (added) Lib().multi_remove_handle(multi, easy);
    if (easy != nullptr) Lib().easy_cleanup(easy);
    if (multi != nullptr) Lib().multi_cleanup(multi);
    Lib().slist_free_all(headers);
    Lib().slist_free_all(connect_to);
  }
};

bool Append(curl_slist** list, const std::string& line) {
  curl_slist* next = Lib().slist_append(*list, line.c_str());
  if (next == nullptr) return false;
  *list = next;
  return true;
}

std::string Ms(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

// What failed, in the words of the old client where it had them ("connect: Connection
// refused", "read: timed out ...") and with curl's own detail for the rest.
std::string Describe(CURLcode code, CURL* easy, const char* errbuf, const Sink& sink,
                     const config::HttpUrl& url, std::chrono::milliseconds timeout) {
  std::string detail = errbuf[0] != '\0' ? errbuf : Lib().easy_strerror(code);
  long os_errno = 0;
  Lib().easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
  auto with_errno = [&](const char* what) {
    return std::string(what) + ": " +
           (os_errno != 0 ? std::strerror(static_cast<int>(os_errno)) : detail);
  };
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
      return "resolve " + url.address.host + ": failed (" + detail + ")";
    case CURLE_COULDNT_CONNECT:
      return with_errno("connect");
    case CURLE_OPERATION_TIMEDOUT: {
      curl_off_t connected = 0, handshaken = 0;
      Lib().easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connected);
      Lib().easy_getinfo(easy, CURLINFO_APPCONNECT_TIME_T, &handshaken);
      if (std::strncmp(errbuf, "Resolving timed out", 19) == 0) {
        return "resolve " + url.address.host + ": timed out after " + Ms(timeout);
      }
      if (connected == 0) return "connect: timed out after " + Ms(timeout);
      if (url.tls && handshaken == 0) return "TLS: handshake timed out after " + Ms(timeout);
      return "read: timed out after " + Ms(timeout);
    }
    case CURLE_PEER_FAILED_VERIFICATION:
      return "TLS: certificate verify failed: " + detail;
    case CURLE_SSL_CONNECT_ERROR:
      return "TLS: handshake failed: " + detail;
    case CURLE_SSL_CERTPROBLEM:
      return "TLS: client certificate: " + detail;
    case CURLE_SSL_CACERT_BADFILE:
      return "TLS: CA file: " + detail;
    case CURLE_GOT_NOTHING:
      return "connection closed without a response";
    case CURLE_FILESIZE_EXCEEDED:
      return "response larger than 4 MiB";
    case CURLE_WRITE_ERROR:
      return sink.too_large ? "response larger than 4 MiB" : "write: " + detail;
    case CURLE_SEND_ERROR:
      return with_errno("send");
    case CURLE_RECV_ERROR:
      return with_errno("recv");
    case CURLE_PARTIAL_FILE:
      return "truncated response: " + detail;
    case CURLE_WEIRD_SERVER_REPLY:
      return "malformed response: " + detail;
    default:
      return std::string(Lib().easy_strerror(code)) + ": " + detail;
  }
}

}  // namespace

base::Status InitHttpClient() {
  // Opening libcurl and curl_global_init, which sets up libcurl's and OpenSSL's process-
  // wide state, happen once; the function-local static makes every later call return the
  // first result. curl_global_init is thread-safe in the libcurl this needs (7.87.0 and
  // newer report CURL_VERSION_THREADSAFE), so the first notifier may start while the
  // proxy's threads run; none of them uses curl or OpenSSL.
  static const base::Status status = [] {
    base::StatusOr<const CurlLib*> lib = OpenCurl();
    if (!lib.ok()) return lib.status();
    CURLcode rc = (*lib)->global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
      return base::InternalError(std::string("curl_global_init: ") + (*lib)->easy_strerror(rc));
    }
    g_lib = *lib;
    return base::OkStatus();
  }();
  return status;
}

base::StatusOr<HttpResponse> HttpRequest(const config::HttpUrl& url, std::string_view method,
                                         std::string_view body, std::chrono::milliseconds timeout,
                                         const config::HttpClientConfig& client, int cancel_fd) {
  if (base::Status init = InitHttpClient(); !init.ok()) return init;
  Handles h;
  if (h.multi == nullptr || h.easy == nullptr) return base::InternalError("curl: out of memory");
  CURL* e = h.easy;
  char errbuf[CURL_ERROR_SIZE] = "";
  Sink sink;

  // With tls_server_name the URL names that host, so curl sends it as SNI and checks the
  // certificate against it, while CURLOPT_CONNECT_TO sends the connection to the
  // configured address and the Host header still names it.
  const std::string authority = url.address.ToString();
  std::string url_text;
  if (url.tls && !client.tls_server_name.empty()) {
    std::string named = client.tls_server_name + ":" + std::to_string(url.address.port);
    url_text = "https://" + named + url.path;
    if (!Append(&h.connect_to, named + ":" + authority) ||
        !Append(&h.headers, "Host: " + authority)) {
      return base::InternalError("curl: out of memory");
    }
  } else {
    url_text = url.ToString();
  }
  bool sends_body = !body.empty() || method == "POST" || method == "PUT";
  for (const char* line :
       {"User-Agent: speedmon", "Accept: application/json", "Connection: close", "Expect:"}) {
    if (!Append(&h.headers, line)) return base::InternalError("curl: out of memory");
  }
  if (sends_body && !Append(&h.headers, "Content-Type: application/json")) {
    return base::InternalError("curl: out of memory");
  }
  if (!client.bearer_token.empty() &&
      !Append(&h.headers, "Authorization: Bearer " + client.bearer_token)) {
    return base::InternalError("curl: out of memory");
  }

  const std::string method_text(method);
  CURLcode rc = CURLE_OK;
  auto set = [&rc, e](CURLoption option, auto value) {
    if (rc == CURLE_OK) rc = Lib().easy_setopt(e, option, value);
  };
  set(CURLOPT_URL, url_text.c_str());
  set(CURLOPT_PROTOCOLS_STR, "http,https");
  set(CURLOPT_ERRORBUFFER, errbuf);
  // No signals: SIGALRM-based DNS timeouts are not thread-safe, and the sender threads
  // are threads. Without them the deadline still covers resolving, because Debian's
  // libcurl uses its threaded resolver (`curl-config --features` lists AsynchDNS, and
  // no c-ares): getaddrinfo runs on a helper thread while this one keeps polling the
  // timer. QUICK_EXIT makes curl detach that helper instead of joining it when the
  // deadline passes or the request is cancelled mid-lookup; otherwise ending the handle
  // would wait for getaddrinfo itself (its own timeouts: seconds, per server and try).
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_QUICK_EXIT, 1L);
  // 0 would mean "no timeout" to curl; the config allows at least 1 ms anyway.
  const long timeout_ms = std::max<long>(static_cast<long>(timeout.count()), 1);
  set(CURLOPT_TIMEOUT_MS, timeout_ms);
  set(CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  set(CURLOPT_FOLLOWLOCATION, 0L);
  set(CURLOPT_PROXY, "");  // http_proxy and friends in the environment are not for us
  set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(kMaxResponseBytes));
  set(CURLOPT_WRITEFUNCTION, &WriteBody);
  set(CURLOPT_WRITEDATA, &sink);
  set(CURLOPT_HTTPHEADER, h.headers);
  if (h.connect_to != nullptr) set(CURLOPT_CONNECT_TO, h.connect_to);
  if (method == "GET") {
    set(CURLOPT_HTTPGET, 1L);
  } else {
    if (method != "POST") set(CURLOPT_CUSTOMREQUEST, method_text.c_str());
    if (sends_body) {
      set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
      set(CURLOPT_POSTFIELDS, body.data());
    }
  }
  if (url.tls) {
    set(CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
    set(CURLOPT_SSL_VERIFYPEER, client.tls_insecure_skip_verify ? 0L : 1L);
    set(CURLOPT_SSL_VERIFYHOST, client.tls_insecure_skip_verify ? 0L : 2L);
    if (!client.tls_ca_file.empty()) {
      // The given bundle replaces the system's store, as tls_config's ca_file does.
      set(CURLOPT_CAINFO, client.tls_ca_file.c_str());
      set(CURLOPT_CAPATH, static_cast<const char*>(nullptr));
    }
    if (!client.tls_cert_file.empty()) {
      set(CURLOPT_SSLCERT, client.tls_cert_file.c_str());
      set(CURLOPT_SSLKEY, client.tls_key_file.c_str());
    }
  }
  if (!client.basic_auth_username.empty()) {
    set(CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    set(CURLOPT_USERNAME, client.basic_auth_username.c_str());
    set(CURLOPT_PASSWORD, client.basic_auth_password.c_str());
  }
  if (rc != CURLE_OK) {
    return base::InternalError(std::string("curl_easy_setopt: ") + Lib().easy_strerror(rc));
  }

  if (CURLMcode mc = Lib().multi_add_handle(h.multi, e); mc != CURLM_OK) {
    return base::InternalError(std::string("curl_multi_add_handle: ") + Lib().multi_strerror(mc));
  }
  h.added = true;
  // curl enforces CURLOPT_TIMEOUT_MS itself; this is only a backstop should it not.
  const auto backstop = Clock::now() + timeout + std::chrono::seconds(5);
  while (true) {
    int running = 0;
    if (CURLMcode mc = Lib().multi_perform(h.multi, &running); mc != CURLM_OK) {
      return base::InternalError(std::string("curl_multi_perform: ") + Lib().multi_strerror(mc));
    }
    if (running == 0) break;
    if (Clock::now() > backstop) {
      return base::UnavailableError("timed out after " + Ms(timeout));
    }
    curl_waitfd extra{cancel_fd, CURL_WAIT_POLLIN, 0};
    // Returns when a socket or the resolver is ready, when curl's next timer (the
    // deadline among them) is due, when cancel_fd is readable, or after 1 s at most.
    CURLMcode mc = Lib().multi_poll(h.multi, cancel_fd >= 0 ? &extra : nullptr,
                                    cancel_fd >= 0 ? 1u : 0u, 1000, nullptr);
    if (mc != CURLM_OK) {
      return base::InternalError(std::string("curl_multi_poll: ") + Lib().multi_strerror(mc));
    }
    if (extra.revents != 0) return base::UnavailableError("cancelled");
  }

  CURLcode result = CURLE_OK;
  int left = 0;
  while (CURLMsg* msg = Lib().multi_info_read(h.multi, &left)) {
    if (msg->msg == CURLMSG_DONE) result = msg->data.result;
  }
  if (result != CURLE_OK) {
    return base::UnavailableError(Describe(result, e, errbuf, sink, url, timeout));
  }
  long status = 0;
  Lib().easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  HttpResponse response;
  response.status = static_cast<int>(status);
  response.body = std::move(sink.body);
  return response;
}

}  // namespace speedmon::alerting
