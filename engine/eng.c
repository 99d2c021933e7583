/* SPDX-License-Identifier: MIT */
/* The engine's front: configuration defaults, creating the shards and
 * their listeners, starting and stopping their threads, and counters. */
#include "engine/eng.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <openssl/err.h>
#include <pcre2.h>

#include "crypto/ca.h"
#include "crypto/leaf.h"
#include "engine/shard.h"

int shard_init(struct shard *s, unsigned id, const struct eng_config *cfg,
	       char *what, size_t what_len);
void shard_cleanup(struct shard *s);
int shard_start(struct shard *s);
void shard_wake(struct shard *s);

struct eng {
	struct eng_config cfg; /* the shards point at this copy */
	struct eng_tls tls;    /* CA, leaf cache, upstream context */
	struct filter *save_filter; /* compiled save_stream_filter */
	bool tls_on;
	struct shard *shards;
	unsigned nshards;
	struct frq **rings;
	unsigned nrings;
	bool running;
};

void eng_config_defaults(struct eng_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->listen_port = 8080;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	cfg->shards = n > 0 ? (unsigned)n : 1;
	cfg->block_global = true;
	cfg->body_capture_limit = 1u << 20;
	cfg->capture_overflow = ENG_OVERFLOW_BLOCK;
	cfg->capture_ring_size = 16u << 20;
	cfg->idle_timeout_ms = 60000;
	cfg->header_timeout_ms = 30000;
	cfg->connect_timeout_ms = 10000;
	cfg->response_timeout_ms = 60000;
	cfg->shutdown_grace_ms = 5000;
	cfg->max_header_size = 64u << 10;
	cfg->upstream_pool_size = 256;
	cfg->tls = true;
	snprintf(cfg->confdir, sizeof(cfg->confdir), "~/.ringcap");
	cfg->leaf_cache_size = 4096;
	cfg->http2 = true;
}

/* ALPN on the client side: h2 when the client offers it and http2 is on,
 * else HTTP/1.1; a client that offers neither gets no ALPN at all. When
 * the server (asked first) chose HTTP/1.1, the session marks the SSL
 * (app data ALPN_H1_ONLY) and the client is offered what the server
 * speaks, as mitmproxy does; engine/h2.c translates otherwise. */
static int alpn_select(SSL *ssl, const unsigned char **out,
		       unsigned char *outlen, const unsigned char *in,
		       unsigned int inlen, void *arg)
{
	static const unsigned char h2[] = "\x02h2\x08http/1.1";
	static const unsigned char h11[] = "\x08http/1.1";
	const struct eng_tls *t = arg;
	unsigned char *sel = NULL;
	bool want_h2 = t->http2 && SSL_get_app_data(ssl) != ALPN_H1_ONLY;
	/* our preference order: SSL_select_next_proto walks the first list */
	if (SSL_select_next_proto(&sel, outlen, want_h2 ? h2 : h11,
				  want_h2 ? sizeof(h2) - 1 : sizeof(h11) - 1,
				  in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* TLS 1.3 suites, cheapest first, as haproxy and nghttpx order them: our
 * choice as the server (ChaCha20 still first for a client that puts it
 * first: no AES in hardware), our offer as the client. */
#define TLS13_SUITES \
	"TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"

static void leaf_ctx_setup(SSL_CTX *ctx, void *arg)
{
	const struct eng_tls *t = arg;
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, arg);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
				 SSL_OP_CIPHER_SERVER_PREFERENCE |
				 SSL_OP_PRIORITIZE_CHACHA);
	SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES);
	if (t->ktls.on) /* the traffic secrets, for kernel TLS */
		SSL_CTX_set_keylog_callback(ctx, ktls_keylog_cb);
}

/* Kernel TLS: configured, not switched off in the environment, and the
 * kernel able (probed once for the whole process). */
static void ktls_setup(struct eng_tls *t, const struct eng_config *cfg)
{
	const char *env = getenv("RINGCAP_NO_KTLS");
	bool env_off = env && *env && strcmp(env, "0") != 0;
	bool enabled = cfg->ktls != ENG_KTLS_OFF && !env_off &&
		       ktls_init() == 0;
	ktls_probe(&t->ktls, enabled,
		   env_off ? "RINGCAP_NO_KTLS is set" : "--set ktls=false");
	if (t->ktls.on || !enabled) {
		if (cfg->verbosity > 0)
			fprintf(stderr, "ringcap: kernel TLS %s%s\n",
				t->ktls.on ? "offload on (TLS 1.3)" : "off: ",
				t->ktls.on ? "" : t->ktls.why);
		return;
	}
	if (cfg->verbosity >= 0 || cfg->ktls == ENG_KTLS_ON)
		ktls_log_once(t->ktls.why);
}

