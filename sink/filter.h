/* SPDX-License-Identifier: MIT */
/* Filter expressions with mitmproxy 8.1.1's syntax and meaning
 * (mitmproxy/flowfilter.py): compiled once into a tree, evaluated on a
 * decoded flow record by `ringcap read`, the save filter in the shards and
 * later interception. See docs/FILTERS.md for the operators, how each maps
 * onto a ringcap flow, and where ringcap differs from mitmproxy. */
#ifndef RC_SINK_FILTER_H
#define RC_SINK_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/rc_err.h"
#include "sink/flow.h"

struct filter;
struct filter_scratch;

/* Compile |expr| (a NUL-terminated UTF-8 string). Returns 0 and *out (owned
 * by the caller, release with filter_free), RC_CFG_BAD_VALUE for a malformed
 * expression or regular expression, with a message naming the mistake and
 * its column (1-based, in characters) in err[0..err_len) ("~c: expected a
 * number at column 4"), or -ENOMEM. *out is NULL on failure. |err| may be
 * NULL when err_len is 0. The compiled filter is immutable: any number of
 * threads may match with it at once, each with its own scratch. */
int filter_compile(const char *expr, struct filter **out, char *err,
		   size_t err_len) WUNRES NONNULL(1, 2);

/* Free |f| (NULL is fine). Every scratch made for it must be freed first. */
void filter_free(struct filter *f);

/* Per-thread working memory for filter_match: regex match data and buffers
 * for the strings a flow is matched on (URL, header block, decoded body).
 * They grow to the largest flow seen, so matching does not allocate once
 * warm. Returns NULL when out of memory. Owned by the caller. */
struct filter_scratch *filter_scratch_new(const struct filter *f) NONNULL(1);
void filter_scratch_free(struct filter_scratch *scr);

/* Does |fl| match |f|? Never allocates in the steady state; never fails: a
 * regex that hits PCRE2's match or stack limit, or a buffer that cannot
 * grow, counts as "no match" and is counted in
 * filter_scratch_match_errors(). */
bool filter_match(const struct filter *f, const struct flow *fl,
		  struct filter_scratch *scr) NONNULL(1, 2, 3);

/* Regex evaluations that failed (limits, out of memory) with |scr|. */
uint64_t filter_scratch_match_errors(const struct filter_scratch *scr)
	NONNULL(1);

/* The expression as given to filter_compile. */
const char *filter_expr(const struct filter *f) NONNULL(1);

/* Print the tree as mitmproxy's _Token.dump() does (one node per line, tab
 * indented, "FAnd", "FUrlpattern", ...): lets tests compare the parse with
 * mitmproxy's own. */
void filter_dump(FILE *out, const struct filter *f) NONNULL(1, 2);

#endif
