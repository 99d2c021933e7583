/* SPDX-License-Identifier: MIT */
/* SOCKS5 server handshake (RFC 1928, RFC 1929), sans-IO: parsers over the
 * client's bytes, writers for the answers. The engine's socks5 mode drives
 * it before the tunnelled bytes reach the sniffer. */
#include "proto/socks5.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

static ssize_t fail(size_t *err_off, size_t off, int code)
{
	if (err_off)
		*err_off = off;
	return code;
}

const char *socks5_method_str(uint8_t method)
{
	switch (method) {
	case SOCKS5_METHOD_NO_AUTH:
		return "no-auth";
	case SOCKS5_METHOD_GSSAPI:
		return "gssapi";
	case SOCKS5_METHOD_USERPASS:
		return "username/password";
	case SOCKS5_METHOD_NO_ACCEPTABLE:
		return "no-acceptable";
	default:
		return "other";
	}
}

const char *socks5_cmd_str(uint8_t cmd)
{
	switch (cmd) {
	case SOCKS5_CMD_CONNECT:
		return "CONNECT";
	case SOCKS5_CMD_BIND:
		return "BIND";
	case SOCKS5_CMD_UDP_ASSOCIATE:
		return "UDP ASSOCIATE";
	default:
		return "unknown";
	}
}

const char *socks5_atyp_str(uint8_t atyp)
{
	switch (atyp) {
	case SOCKS5_ATYP_IPV4:
		return "ipv4";
	case SOCKS5_ATYP_DOMAIN:
		return "domain";
	case SOCKS5_ATYP_IPV6:
		return "ipv6";
	default:
		return "unknown";
	}
}

const char *socks5_reply_str(uint8_t rep)
{
	static const char *const names[SOCKS5_REP_COUNT] = {
		[SOCKS5_REP_SUCCEEDED] = "succeeded",
		[SOCKS5_REP_GENERAL_FAILURE] = "general failure",
		[SOCKS5_REP_NOT_ALLOWED] = "connection not allowed by ruleset",
		[SOCKS5_REP_NET_UNREACHABLE] = "network unreachable",
		[SOCKS5_REP_HOST_UNREACHABLE] = "host unreachable",
		[SOCKS5_REP_CONN_REFUSED] = "connection refused",
		[SOCKS5_REP_TTL_EXPIRED] = "TTL expired",
		[SOCKS5_REP_CMD_NOT_SUPPORTED] = "command not supported",
		[SOCKS5_REP_ATYP_NOT_SUPPORTED] = "address type not supported",
	};
	return rep < SOCKS5_REP_COUNT ? names[rep] : "unassigned";
}

uint8_t socks5_reply_for_error(int err)
{
	switch (err) {
	case 0:
		return SOCKS5_REP_SUCCEEDED;
	case -ECONNREFUSED:
	case RC_ENG_UPSTREAM_REFUSED:
		return SOCKS5_REP_CONN_REFUSED;
	case -ENETUNREACH:
	case -ENETDOWN:
		return SOCKS5_REP_NET_UNREACHABLE;
	case -EHOSTUNREACH:
	case -EHOSTDOWN:
	case RC_ENG_RESOLVE_FAILED:
		return SOCKS5_REP_HOST_UNREACHABLE;
	case -ETIMEDOUT:
	case RC_ENG_UPSTREAM_TIMEOUT:
		return SOCKS5_REP_TTL_EXPIRED;
	case -EACCES:
	case -EPERM:
	case RC_ENG_CLIENT_BLOCKED:
	case RC_ENG_LOOP:
		return SOCKS5_REP_NOT_ALLOWED;
	case RC_SOCKS5_BAD_COMMAND:
	case RC_SOCKS5_CMD_NOT_SUPPORTED:
		return SOCKS5_REP_CMD_NOT_SUPPORTED;
	case RC_SOCKS5_BAD_ATYP:
		return SOCKS5_REP_ATYP_NOT_SUPPORTED;
	default:
		return SOCKS5_REP_GENERAL_FAILURE;
	}
}

/* ---- Greeting ---- */

ssize_t socks5_parse_greeting(const uint8_t *buf, size_t len,
			      struct socks5_greeting *out, size_t *err_off)
{
	size_t n;

	if (len < 1)
		return 0;
	if (buf[0] != SOCKS5_VERSION)
		return fail(err_off, 0, RC_SOCKS5_BAD_VERSION);
	if (len < 2)
		return 0;
	n = buf[1];
	if (n == 0)
		return fail(err_off, 1, RC_SOCKS5_NO_METHODS);
	if (len < 2 + n)
		return 0;
	out->methods = buf + 2;
	out->n_methods = n;
	return (ssize_t)(2 + n);
}

