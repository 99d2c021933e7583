/* SPDX-License-Identifier: MIT */
/* Exporters: turn decoded flow records (sink/flow.h) into formats other
 * tools read — HAR 1.2 for browser DevTools (export_har.c) and mitmproxy's
 * own flow file, a sequence of tnetstrings (export_mitm.c). Both stream:
 * one flow in, its bytes out, nothing kept between flows but counters. */
#ifndef RC_SINK_EXPORT_H
#define RC_SINK_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/rc_err.h"
#include "sink/flow.h"

/* What an exporter did with one flow (non-negative returns). */
enum exp_result {
	EXP_WRITTEN,         /* the flow is in the output */
	EXP_SKIP_TCP,        /* the format has no place for a raw tunnel */
	EXP_SKIP_NO_REQUEST, /* nothing was read (client sent garbage) */
	EXP_RESULT_COUNT
};
const char *exp_result_str(enum exp_result r);

/* ---- tnetstring encoder ----------------------------------------------
 * tnetstrings (tnetstrings.info, with mitmproxy's ';' tag for unicode
 * text) are "LEN:DATA" plus a one-byte type tag. Debian packages no C
 * library for them, and the format is a page long, so this is written
 * here. Values are appended to a growable buffer; containers are opened
 * and closed, and on close their payload is moved right to make room for
 * the length prefix (lengths are decimal without padding, so they cannot
 * be reserved in advance). Errors are sticky: build a whole value, then
 * check tns_status() once. */
#define TNS_MAX_DEPTH 16

struct tns {
	uint8_t *p;   /* owned; freed by tns_free() */
	size_t len;
	size_t cap;
	size_t open[TNS_MAX_DEPTH]; /* payload offsets of open containers */
	char kind[TNS_MAX_DEPTH];   /* their tags: '}' or ']' */
	unsigned depth;
	int err; /* first error: -ENOMEM, -EINVAL (bad nesting) */
};

void tns_init(struct tns *t) NONNULL(1);
void tns_free(struct tns *t) NONNULL(1);
/* Forget the content (and any error), keep the memory. */
void tns_reset(struct tns *t) NONNULL(1);

void tns_null(struct tns *t) NONNULL(1);
void tns_bool(struct tns *t, bool v) NONNULL(1);
void tns_int(struct tns *t, int64_t v) NONNULL(1);
/* As Python's repr(): the shortest text that reads back as |v|, with ".0"
 * added to integral values ("946681200.0"). */
void tns_float(struct tns *t, double v) NONNULL(1);
/* Bytes, tag ','. */
void tns_bytes(struct tns *t, const void *p, size_t n) NONNULL(1);
/* Text, tag ';' (Python str). mitmproxy decodes it as UTF-8 and fails the
 * whole file on a bad sequence, so each byte that is not part of
 * well-formed UTF-8 is written as U+FFFD. */
void tns_str(struct tns *t, const void *p, size_t n) NONNULL(1);
void tns_cstr(struct tns *t, const char *s) NONNULL(1, 2);
/* Containers: dict entries are written as key, value, key, value... */
void tns_dict_begin(struct tns *t) NONNULL(1);
void tns_list_begin(struct tns *t) NONNULL(1);
/* Close the innermost open container (-EINVAL if none). */
void tns_end(struct tns *t) NONNULL(1);
/* 0, or the first error; -EINVAL also if a container is still open. */
int tns_status(const struct tns *t) NONNULL(1);

/* ---- mitmproxy flow file ---------------------------------------------
 * One tnetstring per flow: the get_state() dict of an HTTPFlow (http
 * flows) or a TCPFlow (tcp flows) in flow format version 17, the version
 * of mitmproxy 8.1.1 (which migrates older versions but refuses newer
 * ones). */
#define MITM_FLOW_FORMAT_VERSION 17

/* Encode |f| into |scratch| (reset first; the caller owns it and may reuse
 * it for every flow, so memory stays at the largest flow) and write it to
 * |out|. Returns EXP_WRITTEN, EXP_SKIP_NO_REQUEST for an http flow without
 * a request (mitmproxy has no such flow), -ENOMEM, or -EIO if writing
 * failed. */
int mitm_write_flow(FILE *out, struct tns *scratch, const struct flow *f)
	WUNRES NONNULL(1, 2, 3);

/* ---- HAR 1.2 ----------------------------------------------------------
 * A HAR file is one JSON object; it is written as a header, the entries as
 * flows arrive, and a trailer. */
struct har_writer {
	FILE *out;        /* not owned */
	uint64_t entries; /* entries written so far */
};

/* Start the document on |out|: log.version "1.2", creator ringcap
 * |creator_version|. Returns 0 or -EIO. */
int har_begin(struct har_writer *w, FILE *out, const char *creator_version)
	WUNRES NONNULL(1, 2, 3);

/* One entry for |f|. http flows with a request become entries (an error
 * flow gets status 0 and the error in response._error, as Chrome writes
 * failed requests); tcp flows return EXP_SKIP_TCP, flows without a request
 * EXP_SKIP_NO_REQUEST. Returns those, EXP_WRITTEN, or -EIO. */
int har_write_flow(struct har_writer *w, const struct flow *f)
	WUNRES NONNULL(1, 2);

/* Close the document and flush. Returns 0 or -EIO. */
int har_end(struct har_writer *w) WUNRES NONNULL(1);

#endif
