#!/usr/bin/python3
"""A stand-in for one pokemon-gym emulator container, for speedmon's tests and benchmarks.

Stdlib only (asyncio, one thread). It speaks the pokemon-gym HTTP API with deterministic
answers, plus test endpoints, and misbehaves on demand so the proxy's error paths can be
driven from a test:

  pokemon-gym   POST /initialize /action /stop /save_state, GET /status /evaluate;
                older: POST /input /reset /checkpoint/load, GET /state /health.
                Screenshot-bearing answers are JSON of exactly --body-bytes bytes.
  /echo         any method: the request body back, byte for byte (framing mirrors the
                request: chunked in, chunked out), X-Echo-Method/-Path/-Length/-Headers.
  /headers      any method: {"method","target","version","headers":[[name,value]...],
                "body_length"} as received.
  /bytes/N      N deterministic bytes (pattern_bytes), streamed; ?chunked=1, ?piece=K.
  /misbehave/MODE  or ?misbehave=MODE on any path: see MODES below.
  /_stats GET, /_reset POST, /_control POST {"status_code","latency_ms","body_bytes"},
  /_requests GET (the last requests as received). /_* requests are not counted.

Any path takes ?h=Name:Value (adds a response header), ?close=1 (server closes after
the answer), ?status=N (answers N instead). HTTP/1.1 keep-alive and 1.0, pipelining
(answered in order), Content-Length and chunked request bodies, Expect: 100-continue.

Flags: --port 0 prints "PORT n" as the first stdout line; --refuse binds the port
without listening (connects are refused); --status-code N for /status and /health;
--latency-ms N before every answer; --chunked answers API calls chunked; --quiet.
SIGTERM/SIGINT: close everything, exit 0.
"""

import argparse
import asyncio
import base64
import collections
import hashlib
import json
import re
import signal
import socket
import struct
import sys
import urllib.parse

MAX_HEAD_BYTES = 256 * 1024
MAX_KEPT_BODY = 256 * 1024 * 1024  # bodies are read whole; past this only hashed
PIECE = 64 * 1024
DEFAULT_BODY_BYTES = 30 * 1024

# Delivery misbehaviours. ms/piece/code come from the query string.
MODES = {
    "slow": "sleep ?ms= (default 200) before answering normally",
    "hang": "read the request, never answer; close when the client does",
    "hang-body": "send the response head, then never the body",
    "trickle": "send the body ?piece= bytes (default 1) every ?ms= (default 50)",
    "reset": "RST the connection instead of answering",
    "close-without-response": "FIN the connection instead of answering",
    "reset-mid-body": "send the head and half the body, wait ?ms= (default 200), RST",
    "close-mid-body": "send the head and half the body, wait ?ms= (default 200), FIN",
    "malformed": "answer a garbage status line, then close",
    "malformed-header": "answer a status line and a header line without a colon",
    "status": "answer ?code= (default 500) with a small JSON body",
}

TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
HEX = re.compile(rb"[0-9A-Fa-f]+")
REASONS = {
    100: "Continue", 200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified",
    400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
    413: "Payload Too Large", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
}

_TABLE = bytes(range(256)) * 2


def pattern_bytes(offset, n):
    """Bytes [offset, offset+n) of an endless deterministic stream.

    Block k (256 bytes) is its own offset as 15 hex digits and a newline, then 240 binary
    bytes starting at k mod 256: every byte value occurs, and no shift, drop or
    duplication of any size goes unnoticed (the offsets never repeat).
    """
    if n <= 0:
        return b""
    first, skip = divmod(offset, 256)
    last = (offset + n + 255) // 256
    blocks = b"".join(b"%015x\n" % (k * 256) + _TABLE[k & 0xFF:(k & 0xFF) + 240]
                      for k in range(first, last))
    return blocks[skip:skip + n]


def iter_pattern(n, piece=1024 * 1024):
    """pattern_bytes(0, n) in pieces, for hashing big bodies without holding them."""
    off = 0
    while off < n:
        step = min(piece, n - off)
        yield pattern_bytes(off, step)
        off += step


class BadRequest(Exception):
    pass


