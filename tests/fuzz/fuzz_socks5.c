/* SPDX-License-Identifier: MIT */
/* libFuzzer target for proto/socks5: the input is a client's byte stream.
 * Each parser runs on it whole and on shorter prefixes (which must say
 * "need more" or fail the same way), a whole handshake runs pipelined, and
 * every parsed message must re-encode to exactly the bytes it came from. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/socks5.h"

#define CHECK(x)                   \
	do {                       \
		if (!(x))          \
			abort();   \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum which { GREETING, AUTH, REQUEST, WHICH_COUNT };

union out {
	struct socks5_greeting g;
	struct socks5_auth a;
	struct socks5_request r;
};

static ssize_t run(enum which w, const uint8_t *p, size_t n, union out *o,
		   size_t *eo)
{
	switch (w) {
	case GREETING:
		return socks5_parse_greeting(p, n, &o->g, eo);
	case AUTH:
		return socks5_parse_auth(p, n, &o->a, eo);
	default:
		return socks5_parse_request(p, n, &o->r, eo);
	}
}

static bool in(const void *pv, size_t n, const uint8_t *base, size_t len)
{
	const uint8_t *p = pv;

	return p >= base && p <= base + len && n <= (size_t)(base + len - p);
}

/* Re-encode a parsed message; returns its length. */
static size_t encode(enum which w, const union out *o, uint8_t *out)
{
	size_t n = 0;

	switch (w) {
	case GREETING:
		out[n++] = 5;
		out[n++] = (uint8_t)o->g.n_methods;
		memcpy(out + n, o->g.methods, o->g.n_methods);
		return n + o->g.n_methods;
	case AUTH:
		out[n++] = 1;
		out[n++] = (uint8_t)o->a.user_len;
		memcpy(out + n, o->a.user, o->a.user_len);
		n += o->a.user_len;
		out[n++] = (uint8_t)o->a.pass_len;
		memcpy(out + n, o->a.pass, o->a.pass_len);
		return n + o->a.pass_len;
	default:
		out[n++] = 5;
		out[n++] = o->r.cmd;
		out[n++] = 0;
		out[n++] = o->r.atyp;
		if (o->r.atyp == SOCKS5_ATYP_DOMAIN) {
			out[n++] = (uint8_t)o->r.host_len;
			memcpy(out + n, o->r.host, o->r.host_len);
			n += o->r.host_len;
		} else {
			size_t al = o->r.atyp == SOCKS5_ATYP_IPV4 ? 4 : 16;

			memcpy(out + n, o->r.addr, al);
			n += al;
		}
		out[n++] = (uint8_t)(o->r.port >> 8);
		out[n++] = (uint8_t)o->r.port;
		return n;
	}
}

