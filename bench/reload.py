#!/usr/bin/env python3
"""Reloads under load: wrk against speedmon while it gets a SIGHUP every second, each with
a config that differs from the last (a route renamed, a second listener added or removed),
then the same against nginx (a HUP to its master, as `nginx -s reload` sends, with its
config changed the same way). Both proxy the same nginx upstream on loopback, one worker
each. Prints, per round and as median (min-max) over the rounds: requests/s, non-2xx
answers, socket errors (connect, read, write, timeout) and reloads done.

  bench/reload.py [--rounds 3] [--seconds 10] [--connections 64]

Exit status 1 when any round of either proxy had a non-2xx answer, a socket error or a
reload that was not applied. SPEEDMON_BIN selects the binary (default build/release)."""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def speedmon_conf(admin, port, extra_port, upstream, i):
    """Round i's config: route r<i> (a new label set each time) and, every other time, a
    second listener."""
    text = (f'[admin]\naddress = "127.0.0.1:{admin}"\n'
            '[proxy]\nworkers = 1\ndrain_timeout = "5s"\n'
            '[speedrun]\nstore_path = ""\n[alerting]\ndefault_rules = false\n'
            f'[[listeners]]\nname = "main"\naddress = "127.0.0.1:{port}"\nupstream = "up"\n')
    if i % 2:
        text += (f'[[listeners]]\nname = "extra"\naddress = "127.0.0.1:{extra_port}"\n'
                 'upstream = "up"\n')
    text += (f'[[upstreams]]\nname = "up"\nendpoints = ["127.0.0.1:{upstream}"]\n'
             '[[routes]]\nname = "status"\nprefix = "/status"\n'
             f'[[routes]]\nname = "r{i}"\nprefix = "/r{i}"\n')
    return text


def nginx_conf(prefix, port, extra_port, upstream, i):
    """bench's nginx proxy config with the same changes: a location /r<i> and, every
    other time, a second listener."""
    text = bl.nginx_proxy_conf(prefix, port, upstream)
    # notice: the level of nginx's "reconfiguring" line, which counts the reloads taken.
    text = text.replace("nginx-proxy-error.log warn;", "nginx-proxy-error.log notice;", 1)
    assert "notice;" in text
    extra = f"    location /r{i} {{ proxy_pass http://up; }}\n"
    text = text.replace("    location / {", extra + "    location / {", 1)
    if i % 2:
        text = text.replace(f"    listen 127.0.0.1:{port} backlog=4096;\n",
                            f"    listen 127.0.0.1:{port} backlog=4096;\n"
                            f"    listen 127.0.0.1:{extra_port};\n", 1)
    return text


def reloads_applied(admin):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith('pokemon_speedrun_config_reloads_total{result="success"}'):
                return int(float(line.split()[-1]))
    return None


def run_round(kind, args, tmp, ports, upstream, procs):
    """One wrk run with a reload every second; returns wrk's figures plus reloads."""
    port, extra, admin = ports
    conf = os.path.join(tmp, "conf", f"{kind}.conf")

    def write(i):
        text = (speedmon_conf(admin, port, extra, upstream, i) if kind == "speedmon"
                else nginx_conf(tmp, port, extra, upstream, i))
        with open(conf + ".new", "w") as f:
            f.write(text)
        os.replace(conf + ".new", conf)

    write(0)
    if kind == "speedmon":
        argv = [args.speedmon, "--config", conf]
    else:
        argv = ["nginx", "-e", f"{tmp}/logs/{kind}-error.log", "-p", tmp, "-c", conf]
    procs.start(kind, argv)
    ok, last = bl.wait_http(port, "/status")
    if not ok:
        raise RuntimeError(f"{kind} never answered: {last}\n{procs.log_tail(kind)}")
    sent = 0
    stop = threading.Event()

    def reloader():
        nonlocal sent
        while not stop.wait(1.0):
            write(sent + 1)
            os.kill(procs.pid(kind), signal.SIGHUP)
            sent += 1

    t = threading.Thread(target=reloader)
    t.start()
    try:
        r = bl.run_wrk(f"http://127.0.0.1:{port}/status", args.connections, args.seconds)
    finally:
        stop.set()
        t.join()
    time.sleep(1.5)  # the last reload finishes
    r["reloads_sent"] = sent
    if kind == "speedmon":
        r["reloads_applied"] = reloads_applied(admin)
    else:
        # nginx's master logs each reload it takes: "signal 1 (SIGHUP) received from ...".
        with open(f"{tmp}/logs/nginx-proxy-error.log", errors="replace") as f:
            r["reloads_applied"] = f.read().count("signal 1 (SIGHUP) received")
        os.truncate(f"{tmp}/logs/nginx-proxy-error.log", 0)
    r["alive"] = procs.alive(kind)
    procs.stop(kind)
    return r


