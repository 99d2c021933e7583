/* SPDX-License-Identifier: MIT */
/* proto/h1 tests: every head vector is parsed whole, then one byte at a time
 * with growing len and last_len, each prefix ending right before a PROT_NONE
 * page; body vectors are decoded whole, per byte and in odd pieces. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/h1.h"
#include "tests/proto/harness.h"

#define MAXH 32

static bool span_eq(const char *p, size_t n, const char *want)
{
	if (!want)
		return n == 0;
	return strlen(want) == n && memcmp(p, want, n) == 0;
}

static bool inside(const char *p, size_t n, const char *buf, size_t len)
{
	return n == 0 || (p >= buf && p + n <= buf + len);
}

/* ---- Head vectors ---- */

struct req_case {
	const char *raw;
	size_t raw_len; /* 0: strlen(raw) */
	const char *method, *target;
	int minor;
	enum h1_target_form form;
	const char *scheme, *host, *path; /* NULL: empty */
	uint16_t port;
	size_t nh;
	enum h1_body_kind body;
	uint64_t cl;
	bool ka, expect;
	const char *host_hdr; /* NULL: absent */
};

struct resp_case {
	const char *raw;
	int minor, status;
	const char *reason;
	size_t nh;
	bool has_cl;
	uint64_t cl;
	bool chunked, ka;
};

struct err_case {
	const char *raw;
	size_t raw_len;
	int code;
	const char *at; /* error at the first occurrence of this in raw */
	size_t off;     /* ... or at this offset when |at| is NULL */
	size_t max_headers; /* 0: MAXH */
};

typedef void (*check_fn)(const void *c, const void *msg, const char *buf,
			 size_t len);

static ssize_t parse(bool resp, const char *buf, size_t len, size_t last_len,
		     void *msg, struct h1_header *hs, size_t max, size_t *off)
{
	if (resp)
		return h1_parse_response(buf, len, last_len, msg, hs, max, off);
	return h1_parse_request(buf, len, last_len, msg, hs, max, off);
}

/* Parse |raw| whole (exact-size heap copy), whole again with last_len = len,
 * and every prefix against the guard page with last_len = prefix - 1. A
 * result > 0 is the head length; prefixes shorter than it must return 0. */
static void parse_all_ways(bool resp, const char *raw, size_t len,
			   size_t max, ssize_t want, size_t want_off,
			   check_fn chk, const void *c)
{
	struct h1_header hs[MAXH];
	union {
		struct h1_request req;
		struct h1_response resp;
	} m;
	struct guard g;
	char *heap = malloc(len ? len : 1);
	size_t off = (size_t)-1;
	ssize_t r;

	memcpy(heap, raw, len);
	for (size_t last = 0; last <= len; last += len ? len : 1) {
		r = parse(resp, heap, len, last, &m, hs, max, &off);
		cr_assert_eq(r, want, "%.40s: whole (last_len %zu) got %zd %s",
			     raw, last, r, rc_errname((int)r));
		if (r < 0)
			cr_assert_eq(off, want_off, "%.40s: err_off %zu want %zu",
				     raw, off, want_off);
		else if (chk)
			chk(c, &m, heap, len);
	}
	free(heap);

	guard_init(&g, len);
	for (size_t i = 1; i <= len; i++) {
		char *p = guard_put(&g, raw, i);

		off = (size_t)-1;
		r = parse(resp, p, i, i - 1, &m, hs, max, &off);
		if (want > 0) {
			cr_assert_eq(r, (ssize_t)i < want ? 0 : want,
				     "%.40s: prefix %zu got %zd", raw, i, r);
			if (r > 0 && chk)
				chk(c, &m, p, i);
		} else if (i == len || r != 0) {
			cr_assert_eq(r, want, "%.40s: prefix %zu got %zd", raw,
				     i, r);
			cr_assert_eq(off, want_off,
				     "%.40s: prefix %zu err_off %zu", raw, i,
				     off);
		}
	}
	guard_free(&g);
}

static void check_req(const void *cv, const void *mv, const char *buf,
		      size_t len)
{
	const struct req_case *c = cv;
	const struct h1_request *r = mv;
	const struct h1_target *t = &r->t;

	cr_assert(span_eq(r->method, r->method_len, c->method), "%s", c->raw);
	cr_assert(span_eq(r->target, r->target_len, c->target), "%s", c->raw);
	cr_assert_eq(r->version_minor, c->minor, "%s", c->raw);
	cr_assert_eq(r->form, c->form, "%s: form %s", c->raw,
		     h1_target_form_str(r->form));
	cr_assert(span_eq(t->scheme, t->scheme_len, c->scheme), "%s", c->raw);
	cr_assert(span_eq(t->host, t->host_len, c->host), "%s: host %.*s",
		  c->raw, (int)t->host_len, t->host);
	cr_assert(span_eq(t->path, t->path_len, c->path), "%s: path %.*s",
		  c->raw, (int)t->path_len, t->path);
	cr_assert_eq(t->port, c->port, "%s", c->raw);
	cr_assert_eq(r->num_headers, c->nh, "%s", c->raw);
	cr_assert_eq(r->body, c->body, "%s: body %s", c->raw,
		     h1_body_kind_str(r->body));
	if (c->body == H1_BODY_LENGTH)
		cr_assert_eq(r->content_length, c->cl, "%s", c->raw);
	cr_assert_eq(r->keep_alive, c->ka, "%s", c->raw);
	cr_assert_eq(r->expect_continue, c->expect, "%s", c->raw);
	if (c->host_hdr)
		cr_assert(span_eq(r->host_hdr, r->host_hdr_len, c->host_hdr));
	else
		cr_assert_null(r->host_hdr);
	cr_assert(inside(r->method, r->method_len, buf, len));
	cr_assert(inside(r->target, r->target_len, buf, len));
	cr_assert(inside(t->host, t->host_len, buf, len));
	cr_assert(inside(t->path, t->path_len, buf, len));
	for (size_t i = 0; i < r->num_headers; i++) {
		cr_assert(inside(r->headers[i].name, r->headers[i].name_len,
				 buf, len));
		cr_assert(inside(r->headers[i].value, r->headers[i].value_len,
				 buf, len));
	}
}

static void check_resp(const void *cv, const void *mv, const char *buf,
		       size_t len)
{
	const struct resp_case *c = cv;
	const struct h1_response *r = mv;

	cr_assert_eq(r->version_minor, c->minor, "%s", c->raw);
	cr_assert_eq(r->status, c->status, "%s", c->raw);
	cr_assert(span_eq(r->reason, r->reason_len, c->reason), "%s", c->raw);
	cr_assert_eq(r->num_headers, c->nh, "%s", c->raw);
	cr_assert_eq(r->has_content_length, c->has_cl, "%s", c->raw);
	if (c->has_cl)
		cr_assert_eq(r->content_length, c->cl, "%s", c->raw);
	cr_assert_eq(r->chunked, c->chunked, "%s", c->raw);
	cr_assert_eq(r->keep_alive, c->ka, "%s", c->raw);
	cr_assert(inside(r->reason, r->reason_len, buf, len));
	for (size_t i = 0; i < r->num_headers; i++)
		cr_assert(inside(r->headers[i].value, r->headers[i].value_len,
				 buf, len));
}

