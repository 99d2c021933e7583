/* SPDX-License-Identifier: MIT */
/* proto/socks5 tests: every client message is parsed whole and then as
 * every shorter prefix, each copy ending right before a PROT_NONE page, so
 * an over-read crashes; errors are checked with their offsets; the writers
 * byte for byte. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/socks5.h"
#include "tests/proto/harness.h"

/* ---- Running one parser all ways ---- */

enum which { GREETING, AUTH, REQUEST };

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

/* Parse raw[0..len) whole: expect |want| (> 0: consumed; < 0: error at
 * |want_off|). Every prefix must give 0, or (for errors) the same error at
 * the same offset once the offending byte is in. Returns the parse of the
 * whole input (pointing into |g|, valid until guard_free). */
static union out parse_all_ways(struct guard *g, enum which w,
				const void *raw, size_t len, ssize_t want,
				size_t want_off)
{
	union out o;
	size_t i, eo;
	ssize_t rc;

	for (i = 0; i <= len; i++) {
		uint8_t *p = guard_put(g, raw, i);

		memset(&o, 0xa5, sizeof(o));
		eo = 12345;
		rc = run(w, p, i, &o, &eo);
		if (i == len) {
			cr_assert_eq(rc, want, "whole: got %zd want %zd", rc,
				     want);
			if (want < 0)
				cr_assert_eq(eo, want_off,
					     "error offset %zu, want %zu", eo,
					     want_off);
			break;
		}
		if (want < 0 && rc < 0) {
			cr_assert_eq(rc, want, "prefix %zu: %zd", i, rc);
			cr_assert_eq(eo, want_off);
			cr_assert(i > want_off, "prefix %zu errs too early", i);
		} else {
			cr_assert_eq(rc, 0, "prefix %zu of %zu gave %zd", i,
				     len, rc);
		}
	}
	return o;
}

#define RAW(s) (s), (sizeof(s) - 1)

/* ---- Greeting ---- */

Test(socks5, greetings)
{
	struct guard g;
	union out o;

	guard_init(&g, 300);
	/* curl 7.88 --socks5-hostname, without and with -U (it offers
	 * GSSAPI too), recorded on loopback */
	o = parse_all_ways(&g, GREETING, RAW("\x05\x02\x00\x01"), 4, 0);
	cr_assert_eq(o.g.n_methods, 2);
	cr_assert_eq(o.g.methods[0], 0);
	cr_assert_eq(socks5_choose_method(&o.g, false), SOCKS5_METHOD_NO_AUTH);
	cr_assert_eq(socks5_choose_method(&o.g, true),
		     SOCKS5_METHOD_NO_ACCEPTABLE);

	o = parse_all_ways(&g, GREETING, RAW("\x05\x03\x00\x01\x02"), 5, 0);
	cr_assert_eq(o.g.n_methods, 3);
	cr_assert_eq(socks5_choose_method(&o.g, false), SOCKS5_METHOD_NO_AUTH);
	cr_assert_eq(socks5_choose_method(&o.g, true), SOCKS5_METHOD_USERPASS);

	o = parse_all_ways(&g, GREETING, RAW("\x05\x01\x00"), 3, 0);
	cr_assert_eq(socks5_choose_method(&o.g, false), SOCKS5_METHOD_NO_AUTH);

	o = parse_all_ways(&g, GREETING, RAW("\x05\x01\x02"), 3, 0);
	cr_assert_eq(socks5_choose_method(&o.g, false),
		     SOCKS5_METHOD_USERPASS);

	o = parse_all_ways(&g, GREETING, RAW("\x05\x02\x01\x80"), 4, 0);
	cr_assert_eq(socks5_choose_method(&o.g, false),
		     SOCKS5_METHOD_NO_ACCEPTABLE);

	/* all 255 methods */
	{
		uint8_t big[257];

		big[0] = 5;
		big[1] = 255;
		for (int i = 0; i < 255; i++)
			big[2 + i] = (uint8_t)(254 - i);
		o = parse_all_ways(&g, GREETING, big, sizeof(big), 257, 0);
		cr_assert_eq(o.g.n_methods, 255);
		cr_assert_eq(socks5_choose_method(&o.g, true), 2);
	}
	guard_free(&g);
}

Test(socks5, greeting_errors)
{
	struct guard g;

	guard_init(&g, 64);
	parse_all_ways(&g, GREETING, RAW("\x04\x01\x00\x50\x7f\x00\x00\x01"),
		       RC_SOCKS5_BAD_VERSION, 0);
	parse_all_ways(&g, GREETING, RAW("GET / HTTP/1.1\r\n"),
		       RC_SOCKS5_BAD_VERSION, 0);
	parse_all_ways(&g, GREETING, RAW("\x16\x03\x01"),
		       RC_SOCKS5_BAD_VERSION, 0);
	parse_all_ways(&g, GREETING, RAW("\x05\x00"), RC_SOCKS5_NO_METHODS, 1);
	guard_free(&g);
}