static bool offers(const struct socks5_greeting *g, uint8_t method)
{
	return memchr(g->methods, method, g->n_methods) != NULL;
}

int socks5_choose_method(const struct socks5_greeting *g, bool need_auth)
{
	if (need_auth)
		return offers(g, SOCKS5_METHOD_USERPASS) ?
			       SOCKS5_METHOD_USERPASS :
			       SOCKS5_METHOD_NO_ACCEPTABLE;
	if (offers(g, SOCKS5_METHOD_NO_AUTH))
		return SOCKS5_METHOD_NO_AUTH;
	if (offers(g, SOCKS5_METHOD_USERPASS))
		return SOCKS5_METHOD_USERPASS;
	return SOCKS5_METHOD_NO_ACCEPTABLE;
}

size_t socks5_write_method(uint8_t out[2], uint8_t method)
{
	out[0] = SOCKS5_VERSION;
	out[1] = method;
	return 2;
}

/* ---- Username/password ---- */

ssize_t socks5_parse_auth(const uint8_t *buf, size_t len,
			  struct socks5_auth *out, size_t *err_off)
{
	size_t ulen, plen;

	if (len < 1)
		return 0;
	if (buf[0] != SOCKS5_AUTH_VERSION)
		return fail(err_off, 0, RC_SOCKS5_BAD_AUTH_VERSION);
	if (len < 2)
		return 0;
	ulen = buf[1];
	if (len < 2 + ulen + 1)
		return 0;
	plen = buf[2 + ulen];
	if (len < 3 + ulen + plen)
		return 0;
	out->user = (const char *)buf + 2;
	out->user_len = ulen;
	out->pass = (const char *)buf + 3 + ulen;
	out->pass_len = plen;
	return (ssize_t)(3 + ulen + plen);
}

/* Equal iff got[0..got_len) == want[0..want_len); the time depends on
 * want_len only (and on got_len through one comparison). */
static unsigned ct_diff(const char *got, size_t got_len, const char *want,
			size_t want_len)
{
	volatile unsigned diff = (got_len != want_len);
	size_t i;

	for (i = 0; i < want_len; i++) {
		/* Read inside |got| whatever its length: index modulo. */
		unsigned char g = got_len ? (unsigned char)got[i % got_len] : 0;

		diff |= g ^ (unsigned char)want[i];
	}
	return diff;
}

bool socks5_auth_check(const struct socks5_auth *a, const char *user,
		       const char *pass)
{
	unsigned d = ct_diff(a->user, a->user_len, user, strlen(user));

	d |= ct_diff(a->pass, a->pass_len, pass, strlen(pass));
	return d == 0;
}

size_t socks5_write_auth_reply(uint8_t out[2], bool ok)
{
	out[0] = SOCKS5_AUTH_VERSION;
	out[1] = ok ? 0x00 : 0x01;
	return 2;
}

/* ---- Request ---- */

static bool host_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Validate a domain name of 1..255 bytes: a host name or an IPv6 literal.
 * On failure *bad is the index of the offending byte (0 for a bad IPv6
 * literal). */
static bool valid_domain(const uint8_t *p, size_t n, size_t *bad)
{
	size_t i, label = 0, text_len = n;
	bool colon = false;

	for (i = 0; i < n; i++)
		if (p[i] == ':')
			colon = true;
	if (colon) { /* an IPv6 literal, in text */
		char tmp[256];
		struct in6_addr a6;

		*bad = 0;
		for (i = 0; i < n; i++)
			if (!isxdigit(p[i]) && p[i] != ':' && p[i] != '.')
				return false;
		memcpy(tmp, p, n);
		tmp[n] = '\0';
		return inet_pton(AF_INET6, tmp, &a6) == 1;
	}
	if (p[n - 1] == '.')
		text_len = n - 1;
	for (i = 0; i < text_len; i++) {
		if (p[i] == '.') {
			if (label == 0) {
				*bad = i;
				return false;
			}
			label = 0;
			continue;
		}
		if (!host_char(p[i]) || ++label > 63) {
			*bad = i;
			return false;
		}
	}
	if (text_len == 0 || text_len > 253) { /* "." alone, or too long */
		*bad = text_len == 0 ? 0 : 253;
		return false;
	}
	return true;
}

ssize_t socks5_parse_request(const uint8_t *buf, size_t len,
			     struct socks5_request *out, size_t *err_off)
{
	size_t addr_len, off, bad;

