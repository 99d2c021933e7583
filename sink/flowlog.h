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

enum flowlog_compress {
	FLOWLOG_COMPRESS_NONE,
	FLOWLOG_COMPRESS_ZSTD,
	FLOWLOG_COMPRESS_COUNT
};

/* "none", "zstd"; never NULL. */
const char *flowlog_compress_name(enum flowlog_compress c);

struct flowlog_writer_opts {
	const char *path;   /* flow log file, or NULL: no file */
	FILE *print;        /* print one line per flow here (stdout), or NULL */
	int print_verbosity; /* 0: one line; >= 1: add headers */
	/* Long recordings (FLOWLOG.md, "Segments"). With either limit set,
	 * |path| names a set of segments path.000001, path.000002, ...; the
	 * live one is path.NNNNNN.part until it is closed. */
	uint64_t rotate_size;        /* bytes per segment, 0: no limit */
	uint64_t rotate_interval_ms; /* segment age, 0: no limit */
	enum flowlog_compress compress;
	int compress_level;          /* zstd level, 0: FLOWLOG_ZSTD_LEVEL */
};

#define FLOWLOG_ZSTD_LEVEL 3

struct flowlog_stats {
	uint64_t records; /* records taken out of the rings */
	uint64_t bytes;   /* bytes written to the file(s) (after compression) */
	uint64_t bytes_raw; /* flow log bytes before compression (= bytes if none) */
	uint64_t segments; /* segments closed so far (with rotation) */
	int error;        /* first write error (negative errno), 0 if none */
	uint64_t dropped; /* records taken but not written (after an error) */
};

struct flowlog_writer;

/* Start the writer thread over |rings| (owned by the caller, who must keep
 * them alive until flowlog_writer_stop() returns). Creates/truncates the
 * file (with rotation: the first segment, numbered after the highest one
 * already there) and writes the header before returning. Returns 0 and
 * *out, -EINVAL for a bad compression choice or level, -ENOMEM, or a
 * negative errno (the file could not be created: say so to the user). */
int flowlog_writer_start(struct flowlog_writer **out,
			 const struct flowlog_writer_opts *opts,
			 struct frq *const *rings, unsigned nrings)
	WUNRES NONNULL(1, 2, 3);

/* Snapshot of the counters; safe from any thread. */
void flowlog_writer_stats(struct flowlog_writer *w, struct flowlog_stats *st)
	NONNULL(1, 2);

/* Drain every ring until empty (producers must have stopped), flush and
 * fsync the file (the last segment is closed and renamed), join the thread
 * and free |w|. Returns 0 or the first write error. */
int flowlog_writer_stop(struct flowlog_writer *w) NONNULL(1);

/* Reader. */
struct flowlog_reader;

/* Open |path| and check its header. The file may be plain or zstd
 * compressed (told by its first bytes, not its name). Returns 0 and *out,
 * a negative errno, RC_SINK_BAD_MAGIC or RC_SINK_BAD_VERSION. */
int flowlog_open(struct flowlog_reader **out, const char *path)
	WUNRES NONNULL(1, 2);

/* Open |path| to follow it while a writer appends to it: the header is not
 * checked yet (it may not be there), and flowlog_next() returns -EAGAIN
 * instead of ending when no whole record is there yet; nothing is consumed
 * then, so call it again once the file has grown. Returns 0 and *out or a
 * negative errno. */
int flowlog_open_follow(struct flowlog_reader **out, const char *path)
	WUNRES NONNULL(1, 2);

/* The followed file will not grow any more: from now on flowlog_next()
 * returns what is left, then ends as for a file opened with flowlog_open()
 * (RC_SINK_BAD_MAGIC if the header never came). */
void flowlog_stop_following(struct flowlog_reader *r) NONNULL(1);

/* Next record: *buf and *len point into reader memory valid until the next
 * call. Returns 1 for a record, 0 at a clean end of file, RC_SINK_TRUNCATED
 * when the file ends inside a record (kill -9 mid-write: everything before
 * was returned intact) or, compressed, inside a zstd frame,
 * RC_SINK_CORRUPT for a bad checksum or length or bad zstd data, a
 * negative errno for a read error; when following, -EAGAIN (see above) or
 * RC_SINK_BAD_MAGIC / RC_SINK_BAD_VERSION once the header has come. The
 * end state sticks. */
int flowlog_next(struct flowlog_reader *r, const void **buf, size_t *len)
	NONNULL(1, 2, 3);

/* Whether the file is zstd compressed (known after the first bytes). */
bool flowlog_compressed(const struct flowlog_reader *r) NONNULL(1);

void flowlog_close(struct flowlog_reader *r);

/* A sequence of flow logs read as one stream, for `ringcap read`: each
 * argument is a file, a directory (its flow logs in order: segments of a
 * set by number, sets and other logs by name; dot-files and files that are
 * not flow logs are skipped) or the FILE given to `ringcap -w` with
 * rotation (its segments FILE.NNNNNN[.part], in order). */
struct flowlog_set;

/* Expand |paths| (|n| >= 1; not copied beyond this call). With |follow|,
 * the last file is followed as it grows and, when it is a segment, into
 * the next segment once that appears; an argument that does not exist yet
 * is waited for. Returns 0 and *out, or -ENOMEM. Files that cannot be
 * opened are reported by flowlog_set_next(). */
int flowlog_set_open(struct flowlog_set **out, char *const *paths,
		     unsigned n, bool follow) WUNRES NONNULL(1, 2);

/* Next record of the sequence (*buf, *len as flowlog_next()). Returns 1,
 * 0 when every file has been read (never when following), -EAGAIN when
 * following and nothing new is there yet (sleep a little and call again),
 * or the way the current file ended badly (RC_SINK_TRUNCATED,
 * RC_SINK_CORRUPT, RC_SINK_BAD_MAGIC, RC_SINK_BAD_VERSION, a negative
 * errno from opening or reading): flowlog_set_path() and
 * flowlog_set_records() then describe that file, and the next call goes on
 * with the next file. */
int flowlog_set_next(struct flowlog_set *s, const void **buf, size_t *len)
	NONNULL(1, 2, 3);

/* The file being read (or that just ended), and how many records it gave;
 * NULL / 0 before the first. Valid until the next flowlog_set_next(). */
const char *flowlog_set_path(const struct flowlog_set *s) NONNULL(1);
unsigned long flowlog_set_records(const struct flowlog_set *s) NONNULL(1);

void flowlog_set_close(struct flowlog_set *s);

/* Printers shared by `ringcap read` and the live writer. */
/* One line in mitmdump's style; verbosity >= 1 adds request and response
 * headers. */
void flow_print_line(FILE *out, const struct flow *f, int verbosity)
	NONNULL(1, 2);
/* One JSON object on one line, everything recorded, bodies in base64. */
void flow_print_json(FILE *out, const struct flow *f) NONNULL(1, 2);

#endif
