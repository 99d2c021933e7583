/* SPDX-License-Identifier: MIT */
/* HTTP/2 towards a server, sans-IO, on nghttp2's client session: the
 * mirror of proto/h2.h. The engine opens a stream per request and feeds
 * the request as HTTP/1.1 bytes (head, body as framed, chunked trailers);
 * the response comes back as HTTP/1.1 bytes: a status line, the fields,
 * and the body framed with Content-Length when the server sent one, else
 * chunked (trailers in the last chunk). Flow control follows the slower
 * side as in proto/h2.h. */
#ifndef RC_PROTO_H2UP_H
#define RC_PROTO_H2UP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/rc_err.h"

struct h2up;
struct h2up_stream;

/* Callbacks run inside h2up_input() and h2up_output(); they may call the
 * stream functions below, not input/output. |user| is the handle given to
 * h2up_open(). */
struct h2up_cb {
	/* Response bytes are ready (or the response is complete). */
	void (*on_resp_data)(void *arg, uint64_t user);
	/* The stream's request buffer has room again. */
	void (*on_req_room)(void *arg, uint64_t user);
	/* The stream failed before its response was complete: reset by the
	 * server (|code|), refused by GOAWAY, or the connection broke. */
	void (*on_reset)(void *arg, uint64_t user, uint32_t code);
};

struct h2up_opts {
	uint32_t stream_window; /* response bytes in flight per stream; 0: 256 KiB */
	uint32_t req_buffer;    /* request bytes held per stream; 0: 64 KiB */
};

/* A client-side connection; our SETTINGS and the preface are queued. */
int h2up_new(struct h2up **out, const struct h2up_cb *cb, void *arg,
	     const struct h2up_opts *opts) NONNULL(1, 2);
/* Frees the connection and every stream object; no callbacks run. */
void h2up_free(struct h2up *c);
/* Bytes from the server: consumed whole, or a negative code (broken). */
ssize_t h2up_input(struct h2up *c, const uint8_t *p, size_t n) NONNULL(1);
/* Bytes for the server, up to |cap|; 0 when none, negative when broken. */
ssize_t h2up_output(struct h2up *c, uint8_t *buf, size_t cap) NONNULL(1, 2);
/* May a new stream be opened (no GOAWAY, not broken)? */
bool h2up_usable(const struct h2up *c) NONNULL(1);
/* Streams the engine holds. */
size_t h2up_streams(const struct h2up *c) NONNULL(1);
/* The connection broke or closed: on_reset for every stream not done. */
void h2up_reset_all(struct h2up *c, uint32_t code) NONNULL(1);

/* A stream for one request. NULL when out of memory. The object stays
 * valid until h2up_stream_end(). */
struct h2up_stream *h2up_open(struct h2up *c, uint64_t user) NONNULL(1);
/* Request bytes (HTTP/1.1, origin or absolute form): returns how many
 * were taken (fewer when the buffer is full: wait for on_req_room), or a
 * negative code (RC_H1_* for a head that cannot be sent, -EPIPE when the
 * stream is gone). |scheme| names the :scheme ("https"). */
ssize_t h2up_req_feed(struct h2up *c, struct h2up_stream *st,
		      const char *scheme, const char *p, size_t n)
	NONNULL(1, 2, 3);
/* The response bytes not taken yet; *p valid until the next call on |c|. */
size_t h2up_resp_peek(struct h2up *c, struct h2up_stream *st, const char **p)
	NONNULL(1, 2, 3);
void h2up_resp_consume(struct h2up *c, struct h2up_stream *st, size_t n)
	NONNULL(1, 2);
/* Fields at the end of the response head that were added for HTTP/1.1
 * (Content-Length: 0, Transfer-Encoding: chunked), not sent by the server. */
uint32_t h2up_resp_synth(const struct h2up_stream *st) NONNULL(1);
/* The engine is done with the stream; one not finished is reset (CANCEL).
 * Frees |st|. */
void h2up_stream_end(struct h2up *c, struct h2up_stream *st) NONNULL(1, 2);

#endif
