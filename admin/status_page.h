// The live status page served on the admin address at GET / and /index.html, for people
// without Grafana. Its HTML, CSS and JavaScript are the files in admin/status_page/,
// joined into one document and embedded when CMake configures the build. Main thread
// (the admin server); the page is a constant.
//
// Why it looks like this:
// - Self-contained: speedmon runs as a sidecar on networks with no way out, so no CDN,
//   no web fonts, no separate asset routes.
// - Data goes into the DOM only through textContent / setAttribute: upstream names,
//   paths, request ids and alert annotations come from configs and clients, and an alert
//   summary must not become markup in an operator's browser.
// - URLs are relative (api/v1/...), so the page also works behind a path-prefix proxy.
// - Polls are chained (the next starts 2 s after the last finished), so a slow speedmon
//   never piles up requests; a failed poll keeps the last values, dimmed, under a banner.
// - ASCII only in those files; the few typographic characters are entities or \u escapes.
// - The charts are inline SVG paths the page's own script draws from
//   api/v1/timeseries (no chart library: nothing to download, and a few dozen lines do
//   what these small line charts need); labels are HTML beside the SVG, which is
//   stretched to the card's width, so the page reflows down to a phone's width.
#pragma once

#include <string>

namespace speedmon::admin {

// One self-contained HTML document (inline CSS and JavaScript, no external assets: the
// sidecar's network may be closed). In the browser it polls the admin JSON APIs every
// 2 s (relative URLs: api/v1/upstreams, system, sla, alerts, requests?limit=20,
// processes, timeseries) and renders them with textContent only, so no data is ever parsed as HTML.
// A failed poll shows a "stale" banner and keeps the last values, dimmed.
// Serve it as "text/html; charset=utf-8". Stable hooks for tests: #sla-overall,
// #stale-banner, [data-testid=upstream-NAME], endpoint / route-row / alert-row /
// request-row / process-row / sla-REQUIREMENT, chart-NAME (figure.chart with
// data-points; a path per series with data-series and data-points; legend li
// data-series), and data-col on table cells.
const std::string& StatusPageHtml();

}  // namespace speedmon::admin
