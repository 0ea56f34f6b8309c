#!/usr/bin/python3
"""A slow HTTP reader: GETs a large response through a proxy, reads it at a fixed rate
for a fixed time, and samples the proxy's resident memory meanwhile.

It answers one question of bench/run.sh: does streaming a big response to a client that
cannot keep up make the proxy buffer it (RSS grows with what it has read from upstream
but not yet written), or does back-pressure hold memory flat?

Prints one JSON object: baseline and peak VmRSS (kB, summed over --pid), growth, bytes
read, the HTTP status line, and how the read ended.

    /usr/bin/python3 bench/slow_reader.py --port 18081 --path /100m.bin \
        --rate 1000000 --seconds 10 --pid 1234
"""
import argparse
import json
import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402


def rss_kb(pids):
    return benchlib.status_kb(pids, "VmRSS")


class Sampler(threading.Thread):
    def __init__(self, pids, interval):
        super().__init__(daemon=True)
        self.pids, self.interval = pids, interval
        self.peak = 0
        self.samples = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_kb(self.pids))
            self.samples += 1
            self.stop.wait(self.interval)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/100m.bin")
    ap.add_argument("--rate", type=int, default=1_000_000, help="bytes per second")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--pid", type=int, action="append", default=[],
                    help="a process whose RSS to sample (repeatable; summed)")
    ap.add_argument("--rcvbuf", type=int, default=0,
                    help="SO_RCVBUF for the client socket; 0 keeps the kernel default")
    args = ap.parse_args()

    baseline = rss_kb(args.pid)
    sampler = Sampler(args.pid, 0.1)
    sampler.start()

    sock = socket.create_connection((args.host, args.port), timeout=30)
    if args.rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
    sock.sendall(f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n\r\n".encode())

    chunk = max(1, args.rate // 20)  # 20 reads a second keeps the pace smooth
    start = time.monotonic()
    got = 0
    first = b""
    ended = "time"
    while True:
        elapsed = time.monotonic() - start
        if elapsed >= args.seconds:
            break
        allowed = int(args.rate * elapsed) + chunk
        if got >= allowed:
            time.sleep(min(0.05, args.seconds - elapsed))
            continue
        try:
            data = sock.recv(min(chunk, allowed - got))
        except OSError as e:
            ended = f"error: {e}"
            break
        if not data:
            ended = "eof"
            break
        if len(first) < 200:
            first += data[:200]
        got += len(data)
    sock.close()
    # The proxy frees the exchange after the close; keep sampling a moment to catch a
    # spike on teardown too.
    time.sleep(0.3)
    sampler.stop.set()
    sampler.join()

    status = first.split(b"\r\n", 1)[0].decode(errors="replace")
    print(json.dumps({
        "baseline_rss_kb": baseline,
        "peak_rss_kb": sampler.peak,
        "growth_kb": sampler.peak - baseline,
        "bytes_read": got,
        "seconds": round(time.monotonic() - start, 2),
        "status_line": status,
        "ended": ended,
        "samples": sampler.samples,
    }))


if __name__ == "__main__":
    main()
