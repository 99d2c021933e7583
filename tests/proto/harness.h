/* SPDX-License-Identifier: MIT */
/* Helpers shared by the proto/ unit tests (Criterion). Header-only: each
 * test is its own executable. */
#ifndef RC_TESTS_PROTO_HARNESS_H
#define RC_TESTS_PROTO_HARNESS_H
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Plain static functions, as each test had them (a test uses only some:
 * hence unused). */
#define HARNESS_FN static __attribute__((unused))

/* ---- A buffer whose end touches a no-access page ---- */

/* Parsers are fed input that ends right before a PROT_NONE page, so any
 * read past the end crashes the test (see STYLE.md, "parser tests that
 * cannot be fooled"). */
struct guard {
	uint8_t *map;
	size_t size; /* accessible bytes */
	size_t total;
};

HARNESS_FN void guard_init(struct guard *g, size_t maxlen)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);

	g->size = (maxlen + ps - 1) / ps * ps;
	if (g->size == 0)
		g->size = ps;
	g->total = g->size + ps;
	g->map = mmap(NULL, g->total, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(g->map != MAP_FAILED);
	cr_assert(mprotect(g->map + g->size, ps, PROT_NONE) == 0);
}

/* Copy |n| bytes so that the last one sits right before the guard page. */
HARNESS_FN void *guard_put(struct guard *g, const void *s, size_t n)
{
	cr_assert(n <= g->size);
	uint8_t *p = g->map + g->size - n;
	memcpy(p, s, n);
	return p;
}

HARNESS_FN void guard_free(struct guard *g)
{
	munmap(g->map, g->total);
}

/* ---- A growable, NUL-terminated text buffer ---- */

struct dbuf {
	char *p;
	size_t n, cap;
};

HARNESS_FN void db_add(struct dbuf *b, const void *d, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t nc = b->cap ? b->cap : 256;
		while (nc < b->n + n + 1)
			nc *= 2;
		b->p = realloc(b->p, nc);
		cr_assert(b->p);
		b->cap = nc;
	}
	if (n)
		memcpy(b->p + b->n, d, n);
	b->n += n;
	b->p[b->n] = 0;
}

HARNESS_FN void db_str(struct dbuf *b, const char *s)
{
	db_add(b, s, strlen(s));
}

HARNESS_FN const char *db_s(struct dbuf *b)
{
	if (!b->p)
		db_add(b, "", 0);
	return b->p;
}

HARNESS_FN void db_free(struct dbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

#endif