def fmt(values, f="{:.0f}"):
    return f"{f.format(statistics.median(values))} ({f.format(min(values))}–{f.format(max(values))})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--speedmon", default=os.environ.get(
        "SPEEDMON_BIN", os.path.join(ROOT, "build/release/app/speedmon")))
    args = ap.parse_args()
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"reload.py: {tool} is missing (scripts/install-deps.sh)")
    tmp = tempfile.mkdtemp(prefix="speedmon-reload-bench-")
    for d in ("logs", "tmp", "conf", "www"):
        os.makedirs(os.path.join(tmp, d), exist_ok=True)
    with open(os.path.join(tmp, "www", "1k.json"), "w") as f:
        f.write('{"status":"ok"}')
    procs = bl.Procs(os.path.join(tmp, "logs"))
    ports = bl.Ports()
    results = {"speedmon": [], "nginx": []}
    try:
        upstream = ports.get()
        up_conf = os.path.join(tmp, "conf", "upstream.conf")
        with open(up_conf, "w") as f:
            f.write(bl.nginx_upstream_conf(tmp, upstream))
        procs.start("upstream", ["nginx", "-e", f"{tmp}/logs/upstream-error.log", "-p", tmp,
                                 "-c", up_conf])
        if not bl.wait_http(upstream, "/status")[0]:
            raise RuntimeError("the upstream nginx never answered")
        for n in range(args.rounds):
            for kind in ("speedmon", "nginx"):
                r = run_round(kind, args, tmp, (ports.get(), ports.get(), ports.get()),
                              upstream, procs)
                results[kind].append(r)
                print(f"round {n + 1} {kind:8s} {r['rps']:.0f} req/s, {r['requests']} requests, "
                      f"non-2xx {r['non2xx']}, socket errors connect {r['connect']} read "
                      f"{r['read']} write {r['write']} timeout {r['timeout']}, reloads "
                      f"{r['reloads_applied']}/{r['reloads_sent']}", flush=True)
    finally:
        procs.stop_all()
    print(f"\nwrk -t1 -c{args.connections} -d{args.seconds}s /status, a reload every second, "
          f"{args.rounds} rounds; median (min–max)\n")
    print("| proxy | req/s | non-2xx | socket errors | reloads applied / sent |")
    print("|---|---|---|---|---|")
    bad = False
    for kind, rs in results.items():
        if not rs:
            continue
        errs = [r["connect"] + r["read"] + r["write"] + r["timeout"] for r in rs]
        non2xx = [r["non2xx"] for r in rs]
        applied = [r["reloads_applied"] or 0 for r in rs]
        sent = [r["reloads_sent"] for r in rs]
        print(f"| {kind} | {fmt([r['rps'] or 0 for r in rs])} | {fmt(non2xx)} | {fmt(errs)} | "
              f"{fmt(applied)} / {fmt(sent)} |")
        bad = bad or any(errs) or any(non2xx) or applied != sent
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
