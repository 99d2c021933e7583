/* SPDX-License-Identifier: MIT */
/* libFuzzer target for proto/h1: both head parsers (whole, resumed with
 * last_len, prefix by prefix, serialized and parsed back) and the body
 * decoder of each kind (whole against piecewise), checking invariants. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/h1.h"

#define MAXH 16
#define CHECK(x)                   \
	do {                       \
		if (!(x))          \
			abort();   \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool in(const char *p, size_t n, const char *buf, size_t len)
{
	return n == 0 ? p == NULL || (p >= buf && p <= buf + len)
		      : p >= buf && p <= buf + len && n <= (size_t)(buf + len - p);
}

static ssize_t parse(bool resp, const char *buf, size_t len, size_t last,
		     void *m, struct h1_header *hs, size_t *off)
{
	if (resp)
		return h1_parse_response(buf, len, last, m, hs, MAXH, off);
	return h1_parse_request(buf, len, last, m, hs, MAXH, off);
}

static void check_headers(const struct h1_header *hs, size_t n,
			  const char *buf, size_t len)
{
	CHECK(n <= MAXH);
	for (size_t i = 0; i < n; i++) {
		CHECK(hs[i].name_len > 0);
		CHECK(in(hs[i].name, hs[i].name_len, buf, len));
		CHECK(in(hs[i].value, hs[i].value_len, buf, len));
	}
}

static void check_request(const struct h1_request *r, const char *buf,
			  size_t len)
{
	CHECK(r->method_len > 0 && in(r->method, r->method_len, buf, len));
	CHECK(r->target_len > 0 && in(r->target, r->target_len, buf, len));
	CHECK(r->version_minor == 0 || r->version_minor == 1);
	CHECK((unsigned)r->form < H1_FORM_COUNT);
	CHECK((unsigned)r->body < H1_BODY_KIND_COUNT &&
	      r->body != H1_BODY_CLOSE);
	CHECK(in(r->t.scheme, r->t.scheme_len, buf, len));
	CHECK(in(r->t.host, r->t.host_len, buf, len));
	CHECK(in(r->t.path, r->t.path_len, buf, len));
	CHECK(in(r->host_hdr, r->host_hdr_len, buf, len));
	if (r->form == H1_FORM_AUTHORITY)
		CHECK(r->t.port != 0 && r->t.host_len > 0);
	if (r->form == H1_FORM_ABSOLUTE)
		CHECK(r->t.scheme_len > 0 && r->t.host_len > 0);
	check_headers(r->headers, r->num_headers, buf, len);
}

static void check_response(const struct h1_response *r, const char *buf,
			   size_t len)
{
	CHECK(r->version_minor == 0 || r->version_minor == 1);
	CHECK(r->status >= 100 && r->status <= 999);
	CHECK(in(r->reason, r->reason_len, buf, len));
	CHECK(!(r->chunked && r->has_content_length));
	check_headers(r->headers, r->num_headers, buf, len);
	(void)h1_body_kind_str(h1_response_body_kind(r, "GET", 3));
	(void)h1_response_body_kind(r, "HEAD", 4);
	(void)h1_response_body_kind(r, "CONNECT", 7);
}

/* Serialize a parsed request and parse it back: same fields. */
static void roundtrip(const struct h1_request *r)
{
	static char out[8192];
	struct h1_header hs[MAXH];
	struct h1_request back;
	ssize_t n = h1_write_request_head(out, sizeof(out), r->method,
					  r->method_len, r->target,
					  r->target_len, r->version_minor,
					  r->headers, r->num_headers, NULL,
					  NULL, 0);

	if (n == -ENOSPC)
		return;
	CHECK(n > 0 && (size_t)n <= sizeof(out));
	CHECK(h1_parse_request(out, (size_t)n, 0, &back, hs, MAXH, NULL) == n);
	CHECK(back.num_headers == r->num_headers);
	CHECK(back.body == r->body && back.keep_alive == r->keep_alive);
	CHECK(back.content_length == r->content_length);
	for (size_t i = 0; i < r->num_headers; i++) {
		CHECK(hs[i].value_len == r->headers[i].value_len);
		CHECK(!memcmp(hs[i].value, r->headers[i].value, hs[i].value_len));
	}
}

