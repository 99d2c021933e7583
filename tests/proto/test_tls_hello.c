/* SPDX-License-Identifier: MIT */
/* proto/tls_hello tests: real ClientHellos (tests/fuzz/corpus/tls_hello,
 * captured from openssl, curl, wget/GnuTLS and python) parsed whole, one
 * byte at a time against a PROT_NONE page, and re-framed into records of
 * many sizes; each length field off by one; built hellos for each check the
 * parser makes; and the sniffer on TLS and on what is not TLS. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/tls_hello.h"
#include "tests/proto/harness.h"

#ifndef TLS_HELLO_CORPUS
#error "meson passes TLS_HELLO_CORPUS, the seed corpus directory"
#endif

static uint8_t scratch[TLS_HELLO_MAX_MSG];

static bool inside(const void *pv, size_t n, const uint8_t *buf, size_t len)
{
	const uint8_t *p = pv;

	return n == 0 || (p >= buf && p + n <= buf + len);
}

static bool span_eq(const void *p, size_t n, const char *want)
{
	if (!want)
		return p == NULL && n == 0;
	return strlen(want) == n && memcmp(p, want, n) == 0;
}

static ssize_t parse(const uint8_t *buf, size_t len,
		     struct tls_client_hello *h, size_t *off)
{
	return tls_parse_client_hello(buf, len, scratch, sizeof(scratch), h,
				      off);
}

/* Parse whole (exact-size heap copy, so ASan sees over-reads too), then
 * every prefix ending right before the guard page: a prefix answers 0 until
 * the hello is complete, then the whole answer; an error shows up as 0 or as
 * itself at the same offset. Returns the whole answer. */
static ssize_t parse_all_ways(const uint8_t *raw, size_t len,
			      struct tls_client_hello *out, size_t *out_off)
{
	struct tls_client_hello h;
	uint8_t *heap = malloc(len ? len : 1);
	size_t off = (size_t)-1, off2;
	struct guard g;
	ssize_t r, r2;

	memcpy(heap, raw, len);
	r = parse(heap, len, &h, &off);
	free(heap);
	if (r < 0) {
		cr_assert_lt(off, len, "err_off %zu outside %zu bytes", off,
			     len);
		cr_assert(r <= RC_TLS_NOT_TLS && r >= RC_TLS_TOO_FRAGMENTED,
			  "%zd", r);
	}
	guard_init(&g, len);
	for (size_t i = 0; i <= len; i++) {
		uint8_t *p = guard_put(&g, raw, i);

		off2 = (size_t)-1;
		r2 = parse(p, i, &h, &off2);
		if (r > 0) {
			cr_assert_eq(r2, (ssize_t)i < r ? 0 : r,
				     "prefix %zu of %zu: %zd", i, len, r2);
		} else if (r2 != 0 || i == len) {
			cr_assert_eq(r2, r, "prefix %zu of %zu: %zd (%s), want %s",
				     i, len, r2, rc_errname((int)r2),
				     rc_errname((int)r));
			cr_assert_eq(off2, off, "prefix %zu: err_off %zu want %zu",
				     i, off2, off);
		}
		if (i == len && out)
			*out = h;
	}
	/* |out| points into the guard page copy: keep it mapped until the end
	 * of the test (it is small, the leak is the test's). */
	if (!out)
		guard_free(&g);
	if (out_off)
		*out_off = off;
	return r;
}

/* ---- The captured hellos ---- */

struct capture {
	const char *name;
	const char *sni; /* NULL: none */
	enum tls_sni_kind kind;
	const char *alpn[TLS_HELLO_MAX_ALPN]; /* first entries, NULL-ended */
	size_t n_alpn;
	bool tls13;
	uint16_t legacy_version;
	size_t n_records;
	size_t n_key_shares;
};

static const struct capture captures[] = {
	{ "openssl-tls13-sni-alpn", "example.com", TLS_SNI_DNS,
	  { "h2", "http/1.1" }, 2, true, 0x0303, 1, 1 },
	{ "openssl-tls12-sni-alpn", "example.com", TLS_SNI_DNS,
	  { "h2", "http/1.1" }, 2, false, 0x0303, 1, 0 },
	{ "openssl-default-nosni", NULL, TLS_SNI_NONE, { 0 }, 0, true, 0x0303,
	  1, 1 },
	{ "openssl-ip-sni", "127.0.0.1", TLS_SNI_IP, { "http/1.1" }, 1, true,
	  0x0303, 1, 1 },
	{ "openssl-tls10", "old.example", TLS_SNI_DNS, { 0 }, 0, false, 0x0301,
	  1, 0 },
	{ "openssl-frag512", "fragmented.example.com", TLS_SNI_DNS,
	  { "h2", "http/1.1", "proto-00-padding-padding" }, 16, true, 0x0303,
	  2, 1 },
	{ "curl", "www.example.org", TLS_SNI_DNS, { "h2", "http/1.1" }, 2, true,
	  0x0303, 1, 1 },
	{ "curl-http11", "api.example.net", TLS_SNI_DNS, { "http/1.1" }, 1,
	  true, 0x0303, 1, 1 },
	{ "wget-gnutls", "localhost", TLS_SNI_DNS, { 0 }, 0, true, 0x0303, 1,
	  2 },
	{ "python-sni-alpn", "example.com", TLS_SNI_DNS, { "h2", "http/1.1" },
	  2, true, 0x0303, 1, 1 },
	{ "python-nosni", NULL, TLS_SNI_NONE, { 0 }, 0, true, 0x0303, 1, 1 },
};
#define N_CAPTURES (sizeof(captures) / sizeof(captures[0]))

static uint8_t *load(const char *name, size_t *len)
{
	char path[512];
	uint8_t *buf = malloc(1 << 16);
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", TLS_HELLO_CORPUS, name);
	f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	*len = fread(buf, 1, 1 << 16, f);
	fclose(f);
	cr_assert_gt(*len, 0, "%s is empty", path);
	return buf;
}