Test(socks5, greeting_pipelined)
{
	static const uint8_t in[] = "\x05\x01\x00\x05\x01\x00\x01\x7f\x00\x00"
				    "\x01\x00\x50GET";
	struct socks5_greeting gr;
	struct socks5_request r;
	ssize_t n, m;

	n = socks5_parse_greeting(in, sizeof(in) - 1, &gr, NULL);
	cr_assert_eq(n, 3);
	m = socks5_parse_request(in + n, sizeof(in) - 1 - (size_t)n, &r, NULL);
	cr_assert_eq(m, 10);
	cr_assert_eq(memcmp(in + n + m, "GET", 3), 0);
	cr_assert_eq(r.port, 80);
}

Test(socks5, method_writer)
{
	uint8_t out[2];

	cr_assert_eq(socks5_write_method(out, SOCKS5_METHOD_NO_ACCEPTABLE), 2);
	cr_assert_eq(out[0], 5);
	cr_assert_eq(out[1], 0xff);
	cr_assert_str_eq(socks5_method_str(0), "no-auth");
	cr_assert_str_eq(socks5_method_str(2), "username/password");
	cr_assert_str_eq(socks5_method_str(0x7f), "other");
}

/* ---- Username/password ---- */

Test(socks5, auth)
{
	struct guard g;
	union out o;

	guard_init(&g, 600);
	o = parse_all_ways(&g, AUTH, RAW("\x01\x04user\x06s3cr3t"), 13, 0);
	cr_assert_eq(o.a.user_len, 4);
	cr_assert_eq(memcmp(o.a.user, "user", 4), 0);
	cr_assert_eq(o.a.pass_len, 6);
	cr_assert_eq(memcmp(o.a.pass, "s3cr3t", 6), 0);
	cr_assert(socks5_auth_check(&o.a, "user", "s3cr3t"));
	cr_assert_not(socks5_auth_check(&o.a, "user", "s3cr3T"));
	cr_assert_not(socks5_auth_check(&o.a, "usex", "s3cr3t"));
	cr_assert_not(socks5_auth_check(&o.a, "user", "s3cr3"));
	cr_assert_not(socks5_auth_check(&o.a, "user", "s3cr3tt"));
	cr_assert_not(socks5_auth_check(&o.a, "use", "s3cr3t"));
	cr_assert_not(socks5_auth_check(&o.a, "", ""));

	/* empty user and password (RFC 1929 says 1..255; accepted) */
	o = parse_all_ways(&g, AUTH, RAW("\x01\x00\x00"), 3, 0);
	cr_assert_eq(o.a.user_len, 0);
	cr_assert_eq(o.a.pass_len, 0);
	cr_assert(socks5_auth_check(&o.a, "", ""));
	cr_assert_not(socks5_auth_check(&o.a, "a", ""));
	o = parse_all_ways(&g, AUTH, RAW("\x01\x01u\x00"), 4, 0);
	cr_assert(socks5_auth_check(&o.a, "u", ""));

	/* maximal: 255 + 255 */
	{
		uint8_t big[513];

		memset(big, 'x', sizeof(big));
		big[0] = 1;
		big[1] = 255;
		big[257] = 255;
		o = parse_all_ways(&g, AUTH, big, sizeof(big), 513, 0);
		cr_assert_eq(o.a.user_len, 255);
		cr_assert_eq(o.a.pass_len, 255);
	}

	parse_all_ways(&g, AUTH, RAW("\x05\x04user\x04pass"),
		       RC_SOCKS5_BAD_AUTH_VERSION, 0);
	parse_all_ways(&g, AUTH, RAW("\x00\x04user\x04pass"),
		       RC_SOCKS5_BAD_AUTH_VERSION, 0);
	guard_free(&g);
}

Test(socks5, auth_reply)
{
	uint8_t out[2];

	cr_assert_eq(socks5_write_auth_reply(out, true), 2);
	cr_assert_eq(out[0], 1);
	cr_assert_eq(out[1], 0);
	socks5_write_auth_reply(out, false);
	cr_assert_eq(out[1], 1);
}

/* ---- Requests ---- */