#define O H1_FORM_ORIGIN
#define A H1_FORM_ABSOLUTE
#define AU H1_FORM_AUTHORITY
#define AS H1_FORM_ASTERISK
#define HOSTA "Host: a\r\n"

static const struct req_case req_cases[] = {
	{ "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", 0, "GET", "/", 1, O,
	  .path = "/", .nh = 1, .ka = true, .host_hdr = "example.com" },
	{ "GET /index.html?x=1&y=%20 HTTP/1.0\r\nHost: a\r\nUser-Agent: "
	  "t/1.0\r\n\r\n", 0, "GET", "/index.html?x=1&y=%20", 0, O,
	  .path = "/index.html?x=1&y=%20", .nh = 2, .host_hdr = "a" },
	{ "GET / HTTP/1.1\nHost: a\n\n", 0, "GET", "/", 1, O, .path = "/",
	  .nh = 1, .ka = true, .host_hdr = "a" },
	{ "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, "GET", "/", 1, O,
	  .path = "/", .nh = 1, .ka = true, .host_hdr = "a" },
	{ "\nGET /x HTTP/1.1\r\n\r\n", 0, "GET", "/x", 1, O, .path = "/x",
	  .ka = true },
	{ "GET / HTTP/1.1\r\n\r\n", 0, "GET", "/", 1, O, .path = "/",
	  .ka = true },
	{ "POST /up HTTP/1.1\r\n" HOSTA "Content-Length: 5\r\n\r\n", 0, "POST",
	  "/up", 1, O, .path = "/up", .nh = 2, .body = H1_BODY_LENGTH,
	  .cl = 5, .ka = true, .host_hdr = "a" },
	{ "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 0, "POST", "/", 1, O,
	  .path = "/", .nh = 1, .body = H1_BODY_LENGTH, .cl = 0, .ka = true },
	{ "POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n", 0,
	  "POST", "/", 1, O, .path = "/", .nh = 1, .body = H1_BODY_LENGTH,
	  .cl = UINT64_MAX, .ka = true },
	{ "PUT / HTTP/1.1\r\nContent-Length: 7\r\ncontent-length: 7\r\n\r\n",
	  0, "PUT", "/", 1, O, .path = "/", .nh = 2, .body = H1_BODY_LENGTH,
	  .cl = 7, .ka = true },
	{ "PUT / HTTP/1.1\r\nContent-Length: 007 , 7\r\n\r\n", 0, "PUT", "/",
	  1, O, .path = "/", .nh = 1, .body = H1_BODY_LENGTH, .cl = 7,
	  .ka = true },
	{ "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 0, "POST",
	  "/", 1, O, .path = "/", .nh = 1, .body = H1_BODY_CHUNKED,
	  .ka = true },
	{ "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n", 0,
	  "POST", "/", 1, O, .path = "/", .nh = 1, .body = H1_BODY_CHUNKED,
	  .ka = true },
	{ "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: "
	  "chunked\r\n\r\n", 0, "POST", "/", 1, O, .path = "/", .nh = 2,
	  .body = H1_BODY_CHUNKED, .ka = true },
	{ "GET http://example.com:8080/p?q HTTP/1.1\r\nHost: example.com:8080"
	  "\r\n\r\n", 0, "GET", "http://example.com:8080/p?q", 1, A, "http",
	  "example.com", "/p?q", 8080, 1, .ka = true,
	  .host_hdr = "example.com:8080" },
	{ "GET http://example.com HTTP/1.1\r\n\r\n", 0, "GET",
	  "http://example.com", 1, A, "http", "example.com", NULL, 0,
	  .ka = true },
	{ "GET http://h?x=1 HTTP/1.1\r\n\r\n", 0, "GET", "http://h?x=1", 1, A,
	  "http", "h", "?x=1", .ka = true },
	{ "GET http://[::1]:8080/ HTTP/1.1\r\n\r\n", 0, "GET",
	  "http://[::1]:8080/", 1, A, "http", "::1", "/", 8080, .ka = true },
	{ "GET http://[2001:db8::10.0.0.1]/x HTTP/1.1\r\n\r\n", 0, "GET",
	  "http://[2001:db8::10.0.0.1]/x", 1, A, "http", "2001:db8::10.0.0.1",
	  "/x", .ka = true },
	{ "GET HTTPS://A.B:/ HTTP/1.0\r\n\r\n", 0, "GET", "HTTPS://A.B:/", 0,
	  A, "HTTPS", "A.B", "/", .ka = false },
	{ "GET ws+x-y.z://a-b_c~d%20!$&'()*+,;=e/ HTTP/1.1\r\n\r\n", 0, "GET",
	  "ws+x-y.z://a-b_c~d%20!$&'()*+,;=e/", 1, A, "ws+x-y.z",
	  "a-b_c~d%20!$&'()*+,;=e", "/", .ka = true },
	{ "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
	  0, "CONNECT", "example.com:443", 1, AU, NULL, "example.com", NULL,
	  443, 1, .ka = true, .host_hdr = "example.com:443" },
	{ "CONNECT [2001:db8::1]:443 HTTP/1.1\r\n\r\n", 0, "CONNECT",
	  "[2001:db8::1]:443", 1, AU, NULL, "2001:db8::1", NULL, 443,
	  .ka = true },
	{ "CONNECT 10.0.0.1:65535 HTTP/1.0\r\n\r\n", 0, "CONNECT",
	  "10.0.0.1:65535", 0, AU, NULL, "10.0.0.1", NULL, 65535, .ka = false },
	{ "OPTIONS * HTTP/1.1\r\n" HOSTA "\r\n", 0, "OPTIONS", "*", 1, AS,
	  .path = "*", .nh = 1, .ka = true, .host_hdr = "a" },
	{ "OPTIONS http://h HTTP/1.1\r\n\r\n", 0, "OPTIONS", "http://h", 1, A,
	  "http", "h", NULL, .ka = true },
	{ "PROPFIND /dav/ HTTP/1.1\r\n\r\n", 0, "PROPFIND", "/dav/", 1, O,
	  .path = "/dav/", .ka = true },
	{ "GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", 0, "GET", "/caf\xc3\xa9", 1, O,
	  .path = "/caf\xc3\xa9", .ka = true },
	{ "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0, "GET", "/", 0,
	  O, .path = "/", .nh = 1, .ka = true },
	{ "GET / HTTP/1.0\r\nConnection: Keep-Alive, close\r\n\r\n", 0, "GET",
	  "/", 0, O, .path = "/", .nh = 1 },
	{ "GET / HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\n\r\n", 0, "GET", "/",
	  1, O, .path = "/", .nh = 1 },
	{ "GET / HTTP/1.1\r\nConnection: TE,,keep-alive\r\nConnection: x\r\n"
	  "\r\n", 0, "GET", "/", 1, O, .path = "/", .nh = 2, .ka = true },
	{ "GET / HTTP/1.1\r\nConnection: closed\r\n\r\n", 0, "GET", "/", 1, O,
	  .path = "/", .nh = 1, .ka = true },
	{ "PUT / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
	  0, "PUT", "/", 1, O, .path = "/", .nh = 2, .body = H1_BODY_LENGTH,
	  .cl = 3, .ka = true, .expect = true },
	{ "PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", 0, "PUT", "/", 0,
	  O, .path = "/", .nh = 1 },
	{ "PUT / HTTP/1.1\r\nExpect: 100-continue-ish\r\n\r\n", 0, "PUT", "/",
	  1, O, .path = "/", .nh = 1, .ka = true },
	{ "GET / HTTP/1.1\r\nX-A:   spaced value \t\r\nX-E:\r\nX-U: caf\xc3\xa9"
	  "\r\nX-T:\tq\"u\"(o)\r\n\r\n", 0, "GET", "/", 1, O, .path = "/",
	  .nh = 4, .ka = true },
	{ "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 0, "GET",
	  "/", 1, O, .path = "/", .nh = 4, .ka = true },
};