static void check_capture(const struct capture *c,
			  const struct tls_client_hello *h,
			  const uint8_t *buf, size_t len)
{
	const uint8_t *base = h->reassembled ? scratch : buf;
	size_t blen = h->reassembled ? h->msg_len : len;

	cr_assert_eq(h->legacy_version, c->legacy_version, "%s", c->name);
	cr_assert_eq(h->sni_kind, c->kind, "%s: sni kind %s", c->name,
		     tls_sni_kind_str(h->sni_kind));
	cr_assert(span_eq(h->sni, h->sni_len, c->sni), "%s: sni %.*s", c->name,
		  (int)h->sni_len, h->sni);
	cr_assert_eq(h->n_alpn, c->n_alpn, "%s: %zu alpn", c->name, h->n_alpn);
	cr_assert_eq(h->has_alpn, c->n_alpn > 0, "%s", c->name);
	for (size_t i = 0; i < TLS_HELLO_MAX_ALPN && c->alpn[i]; i++)
		cr_assert(span_eq(h->alpn[i].p, h->alpn[i].len, c->alpn[i]),
			  "%s: alpn[%zu]", c->name, i);
	cr_assert_not(h->alpn_more, "%s", c->name);
	cr_assert_eq(h->offers_tls13, c->tls13, "%s", c->name);
	cr_assert_eq(h->has_supported_versions, c->tls13, "%s", c->name);
	cr_assert_eq(h->has_key_share, c->tls13, "%s", c->name);
	cr_assert_eq(h->n_key_shares, c->n_key_shares, "%s", c->name);
	if (c->tls13)
		cr_assert_eq(h->key_share_groups[h->n_key_shares - 1], 0x001d,
			     "%s: x25519 share", c->name);
	cr_assert_eq(h->has_sig_algs, c->legacy_version == 0x0303, "%s",
		     c->name);
	cr_assert_not(h->has_ech || h->has_esni, "%s", c->name);
	cr_assert_eq(h->reassembled, h->n_records > 1, "%s", c->name);
	cr_assert_eq(h->record_version, 0x0301, "%s", c->name);
	cr_assert_gt(h->n_ciphers, 3, "%s", c->name);
	cr_assert_eq(h->n_compression, 1, "%s", c->name);
	cr_assert_gt(h->n_ext, 5, "%s", c->name);
	cr_assert(h->session_id_len == 0 || h->session_id_len == 32);
	/* Everything points into the input (or the reassembly). */
	cr_assert(inside(h->msg, h->msg_len, base, blen), "%s", c->name);
	cr_assert(inside(h->random, 32, base, blen), "%s", c->name);
	cr_assert(inside(h->session_id, h->session_id_len, base, blen));
	cr_assert(inside(h->ciphers, 2 * h->n_ciphers, base, blen));
	cr_assert(inside(h->exts.p, h->exts.len, base, blen));
	cr_assert(inside(h->sni, h->sni_len, base, blen));
	cr_assert(inside(h->alpn_wire.p, h->alpn_wire.len, base, blen));
	for (size_t i = 0; i < h->n_alpn; i++)
		cr_assert(inside(h->alpn[i].p, h->alpn[i].len, base, blen));
	/* The ALPN wire format is what SSL_set_alpn_protos() takes. */
	if (h->has_alpn)
		cr_assert_eq(h->alpn_wire.p[0], h->alpn[0].len);
}

Test(tls_hello_capture, whole_and_per_byte)
{
	for (size_t i = 0; i < N_CAPTURES; i++) {
		const struct capture *c = &captures[i];
		struct tls_client_hello h;
		size_t len;
		uint8_t *buf = load(c->name, &len);
		ssize_t r = parse_all_ways(buf, len, &h, NULL);

		cr_assert_eq(r, (ssize_t)len, "%s: %zd (%s)", c->name, r,
			     rc_errname((int)r));
		cr_assert_eq(tls_sniff(buf, len), TLS_SNIFF_TLS, "%s", c->name);
		cr_assert_eq(h.n_records, c->n_records, "%s", c->name);
		/* |h| points into the guard copy, which is still mapped. */
		check_capture(c, &h, h.reassembled ? buf : h.msg - 9,
			      h.reassembled ? len : (size_t)r);
		free(buf);
	}
}

Test(tls_hello_capture, next_records_are_not_consumed)
{
	static const uint8_t ccs[] = { 0x14, 0x03, 0x03, 0x00, 0x01, 0x01,
				       0x17, 0x03, 0x03, 0x00, 0x01, 0xaa };

	for (size_t i = 0; i < N_CAPTURES; i++) {
		struct tls_client_hello h;
		size_t len;
		uint8_t *buf = load(captures[i].name, &len);

		memcpy(buf + len, ccs, sizeof(ccs));
		cr_assert_eq(parse(buf, len + sizeof(ccs), &h, NULL),
			     (ssize_t)len, "%s", captures[i].name);
		check_capture(&captures[i], &h, buf, len);
		free(buf);
	}
}

/* ---- Building hellos ---- */

struct bld {
	uint8_t b[TLS_HELLO_MAX_MSG * 2];
	size_t n;
};

static void put(struct bld *b, const void *p, size_t n)
{
	cr_assert_leq(b->n + n, sizeof(b->b));
	if (n)
		memcpy(b->b + b->n, p, n);
	b->n += n;
}

static void put8(struct bld *b, unsigned v)
{
	uint8_t x = (uint8_t)v;

	put(b, &x, 1);
}

static void put16(struct bld *b, unsigned v)
{
	put8(b, v >> 8);
	put8(b, v);
}

/* Start a vector with a |w|-byte length; end_vec() fills it in. */
static size_t begin_vec(struct bld *b, int w)
{
	size_t at = b->n;

	for (int i = 0; i < w; i++)
		put8(b, 0);
	return at;
}

static void end_vec(struct bld *b, size_t at, int w)
{
	size_t n = b->n - at - (size_t)w;

	for (int i = 0; i < w; i++)
		b->b[at + (size_t)i] = (uint8_t)(n >> (8 * (w - 1 - i)));
}

/* One extension, its data given as bytes. */
static void put_ext(struct bld *b, unsigned type, const void *data, size_t n)
{
	put16(b, type);
	put16(b, (unsigned)n);
	put(b, data, n);
}

static void put_sni(struct bld *b, const char *name, size_t n)
{
	size_t ext, list, host;

	put16(b, TLS_EXT_SERVER_NAME);
	ext = begin_vec(b, 2);
	list = begin_vec(b, 2);
	put8(b, 0);
	host = begin_vec(b, 2);
	put(b, name, n);
	end_vec(b, host, 2);
	end_vec(b, list, 2);
	end_vec(b, ext, 2);
}