class Request:
    def __init__(self, method, target, version, headers):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # [(name, value)] as received, latin-1 strings
        split = urllib.parse.urlsplit(target)
        self.path = split.path
        self.query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        self.body = b""
        self.body_length = 0
        self.body_sha256 = ""
        self.body_chunked = False

    def header(self, name):
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return None

    def header_values(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def q(self, key, default=None):
        vals = self.query.get(key)
        return vals[-1] if vals else default

    def q_int(self, key, default):
        try:
            return int(self.q(key, default))
        except (TypeError, ValueError):
            return default

    def connection_tokens(self):
        toks = set()
        for v in self.header_values("connection"):
            toks.update(t.strip().lower() for t in v.split(",") if t.strip())
        return toks

    def keep_alive(self):
        toks = self.connection_tokens()
        if self.version == "HTTP/1.1":
            return "close" not in toks
        return "keep-alive" in toks

    def internal(self):
        return self.path.startswith("/_")


def parse_head(raw):
    """Parses a request head (up to and including the blank line). Raises BadRequest."""
    lines = raw.lstrip(b"\r\n")[:-4].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise BadRequest("bad request line")
    method, target, version = parts
    if not TOKEN.fullmatch(method) or not target or version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise BadRequest("bad request line")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not TOKEN.fullmatch(name):
            raise BadRequest("bad header line")
        headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    return Request(method.decode(), target.decode("latin-1"), version.decode(), headers)


def body_framing(req):
    """Returns ("chunked", None), ("length", n) or ("none", 0). Raises BadRequest."""
    te = req.header_values("transfer-encoding")
    cl = req.header_values("content-length")
    if te and cl:
        raise BadRequest("both Content-Length and Transfer-Encoding")
    if te:
        codings = [c.strip().lower() for c in ",".join(te).split(",")]
        if codings[-1] != "chunked":
            raise BadRequest("unsupported transfer coding")
        return "chunked", None
    if cl:
        vals = {v.strip() for v in ",".join(cl).split(",")}
        if len(vals) != 1 or not vals.pop().isdigit():
            raise BadRequest("bad Content-Length")
        return "length", int(cl[0].split(",")[0].strip())
    return "none", 0


class Body:
    """Collects a request body: kept whole up to MAX_KEPT_BODY, always hashed."""

    def __init__(self):
        self.parts = []
        self.length = 0
        self.sha = hashlib.sha256()

    def add(self, data):
        self.length += len(data)
        self.sha.update(data)
        if self.length <= MAX_KEPT_BODY:
            self.parts.append(data)


async def read_body(reader, req):
    kind, length = body_framing(req)
    body = Body()
    if kind == "length":
        left = length
        while left:
            data = await reader.read(min(left, PIECE))
            if not data:
                raise asyncio.IncompleteReadError(b"", left)
            body.add(data)
            left -= len(data)
    elif kind == "chunked":
        req.body_chunked = True
        while True:
            line = await reader.readuntil(b"\r\n")
            size = line[:-2].split(b";", 1)[0].strip(b" \t")
            if not HEX.fullmatch(size) or len(size) > 15:
                raise BadRequest("bad chunk size")
            n = int(size, 16)
            if n == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers are read and dropped
                break
            while n:
                data = await reader.read(min(n, PIECE))
                if not data:
                    raise asyncio.IncompleteReadError(b"", n)
                body.add(data)
                n -= len(data)
            if await reader.readexactly(2) != b"\r\n":
                raise BadRequest("chunk not followed by CRLF")
    req.body_length = body.length
    req.body_sha256 = body.sha.hexdigest()
    req.body = b"".join(body.parts) if body.length <= MAX_KEPT_BODY else None


class Resp:
    """An answer: head fields plus a body given as bytes or as source(offset, n)."""

    def __init__(self, status=200, body=b"", content_type="application/json", headers=None,
                 chunked=False, length=None, source=None):
        self.status = status
        self.headers = list(headers or [])
        if content_type:
            self.headers.insert(0, ("Content-Type", content_type))
        self.chunked = chunked
        if source is None:
            self.length = len(body)
            self.source = lambda off, n: body[off:off + n]
        else:
            self.length = length
            self.source = source


def json_resp(doc, status=200, **kw):
    return Resp(status, json.dumps(doc, separators=(",", ":")).encode(), **kw)


class Stats:
    def __init__(self):
        self.open_connections = 0  # a gauge: survives /_reset
        self.reset()

    def reset(self):
        self.connections_accepted = 0
        self.connections = 0
        self.requests = 0
        self.in_flight = 0
        self.by_route = collections.Counter()
        self.request_ids = collections.Counter()
        self.request_body_bytes = 0
        self.response_body_bytes = 0
        self.recent = collections.deque(maxlen=200)
        self.seq = 0

    def as_json(self):
        return {
            "connections_accepted": self.connections_accepted,
            "connections": self.connections,
            "open_connections": self.open_connections,
            "requests": self.requests,
            "in_flight": self.in_flight,
            "by_route": dict(self.by_route),
            "duplicate_request_ids": sorted(k for k, v in self.request_ids.items() if v > 1),
            "request_body_bytes": self.request_body_bytes,
            "response_body_bytes": self.response_body_bytes,
        }


class Conn:
    def __init__(self, cid, reader, writer):
        self.id = cid
        self.reader = reader
        self.writer = writer
        self.counted = False


class FakeEmulator:
    def __init__(self, args):
        self.args = args
        self.status_code = args.status_code
        self.latency_ms = args.latency_ms
        self.body_bytes = args.body_bytes
        self.step = 0
        self.initialized = False
        self.stats = Stats()
        self.conns = set()
        self.next_conn_id = 1

    def log(self, msg):
        if not self.args.quiet:
            print(f"fake_emulator: {msg}", file=sys.stderr, flush=True)

    # ---- pokemon-gym endpoints -------------------------------------------------------

    def state_doc_body(self, extra):
        """A game-state JSON of exactly body_bytes bytes (when that is big enough)."""
        doc = {"step_number": self.step, "location": "PALLET TOWN", "coordinates": [5, 6],
               "money": 3000, "badges": [], "dialog": "", **extra, "screenshot_base64": ""}
        base = json.dumps(doc, separators=(",", ":")).encode()
        room = self.body_bytes - len(base)
        if room < 0:
            return base
        b64_len = room // 4 * 4
        shot = base64.b64encode(pattern_bytes(self.step * 4096, b64_len // 4 * 3))
        return base[:-2] + shot + b'"' + b" " * (room - b64_len) + b"}"

    def state_resp(self, **extra):
        return Resp(200, self.state_doc_body(extra), chunked=self.args.chunked)

    def api(self, req):
        m, p = req.method, req.path
        routes = {
            "/initialize": "POST", "/action": "POST", "/input": "POST", "/reset": "POST",
            "/checkpoint/load": "POST", "/save_state": "POST", "/stop": "POST",
            "/status": "GET", "/state": "GET", "/evaluate": "GET", "/health": "GET",
        }
        want = routes.get(p)
        if want is None:
            return json_resp({"error": "not found", "path": p}, 404)
        if m != want and not (want == "GET" and m == "HEAD"):
            return json_resp({"error": "method not allowed"}, 405, headers=[("Allow", want)])
        if p in ("/initialize", "/reset"):
            self.step = 0
            self.initialized = True
            return self.state_resp()
        if p in ("/action", "/input"):
            self.step += 1
            action = None
            try:
                action = json.loads(req.body or b"null")
            except ValueError:
                pass
            return self.state_resp(action=action if isinstance(action, dict) else None)
        if p in ("/state", "/checkpoint/load"):
            return self.state_resp()
        if p in ("/status", "/health"):
            return json_resp({"status": "running" if self.initialized else "idle",
                              "steps_taken": self.step}, self.status_code)
        if p == "/stop":
            self.initialized = False
            return json_resp({"status": "stopped", "steps_taken": self.step})
        if p == "/save_state":
            return json_resp({"state_path": f"/tmp/fake_state_{self.step}.state"})
        return json_resp({"score": self.step * 1.5, "steps_taken": self.step})

    # ---- test endpoints ---------------------------------------------------------------

    def handle(self, req):
        p = req.path
        if p == "/echo" or p.startswith("/echo/"):
            body = req.body if req.body is not None else b""
            dump = json.dumps(req.headers, ensure_ascii=True)
            chunked = req.body_chunked if req.q("chunked") is None else req.q("chunked") == "1"
            return Resp(200, body, "application/octet-stream", chunked=chunked, headers=[
                ("X-Echo-Method", req.method), ("X-Echo-Path", req.target),
                ("X-Echo-Length", str(req.body_length)), ("X-Echo-Headers", dump)])
        if p == "/headers":
            return json_resp({"method": req.method, "target": req.target,
                              "version": req.version, "headers": req.headers,
                              "body_length": req.body_length})
        if p.startswith("/bytes/"):
            try:
                n = int(p[len("/bytes/"):])
            except ValueError:
                return json_resp({"error": "bad size"}, 400)
            return Resp(200, content_type="application/octet-stream", length=n,
                        source=pattern_bytes, chunked=req.q("chunked") == "1")
        if p.startswith("/misbehave/"):
            n = req.q_int("bytes", 4096)
            return Resp(200, content_type="application/octet-stream", length=n,
                        source=pattern_bytes, chunked=req.q("chunked") == "1")
        if p == "/_stats":
            return json_resp(self.stats.as_json())
        if p == "/_requests":
            return json_resp({"requests": list(self.stats.recent)})
        if p == "/_reset" and req.method == "POST":
            self.stats.reset()
            for c in self.conns:  # an open connection counts again once it carries a request
                c.counted = False
            return json_resp({"ok": True})
        if p == "/_control" and req.method == "POST":
            try:
                ctl = json.loads(req.body or b"{}")
                self.status_code = int(ctl.get("status_code", self.status_code))
                self.latency_ms = int(ctl.get("latency_ms", self.latency_ms))
                self.body_bytes = int(ctl.get("body_bytes", self.body_bytes))
            except (ValueError, TypeError, AttributeError):
                return json_resp({"error": "bad control"}, 400)
            return json_resp({"status_code": self.status_code, "latency_ms": self.latency_ms,
                              "body_bytes": self.body_bytes})
        return self.api(req)

    # ---- the connection loop ----------------------------------------------------------

    async def on_connection(self, reader, writer):
        conn = Conn(self.next_conn_id, reader, writer)
        self.next_conn_id += 1
        self.conns.add(conn)
        self.stats.connections_accepted += 1
        self.stats.open_connections += 1
        try:
            while await self.serve_one(conn):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        except asyncio.LimitOverrunError:
            await self.write_plain(conn, 431, "head too large")
        except BadRequest as e:
            await self.write_plain(conn, 400, str(e))
        finally:
            self.stats.open_connections -= 1
            self.conns.discard(conn)
            writer.close()

    async def write_plain(self, conn, status, text):
        body = json.dumps({"error": text}).encode()
        head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n").encode()
        try:
            conn.writer.write(head + body)
            await conn.writer.drain()
        except ConnectionError:
            pass

    async def serve_one(self, conn):
        try:
            raw = await conn.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        req = parse_head(raw)
        counted = not req.internal()
        if counted:
            self.stats.requests += 1
            self.stats.in_flight += 1
            self.stats.by_route[f"{req.method} {req.path}"] += 1
            rid = req.header("x-request-id")
            if rid is not None:
                self.stats.request_ids[rid] += 1
            if not conn.counted:
                conn.counted = True
                self.stats.connections += 1
        try:
            if (req.header("expect") or "").lower() == "100-continue":
                conn.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await read_body(conn.reader, req)
            self.log(f"{req.method} {req.target} {req.version} body={req.body_length}")
            if counted:
                self.stats.request_body_bytes += req.body_length
                self.stats.seq += 1
                self.stats.recent.append({
                    "seq": self.stats.seq, "connection": conn.id, "method": req.method,
                    "target": req.target, "version": req.version, "headers": req.headers,
                    "body_length": req.body_length, "body_sha256": req.body_sha256})
            resp = self.handle(req)
            return await self.deliver(conn, req, resp, counted)
        finally:
            if counted:
                self.stats.in_flight -= 1

    def misbehaviour(self, req):
        if req.path.startswith("/misbehave/"):
            return req.path[len("/misbehave/"):].split("/", 1)[0]
        return req.q("misbehave")

    async def deliver(self, conn, req, resp, counted):
        """Writes resp for req, misbehaving as asked. Returns whether to keep the conn."""
        w = conn.writer
        mode = self.misbehaviour(req)
        if mode is not None and mode not in MODES:  # a typo in a test must not pass quietly
            resp = json_resp({"error": f"unknown misbehaviour {mode!r}", "modes": list(MODES)},
                             400)
            mode = None
        ms = req.q_int("ms", 50 if mode == "trickle" else 200)
        if counted and self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        if mode == "slow":
            await asyncio.sleep(ms / 1000)
        elif mode == "hang":
            await self.wait_closed(conn)
            return False
        elif mode in ("reset", "close-without-response"):
            self.close(conn, reset=mode == "reset")
            return False
        elif mode == "malformed":
            w.write(b"HTTP/1.1 2x0 Nope\r\nContent-Length: 2\r\n\r\nok")
            await w.drain()
            return False
        elif mode == "malformed-header":
            w.write(b"HTTP/1.1 200 OK\r\nThis is not a header\r\nContent-Length: 2\r\n\r\nok")
            await w.drain()
            return False
        elif mode == "status":
            resp = json_resp({"status": req.q_int("code", 500)}, req.q_int("code", 500))
        if req.q("status") is not None and mode != "status":
            resp.status = req.q_int("status", resp.status)
        keep = req.keep_alive() and req.q("close") != "1"
        no_body = req.method == "HEAD" or resp.status in (204, 304) or resp.status < 200
        chunked = resp.chunked and not no_body
        close_delimited = False
        if chunked and req.version == "HTTP/1.0":
            chunked, close_delimited, keep = False, True, False
        head = [f"HTTP/1.1 {resp.status} {REASONS.get(resp.status, 'Unknown')}"]
        head += [f"{n}: {v}" for n, v in resp.headers]
        for spec in req.query.get("h", []):
            name, _, value = spec.partition(":")
            head.append(f"{name}: {value.strip()}")
        if chunked:
            head.append("Transfer-Encoding: chunked")
        elif not close_delimited and resp.status not in (204, 304):
            head.append(f"Content-Length: {resp.length}")
        if not keep:
            head.append("Connection: close")
        elif req.version == "HTTP/1.0":
            head.append("Connection: keep-alive")
        w.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        await w.drain()
        if no_body:
            return keep
        if mode == "hang-body":
            await self.wait_closed(conn)
            return False
        cut = resp.length // 2 if mode in ("reset-mid-body", "close-mid-body") else None
        piece = req.q_int("piece", 1) if mode == "trickle" else PIECE
        off = 0
        while off < resp.length:
            if cut is not None and off >= cut:
                await asyncio.sleep(ms / 1000)
                self.close(conn, reset=mode == "reset-mid-body")
                return False
            n = min(piece, resp.length - off, cut - off if cut is not None else PIECE)
            data = resp.source(off, n)
            w.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            off += n
            if counted:
                self.stats.response_body_bytes += n
            await w.drain()
            if mode == "trickle":
                await asyncio.sleep(ms / 1000)
        if cut is not None:  # an empty body has no middle: misbehave at its end
            await asyncio.sleep(ms / 1000)
            self.close(conn, reset=mode == "reset-mid-body")
            return False
        if chunked:
            w.write(b"0\r\n\r\n")
            await w.drain()
        return keep

    async def wait_closed(self, conn):
        while await conn.reader.read(PIECE):
            pass

    def close(self, conn, reset):
        sock = conn.writer.get_extra_info("socket")
        if reset and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.writer.transport.abort()
        else:
            conn.writer.close()


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--body-bytes", type=int, default=DEFAULT_BODY_BYTES,
                    help="size of screenshot-bearing JSON answers")
    ap.add_argument("--chunked", action="store_true", help="answer API calls chunked")
    ap.add_argument("--latency-ms", type=int, default=0)
    ap.add_argument("--status-code", type=int, default=200, help="for /status and /health")
    ap.add_argument("--refuse", action="store_true", help="bind but do not listen")
    ap.add_argument("--quiet", action="store_true")
    return ap.parse_args(argv)


async def main_async(args):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.refuse:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((args.host, args.port))
        print(f"PORT {sock.getsockname()[1]}", flush=True)
        await stop.wait()
        sock.close()
        return
    fake = FakeEmulator(args)
    server = await asyncio.start_server(fake.on_connection, args.host, args.port,
                                        limit=MAX_HEAD_BYTES, reuse_address=True)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    fake.log(f"listening on {args.host}:{server.sockets[0].getsockname()[1]}")
    await stop.wait()
    server.close()
    for c in list(fake.conns):
        c.writer.transport.abort()
    await asyncio.sleep(0)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