#define E(raw_, code_, at_) { raw_, 0, RC_H1_##code_, at_, 0, 0 }
#define EO(raw_, code_, off_) { raw_, 0, RC_H1_##code_, NULL, off_, 0 }
#define RL "GET / HTTP/1.1\r\n"

static const struct err_case req_errs[] = {
	EO("GET  / HTTP/1.1\r\n\r\n", SYNTAX, 4),
	EO("G@T / HTTP/1.1\r\n\r\n", SYNTAX, 1),
	EO(" GET / HTTP/1.1\r\n\r\n", SYNTAX, 0),
	EO("\x16\x03\x01\x02\x00\x01", SYNTAX, 0),
	EO("\rX", SYNTAX, 0),
	EO("\r\n\r\n", SYNTAX, 2),
	EO("GET / HTTP/2.0\r\n\r\n", BAD_VERSION, 6),
	EO("GET / HTTP/1.2\r\n\r\n", BAD_VERSION, 6),
	EO("GET / HTTP/1.1 \r\n\r\n", BAD_VERSION, 6),
	EO("GET / HTTP/1.10\r\n\r\n", BAD_VERSION, 6),
	EO("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", BAD_VERSION, 6),
	EO("GET / FOO/1.1\r\n\r\n", SYNTAX, 6),
	EO("GET / http/1.1\r\n\r\n", SYNTAX, 6),
	EO("GET /\r\n\r\n", SYNTAX, 5),
	EO("GET\r\n\r\n", SYNTAX, 3),
	EO("GET /a\x7f HTTP/1.1\r\n\r\n", SYNTAX, 6),
	EO("GET /a\tb HTTP/1.1\r\n\r\n", SYNTAX, 6),
	E("GET /a\rb HTTP/1.1\r\n\r\n", SYNTAX, "\rb"),
	E(RL "A: b\r\n c\r\n\r\n", SYNTAX, " c"),
	E(RL "A: b\r\n\tc\r\n\r\n", SYNTAX, "\tc"),
	E(RL " A: b\r\n\r\n", SYNTAX, " A"),
	E(RL "Host : a\r\n\r\n", SYNTAX, " :"),
	E(RL "Host\t: a\r\n\r\n", SYNTAX, "\t:"),
	E(RL "Ho\x01st: a\r\n\r\n", SYNTAX, "\x01"),
	E(RL "Ho(st: a\r\n\r\n", SYNTAX, "("),
	E(RL ": x\r\n\r\n", SYNTAX, ": x"),
	E(RL "NoColon\r\n\r\n", SYNTAX, "\r\n\r\n"),
	E(RL "A: b\x7f\r\n\r\n", SYNTAX, "\x7f"),
	E(RL "A: b\rc\r\n\r\n", SYNTAX, "\rc"),
	E(RL "A: b\x0c\r\n\r\n", SYNTAX, "\x0c"),
	{ RL "A: b\0c\r\n\r\n", sizeof(RL "A: b\0c\r\n\r\n") - 1,
	  RC_H1_SYNTAX, NULL, 20, 0 },
	E(RL "Content-Length: abc\r\n\r\n", BAD_CONTENT_LENGTH, "abc"),
	E(RL "Content-Length: -1\r\n\r\n", BAD_CONTENT_LENGTH, "-1"),
	E(RL "Content-Length: +5\r\n\r\n", BAD_CONTENT_LENGTH, "+5"),
	E(RL "Content-Length: 0x5\r\n\r\n", BAD_CONTENT_LENGTH, "0x5"),
	E(RL "Content-Length: 1 2\r\n\r\n", BAD_CONTENT_LENGTH, "1 2"),
	E(RL "Content-Length: 5,,5\r\n\r\n", BAD_CONTENT_LENGTH, "5,,"),
	E(RL "Content-Length: 5,6\r\n\r\n", BAD_CONTENT_LENGTH, "5,6"),
	E(RL "Content-Length:\r\n\r\n", BAD_CONTENT_LENGTH, "\r\n\r\n"),
	E(RL "Content-Length: 18446744073709551616\r\n\r\n",
	  BAD_CONTENT_LENGTH, "184"),
	E(RL "Content-Length: 1\r\nContent-Length: 2\r\n\r\n",
	  BAD_CONTENT_LENGTH, "2\r"),
	E(RL "Transfer-Encoding: gzip\r\n\r\n", BAD_TRANSFER_ENCODING, "gzip"),
	E(RL "Transfer-Encoding: chunked, gzip\r\n\r\n",
	  BAD_TRANSFER_ENCODING, "chunked"),
	E(RL "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	  BAD_TRANSFER_ENCODING, "chunked\r\n\r\n"),
	E(RL "Transfer-Encoding: chunked;x=1\r\n\r\n", BAD_TRANSFER_ENCODING,
	  "chunked"),
	E(RL "Transfer-Encoding: xchunked\r\n\r\n", BAD_TRANSFER_ENCODING,
	  "xchunked"),
	E(RL "Transfer-Encoding:\r\n\r\n", BAD_TRANSFER_ENCODING, "\r\n\r\n"),
	E(RL "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", SYNTAX,
	  "Transfer"),
	E(RL "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", SYNTAX,
	  "Transfer"),
	E("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", SYNTAX,
	  "Transfer"),
	E(RL "Host: a\r\nhost: b\r\n\r\n", SYNTAX, "host"),
	{ RL "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n", 0,
	  RC_H1_TOO_MANY_HEADERS, "E: 5", 0, 4 },
	{ RL "A: 1\r\n\r\n", 0, RC_H1_TOO_MANY_HEADERS, "A: 1", 0, (size_t)-1 },
	EO("GET * HTTP/1.1\r\n\r\n", BAD_TARGET, 4),
	EO("M-SEARCH * HTTP/1.1\r\n\r\n", BAD_TARGET, 9),
	EO("OPTIONS ** HTTP/1.1\r\n\r\n", BAD_TARGET, 8),
	EO("CONNECT example.com HTTP/1.1\r\n\r\n", BAD_TARGET, 19),
	EO("CONNECT example.com: HTTP/1.1\r\n\r\n", BAD_TARGET, 20),
	EO("CONNECT /x HTTP/1.1\r\n\r\n", BAD_TARGET, 8),
	EO("CONNECT http://h:1/ HTTP/1.1\r\n\r\n", BAD_TARGET, 13),
	EO("CONNECT h:0 HTTP/1.1\r\n\r\n", BAD_TARGET, 10),
	EO("CONNECT h:65536 HTTP/1.1\r\n\r\n", BAD_TARGET, 14),
	EO("CONNECT h:99999999999999999999 HTTP/1.1\r\n\r\n", BAD_TARGET, 14),
	EO("CONNECT [::1 HTTP/1.1\r\n\r\n", BAD_TARGET, 12),
	EO("CONNECT []:1 HTTP/1.1\r\n\r\n", BAD_TARGET, 9),
	EO("CONNECT [::1]x:1 HTTP/1.1\r\n\r\n", BAD_TARGET, 13),
	EO("GET http://user@h/ HTTP/1.1\r\n\r\n", BAD_TARGET, 15),
	EO("GET http:///x HTTP/1.1\r\n\r\n", BAD_TARGET, 11),
	EO("GET http:// HTTP/1.1\r\n\r\n", BAD_TARGET, 11),
	EO("GET example.com:80 HTTP/1.1\r\n\r\n", BAD_TARGET, 15),
	EO("GET 1http://x/ HTTP/1.1\r\n\r\n", BAD_TARGET, 4),
	EO("GET http://h:8x/ HTTP/1.1\r\n\r\n", BAD_TARGET, 14),
	EO("GET http://h^/ HTTP/1.1\r\n\r\n", BAD_TARGET, 12),
	EO("GET http://h#f HTTP/1.1\r\n\r\n", BAD_TARGET, 12),
	EO("GET http://[fe80::1%25eth0]/ HTTP/1.1\r\n\r\n", BAD_TARGET, 19),
	EO("GET ?x HTTP/1.1\r\n\r\n", BAD_TARGET, 4),
};

static const struct resp_case resp_cases[] = {
	{ "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 1, 200, "OK", 1,
	  true, 5, false, true },
	{ "HTTP/1.0 200 OK\r\n\r\n", 0, 200, "OK", 0, false, 0, false, false },
	{ "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n"
	  "\r\n", 0, 200, "OK", 2, true, 0, false, true },
	{ "HTTP/1.1 204 No Content\r\n\r\n", 1, 204, "No Content", 0, false, 0,
	  false, true },
	{ "HTTP/1.1 200\r\n\r\n", 1, 200, NULL, 0, false, 0, false, true },
	{ "HTTP/1.1 200 \r\n\r\n", 1, 200, NULL, 0, false, 0, false, true },
	{ "HTTP/1.1 404 Not  Found\there \xff\r\n\r\n", 1, 404,
	  "Not  Found\there \xff", 0, false, 0, false, true },
	{ "HTTP/1.1 999 Whatever\r\n\r\n", 1, 999, "Whatever", 0, false, 0,
	  false, true },
	{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 1, 200,
	  "OK", 1, false, 0, true, true },
	{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 1, 200, "OK",
	  1, false, 0, false, false },
	{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 1,
	  200, "OK", 1, false, 0, false, false },
	{ "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked"
	  "\r\n\r\n", 1, 200, "OK", 2, false, 0, true, false },
	{ "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 200, "OK",
	  1, false, 0, false, false },
	{ "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	  "Connection: Upgrade\r\n\r\n", 1, 101, "Switching Protocols", 2,
	  false, 0, false, true },
	{ "HTTP/1.1 100 Continue\n\n", 1, 100, "Continue", 0, false, 0, false,
	  true },
	{ "HTTP/1.1 302 Found\nLocation: /x\nConnection: close\n\n", 1, 302,
	  "Found", 2, false, 0, false, false },
};

#define RS "HTTP/1.1 200 OK\r\n"

static const struct err_case resp_errs[] = {
	EO("HTTP/1.1 20 OK\r\n\r\n", SYNTAX, 11),
	EO("HTTP/1.1 099 X\r\n\r\n", SYNTAX, 9),
	EO("HTTP/1.1 2000 OK\r\n\r\n", SYNTAX, 12),
	EO("HTTP/1.1 abc OK\r\n\r\n", SYNTAX, 9),
	EO("HTTP/1.1 20\r\n\r\n", SYNTAX, 9),
	EO("HTTP/1.1\r\n\r\n", SYNTAX, 8),
	EO("HTTP/1.1 \r\n\r\n", SYNTAX, 9),
	EO("HTTP/2 200 OK\r\n\r\n", BAD_VERSION, 0),
	EO("HTTP/1.2 200 OK\r\n\r\n", BAD_VERSION, 0),
	EO("HTTP/1.1  200 OK\r\n\r\n", SYNTAX, 9),
	EO("ICY 200 OK\r\n\r\n", SYNTAX, 0),
	EO("HTTP 200 OK\r\n\r\n", SYNTAX, 0),
	EO("\r\nHTTP/1.1 200 OK\r\n\r\n", SYNTAX, 0),
	EO("\n\n", SYNTAX, 0),
	EO("HTTP/1.1 200 O\x01K\r\n\r\n", SYNTAX, 14),
	E(RS "Content-Length: x\r\n\r\n", BAD_CONTENT_LENGTH, "x\r"),
	E(RS "A: b\r\n c\r\n\r\n", SYNTAX, " c"),
	E(RS "Bad Name: x\r\n\r\n", SYNTAX, " Name"),
	{ RS "A: 1\r\nB: 2\r\n\r\n", 0, RC_H1_TOO_MANY_HEADERS, "B: 2", 0, 1 },
};

static void run_errs(bool resp, const struct err_case *es, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct err_case *e = &es[i];
		size_t len = e->raw_len ? e->raw_len : strlen(e->raw);
		size_t off = e->off, max = e->max_headers;

		if (e->at) {
			const char *p = strstr(e->raw, e->at);

			cr_assert_not_null(p, "%s", e->raw);
			off = (size_t)(p - e->raw);
		}
		if (max == (size_t)-1)
			max = 0;
		else if (max == 0)
			max = MAXH;
		parse_all_ways(resp, e->raw, len, max, e->code, off, NULL,
			       NULL);
	}
}