/* The fixed part of a TLS 1.3 ClientHello body. */
static void put_head(struct bld *b)
{
	static const uint8_t random[32] = { 1, 2, 3 };

	put16(b, 0x0303);
	put(b, random, 32);
	put8(b, 0);
	put16(b, 4);
	put16(b, 0x1301);
	put16(b, 0x1302);
	put8(b, 1);
	put8(b, 0);
}

/* Frame the body b[0..n) into records of |frag| payload bytes in |out|. */
static void frame(const struct bld *body, size_t frag, struct bld *out)
{
	const uint8_t hs[4] = { 0x01, (uint8_t)(body->n >> 16),
				(uint8_t)(body->n >> 8), (uint8_t)body->n };
	size_t msg = body->n + 4;

	out->n = 0;
	for (size_t done = 0; done < msg;) {
		size_t n = msg - done < frag ? msg - done : frag;

		put8(out, 0x16);
		put16(out, 0x0301);
		put16(out, (unsigned)n);
		for (size_t i = 0; i < n; i++, done++)
			put8(out, done < 4 ? hs[done] : body->b[done - 4]);
	}
}

/* A body with SNI |name| plus the extensions in |rest| (raw ext bytes). */
static void hello_with(struct bld *body, const char *name, const void *rest,
		       size_t rest_len)
{
	size_t exts;

	body->n = 0;
	put_head(body);
	exts = begin_vec(body, 2);
	if (name)
		put_sni(body, name, strlen(name));
	put(body, rest, rest_len);
	end_vec(body, exts, 2);
}

/* A body of exactly |want| bytes: SNI |name|, then padding. */
static void hello_padded(struct bld *body, const char *name, size_t want)
{
	static const uint8_t zeros[TLS_HELLO_MAX_MSG];
	size_t exts = 43; /* the extensions length follows put_head() */

	hello_with(body, name, NULL, 0);
	cr_assert_geq(want, body->n + 4);
	put_ext(body, TLS_EXT_PADDING, zeros, want - body->n - 4);
	end_vec(body, exts, 2);
}

static struct bld body_, rec_;

/* Expect |code| at |off| from buf[0..len), whole and per byte. */
static void expect_err_buf(const uint8_t *buf, size_t len, int code,
			   size_t off)
{
	size_t got_off;
	ssize_t r = parse_all_ways(buf, len, NULL, &got_off);

	cr_assert_eq(r, code, "got %zd (%s) want %s", r, rc_errname((int)r),
		     rc_errname(code));
	cr_assert_eq(got_off, off, "%s: err_off %zu want %zu",
		     rc_errname(code), got_off, off);
}

static void expect_err(const struct bld *rec, int code, size_t off)
{
	expect_err_buf(rec->b, rec->n, code, off);
}

/* The same for big inputs: whole, and the prefix that first shows it. */
static void expect_err_big(const struct bld *rec, int code, size_t off,
			   size_t seen_at)
{
	struct tls_client_hello h;
	size_t got = (size_t)-1;

	cr_assert_eq(parse(rec->b, rec->n, &h, &got), code);
	cr_assert_eq(got, off);
	cr_assert_eq(parse(rec->b, seen_at - 1, &h, &got), 0);
	got = (size_t)-1;
	cr_assert_eq(parse(rec->b, seen_at, &h, &got), code);
	cr_assert_eq(got, off);
}

/* ---- Record layer fragmentation ---- */

/* Re-frame each capture's message into records of many sizes: the same
 * hello, pointers into the scratch, and too small a scratch asks for more. */
Test(tls_hello_fragmented, captures_reframed)
{
	static const size_t frags[] = { 1, 2, 3, 4, 5, 7, 64, 255, 511, 16384 };
	struct tls_client_hello h, f;

	for (size_t i = 0; i < N_CAPTURES; i++) {
		size_t len, off;
		uint8_t *buf = load(captures[i].name, &len);

		cr_assert_eq(parse(buf, len, &h, NULL), (ssize_t)len);
		body_.n = 0;
		put(&body_, h.msg, h.msg_len);
		for (size_t k = 0; k < sizeof(frags) / sizeof(frags[0]); k++) {
			ssize_t r;

			frame(&body_, frags[k], &rec_);
			r = tls_parse_client_hello(rec_.b, rec_.n, scratch,
						   sizeof(scratch), &f, &off);
			cr_assert_eq(r, (ssize_t)rec_.n, "%s / %zu: %zd",
				     captures[i].name, frags[k], r);
			cr_assert_eq(f.n_records,
				     (h.msg_len + 4 + frags[k] - 1) / frags[k]);
			check_capture(&captures[i], &f, rec_.b, rec_.n);
			cr_assert_eq(f.n_records > 1, f.reassembled);
		}
		/* Per byte at a mid size; then scratch one byte short. */
		frame(&body_, 7, &rec_);
		cr_assert_eq(parse_all_ways(rec_.b, rec_.n, NULL, NULL),
			     (ssize_t)rec_.n);
		cr_assert_eq(tls_parse_client_hello(rec_.b, rec_.n, scratch,
						    h.msg_len - 1, &f, &off),
			     RC_TLS_NEED_SCRATCH);
		cr_assert_eq(f.msg_len, h.msg_len);
		cr_assert_eq(tls_parse_client_hello(rec_.b, rec_.n, NULL, 0,
						    &f, &off),
			     RC_TLS_NEED_SCRATCH);
		free(buf);
	}
}

