"""Send an existing HTTP session's emulator requests through speedmon, unedited.

monitor_requests_session(session) makes every request the session sends to an emulator
address go to the speedmon listener in front of that emulator instead, so speedmon
measures it; the agent's URLs stay as they are. monitored_opener() does the same for
urllib.request. The map (emulator address -> listener address) comes from
GET /api/v1/upstreams: an upstream with exactly one endpoint and a listener maps that
endpoint. An upstream with several endpoints is left alone (speedmon balances over them,
and an agent that talks to one emulator by its address needs that one). Requests to
other addresses, or while speedmon cannot be asked, go where they were going.

The request keeps its Host header as the agent would have sent it.
"""

from __future__ import annotations

import functools
import logging
import socket
import threading
import time
import urllib.parse
import urllib.request
from typing import Any, Dict, Optional, Tuple

log = logging.getLogger("speedmon_client")

_WILDCARD_HOSTS = ("0.0.0.0", "::", "")
REFRESH_SECONDS = 30.0

Key = Tuple[str, int]  # (IP address, port)


def _split_address(address: str) -> Tuple[str, int]:
    """"host:port" or "[v6]:port" -> (host, port)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


@functools.lru_cache(maxsize=256)
def _addresses(host: str) -> Tuple[str, ...]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return (host,)
    return tuple(sorted({str(i[4][0]) for i in infos}))


class ListenerMap:
    """Emulator address -> "host:port" of the speedmon listener that fronts it."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._map: Dict[Key, str] = {}
        self._fetched = float("-inf")
        self._lock = threading.Lock()
        admin = urllib.parse.urlsplit(client.url)
        self._admin_host = admin.hostname or "127.0.0.1"
        self.refresh()

    def refresh(self) -> bool:
        """Re-reads /api/v1/upstreams; False (and the old map kept) when it cannot."""
        with self._lock:
            self._fetched = time.monotonic()
        try:
            upstreams = self._client.get_upstreams()
        except Exception as e:  # speedmon down: requests go direct meanwhile
            log.warning("speedmon client: cannot read /api/v1/upstreams (%s); requests go "
                        "straight to the emulators until it answers", e)
            return False
        new: Dict[Key, str] = {}
        for up in upstreams:
            endpoints = up.get("endpoints") or []
            listeners = up.get("listeners") or []
            if len(endpoints) != 1 or not listeners:
                continue
            lhost, lport = _split_address(listeners[0]["address"])
            if lhost in _WILDCARD_HOSTS:
                lhost = self._admin_host
            listener = f"[{lhost}]:{lport}" if ":" in lhost else f"{lhost}:{lport}"
            ehost, eport = _split_address(endpoints[0]["address"])
            for ip in _addresses(ehost):
                new[(ip, eport)] = listener
        with self._lock:
            self._map = new
        return True

    def listener_for(self, host: str, port: int) -> Optional[str]:
        """The listener for host:port; on a miss the map is re-read when it is older
        than REFRESH_SECONDS (an upstream may have come up since)."""
        hit = self._lookup(host, port)
        with self._lock:
            stale = time.monotonic() - self._fetched > REFRESH_SECONDS
        if hit is None and stale and self.refresh():
            hit = self._lookup(host, port)
        return hit

    def _lookup(self, host: str, port: int) -> Optional[str]:
        with self._lock:
            table = self._map
        for ip in _addresses(host):
            if (ip, port) in table:
                return table[(ip, port)]
        return None

    def rewrite(self, url: str) -> Optional[Tuple[str, str]]:
        """(new URL, original Host header value) when url is an emulator behind speedmon."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            return None
        try:
            port = parts.port or 80
        except ValueError:
            return None
        listener = self.listener_for(parts.hostname, port)
        if listener is None:
            return None
        netloc = parts.netloc.rpartition("@")[2]
        return urllib.parse.urlunsplit(parts._replace(netloc=listener)), netloc


def _has_header(headers: Any, name: str) -> bool:
    return any(str(k).lower() == name for k in (headers or {}))


def monitor_requests_session(session: Any, client: Any = None, url: Optional[str] = None,
                             spool_dir: Optional[str] = None) -> Any:
    """Returns `session` (the same object) with its requests to emulators sent through
    speedmon. session: a requests.Session, or any object whose requests all pass through
    a `request(method, url, **kwargs)` method. client: a SpeedmonClient (default: the
    process-wide one the compatibility collector uses, at $SPEEDMON_URL)."""
    if client is None:
        from .speedrun_metrics import default_client
        client = default_client(url, spool_dir)
    original: Any = getattr(session, "request", None)
    if not callable(original):
        raise TypeError("monitor_requests_session needs an object with a request() method")
    if getattr(original, "_speedmon_wrapped", False):
        return session
    listeners = ListenerMap(client)

    @functools.wraps(original)
    def request(method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
        routed = listeners.rewrite(str(url))
        if routed is not None:
            url, host = routed
            headers = dict(kwargs.get("headers") or {})
            if not _has_header(headers, "host"):
                headers["Host"] = host
            kwargs["headers"] = headers
        return original(method, url, *args, **kwargs)

    request._speedmon_wrapped = True  # type: ignore[attr-defined]
    request.listeners = listeners  # type: ignore[attr-defined]
    session.request = request
    return session


class _ListenerHandler(urllib.request.BaseHandler):
    handler_order = 100  # before the HTTP handler opens the connection

    def __init__(self, listeners: ListenerMap) -> None:
        self.listeners = listeners

    def http_request(self, req: urllib.request.Request) -> urllib.request.Request:
        routed = self.listeners.rewrite(req.full_url)
        if routed is not None:
            new_url, host = routed
            if not req.has_header("Host"):
                req.add_unredirected_header("Host", host)
            req.full_url = new_url
        return req


def monitored_opener(client: Any = None, *handlers: urllib.request.BaseHandler
                     ) -> urllib.request.OpenerDirector:
    """A urllib.request opener whose requests to emulators go through speedmon:
    opener.open("http://127.0.0.1:8081/status") is measured by speedmon's listener."""
    if client is None:
        from .speedrun_metrics import default_client
        client = default_client()
    return urllib.request.build_opener(_ListenerHandler(ListenerMap(client)), *handlers)
