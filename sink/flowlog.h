/* SPDX-License-Identifier: MIT */
/* The flow log: its file format (FLOWLOG.md), the writer thread that drains
 * every shard's ring into it (and/or prints flows mitmdump-style), and the
 * reader used by `ringcap read`. */
#ifndef RC_SINK_FLOWLOG_H
#define RC_SINK_FLOWLOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/rc_err.h"
#include "sink/flow.h"
#include "sink/frq.h"

#define FLOWLOG_MAGIC "RINGCAP\0FLOWLOG\n" /* 16 bytes */
#define FLOWLOG_VERSION 1

struct flowlog_writer_opts {
	const char *path;   /* flow log file, or NULL: no file */
	FILE *print;        /* print one line per flow here (stdout), or NULL */
	int print_verbosity; /* 0: one line; >= 1: add headers */
};

struct flowlog_stats {
	uint64_t records; /* records taken out of the rings */
	uint64_t bytes;   /* bytes written to the file (framing included) */
	int error;        /* first write error (negative errno), 0 if none */
	uint64_t dropped; /* records taken but not written (after an error) */
};

struct flowlog_writer;

/* Start the writer thread over |rings| (owned by the caller, who must keep
 * them alive until flowlog_writer_stop() returns). Creates/truncates the
 * file and writes the header before returning. Returns 0 and *out, or a
 * negative errno (the file could not be created: say so to the user). */
int flowlog_writer_start(struct flowlog_writer **out,
			 const struct flowlog_writer_opts *opts,
			 struct frq *const *rings, unsigned nrings)
	WUNRES NONNULL(1, 2, 3);

/* Snapshot of the counters; safe from any thread. */
void flowlog_writer_stats(struct flowlog_writer *w, struct flowlog_stats *st)
	NONNULL(1, 2);

/* Drain every ring until empty (producers must have stopped), flush and
 * fsync the file, join the thread and free |w|. Returns 0 or the first
 * write error. */
int flowlog_writer_stop(struct flowlog_writer *w) NONNULL(1);

/* Reader. */
struct flowlog_reader;

/* Open |path| and check its header. Returns 0 and *out, a negative errno,
 * RC_SINK_BAD_MAGIC or RC_SINK_BAD_VERSION. */
int flowlog_open(struct flowlog_reader **out, const char *path)
	WUNRES NONNULL(1, 2);

/* Next record: *buf and *len point into reader memory valid until the next
 * call. Returns 1 for a record, 0 at a clean end of file, RC_SINK_TRUNCATED
 * when the file ends inside a record (kill -9 mid-write: everything before
 * was returned intact), RC_SINK_CORRUPT for a bad checksum or length. */
int flowlog_next(struct flowlog_reader *r, const void **buf, size_t *len)
	NONNULL(1, 2, 3);

void flowlog_close(struct flowlog_reader *r);

/* Printers shared by `ringcap read` and the live writer. */
/* One line in mitmdump's style; verbosity >= 1 adds request and response
 * headers. */
void flow_print_line(FILE *out, const struct flow *f, int verbosity)
	NONNULL(1, 2);
/* One JSON object on one line, everything recorded, bodies in base64. */
void flow_print_json(FILE *out, const struct flow *f) NONNULL(1, 2);

#endif