Test(tls_hello_fragmented, record_errors_mid_hello)
{
	static const uint8_t alert[] = { 0x15, 0x03, 0x03, 0x00, 0x02, 2, 40 };
	size_t cut;

	hello_with(&body_, "example.com", NULL, 0);
	frame(&body_, 20, &rec_);
	/* An alert between two fragments. */
	cut = 25;
	memmove(rec_.b + cut + sizeof(alert), rec_.b + cut, rec_.n - cut);
	memcpy(rec_.b + cut, alert, sizeof(alert));
	rec_.n += sizeof(alert);
	expect_err(&rec_, RC_TLS_NOT_HANDSHAKE, cut);
	/* Application data, change_cipher_spec: the same. */
	rec_.b[cut] = 0x17;
	expect_err(&rec_, RC_TLS_NOT_HANDSHAKE, cut);
	rec_.b[cut] = 0x14;
	expect_err(&rec_, RC_TLS_NOT_HANDSHAKE, cut);
	/* A later record with a bad version, a zero or oversized length. */
	frame(&body_, 20, &rec_);
	rec_.b[26] = 0x02;
	expect_err(&rec_, RC_TLS_BAD_RECORD, 26);
	frame(&body_, 20, &rec_);
	rec_.b[27] = 0x05;
	expect_err(&rec_, RC_TLS_BAD_RECORD, 27);
	frame(&body_, 20, &rec_);
	rec_.b[28] = 0, rec_.b[29] = 0;
	expect_err(&rec_, RC_TLS_BAD_RECORD, 28);
	frame(&body_, 20, &rec_);
	rec_.b[28] = 0x40, rec_.b[29] = 0x01;
	expect_err(&rec_, RC_TLS_BAD_RECORD, 28);
	/* The last record longer than the rest of the message. */
	frame(&body_, 20, &rec_);
	cut = rec_.n - (body_.n + 4) % 20 - 5;
	rec_.b[cut + 4]++;
	rec_.b[rec_.n++] = 0;
	expect_err(&rec_, RC_TLS_TRAILING_DATA, cut + 3);
}

Test(tls_hello_fragmented, handshake_header_split)
{
	struct tls_client_hello h;

	/* The 4-byte handshake header over four 1-byte records. */
	hello_with(&body_, "a.example", NULL, 0);
	frame(&body_, 1, &rec_);
	cr_assert_eq(parse_all_ways(rec_.b, rec_.n, &h, NULL), (ssize_t)rec_.n);
	cr_assert(span_eq(h.sni, h.sni_len, "a.example"));
	cr_assert_eq(h.n_records, body_.n + 4);
	/* Not a ClientHello: blamed on the type byte. */
	rec_.b[5] = 0x02;
	expect_err(&rec_, RC_TLS_NOT_CLIENT_HELLO, 5);
	/* Too large: blamed on the first length byte, in the second record. */
	frame(&body_, 1, &rec_);
	rec_.b[11] = 0x01, rec_.b[17] = 0x00, rec_.b[23] = 0x01;
	expect_err(&rec_, RC_TLS_HELLO_TOO_LARGE, 11);
}

Test(tls_hello_fragmented, limits)
{
	struct tls_client_hello h;
	size_t off;

	/* The largest hello we take: a 64 KiB body in 5 records. */
	hello_padded(&body_, "big.example", TLS_HELLO_MAX_MSG);
	frame(&body_, 16384, &rec_);
	cr_assert_eq(parse(rec_.b, rec_.n, &h, &off), (ssize_t)rec_.n);
	cr_assert_eq(h.n_records, 5);
	cr_assert(span_eq(h.sni, h.sni_len, "big.example"));
	/* One byte more is too large, blamed on the handshake length. */
	hello_padded(&body_, "big.example", TLS_HELLO_MAX_MSG + 1);
	frame(&body_, 16384, &rec_);
	expect_err_big(&rec_, RC_TLS_HELLO_TOO_LARGE, 6, 9);
	/* TLS_HELLO_MAX_RECORDS records are fine, one more is not. */
	hello_padded(&body_, NULL, TLS_HELLO_MAX_RECORDS - 4);
	frame(&body_, 1, &rec_);
	cr_assert_eq(parse(rec_.b, rec_.n, &h, &off), (ssize_t)rec_.n);
	cr_assert_eq(h.n_records, TLS_HELLO_MAX_RECORDS);
	hello_padded(&body_, NULL, TLS_HELLO_MAX_RECORDS - 3);
	frame(&body_, 1, &rec_);
	expect_err_big(&rec_, RC_TLS_TOO_FRAGMENTED, 6 * TLS_HELLO_MAX_RECORDS,
		       6 * TLS_HELLO_MAX_RECORDS + 5);
}

/* ---- Malformed variants of the captures ---- */

/* A length field in a single-record capture. |fills|: the vector must end
 * exactly where its container does, so any change is BAD_LENGTH there. */
struct lenfield {
	size_t off;
	int width;
	bool fills;
};

static size_t rd(const uint8_t *p, int w)
{
	size_t v = 0;

	for (int i = 0; i < w; i++)
		v = v << 8 | p[i];
	return v;
}