Test(h1_request, valid_vectors)
{
	for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
		const struct req_case *c = &req_cases[i];
		size_t len = c->raw_len ? c->raw_len : strlen(c->raw);

		parse_all_ways(false, c->raw, len, MAXH, (ssize_t)len,
			       0, check_req, c);
	}
}

Test(h1_request, error_vectors)
{
	run_errs(false, req_errs, sizeof(req_errs) / sizeof(req_errs[0]));
}

Test(h1_response, valid_vectors)
{
	for (size_t i = 0; i < sizeof(resp_cases) / sizeof(resp_cases[0]);
	     i++) {
		size_t len = strlen(resp_cases[i].raw);

		parse_all_ways(true, resp_cases[i].raw, len, MAXH,
			       (ssize_t)len, 0, check_resp, &resp_cases[i]);
	}
}

Test(h1_response, error_vectors)
{
	run_errs(true, resp_errs, sizeof(resp_errs) / sizeof(resp_errs[0]));
}

Test(h1_request, headers_in_order_and_trimmed)
{
	static const char raw[] = RL "X-A:   spaced value \t\r\nX-E:\r\n"
				     "x-b: 2\r\nX-A: again\r\n\r\n";
	struct h1_header hs[MAXH];
	struct h1_request req;
	const struct h1_header *h;

	cr_assert_eq(h1_parse_request(raw, sizeof(raw) - 1, 0, &req, hs, MAXH,
				      NULL),
		     (ssize_t)sizeof(raw) - 1);
	cr_assert_eq(req.headers, hs);
	cr_assert_eq(req.num_headers, 4);
	cr_assert(span_eq(hs[0].name, hs[0].name_len, "X-A"));
	cr_assert(span_eq(hs[0].value, hs[0].value_len, "spaced value"));
	cr_assert(span_eq(hs[1].name, hs[1].name_len, "X-E"));
	cr_assert_eq(hs[1].value_len, 0);
	cr_assert(span_eq(hs[2].name, hs[2].name_len, "x-b"));
	h = h1_find_header(hs, 4, "X-B");
	cr_assert_eq(h, &hs[2]);
	h = h1_find_header(hs, 4, "x-a");
	cr_assert_eq(h, &hs[0]);
	cr_assert_null(h1_find_header(hs, 4, "X-Missing"));
	cr_assert_null(h1_find_header(hs, 4, "X-"));
	cr_assert_null(h1_find_header(NULL, 0, "X-A"));
}

