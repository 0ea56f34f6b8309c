#include "http/http_message.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <utility>
#include <vector>

namespace speedmon::http {
namespace {

MessageHead Request(std::string_view method, std::string_view url, std::vector<Header> headers,
                    int minor = 1) {
  MessageHead h;
  h.method = method;
  h.url = url;
  h.version_minor = minor;
  h.keep_alive = minor == 1;
  h.headers = std::move(headers);
  return h;
}

MessageHead Response(int status, std::vector<Header> headers) {
  MessageHead h;
  h.status = status;
  h.headers = std::move(headers);
  return h;
}

MessageHead WithLength(MessageHead h, uint64_t n) {
  h.has_content_length = true;
  h.content_length = n;
  return h;
}

MessageHead Chunked(MessageHead h) {
  h.chunked = true;
  return h;
}

const ForwardInfo kInfo{"10.0.0.7", "req-1", "127.0.0.1:8081"};

// The rewritten upstream request head.
std::string Up(const MessageHead& req, Framing* framing = nullptr) {
  std::string out;
  Framing f = AppendUpstreamRequestHead(req, kInfo, &out);
  if (framing != nullptr) *framing = f;
  return out;
}

// The Date line's value is the current time: replaced by "<date>" once checked.
std::string MaskDate(std::string s) {
  static const std::regex kDate(
      "Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
      "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} "
      "GMT\r\n");
  return std::regex_replace(s, kDate, "Date: <date>\r\n");
}

// The response head sent to the client, Date masked.
std::string Down(const MessageHead& resp, bool head_request, int client_minor, bool keep_alive,
                 Framing* framing = nullptr) {
  std::string out;
  Framing f =
      AppendDownstreamResponseHead(resp, head_request, client_minor, keep_alive, "req-1", &out);
  if (framing != nullptr) *framing = f;
  return MaskDate(out);
}

// --- The request head sent upstream ---

TEST(UpstreamRequestHeadTest, PlainGetGetsViaForwardedForProtoAndRequestId) {
  Framing f = Framing::kChunked;
  EXPECT_EQ(Up(Request("GET", "/status", {{"Host", "emu"}, {"Accept", "*/*"}}), &f),
            "GET /status HTTP/1.1\r\n"
            "Host: emu\r\n"
            "Accept: */*\r\n"
            "Via: 1.1 speedmon\r\n"
            "X-Forwarded-For: 10.0.0.7\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Request-Id: req-1\r\n"
            "\r\n");
  EXPECT_EQ(f, Framing::kNone);
}

TEST(UpstreamRequestHeadTest, HopByHopHeadersAreRemoved) {
  std::string out = Up(Request("GET", "/a",
                               {{"Host", "emu"},
                                {"Connection", "keep-alive"},
                                {"Keep-Alive", "timeout=5"},
                                {"Proxy-Connection", "keep-alive"},
                                {"TE", "trailers"},
                                {"Trailer", "X-Sum"},
                                {"Upgrade", "h2c"},
                                {"Proxy-Authorization", "Basic eDp5"},
                                {"X-Kept", "1"}}));
  EXPECT_EQ(out,
            "GET /a HTTP/1.1\r\nHost: emu\r\nX-Kept: 1\r\nVia: 1.1 speedmon\r\n"
            "X-Forwarded-For: 10.0.0.7\r\nX-Forwarded-Proto: http\r\nX-Request-Id: req-1\r\n\r\n");
}

TEST(UpstreamRequestHeadTest, HeadersNamedByConnectionAreRemovedOnEveryConnectionLine) {
  std::string out = Up(Request("GET", "/a",
                               {{"Host", "emu"},
                                {"Connection", "close, X-Secret"},
                                {"X-Secret", "s"},
                                {"connection", " x-other\t"},
                                {"X-OTHER", "o"},
                                {"X-Kept", "k"}}));
  EXPECT_EQ(out,
            "GET /a HTTP/1.1\r\nHost: emu\r\nX-Kept: k\r\nVia: 1.1 speedmon\r\n"
            "X-Forwarded-For: 10.0.0.7\r\nX-Forwarded-Proto: http\r\nX-Request-Id: req-1\r\n\r\n");
}

TEST(UpstreamRequestHeadTest, ForwardedForIsExtendedAndProtoAndRequestIdReplaced) {
  std::string out = Up(Request("GET", "/a",
                               {{"Host", "emu"},
                                {"X-Forwarded-For", "203.0.113.9, 198.51.100.2"},
                                {"X-Forwarded-Proto", "https"},
                                {"X-Request-Id", "client-id"}}));
  EXPECT_EQ(out,
            "GET /a HTTP/1.1\r\nHost: emu\r\nVia: 1.1 speedmon\r\n"
            "X-Forwarded-For: 203.0.113.9, 198.51.100.2, 10.0.0.7\r\n"
            "X-Forwarded-Proto: http\r\nX-Request-Id: req-1\r\n\r\n");
}

TEST(UpstreamRequestHeadTest, SeveralForwardedForLinesAreOneListInTheirOrder) {
  std::string out = Up(Request("GET", "/a",
                               {{"X-Forwarded-For", "203.0.113.9"},
                                {"Host", "emu"},
                                {"x-forwarded-for", " 198.51.100.2, 192.0.2.1\t"},
                                {"X-Forwarded-For", ""}}));
  EXPECT_EQ(out,
            "GET /a HTTP/1.1\r\nHost: emu\r\nVia: 1.1 speedmon\r\n"
            "X-Forwarded-For: 203.0.113.9, 198.51.100.2, 192.0.2.1, 10.0.0.7\r\n"
            "X-Forwarded-Proto: http\r\nX-Request-Id: req-1\r\n\r\n");
}

TEST(UpstreamRequestHeadTest, AbsoluteFormBecomesOriginFormAndItsAuthorityTheHost) {
  std::string out =
      Up(Request("GET", "http://example.com:8080/a/b?c=1", {{"Host", "ignored"}, {"X", "y"}}));
  EXPECT_EQ(out,
            "GET /a/b?c=1 HTTP/1.1\r\nX: y\r\nHost: example.com:8080\r\nVia: 1.1 speedmon\r\n"
            "X-Forwarded-For: 10.0.0.7\r\nX-Forwarded-Proto: http\r\nX-Request-Id: req-1\r\n\r\n");
  // No path: "/" is supplied, also before a query.
  EXPECT_EQ(Up(Request("GET", "http://h", {})).substr(0, 20), "GET / HTTP/1.1\r\nHost");
  EXPECT_EQ(Up(Request("GET", "http://h?q=1", {})).substr(0, 25), "GET /?q=1 HTTP/1.1\r\nHost:");
}

TEST(UpstreamRequestHeadTest, Http10GetsViaOneZeroTheEndpointAsHostAndLosesExpect) {
  std::string out =
      Up(Request("POST", "/a", {{"Expect", "100-continue"}, {"Content-Length", "3"}}, 0));
  // Content-Length is re-framed by speedmon: it comes last, from the parsed value (none here).
  EXPECT_EQ(out,
            "POST /a HTTP/1.1\r\nHost: 127.0.0.1:8081\r\nVia: 1.0 speedmon\r\n"
            "X-Forwarded-For: 10.0.0.7\r\nX-Forwarded-Proto: http\r\nX-Request-Id: req-1\r\n\r\n");
  // HTTP/1.1 keeps Expect and its own Host.
  std::string kept = Up(Request("POST", "/a", {{"Host", "emu"}, {"Expect", "100-continue"}}));
  EXPECT_NE(kept.find("\r\nHost: emu\r\nExpect: 100-continue\r\n"), std::string::npos) << kept;
  EXPECT_EQ(kept.find("127.0.0.1:8081"), std::string::npos) << kept;
}

TEST(UpstreamRequestHeadTest, MaxForwardsOfOptionsAndTraceIsDecrementedOnly) {
  EXPECT_NE(Up(Request("OPTIONS", "*", {{"Max-Forwards", "3"}})).find("\r\nMax-Forwards: 2\r\n"),
            std::string::npos);
  EXPECT_NE(Up(Request("TRACE", "/", {{"Max-Forwards", " 10 "}})).find("\r\nMax-Forwards: 9\r\n"),
            std::string::npos);
  EXPECT_NE(Up(Request("GET", "/", {{"Max-Forwards", "3"}})).find("\r\nMax-Forwards: 3\r\n"),
            std::string::npos);
}

TEST(UpstreamRequestHeadTest, BodyFramingIsCarriedOver) {
  Framing f = Framing::kNone;
  std::string out = Up(WithLength(Request("POST", "/a", {{"Content-Length", "5"}}), 5), &f);
  EXPECT_EQ(f, Framing::kContentLength);
  EXPECT_TRUE(out.ends_with("X-Request-Id: req-1\r\nContent-Length: 5\r\n\r\n")) << out;

  out = Up(WithLength(Request("POST", "/a", {{"Content-Length", "0"}}), 0), &f);
  EXPECT_EQ(f, Framing::kNone);
  EXPECT_TRUE(out.ends_with("Content-Length: 0\r\n\r\n")) << out;

  out = Up(Chunked(Request("POST", "/a", {{"Transfer-Encoding", "chunked"}})), &f);
  EXPECT_EQ(f, Framing::kChunked);
  EXPECT_TRUE(out.ends_with("X-Request-Id: req-1\r\nTransfer-Encoding: chunked\r\n\r\n")) << out;
}

TEST(RequestFramingTest, ContentLengthChunkedOrNone) {
  EXPECT_EQ(RequestFraming(Request("GET", "/", {})), Framing::kNone);
  EXPECT_EQ(RequestFraming(WithLength(Request("POST", "/", {}), 0)), Framing::kNone);
  EXPECT_EQ(RequestFraming(WithLength(Request("POST", "/", {}), 1)), Framing::kContentLength);
  EXPECT_EQ(RequestFraming(Chunked(Request("POST", "/", {}))), Framing::kChunked);
  // A request is never delimited by close, whatever its version.
  EXPECT_EQ(RequestFraming(Request("POST", "/", {}, 0)), Framing::kNone);
}

// --- The response head sent to the client ---

TEST(DownstreamResponseHeadTest, ContentLengthResponseGetsRequestIdAndDate) {
  Framing f = Framing::kNone;
  EXPECT_EQ(
      Down(WithLength(
               Response(200, {{"Content-Type", "application/json"}, {"Content-Length", "12"}}), 12),
           false, 1, true, &f),
      "HTTP/1.1 200 OK\r\n"
      "Content-Type: application/json\r\n"
      "X-Request-Id: req-1\r\n"
      "Date: <date>\r\n"
      "Content-Length: 12\r\n"
      "\r\n");
  EXPECT_EQ(f, Framing::kContentLength);
}

TEST(DownstreamResponseHeadTest, UpstreamReasonRequestIdAndDateAreKept) {
  MessageHead r = WithLength(
      Response(201, {{"X-Request-Id", "up-id"}, {"Date", "Tue, 01 Dec 2026 10:00:00 GMT"}}), 0);
  r.reason = "Made";
  std::string out;  // unmasked: the upstream's Date is the one sent
  AppendDownstreamResponseHead(r, false, 1, true, "req-1", &out);
  EXPECT_EQ(out,
            "HTTP/1.1 201 Made\r\nX-Request-Id: up-id\r\nDate: Tue, 01 Dec 2026 10:00:00 GMT\r\n"
            "Content-Length: 0\r\n\r\n");
}

TEST(DownstreamResponseHeadTest, HopByHopAndConnectionListedHeadersAreRemoved) {
  EXPECT_EQ(Down(WithLength(Response(200, {{"Connection", "Keep-Alive, X-Hop"},
                                           {"Keep-Alive", "timeout=5"},
                                           {"X-Hop", "1"},
                                           {"Proxy-Authenticate", "Basic"},
                                           {"Trailer", "X-Sum"},
                                           {"Content-Length", "2"},
                                           {"X-End", "2"}}),
                            2),
                 false, 1, true),
            "HTTP/1.1 200 OK\r\nX-End: 2\r\nX-Request-Id: req-1\r\nDate: <date>\r\n"
            "Content-Length: 2\r\n\r\n");
}

TEST(DownstreamResponseHeadTest, NoContentDropsContentLength) {
  Framing f = Framing::kChunked;
  EXPECT_EQ(Down(WithLength(Response(204, {{"Content-Length", "0"}}), 0), false, 1, true, &f),
            "HTTP/1.1 204 No Content\r\nX-Request-Id: req-1\r\nDate: <date>\r\n\r\n");
  EXPECT_EQ(f, Framing::kNone);
  // Even a wrong one.
  EXPECT_EQ(Down(WithLength(Response(204, {}), 7), false, 1, true),
            "HTTP/1.1 204 No Content\r\nX-Request-Id: req-1\r\nDate: <date>\r\n\r\n");
}

TEST(DownstreamResponseHeadTest, HeadAndNotModifiedKeepTheLengthButHaveNoBody) {
  Framing f = Framing::kChunked;
  EXPECT_EQ(
      Down(WithLength(Response(200, {}), 1234), true, 1, true, &f),
      "HTTP/1.1 200 OK\r\nX-Request-Id: req-1\r\nDate: <date>\r\nContent-Length: 1234\r\n\r\n");
  EXPECT_EQ(f, Framing::kNone);
  f = Framing::kChunked;
  EXPECT_EQ(Down(WithLength(Response(304, {}), 99), false, 1, true, &f),
            "HTTP/1.1 304 Not Modified\r\nX-Request-Id: req-1\r\nDate: <date>\r\nContent-Length: "
            "99\r\n\r\n");
  EXPECT_EQ(f, Framing::kNone);
  // A HEAD answer without a length gets no Transfer-Encoding either.
  EXPECT_EQ(Down(Response(200, {}), true, 1, true, &f),
            "HTTP/1.1 200 OK\r\nX-Request-Id: req-1\r\nDate: <date>\r\n\r\n");
  EXPECT_EQ(f, Framing::kNone);
}

TEST(DownstreamResponseHeadTest, InterimResponseHasNoLengthAndNoConnectionHeader) {
  Framing f = Framing::kChunked;
  EXPECT_EQ(Down(WithLength(Response(100, {}), 5), false, 1, false, &f),
            "HTTP/1.1 100 Continue\r\nX-Request-Id: req-1\r\nDate: <date>\r\n\r\n");
  EXPECT_EQ(f, Framing::kNone);
}

TEST(DownstreamResponseHeadTest, BodyUntilCloseIsChunkedForHttp11AndUntilCloseForHttp10) {
  Framing f = Framing::kNone;
  // The upstream's own Transfer-Encoding is hop-by-hop: speedmon frames the body again.
  MessageHead r = Chunked(Response(200, {{"Transfer-Encoding", "chunked"}}));
  EXPECT_EQ(Down(r, false, 1, true, &f),
            "HTTP/1.1 200 OK\r\nX-Request-Id: req-1\r\nDate: <date>\r\n"
            "Transfer-Encoding: chunked\r\n\r\n");
  EXPECT_EQ(f, Framing::kChunked);
  EXPECT_EQ(Down(r, false, 0, true, &f),
            "HTTP/1.1 200 OK\r\nX-Request-Id: req-1\r\nDate: <date>\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(f, Framing::kUntilClose);
  // Neither length nor chunked (the upstream closes to end it): the same choice.
  EXPECT_EQ(Down(Response(200, {}), false, 1, true, &f).find("Transfer-Encoding: chunked\r\n") !=
                std::string::npos,
            true);
  EXPECT_EQ(f, Framing::kChunked);
  Down(Response(200, {}), false, 0, true, &f);
  EXPECT_EQ(f, Framing::kUntilClose);
}

TEST(DownstreamResponseHeadTest, ConnectionHeaderSaysWhatSpeedmonDoesWithTheClient) {
  MessageHead r = WithLength(Response(200, {}), 0);
  EXPECT_TRUE(Down(r, false, 1, false).ends_with("Content-Length: 0\r\nConnection: close\r\n\r\n"));
  EXPECT_TRUE(
      Down(r, false, 0, true).ends_with("Content-Length: 0\r\nConnection: keep-alive\r\n\r\n"));
  EXPECT_TRUE(Down(r, false, 1, true).ends_with("Content-Length: 0\r\n\r\n"));
}

TEST(ResponseFramingTest, EveryCase) {
  MessageHead len5 = WithLength(Response(200, {}), 5);
  MessageHead len0 = WithLength(Response(200, {}), 0);
  MessageHead open = Response(200, {});
  EXPECT_EQ(ResponseFraming(len5, false, 1), Framing::kContentLength);
  EXPECT_EQ(ResponseFraming(len5, false, 0), Framing::kContentLength);
  EXPECT_EQ(ResponseFraming(len0, false, 1), Framing::kNone);
  EXPECT_EQ(ResponseFraming(open, false, 1), Framing::kChunked);
  EXPECT_EQ(ResponseFraming(Chunked(Response(200, {})), false, 1), Framing::kChunked);
  EXPECT_EQ(ResponseFraming(open, false, 0), Framing::kUntilClose);
  EXPECT_EQ(ResponseFraming(len5, true, 1), Framing::kNone);  // HEAD
  EXPECT_EQ(ResponseFraming(open, true, 0), Framing::kNone);
  for (int status : {100, 103, 204, 304}) {
    EXPECT_EQ(ResponseFraming(WithLength(Response(status, {}), 5), false, 1), Framing::kNone)
        << status;
    EXPECT_EQ(ResponseFraming(Response(status, {}), false, 0), Framing::kNone) << status;
  }
}

// --- speedmon's own answers ---

TEST(ErrorResponseTest, JsonBodyWithLengthRequestIdAndClose) {
  std::string out;
  AppendErrorResponse(504, "upstream_timeout", "emulator-1", "req-1", true, &out);
  std::string body =
      "{\"error\":\"upstream_timeout\",\"status\":504,\"upstream\":\"emulator-1\","
      "\"request_id\":\"req-1\"}\n";
  EXPECT_EQ(MaskDate(out),
            "HTTP/1.1 504 Gateway Timeout\r\nDate: <date>\r\n"
            "Content-Type: application/json\r\nContent-Length: " +
                std::to_string(body.size()) +
                "\r\nX-Request-Id: req-1\r\nConnection: close\r\n\r\n" + body);
}

TEST(ErrorResponseTest, NoUpstreamIsNullAndTheClientsIdIsEscaped) {
  std::string out;
  AppendErrorResponse(400, "bad_request", "", "a\"b", false, &out);
  EXPECT_TRUE(out.ends_with(
      "X-Request-Id: a\"b\r\n\r\n"
      "{\"error\":\"bad_request\",\"status\":400,\"upstream\":null,\"request_id\":\"a\\\"b\"}\n"))
      << out;
}

TEST(OptionsResponseTest, EmptyOk) {
  std::string out;
  AppendOptionsResponse("req-1", false, &out);
  EXPECT_EQ(MaskDate(out),
            "HTTP/1.1 200 OK\r\nDate: <date>\r\nContent-Length: 0\r\nX-Request-Id: req-1\r\n\r\n");
  out.clear();
  AppendOptionsResponse("req-1", true, &out);
  EXPECT_TRUE(out.ends_with("X-Request-Id: req-1\r\nConnection: close\r\n\r\n")) << out;
}

TEST(DateHeaderTest, ImfFixdate) {
  std::string out;
  AppendDateHeader(&out);
  EXPECT_EQ(MaskDate(out), "Date: <date>\r\n") << out;
}

// --- The small parts ---

TEST(HopByHopTest, TheListCaseInsensitively) {
  for (const char* name :
       {"Connection", "keep-alive", "Proxy-Connection", "TE", "trailer", "TRANSFER-ENCODING",
        "Upgrade", "Proxy-Authorization", "Proxy-Authenticate", "Content-Length"}) {
    EXPECT_TRUE(IsHopByHop(name)) << name;
  }
  for (const char* name : {"Host", "Content-Type", "X-Request-Id", "Trailers", "Via", ""}) {
    EXPECT_FALSE(IsHopByHop(name)) << name;
  }
}

TEST(KnownHeaderNameTest, EveryNameInAnyCaseAndNoNearMiss) {
  const std::pair<const char*, HeaderName> kKnown[] = {
      {"connection", HeaderName::kConnection},
      {"Keep-Alive", HeaderName::kKeepAlive},
      {"PROXY-CONNECTION", HeaderName::kProxyConnection},
      {"tE", HeaderName::kTe},
      {"Trailer", HeaderName::kTrailer},
      {"transfer-ENCODING", HeaderName::kTransferEncoding},
      {"upgrade", HeaderName::kUpgrade},
      {"Proxy-Authorization", HeaderName::kProxyAuthorization},
      {"proxy-authenticate", HeaderName::kProxyAuthenticate},
      {"Content-Length", HeaderName::kContentLength},
      {"HOST", HeaderName::kHost},
      {"date", HeaderName::kDate},
      {"Expect", HeaderName::kExpect},
      {"max-FORWARDS", HeaderName::kMaxForwards},
      {"X-Forwarded-For", HeaderName::kXForwardedFor},
      {"x-forwarded-proto", HeaderName::kXForwardedProto},
      {"X-REQUEST-ID", HeaderName::kXRequestId},
  };
  for (const auto& [name, id] : kKnown) {
    EXPECT_EQ(KnownHeaderName(name), id) << name;
    EXPECT_EQ(Header(name, "v").known, id) << name;
  }
  // Same length as a known name, one byte off; a known name with a byte more or less;
  // and a byte that only ASCII-folds to a letter of the name.
  for (const char* name : {"", "Hose", "Gate", "ta", "Expert", "Trailers", "Connectio",
                           "x-request-ic", "Content-Lengt", "X-Forwarded-Fo", "Host\xC8", "\xC8ost",
                           "h\x0Fst", "Upgrade ", "Content-Type", "Via"}) {
    EXPECT_EQ(KnownHeaderName(name), HeaderName::kOther) << name;
  }
}

TEST(KnownHeaderNameTest, FindByNameAndByIdAgree) {
  MessageHead h =
      Response(200, {{"Server", "nginx"}, {"x-request-ID", "abc"}, {"Date", "d1"}, {"date", "d2"}});
  EXPECT_EQ(h.Find(HeaderName::kXRequestId), "abc");
  EXPECT_EQ(h.Find("X-Request-Id"), "abc");
  EXPECT_EQ(h.Find(HeaderName::kDate), "d1");  // the first one
  EXPECT_EQ(h.Find(HeaderName::kHost), "");
  EXPECT_EQ(h.Find(HeaderName::kOther), "");  // not the first unknown header
}

TEST(DownstreamResponseHeadTest, ConnectionListingOnlyHopByHopNamesKeepsEveryOtherHeader) {
  // The upstream's usual "Connection: keep-alive": nothing else is dropped, and the
  // listed Keep-Alive line goes as a hop-by-hop header.
  EXPECT_EQ(Down(WithLength(Response(200, {{"Server", "nginx"},
                                           {"Connection", "keep-alive"},
                                           {"Keep-Alive", "timeout=5"},
                                           {"Close", "x"},
                                           {"ETag", "\"1\""}}),
                            3),
                 false, 1, true),
            "HTTP/1.1 200 OK\r\nServer: nginx\r\nClose: x\r\nETag: \"1\"\r\n"
            "X-Request-Id: req-1\r\nDate: <date>\r\nContent-Length: 3\r\n\r\n");
  // "close" names the field Close (RFC 9110 7.6.1), which then goes too.
  EXPECT_EQ(
      Down(WithLength(
               Response(200, {{"Connection", "keep-alive, close"}, {"Close", "x"}, {"ETag", "1"}}),
               3),
           false, 1, true),
      "HTTP/1.1 200 OK\r\nETag: 1\r\n"
      "X-Request-Id: req-1\r\nDate: <date>\r\nContent-Length: 3\r\n\r\n");
}

TEST(ListedInConnectionTest, CommaSeparatedTrimmedCaseInsensitive) {
  EXPECT_TRUE(ListedInConnection("close", "close"));
  EXPECT_TRUE(ListedInConnection("keep-alive, X-Foo", "x-foo"));
  EXPECT_TRUE(ListedInConnection(" \tX-Foo\t ,close", "X-FOO"));
  EXPECT_FALSE(ListedInConnection("X-Foobar", "X-Foo"));
  EXPECT_FALSE(ListedInConnection("", "X-Foo"));
  EXPECT_FALSE(ListedInConnection("a,,b", "c"));
}

TEST(OriginFormTest, SplitsAbsoluteFormOnly) {
  std::string_view authority = "x";
  EXPECT_EQ(OriginForm("/a?b", &authority), "/a?b");
  EXPECT_EQ(authority, "");
  EXPECT_EQ(OriginForm("http://h:1/a?b", &authority), "/a?b");
  EXPECT_EQ(authority, "h:1");
  EXPECT_EQ(OriginForm("http://h?q", &authority), "?q");
  EXPECT_EQ(authority, "h");
  EXPECT_EQ(OriginForm("http://h", &authority), "");
  EXPECT_EQ(authority, "h");
  EXPECT_EQ(OriginForm("*", &authority), "*");
  EXPECT_EQ(authority, "");
  EXPECT_EQ(OriginForm("h:443", &authority), "h:443");  // CONNECT's authority-form
  EXPECT_EQ(authority, "");
}

TEST(MaxForwardsTest, OnlyOptionsAndTraceWithANumber) {
  EXPECT_EQ(MaxForwards(Request("OPTIONS", "*", {{"Max-Forwards", "0"}})), 0);
  EXPECT_EQ(MaxForwards(Request("TRACE", "/", {{"max-forwards", " 7 "}})), 7);
  EXPECT_EQ(MaxForwards(Request("GET", "/", {{"Max-Forwards", "0"}})), -1);
  EXPECT_EQ(MaxForwards(Request("OPTIONS", "*", {})), -1);
  EXPECT_EQ(MaxForwards(Request("OPTIONS", "*", {{"Max-Forwards", "-1"}})), -1);
  EXPECT_EQ(MaxForwards(Request("OPTIONS", "*", {{"Max-Forwards", "1x"}})), -1);
  EXPECT_EQ(MaxForwards(Request("OPTIONS", "*", {{"Max-Forwards", ""}})), -1);
}

TEST(ChunkHeaderTest, LowercaseHex) {
  std::string out;
  AppendChunkHeader(500, &out);
  AppendChunkHeader(0, &out);
  AppendChunkHeader(65536, &out);
  EXPECT_EQ(out, "1f4\r\n0\r\n10000\r\n");
}

TEST(RequestIdTest, ValidIsOneTo128VisibleAscii) {
  EXPECT_TRUE(IsValidRequestId("a"));
  EXPECT_TRUE(IsValidRequestId(std::string(128, '~')));
  EXPECT_FALSE(IsValidRequestId(""));
  EXPECT_FALSE(IsValidRequestId(std::string(129, 'a')));
  EXPECT_FALSE(IsValidRequestId("a b"));
  EXPECT_FALSE(IsValidRequestId("a\x7f"));
  EXPECT_FALSE(IsValidRequestId("caf\xc3\xa9"));
}

TEST(RequestIdTest, GeneratorGives32LowercaseHexDistinctPerSeed) {
  RequestIdGenerator a(42), a2(42), b(43);
  char x[32], y[32], z[32];
  a.Next(x);
  a2.Next(y);
  b.Next(z);
  std::string sx(x, 32), sy(y, 32), sz(z, 32);
  EXPECT_TRUE(std::regex_match(sx, std::regex("[0-9a-f]{32}"))) << sx;
  EXPECT_EQ(sx, sy);
  EXPECT_NE(sx, sz);
  a.Next(y);
  EXPECT_NE(sx, std::string(y, 32));
}

}  // namespace
}  // namespace speedmon::http