static void wr(uint8_t *p, int w, size_t v)
{
	for (int i = w - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* The length fields inside one extension's data at buf[d..d+n). */
static size_t ext_fields(const uint8_t *buf, unsigned type, size_t d,
			 size_t n, struct lenfield *f)
{
	size_t k = 0, p, end = d + n;

	switch (type) {
	case TLS_EXT_SERVER_NAME:
		f[k++] = (struct lenfield){ d, 2, true };
		f[k++] = (struct lenfield){ d + 3, 2, false };
		break;
	case TLS_EXT_ALPN:
		f[k++] = (struct lenfield){ d, 2, true };
		for (p = d + 2; p < end; p += 1 + buf[p])
			f[k++] = (struct lenfield){ p, 1, false };
		break;
	case TLS_EXT_KEY_SHARE:
		f[k++] = (struct lenfield){ d, 2, true };
		for (p = d + 2; p < end; p += 4 + rd(buf + p + 2, 2))
			f[k++] = (struct lenfield){ p + 2, 2, false };
		break;
	case TLS_EXT_SUPPORTED_VERSIONS:
	case TLS_EXT_EC_POINT_FORMATS:
	case TLS_EXT_PSK_KEY_EXCHANGE_MODES:
		f[k++] = (struct lenfield){ d, 1, true };
		break;
	case TLS_EXT_SIGNATURE_ALGORITHMS:
	case TLS_EXT_SUPPORTED_GROUPS:
		f[k++] = (struct lenfield){ d, 2, true };
		break;
	default:
		break;
	}
	return k;
}

/* Every length field of a one-record hello, found independently of the
 * parser. Record and handshake lengths first. */
static size_t length_fields(const uint8_t *buf, size_t len,
			    struct lenfield *f)
{
	size_t k = 0, p = 9 + 2 + 32;

	f[k++] = (struct lenfield){ 3, 2, false };
	f[k++] = (struct lenfield){ 6, 3, false };
	f[k++] = (struct lenfield){ p, 1, false };
	p += 1 + buf[p];
	f[k++] = (struct lenfield){ p, 2, false };
	p += 2 + rd(buf + p, 2);
	f[k++] = (struct lenfield){ p, 1, false };
	p += 1 + buf[p];
	if (p == len)
		return k;
	f[k++] = (struct lenfield){ p, 2, true };
	for (p += 2; p < len;) {
		size_t n = rd(buf + p + 2, 2);

		f[k++] = (struct lenfield){ p + 2, 2, false };
		k += ext_fields(buf, (unsigned)rd(buf + p, 2), p + 4, n, f + k);
		p += 4 + n;
	}
	cr_assert_eq(p, len);
	return k;
}

Test(tls_hello_malformed, each_length_off_by_one)
{
	struct lenfield f[256];

	for (size_t i = 0; i < N_CAPTURES; i++) {
		size_t len, n, off;
		uint8_t *buf = load(captures[i].name, &len);

		if (captures[i].n_records > 1) {
			free(buf);
			continue;
		}
		n = length_fields(buf, len, f);
		for (size_t j = 0; j < n; j++) {
			size_t v = rd(buf + f[j].off, f[j].width);

			for (int d = -1; d <= 1; d += 2) {
				ssize_t r;

				if (v == 0 && d < 0)
					continue;
				wr(buf + f[j].off, f[j].width, v + (size_t)d);
				r = parse_all_ways(buf, len, NULL, &off);
				wr(buf + f[j].off, f[j].width, v);
				if (j == 0 && d > 0) { /* record length + 1 */
					cr_assert_eq(r, RC_TLS_TRAILING_DATA);
					cr_assert_eq(off, 3);
				} else if (j == 0) { /* the last byte: a record? */
					cr_assert(r < 0 || buf[len - 1] == 0x16);
				} else if (j == 1 && d > 0) {
					/* 1 byte left: a next record may bring it */
					cr_assert_eq(r, 0);
				} else if (j == 1) {
					cr_assert_eq(r, RC_TLS_TRAILING_DATA);
					cr_assert_eq(off, 3);
				} else if (f[j].fills) {
					cr_assert_eq(r, RC_TLS_BAD_LENGTH,
						     "%s: field @%zu %+d: %s",
						     captures[i].name, f[j].off,
						     d, rc_errname((int)r));
					cr_assert_eq(off, f[j].off);
				} else {
					cr_assert_lt(r, 0, "%s: field @%zu %+d",
						     captures[i].name, f[j].off,
						     d);
				}
			}
		}
		free(buf);
	}
}

/* Cut the message short by k bytes, with record and handshake lengths
 * that agree: always an error, except where the extensions would start
 * (a hello without extensions, as SSL 3.0 allowed). */
Test(tls_hello_malformed, truncated)
{
	for (size_t i = 0; i < N_CAPTURES; i++) {
		struct tls_client_hello h;
		size_t len, off;
		uint8_t *buf = load(captures[i].name, &len);
		size_t no_ext;

		if (captures[i].n_records > 1) {
			free(buf);
			continue;
		}
		cr_assert_eq(parse(buf, len, &h, NULL), (ssize_t)len);
		no_ext = h.exts.len + 2;
		for (size_t k = 1; k < len - 9; k++) {
			ssize_t r;

			wr(buf + 3, 2, len - 5 - k);
			wr(buf + 6, 3, len - 9 - k);
			r = parse(buf, len - k, &h, &off);
			if (k == no_ext) {
				cr_assert_eq(r, (ssize_t)(len - k));
				cr_assert_eq(h.n_ext, 0);
			} else {
				cr_assert_lt(r, 0, "%s cut %zu", captures[i].name, k);
				cr_assert_lt(off, len - k);
			}
		}
		/* Nothing left of the body: the handshake length is at fault. */
		wr(buf + 3, 2, 4);
		wr(buf + 6, 3, 0);
		cr_assert_eq(parse(buf, 9, &h, &off), RC_TLS_BAD_LENGTH);
		cr_assert_eq(off, 6);
		free(buf);
	}
}

/* Each capture with its first extension sent twice. */
Test(tls_hello_malformed, duplicate_extension)
{
	for (size_t i = 0; i < N_CAPTURES; i++) {
		struct tls_client_hello h;
		size_t len, at, n, exts;
		uint8_t *buf = load(captures[i].name, &len);

		if (captures[i].n_records > 1) {
			free(buf);
			continue;
		}
		cr_assert_eq(parse(buf, len, &h, NULL), (ssize_t)len);
		exts = (size_t)(h.exts.p - buf);
		n = 4 + rd(buf + exts + 2, 2); /* the first extension */
		at = exts + n;
		memmove(buf + at + n, buf + at, len - at);
		memcpy(buf + at, buf + exts, n);
		len += n;
		wr(buf + 3, 2, rd(buf + 3, 2) + n);
		wr(buf + 6, 3, rd(buf + 6, 3) + n);
		wr(buf + exts - 2, 2, rd(buf + exts - 2, 2) + n);
		expect_err_buf(buf, len, RC_TLS_DUP_EXTENSION, at);
		free(buf);
	}
}

/* ---- Built hellos: one check each ---- */

/* Parse a one-record hello built from body_; returns the result. */
static ssize_t parse_built(struct tls_client_hello *h, size_t *off)
{
	frame(&body_, 16384, &rec_);
	return parse_all_ways(rec_.b, rec_.n, h, off);
}

Test(tls_hello_built, sni_names)
{
	static const struct {
		const char *name;
		enum tls_sni_kind kind; /* TLS_SNI_NONE: rejected */
	} cases[] = {
		{ "example.com", TLS_SNI_DNS },
		{ "a", TLS_SNI_DNS },
		{ "localhost", TLS_SNI_DNS },
		{ "xn--bcher-kva.example", TLS_SNI_DNS },
		{ "_dmarc.Example.ORG", TLS_SNI_DNS },
		{ "trailing.dot.", TLS_SNI_DNS },
		{ "0-9.a1", TLS_SNI_DNS },
		{ "123.example", TLS_SNI_DNS },
		{ "10.0.0.1", TLS_SNI_IP },
		{ "::1", TLS_SNI_IP },
		{ "[2001:db8::1]", TLS_SNI_IP },
		{ "fe80::1:2:3:4", TLS_SNI_IP },
		{ "", TLS_SNI_NONE },
		{ ".", TLS_SNI_NONE },
		{ "a..b", TLS_SNI_NONE },
		{ ".a", TLS_SNI_NONE },
		{ "a b", TLS_SNI_NONE },
		{ "a/b", TLS_SNI_NONE },
		{ "host:443", TLS_SNI_NONE },
		{ "1.2.3.999", TLS_SNI_NONE },
		{ "1.2.3", TLS_SNI_NONE },
		{ "caf\xc3\xa9.example", TLS_SNI_NONE },
		{ "two..dots.", TLS_SNI_NONE },
	};
	struct tls_client_hello h;
	char name[300];
	size_t off;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ssize_t r;

		hello_with(&body_, cases[i].name, NULL, 0);
		r = parse_built(&h, &off);
		if (cases[i].kind == TLS_SNI_NONE) {
			/* Empty names fail on the name's length field. */
			cr_assert_eq(r, *cases[i].name ? RC_TLS_BAD_SNI
						       : RC_TLS_BAD_LENGTH,
				     "%s: %s", cases[i].name,
				     rc_errname((int)r));
			cr_assert_eq(off, *cases[i].name ? 9 + 43 + 2 + 9
							 : 9 + 43 + 2 + 7);
			continue;
		}
		cr_assert_eq(r, (ssize_t)rec_.n, "%s: %s", cases[i].name,
			     rc_errname((int)r));
		cr_assert_eq(h.sni_kind, cases[i].kind, "%s", cases[i].name);
		cr_assert(span_eq(h.sni, h.sni_len, cases[i].name));
	}
	/* Label and name lengths. */
	memset(name, 'a', sizeof(name));
	name[63] = '\0';
	hello_with(&body_, name, NULL, 0);
	cr_assert_gt(parse_built(&h, &off), 0);
	name[63] = 'a', name[64] = '\0';
	hello_with(&body_, name, NULL, 0);
	cr_assert_eq(parse_built(&h, &off), RC_TLS_BAD_SNI);
	name[64] = 'a';
	for (size_t i = 63; i < sizeof(name); i += 64)
		name[i] = '.';
	name[253] = '\0';
	hello_with(&body_, name, NULL, 0);
	cr_assert_gt(parse_built(&h, &off), 0);
	cr_assert_eq(h.sni_len, 253);
	name[253] = 'a', name[254] = '\0';
	hello_with(&body_, name, NULL, 0);
	cr_assert_eq(parse_built(&h, &off), RC_TLS_BAD_SNI);
	/* A NUL inside. */
	hello_with(&body_, NULL, NULL, 0);
	body_.n = 43;
	put16(&body_, 9 + 3);
	put_sni(&body_, "a\0b", 3);
	cr_assert_eq(parse_built(&h, &off), RC_TLS_BAD_SNI);
}

Test(tls_hello_built, sni_list_shapes)
{
	/* An unknown name type is skipped; a second host_name is refused. */
	static const uint8_t two_types[] = { 0, 0, 0, 13, 0, 11, 1, 0, 2, 'x',
					     'y', 0, 0, 3, 'a', '.', 'b' };
	static const uint8_t two_hosts[] = { 0, 0, 0, 11, 0, 9, 0, 0, 2, 'x',
					     'y', 0, 0, 1, 'a' };
	struct tls_client_hello h;
	size_t off;

	hello_with(&body_, NULL, two_types, sizeof(two_types));
	cr_assert_gt(parse_built(&h, &off), 0);
	cr_assert(span_eq(h.sni, h.sni_len, "a.b"));
	hello_with(&body_, NULL, two_hosts, sizeof(two_hosts));
	cr_assert_eq(parse_built(&h, &off), RC_TLS_BAD_EXTENSION);
	cr_assert_eq(off, 9 + 45 + 4 + 2 + 5);
}

Test(tls_hello_built, extensions_reported)
{
	static const uint8_t exts[] = {
		/* ALPN: h2, http/1.1 */
		0, 16, 0, 14, 0, 12, 2, 'h', '2', 8, 'h', 't', 't', 'p', '/',
		'1', '.', '1',
		/* supported_versions: GREASE, 1.3, 1.2 */
		0, 43, 0, 7, 6, 0x3a, 0x3a, 3, 4, 3, 3,
		/* key_share: GREASE(1 byte), x25519(2 bytes), P-256(1 byte) */
		0, 51, 0, 18, 0, 16, 0x3a, 0x3a, 0, 1, 0, 0, 0x1d, 0, 2, 9, 9,
		0, 0x17, 0, 1, 7,
		/* signature_algorithms */
		0, 13, 0, 4, 0, 2, 4, 3,
		/* encrypted_client_hello, esni (contents not looked at) */
		0xfe, 0x0d, 0, 3, 1, 2, 3, 0xff, 0xce, 0, 0,
		/* pre_shared_key, last */
		0, 41, 0, 1, 0,
	};
	struct tls_client_hello h;
	struct tls_bytes b;
	size_t off;

	hello_with(&body_, "ech-outer.example", exts, sizeof(exts));
	cr_assert_eq(parse_built(&h, &off), (ssize_t)rec_.n);
	cr_assert_eq(h.n_ext, 8);
	cr_assert_eq(h.ext_types[0], TLS_EXT_SERVER_NAME);
	cr_assert_eq(h.ext_types[5], TLS_EXT_ECH);
	cr_assert_eq(h.ext_types[7], TLS_EXT_PRE_SHARED_KEY);
	cr_assert(h.has_alpn && h.n_alpn == 2);
	cr_assert(span_eq(h.alpn[1].p, h.alpn[1].len, "http/1.1"));
	cr_assert_eq(h.alpn_wire.len, 12);
	cr_assert_eq(h.n_versions, 3);
	cr_assert(tls_is_grease(h.versions[0]) && h.offers_tls13);
	cr_assert_eq(h.n_key_shares, 3);
	cr_assert_eq(h.key_share_groups[1], 0x001d);
	cr_assert_eq(h.key_share_groups[2], 0x0017);
	cr_assert(h.has_sig_algs && h.has_ech && h.has_esni);
	cr_assert(tls_hello_find_ext(&h, TLS_EXT_ECH, &b) && b.len == 3 &&
		  b.p[2] == 3);
	cr_assert_not(tls_hello_find_ext(&h, TLS_EXT_PADDING, &b));
	cr_assert_eq(tls_hello_cipher(&h, 1), 0x1302);
}

Test(tls_hello_built, lists_longer_than_kept)
{
	struct tls_client_hello h;
	uint8_t e[1024];
	size_t n = 0, off;

	/* 20 ALPN ids, 20 versions (1.3 last), 20 key shares. */
	e[n++] = 0, e[n++] = 16, e[n++] = 0, e[n++] = 42, e[n++] = 0,
	e[n++] = 40;
	for (int i = 0; i < 20; i++)
		e[n++] = 1, e[n++] = (uint8_t)('a' + i);
	e[n++] = 0, e[n++] = 43, e[n++] = 0, e[n++] = 41, e[n++] = 40;
	for (int i = 0; i < 19; i++)
		e[n++] = 3, e[n++] = 3;
	e[n++] = 3, e[n++] = 4;
	e[n++] = 0, e[n++] = 51, e[n++] = 0, e[n++] = 102, e[n++] = 0,
	e[n++] = 100;
	for (int i = 0; i < 20; i++)
		e[n++] = 0, e[n++] = (uint8_t)i, e[n++] = 0, e[n++] = 1,
		e[n++] = 0;
	hello_with(&body_, NULL, e, n);
	cr_assert_eq(parse_built(&h, &off), (ssize_t)rec_.n, "%s",
		     rc_errname((int)parse_built(&h, &off)));
	cr_assert(h.n_alpn == TLS_HELLO_MAX_ALPN && h.alpn_more);
	cr_assert_eq(h.alpn_wire.len, 40);
	cr_assert(h.n_versions == TLS_HELLO_MAX_VERSIONS && h.versions_more);
	cr_assert(h.offers_tls13);
	cr_assert(h.n_key_shares == TLS_HELLO_MAX_GROUPS && h.key_shares_more);
}

/* Built hellos that must be refused, with where. Offsets are in the body
 * (the records add 9); extensions start at body offset 45. */
Test(tls_hello_built, refused)
{
	static const struct {
		const char *what;
		uint8_t ext[24];
		size_t len;
		int code;
		size_t off;
	} cases[] = {
		{ "psk not last", { 0, 41, 0, 1, 0, 0, 23, 0, 0 }, 9,
		  RC_TLS_BAD_EXTENSION, 45 },
		{ "duplicate ems", { 0, 23, 0, 0, 0, 23, 0, 0 }, 8,
		  RC_TLS_DUP_EXTENSION, 49 },
		{ "ems with data", { 0, 23, 0, 1, 0 }, 5, RC_TLS_BAD_EXTENSION,
		  49 },
		{ "empty alpn id", { 0, 16, 0, 5, 0, 3, 0, 1, 'a' }, 9,
		  RC_TLS_BAD_LENGTH, 51 },
		{ "alpn list empty", { 0, 16, 0, 2, 0, 0 }, 6,
		  RC_TLS_BAD_LENGTH, 49 },
		{ "odd versions", { 0, 43, 0, 4, 3, 3, 4, 3 }, 8,
		  RC_TLS_BAD_LENGTH, 49 },
		{ "odd sigalgs", { 0, 13, 0, 5, 0, 3, 4, 3, 1 }, 9,
		  RC_TLS_BAD_LENGTH, 49 },
		{ "empty key", { 0, 51, 0, 6, 0, 4, 0, 0x1d, 0, 0 }, 10,
		  RC_TLS_BAD_LENGTH, 53 },
		{ "ext past end", { 0, 99, 0, 9, 1 }, 5, RC_TLS_BAD_LENGTH,
		  47 },
		{ "half header", { 0, 99, 0 }, 3, RC_TLS_BAD_LENGTH, 47 },
		{ "sni list short", { 0, 0, 0, 5, 0, 2, 0, 0, 0 }, 9,
		  RC_TLS_BAD_LENGTH, 49 },
	};
	struct tls_client_hello h;
	size_t off;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ssize_t r;

		hello_with(&body_, NULL, cases[i].ext, cases[i].len);
		r = parse_built(&h, &off);
		cr_assert_eq(r, cases[i].code, "%s: %s", cases[i].what,
			     rc_errname((int)r));
		cr_assert_eq(off, 9 + cases[i].off, "%s: err_off %zu",
			     cases[i].what, off);
	}
}

