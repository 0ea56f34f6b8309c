"""Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
JSON messages ended by a NUL byte, Chromium reading fd 3 and writing fd 4), standard
library only. For what --dump-dom cannot tell: layout measured in the page (does it
overflow a phone-width window?) and a page watched in real time until it shows what a
test waits for.

Chromium runs with a fresh profile in its own process group, killed by close(); the
profile directory is removed.
"""

import base64
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time

CHROMIUM = "/usr/bin/chromium"


class CdpError(AssertionError):
    pass


class Browser:
    def __init__(self, timeout=60.0):
        if not os.access(CHROMIUM, os.X_OK):
            raise AssertionError(f"{CHROMIUM} is missing: run scripts/install-deps.sh")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="speedmon-chromium-")
        # A file, not a pipe nobody reads: a chatty Chromium must never block on stderr.
        self._err = tempfile.TemporaryFile()
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--hide-scrollbars", "--remote-debugging-pipe",
                f"--user-data-dir={self.profile}", "about:blank"]
        # bash (dash takes one-digit descriptors only) puts the pipe ends on 3 and 4,
        # through 10 and 11 in case one of them already is 3 or 4.
        script = (f'exec 10<&{to_chrome_r} 11>&{from_chrome_w}; '
                  f'exec "$0" "$@" 3<&10 4>&11 10<&- 11>&-')
        self.proc = subprocess.Popen(
            ["/bin/bash", "-c", script, *argv], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=self._err,
            pass_fds=(to_chrome_r, from_chrome_w), env=dict(os.environ, TZ="UTC"),
            start_new_session=True)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id = 0
        self._buf = b""
        self.session = None

    # ---- the protocol ----

    def _read_message(self, deadline):
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpError("chromium did not answer in time")
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise CdpError("chromium closed the pipe: " + self._stderr())
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, session=True, **params):
        """Sends one command (to the attached page unless session=False) and returns
        its result; fails on a protocol error."""
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params}
        if session and self.session:
            msg["sessionId"] = self.session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self._to_chrome, data):]
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") != self._next_id:
                continue  # an event, or an answer nobody waits for
            if "error" in reply:
                raise CdpError(f"{method}: {reply['error']}")
            return reply.get("result", {})

    def _stderr(self):
        self._err.seek(0)
        return self._err.read()[-3000:].decode(errors="replace")

    # ---- what tests use ----

    def open(self, url, width, height, mobile=False):
        """A new page of width x height CSS pixels (mobile: a phone's viewport rules)
        showing url."""
        target = self.call("Target.createTarget", session=False, url="about:blank")
        self.session = self.call("Target.attachToTarget", session=False,
                                 targetId=target["targetId"], flatten=True)["sessionId"]
        self.resize(width, height, mobile)
        self.call("Page.enable")
        self.call("Page.navigate", url=url)

    def resize(self, width, height, mobile=False):
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=mobile)

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page (JSON-able, or awaited)."""
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                      awaitPromise=True)
        if "exceptionDetails" in r:
            raise CdpError(f"{expression!r} threw: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expression, timeout=30.0, what=None):
        """Polls expression in the page until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.evaluate(expression)
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError(f"page never showed {what or expression} "
                                     f"within {timeout:.0f}s (last: {v!r})")
            time.sleep(0.1)

    def html(self):
        return self.evaluate("document.documentElement.outerHTML")

    def screenshot(self, path):
        """A PNG of the viewport."""
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            if self.proc.poll() is None:
                try:
                    self.call("Browser.close", session=False)
                except (CdpError, OSError):
                    pass
        finally:
            try:  # helpers (zygote, GPU, network service) must not outlive the run
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
            for fd in (self._to_chrome, self._from_chrome):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._err.close()
            shutil.rmtree(self.profile, ignore_errors=True)
