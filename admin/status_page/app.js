"use strict";
(function () {
  const POLL_MS = 2000, FETCH_TIMEOUT_MS = 5000, DASH = "\u2013";
  const $ = (id) => document.getElementById(id);

  // Every node is built here; text only ever enters through text nodes or attributes.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "text") e.textContent = String(v);
      else if (k === "cls") e.className = v;
      else e.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  const finite = (v) => typeof v === "number" && isFinite(v);
  const num = (v, d) => (finite(v) ? v.toFixed(d) : DASH);
  const pct = (v) => (finite(v) ? v.toFixed(1) + " %" : DASH);
  const ms = (v) => (finite(v) ? v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0) + " ms" : DASH);
  function bytes(n) {
    if (!finite(n)) return DASH;
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + " " + u[i];
  }
  function duration(s) {
    if (!finite(s)) return DASH;
    s = Math.floor(s);
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    return m ? m + "m " + (s % 60) + "s" : s + "s";
  }
  const pad = (n, w) => String(n).padStart(w || 2, "0");
  function clock(date) {
    if (isNaN(date.getTime())) return DASH;
    return pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds());
  }
  const unixClock = (t) => (finite(t) ? clock(new Date(t * 1000)) : DASH);
  const isoClock = (t) => (typeof t === "string" ? clock(new Date(t)) : DASH);
  const badge = (text, kind) => el("span", {cls: "badge " + kind, text: text});
  const empty = (text) => el("p", {cls: "empty", text: text});
  const td = (col, value, cls) => el("td", {"data-col": col, cls: cls || null}, value);
  const numTd = (col, value) => td(col, value, "num");
  function table(head, rows) {
    const thead = el("tr");
    for (const h of head) {
      const n = h.endsWith("#");
      thead.appendChild(el("th", {cls: n ? "num" : null, text: n ? h.slice(0, -1) : h}));
    }
    return el("table", {}, el("thead", {}, thead), el("tbody", {}, ...rows));
  }
  const level = (v, bad) => (!finite(v) ? "na" : v >= bad ? "bad" : v >= bad - 15 ? "warn" : "ok");
  function bar(v, bad) {
    const fill = el("span", {cls: level(v, bad) === "ok" ? null : level(v, bad)});
    fill.style.width = (finite(v) ? Math.min(100, Math.max(0, v)) : 0) + "%";
    return el("span", {cls: "bar"}, fill);
  }
  const list = (v) => (Array.isArray(v) ? v : []);
  // Keys from JSON ("toString", "constructor") must not reach Object.prototype.
  const own = (o, k) => (o && typeof o === "object" && Object.hasOwn(o, k) ? o[k] : undefined);

  function renderSystem(s) {
    const rows = [];
    const gauge = (label, id, v, bad, extra) =>
      el("tr", {"data-testid": id}, el("th", {text: label}),
         td("value", el("span", {}, bar(v, bad), pct(v), extra || "")));
    rows.push(gauge("CPU", "sys-cpu", s.cpu_percent, 85,
                    finite(s.cpu_count) ? " of " + s.cpu_count + " cores" : ""));
    rows.push(gauge("Memory", "sys-memory", s.memory_percent, 90,
                    finite(s.memory_total_bytes) ? " of " + bytes(s.memory_total_bytes) : ""));
    for (const d of list(s.disks)) {
      const row = gauge("Disk " + d.path, "sys-disk", d.percent, 90,
                        finite(d.total_bytes) ? " of " + bytes(d.total_bytes) : "");
      row.setAttribute("data-path", d.path);
      rows.push(row);
    }
    const load = list(s.load_average).map((x) => num(x, 2)).join(" / ");
    rows.push(el("tr", {"data-testid": "sys-load"}, el("th", {text: "Load 1/5/15m"}),
                 td("value", load || DASH)));
    rows.push(el("tr", {"data-testid": "sys-uptime"}, el("th", {text: "Host uptime"}),
                 td("value", duration(s.uptime_seconds))));
    return el("table", {}, el("tbody", {}, ...rows));
  }

  const SLA = {
    experiment_success_rate: ["Experiment success rate", "%"],
    script_compilation: ["Script compilation under target", "%"],
    checkpoint_loading: ["Checkpoint loading under target", "%"],
    pattern_quality: ["Pattern quality", ""],
    system_availability: ["System availability", "%"],
  };
  function renderSla(s) {
    const ok = s.overall_sla_compliant;
    const overall = $("sla-overall");
    overall.className = "badge " + (ok === true ? "ok" : ok === false ? "bad" : "na");
    overall.textContent = ok === true ? "compliant" : ok === false ? "not compliant" : "no data";
    overall.setAttribute("data-state", ok === true ? "compliant" : ok === false ? "violated" : "none");
    const w = s.window || {};
    $("sla-window").textContent = "window: " + (finite(w.experiments) ? w.experiments : 0) +
        " experiments, " + (finite(w.patterns) ? w.patterns : 0) + " patterns";
    const comp = s.individual_compliance || {}, values = s.values || {}, targets = s.targets || {};
    const latency = s.latency_targets_ms || {};
    const keys = Object.keys(SLA).filter((k) => Object.hasOwn(comp, k))
        .concat(Object.keys(comp).filter((k) => !Object.hasOwn(SLA, k)));
    const rows = keys.map((k) => {
      const [label, unit] = own(SLA, k) || [k, ""];
      const fmt = (v) => (!finite(v) ? DASH : unit ? pct(v) : num(v, 2));
      const value = own(values, k), goal = own(targets, k), under = own(latency, k);
      let target = finite(goal) ? "\u2265 " + fmt(goal) : DASH;
      if (finite(under)) target += " under " + ms(under);
      const c = own(comp, k);
      return el("tr", {"data-testid": "sla-" + k, "data-state": c === true ? "met" : c === false ? "missed" : "none"},
                td("requirement", label),
                numTd("value", value === null || value === undefined ? "no data" : fmt(value)),
                numTd("target", target),
                td("state", c === true ? badge("met", "ok") : c === false ? badge("missed", "bad")
                                       : badge("no data", "na")));
    });
    return table(["Requirement", "Value#", "Target#", "State"], rows);
  }

  const SEVERITY = {critical: "bad", warning: "warn", info: "na"};
  function renderAlerts(a) {
    const active = list(a.alerts), resolved = list(a.resolved);
    const firing = active.filter((x) => x.state === "firing").length;
    const count = $("alerts-count");
    count.className = "badge " + (firing ? "bad" : active.length ? "warn" : "ok");
    count.textContent = firing + " firing" + (active.length - firing ? ", " + (active.length - firing) + " pending" : "");
    const summary = (x) => (x.annotations && x.annotations.summary) || x.description || "";
    const out = [];
    if (!active.length) out.push(empty("No pending or firing alerts."));
    else out.push(table(["State", "Severity", "Alert", "Value#", "Active since", "Summary"],
      active.map((x) => el("tr", {"data-testid": "alert-row", "data-name": x.name, "data-state": x.state},
        td("state", badge(String(x.state), x.state === "firing" ? "bad" : "warn")),
        td("severity", badge(String(x.severity), own(SEVERITY, x.severity) || "na")),
        td("name", x.name), numTd("value", num(x.value, 2)), td("active_at", isoClock(x.activeAt)),
        td("summary", summary(x), "wrap")))));
    if (resolved.length) {
      out.push(el("h3", {}, "Recently resolved"));
      out.push(table(["Alert", "Severity", "Resolved at", "Summary"],
        resolved.map((x) => el("tr", {"data-testid": "resolved-row", "data-name": x.name},
          td("name", x.name), td("severity", badge(String(x.severity), "na")),
          td("resolved_at", isoClock(x.resolvedAt)), td("summary", summary(x), "wrap")))));
    }
    return out;
  }

  function renderUpstreams(u) {
    const ups = list(u.upstreams);
    if (!ups.length) return [empty("No upstreams configured.")];
    return ups.map((up) => {
      const eps = list(up.endpoints);
      const healthy = eps.filter((e) => e.healthy === true).length;
      const h = el("h3", {}, up.name, el("span", {cls: "sub", "data-col": "healthy_count",
                  text: healthy + " of " + eps.length + " endpoints healthy"}));
      const epList = el("ul", {cls: "eps"}, ...eps.map((e) =>
        el("li", {"data-testid": "endpoint", "data-address": e.address, "data-healthy": e.healthy === true},
           el("span", {cls: "mono", text: e.address}),
           e.healthy === true ? badge("healthy", "ok") : badge("unhealthy", "bad"))));
      const routes = list(up.routes);
      const body = routes.length ? table(
        ["Route", "Requests#", "5xx#", "Success#", "p50#", "p95#", "p99#", "Avg#", "Max#", "Sent#", "Received#"],
        routes.map((r) => el("tr", {"data-testid": "route-row", "data-route": r.route},
          td("route", r.route), numTd("requests", r.requests), numTd("errors_5xx", r.errors_5xx),
          numTd("success_rate", r.requests > 0 ? pct(r.success_rate) : DASH),
          numTd("p50", ms(r.latency_ms && r.latency_ms.p50)), numTd("p95", ms(r.latency_ms && r.latency_ms.p95)),
          numTd("p99", ms(r.latency_ms && r.latency_ms.p99)), numTd("avg", ms(r.latency_ms && r.latency_ms.avg)),
          numTd("max", ms(r.latency_ms && r.latency_ms.max)), numTd("request_bytes", bytes(r.request_bytes)),
          numTd("response_bytes", bytes(r.response_bytes)))))
        : empty("No requests yet.");
      return el("div", {cls: "upstream", "data-testid": "upstream-" + up.name, "data-name": up.name}, h, epList, body);
    });
  }

  function renderProcesses(p) {
    const out = [];
    const procs = list(p.processes);
    if (!procs.length) out.push(empty("No watched processes ([[processes]] in the config)."));
    else out.push(table(["Process", "State", "PID#", "CPU time#", "Memory#", "Threads#", "Open files#", "Restarts#"],
      procs.map((x) => el("tr", {"data-testid": "process-row", "data-name": x.name, "data-running": x.running === true},
        td("name", x.name), td("state", x.running ? badge("running", "ok") : badge("not running", "bad")),
        numTd("pid", x.pid === null || x.pid === undefined ? DASH : x.pid),
        numTd("cpu_seconds", finite(x.cpu_seconds) ? x.cpu_seconds.toFixed(2) + " s" : DASH),
        numTd("resident_bytes", bytes(x.resident_bytes)), numTd("threads", x.threads),
        numTd("open_fds", x.open_fds), numTd("restarts", x.restarts)))));
    const eps = list(p.endpoints);
    if (eps.length) {
      out.push(el("h3", {}, "Endpoint health checks"));
      out.push(table(["Upstream", "Endpoint", "Health", "Checks#", "Failed checks#", "Failures#", "Last check", "Last result", "Startup#"],
        eps.map((e) => el("tr", {"data-testid": "healthcheck-row", "data-endpoint": e.endpoint, "data-healthy": e.healthy === true},
          td("upstream", e.upstream), td("endpoint", e.endpoint, "mono"),
          td("healthy", e.healthy ? badge("healthy", "ok") : badge("unhealthy", "bad")),
          numTd("checks", e.checks), numTd("check_failures", e.check_failures), numTd("failures", e.failures),
          td("last_check", unixClock(e.last_check)), td("last_result", e.last_result || DASH),
          numTd("startup_seconds", finite(e.startup_seconds) ? e.startup_seconds.toFixed(2) + " s" : DASH)))));
    }
    return out;
  }

  // ---- the last minutes as small charts (api/v1/timeseries) ----
  // Each chart is an inline SVG of paths in a 0..W x 0..H box stretched to the card's
  // width (the strokes do not scale); labels are HTML beside it, so text never stretches.
  // x is time (the right edge is the newest sample, the left edge `capacity` samples
  // earlier), y runs from 0 to a rounded maximum (0..100 for percentages). A sample
  // without a value (no requests, no data) breaks the line.
  const SVG_NS = "http://www.w3.org/2000/svg", W = 300, H = 60;
  function svg(tag, attrs) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    return e;
  }
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }
  const sum = (a) => list(a).reduce((s, x) => s + (finite(x) ? x : 0), 0);
  const lastOf = (a) => { const v = list(a).filter(finite); return v.length ? v[v.length - 1] : null; };
  function spanText(s) {
    return s >= 3600 ? +(s / 3600).toFixed(1) + "h" : s >= 60 ? +(s / 60).toFixed(1) + "m" : +s.toFixed(1) + "s";
  }
  // series: [{name, values, legend}]; opts: {id, title, unit, percent}.
  function chart(t, opts, series) {
    const times = list(t.time), n = times.length;
    const span = (finite(t.capacity) ? t.capacity : n) * (finite(t.interval_seconds) ? t.interval_seconds : 1);
    const newest = n ? times[n - 1] : 0;
    let top = 100;
    if (!opts.percent) {
      let m = 0;
      for (const s of series) for (const v of list(s.values)) if (finite(v) && v > m) m = v;
      top = niceMax(m);
    }
    const x = (i) => (W * (1 - (newest - times[i]) / span)).toFixed(1);
    const y = (v) => (H - 1 - ((H - 2) * Math.min(v, top)) / top).toFixed(1);  // 1 unit spare: whole strokes
    const box = svg("svg", {viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none",
                            "class": "spark", "aria-hidden": "true"});
    for (const f of [0.5, 1]) box.appendChild(svg("line", {x1: 0, x2: W, y1: H * (1 - f), y2: H * (1 - f), "class": "grid"}));
    const legend = el("ul", {cls: "legend"});
    series.forEach((s, k) => {
      const vals = list(s.values);
      let d = "", pts = 0, pen = false;
      for (let i = 0; i < n && i < vals.length; i++) {
        if (!finite(vals[i]) || !finite(times[i])) { pen = false; continue; }
        d += (pen ? "L" : "M") + x(i) + " " + y(vals[i]) + (pen ? " " : " h0 ");
        pen = true;
        pts++;
      }
      box.appendChild(svg("path", {d: d.trim(), "class": "line c" + (k % 8),
                                   "data-series": s.name, "data-points": pts}));
      legend.appendChild(el("li", {"data-series": s.name}, el("span", {cls: "swatch c" + (k % 8)}),
                            el("span", {cls: "name", text: s.name}), el("span", {cls: "val", text: s.legend})));
    });
    const fmt = opts.percent ? (v) => v + " %" : (v) => +v.toPrecision(3) + (opts.unit ? " " + opts.unit : "");
    return el("figure", {cls: "chart", "data-testid": "chart-" + opts.id, "data-points": n, "data-series": series.length},
      el("figcaption", {text: opts.title}),
      el("div", {cls: "plot"}, el("span", {cls: "ymax", text: fmt(top)}), box),
      el("div", {cls: "axis"}, el("span", {text: "\u2212" + spanText(span)}), el("span", {text: "now"})),
      legend);
  }
  function renderCharts(t) {
    const span = (finite(t.capacity) ? t.capacity : 0) * (finite(t.interval_seconds) ? t.interval_seconds : 0);
    $("charts-span").textContent = span >= 60 ? +(span / 60).toFixed(1) + " minutes" : +span.toFixed(1) + " seconds";
    const ups = list(t.upstreams), every = finite(t.interval_seconds) ? spanText(t.interval_seconds) : "sample";
    const per = (key, legend) => ups.map((u) => ({name: String(u.name), values: u[key], legend: legend(u)}));
    const windowPct = (u) => { const r = sum(u.requests); return r ? pct((100 * sum(u.successes)) / r) : DASH; };
    const lastPct = (a) => pct(lastOf(a));
    const out = [
      chart(t, {id: "requests", title: "Requests/s", unit: "/s"},
            per("requests_per_second", (u) => sum(u.requests) + " requests")),
      chart(t, {id: "p95", title: "p95 latency", unit: "ms"}, per("p95_ms", (u) => ms(lastOf(u.p95_ms)))),
      chart(t, {id: "errors", title: "5xx per " + every, unit: ""}, per("errors_5xx", (u) => sum(u.errors_5xx) + " 5xx")),
      chart(t, {id: "success", title: "HTTP success (2xx\u20133xx)", percent: true}, per("success_percent", windowPct)),
      chart(t, {id: "experiments", title: "Experiments per " + every, unit: ""}, [
        {name: "stored", values: t.experiments, legend: String(sum(t.experiments))},
        {name: "success", values: t.experiment_successes, legend: String(sum(t.experiment_successes))}]),
      chart(t, {id: "experiment-success", title: "Experiment success (SLA window)", percent: true}, [
        {name: "success rate", values: t.experiment_success_rate, legend: lastPct(t.experiment_success_rate)}]),
      chart(t, {id: "cpu", title: "Host CPU", percent: true}, [
        {name: "cpu", values: t.cpu_percent, legend: lastPct(t.cpu_percent)}]),
      chart(t, {id: "memory", title: "Host memory", percent: true}, [
        {name: "memory", values: t.memory_percent, legend: lastPct(t.memory_percent)}]),
    ];
    return [el("div", {cls: "charts"}, ...out)];
  }

  const statusKind = (s) => (s >= 500 || !s ? "bad" : s >= 400 ? "warn" : s >= 300 ? "na" : "ok");
  function renderRequests(r) {
    const reqs = list(r.requests);
    if (!reqs.length) return [empty("No requests yet.")];
    return [table(["Time", "Upstream", "Route", "Method", "Path", "Status", "Duration#", "Request ID"],
      reqs.map((x) => el("tr", {"data-testid": "request-row", "data-request-id": x.request_id},
        td("time", unixClock(x.time)), td("upstream", x.upstream), td("route", x.route),
        td("method", x.method), el("td", {"data-col": "path", cls: "path mono", title: x.path, text: x.path}),
        td("status", badge(String(x.status), statusKind(x.status))), numTd("duration_ms", ms(x.duration_ms)),
        td("request_id", x.request_id, "mono"))))];
  }

  const SOURCES = [
    ["upstreams", "api/v1/upstreams", "upstreams-body", renderUpstreams],
    ["system", "api/v1/system", "system-body", renderSystem],
    ["sla", "api/v1/sla", "sla-body", renderSla],
    ["alerts", "api/v1/alerts", "alerts-body", renderAlerts],
    ["requests", "api/v1/requests?limit=20", "requests-body", renderRequests],
    ["processes", "api/v1/processes", "processes-body", renderProcesses],
    ["timeseries", "api/v1/timeseries", "charts-body", renderCharts],
  ];

  async function getJson(url) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
    try {
      const r = await fetch(url, {cache: "no-store", signal: ctl.signal, headers: {Accept: "application/json"}});
      if (!r.ok) throw new Error("HTTP " + r.status);
      return await r.json();
    } finally {
      clearTimeout(timer);
    }
  }

  // The samples change once an interval (5 s by default), so they are fetched again only
  // when a new one may have come; the polls between reuse the last answer.
  let series = null, seriesAt = 0;
  function getSeries(url) {
    const every = series && finite(series.interval_seconds) ? series.interval_seconds * 1000 : 0;
    if (series && Date.now() - seriesAt < every) return Promise.resolve(series);
    return getJson(url).then((t) => { series = t; seriesAt = Date.now(); return t; });
  }

  let lastOk = null;
  async function poll() {
    try {
      await refresh();
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }
  async function refresh() {
    const results = await Promise.allSettled(
        SOURCES.map((s) => (s[0] === "timeseries" ? getSeries(s[1]) : getJson(s[1]))));
    const failed = [];
    results.forEach((res, i) => {
      const [name, , target, render] = SOURCES[i];
      if (res.status !== "fulfilled") {
        failed.push(name + ": " + ((res.reason && res.reason.message) || "failed"));
        return;
      }
      let nodes;
      try {
        nodes = render(res.value || {});
      } catch (e) {  // unexpected JSON: say so in that section, keep polling
        nodes = el("p", {cls: "error", text: "Cannot show this data: " + e.message});
      }
      $(target).replaceChildren(...(Array.isArray(nodes) ? nodes : [nodes]));
    });
    const now = new Date();
    if (!failed.length) lastOk = now;
    $("stale-banner").hidden = !failed.length;
    document.body.classList.toggle("stale", failed.length > 0);
    $("stale-detail").textContent = failed.length ? "Last update " + (lastOk ? clock(lastOk) : "never") +
        "; failed: " + failed.join(", ") : "";
    $("updated").textContent = lastOk ? "updated " + clock(lastOk) : "no data yet";
  }
  poll();
})();