Test(h1_request, pipelined_heads)
{
	static const char raw[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
				  "\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t first = strlen("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
	size_t len = sizeof(raw) - 1;
	struct h1_header hs[MAXH];
	struct h1_request req;
	ssize_t r;

	r = h1_parse_request(raw, len, 0, &req, hs, MAXH, NULL);
	cr_assert_eq(r, (ssize_t)first);
	cr_assert(span_eq(req.target, req.target_len, "/a"));
	/* Growing one byte at a time: the first head once it is there
	 * (last_len only counts while the head was incomplete). */
	for (size_t i = 1; i <= len; i++) {
		r = h1_parse_request(raw, i, i <= first ? i - 1 : 0, &req, hs,
				     MAXH, NULL);
		cr_assert_eq(r, i < first ? 0 : (ssize_t)first, "at %zu", i);
	}
	r = h1_parse_request(raw + first, len - first, 0, &req, hs, MAXH, NULL);
	cr_assert_eq(r, (ssize_t)(len - first));
	cr_assert(span_eq(req.target, req.target_len, "/b"));
}

/* ---- Response body framing ---- */

static struct h1_response resp_of(const char *raw)
{
	static struct h1_header hs[MAXH];
	struct h1_response resp;

	cr_assert_gt(h1_parse_response(raw, strlen(raw), 0, &resp, hs, MAXH,
				       NULL), 0, "%s", raw);
	return resp;
}

Test(h1_response, body_kind_rules)
{
	static const struct {
		const char *raw, *method;
		enum h1_body_kind want;
	} v[] = {
		{ RS "Content-Length: 5\r\n\r\n", "GET", H1_BODY_LENGTH },
		{ RS "Content-Length: 5\r\n\r\n", "HEAD", H1_BODY_NONE },
		{ RS "Transfer-Encoding: chunked\r\n\r\n", "HEAD", H1_BODY_NONE },
		{ RS "\r\n", "HEAD", H1_BODY_NONE },
		{ RS "\r\n", "GET", H1_BODY_CLOSE },
		{ RS "Transfer-Encoding: chunked\r\n\r\n", "GET",
		  H1_BODY_CHUNKED },
		{ RS "Transfer-Encoding: gzip\r\n\r\n", "GET", H1_BODY_CLOSE },
		{ RS "Transfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\n",
		  "GET", H1_BODY_CLOSE },
		{ RS "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		  "POST", H1_BODY_CHUNKED },
		{ "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET",
		  H1_BODY_CLOSE },
		{ RS "\r\n", "CONNECT", H1_BODY_NONE },
		{ "HTTP/1.1 299 X\r\nContent-Length: 5\r\n\r\n", "CONNECT",
		  H1_BODY_NONE },
		{ "HTTP/1.1 407 Auth\r\nContent-Length: 5\r\n\r\n", "CONNECT",
		  H1_BODY_LENGTH },
		{ "HTTP/1.1 502 X\r\n\r\n", "CONNECT", H1_BODY_CLOSE },
		{ "HTTP/1.1 100 Continue\r\n\r\n", "POST", H1_BODY_NONE },
		{ "HTTP/1.1 101 Switching\r\nContent-Length: 5\r\n\r\n", "GET",
		  H1_BODY_NONE },
		{ "HTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n", "GET",
		  H1_BODY_NONE },
		{ "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", "GET",
		  H1_BODY_NONE },
		{ "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n"
		  "\r\n", "GET", H1_BODY_NONE },
		{ "HTTP/1.1 205 Reset\r\nContent-Length: 0\r\n\r\n", "GET",
		  H1_BODY_LENGTH },
		{ RS "Content-Length: 5\r\n\r\n", "head", H1_BODY_LENGTH },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct h1_response r = resp_of(v[i].raw);
		enum h1_body_kind k = h1_response_body_kind(&r, v[i].method,
							    strlen(v[i].method));

		cr_assert_eq(k, v[i].want, "%s %s: %s", v[i].method, v[i].raw,
			     h1_body_kind_str(k));
	}
}

/* ---- Body decoder ---- */

struct decoded {
	char out[64 * 1024];
	size_t out_len;
	size_t consumed;
	ssize_t err;
	struct h1_body b;
};

/* Feed |in| in pieces of |step| bytes, each copied to end at the guard
 * page; the engine's loop: unconsumed bytes are offered again. */
static void decode(struct decoded *d, enum h1_body_kind kind, uint64_t cl,
		   const char *in, size_t len, size_t step)
{
	struct guard g;

	memset(d, 0, sizeof(*d));
	h1_body_init(&d->b, kind, cl);
	guard_init(&g, step);
	while (d->consumed < len && !d->b.done) {
		size_t n = len - d->consumed < step ? len - d->consumed : step;
		const char *p = guard_put(&g, in + d->consumed, n);
		const char *data = (const char *)1;
		size_t dl = 99;
		ssize_t r = h1_body_parse(&d->b, p, n, &data, &dl);

		if (r < 0) {
			d->err = r;
			break;
		}
		cr_assert_leq((size_t)r, n);
		cr_assert(r > 0 || d->b.done, "no progress");
		if (dl) {
			cr_assert(data >= p && data + dl <= p + r);
			cr_assert_leq(d->out_len + dl, sizeof(d->out));
			memcpy(d->out + d->out_len, data, dl);
			d->out_len += dl;
		} else {
			cr_assert_null(data);
		}
		d->consumed += (size_t)r;
	}
	guard_free(&g);
}

static const size_t steps[] = { 1, 2, 3, 7, 64 * 1024 };

/* Decode |in| in every step size: payload |want|, consumed |used| bytes. */
static void expect_body(enum h1_body_kind kind, uint64_t cl, const char *in,
			size_t len, const char *want, size_t want_len,
			size_t used)
{
	static struct decoded d;

	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		decode(&d, kind, cl, in, len, steps[s]);
		cr_assert_eq(d.err, 0, "step %zu: %s", steps[s],
			     rc_errname((int)d.err));
		cr_assert(d.b.done, "step %zu: not done", steps[s]);
		cr_assert_eq(d.consumed, used, "step %zu: consumed %zu",
			     steps[s], d.consumed);
		cr_assert_eq(d.out_len, want_len, "step %zu", steps[s]);
		cr_assert(memcmp(d.out, want, want_len) == 0);
		cr_assert_eq(d.b.total, want_len);
		cr_assert_eq(h1_body_eof(&d.b), 0);
	}
}

static void expect_body_err(enum h1_body_kind kind, const char *in,
			    size_t len, int code)
{
	static struct decoded d;

	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		decode(&d, kind, 0, in, len, steps[s]);
		cr_assert_eq(d.err, code, "%.30s step %zu: %s", in, steps[s],
			     rc_errname((int)d.err));
	}
}

