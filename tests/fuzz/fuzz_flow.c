/* SPDX-License-Identifier: MIT */
/* libFuzzer target for sink/flow: flow_decode on arbitrary bytes; anything
 * it accepts must re-encode to a stable form and print without trouble. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/flowlog.h"

#define CHECK(x)                   \
	do {                       \
		if (!(x))          \
			abort();   \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *encode(const struct flow *f, size_t *n)
{
	uint8_t *p;

	*n = flow_encoded_size(f);
	p = malloc(*n);
	CHECK(p);
	CHECK(flow_encode(f, p, *n) == (ssize_t)*n);
	if (*n)
		CHECK(flow_encode(f, p, *n - 1) < 0);
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *sink;
	msgpack_zone zone;
	struct flow f, g;
	uint8_t *a, *b;
	size_t na, nb;

	if (!sink)
		sink = fopen("/dev/null", "w");
	msgpack_zone_init(&zone, 4096);
	if (flow_decode(data, size, &zone, &f) == 0) {
		flow_print_line(sink, &f, 1);
		flow_print_json(sink, &f);
		/* decode(encode(f)) encodes to the same bytes again */
		a = encode(&f, &na);
		CHECK(flow_decode(a, na, &zone, &g) == 0);
		b = encode(&g, &nb);
		CHECK(na == nb && memcmp(a, b, na) == 0);
		free(a);
		free(b);
	}
	msgpack_zone_destroy(&zone);
	return 0;
}
