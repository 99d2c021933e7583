/* SPDX-License-Identifier: MIT */
/* libFuzzer target for proto/tls_hello: the sniffer and the ClientHello
 * parser on the raw input (whole and prefix by prefix), and the input's
 * message re-framed into records of other sizes, which must parse the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/tls_hello.h"

#define CHECK(x)                   \
	do {                       \
		if (!(x))          \
			abort();   \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t scratch[TLS_HELLO_MAX_MSG];

static bool in(const void *pv, size_t n, const uint8_t *base, size_t len)
{
	const uint8_t *p = pv;

	return p >= base && p <= base + len && n <= (size_t)(base + len - p);
}

/* Inside the consumed records, or inside the reassembled message. */
static bool inside(const struct tls_client_hello *h, const void *p, size_t n,
		   const uint8_t *buf, size_t used)
{
	if (h->reassembled)
		return in(p, n, scratch, h->msg_len);
	return in(p, n, buf, used);
}

static void check_hello(const struct tls_client_hello *h, const uint8_t *buf,
			size_t used)
{
	struct tls_bytes b;
	bool v13 = false;

	CHECK(h->n_records >= 1 && h->n_records <= TLS_HELLO_MAX_RECORDS);
	CHECK(h->reassembled == (h->n_records > 1));
	CHECK(h->msg_len <= TLS_HELLO_MAX_MSG);
	CHECK(used >= h->msg_len + 9);
	CHECK(inside(h, h->msg, h->msg_len, buf, used));
	CHECK(h->legacy_version >> 8 == 3);
	CHECK(inside(h, h->random, 32, buf, used));
	CHECK(h->session_id_len <= 32);
	CHECK(inside(h, h->session_id, h->session_id_len, buf, used));
	CHECK(h->n_ciphers >= 1);
	CHECK(inside(h, h->ciphers, 2 * h->n_ciphers, buf, used));
	CHECK(h->n_compression >= 1);
	CHECK(inside(h, h->compression, h->n_compression, buf, used));
	CHECK(h->exts.len == 0 || inside(h, h->exts.p, h->exts.len, buf, used));
	CHECK(h->n_ext * 4 <= h->exts.len);
	for (size_t i = 0; i < h->n_ext && i < TLS_HELLO_MAX_EXT; i++)
		CHECK(tls_hello_find_ext(h, h->ext_types[i], &b) &&
		      inside(h, b.p, b.len, buf, used));
	CHECK((unsigned)h->sni_kind < TLS_SNI_KIND_COUNT);
	CHECK((h->sni_kind == TLS_SNI_NONE) == (h->sni == NULL));
	if (h->sni) {
		CHECK(h->sni_len > 0 && h->sni_len <= 254);
		CHECK(inside(h, h->sni, h->sni_len, buf, used));
		CHECK(memchr(h->sni, 0, h->sni_len) == NULL);
	}
	CHECK(h->n_alpn <= TLS_HELLO_MAX_ALPN);
	CHECK(h->has_alpn || (h->n_alpn == 0 && h->alpn_wire.len == 0));
	CHECK(!h->alpn_more || h->n_alpn == TLS_HELLO_MAX_ALPN);
	for (size_t i = 0; i < h->n_alpn; i++)
		CHECK(h->alpn[i].len > 0 &&
		      in(h->alpn[i].p, h->alpn[i].len, h->alpn_wire.p,
			 h->alpn_wire.len));
	if (h->has_alpn)
		CHECK(inside(h, h->alpn_wire.p, h->alpn_wire.len, buf, used));
	CHECK(h->n_versions <= TLS_HELLO_MAX_VERSIONS);
	for (size_t i = 0; i < h->n_versions; i++)
		v13 = v13 || h->versions[i] == TLS_VERSION_1_3;
	CHECK(h->versions_more ? (!v13 || h->offers_tls13)
			       : v13 == h->offers_tls13);
	CHECK(h->n_key_shares <= TLS_HELLO_MAX_GROUPS);
	CHECK(h->has_ech == tls_hello_find_ext(h, TLS_EXT_ECH, &b));
	CHECK(h->has_sig_algs ==
	      tls_hello_find_ext(h, TLS_EXT_SIGNATURE_ALGORITHMS, &b));
	(void)tls_sni_kind_str(h->sni_kind);
	for (size_t i = 0; i < h->n_ciphers; i++)
		(void)tls_is_grease(tls_hello_cipher(h, i));
}