#define BODY(kind, cl, in, next, want)                                        \
	expect_body(kind, cl, in next, sizeof(in next) - 1, want,              \
		    sizeof(want) - 1, sizeof(in) - 1)

Test(h1_body, chunked)
{
	BODY(H1_BODY_CHUNKED, 0, "5\r\nhello\r\n0\r\n\r\n", "", "hello");
	BODY(H1_BODY_CHUNKED, 0, "5\r\nhello\r\n0\r\n\r\n",
	     "GET / HTTP/1.1\r\n\r\n", "hello");
	BODY(H1_BODY_CHUNKED, 0, "0\r\n\r\n", "X", "");
	BODY(H1_BODY_CHUNKED, 0,
	     "3;foo=bar\r\nabc\r\n2 ; x=\"y;z\"\t;k\r\nde\r\n"
	     "A\r\n0123456789\r\n00000001\r\n!\r\n"
	     "0;last\r\nTrailer-A: x\r\nT2:\ty \xff\r\n\r\n",
	     "HTTP/1.1 200 OK\r\n", "abcde0123456789!");
	BODY(H1_BODY_CHUNKED, 0, "1a\r\nabcdefghijklmnopqrstuvwxyz\r\n"
	     "1A\r\nABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n0\r\n\r\n", "\r\n",
	     "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
	/* Payload bytes that look like framing are payload. */
	BODY(H1_BODY_CHUNKED, 0, "6\r\n0\r\n\r\n\n\r\n0\r\n\r\n", "",
	     "0\r\n\r\n\n");
}

Test(h1_body, chunked_one_span_per_call)
{
	static const char in[] = "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT";
	struct h1_body b;
	const char *data;
	size_t dl, off = 0;
	ssize_t r;

	h1_body_init(&b, H1_BODY_CHUNKED, 0);
	r = h1_body_parse(&b, in, sizeof(in) - 1, &data, &dl);
	/* The first span, its CRLF and the next size line. */
	cr_assert_eq(r, 11);
	cr_assert(span_eq(data, dl, "abc"));
	cr_assert_not(b.done);
	off += (size_t)r;
	r = h1_body_parse(&b, in + off, sizeof(in) - 1 - off, &data, &dl);
	cr_assert_eq(r, 2 + 2 + 5);
	cr_assert(span_eq(data, dl, "de"));
	cr_assert(b.done);
	off += (size_t)r;
	cr_assert_str_eq(in + off, "NEXT");
	r = h1_body_parse(&b, in + off, 4, &data, &dl);
	cr_assert_eq(r, 0);
	cr_assert_null(data);
	cr_assert_eq(dl, 0);
}

Test(h1_body, chunked_errors)
{
	static char big[20000];
	size_t n;

	expect_body_err(H1_BODY_CHUNKED, "g\r\n", 3, RC_H1_BAD_CHUNK);
	expect_body_err(H1_BODY_CHUNKED, ";x\r\n", 4, RC_H1_BAD_CHUNK);
	expect_body_err(H1_BODY_CHUNKED, "\r\n", 2, RC_H1_BAD_CHUNK);
	expect_body_err(H1_BODY_CHUNKED, "-1\r\n", 4, RC_H1_BAD_CHUNK);
	expect_body_err(H1_BODY_CHUNKED, "0x5\r\n", 5, RC_H1_BAD_CHUNK);
	expect_body_err(H1_BODY_CHUNKED, "5\nhello", 7, RC_H1_BAD_CHUNK);
	expect_body_err(H1_BODY_CHUNKED, "5\rhello", 7, RC_H1_BAD_CHUNK);
	expect_body_err(H1_BODY_CHUNKED, "5 \r\nhello", 9, RC_H1_BAD_CHUNK);
	expect_body_err(H1_BODY_CHUNKED, "5;a\nb\r\n", 7, RC_H1_BAD_CHUNK);
	expect_body_err(H1_BODY_CHUNKED, "5;a\0b\r\n", 7, RC_H1_BAD_CHUNK);
	expect_body_err(H1_BODY_CHUNKED, "5\r\nhelloX\r\n", 11,
			RC_H1_BAD_CHUNK);
	expect_body_err(H1_BODY_CHUNKED, "5\r\nhello\r0\r\n", 12,
			RC_H1_BAD_CHUNK);
	expect_body_err(H1_BODY_CHUNKED, "5\r\nhello\n0\r\n", 12,
			RC_H1_BAD_CHUNK);
	expect_body_err(H1_BODY_CHUNKED, "10000000000000000\r\n", 19,
			RC_H1_BAD_CHUNK);
	expect_body_err(H1_BODY_CHUNKED, "0\r\n\n", 4, RC_H1_BAD_CHUNK);
	expect_body_err(H1_BODY_CHUNKED, "0\r\n\rX", 5, RC_H1_BAD_CHUNK);
	expect_body_err(H1_BODY_CHUNKED, "0\r\n x: y\r\n\r\n", 11,
			RC_H1_BAD_CHUNK);
	expect_body_err(H1_BODY_CHUNKED, "0\r\nA: b\nB: c\r\n\r\n", 16,
			RC_H1_BAD_CHUNK);
	expect_body_err(H1_BODY_CHUNKED, "0\r\nA: \x01\r\n\r\n", 10,
			RC_H1_BAD_CHUNK);

	/* A huge chunk size is fine as long as it fits in 64 bits. */
	{
		struct h1_body b;
		const char *data;
		size_t dl;

		h1_body_init(&b, H1_BODY_CHUNKED, 0);
		cr_assert_eq(h1_body_parse(&b, "ffffffffFFFFFFFF\r\n", 18,
					   &data, &dl), 18);
		cr_assert_eq(b.remaining, UINT64_MAX);
		cr_assert_eq(h1_body_eof(&b), RC_H1_BAD_CHUNK);
	}

	/* Extensions beyond the line bound. */
	memcpy(big, "1;", 2);
	memset(big + 2, 'x', 5000);
	memcpy(big + 5002, "\r\n", 2);
	expect_body_err(H1_BODY_CHUNKED, big, 5004, RC_H1_BAD_CHUNK);

	/* Trailers beyond 16 KiB. */
	n = 0;
	memcpy(big, "0\r\n", 3);
	n = 3;
	while (n < 17000) {
		memcpy(big + n, "X-Trailer: 0123456789abcdef\r\n", 29);
		n += 29;
	}
	memcpy(big + n, "\r\n", 2);
	n += 2;
	expect_body_err(H1_BODY_CHUNKED, big, n, RC_H1_TRAILERS_TOO_LARGE);
}

Test(h1_body, chunked_error_is_sticky)
{
	struct h1_body b;
	const char *data;
	size_t dl;

	h1_body_init(&b, H1_BODY_CHUNKED, 0);
	cr_assert_eq(h1_body_parse(&b, "z", 1, &data, &dl), RC_H1_BAD_CHUNK);
	cr_assert_lt(h1_body_parse(&b, "0\r\n\r\n", 5, &data, &dl), 0);
	cr_assert_lt(h1_body_eof(&b), 0);
}

Test(h1_body, content_length)
{
	BODY(H1_BODY_LENGTH, 5, "hello", " world", "hello");
	BODY(H1_BODY_LENGTH, 5, "hello", "", "hello");
	BODY(H1_BODY_LENGTH, 1, "\0", "\0", "\0");
}

Test(h1_body, content_length_zero_and_none)
{
	struct h1_body b;
	const char *data;
	size_t dl;

	h1_body_init(&b, H1_BODY_LENGTH, 0);
	cr_assert(b.done);
	cr_assert_eq(h1_body_parse(&b, "GET", 3, &data, &dl), 0);
	cr_assert_eq(h1_body_eof(&b), 0);
	h1_body_init(&b, H1_BODY_NONE, 99);
	cr_assert(b.done);
	cr_assert_eq(h1_body_parse(&b, "GET", 3, &data, &dl), 0);
	cr_assert_null(data);
	cr_assert_eq(h1_body_eof(&b), 0);
}

Test(h1_body, close_delimited)
{
	static struct decoded d;
	static const char in[] = "everything\r\n0\r\n\r\nuntil EOF";

	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		decode(&d, H1_BODY_CLOSE, 0, in, sizeof(in) - 1, steps[s]);
		cr_assert_eq(d.err, 0);
		cr_assert_not(d.b.done);
		cr_assert_eq(d.consumed, sizeof(in) - 1);
		cr_assert_eq(d.out_len, sizeof(in) - 1);
		cr_assert(memcmp(d.out, in, sizeof(in) - 1) == 0);
		cr_assert_eq(h1_body_eof(&d.b), 0);
		cr_assert(d.b.done);
		cr_assert_eq(d.b.total, sizeof(in) - 1);
	}
}