Test(socks5, request_ipv4)
{
	struct guard g;
	union out o;
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	char host[SOCKS5_HOST_STR_MAX];

	guard_init(&g, 300);
	o = parse_all_ways(&g, REQUEST,
			   RAW("\x05\x01\x00\x01\xc0\x00\x02\x01\x01\xbb"), 10,
			   0);
	cr_assert_eq(o.r.cmd, SOCKS5_CMD_CONNECT);
	cr_assert_eq(o.r.atyp, SOCKS5_ATYP_IPV4);
	cr_assert_eq(o.r.port, 443);
	cr_assert_eq(socks5_request_sockaddr(&o.r, &ss),
		     (int)sizeof(struct sockaddr_in));
	cr_assert_eq(sin->sin_family, AF_INET);
	cr_assert_eq(ntohs(sin->sin_port), 443);
	cr_assert_eq(ntohl(sin->sin_addr.s_addr), 0xc0000201);
	cr_assert_eq(socks5_request_host_str(&o.r, host, sizeof(host)), 9);
	cr_assert_str_eq(host, "192.0.2.1");
	cr_assert_eq(socks5_request_host_str(&o.r, host, 9), -ENOSPC);
	cr_assert_str_eq(socks5_cmd_str(o.r.cmd), "CONNECT");
	cr_assert_str_eq(socks5_atyp_str(o.r.atyp), "ipv4");
	guard_free(&g);
}

Test(socks5, request_ipv6)
{
	static const uint8_t raw[] = { 5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8,
				       0,   0,  0, 0, 0,    0,    0,    0,
				       0,   0,  0, 1, 0x1f, 0x90 };
	struct guard g;
	union out o;
	struct sockaddr_storage ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	char host[SOCKS5_HOST_STR_MAX];

	guard_init(&g, 300);
	o = parse_all_ways(&g, REQUEST, raw, sizeof(raw), 22, 0);
	cr_assert_eq(o.r.atyp, SOCKS5_ATYP_IPV6);
	cr_assert_eq(o.r.port, 8080);
	cr_assert_eq(socks5_request_sockaddr(&o.r, &ss),
		     (int)sizeof(struct sockaddr_in6));
	cr_assert_eq(sin6->sin6_family, AF_INET6);
	cr_assert_eq(memcmp(&sin6->sin6_addr, raw + 4, 16), 0);
	socks5_request_host_str(&o.r, host, sizeof(host));
	cr_assert_str_eq(host, "2001:db8::1");
	guard_free(&g);
}

Test(socks5, request_domain)
{
	struct guard g;
	union out o;
	struct sockaddr_storage ss;
	char host[SOCKS5_HOST_STR_MAX];

	guard_init(&g, 300);
	/* what curl --socks5-hostname sends */
	o = parse_all_ways(&g, REQUEST,
			   RAW("\x05\x01\x00\x03\x0b"
			       "example.com\x00\x50"),
			   18, 0);
	cr_assert_eq(o.r.atyp, SOCKS5_ATYP_DOMAIN);
	cr_assert_eq(o.r.host_len, 11);
	cr_assert_eq(memcmp(o.r.host, "example.com", 11), 0);
	cr_assert_eq(o.r.port, 80);
	cr_assert_eq(socks5_request_sockaddr(&o.r, &ss), -EINVAL);
	cr_assert_eq(socks5_request_host_str(&o.r, host, sizeof(host)), 11);
	cr_assert_str_eq(host, "example.com");

	o = parse_all_ways(&g, REQUEST,
			   RAW("\x05\x01\x00\x03\x0e"
			       "_srv.Ex-ample.\x00\x16"),
			   21, 0);
	cr_assert_eq(o.r.host_len, 14);
	cr_assert_eq(o.r.port, 22);
	o = parse_all_ways(&g, REQUEST, RAW("\x05\x01\x00\x03\x01x\x00\x01"),
			   8, 0);
	o = parse_all_ways(&g, REQUEST,
			   RAW("\x05\x01\x00\x03\x07"
			       "1.2.3.4\x00\x01"),
			   14, 0);
	/* an IPv6 literal sent as a name */
	o = parse_all_ways(&g, REQUEST,
			   RAW("\x05\x01\x00\x03\x03::1\x00\x01"), 10, 0);
	cr_assert_eq(o.r.host_len, 3);

	/* the longest name: 253 bytes and a final dot */
	{
		uint8_t big[4 + 1 + 254 + 2];
		size_t i;

		memcpy(big, "\x05\x01\x00\x03", 4);
		big[4] = 254;
		for (i = 0; i < 254; i++)
			big[5 + i] = (i % 50 == 49) ? '.' : 'a';
		big[5 + 253] = '.';
		big[259] = 1;
		big[260] = 2;
		o = parse_all_ways(&g, REQUEST, big, sizeof(big),
				   (ssize_t)sizeof(big), 0);
		cr_assert_eq(o.r.host_len, 254);
		cr_assert_eq(o.r.port, 258);
		big[4 + 1 + 253] = 'a'; /* 254 bytes without a dot: too long */
		parse_all_ways(&g, REQUEST, big, sizeof(big),
			       RC_SOCKS5_BAD_DOMAIN, 5 + 253);
	}
	guard_free(&g);
}

