/* SPDX-License-Identifier: MIT */
/* HTTP/1.0 and 1.1, sans-IO: zero-copy head parsers, a resumable body
 * decoder, and a head serializer. The engine feeds bytes; nothing here reads
 * a clock, allocates, or touches a socket. */
#ifndef RC_PROTO_H1_H
#define RC_PROTO_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/rc_err.h"

/* A field as it appeared on the wire: pointers into the caller's buffer,
 * name case and order preserved, value without surrounding whitespace. */
struct h1_header {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

enum h1_target_form {
	H1_FORM_ORIGIN,    /* /path?q */
	H1_FORM_ABSOLUTE,  /* http://host:port/path */
	H1_FORM_AUTHORITY, /* host:port (CONNECT only) */
	H1_FORM_ASTERISK,  /* * (OPTIONS only) */
	H1_FORM_COUNT
};
const char *h1_target_form_str(enum h1_target_form form);

/* How the message body is delimited (RFC 9112 section 6). */
enum h1_body_kind {
	H1_BODY_NONE,    /* no body */
	H1_BODY_LENGTH,  /* Content-Length bytes */
	H1_BODY_CHUNKED, /* Transfer-Encoding: chunked (last coding) */
	H1_BODY_CLOSE,   /* until the connection closes (responses only) */
	H1_BODY_KIND_COUNT
};
const char *h1_body_kind_str(enum h1_body_kind kind);

/* The parts of a request target, split out of absolute or authority form.
 * Pointers into the parsed buffer; scheme empty for origin/authority form;
 * port 0 when the target names none. */
struct h1_target {
	const char *scheme;
	size_t scheme_len;
	const char *host; /* IPv6 literal without the brackets */
	size_t host_len;
	uint16_t port;
	const char *path; /* "/..." (or "*"), empty for authority form */
	size_t path_len;
};

struct h1_request {
	const char *method;
	size_t method_len;
	const char *target;
	size_t target_len;
	int version_minor; /* HTTP/1.<minor>: 0 or 1 */
	enum h1_target_form form;
	struct h1_target t; /* the target split into parts */
	struct h1_header *headers; /* caller's array, filled up to num_headers */
	size_t num_headers;
	/* Derived from the fields: */
	enum h1_body_kind body;
	uint64_t content_length; /* when body == H1_BODY_LENGTH */
	bool keep_alive;         /* version default overridden by Connection */
	bool expect_continue;    /* Expect: 100-continue */
	const char *host_hdr;    /* the Host field's value, or NULL */
	size_t host_hdr_len;
};

struct h1_response {
	int version_minor;
	int status;
	const char *reason;
	size_t reason_len;
	struct h1_header *headers;
	size_t num_headers;
	/* Derived from the fields (body kind needs the request: see
	 * h1_response_body_kind()). */
	bool has_content_length;
	uint64_t content_length;
	bool chunked;
	bool keep_alive;
};

/* Parse a request head in buf[0..len).
 * |headers|/|max_headers|: the caller's array for the fields.
 * |last_len|: how many bytes were already scanned by an earlier call on the
 * same (grown) buffer, or 0; lets a slow client cost linear time in total.
 * Returns the head's length (> 0, the body starts there), 0 when the head is
 * not complete yet, or a negative RC_H1_* code for a malformed head; then
 * *err_off (if not NULL) holds the offset of the offending byte.
 * RC_H1_BAD_TRANSFER_ENCODING is answered with 501, RC_H1_TOO_MANY_HEADERS
 * with 431, everything else with 400. The caller enforces the byte limit on
 * the head (0 returned while len > limit means 431). */
ssize_t h1_parse_request(const char *buf, size_t len, size_t last_len,
			 struct h1_request *req, struct h1_header *headers,
			 size_t max_headers, size_t *err_off) NONNULL(1, 4, 5);

/* The same for a response head. A 1xx response is returned like any other;
 * the caller forwards it and parses again for the final one. */
ssize_t h1_parse_response(const char *buf, size_t len, size_t last_len,
			  struct h1_response *resp, struct h1_header *headers,
			  size_t max_headers, size_t *err_off)
	NONNULL(1, 4, 5);

/* Body framing of |resp|, an answer to a request with method |req_method|
 * (HEAD, CONNECT rules; 1xx, 204 and 304 have no body). */
enum h1_body_kind h1_response_body_kind(const struct h1_response *resp,
					const char *req_method,
					size_t req_method_len) NONNULL(1, 2);

/* Case-insensitive lookup of the first field named |name|; NULL if absent. */
const struct h1_header *h1_find_header(const struct h1_header *headers,
				       size_t n, const char *name)
	NONNULL(3);

/* Resumable body decoder. Forwarding is the caller's business: it sends the
 * consumed raw bytes on unchanged, and the decoder says where the payload
 * is inside them (for capture) and where the message ends. */
struct h1_body {
	enum h1_body_kind kind;
	uint64_t remaining; /* LENGTH: bytes left; CHUNKED: left in chunk */
	int state;          /* CHUNKED sub-state (private) */
	uint32_t line_len;  /* bytes of the current size/trailer line */
	uint32_t trailer_bytes;
	uint64_t total;     /* payload bytes decoded so far */
	bool done;
	/* Set by a caller that wants the trailer section itself (HTTP/2
	 * translation): a parse call returns when the last chunk's size line
	 * ends, and the caller then feeds the trailer bytes one at a time
	 * while h1_body_in_trailers() says so. */
	bool stop_at_trailers;
};

void h1_body_init(struct h1_body *b, enum h1_body_kind kind,
		  uint64_t content_length) NONNULL(1);

/* Consume raw bytes of the body from buf[0..len). Returns the number of
 * bytes consumed (0 <= n <= len) or a negative RC_H1_* code. Stops right
 * after the end of the message (b->done becomes true); bytes after that
 * belong to the next message. |data| and |data_len| get the payload span inside
 * the consumed bytes (a chunked body yields one span per call; call again
 * with the rest). H1_BODY_CLOSE consumes everything; the caller ends it on
 * EOF with h1_body_eof(). */
ssize_t h1_body_parse(struct h1_body *b, const char *buf, size_t len,
		      const char **data, size_t *data_len) NONNULL(1, 4, 5);

/* Is the decoder inside a chunked body's trailer section (or its final
 * CRLF)? */
bool h1_body_in_trailers(const struct h1_body *b) NONNULL(1);
/* The connection closed. Returns 0 if that ends the body cleanly (CLOSE
 * kind, or already done), or a negative RC_H1_* code if the body was cut
 * short. */
int h1_body_eof(struct h1_body *b) NONNULL(1);

/* Serializer: writes a request head into out[0..cap). Emits
 * "METHOD TARGET HTTP/1.x\r\n", then every header in order except those
 * named in |skip| (NULL-terminated list, case-insensitive, may be NULL),
 * then |extra| headers, then "\r\n". Returns bytes written, or -ENOSPC. */
ssize_t h1_write_request_head(char *out, size_t cap, const char *method,
			      size_t method_len, const char *target,
			      size_t target_len, int version_minor,
			      const struct h1_header *headers, size_t n,
			      const char *const *skip,
			      const struct h1_header *extra, size_t n_extra)
	NONNULL(1, 3, 5);

/* A complete small response for errors the proxy answers itself:
 * "HTTP/1.1 <status> <reason>", Content-Type text/plain, Content-Length,
 * Connection: close, and |body|. Returns bytes written or -ENOSPC. */
ssize_t h1_write_error_response(char *out, size_t cap, int status,
				const char *body) NONNULL(1, 4);

/* Standard reason phrase for |status| ("Bad Gateway"); "" if unknown. */
const char *h1_reason(int status);

#endif
