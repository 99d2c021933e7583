/* SPDX-License-Identifier: MIT */
/* HTTP/2 towards a client, sans-IO, on nghttp2's session API: the engine
 * feeds the client's bytes and takes the bytes to send; each stream's
 * request comes out as HTTP/1.1 bytes (head, then the body framed with
 * Content-Length or chunked, trailers in the last chunk) and each stream's
 * response goes in as HTTP/1.1 bytes, so the engine's HTTP/1 machinery
 * (routing, upstream connections, pooling, capture) serves every stream
 * unchanged. Nothing here reads a clock or touches a socket.
 *
 * Flow control follows the slower side both ways: request bytes are
 * acknowledged to the client (WINDOW_UPDATE) only as the engine takes
 * them, and response bytes are accepted from the engine only while the
 * stream's buffer has room (h2conn_resp_feed returns less than it was
 * given; on_resp_room says when to try again). */
#ifndef RC_PROTO_H2_H
#define RC_PROTO_H2_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/rc_err.h"

/* The client connection preface (RFC 9113 section 3.4). */
#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24

/* Does buf[0..len) start with the preface? 1 yes, 0 too short to tell,
 * -1 no. */
int h2_sniff_preface(const char *buf, size_t len) NONNULL(1);

struct h2conn;

/* What the connection tells the engine. |user| is the engine's handle for
 * a stream, as on_request returned it (never 0). Callbacks run inside
 * h2conn_input() (and on_resp_room also inside h2conn_output()); they may
 * call the h2conn_req_* / h2conn_resp_* functions, not input/output. */
struct h2conn_cb {
	/* A request head is complete on stream |sid|; its HTTP/1.1 bytes can
	 * be taken with h2conn_req_peek(). Return the stream's handle, or 0
	 * to refuse the stream (it is reset with REFUSED_STREAM). */
	uint64_t (*on_request)(void *arg, int32_t sid);
	/* More request bytes are ready on the stream. */
	void (*on_req_data)(void *arg, uint64_t user);
	/* The stream's response buffer has room again. */
	void (*on_resp_room)(void *arg, uint64_t user);
	/* The stream ended before the engine finished it: the client reset it
	 * (|code| is the HTTP/2 error code) or the connection is going away.
	 * No further calls for |user| follow. */
	void (*on_reset)(void *arg, uint64_t user, uint32_t code);
};

struct h2conn_opts {
	uint32_t max_concurrent_streams; /* 0: 100 */
	uint32_t stream_window;          /* request bytes in flight per stream; 0: 256 KiB */
	uint32_t resp_buffer;            /* response bytes held per stream; 0: 64 KiB */
	size_t max_header_list;          /* 0: 64 KiB */
};

/* Create a server-side connection; the server's SETTINGS are queued for
 * output. Returns 0 or -ENOMEM. The caller frees it with h2conn_free(). */
int h2conn_new(struct h2conn **out, const struct h2conn_cb *cb, void *arg,
	       const struct h2conn_opts *opts) NONNULL(1, 2);
/* Frees the connection and every stream; no callbacks run. */
void h2conn_free(struct h2conn *c);

/* Feed bytes from the client. Returns the number consumed (all of them)
 * or a negative code: the connection is broken (a GOAWAY may still be
 * queued: flush the output, then close). */
ssize_t h2conn_input(struct h2conn *c, const uint8_t *p, size_t n)
	NONNULL(1);
/* Copy up to |cap| bytes to send to the client into |buf|. Returns the
 * number copied (0: nothing to send now) or a negative code (broken). */
ssize_t h2conn_output(struct h2conn *c, uint8_t *buf, size_t cap)
	NONNULL(1, 2);
/* Does the connection still want to read or write? false: close it. */
bool h2conn_alive(const struct h2conn *c) NONNULL(1);
/* Streams open from the client's side and not yet finished. */
size_t h2conn_open_streams(const struct h2conn *c) NONNULL(1);
/* Graceful shutdown: GOAWAY naming the last stream taken; streams in
 * progress finish, new ones are refused. */
void h2conn_shutdown(struct h2conn *c) NONNULL(1);
/* Reset every stream the engine still holds (on_reset runs for each):
 * the engine is tearing the connection down. */
void h2conn_reset_all(struct h2conn *c) NONNULL(1);

/* ---- requests ---- */

/* The request bytes of |sid| not taken yet: *p points at them (valid
 * until the next call on |c|). Returns their length, 0 if none yet. */
size_t h2conn_req_peek(struct h2conn *c, int32_t sid, const char **p)
	NONNULL(1, 3);
/* The engine took |n| bytes (from the front of what peek showed). */
void h2conn_req_consume(struct h2conn *c, int32_t sid, size_t n) NONNULL(1);
/* The request has been handed over whole (end of stream seen and every
 * byte taken). */
bool h2conn_req_done(struct h2conn *c, int32_t sid) NONNULL(1);
/* How many header fields at the end of the request head were added for
 * HTTP/1.1 (Host, Content-Length, Transfer-Encoding) and are no part of
 * what the client sent. */
uint32_t h2conn_req_synth(struct h2conn *c, int32_t sid) NONNULL(1);

/* ---- responses ---- */

/* HTTP/1.1 response bytes for |sid| (head, then the body as framed).
 * Returns how many were taken (less than |n| when the stream's buffer is
 * full: wait for on_resp_room), -ENOENT when the stream is gone, or an
 * RC_H1_* code when the bytes are not a valid response. */
ssize_t h2conn_resp_feed(struct h2conn *c, int32_t sid, const char *p,
			 size_t n) NONNULL(1);
/* The engine is done with |sid|. |ok|: the response was given whole (a
 * body delimited by the upstream's close ends here); otherwise the stream
 * is reset (INTERNAL_ERROR) unless it already ended. No callbacks for the
 * stream follow. */
void h2conn_resp_end(struct h2conn *c, int32_t sid, bool ok) NONNULL(1);

#endif