Test(socks5, request_other_commands)
{
	struct guard g;
	union out o;

	guard_init(&g, 64);
	o = parse_all_ways(&g, REQUEST,
			   RAW("\x05\x02\x00\x01\x00\x00\x00\x00\x00\x00"), 10,
			   0);
	cr_assert_eq(o.r.cmd, SOCKS5_CMD_BIND);
	cr_assert_eq(o.r.port, 0);
	cr_assert_str_eq(socks5_cmd_str(o.r.cmd), "BIND");
	o = parse_all_ways(&g, REQUEST,
			   RAW("\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00"), 10,
			   0);
	cr_assert_eq(o.r.cmd, SOCKS5_CMD_UDP_ASSOCIATE);
	cr_assert_str_eq(socks5_cmd_str(o.r.cmd), "UDP ASSOCIATE");
	cr_assert_eq(socks5_reply_for_error(RC_SOCKS5_CMD_NOT_SUPPORTED),
		     SOCKS5_REP_CMD_NOT_SUPPORTED);
	guard_free(&g);
}

struct req_err {
	const char *raw;
	size_t len;
	int rc;
	size_t off;
};

#define E(s, rc, off) { s, sizeof(s) - 1, rc, off }

Test(socks5, request_errors)
{
	static const struct req_err cases[] = {
		E("\x04\x01\x00\x50\x7f\x00\x00\x01", RC_SOCKS5_BAD_VERSION, 0),
		E("\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x50",
		  RC_SOCKS5_BAD_COMMAND, 1),
		E("\x05\x04\x00\x01\x7f\x00\x00\x01\x00\x50",
		  RC_SOCKS5_BAD_COMMAND, 1),
		E("\x05\x01\x01\x01\x7f\x00\x00\x01\x00\x50",
		  RC_SOCKS5_BAD_RESERVED, 2),
		E("\x05\x01\x00\x02\x7f\x00\x00\x01\x00\x50",
		  RC_SOCKS5_BAD_ATYP, 3),
		E("\x05\x01\x00\x05\x7f\x00\x00\x01\x00\x50",
		  RC_SOCKS5_BAD_ATYP, 3),
		E("\x05\x01\x00\x03\x00\x00\x50", RC_SOCKS5_BAD_DOMAIN, 4),
		E("\x05\x01\x00\x03\x0c"
		  "exa mple.com\x00\x50",
		  RC_SOCKS5_BAD_DOMAIN, 8),
		E("\x05\x01\x00\x03\x04.com\x00\x50", RC_SOCKS5_BAD_DOMAIN, 5),
		E("\x05\x01\x00\x03\x04"
		  "a..b\x00\x50",
		  RC_SOCKS5_BAD_DOMAIN, 7),
		E("\x05\x01\x00\x03\x01.\x00\x50", RC_SOCKS5_BAD_DOMAIN, 5),
		E("\x05\x01\x00\x03\x05\x61\x00\x62\x63\x64\x00\x50",
		  RC_SOCKS5_BAD_DOMAIN, 6),
		E("\x05\x01\x00\x03\x04::zz\x00\x50", RC_SOCKS5_BAD_DOMAIN, 5),
		E("\x05\x01\x00\x03\x05[::1]\x00\x50", RC_SOCKS5_BAD_DOMAIN, 5),
		/* found by fuzz_socks5: a NUL inside an IPv6 literal */
		E("\x05\x01\x00\x03\x03::\x00\x00\x50", RC_SOCKS5_BAD_DOMAIN, 5),
		E("\x05\x01\x00\x03\x0a"
		  "host:80.io\x00\x50",
		  RC_SOCKS5_BAD_DOMAIN, 5),
	};
	struct guard g;
	size_t i;

	guard_init(&g, 300);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		parse_all_ways(&g, REQUEST, cases[i].raw, cases[i].len,
			       cases[i].rc, cases[i].off);
	/* a label of 64 bytes */
	{
		uint8_t big[5 + 64 + 2];

		memcpy(big, "\x05\x01\x00\x03", 4);
		big[4] = 64;
		memset(big + 5, 'a', 64);
		big[69] = 0;
		big[70] = 80;
		parse_all_ways(&g, REQUEST, big, sizeof(big),
			       RC_SOCKS5_BAD_DOMAIN, 5 + 63);
		big[5 + 63] = '.'; /* 63 + "." : fine */
		parse_all_ways(&g, REQUEST, big, sizeof(big), 71, 0);
	}
	guard_free(&g);
}

