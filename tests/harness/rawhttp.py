"""A raw-socket HTTP/1.x client for byte-exact proxy tests.

It sends exactly the bytes a test builds (pipelined, malformed, chunked with chosen chunk
sizes) and parses responses strictly: the head as received, chunked bodies decoded with
their chunk sizes kept, bodies optionally streamed into a sink instead of memory.
"""

import socket
import threading

MAX_HEAD = 1024 * 1024


class TruncatedResponse(Exception):
    """The connection ended (EOF or reset) before the response was complete.

    `response` holds what arrived: status and headers if the head was complete (else
    None) and the body bytes received so far."""

    def __init__(self, message, response=None):
        super().__init__(message)
        self.response = response


class Response:
    def __init__(self, version, status, reason, headers, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name, value)] in order, as received
        self.raw_head = raw_head
        self.body = b""
        self.body_length = 0
        self.chunked = False
        self.chunk_sizes = []
        self.trailers = []

    def header(self, name):
        """The first value of header `name` (case-insensitive), or None."""
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def json(self):
        import json
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.reason} body={self.body_length}B>"


def build_request(method, target, headers=(), body=b"", chunked=False, chunk_sizes=None,
                  version="HTTP/1.1", host="127.0.0.1", content_length=True):
    """The bytes of one request.

    headers: [(name, value)], sent in order after Host (unless a Host is given).
    chunked: send body with Transfer-Encoding: chunked, cut into chunk_sizes (cycled),
    or one chunk. content_length: add Content-Length for a non-chunked body (also for an
    empty body on POST/PUT/PATCH).
    """
    lines = [f"{method} {target} {version}"]
    names = {n.lower() for n, _ in headers}
    if "host" not in names and host is not None:
        lines.append(f"Host: {host}")
    lines += [f"{n}: {v}" for n, v in headers]
    out = bytearray()
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        out += ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        sizes = list(chunk_sizes or [max(len(body), 1)])
        off, i = 0, 0
        while off < len(body):
            n = min(sizes[i % len(sizes)], len(body) - off)
            out += b"%x\r\n" % n + body[off:off + n] + b"\r\n"
            off += n
            i += 1
        out += b"0\r\n\r\n"
        return bytes(out)
    if content_length and "content-length" not in names and (
            body or method in ("POST", "PUT", "PATCH")):
        lines.append(f"Content-Length: {len(body)}")
    out += ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    out += body
    return bytes(out)