Test(tls_hello_built, head_fields)
{
	struct tls_client_hello h;
	size_t off;

	/* No extensions at all (SSL 3.0 / TLS 1.0 style). */
	body_.n = 0;
	put_head(&body_);
	cr_assert_eq(parse_built(&h, &off), (ssize_t)rec_.n);
	cr_assert(h.n_ext == 0 && h.sni_kind == TLS_SNI_NONE && !h.has_alpn);
	/* Not SSL 3 / TLS. */
	body_.b[0] = 2;
	cr_assert_eq(parse_built(&h, &off), RC_TLS_BAD_VERSION);
	cr_assert_eq(off, 9);
	/* A session id of 33 bytes. */
	put_head(&body_), body_.n = 0, put_head(&body_);
	body_.b[34] = 33;
	cr_assert_eq(parse_built(&h, &off), RC_TLS_BAD_LENGTH);
	cr_assert_eq(off, 9 + 34);
	/* No cipher suites; an odd number of bytes of them. */
	body_.n = 0, put_head(&body_);
	body_.b[36] = 0;
	cr_assert_eq(parse_built(&h, &off), RC_TLS_BAD_LENGTH);
	cr_assert_eq(off, 9 + 35);
	body_.b[36] = 3;
	cr_assert_eq(parse_built(&h, &off), RC_TLS_BAD_LENGTH);
	/* No compression methods. */
	body_.n = 0, put_head(&body_);
	body_.b[41] = 0;
	cr_assert_eq(parse_built(&h, &off), RC_TLS_BAD_LENGTH);
	cr_assert_eq(off, 9 + 41);
	/* A byte after the compression methods: half an extensions length. */
	body_.n = 0, put_head(&body_), put8(&body_, 0);
	cr_assert_eq(parse_built(&h, &off), RC_TLS_BAD_LENGTH);
	cr_assert_eq(off, 9 + 43);
}

