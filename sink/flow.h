/* SPDX-License-Identifier: MIT */
/* The flow record: what one proxied exchange was, built by the engine in
 * its connection's memory, encoded once to msgpack straight into ring space
 * (flow_encode), and decoded again by readers (flow_decode). The schema is
 * documented in FLOWLOG.md. */
#ifndef RC_SINK_FLOW_H
#define RC_SINK_FLOW_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/rc_err.h"

#define FLOW_SCHEMA_VERSION 1

/* A byte string that need not be NUL-terminated. */
struct rc_str {
	const char *p;
	uint32_t n;
};
#define RC_STR(lit) ((struct rc_str){(lit), sizeof(lit) - 1})

struct flow_header {
	struct rc_str name;
	struct rc_str value;
};

/* A message body as captured: the first |captured| bytes at |p| (decoded
 * payload, no chunk framing), |length| the real payload length, |truncated|
 * when captured < length because of body_capture_limit. */
struct flow_body {
	const uint8_t *p;
	uint32_t captured;
	uint64_t length;
	bool truncated;
};

enum flow_type { FLOW_HTTP, FLOW_TCP, FLOW_DNS, FLOW_TYPE_COUNT };
const char *flow_type_str(enum flow_type t);

enum flow_mode {
	FLOW_MODE_REGULAR,
	FLOW_MODE_REVERSE,
	FLOW_MODE_UPSTREAM,
	FLOW_MODE_TRANSPARENT,
	FLOW_MODE_SOCKS5,
	FLOW_MODE_DNS,
	FLOW_MODE_COUNT
};
const char *flow_mode_str(enum flow_mode m);

/* Who or what ended the flow (haproxy's termination cause). */
enum flow_term {
	FLOW_TERM_OK,               /* exchange completed */
	FLOW_TERM_CLIENT_CLOSED,    /* client went away */
	FLOW_TERM_CLIENT_ERROR,     /* client sent something malformed */
	FLOW_TERM_CLIENT_TIMEOUT,   /* client idle / slow head */
	FLOW_TERM_UPSTREAM_CLOSED,  /* upstream went away mid-flow */
	FLOW_TERM_UPSTREAM_ERROR,   /* connect/resolve failed, bad response */
	FLOW_TERM_UPSTREAM_TIMEOUT, /* connect or response timeout */
	FLOW_TERM_PROXY_SHUTDOWN,   /* ringcap stopped before the end */
	FLOW_TERM_PROXY_REFUSED,    /* policy (block_global, loop) */
	FLOW_TERM_COUNT
};
const char *flow_term_str(enum flow_term t);

struct flow_endpoint {
	char addr[46]; /* numeric IPv4/IPv6, NUL-terminated; "" if unknown */
	uint16_t port;
};

/* One side's connection. Timestamps: seconds since the epoch (as mitmproxy),
 * 0 when the event did not happen. */
struct flow_conn {
	struct flow_endpoint peer;  /* remote end */
	struct flow_endpoint local; /* our end of the socket */
	double ts_start;            /* accepted / connect issued */
	double ts_setup;            /* TCP connected (server side) */
	double ts_end;              /* closed, 0 if still open when recorded */
};

struct flow_request {
	struct rc_str method;
	struct rc_str scheme;       /* "http" */
	struct rc_str host;         /* host the request is for */
	uint16_t port;
	struct rc_str path;         /* origin-form target, e.g. "/a?b" */
	struct rc_str http_version; /* "HTTP/1.1" */
	const struct flow_header *headers;
	uint32_t num_headers;
	const struct flow_header *trailers; /* chunked / HTTP/2 trailers */
	uint32_t num_trailers;
	struct flow_body body;
	double ts_start; /* first byte of the head */
	double ts_end;   /* last byte of the body */
};

struct flow_response {
	uint16_t status;
	struct rc_str reason;
	struct rc_str http_version;
	const struct flow_header *headers;
	uint32_t num_headers;
	const struct flow_header *trailers;
	uint32_t num_trailers;
	struct flow_body body;
	double ts_start;
	double ts_end;
};

struct flow_error {
	int32_t code;      /* rc_err code or negative errno */
	struct rc_str msg; /* human-readable */
	double ts;
};

/* One chunk of a tcp flow as it arrived (message boundaries are recv()s). */
struct flow_tcp_msg {
	bool from_client;
	double ts;
	struct rc_str content;
};

/* A DNS exchange (dns modes): the messages as sent, and a summary. */
struct flow_dns {
	struct rc_str query;     /* the client's message */
	struct rc_str response;  /* what the client got ("" if nothing) */
	struct rc_str qname;
	uint16_t qtype;
	int16_t rcode;           /* -1: no answer */
	struct rc_str answers;   /* "A 192.0.2.1, CNAME x.example" */
	bool tcp;                /* over TCP (else UDP) */
	double ts_query, ts_response;
};

/* TLS facts of one side (client_tls: ringcap as the server; server_tls:
 * ringcap as the client). Absent unless |present|. */
struct flow_tls {
	bool present;
	struct rc_str sni;
	struct rc_str alpn;      /* negotiated protocol, "" if none */
	struct rc_str version;   /* "TLSv1.3" */
	struct rc_str cipher;    /* "TLS_AES_256_GCM_SHA384" */
	struct rc_str cert_sha256; /* server_tls: upstream certificate, hex */
	struct rc_str cert_names;  /* server_tls: CN and SANs, comma-separated */
	struct rc_str verify;      /* server_tls: "ok" or why verification failed */
	bool ktls;                 /* record layer offloaded to the kernel */
	double ts_setup;           /* handshake completed */
};

struct flow {
	uint8_t id[16]; /* UUID v4 */
	enum flow_type type;
	enum flow_mode mode;
	enum flow_term term;
	struct flow_conn client;
	bool has_server;
	struct flow_conn server;
	bool has_request;
	struct flow_request req;
	bool has_response;
	struct flow_response resp;
	bool has_error;
	struct flow_error err;
	/* tcp flows (CONNECT tunnels): target and bytes each way. */
	struct rc_str tcp_host;
	uint16_t tcp_port;
	uint64_t bytes_up;   /* client -> server */
	uint64_t bytes_down; /* server -> client */
	/* tcp flows: the bytes themselves, up to body_capture_limit in all */
	const struct flow_tcp_msg *tcp_msgs;
	uint32_t num_tcp_msgs;
	bool tcp_truncated;  /* more bytes passed than were kept */
	struct flow_tls client_tls;
	struct flow_tls server_tls;
	bool has_dns;
	struct flow_dns dns;
};

/* Exact size in bytes of flow_encode()'s output for |f|. */
size_t flow_encoded_size(const struct flow *f) NONNULL(1);

/* Encode |f| into out[0..cap) as one msgpack map. Returns bytes written
 * (== flow_encoded_size(f)) or -ENOSPC if cap is too small. */
ssize_t flow_encode(const struct flow *f, void *out, size_t cap) NONNULL(1, 2);

/* Decode one record. Strings and arrays in |out| point into |buf| or into
 * memory taken from |zone|, which the caller owns and must keep (and
 * |buf|) alive while |out| is used. Returns 0 or RC_SINK_DECODE. */
int flow_decode(const void *buf, size_t len, msgpack_zone *zone,
		struct flow *out) NONNULL(1, 3, 4);

/* Canonical UUID text (36 chars + NUL) of |id| into out. */
void flow_id_str(const uint8_t id[16], char out[37]) NONNULL(1, 2);

#endif
