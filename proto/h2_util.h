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
