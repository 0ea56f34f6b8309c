// The live status page served on the admin address at GET / and /index.html, for people
// without Grafana. Main thread (the admin server); the page is a constant.
#pragma once

#include <string>

namespace speedmon::proxy {

// One self-contained HTML document (inline CSS and JavaScript, no external assets: the
// sidecar's network may be closed). In the browser it polls the admin JSON APIs every
// 2 s (relative URLs: api/v1/upstreams, system, sla, alerts, requests?limit=20,
// processes) and renders them with textContent only, so no data is ever parsed as HTML.
// A failed poll shows a "stale" banner and keeps the last values, dimmed.
// Serve it as "text/html; charset=utf-8". Stable hooks for tests: #sla-overall,
// #stale-banner, [data-testid=upstream-NAME], endpoint / route-row / alert-row /
// request-row / process-row / sla-REQUIREMENT, and data-col on table cells.
const std::string& StatusPageHtml();

}  // namespace speedmon::proxy
