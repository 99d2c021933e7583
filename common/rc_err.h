/* SPDX-License-Identifier: MIT */
/* One error space for ringcap: negative errno values in [-4095,-1] pass
 * through unchanged (io_uring, libc); ringcap's own codes sit below -5000,
 * one range per module, generated from the table below. */
#ifndef RC_ERR_H
#define RC_ERR_H

#include <stdbool.h>

#define WUNRES __attribute__((warn_unused_result))
#define NONNULL(...) __attribute__((nonnull(__VA_ARGS__)))

/* X(name, value, message) — messages say what failed, for a user. */
#define RC_ERR_MAP(X)                                                          \
	/* proto/h1: -5000 .. -5099 */                                          \
	X(H1_SYNTAX, -5000, "malformed HTTP/1 message")                         \
	X(H1_HEAD_TOO_LARGE, -5001, "HTTP header block too large")              \
	X(H1_TOO_MANY_HEADERS, -5002, "too many HTTP header fields")            \
	X(H1_BAD_VERSION, -5003, "unsupported HTTP version")                    \
	X(H1_BAD_CONTENT_LENGTH, -5004, "invalid Content-Length")               \
	X(H1_BAD_TRANSFER_ENCODING, -5005, "unsupported Transfer-Encoding")     \
	X(H1_BAD_CHUNK, -5006, "malformed chunked body")                        \
	X(H1_BAD_TARGET, -5007, "invalid request target")                       \
	X(H1_TRAILERS_TOO_LARGE, -5008, "chunked trailers too large")           \
	/* engine: -5100 .. -5199 */                                            \
	X(ENG_UPSTREAM_REFUSED, -5100, "upstream connection refused")           \
	X(ENG_UPSTREAM_TIMEOUT, -5101, "upstream did not answer in time")       \
	X(ENG_UPSTREAM_CLOSED, -5102, "upstream closed the connection early")   \
	X(ENG_RESOLVE_FAILED, -5103, "upstream host name did not resolve")      \
	X(ENG_CLIENT_CLOSED, -5104, "client closed the connection mid-flow")    \
	X(ENG_CLIENT_TIMEOUT, -5105, "client was idle for too long")            \
	X(ENG_HEADER_TIMEOUT, -5106, "client did not send a request head in time") \
	X(ENG_SHUTDOWN, -5107, "proxy shut down before the flow finished")      \
	X(ENG_NO_HOST, -5108, "request names no host to connect to")            \
	X(ENG_UPSTREAM_BAD_RESPONSE, -5109, "upstream sent a malformed response") \
	X(ENG_CLIENT_BLOCKED, -5110, "client address not allowed (block_global)") \
	X(ENG_UPSTREAM_IO, -5111, "upstream connection failed")                 \
	X(ENG_CLIENT_IO, -5112, "client connection failed")                     \
	X(ENG_LOOP, -5113, "request would loop back into the proxy")            \
	X(ENG_UPSTREAM_TLS, -5114, "upstream TLS handshake failed")             \
	X(ENG_UPSTREAM_CERT, -5115, "upstream certificate verification failed") \
	X(ENG_CLIENT_TLS, -5116,                                                \
	  "client TLS handshake failed (does the client trust the ringcap CA?)") \
	/* sink: -5200 .. -5299 */                                              \
	X(SINK_RING_FULL, -5200, "capture ring full")                           \
	X(SINK_RECORD_TOO_LARGE, -5201, "flow record larger than the capture ring") \
	X(SINK_BAD_MAGIC, -5202, "not a ringcap flow log (bad magic)")          \
	X(SINK_BAD_VERSION, -5203, "unsupported flow log format version")       \
	X(SINK_TRUNCATED, -5204, "flow log ends in a partial record")           \
	X(SINK_CORRUPT, -5205, "flow log record is corrupt")                    \
	X(SINK_DECODE, -5206, "flow record does not match the schema")          \
	/* proto/tls_hello: -5400 .. -5499 */                                    \
	X(TLS_NOT_TLS, -5400, "client did not start with a TLS handshake record") \
	X(TLS_BAD_RECORD, -5401, "malformed TLS record header")                  \
	X(TLS_NOT_HANDSHAKE, -5402, "non-handshake TLS record inside the ClientHello") \
	X(TLS_NOT_CLIENT_HELLO, -5403, "first TLS handshake message is not a ClientHello") \
	X(TLS_HELLO_TOO_LARGE, -5404, "TLS ClientHello larger than 64 KiB")     \
	X(TLS_BAD_LENGTH, -5405, "TLS ClientHello length field does not fit its container") \
	X(TLS_TRAILING_DATA, -5406, "unexpected bytes after the TLS ClientHello in its record") \
	X(TLS_BAD_VERSION, -5407, "TLS ClientHello offers no TLS/SSL 3.x version") \
	X(TLS_DUP_EXTENSION, -5408, "duplicate extension in the TLS ClientHello") \
	X(TLS_BAD_EXTENSION, -5409, "malformed extension in the TLS ClientHello") \
	X(TLS_BAD_SNI, -5410, "TLS server name (SNI) is not a valid host name")  \
	X(TLS_SSLV2, -5411, "SSLv2-format ClientHello (not supported)")          \
	X(TLS_NEED_SCRATCH, -5412, "ClientHello split over records: reassembly buffer too small") \
	X(TLS_TOO_FRAGMENTED, -5413, "TLS ClientHello split over too many records") \
	/* proto/socks5: -5500 .. -5599 */                                       \
	X(SOCKS5_BAD_VERSION, -5500, "client did not speak SOCKS version 5")     \
	X(SOCKS5_NO_METHODS, -5501, "SOCKS5 greeting lists no authentication method") \
	X(SOCKS5_NO_ACCEPTABLE_METHOD, -5502,                                    \
	  "SOCKS5 client offers no acceptable authentication method (username/password required?)") \
	X(SOCKS5_BAD_AUTH_VERSION, -5503, "SOCKS5 username/password subnegotiation has a wrong version") \
	X(SOCKS5_AUTH_FAILED, -5504, "SOCKS5 username or password rejected")     \
	X(SOCKS5_BAD_COMMAND, -5505, "unknown SOCKS5 command")                   \
	X(SOCKS5_CMD_NOT_SUPPORTED, -5506, "SOCKS5 command not supported (only CONNECT is)") \
	X(SOCKS5_BAD_ATYP, -5507, "unknown SOCKS5 address type")                 \
	X(SOCKS5_BAD_DOMAIN, -5508, "SOCKS5 destination is not a valid host name") \
	X(SOCKS5_BAD_RESERVED, -5509, "SOCKS5 request has a non-zero reserved byte") \
	/* proto/dns: -5600 .. -5699 */                                          \
	X(DNS_TRUNCATED, -5600, "DNS message ends before its contents do")       \
	X(DNS_BAD_LABEL, -5601, "malformed label in a DNS name")                 \
	X(DNS_NAME_TOO_LONG, -5602, "DNS name longer than 255 bytes")            \
	X(DNS_BAD_POINTER, -5603, "DNS compression pointer loops or does not point back") \
	X(DNS_BAD_RDATA, -5604, "DNS record data does not match its type or length") \
	X(DNS_BAD_FRAME, -5605, "DNS-over-TCP length prefix too short for a DNS message") \
	X(DNS_BAD_NAME, -5606, "not a valid domain name")                        \
	X(DNS_NOT_QUERY, -5607, "DNS message is not a standard query with one question") \
	/* cli/config: -5300 .. -5399 */                                        \
	X(CFG_BAD_MODE, -5300, "invalid --mode")                                \
	X(CFG_BAD_OPTION, -5301, "unknown option")                              \
	X(CFG_BAD_VALUE, -5302, "invalid option value")

enum rc_err {
#define RC_ERR_ENUM(name, val, msg) RC_##name = (val),
	RC_ERR_MAP(RC_ERR_ENUM)
#undef RC_ERR_ENUM
};

/* Human message for |code| (ringcap code or negative errno). Never NULL. */
const char *rc_strerror(int code);
/* Symbolic name ("H1_SYNTAX", "ECONNREFUSED"). Never NULL. */
const char *rc_errname(int code);

#endif