Test(h1_body, truncated_then_eof)
{
	static const char *const cut[] = { "", "5", "5\r", "5\r\n", "5\r\nhel",
					   "5\r\nhello", "5\r\nhello\r\n",
					   "5\r\nhello\r\n0\r\n",
					   "5\r\nhello\r\n0\r\nA: b\r\n",
					   "5\r\nhello\r\n0\r\n\r" };
	static struct decoded d;

	for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
		decode(&d, H1_BODY_CHUNKED, 0, cut[i], strlen(cut[i]), 1);
		cr_assert_eq(d.err, 0);
		cr_assert_not(d.b.done);
		cr_assert_eq(h1_body_eof(&d.b), RC_H1_BAD_CHUNK, "%s", cut[i]);
	}
	decode(&d, H1_BODY_LENGTH, 10, "short", 5, 1);
	cr_assert_not(d.b.done);
	cr_assert_eq(h1_body_eof(&d.b), RC_H1_SYNTAX);
}

/* A request head followed by its body and the next request. */
Test(h1_body, pipelined_after_bodies)
{
	static const char raw[] =
		"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
		"POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		"2\r\nxy\r\n0\r\n\r\n"
		"GET /c HTTP/1.1\r\n\r\n";
	struct h1_header hs[MAXH];
	struct h1_request req;
	struct h1_body b;
	const char *data;
	size_t dl, off = 0, len = sizeof(raw) - 1;
	const char *want[] = { "/a", "/b", "/c" };

	for (int i = 0; i < 3; i++) {
		ssize_t r = h1_parse_request(raw + off, len - off, 0, &req, hs,
					     MAXH, NULL);

		cr_assert_gt(r, 0);
		cr_assert(span_eq(req.target, req.target_len, want[i]));
		off += (size_t)r;
		h1_body_init(&b, req.body, req.content_length);
		while (!b.done) {
			r = h1_body_parse(&b, raw + off, len - off, &data, &dl);
			cr_assert_gt(r, 0);
			off += (size_t)r;
		}
	}
	cr_assert_eq(off, len);
}

/* ---- Serializers ---- */