/* Keep going on a bad certificate: the verdict is read after the
 * handshake, so the client can be told why (502) instead of a reset. */
static int verify_continue(int ok, X509_STORE_CTX *ctx)
{
	(void)ok;
	(void)ctx;
	return 1;
}

static void *compile_re(const char *pat, const char *name, char *what,
			size_t what_len)
{
	int ec;
	PCRE2_SIZE off;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
				       PCRE2_CASELESS, &ec, &off, NULL);
	if (!re) {
		PCRE2_UCHAR msg[160];
		pcre2_get_error_message(ec, msg, sizeof(msg));
		snprintf(what, what_len, "--set %s: %s at offset %zu", name,
			 (char *)msg, (size_t)off);
	}
	return re;
}

bool eng_tls_passthrough(const struct eng_tls *t, const char *host_port)
{
	const void *re = t->ignore_re ? t->ignore_re : t->allow_re;
	if (!re)
		return false;
	pcre2_match_data *md = pcre2_match_data_create(4, NULL);
	if (!md)
		return false;
	int r = pcre2_match(re, (PCRE2_SPTR)host_port, PCRE2_ZERO_TERMINATED,
			    0, 0, md, NULL);
	pcre2_match_data_free(md);
	/* ignore_hosts: matching hosts pass; allow_hosts: the others do */
	return t->ignore_re ? r >= 0 : r < 0;
}

static int tls_setup(struct eng *e, char *what, size_t what_len)
{
	struct eng_tls *t = &e->tls;
	const struct eng_config *cfg = &e->cfg;
	int r = ca_load_or_create(&t->ca, cfg->confdir, what, what_len);
	if (r < 0)
		return r;
	ktls_setup(t, cfg);
	t->http2 = cfg->http2;
	r = leaf_cache_new(&t->leaves, t->ca, cfg->leaf_cache_size,
			   leaf_ctx_setup, t, what, what_len);
	if (r < 0)
		return r;
	leaf_cache_load_disk(t->leaves);
	if (cfg->cert_warm[0]) {
		r = leaf_cache_warm(t->leaves, cfg->cert_warm);
		if (r < 0) {
			snprintf(what, what_len, "--set cert_warm=%s: %s",
				 cfg->cert_warm, strerror(-r));
			return r;
		}
	}
	t->up_ctx = SSL_CTX_new(TLS_client_method());
	if (t->up_ctx)
		SSL_CTX_set_ciphersuites(t->up_ctx, TLS13_SUITES);
	if (!t->up_ctx) {
		snprintf(what, what_len, "OpenSSL: cannot create a TLS context");
		return -ENOMEM;
	}
	t->insecure = cfg->ssl_insecure;
	if (t->ktls.on)
		SSL_CTX_set_keylog_callback(t->up_ctx, ktls_keylog_cb);
	SSL_CTX_set_default_verify_paths(t->up_ctx);
	SSL_CTX_set_verify(t->up_ctx, t->insecure ? SSL_VERIFY_NONE
						  : SSL_VERIFY_PEER,
			   t->insecure ? NULL : verify_continue);
	if (cfg->ignore_hosts[0] &&
	    !(t->ignore_re = compile_re(cfg->ignore_hosts, "ignore_hosts", what,
					what_len)))
		return -EINVAL;
	if (cfg->allow_hosts[0] &&
	    !(t->allow_re = compile_re(cfg->allow_hosts, "allow_hosts", what,
				       what_len)))
		return -EINVAL;
	return 0;
}

static void tls_teardown(struct eng_tls *t)
{
	SSL_CTX_free(t->up_ctx);
	leaf_cache_free(t->leaves);
	ca_free(t->ca);
	pcre2_code_free(t->ignore_re);
	pcre2_code_free(t->allow_re);
	memset(t, 0, sizeof(*t));
}

void eng_leaf_stats(struct eng *e, struct leaf_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!e->tls_on)
		return;
	leaf_cache_stats(e->tls.leaves, st);
	if (e->running)
		return; /* the per-shard fronts are the shards' business */
	/* Shards stopped: their lock-free front caches answered most
	 * lookups without ever reaching the shared cache. */
	for (unsigned i = 0; i < e->nshards; i++) {
		uint64_t h = 0, m = 0;
		if (e->shards[i].leaf_l1)
			leaf_l1_counts(e->shards[i].leaf_l1, &h, &m);
		st->hits += h;
	}
}

