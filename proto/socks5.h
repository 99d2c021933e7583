/* SPDX-License-Identifier: MIT */
/* SOCKS5 server side (RFC 1928) with username/password auth (RFC 1929),
 * sans-IO: zero-copy parsers for what a client sends, writers for what the
 * proxy answers. The engine's socks5 mode runs the handshake with these,
 * then hands the connection's bytes to the sniffer like any other. */
#ifndef RC_PROTO_SOCKS5_H
#define RC_PROTO_SOCKS5_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "common/rc_err.h"

#define SOCKS5_VERSION 0x05
#define SOCKS5_AUTH_VERSION 0x01 /* RFC 1929 subnegotiation version */

/* The handshake, server side:
 *   client: greeting       -> socks5_parse_greeting()
 *   server: method choice  <- socks5_choose_method(), socks5_write_method()
 *   [method 0x02] client: user/pass -> socks5_parse_auth(), socks5_auth_check()
 *                 server: status    <- socks5_write_auth_reply()
 *                 (on failure: send it, then close)
 *   client: request        -> socks5_parse_request()
 *   server: reply          <- socks5_write_reply() (on failure: send, close)
 * then the connection carries the tunnelled bytes. Clients may pipeline
 * (send the next message before the answer): every parser returns how many
 * bytes it consumed and the rest belongs to the next step. */

/* Authentication methods (IANA "SOCKS Methods"). */
enum socks5_method {
	SOCKS5_METHOD_NO_AUTH = 0x00,
	SOCKS5_METHOD_GSSAPI = 0x01,
	SOCKS5_METHOD_USERPASS = 0x02,
	SOCKS5_METHOD_NO_ACCEPTABLE = 0xff,
};
/* "no-auth", "gssapi", "username/password", "no-acceptable", or "other". */
const char *socks5_method_str(uint8_t method);

enum socks5_cmd {
	SOCKS5_CMD_CONNECT = 0x01,
	SOCKS5_CMD_BIND = 0x02,
	SOCKS5_CMD_UDP_ASSOCIATE = 0x03,
};
/* "CONNECT", "BIND", "UDP ASSOCIATE", or "unknown". */
const char *socks5_cmd_str(uint8_t cmd);

enum socks5_atyp {
	SOCKS5_ATYP_IPV4 = 0x01,
	SOCKS5_ATYP_DOMAIN = 0x03,
	SOCKS5_ATYP_IPV6 = 0x04,
};
/* "ipv4", "domain", "ipv6", or "unknown". */
const char *socks5_atyp_str(uint8_t atyp);

/* Reply codes (the REP field). */
enum socks5_reply {
	SOCKS5_REP_SUCCEEDED = 0x00,
	SOCKS5_REP_GENERAL_FAILURE = 0x01,
	SOCKS5_REP_NOT_ALLOWED = 0x02, /* connection not allowed by ruleset */
	SOCKS5_REP_NET_UNREACHABLE = 0x03,
	SOCKS5_REP_HOST_UNREACHABLE = 0x04,
	SOCKS5_REP_CONN_REFUSED = 0x05,
	SOCKS5_REP_TTL_EXPIRED = 0x06,
	SOCKS5_REP_CMD_NOT_SUPPORTED = 0x07,
	SOCKS5_REP_ATYP_NOT_SUPPORTED = 0x08,
	SOCKS5_REP_COUNT
};
/* "succeeded", "general failure", ...; "unassigned" for >= SOCKS5_REP_COUNT. */
const char *socks5_reply_str(uint8_t rep);

/* The reply code that tells a client why its request failed: from a
 * negative errno of a connect (ECONNREFUSED, ENETUNREACH, EHOSTUNREACH,
 * ETIMEDOUT, ...), an RC_ENG_* code (RESOLVE_FAILED, UPSTREAM_REFUSED,
 * UPSTREAM_TIMEOUT, CLIENT_BLOCKED, LOOP), or an RC_SOCKS5_* code returned
 * by socks5_parse_request() (BAD_COMMAND/CMD_NOT_SUPPORTED -> 0x07,
 * BAD_ATYP -> 0x08). Anything else, GENERAL_FAILURE; 0 gives SUCCEEDED. */
uint8_t socks5_reply_for_error(int err);

/* ---- Greeting: VER NMETHODS METHODS[NMETHODS] ---- */

struct socks5_greeting {
	const uint8_t *methods; /* into the caller's buffer */
	size_t n_methods;       /* 1..255 */
};

/* Parse the greeting at buf[0..len).
 * Returns its length (> 0, 3..257), 0 if incomplete (read more, call again
 * with the whole grown buffer), or a negative code with *err_off (if not
 * NULL) at the offending byte:
 *   RC_SOCKS5_BAD_VERSION (offset 0): not SOCKS5 (a SOCKS4 client, an HTTP
 *     client on the SOCKS port, ...); close without answering.
 *   RC_SOCKS5_NO_METHODS (offset 1): NMETHODS is 0; answer
 *     socks5_write_method(SOCKS5_METHOD_NO_ACCEPTABLE) and close.
 * A prefix of a bad greeting gives 0 or the same error. */
ssize_t socks5_parse_greeting(const uint8_t *buf, size_t len,
			      struct socks5_greeting *out, size_t *err_off)
	NONNULL(1, 3) WUNRES;

