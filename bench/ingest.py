#!/usr/bin/env python3
"""Ingest benchmark: durable experiment ingest through the admin API, and what
it costs the proxy.

  bench/ingest.py [--rounds N] [--seconds S]

- single: one experiment per POST, 16 concurrent connections (wrk -t2 -c16, Lua bodies
  with unique ids); every 201 means the row is committed in SQLite (WAL).
- batch: NDJSON batches of 1000 experiments per POST, 4 connections.
- proxy alone vs proxy while single-POST ingest runs: wrk -t1 -c64 on a listener in
  front of nginx serving 1 KiB; same machine, same run.
Counts are checked against speedmon's own pokemon_speedrun_experiments_total.
Rounds alternate; the table shows medians with min-max.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib as bl  # noqa: E402

SPEEDMON = os.environ.get("SPEEDMON_BIN",
                          os.path.join(HERE, "..", "build", "release", "app", "speedmon"))


def experiments_total(admin):
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=10).read().decode()
    return sum(float(m.group(1)) for m in
               re.finditer(r'^pokemon_speedrun_experiments_total\{[^}]*\} (\S+)$', text, re.M))


def wrk_lua(url, script, threads, conns, seconds, run):
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "10s",
           "-s", os.path.join(HERE, script), url]
    env = dict(os.environ, RUN=run)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 60)
    r = bl.parse_wrk(p.stdout)
    r["cmd"] = " ".join(cmd)
    r["wrk_rc"] = p.returncode
    r["raw"] = p.stdout + p.stderr
    return r


def med_range(xs):
    xs = sorted(xs)
    return f"{xs[len(xs) // 2]:,.0f} ({xs[0]:,.0f}-{xs[-1]:,.0f})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="speedmon-ingest-")
    for d in ("logs", "tmp", "www", "conf"):
        os.makedirs(os.path.join(tmp, d), exist_ok=True)
    with open(os.path.join(tmp, "www", "1k.json"), "w") as f:
        f.write('{"status":"ok","screen":"' + "x" * (1024 - 27) + '"}')
    procs = bl.Procs(os.path.join(tmp, "logs"))
    ports = bl.Ports()
    up, admin, listen = ports.get(), ports.get(), ports.get()
    conf_up = os.path.join(tmp, "conf", "upstream.conf")
    with open(conf_up, "w") as f:
        f.write(bl.nginx_upstream_conf(tmp, up))
    conf = os.path.join(tmp, "conf", "speedmon.toml")
    with open(conf, "w") as f:
        f.write(f"""[admin]
address = "127.0.0.1:{admin}"
max_body_bytes = 4194304
[proxy]
workers = 1
recent_requests = 0
[[listeners]]
name = "emu"
address = "127.0.0.1:{listen}"
upstream = "emu"
[[upstreams]]
name = "emu"
endpoints = ["127.0.0.1:{up}"]
[speedrun]
store_path = "{tmp}/ingest.db"
[alerting]
default_rules = false
""")
    rows = {"single": [], "batch": [], "proxy_alone": [], "proxy_during_ingest": [],
            "ingest_during_proxy": []}
    problems = []
    try:
        procs.start("upstream", ["nginx", "-p", tmp, "-c", conf_up,
                                 "-e", f"{tmp}/logs/upstream-error.log"])
        bl.wait_http(up, "/1k.json")
        procs.start("speedmon", [SPEEDMON, "--config", conf])
        bl.wait_http(admin, "/healthz")
        bl.wait_http(listen, "/1k.json")
        admin_url = f"http://127.0.0.1:{admin}"
        proxy_url = f"http://127.0.0.1:{listen}/1k.json"
        for rnd in range(args.rounds):
            before = experiments_total(admin)
            r = wrk_lua(admin_url, "ingest_single.lua", 2, 16, args.seconds, f"s{rnd}")
            got = experiments_total(admin) - before
            # Requests still in flight when wrk stops are committed but not counted by wrk.
            if bl.errors_of(r) or not r["requests"] <= got <= r["requests"] + 16:
                problems.append(f"single round {rnd}: wrk {r['requests']} requests, "
                                f"{bl.errors_of(r)} errors, counter +{got:.0f}")
            rows["single"].append(got / args.seconds)

            before = experiments_total(admin)
            r = wrk_lua(admin_url, "ingest_batch.lua", 1, 4, args.seconds, f"b{rnd}")
            got = experiments_total(admin) - before
            if bl.errors_of(r) or not 1000 * r["requests"] <= got <= 1000 * (r["requests"] + 4):
                problems.append(f"batch round {rnd}: wrk {r['requests']} batches, "
                                f"{bl.errors_of(r)} errors, counter +{got:.0f}")
            rows["batch"].append(got / args.seconds)

            r = bl.run_wrk(proxy_url, 64, args.seconds)
            rows["proxy_alone"].append(r["rps"] or 0)

            result = {}

            def ingest():
                b = experiments_total(admin)
                w = wrk_lua(admin_url, "ingest_single.lua", 1, 16, args.seconds, f"c{rnd}")
                result["ingest"] = (experiments_total(admin) - b) / args.seconds
                result["ingest_errors"] = bl.errors_of(w)
            t = threading.Thread(target=ingest)
            t.start()
            r = bl.run_wrk(proxy_url, 64, args.seconds)
            t.join()
            rows["proxy_during_ingest"].append(r["rps"] or 0)
            rows["ingest_during_proxy"].append(result["ingest"])
            if bl.errors_of(r) or result["ingest_errors"]:
                problems.append(f"concurrent round {rnd}: proxy errors {bl.errors_of(r)}, "
                                f"ingest errors {result['ingest_errors']}")
    finally:
        procs.stop_all()
    print(f"ingest benchmark: {args.rounds} rounds x {args.seconds}s, nproc={os.cpu_count()}, "
          "speedmon workers=1, store on disk (WAL)")
    print("| measurement | median (min-max) |")
    print("|---|---|")
    print(f"| single POSTs, 16 connections: experiments/s | {med_range(rows['single'])} |")
    print(f"| NDJSON batches of 1000, 4 connections: experiments/s | {med_range(rows['batch'])} |")
    print(f"| proxy 1 KiB, 64 connections, alone: requests/s | {med_range(rows['proxy_alone'])} |")
    print(f"| proxy 1 KiB, 64 connections, during single-POST ingest: requests/s | "
          f"{med_range(rows['proxy_during_ingest'])} |")
    print(f"| single-POST ingest during proxy load: experiments/s | "
          f"{med_range(rows['ingest_during_proxy'])} |")
    alone = sorted(rows["proxy_alone"])[len(rows["proxy_alone"]) // 2]
    during = sorted(rows["proxy_during_ingest"])[len(rows["proxy_during_ingest"]) // 2]
    if alone:
        print(f"\nproxy throughput during ingest: {during / alone:.2f}x of alone")
    for p in problems:
        print("PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