/* ---- Replies ---- */

Test(socks5, reply_writer)
{
	uint8_t out[22];
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(40000) };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6,
				     .sin6_port = htons(443) };

	cr_assert_eq(socks5_write_reply(out, SOCKS5_REP_CONN_REFUSED, NULL),
		     10);
	cr_assert_eq(memcmp(out, "\x05\x05\x00\x01\0\0\0\0\0\0", 10), 0);

	inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr);
	cr_assert_eq(socks5_write_reply(out, 0, (struct sockaddr *)&sin), 10);
	cr_assert_eq(memcmp(out, "\x05\x00\x00\x01\x0a\x01\x02\x03\x9c\x40",
			    10), 0);

	inet_pton(AF_INET6, "2001:db8::2", &sin6.sin6_addr);
	cr_assert_eq(socks5_write_reply(out, 0, (struct sockaddr *)&sin6), 22);
	cr_assert_eq(memcmp(out, "\x05\x00\x00\x04\x20\x01\x0d\xb8", 8), 0);
	cr_assert_eq(out[19], 2);
	cr_assert_eq(out[20], 0x01);
	cr_assert_eq(out[21], 0xbb);

	inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6.sin6_addr);
	cr_assert_eq(socks5_write_reply(out, 0, (struct sockaddr *)&sin6), 10);
	cr_assert_eq(memcmp(out, "\x05\x00\x00\x01\x7f\x00\x00\x01\x01\xbb",
			    10), 0);

	sin.sin_family = AF_UNIX;
	cr_assert_eq(socks5_write_reply(out, 1, (struct sockaddr *)&sin), 10);
	cr_assert_eq(memcmp(out, "\x05\x01\x00\x01\0\0\0\0\0\0", 10), 0);
}

Test(socks5, reply_codes)
{
	static const char *const want[] = {
		"succeeded",
		"general failure",
		"connection not allowed by ruleset",
		"network unreachable",
		"host unreachable",
		"connection refused",
		"TTL expired",
		"command not supported",
		"address type not supported",
	};
	for (unsigned i = 0; i < SOCKS5_REP_COUNT; i++)
		cr_assert_str_eq(socks5_reply_str((uint8_t)i), want[i]);
	cr_assert_str_eq(socks5_reply_str(9), "unassigned");
	cr_assert_str_eq(socks5_reply_str(255), "unassigned");

	cr_assert_eq(socks5_reply_for_error(0), SOCKS5_REP_SUCCEEDED);
	cr_assert_eq(socks5_reply_for_error(-ECONNREFUSED),
		     SOCKS5_REP_CONN_REFUSED);
	cr_assert_eq(socks5_reply_for_error(-ENETUNREACH),
		     SOCKS5_REP_NET_UNREACHABLE);
	cr_assert_eq(socks5_reply_for_error(-EHOSTUNREACH),
		     SOCKS5_REP_HOST_UNREACHABLE);
	cr_assert_eq(socks5_reply_for_error(RC_ENG_RESOLVE_FAILED),
		     SOCKS5_REP_HOST_UNREACHABLE);
	cr_assert_eq(socks5_reply_for_error(-ETIMEDOUT),
		     SOCKS5_REP_TTL_EXPIRED);
	cr_assert_eq(socks5_reply_for_error(RC_ENG_CLIENT_BLOCKED),
		     SOCKS5_REP_NOT_ALLOWED);
	cr_assert_eq(socks5_reply_for_error(RC_SOCKS5_BAD_COMMAND),
		     SOCKS5_REP_CMD_NOT_SUPPORTED);
	cr_assert_eq(socks5_reply_for_error(RC_SOCKS5_BAD_ATYP),
		     SOCKS5_REP_ATYP_NOT_SUPPORTED);
	cr_assert_eq(socks5_reply_for_error(RC_SOCKS5_BAD_DOMAIN),
		     SOCKS5_REP_GENERAL_FAILURE);
	cr_assert_eq(socks5_reply_for_error(-ENOMEM),
		     SOCKS5_REP_GENERAL_FAILURE);
}

Test(socks5, error_names)
{
	cr_assert_str_eq(rc_errname(RC_SOCKS5_BAD_VERSION),
			 "SOCKS5_BAD_VERSION");
	cr_assert_str_eq(rc_strerror(RC_SOCKS5_AUTH_FAILED),
			 "SOCKS5 username or password rejected");
}
