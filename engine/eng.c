/* SPDX-License-Identifier: MIT */
/* The engine's front: configuration defaults, creating the shards and
 * their listeners, starting and stopping their threads, and counters. */
#include "engine/eng.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/shard.h"

int shard_init(struct shard *s, unsigned id, const struct eng_config *cfg,
	       char *what, size_t what_len);
void shard_cleanup(struct shard *s);
int shard_start(struct shard *s);
void shard_wake(struct shard *s);

struct eng {
	struct eng_config cfg; /* the shards point at this copy */
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
	e->nshards = cfg->shards ? cfg->shards : 1;
	e->shards = calloc(e->nshards, sizeof(*e->shards));
	e->rings = calloc(e->nshards, sizeof(*e->rings));
	if (!e->shards || !e->rings) {
		eng_destroy(e);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < e->nshards; i++) {
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
		ADD(ring_waits);
		ADD(conns_open);
		ADD(conns_total);
		ADD(refused);
		ADD(bytes_in);
		ADD(bytes_out);
		ADD(upstream_reused);
		ADD(upstream_connects);
#undef ADD
	}
}