const struct ca *eng_ca(struct eng *e)
{
	return e->tls_on ? e->tls.ca : NULL;
}

int eng_create(struct eng **out, const struct eng_config *cfg, char *what,
	       size_t what_len)
{
	static bool ares_ready;
	if (!ares_ready) {
		if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
			snprintf(what, what_len, "c-ares initialisation failed");
			return -ENOMEM;
		}
		ares_ready = true;
	}
	struct eng *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->cfg = *cfg;
	/* A record holds two bodies up to the limit plus two heads: the ring
	 * must take at least two of them at once. */
	uint64_t need = 4 * (e->cfg.body_capture_limit + e->cfg.max_header_size) +
			(1u << 20);
	if (e->cfg.capture_ring_size < need)
		e->cfg.capture_ring_size = need;
	if (e->cfg.tls) {
		int r = tls_setup(e, what, what_len);
		if (r < 0) {
			tls_teardown(&e->tls);
			free(e);
			return r;
		}
		e->tls_on = true;
	}
	if (e->cfg.save_filter[0]) {
		char ferr[300];
		if (filter_compile(e->cfg.save_filter, &e->save_filter, ferr,
				   sizeof(ferr)) < 0) {
			snprintf(what, what_len, "--set save_stream_filter: %s",
				 ferr);
			tls_teardown(&e->tls);
			free(e);
			return -EINVAL;
		}
	}
	e->nshards = cfg->shards ? cfg->shards : 1;
	e->shards = calloc(e->nshards, sizeof(*e->shards));
	e->rings = calloc(e->nshards, sizeof(*e->rings));
	if (!e->shards || !e->rings) {
		eng_destroy(e);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < e->nshards; i++) {
		e->shards[i].tls = e->tls_on ? &e->tls : NULL;
		e->shards[i].save_filter = e->save_filter;
		int r = shard_init(&e->shards[i], i, &e->cfg, what, what_len);
		if (r < 0) {
			e->nshards = i + 1;
			eng_destroy(e);
			return r;
		}
		if (e->shards[i].frq)
			e->rings[e->nrings++] = e->shards[i].frq;
	}
	*out = e;
	return 0;
}

struct frq *const *eng_rings(struct eng *e, unsigned *n)
{
	*n = e->nrings;
	return e->rings;
}

int eng_run(struct eng *e)
{
	for (unsigned i = 0; i < e->nshards; i++) {
		int r = shard_start(&e->shards[i]);
		if (r < 0) {
			e->nshards = i;
			return r;
		}
	}
	e->running = true;
	return 0;
}

void eng_shutdown(struct eng *e)
{
	for (unsigned i = 0; i < e->nshards; i++)
		shard_wake(&e->shards[i]);
}

void eng_join(struct eng *e)
{
	if (!e->running)
		return;
	for (unsigned i = 0; i < e->nshards; i++) {
		pthread_join(e->shards[i].thread, NULL);
		e->shards[i].exited = true;
	}
	e->running = false;
}

void eng_destroy(struct eng *e)
{
	if (!e)
		return;
	eng_join(e);
	for (unsigned i = 0; e->shards && i < e->nshards; i++) {
		e->shards[i].exited = true;
		shard_cleanup(&e->shards[i]);
	}
	free(e->shards);
	free(e->rings);
	tls_teardown(&e->tls);
	filter_free(e->save_filter);
	free(e);
}

void eng_stats(struct eng *e, struct eng_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (unsigned i = 0; i < e->nshards; i++) {
		struct shard_stats *s = &e->shards[i].st;
#define ADD(f) st->f += atomic_load_explicit(&s->f, memory_order_relaxed)
		ADD(flows);
		ADD(flow_errors);
		ADD(captured);
		ADD(dropped);
		ADD(filtered);
		ADD(ring_waits);
		ADD(conns_open);
		ADD(conns_total);
		ADD(refused);
		ADD(bytes_in);
		ADD(bytes_out);
		ADD(upstream_reused);
		ADD(upstream_connects);
		ADD(tls_intercepted);
		ADD(tls_client_failed);
		ADD(tls_userspace);
		ADD(tls_ktls);
#undef ADD
	}
}
