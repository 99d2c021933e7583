/* SPDX-License-Identifier: MIT */
/* What proto/h2.c (HTTP/2 towards clients) and proto/h2up.c (towards
 * servers) share: a byte buffer, and turning HTTP/1.1 fields into HTTP/2
 * ones (names lowercased, connection-specific fields dropped). Internal
 * to proto/. */
#ifndef RC_PROTO_H2_UTIL_H
#define RC_PROTO_H2_UTIL_H
#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc_err.h"
#include "proto/h1.h"

/* A growable byte buffer; the bytes not taken yet are [rd, wr). */
struct h2_buf {
	char *p;
	size_t rd, wr, cap;
};

static inline size_t h2_buf_len(const struct h2_buf *b) { return b->wr - b->rd; }
/* Append |n| bytes (compacting or growing). 0 or -ENOMEM. */
int h2_buf_add(struct h2_buf *b, const void *d, size_t n) NONNULL(1);
int h2_buf_str(struct h2_buf *b, const char *s) NONNULL(1, 2);
void h2_buf_free(struct h2_buf *b) NONNULL(1);

/* Copy |n| bytes of a field name, ASCII upper case lowered. */
void h2_lower(char *dst, const char *src, size_t n) NONNULL(1, 2);

/* Connection-specific fields (RFC 9113 8.2.2) that HTTP/2 must not carry:
 * Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade,
 * and TE (the caller keeps "te: trailers" in requests if it wants). */
bool h2_hop_by_hop(const char *n, size_t nl) NONNULL(1);
/* Is |n| an option of a Connection field among |hs| (RFC 9110 7.6.1)? */
bool h2_named_by_connection(const struct h1_header *hs, size_t nh,
			    const char *n, size_t nl);

/* Frames nghttp2 has to send, copied into |buf| (up to |cap|); what does
 * not fit stays in |*pend| (nghttp2's memory, valid until its next
 * mem_send) for the next call. Returns the bytes copied or -EPROTO (a
 * failure of nghttp2 itself). */
ssize_t h2_session_output(nghttp2_session *ng, const uint8_t **pend,
			  size_t *pend_len, uint8_t *buf, size_t cap)
	NONNULL(1, 2, 3, 4);

/* One message body on its way from HTTP/1.1 bytes into DATA frames (and
 * trailers): the engine's bytes are decoded into |out| while it holds
 * less than a cap (that is the flow control towards the engine), and the
 * nghttp2 data source drains it (h2_body_out_read). */
struct h2_body_out {
	struct h1_body b;  /* the HTTP/1.1 framing being decoded */
	struct h2_buf out; /* decoded bytes waiting for DATA frames */
	struct h2_buf trl; /* the chunked trailer section, raw */
	bool done;         /* the body has ended (trailers are in |trl|) */
	bool deferred;     /* the data source said DEFERRED: resume it */
};

void h2_body_out_init(struct h2_body_out *o, enum h1_body_kind kind,
		      uint64_t content_length) NONNULL(1);
void h2_body_out_free(struct h2_body_out *o) NONNULL(1);
/* Decode raw HTTP/1.1 body bytes while |out| holds less than |cap|.
 * Returns how many of the |n| bytes were used (all of them once the body
 * has ended: nothing follows a finished message), or a negative RC_H1_*
 * code / -ENOMEM. */
ssize_t h2_body_out_feed(struct h2_body_out *o, const char *p, size_t n,
			 size_t cap) NONNULL(1);
/* The data source read callback's work for stream |sid|: copy up to |len|
 * bytes into |buf|; at the end set NGHTTP2_DATA_FLAG_EOF and submit the
 * trailers (then NO_END_STREAM too). Returns the bytes copied, or
 * NGHTTP2_ERR_DEFERRED (|deferred| set) when there are none yet. */
ssize_t h2_body_out_read(struct h2_body_out *o, nghttp2_session *ng,
			 int32_t sid, uint8_t *buf, size_t len,
			 uint32_t *flags, struct h1_header *scratch, size_t max)
	NONNULL(1, 2, 4, 6, 7);
/* Resume a deferred data source once there is something to send. */
void h2_body_out_resume(struct h2_body_out *o, nghttp2_session *ng,
			int32_t sid) NONNULL(1, 2);

/* The other way: a DATA payload as HTTP/1.1 body bytes (|chunked|: one
 * chunk), and the end of the body (the last chunk, with |trailer_lines|,
 * "name: value\r\n" each, when chunked; they are used up either way).
 * 0 or -ENOMEM. */
int h2_body_in_data(struct h2_buf *dst, bool chunked, const void *d, size_t n)
	NONNULL(1);
int h2_body_in_end(struct h2_buf *dst, bool chunked,
		   struct h2_buf *trailer_lines) NONNULL(1, 3);

/* Submit the raw trailer section |raw| ("Name: value\r\n"... "\r\n", as
 * an HTTP/1.1 chunked body ends) as HTTP/2 trailers on |sid|, names
 * lowercased and connection-specific fields dropped. |scratch| (|max|
 * entries) holds the parse. Returns 0 when trailers were submitted (the
 * DATA before them must then not end the stream), 1 when there were none
 * to send, or a negative code. Callable from a data source read callback. */
int h2_submit_trailer_section(nghttp2_session *ng, int32_t sid,
			      const char *raw, size_t n,
			      struct h1_header *scratch, size_t max)
	NONNULL(1, 5);

#endif