	if (len < 1)
		return 0;
	if (buf[0] != SOCKS5_VERSION)
		return fail(err_off, 0, RC_SOCKS5_BAD_VERSION);
	if (len < 2)
		return 0;
	if (buf[1] < SOCKS5_CMD_CONNECT || buf[1] > SOCKS5_CMD_UDP_ASSOCIATE)
		return fail(err_off, 1, RC_SOCKS5_BAD_COMMAND);
	if (len < 3)
		return 0;
	if (buf[2] != 0)
		return fail(err_off, 2, RC_SOCKS5_BAD_RESERVED);
	if (len < 4)
		return 0;
	switch (buf[3]) {
	case SOCKS5_ATYP_IPV4:
		addr_len = 4;
		off = 4;
		break;
	case SOCKS5_ATYP_IPV6:
		addr_len = 16;
		off = 4;
		break;
	case SOCKS5_ATYP_DOMAIN:
		if (len < 5)
			return 0;
		addr_len = buf[4];
		if (addr_len == 0)
			return fail(err_off, 4, RC_SOCKS5_BAD_DOMAIN);
		off = 5;
		if (len < off + addr_len)
			return 0;
		if (!valid_domain(buf + off, addr_len, &bad))
			return fail(err_off, off + bad, RC_SOCKS5_BAD_DOMAIN);
		break;
	default:
		return fail(err_off, 3, RC_SOCKS5_BAD_ATYP);
	}
	if (len < off + addr_len + 2)
		return 0;
	memset(out, 0, sizeof(*out));
	out->cmd = buf[1];
	out->atyp = buf[3];
	if (out->atyp == SOCKS5_ATYP_DOMAIN) {
		out->host = (const char *)buf + off;
		out->host_len = addr_len;
	} else {
		memcpy(out->addr, buf + off, addr_len);
	}
	off += addr_len;
	out->port = (uint16_t)(buf[off] << 8 | buf[off + 1]);
	return (ssize_t)(off + 2);
}

int socks5_request_sockaddr(const struct socks5_request *r,
			    struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (r->atyp == SOCKS5_ATYP_IPV4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(r->port);
		memcpy(&sin->sin_addr, r->addr, 4);
		return (int)sizeof(*sin);
	}
	if (r->atyp == SOCKS5_ATYP_IPV6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(r->port);
		memcpy(&sin6->sin6_addr, r->addr, 16);
		return (int)sizeof(*sin6);
	}
	return -EINVAL;
}

int socks5_request_host_str(const struct socks5_request *r, char *out,
			    size_t cap)
{
	char tmp[INET6_ADDRSTRLEN];
	const char *s = tmp;
	size_t n;

	switch (r->atyp) {
	case SOCKS5_ATYP_IPV4:
		inet_ntop(AF_INET, r->addr, tmp, sizeof(tmp));
		n = strlen(tmp);
		break;
	case SOCKS5_ATYP_IPV6:
		inet_ntop(AF_INET6, r->addr, tmp, sizeof(tmp));
		n = strlen(tmp);
		break;
	case SOCKS5_ATYP_DOMAIN:
		s = r->host;
		n = r->host_len;
		break;
	default:
		return -EINVAL;
	}
	if (n + 1 > cap)
		return -ENOSPC;
	memcpy(out, s, n);
	out[n] = '\0';
	return (int)n;
}

size_t socks5_write_reply(uint8_t out[22], uint8_t rep,
			  const struct sockaddr *bound)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0,    0,
					      0, 0, 0, 0, 0xff, 0xff };
	const uint8_t *addr = NULL;
	size_t alen = 4;
	uint16_t port = 0; /* network order */

	out[0] = SOCKS5_VERSION;
	out[1] = rep;
	out[2] = 0;
	if (bound && bound->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)bound;

		addr = (const uint8_t *)&sin->sin_addr;
		port = sin->sin_port;
	} else if (bound && bound->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)bound;

		addr = sin6->sin6_addr.s6_addr;
		port = sin6->sin6_port;
		if (memcmp(addr, v4mapped, 12) == 0)
			addr += 12;
		else
			alen = 16;
	}
	out[3] = alen == 4 ? SOCKS5_ATYP_IPV4 : SOCKS5_ATYP_IPV6;
	if (addr)
		memcpy(out + 4, addr, alen);
	else
		memset(out + 4, 0, alen);
	memcpy(out + 4 + alen, &port, 2);
	return 4 + alen + 2;
}