Test(tls_hello_built, record_layer)
{
	struct tls_client_hello h;
	size_t off;

	hello_with(&body_, "x.example", NULL, 0);
	frame(&body_, 16384, &rec_);
	rec_.b[0] = 0x17;
	expect_err(&rec_, RC_TLS_NOT_TLS, 0);
	rec_.b[0] = 0x16, rec_.b[1] = 0x02;
	expect_err(&rec_, RC_TLS_BAD_RECORD, 1);
	rec_.b[1] = 0x03, rec_.b[2] = 0x05;
	expect_err(&rec_, RC_TLS_BAD_RECORD, 2);
	rec_.b[2] = 0x00; /* SSL 3.0 record version: fine */
	cr_assert_gt(parse(rec_.b, rec_.n, &h, &off), 0);
	cr_assert_eq(h.record_version, 0x0300);
	rec_.b[5] = 0x02;
	expect_err(&rec_, RC_TLS_NOT_CLIENT_HELLO, 5);
	/* Plaintext is not TLS, from the first byte. */
	expect_err_buf((const uint8_t *)"GET / HTTP/1.1\r\n", 16,
		       RC_TLS_NOT_TLS, 0);
	cr_assert_eq(parse((const uint8_t *)"", 0, &h, &off), 0);
}

Test(tls_hello_built, sslv2_hello)
{
	/* SSLv2-format ClientHello: 3 cipher specs, 16-byte challenge. */
	static const uint8_t v2[] = {
		0x80, 0x22, 0x01, 0x03, 0x01, 0x00, 0x09, 0x00, 0x00, 0x00,
		0x10, 0x00, 0x00, 0x2f, 0x00, 0x00, 0x35, 0x00, 0x00, 0x0a,
		1,    2,    3,    4,    5,    6,    7,    8,    9,    10,
		11,   12,   13,   14,   15,   16,
	};

	cr_assert_eq(tls_sniff(v2, sizeof(v2)), TLS_SNIFF_TLS_OLD);
	expect_err_buf(v2, sizeof(v2), RC_TLS_SSLV2, 0);
}

