/* SPDX-License-Identifier: MIT */
/* The flow ring: one lock-free single-producer single-consumer byte ring
 * per shard. The shard reserves space, encodes a record straight into it,
 * and commits; the writer thread peeks and releases. No locks, no malloc
 * after creation. Records never wrap: they are contiguous in memory. */
#ifndef RC_SINK_FRQ_H
#define RC_SINK_FRQ_H

#include <stddef.h>
#include <stdint.h>

#include "common/rc_err.h"

struct frq;

/* Create a ring of |capacity| bytes (rounded up to a power of two, at least
 * 64 KiB). Returns NULL on allocation failure. */
struct frq *frq_create(size_t capacity) WUNRES;
void frq_destroy(struct frq *q);

/* Largest record the ring can ever hold. */
size_t frq_max_record(const struct frq *q) NONNULL(1);

/* Producer: contiguous space for a record of |len| bytes, or NULL when the
 * ring has no room right now (or never: len > frq_max_record()). Does not
 * publish anything; follow with frq_commit(q, len) with the same len (a
 * smaller len is accepted too, a larger one aborts). A reservation may also
 * be abandoned without commit: the next reserve reuses the space.
 * The consumer is never signalled: the writer thread polls (<= 5 ms). */
void *frq_reserve(struct frq *q, size_t len) NONNULL(1);
void frq_commit(struct frq *q, size_t len) NONNULL(1);

/* Consumer: the oldest committed record and its length, or NULL if empty.
 * The pointer stays valid until frq_release(). */
const void *frq_peek(struct frq *q, size_t *len) NONNULL(1, 2);
void frq_release(struct frq *q) NONNULL(1);

/* Bytes currently in use (approximate when read from the other thread). */
size_t frq_used(const struct frq *q) NONNULL(1);

#endif