static void check_request(const struct socks5_request *r, const uint8_t *buf,
			  size_t used)
{
	struct sockaddr_storage ss;
	char host[SOCKS5_HOST_STR_MAX];
	uint8_t rep[22];
	int hl, sl;
	size_t rl;

	CHECK(r->cmd >= 1 && r->cmd <= 3);
	CHECK(r->atyp == SOCKS5_ATYP_IPV4 || r->atyp == SOCKS5_ATYP_IPV6 ||
	      r->atyp == SOCKS5_ATYP_DOMAIN);
	hl = socks5_request_host_str(r, host, sizeof(host));
	CHECK(hl > 0 && (size_t)hl < sizeof(host) && strlen(host) == (size_t)hl);
	sl = socks5_request_sockaddr(r, &ss);
	if (r->atyp == SOCKS5_ATYP_DOMAIN) {
		CHECK(sl == -EINVAL);
		CHECK(r->host_len >= 1 && r->host_len <= 255);
		CHECK(in(r->host, r->host_len, buf, used));
		CHECK(memchr(r->host, 0, r->host_len) == NULL);
		return;
	}
	CHECK(sl > 0);
	/* the destination, written back as a bound address */
	rl = socks5_write_reply(rep, 0, (struct sockaddr *)&ss);
	CHECK(rl == (r->atyp == SOCKS5_ATYP_IPV4 ? 10u : 22u) ||
	      (rl == 10 && r->atyp == SOCKS5_ATYP_IPV6 &&
	       memcmp(r->addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0));
	CHECK(memcmp(rep + rl - 2, buf + used - 2, 2) == 0);
	if (rl == 10 && r->atyp == SOCKS5_ATYP_IPV6)
		CHECK(memcmp(rep + 4, r->addr + 12, 4) == 0);
	else
		CHECK(memcmp(rep + 4, r->addr, rl - 6) == 0);
}

static void fuzz_one(enum which w, const uint8_t *buf, size_t len)
{
	union out o, o2;
	uint8_t enc[600];
	size_t eo = 0, eo2, i, step;
	ssize_t rc, rc2;

	rc = run(w, buf, len, &o, &eo);
	CHECK(rc <= (ssize_t)len);
	if (rc < 0)
		CHECK(eo < len && rc_errname((int)rc)[0] != 'U');
	/* prefixes: 0, or the same error once its byte is in */
	step = len > 64 ? len / 32 : 1;
	for (i = 0; i < len; i += step) {
		eo2 = 0;
		rc2 = run(w, buf, i, &o2, &eo2);
		if (rc > 0 && i < (size_t)rc) {
			CHECK(rc2 == 0);
		} else if (rc < 0 && rc2 != 0) {
			CHECK(rc2 == rc && eo2 == eo);
		} else if (rc <= 0) {
			CHECK(rc2 == 0);
		}
	}
	if (rc <= 0)
		return;
	CHECK(encode(w, &o, enc) == (size_t)rc);
	CHECK(memcmp(enc, buf, (size_t)rc) == 0);
	switch (w) {
	case GREETING:
		CHECK(in(o.g.methods, o.g.n_methods, buf, (size_t)rc));
		rc2 = socks5_choose_method(&o.g, buf[len - 1] & 1);
		CHECK(rc2 == 0 || rc2 == 2 || rc2 == 0xff);
		break;
	case AUTH:
		CHECK(in(o.a.user, o.a.user_len, buf, (size_t)rc));
		CHECK(in(o.a.pass, o.a.pass_len, buf, (size_t)rc));
		CHECK(!socks5_auth_check(&o.a, "ringcap-user", "x") ||
		      (o.a.user_len == 12 && o.a.pass_len == 1));
		break;
	default:
		check_request(&o.r, buf, (size_t)rc);
		break;
	}
}

/* A whole pipelined handshake: greeting, auth if chosen, request. */
static void fuzz_session(const uint8_t *buf, size_t len, bool need_auth)
{
	struct socks5_greeting g;
	struct socks5_auth a;
	struct socks5_request r;
	size_t off = 0;
	ssize_t n;

	n = socks5_parse_greeting(buf, len, &g, NULL);
	if (n <= 0)
		return;
	off += (size_t)n;
	if (socks5_choose_method(&g, need_auth) == SOCKS5_METHOD_USERPASS) {
		n = socks5_parse_auth(buf + off, len - off, &a, NULL);
		if (n <= 0)
			return;
		(void)socks5_auth_check(&a, "u", "p");
		off += (size_t)n;
	}
	n = socks5_parse_request(buf + off, len - off, &r, NULL);
	if (n > 0)
		check_request(&r, buf + off, (size_t)n);
	CHECK(n <= 0 || off + (size_t)n <= len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	if (size > 4096)
		return 0;
	/* An exact-size copy so ASan sees any read past the end. */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	for (int w = 0; w < WHICH_COUNT; w++)
		fuzz_one((enum which)w, copy, size);
	fuzz_session(copy, size, false);
	fuzz_session(copy, size, true);
	(void)socks5_reply_str(size ? copy[0] : 0);
	(void)socks5_reply_for_error(size >= 4 ? -(int)(copy[3] % 140) : 0);
	free(copy);
	return 0;
}
