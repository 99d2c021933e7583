/* SPDX-License-Identifier: MIT */
/* The flow ring: fill and drain, wrap-around, full ring, largest record, and
 * a two-thread stress run that checks order and content. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include "sink/frq.h"

#define CAP (64 * 1024)

static void fill(uint8_t *p, size_t len, uint64_t seq)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seq * 31 + i);
}

static bool check(const uint8_t *p, size_t len, uint64_t seq)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)(seq * 31 + i))
			return false;
	return true;
}

static void put(struct frq *q, size_t len, uint64_t seq)
{
	uint8_t *p = frq_reserve(q, len);

	cr_assert_not_null(p, "reserve %zu (seq %lu)", len, (unsigned long)seq);
	fill(p, len, seq);
	frq_commit(q, len);
}

static void get(struct frq *q, size_t want, uint64_t seq)
{
	size_t len = 0;
	const uint8_t *p = frq_peek(q, &len);

	cr_assert_not_null(p, "peek seq %lu", (unsigned long)seq);
	cr_assert_eq(len, want);
	cr_assert(check(p, len, seq), "content of seq %lu", (unsigned long)seq);
	frq_release(q);
}

Test(frq, create_rounds_capacity)
{
	struct frq *q = frq_create(1000);

	cr_assert_not_null(q);
	cr_assert_eq(frq_max_record(q), CAP / 2 - 8);
	frq_destroy(q);
	q = frq_create(100 * 1024);
	cr_assert_eq(frq_max_record(q), 64 * 1024 - 8);
	frq_destroy(q);
}

Test(frq, fill_and_drain)
{
	struct frq *q = frq_create(CAP);
	size_t len;
	uint64_t n = 0;

	cr_assert_null(frq_peek(q, &len));
	while (frq_reserve(q, 100)) {
		put(q, 100, n);
		n++;
	}
	/* 100 bytes take 8 + 104 */
	cr_assert_eq(n, CAP / 112);
	cr_assert_eq(frq_used(q), n * 112);
	for (uint64_t i = 0; i < n; i++)
		get(q, 100, i);
	cr_assert_null(frq_peek(q, &len));
	cr_assert_eq(frq_used(q), 0);
	frq_destroy(q);
}

Test(frq, reserve_does_not_publish)
{
	struct frq *q = frq_create(CAP);
	size_t len;

	cr_assert_not_null(frq_reserve(q, 10));
	cr_assert_null(frq_peek(q, &len));
	cr_assert_eq(frq_used(q), 0);
	frq_commit(q, 10);
	cr_assert_not_null(frq_peek(q, &len));
	cr_assert_eq(len, 10);
	frq_destroy(q);
}

Test(frq, zero_length_and_short_commit)
{
	struct frq *q = frq_create(CAP);
	uint8_t *p;

	p = frq_reserve(q, 0);
	cr_assert_not_null(p);
	frq_commit(q, 0);
	p = frq_reserve(q, 1000);
	fill(p, 37, 5);
	frq_commit(q, 37);
	get(q, 0, 0);
	get(q, 37, 5);
	cr_assert_eq(frq_used(q), 0);
	frq_destroy(q);
}

Test(frq, wrap_around_varied_sizes)
{
	struct frq *q = frq_create(CAP);
	uint64_t wseq = 0, rseq = 0;
	size_t lens[64];

	/* Keep the ring about half full while sizes vary, for many laps. */
	for (int round = 0; round < 20000; round++) {
		size_t len = (size_t)((round * 2654435761u) % 9000) + 1;

		while (!frq_reserve(q, len)) {
			cr_assert_lt(rseq, wseq, "ring empty but reserve failed");
			get(q, lens[rseq % 64], rseq);
			rseq++;
		}
		cr_assert_lt(wseq - rseq, 64);
		put(q, len, wseq);
		lens[wseq % 64] = len;
		wseq++;
		if (round % 3 == 0 && rseq < wseq) {
			get(q, lens[rseq % 64], rseq);
			rseq++;
		}
	}
	while (rseq < wseq) {
		get(q, lens[rseq % 64], rseq);
		rseq++;
	}
	cr_assert_eq(frq_used(q), 0);
	frq_destroy(q);
}

Test(frq, full_ring_returns_null)
{
	struct frq *q = frq_create(CAP);

	put(q, CAP / 2 - 8, 1);
	cr_assert_null(frq_reserve(q, CAP / 2 - 8 + 1), "never fits");
	put(q, CAP / 2 - 16, 2);
	cr_assert_null(frq_reserve(q, 1), "full");
	get(q, CAP / 2 - 8, 1);
	cr_assert_not_null(frq_reserve(q, 1));
	frq_destroy(q);
}

Test(frq, max_record_fits_at_any_offset)
{
	struct frq *q = frq_create(CAP);
	size_t max = frq_max_record(q);

	/* Move the (empty) ring through every 8-byte offset. */
	for (uint64_t i = 0; i < CAP / 8; i++) {
		put(q, (i * 13) % 200, i);
		get(q, (i * 13) % 200, i);
		put(q, max, i + 1);
		get(q, max, i + 1);
	}
	frq_destroy(q);
}

/* --- two threads -------------------------------------------------------- */

#define STRESS_N 1000000u

static size_t stress_len(uint64_t seq)
{
	return 8 + (size_t)((seq * 7919) % 500);
}

static void *producer(void *arg)
{
	struct frq *q = arg;

	for (uint64_t seq = 0; seq < STRESS_N; seq++) {
		size_t len = stress_len(seq);
		uint8_t *p;

		while (!(p = frq_reserve(q, len)))
			sched_yield();
		memcpy(p, &seq, 8);
		fill(p + 8, len - 8, seq);
		frq_commit(q, len);
	}
	return NULL;
}

Test(frq, two_thread_stress, .timeout = 120)
{
	struct frq *q = frq_create(CAP);
	pthread_t t;
	uint64_t want = 0;

	cr_assert_eq(pthread_create(&t, NULL, producer, q), 0);
	while (want < STRESS_N) {
		size_t len;
		const uint8_t *p = frq_peek(q, &len);
		uint64_t seq;

		if (!p) {
			sched_yield();
			continue;
		}
		cr_assert_eq(len, stress_len(want));
		memcpy(&seq, p, 8);
		cr_assert_eq(seq, want);
		cr_assert(check(p + 8, len - 8, seq), "content %lu",
			  (unsigned long)seq);
		frq_release(q);
		want++;
	}
	pthread_join(t, NULL);
	cr_assert_eq(frq_used(q), 0);
	frq_destroy(q);
}