/* The method to answer with: SOCKS5_METHOD_USERPASS if |need_auth| and the
 * client offers it, SOCKS5_METHOD_NO_AUTH if !|need_auth| and the client
 * offers it, else SOCKS5_METHOD_NO_ACCEPTABLE (send it, then close; the
 * flow's error is RC_SOCKS5_NO_ACCEPTABLE_METHOD). A client that offers only
 * username/password when no auth is configured gets USERPASS, and any
 * credentials are then accepted (what curl -U against an open proxy needs). */
int socks5_choose_method(const struct socks5_greeting *g, bool need_auth)
	NONNULL(1);

/* Method selection message: VER METHOD. Returns 2. */
size_t socks5_write_method(uint8_t out[2], uint8_t method) NONNULL(1);

/* ---- Username/password: VER ULEN UNAME PLEN PASSWD (RFC 1929) ---- */

struct socks5_auth {
	const char *user; /* into the caller's buffer, not NUL-terminated */
	size_t user_len;  /* 0..255 (RFC 1929 says 1..255; curl may send 0) */
	const char *pass;
	size_t pass_len;  /* 0..255 */
};

/* Parse the username/password request at buf[0..len). Returns its length
 * (> 0, 3..513), 0 if incomplete, or RC_SOCKS5_BAD_AUTH_VERSION (offset 0,
 * the version byte is not 1: answer socks5_write_auth_reply(false), close). */
ssize_t socks5_parse_auth(const uint8_t *buf, size_t len,
			  struct socks5_auth *out, size_t *err_off)
	NONNULL(1, 3) WUNRES;

/* Compare the credentials with |user| and |pass| (NUL-terminated, each at
 * most 255 bytes to ever match) in time that depends only on the lengths
 * of the configured strings, not on where a guess first differs. */
bool socks5_auth_check(const struct socks5_auth *a, const char *user,
		       const char *pass) NONNULL(1, 2, 3);

/* Status message: VER(1) STATUS (0 success, 1 failure). Returns 2. */
size_t socks5_write_auth_reply(uint8_t out[2], bool ok) NONNULL(1);

/* ---- Request: VER CMD RSV ATYP DST.ADDR DST.PORT ---- */

#define SOCKS5_HOST_STR_MAX 256 /* socks5_request_host_str(): domain + NUL */

struct socks5_request {
	uint8_t cmd;  /* enum socks5_cmd: CONNECT, BIND or UDP ASSOCIATE */
	uint8_t atyp; /* enum socks5_atyp */
	/* SOCKS5_ATYP_DOMAIN: the name as sent, into the caller's buffer, not
	 * NUL-terminated, validated: LDH labels (and '_') of 1..63 bytes,
	 * optional final dot, or an IPv4/IPv6 literal written as text (some
	 * clients do; resolve it like a name, it resolves to itself). */
	const char *host;
	size_t host_len; /* 1..255 */
	/* SOCKS5_ATYP_IPV4: addr[0..4); SOCKS5_ATYP_IPV6: addr[0..16);
	 * network byte order. */
	uint8_t addr[16];
	uint16_t port; /* host byte order */
};

/* Parse the request at buf[0..len). Returns its length (> 0, 10..262), 0 if
 * incomplete, or a negative code with *err_off (if not NULL) at the
 * offending byte. Answer every error with socks5_write_reply(
 * socks5_reply_for_error(rc), NULL) and close:
 *   RC_SOCKS5_BAD_VERSION     (0) VER is not 5
 *   RC_SOCKS5_BAD_COMMAND     (1) CMD is not 1, 2 or 3          -> reply 0x07
 *   RC_SOCKS5_BAD_RESERVED    (2) RSV is not 0
 *   RC_SOCKS5_BAD_ATYP        (3) ATYP is not 1, 3 or 4         -> reply 0x08
 *   RC_SOCKS5_BAD_DOMAIN      (4: the length byte when it is 0; else the
 *                             first offending byte of the name, or its
 *                             first byte for a bad IPv6 literal; checked
 *                             once the whole name is there)
 * BIND and UDP ASSOCIATE parse fine (> 0) and are reported in out->cmd; the
 * engine answers them with SOCKS5_REP_CMD_NOT_SUPPORTED
 * (RC_SOCKS5_CMD_NOT_SUPPORTED in the flow record). A port of 0 is
 * returned as is: CONNECT to port 0 fails at connect time. */
ssize_t socks5_parse_request(const uint8_t *buf, size_t len,
			     struct socks5_request *out, size_t *err_off)
	NONNULL(1, 3) WUNRES;

/* The destination of an IPv4/IPv6 request as a socket address (port
 * included). Returns its length, or -EINVAL for a domain request (resolve
 * out->host first). */
int socks5_request_sockaddr(const struct socks5_request *r,
			    struct sockaddr_storage *ss) NONNULL(1, 2);

/* The destination host as text ("example.com", "192.0.2.1", "2001:db8::1"
 * — no brackets, no port) into out[0..cap), NUL-terminated;
 * SOCKS5_HOST_STR_MAX always suffices. Returns the length without the NUL,
 * or -ENOSPC. */
int socks5_request_host_str(const struct socks5_request *r, char *out,
			    size_t cap) NONNULL(1, 2);

/* Reply message: VER REP RSV ATYP BND.ADDR BND.PORT. |bound| is the
 * upstream socket's local address (getsockname) for SUCCEEDED, AF_INET or
 * AF_INET6 (a v4-mapped IPv6 address is written as IPv4); NULL (or another
 * family) writes 0.0.0.0:0, which is what failures should send. Returns
 * the length: 10 (IPv4) or 22 (IPv6). */
size_t socks5_write_reply(uint8_t out[22], uint8_t rep,
			  const struct sockaddr *bound) NONNULL(1);

#endif