Test(h1_write, request_head_exact)
{
	static const char want[] = "POST /x?y HTTP/1.1\r\n"
				   "Host: example.com\r\n"
				   "X-Keep: 1\r\n"
				   "Via: 1.1 ringcap\r\n"
				   "X-Empty: \r\n"
				   "\r\n";
	const struct h1_header hs[] = {
		{ "Host", 4, "example.com", 11 },
		{ "Proxy-Connection", 16, "keep-alive", 10 },
		{ "X-Keep", 6, "1", 1 },
		{ "proxy-authorization", 19, "Basic x", 7 },
	};
	const struct h1_header extra[] = {
		{ "Via", 3, "1.1 ringcap", 11 },
		{ "X-Empty", 7, "", 0 },
	};
	const char *const skip[] = { "Proxy-Authorization",
				     "PROXY-CONNECTION", NULL };
	char out[256];
	ssize_t n = h1_write_request_head(out, sizeof(out), "POST", 4,
					  "/x?y", 4, 1, hs, 4, skip, extra, 2);

	cr_assert_eq(n, (ssize_t)sizeof(want) - 1);
	cr_assert(memcmp(out, want, sizeof(want) - 1) == 0);
	for (size_t cap = 0; cap < sizeof(want) - 1; cap++)
		cr_assert_eq(h1_write_request_head(out, cap, "POST", 4, "/x?y",
						   4, 1, hs, 4, skip, extra,
						   2),
			     -ENOSPC, "cap %zu", cap);
	cr_assert_eq(h1_write_request_head(out, sizeof(want) - 1, "POST", 4,
					   "/x?y", 4, 1, hs, 4, skip, extra, 2),
		     (ssize_t)sizeof(want) - 1);
}

Test(h1_write, request_head_minimal)
{
	char out[64];
	ssize_t n = h1_write_request_head(out, sizeof(out), "GET", 3, "/", 1,
					  0, NULL, 0, NULL, NULL, 0);

	cr_assert_eq(n, 18);
	cr_assert(memcmp(out, "GET / HTTP/1.0\r\n\r\n", 18) == 0);
}

Test(h1_write, request_head_roundtrip)
{
	static const char raw[] = "GET http://h/p HTTP/1.1\r\nHost: h\r\n"
				  "Proxy-Connection: keep-alive\r\nA: b c\r\n\r\n";
	struct h1_header hs[MAXH];
	struct h1_request req;
	const char *const skip[] = { "proxy-connection", NULL };
	char out[256];
	ssize_t n;

	cr_assert_gt(h1_parse_request(raw, sizeof(raw) - 1, 0, &req, hs, MAXH,
				      NULL), 0);
	n = h1_write_request_head(out, sizeof(out), req.method, req.method_len,
				  req.t.path, req.t.path_len,
				  req.version_minor, req.headers,
				  req.num_headers, skip, NULL, 0);
	cr_assert_eq(n, 36);
	cr_assert(memcmp(out, "GET /p HTTP/1.1\r\nHost: h\r\nA: b c\r\n\r\n",
			 36) == 0);
}

Test(h1_write, error_response_exact)
{
	static const char want[] = "HTTP/1.1 502 Bad Gateway\r\n"
				   "Content-Type: text/plain\r\n"
				   "Content-Length: 20\r\n"
				   "Connection: close\r\n"
				   "\r\n"
				   "upstream refused it\n";
	char out[256];
	ssize_t n = h1_write_error_response(out, sizeof(out), 502,
					    "upstream refused it\n");

	cr_assert_eq(n, (ssize_t)sizeof(want) - 1);
	cr_assert(memcmp(out, want, sizeof(want) - 1) == 0);
	for (size_t cap = 0; cap < sizeof(want) - 1; cap++)
		cr_assert_eq(h1_write_error_response(out, cap, 502,
						     "upstream refused it\n"),
			     -ENOSPC, "cap %zu", cap);
	n = h1_write_error_response(out, sizeof(want) - 1, 502,
				    "upstream refused it\n");
	cr_assert_eq(n, (ssize_t)sizeof(want) - 1);
}

Test(h1_write, error_response_parses_back)
{
	struct h1_header hs[MAXH];
	struct h1_response resp;
	char out[256];
	ssize_t n = h1_write_error_response(out, sizeof(out), 431, "");
	ssize_t h = h1_parse_response(out, (size_t)n, 0, &resp, hs, MAXH, NULL);

	cr_assert_eq(h, n);
	cr_assert_eq(resp.status, 431);
	cr_assert(span_eq(resp.reason, resp.reason_len,
			  "Request Header Fields Too Large"));
	cr_assert(resp.has_content_length);
	cr_assert_eq(resp.content_length, 0);
	cr_assert_not(resp.keep_alive);
}

Test(h1_misc, reasons_and_names)
{
	cr_assert_str_eq(h1_reason(200), "OK");
	cr_assert_str_eq(h1_reason(400), "Bad Request");
	cr_assert_str_eq(h1_reason(404), "Not Found");
	cr_assert_str_eq(h1_reason(407), "Proxy Authentication Required");
	cr_assert_str_eq(h1_reason(431), "Request Header Fields Too Large");
	cr_assert_str_eq(h1_reason(501), "Not Implemented");
	cr_assert_str_eq(h1_reason(502), "Bad Gateway");
	cr_assert_str_eq(h1_reason(504), "Gateway Timeout");
	cr_assert_str_eq(h1_reason(505), "HTTP Version Not Supported");
	cr_assert_str_eq(h1_reason(999), "");
	cr_assert_str_eq(h1_reason(-1), "");
	for (int s = 100; s < 600; s++)
		cr_assert_not_null(h1_reason(s));
	cr_assert_str_eq(h1_target_form_str(H1_FORM_ORIGIN), "origin");
	cr_assert_str_eq(h1_target_form_str(H1_FORM_ABSOLUTE), "absolute");
	cr_assert_str_eq(h1_target_form_str(H1_FORM_AUTHORITY), "authority");
	cr_assert_str_eq(h1_target_form_str(H1_FORM_ASTERISK), "asterisk");
	cr_assert_str_eq(h1_target_form_str(H1_FORM_COUNT), "?");
	cr_assert_str_eq(h1_body_kind_str(H1_BODY_NONE), "none");
	cr_assert_str_eq(h1_body_kind_str(H1_BODY_LENGTH), "length");
	cr_assert_str_eq(h1_body_kind_str(H1_BODY_CHUNKED), "chunked");
	cr_assert_str_eq(h1_body_kind_str(H1_BODY_CLOSE), "close");
	cr_assert_str_eq(h1_body_kind_str(H1_BODY_KIND_COUNT), "?");
}

/* A slow client: re-parsing with last_len must not rescan from the start.
 * Not a timing test: it checks the result on a long head fed in pieces. */
Test(h1_request, long_head_in_pieces)
{
	static char raw[60000];
	struct h1_header hs[MAXH];
	struct h1_request req;
	size_t n = 0, last = 0;
	ssize_t r = 0;

	n += (size_t)sprintf(raw, "GET / HTTP/1.1\r\nX-Long: ");
	memset(raw + n, 'a', 50000);
	n += 50000;
	memcpy(raw + n, "\r\n\r\n", 4);
	n += 4;
	for (size_t i = 1; i <= n; i += 997) {
		r = h1_parse_request(raw, i, last, &req, hs, MAXH, NULL);
		cr_assert_eq(r, 0);
		last = i;
	}
	r = h1_parse_request(raw, n, last, &req, hs, MAXH, NULL);
	cr_assert_eq(r, (ssize_t)n);
	cr_assert_eq(req.headers[0].value_len, 50000);
}
