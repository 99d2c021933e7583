/* SPDX-License-Identifier: MIT */
/* The engine: shards (one thread, one io_uring, one SO_REUSEPORT listener
 * per mode each), the connections they own, and the rings they hand
 * finished flows to. The CLI fills struct eng_config and drives this API. */
#ifndef RC_ENGINE_ENG_H
#define RC_ENGINE_ENG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/rc_err.h"
#include "sink/flow.h"
#include "sink/frq.h"

#define ENG_MAX_MODES 16

enum eng_overflow { ENG_OVERFLOW_BLOCK, ENG_OVERFLOW_DROP };

/* One --mode: a listener and where its requests go. */
struct eng_mode {
	enum flow_mode kind;
	char spec[300];     /* as the user wrote it, for messages */
	char scheme[8];     /* target scheme (reverse, upstream) */
	char host[256];     /* target host (reverse, upstream) */
	uint16_t port;      /* target port */
	uint16_t listen_port; /* 0: the global listen port */
};

/* Kernel TLS offload after handshakes (--set ktls=). */
enum eng_ktls {
	ENG_KTLS_AUTO, /* where the kernel can (default) */
	ENG_KTLS_OFF,
	ENG_KTLS_ON,   /* as auto; says why not even with -q */
	ENG_KTLS_COUNT
};

struct eng_config {
	struct eng_mode modes[ENG_MAX_MODES];
	unsigned nmodes;
	char listen_host[64]; /* "" = every address */
	uint16_t listen_port;
	unsigned shards;
	bool capture;             /* encode flows into the rings */
	bool keep_host_header;
	bool block_global;
	uint64_t body_capture_limit;
	enum eng_overflow capture_overflow;
	uint64_t capture_ring_size;
	uint32_t idle_timeout_ms;
	uint32_t header_timeout_ms;
	uint32_t connect_timeout_ms;
	uint32_t response_timeout_ms;
	uint32_t shutdown_grace_ms;
	uint32_t max_header_size;
	uint32_t upstream_pool_size;
	int verbosity;
	bool http2;               /* HTTP/2 with clients (ALPN h2, h2c preface) */
	/* TLS interception */
	bool tls;                 /* intercept (false: CONNECT is a plain tunnel) */
	bool ssl_insecure;        /* do not verify upstream certificates */
	char confdir[512];        /* CA and cert cache ("~/.ringcap") */
	char cert_warm[512];      /* host names to pre-sign, one per line */
	char ignore_hosts[512];   /* regex on host:port: pass through */
	char allow_hosts[512];    /* regex on host:port: only these intercepted */
	uint32_t leaf_cache_size;
	enum eng_ktls ktls;       /* RINGCAP_NO_KTLS=1 in the environment: off */
	/* transparent mode */
	bool tproxy;              /* transparent_method=tproxy (else redirect) */
	bool spoof_source;        /* spoof_source_address: upstream from client IP */
	char proxyauth[256];      /* "user:pass" for socks5 (and later http) */
	char save_filter[1024];   /* save_stream_filter: record only matching flows */
};

/* Defaults as documented in docs/CLI.md. */
void eng_config_defaults(struct eng_config *cfg) NONNULL(1);

struct eng_stats {
	uint64_t flows;         /* flows finished */
	uint64_t flow_errors;   /* of which ended with an error */
	uint64_t captured;      /* records put into the rings */
	uint64_t dropped;       /* records dropped (capture_overflow=drop) */
	uint64_t filtered;      /* flows not recorded: save_stream_filter */
	uint64_t ring_waits;    /* times a shard waited for ring space */
	uint64_t conns_open;    /* client connections open now */
	uint64_t conns_total;   /* client connections accepted */
	uint64_t refused;       /* clients refused (block_global) */
	uint64_t bytes_in;      /* bytes received from clients and upstreams */
	uint64_t bytes_out;     /* bytes sent to clients and upstreams */
	uint64_t upstream_reused; /* requests sent on a kept-alive connection */
	uint64_t upstream_connects;
	uint64_t tls_intercepted;  /* client handshakes completed */
	uint64_t tls_client_failed; /* clients that rejected our certificate */
	uint64_t tls_userspace;    /* TLS connections on the userspace path */
	uint64_t tls_ktls;         /* ... with the record layer in the kernel */
};

struct eng;

/* Create the shards and their rings and bind every listener (so a port in
 * use is reported before anything runs). No thread runs yet. Returns 0 and
 * *out, or a negative errno / rc code; *what gets a message for the user. */
int eng_create(struct eng **out, const struct eng_config *cfg,
	       char *what, size_t what_len) WUNRES NONNULL(1, 2, 3);

/* Leaf certificate cache counters (zero without TLS). */
struct leaf_stats;
void eng_leaf_stats(struct eng *e, struct leaf_stats *st) NONNULL(1, 2);

/* The CA in use (for mitm.it and messages), NULL without TLS. */
struct ca;
const struct ca *eng_ca(struct eng *e) NONNULL(1);

/* The shards' rings, for the flow log writer. */
struct frq *const *eng_rings(struct eng *e, unsigned *n) NONNULL(1, 2);

/* Start the shard threads. Returns 0 or a negative errno. */
int eng_run(struct eng *e) WUNRES NONNULL(1);

/* Begin a graceful stop: stop accepting, let flows finish within
 * shutdown_grace. A second call cuts the grace short. Thread-safe,
 * async-signal-unsafe (call from a normal thread). */
void eng_shutdown(struct eng *e) NONNULL(1);

/* Wait for every shard to finish, then free everything but the rings'
 * contents, which stay readable until eng_destroy(). */
void eng_join(struct eng *e) NONNULL(1);
void eng_destroy(struct eng *e);

/* Sum of every shard's counters; safe from any thread. */
void eng_stats(struct eng *e, struct eng_stats *st) NONNULL(1, 2);

#endif
