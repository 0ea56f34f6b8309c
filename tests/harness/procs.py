"""Child processes and loopback ports for speedmon's Python tests.

Every process started here is registered and stopped at interpreter exit even when a
test never reaches its tearDown, and it also gets SIGKILL from the kernel if the test
runner dies (PR_SET_PDEATHSIG), so a crashed or timed-out test leaves nothing behind.
"""

import atexit
import ctypes
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

_PR_SET_PDEATHSIG = 1
_live = {}  # pid -> Process
_serial = itertools.count(1)
_temp_dirs = []  # made by temp_dir(); removed at exit


def temp_dir(prefix="speedmon-test-"):
    """A fresh directory, removed when the interpreter exits."""
    path = tempfile.mkdtemp(prefix=prefix)
    _temp_dirs.append(path)
    return path


def free_port(host="127.0.0.1"):
    """A TCP port on host that was free a moment ago (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_ports(n, host="127.0.0.1"):
    """n distinct free ports (held together while picking, so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _die_with_parent():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except OSError:
        pass


class Process:
    """A child whose stdout and stderr go to files in its own temp dir."""

    def __init__(self, argv, name=None, env=None, cwd=None, workdir=None):
        self.name = name or os.path.basename(argv[0])
        self.argv = list(argv)
        self.workdir = workdir or temp_dir(f"speedmon-{self.name}-")
        stem = os.path.join(self.workdir, f"{self.name}.{next(_serial)}")
        self.stdout_path = stem + ".stdout"
        self.stderr_path = stem + ".stderr"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=err, env=env, cwd=cwd,
                                          preexec_fn=_die_with_parent)
        self.pid = self.popen.pid
        _live[self.pid] = self

    def alive(self):
        return self.popen.poll() is None

    @property
    def returncode(self):
        return self.popen.poll()

    def stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr(self, tail=8000):
        with open(self.stderr_path, "rb") as f:
            data = f.read()
        return data[-tail:].decode("utf-8", "replace")

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def wait(self, timeout):
        """Returns the exit code, or None if still running after timeout seconds."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL after timeout. Returns the exit code (negative = signal)."""
        if self.alive():
            self.signal(signal.SIGTERM)
            if self.wait(timeout) is None:
                self.popen.kill()
                self.popen.wait()
        _live.pop(self.pid, None)
        return self.popen.returncode

    def kill(self):
        if self.alive():
            self.popen.kill()
        self.popen.wait()
        _live.pop(self.pid, None)


def wait_for(predicate, timeout, interval=0.02, what="condition"):
    """Polls predicate() until it returns a truthy value, which is returned.

    Raises AssertionError naming `what` after timeout seconds. Used for readiness and
    for state changes, never to assert that something was fast.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


@atexit.register
def _stop_all():
    for proc in list(_live.values()):
        proc.kill()
    for path in _temp_dirs:
        shutil.rmtree(path, ignore_errors=True)
