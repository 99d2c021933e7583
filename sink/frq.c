/* SPDX-License-Identifier: MIT */
/* The flow ring between one shard (producer) and the writer thread
 * (consumer): a lock-free SPSC byte ring of contiguous, length-prefixed
 * records. Positions run freely (64-bit) and are masked on use. */
#include "sink/frq.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define FRQ_MIN_CAPACITY ((size_t)64 * 1024)
#define HDR 8u                  /* length word before every record */
#define WRAP_MARK UINT64_MAX    /* length word: "next record is at 0" */
#define CACHELINE 64

/* Ring layout: [u64 len][payload, padded to 8] ... Every record starts on an
 * 8-byte boundary, so there is always room for a length word (or a wrap
 * marker) before the end of the buffer. */
struct frq {
	/* producer side: head is published, the rest is private */
	alignas(CACHELINE) _Atomic uint64_t head;
	uint64_t tail_cache;   /* last tail the producer saw */
	uint64_t res_pos;      /* where the reserved record's header goes */
	size_t res_len;        /* reserved payload length */
	bool res_wrap;         /* a wrap marker goes at head first */

	/* consumer side */
	alignas(CACHELINE) _Atomic uint64_t tail;
	uint64_t head_cache;   /* last head the consumer saw */
	uint64_t peek_next;    /* tail after the peeked record, 0 if none */
	bool peeked;

	/* shared, read-only after creation */
	alignas(CACHELINE) size_t cap;
	size_t mask;
	uint8_t *buf;          /* owned; cap bytes, 64-byte aligned */
};

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

struct frq *frq_create(size_t capacity)
{
	struct frq *q;
	size_t cap = FRQ_MIN_CAPACITY;

	while (cap < capacity) {
		if (cap > SIZE_MAX / 4)
			return NULL;
		cap <<= 1;
	}
	q = aligned_alloc(CACHELINE, sizeof(*q)); /* a multiple of 64 */
	if (!q)
		return NULL;
	memset(q, 0, sizeof(*q));
	q->buf = aligned_alloc(CACHELINE, cap);
	if (!q->buf) {
		free(q);
		return NULL;
	}
	q->cap = cap;
	q->mask = cap - 1;
	atomic_init(&q->head, 0);
	atomic_init(&q->tail, 0);
	return q;
}

void frq_destroy(struct frq *q)
{
	if (!q)
		return;
	free(q->buf);
	free(q);
}

size_t frq_max_record(const struct frq *q)
{
	return q->cap / 2 - HDR;
}

void *frq_reserve(struct frq *q, size_t len)
{
	uint64_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
	size_t off = head & q->mask;
	size_t need, total;
	bool wrap;

	if (len > frq_max_record(q))
		return NULL;
	need = HDR + pad8(len);
	wrap = need > q->cap - off;
	total = wrap ? (q->cap - off) + need : need;
	if (total > q->cap - (head - q->tail_cache)) {
		q->tail_cache = atomic_load_explicit(&q->tail,
						     memory_order_acquire);
		if (total > q->cap - (head - q->tail_cache))
			return NULL;
	}
	q->res_wrap = wrap;
	q->res_pos = wrap ? head + (q->cap - off) : head;
	q->res_len = len;
	return q->buf + (q->res_pos & q->mask) + HDR;
}

void frq_commit(struct frq *q, size_t len)
{
	uint64_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
	uint64_t v = len;

	/* A shorter commit than the reservation is fine; never longer. */
	if (len > q->res_len)
		abort();
	if (q->res_wrap) {
		uint64_t mark = WRAP_MARK;

		memcpy(q->buf + (head & q->mask), &mark, HDR);
	}
	memcpy(q->buf + (q->res_pos & q->mask), &v, HDR);
	q->res_len = 0;
	atomic_store_explicit(&q->head, q->res_pos + HDR + pad8(len),
			      memory_order_release);
}

const void *frq_peek(struct frq *q, size_t *len)
{
	uint64_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
	uint64_t v;

	if (tail == q->head_cache) {
		q->head_cache = atomic_load_explicit(&q->head,
						     memory_order_acquire);
		if (tail == q->head_cache)
			return NULL;
	}
	memcpy(&v, q->buf + (tail & q->mask), HDR);
	if (v == WRAP_MARK) {
		tail += q->cap - (tail & q->mask);
		memcpy(&v, q->buf + (tail & q->mask), HDR);
	}
	q->peeked = true;
	q->peek_next = tail + HDR + pad8(v);
	*len = v;
	return q->buf + (tail & q->mask) + HDR;
}

void frq_release(struct frq *q)
{
	if (!q->peeked)
		return;
	q->peeked = false;
	atomic_store_explicit(&q->tail, q->peek_next, memory_order_release);
}

size_t frq_used(const struct frq *q)
{
	uint64_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);
	uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);

	return head - tail;
}
