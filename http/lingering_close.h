// Lingering close (RFC 9112 9.6), the one way speedmon's servers (the proxy's client side
// and the admin server) end a connection after a final answer: half-close, keep reading
// and dropping what the client still sends until it closes or kLingeringCloseMs pass, then
// close. Closing at once would let the kernel answer unread request bytes with a reset,
// which can destroy the answer before the client reads it.
//
// Libuv only; main or worker loop, whichever owns the stream.
#pragma once

#include <uv.h>

#include <cstdint>

namespace speedmon::http {

// How long a closing connection drains the client before it is closed anyway.
inline constexpr uint64_t kLingeringCloseMs = 2000;

// Sends FIN once the queued writes are out. `req->data` must be set by the caller;
// `on_shutdown` runs when the FIN went out (or failed). Returns false when the shutdown
// could not start: close the connection then. The caller keeps reading (and dropping)
// and arms its own timer for kLingeringCloseMs.
inline bool BeginLingeringClose(uv_stream_t* stream, uv_shutdown_t* req,
                                uv_shutdown_cb on_shutdown) {
  return uv_shutdown(req, stream, on_shutdown) == 0;
}

// Whether the shutdown's result ends the lingering: a failure (not a cancellation, which
// means the connection is already closing), or the client had already finished sending.
inline bool LingeringDone(int shutdown_status, bool peer_eof) {
  return shutdown_status != UV_ECANCELED && (shutdown_status < 0 || peer_eof);
}

}  // namespace speedmon::http