static bool same_bytes(const void *a, size_t an, const void *b, size_t bn)
{
	return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

/* The same ClientHello, however it was framed. */
static void check_same(const struct tls_client_hello *a,
		       const struct tls_client_hello *b)
{
	CHECK(a->legacy_version == b->legacy_version);
	CHECK(same_bytes(a->msg, a->msg_len, b->msg, b->msg_len));
	CHECK(a->n_ciphers == b->n_ciphers && a->n_ext == b->n_ext);
	CHECK(!memcmp(a->ext_types, b->ext_types, sizeof(a->ext_types)));
	CHECK(a->sni_kind == b->sni_kind);
	CHECK(same_bytes(a->sni, a->sni_len, b->sni, b->sni_len));
	CHECK(a->n_alpn == b->n_alpn && a->alpn_more == b->alpn_more);
	for (size_t i = 0; i < a->n_alpn; i++)
		CHECK(same_bytes(a->alpn[i].p, a->alpn[i].len, b->alpn[i].p,
				 b->alpn[i].len));
	CHECK(a->n_versions == b->n_versions && a->offers_tls13 == b->offers_tls13);
	CHECK(!memcmp(a->versions, b->versions, sizeof(a->versions)));
	CHECK(a->n_key_shares == b->n_key_shares);
	CHECK(!memcmp(a->key_share_groups, b->key_share_groups,
		      sizeof(a->key_share_groups)));
	CHECK(a->has_sig_algs == b->has_sig_algs && a->has_ech == b->has_ech &&
	      a->has_esni == b->has_esni);
}

/* The prefix buf[0..i) answers "need more" or what the whole answers (r,
 * off, s); so does the sniffer. */
static void check_prefix(const uint8_t *buf, size_t i, ssize_t r, size_t off,
			 enum tls_sniff s)
{
	struct tls_client_hello h;
	enum tls_sniff si = tls_sniff(buf, i);
	size_t off2 = (size_t)-1;
	ssize_t r2 = tls_parse_client_hello(buf, i, scratch, sizeof(scratch),
					    &h, &off2);

	CHECK(si == TLS_SNIFF_NEED_MORE || si == s);
	if (r > 0)
		CHECK(r2 == ((ssize_t)i < r ? 0 : r));
	else
		CHECK(r2 == 0 || (r2 == r && off2 == off));
}

/* Parse |buf| whole and in prefixes; returns the whole result. */
static ssize_t fuzz_parse(const uint8_t *buf, size_t len,
			  struct tls_client_hello *h)
{
	struct tls_client_hello h2;
	size_t off = (size_t)-1, off2;
	ssize_t r = tls_parse_client_hello(buf, len, scratch, sizeof(scratch),
					   h, &off);
	ssize_t r2;
	enum tls_sniff s = tls_sniff(buf, len);

	CHECK(r <= (ssize_t)len);
	if (r < 0) {
		CHECK(off < len);
		CHECK(r <= RC_TLS_NOT_TLS && r >= RC_TLS_TOO_FRAGMENTED);
		CHECK(r != RC_TLS_NEED_SCRATCH);
	} else if (r > 0) {
		check_hello(h, buf, (size_t)r);
		CHECK(s == TLS_SNIFF_TLS);
		/* Without scratch: the same, or asks for it when fragmented. */
		r2 = tls_parse_client_hello(buf, len, NULL, 0, &h2, &off2);
		CHECK(h->reassembled ? r2 == RC_TLS_NEED_SCRATCH : r2 == r);
		if (r2 == RC_TLS_NEED_SCRATCH)
			CHECK(h2.msg_len == h->msg_len);
	}
	/* Each prefix is a full parse again: a sparse set (every one of the
	 * first 8, then growing steps), plus the last one before the end of
	 * the hello and of the input. The unit tests do every prefix. */
	for (size_t i = 0; i < len; i += 1 + i / 8)
		check_prefix(buf, i, r, off, s);
	if (r > 0)
		check_prefix(buf, (size_t)r - 1, r, off, s);
	if (len > 0)
		check_prefix(buf, len - 1, r, off, s);
	return r;
}

/* Frame |body| as a ClientHello in records of |frag| payload bytes. */
static uint8_t *frame(const uint8_t *body, size_t blen, size_t frag,
		      size_t *out_len)
{
	const uint8_t hs[4] = { 0x01, (uint8_t)(blen >> 16),
				(uint8_t)(blen >> 8), (uint8_t)blen };
	size_t msg = blen + 4, nrec = (msg + frag - 1) / frag;
	uint8_t *out = malloc(msg + 5 * nrec), *p = out;

	if (!out)
		abort();
	for (size_t done = 0; done < msg;) {
		size_t n = msg - done < frag ? msg - done : frag;

		*p++ = 0x16, *p++ = 0x03, *p++ = 0x01;
		*p++ = (uint8_t)(n >> 8), *p++ = (uint8_t)n;
		for (size_t i = 0; i < n; i++, done++)
			*p++ = done < 4 ? hs[done] : body[done - 4];
	}
	*out_len = (size_t)(p - out);
	return out;
}

/* Re-frame a message body and check both framings agree. */
static void fuzz_framings(const uint8_t *body, size_t blen, size_t frag)
{
	struct tls_client_hello one, many;
	size_t n1, n2, off2 = 0;
	uint8_t *b1, *b2;
	ssize_t r1, r2;
	static uint8_t scratch2[TLS_HELLO_MAX_MSG];

	if (blen + 4 > 16384)
		return;
	b1 = frame(body, blen, 16384, &n1);
	b2 = frame(body, blen, frag, &n2);
	r1 = fuzz_parse(b1, n1, &one);
	/* Keep |one|'s pointers: parse |many| into another scratch. */
	r2 = tls_parse_client_hello(b2, n2, scratch2, sizeof(scratch2), &many,
				    &off2);
	CHECK(r1 == (ssize_t)n1 || r1 < 0);
	if (r1 > 0) {
		CHECK(r2 == (ssize_t)n2);
		check_same(&one, &many);
	} else if (r2 != RC_TLS_TOO_FRAGMENTED) {
		CHECK(r2 == r1);
	}
	free(b1);
	free(b2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tls_client_hello h;
	uint8_t *copy;

	/* An exact-size copy so ASan sees any read past the end. */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	(void)fuzz_parse(copy, size, &h);
	/* The part after a record and handshake header, as a message body in
	 * fresh framing: lets insertions and deletions reach the body parser. */
	if (size >= 9 && size <= 4096) {
		size_t frag = 1 + data[4] % 64;

		fuzz_framings(copy + 9, size - 9, frag);
	}
	free(copy);
	return 0;
}