/* ---- Sniffing ---- */

/* Every prefix says NEED_MORE until |at| bytes, then |want|. */
static void sniff_case(const char *what, const void *p, size_t n, size_t at,
		       enum tls_sniff want)
{
	struct guard g;

	guard_init(&g, n);
	for (size_t i = 0; i <= n; i++) {
		uint8_t *b = guard_put(&g, p, i);
		enum tls_sniff s = tls_sniff(b, i);

		cr_assert_eq(s, i < at ? TLS_SNIFF_NEED_MORE : want,
			     "%s: %zu bytes: %s", what, i, tls_sniff_str(s));
	}
	guard_free(&g);
}

#define S(x) x, sizeof(x) - 1

Test(tls_sniff, plaintext)
{
	static const uint8_t socks5[] = { 0x05, 0x01, 0x00 };
	static const uint8_t socks4[] = { 0x04, 0x01, 0x00, 0x50, 1, 2, 3, 4,
					  0 };

	sniff_case("GET", S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 1,
		   TLS_SNIFF_PLAINTEXT);
	sniff_case("CONNECT", S("CONNECT a:443 HTTP/1.1\r\n\r\n"), 1,
		   TLS_SNIFF_PLAINTEXT);
	sniff_case("h2 preface", S("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 1,
		   TLS_SNIFF_PLAINTEXT);
	sniff_case("SSH", S("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"), 1,
		   TLS_SNIFF_PLAINTEXT);
	sniff_case("SOCKS5", socks5, sizeof(socks5), 1, TLS_SNIFF_PLAINTEXT);
	sniff_case("SOCKS4", socks4, sizeof(socks4), 1, TLS_SNIFF_PLAINTEXT);
	sniff_case("alert", S("\x15\x03\x01\x00\x02\x02\x28"), 1,
		   TLS_SNIFF_PLAINTEXT);
	/* TLS-like starts that cannot be a ClientHello. */
	sniff_case("version 2", S("\x16\x02\x01\x00\x10\x01"), 2,
		   TLS_SNIFF_PLAINTEXT);
	sniff_case("minor 5", S("\x16\x03\x05\x00\x10\x01"), 3,
		   TLS_SNIFF_PLAINTEXT);
	sniff_case("ServerHello", S("\x16\x03\x03\x00\x10\x02"), 6,
		   TLS_SNIFF_PLAINTEXT);
	sniff_case("0-length record", S("\x16\x03\x01\x00\x00\x16"), 6,
		   TLS_SNIFF_PLAINTEXT);
	sniff_case("high byte", S("\xff\xff\xff\xff\xff"), 3,
		   TLS_SNIFF_PLAINTEXT);
	sniff_case("v2 not hello", S("\x80\x22\x04\x03\x01"), 3,
		   TLS_SNIFF_PLAINTEXT);
	sniff_case("v2 bad version", S("\x80\x22\x01\x03\x04"), 5,
		   TLS_SNIFF_PLAINTEXT);
}

Test(tls_sniff, tls)
{
	/* Partial headers need more, to the 6th byte. */
	sniff_case("TLS 1.0 record", S("\x16\x03\x01\x02\x00\x01\x00\x01\xfc"),
		   6, TLS_SNIFF_TLS);
	sniff_case("SSL 3.0 record", S("\x16\x03\x00\x00\x30\x01"), 6,
		   TLS_SNIFF_TLS);
	sniff_case("TLS 1.2 record", S("\x16\x03\x03\x00\x30\x01"), 6,
		   TLS_SNIFF_TLS);
	sniff_case("SSLv2 hello", S("\x80\x22\x01\x03\x01\x00\x09"), 5,
		   TLS_SNIFF_TLS_OLD);
	sniff_case("SSLv2 hello v2", S("\x80\x22\x01\x00\x02\x00\x09"), 5,
		   TLS_SNIFF_TLS_OLD);
	for (size_t i = 0; i < N_CAPTURES; i++) {
		size_t len;
		uint8_t *buf = load(captures[i].name, &len);

		sniff_case(captures[i].name, buf, len, 6, TLS_SNIFF_TLS);
		free(buf);
	}
	cr_assert_str_eq(tls_sniff_str(TLS_SNIFF_COUNT), "?");
	cr_assert_str_eq(tls_sni_kind_str(TLS_SNI_IP), "ip");
}

Test(tls_misc, error_names)
{
	for (int c = RC_TLS_NOT_TLS; c >= RC_TLS_TOO_FRAGMENTED; c--) {
		cr_assert_str_neq(rc_errname(c), "UNKNOWN", "%d", c);
		cr_assert_eq(strncmp(rc_errname(c), "TLS_", 4), 0);
	}
}
