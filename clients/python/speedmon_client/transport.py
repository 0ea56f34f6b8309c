"""One keep-alive HTTP connection to speedmon's admin address (http.client).

http.client rather than urllib.request: the sender posts many batches and a reused
connection saves a TCP handshake per batch. A connection that failed is dropped and the
next call opens a new one. Not thread-safe by itself; callers hold `lock`.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import urllib.parse
from typing import Any, Dict, Optional, Tuple

from .errors import ApiError, SpeedmonError

USER_AGENT = "speedmon-client-python/0.1"


def parse_base_url(url: str) -> urllib.parse.SplitResult:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"speedmon URL must be http://host:port or https://host:port, "
                         f"not {url!r}")
    return parts


class Transport:
    def __init__(self, base_url: str, token: Optional[str], timeout: float,
                 ssl_context: Optional[ssl.SSLContext] = None) -> None:
        parts = parse_base_url(base_url)
        self.base_url = base_url.rstrip("/")
        self.scheme = parts.scheme
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.lock = threading.Lock()
        self._conn: Optional[http.client.HTTPConnection] = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.scheme == "https":
                self._conn = http.client.HTTPSConnection(self.host, self.port,
                                                         timeout=self.timeout,
                                                         context=self.ssl_context)
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port,
                                                        timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                content_type: Optional[str] = None, extra: Optional[Dict[str, str]] = None
                ) -> Tuple[int, bytes]:
        """(status, body), sent with the `extra` headers too. Raises OSError or
        http.client.HTTPException when no answer came; the connection is then closed."""
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(extra or {})}
        if content_type:
            headers["Content-Type"] = content_type
        if self.token and method not in ("GET", "HEAD"):
            headers["Authorization"] = f"Bearer {self.token}"
        conn = self._connection()
        try:
            conn.request(method, self.prefix + path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            if resp.will_close:
                self.close()
            return resp.status, data
        except BaseException:
            self.close()
            raise

    def call(self, method: str, path: str, doc: Any = None, ok: Tuple[int, ...] = (200,)
             ) -> Any:
        """A JSON call for reads and admin calls: the decoded answer, or ApiError for a
        status outside `ok`, or SpeedmonError when speedmon could not be reached."""
        body = None if doc is None else json.dumps(doc).encode()
        with self.lock:
            try:
                status, data = self.request(method, path, body,
                                            "application/json" if body is not None else None)
            except (OSError, http.client.HTTPException) as e:
                raise SpeedmonError(f"{method} {self.base_url}{path}: speedmon did not "
                                    f"answer ({e})") from e
        answer: Dict[str, Any] = {}
        try:
            answer = json.loads(data) if data else {}
        except ValueError:
            if status in ok:
                raise SpeedmonError(f"{method} {path}: answer is not JSON: {data[:200]!r}")
        if status not in ok:
            error = answer.get("error") if isinstance(answer, dict) else None
            field = answer.get("field") if isinstance(answer, dict) else None
            raise ApiError(method, path, status,
                           str(error) if error else data[:200].decode("utf-8", "replace"),
                           field if isinstance(field, str) else None)
        return answer