class RawHttp:
    """One client connection. Not thread-safe; one test thread drives it."""

    def __init__(self, port, host="127.0.0.1", timeout=30.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False
        self.host = host
        self.port = port

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # ---- sending ------------------------------------------------------------------

    def send(self, data):
        self.sock.sendall(data)

    def send_in_background(self, data):
        """Sends data from a thread, so a test can read responses while a big body is
        still going out (no deadlock when both sides' socket buffers are full). Returns
        the thread; join() it. Send errors end up in thread.error."""
        t = threading.Thread(target=self._send_quietly, args=(data,), daemon=True)
        t.error = None
        t.start()
        return t

    def _send_quietly(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            threading.current_thread().error = e

    def request(self, method, target, headers=(), body=b"", sink=None, **kw):
        """Sends one request (build_request arguments) and reads its response."""
        kw.setdefault("host", self.host)
        data = build_request(method, target, headers, body, **kw)
        return self.exchange(data, method=method, sink=sink)

    def exchange(self, data, method="GET", sink=None):
        if len(data) <= 256 * 1024:
            self.send(data)
            return self.read_response(method, sink=sink)
        sender = self.send_in_background(data)
        try:
            return self.read_response(method, sink=sink)
        finally:
            sender.join(timeout=self.sock.gettimeout())

    def pipeline(self, requests):
        """Sends every (method, target, headers, body) at once, then reads the responses
        in order."""
        data = b"".join(build_request(m, t, h, b, host=self.host) for m, t, h, b in requests)
        sender = self.send_in_background(data)
        try:
            return [self.read_response(m) for m, _, _, _ in requests]
        finally:
            sender.join(timeout=self.sock.gettimeout())

    # ---- receiving ----------------------------------------------------------------

    def _fill(self):
        if self.eof:
            return False
        try:
            data = self.sock.recv(256 * 1024)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _take(self, n):
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _read_line(self, partial):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                return self._take(i + 2)[:-2]
            if len(self.buf) > MAX_HEAD or not self._fill():
                raise TruncatedResponse("connection ended inside a chunk line", partial)

    def _read_head(self):
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                return self._take(i + 4)
            if len(self.buf) > MAX_HEAD:
                raise ValueError("response head over 1 MiB")
            if not self._fill():
                if self.buf:
                    raise TruncatedResponse(f"connection ended inside the head: {bytes(self.buf)!r}")
                raise TruncatedResponse("connection ended before a response")

    def read_head(self):
        """Reads one response head, 1xx included, and returns it (no body is read)."""
        return _parse_head(self._read_head())

    def read_response(self, method="GET", sink=None):
        """Reads one response (1xx interim responses are skipped).

        sink: a callable taking body pieces; then response.body stays empty and only
        body_length is kept. Raises TruncatedResponse if the connection ends early.
        """
        while True:
            raw = self._read_head()
            resp = _parse_head(raw)
            if not 100 <= resp.status < 200:
                break
        if method == "HEAD" or resp.status in (204, 304):
            return resp
        pieces = []
        emit = sink or pieces.append

        def deliver(data):
            resp.body_length += len(data)
            emit(data)

        te = ",".join(resp.header_values("transfer-encoding")).lower()
        cl = resp.header("content-length")
        try:
            if "chunked" in te:
                resp.chunked = True
                self._read_chunked(resp, deliver)
            elif cl is not None:
                self._read_exact(int(cl), deliver)
            else:
                while self.buf or self._fill():
                    deliver(self._take(len(self.buf)))
        except TruncatedResponse as e:
            resp.body = b"".join(pieces)
            e.response = resp
            raise
        resp.body = b"".join(pieces)
        return resp

    def _read_exact(self, n, deliver):
        while n:
            if not self.buf and not self._fill():
                raise TruncatedResponse(f"connection ended with {n} body bytes missing")
            data = self._take(min(n, len(self.buf)))
            n -= len(data)
            deliver(data)

    def _read_chunked(self, resp, deliver):
        while True:
            line = self._read_line(resp)
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while True:
                    trailer = self._read_line(resp)
                    if not trailer:
                        return
                    name, _, value = trailer.decode("latin-1").partition(":")
                    resp.trailers.append((name, value.strip()))
            resp.chunk_sizes.append(size)
            self._read_exact(size, deliver)
            if self._read_line(resp) != b"":
                raise ValueError("chunk data not followed by CRLF")

    def closed_by_peer(self, timeout=5.0):
        """True if the peer closes (EOF or reset) within timeout with no further bytes;
        False if the connection stays open. Bytes arriving instead raise ValueError."""
        if self.buf:
            raise ValueError(f"expected a close, have unread {bytes(self.buf[:200])!r}")
        if self.eof:
            return True
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        if data:
            raise ValueError(f"expected a close, got {data[:200]!r}")
        self.eof = True
        return True


def _parse_head(raw):
    lines = raw[:-4].decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise ValueError(f"bad status line {lines[0]!r}")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise ValueError(f"bad header line {line!r}")
        headers.append((name, value.strip(" \t")))
    return Response(version, int(code), reason, headers, raw)


def connect_refused(port, host="127.0.0.1", timeout=2.0):
    """True if a TCP connect to host:port is refused (nobody listening). A reset during
    connect counts too: a connection that reached a listening socket's queue just as it
    closed is reset by the kernel, and it was not accepted either."""
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except (ConnectionRefusedError, ConnectionResetError):
        return True
    s.close()
    return False