static void fuzz_head(bool resp, const char *buf, size_t len)
{
	struct h1_header hs[MAXH];
	union {
		struct h1_request req;
		struct h1_response resp;
	} m;
	size_t off = (size_t)-1, off2 = (size_t)-1, half = len / 2;
	ssize_t r = parse(resp, buf, len, 0, &m, hs, &off), r2;

	CHECK(r <= (ssize_t)len);
	if (r < 0) {
		CHECK(off < len);
		CHECK(r <= RC_H1_SYNTAX && r >= RC_H1_TRAILERS_TOO_LARGE);
	} else if (r > 0) {
		if (resp) {
			check_response(&m.resp, buf, (size_t)r);
		} else {
			check_request(&m.req, buf, (size_t)r);
			roundtrip(&m.req);
		}
	}
	/* Resuming from a prefix that was incomplete gives the same answer. */
	if (parse(resp, buf, half, 0, &m, hs, &off2) == 0) {
		r2 = parse(resp, buf, len, half, &m, hs, &off2);
		CHECK(r2 == r);
		CHECK(r >= 0 || off2 == off);
	}
	/* A complete head is complete in every longer prefix, never earlier. */
	if (r > 0 && len <= 512) {
		for (size_t i = 1; i <= len; i += 1 + i / 8) {
			r2 = parse(resp, buf, i, 0, &m, hs, &off2);
			CHECK(r2 == ((ssize_t)i < r ? 0 : r));
		}
	}
}

struct dec {
	ssize_t err;
	size_t used;
	uint64_t total;
	bool done;
	uint64_t hash;
};

/* Decode |buf| fed in pieces of |step| bytes. */
static void decode(struct dec *d, enum h1_body_kind kind, uint64_t cl,
		   const char *buf, size_t len, size_t step)
{
	struct h1_body b;

	memset(d, 0, sizeof(*d));
	d->hash = 1469598103934665603ULL;
	h1_body_init(&b, kind, cl);
	while (d->used < len && !b.done) {
		size_t n = len - d->used < step ? len - d->used : step;
		const char *p = buf + d->used, *data;
		size_t dl;
		ssize_t r = h1_body_parse(&b, p, n, &data, &dl);

		if (r < 0) {
			d->err = r;
			break;
		}
		CHECK((size_t)r <= n);
		CHECK(r > 0 || b.done);
		CHECK(dl == 0 || (data >= p && dl <= (size_t)r &&
				  data + dl <= p + r));
		for (size_t i = 0; i < dl; i++)
			d->hash = (d->hash ^ (uint8_t)data[i]) * 1099511628211ULL;
		d->total += dl;
		d->used += (size_t)r;
	}
	CHECK(d->err || b.total == d->total);
	d->done = b.done;
	if (!d->err && !b.done) {
		int e = h1_body_eof(&b);

		CHECK(e == 0 ? kind == H1_BODY_CLOSE : e < 0);
	}
}

static void fuzz_body(enum h1_body_kind kind, uint64_t cl, const char *buf,
		      size_t len)
{
	static const size_t steps[] = { 1, 7 };
	struct dec whole, piece;

	decode(&whole, kind, cl, buf, len, len ? len : 1);
	if (kind == H1_BODY_LENGTH && !whole.err)
		CHECK(whole.used == (cl < len ? cl : len));
	if (kind == H1_BODY_CLOSE)
		CHECK(whole.used == len && whole.total == len);
	for (size_t s = 0; s < 2 && len <= 4096; s++) {
		decode(&piece, kind, cl, buf, len, steps[s]);
		/* On error, how far each got before failing may differ. */
		CHECK(piece.err == whole.err);
		CHECK(piece.err || (piece.used == whole.used &&
				    piece.total == whole.total &&
				    piece.hash == whole.hash &&
				    piece.done == whole.done));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf;
	char *copy;
	uint64_t cl = 0;

	/* An exact-size copy so ASan sees any read past the end. */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	buf = copy;

	fuzz_head(false, buf, size);
	fuzz_head(true, buf, size);
	for (size_t i = 0; i < size && i < 3; i++)
		cl = cl << 8 | (uint8_t)buf[i];
	fuzz_body(H1_BODY_CHUNKED, 0, buf, size);
	fuzz_body(H1_BODY_LENGTH, cl % (size + 2), buf, size);
	fuzz_body(H1_BODY_CLOSE, 0, buf, size);
	fuzz_body(H1_BODY_NONE, 0, buf, size);
	free(copy);
	return 0;
}
