/* SPDX-License-Identifier: MIT */
/* The end of a flow's path: the writer thread drains every shard's ring into
 * the flow log (FLOWLOG.md) — rotated into segments and zstd-compressed when
 * asked — and/or prints it; the reader walks flow logs back, record by
 * record, for `ringcap read` (plain or compressed, whole or as they grow). */
#include "sink/flowlog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "common/rc_time.h"

#define HEADER_SIZE 24                 /* magic, version, flags */
#define FRAME_SIZE 8                   /* u32 length, u32 crc32 */
#define MAX_RECORD ((size_t)1 << 30)   /* larger is corruption */
#define WBUF_SIZE ((size_t)1 << 20)
#define BATCH 256                      /* records per ring per pass */
#define FLUSH_AT ((size_t)256 << 10)
#define BIG_RECORD ((size_t)64 << 10)     /* written from the ring directly */
#define SLEEP_MIN_NS 250000L
#define SLEEP_MAX_NS 8000000L
#define ZBUF_SIZE ((size_t)256 << 10)     /* compressed output staging */
#define ZFRAME_MAX ((uint64_t)4 << 20)    /* input bytes per zstd frame */
#define ZFRAME_MS 2000                    /* age of a zstd frame */
#define ZSYNC_MS 250                      /* quiet: make it readable */
#define SEG_DIGITS 6                      /* path.000001 */
#define ZFRAME_PREFIX 5   /* a frame's first bytes tell its header size */

static const uint8_t zstd_magic[4] = {0x28, 0xb5, 0x2f, 0xfd};

const char *flowlog_compress_name(enum flowlog_compress c)
{
	static const char *const names[FLOWLOG_COMPRESS_COUNT] = {
		[FLOWLOG_COMPRESS_NONE] = "none",
		[FLOWLOG_COMPRESS_ZSTD] = "zstd",
	};

	return (unsigned)c < FLOWLOG_COMPRESS_COUNT ? names[c] : "?";
}

/* How the staged bytes leave: as they come, with everything readable so
 * far (zstd: end the block), or closing the zstd frame. Plain files treat
 * all three alike. */
enum out_mode { OUT_MORE, OUT_SYNC, OUT_END };

struct flowlog_writer {
	pthread_t thread;
	struct frq **rings;         /* owned array; the rings are the caller's */
	unsigned nrings;
	int fd;                     /* owned; -1: no file (or between segments) */
	uint8_t *buf;               /* owned; WBUF_SIZE bytes, framed records */
	size_t buf_len;
	FILE *print;                /* caller's stream, or NULL */
	int verbosity;
	msgpack_zone zone;          /* reused for every printed record */
	/* segments */
	char *path;                 /* owned copy of opts->path, or NULL */
	char *live;                 /* owned; name of the file being written */
	bool rotating;              /* path is a prefix of numbered segments */
	uint64_t rotate_size;
	uint64_t rotate_ms;
	unsigned long seg;          /* number of the open segment */
	uint64_t seg_bytes;         /* on disk, this segment */
	uint64_t seg_records;
	uint64_t seg_start;         /* rc_mono_ms() when opened */
	uint64_t now;               /* rc_mono_ms() of this pass */
	/* compression */
	ZSTD_CCtx *zc;              /* owned; NULL: plain */
	uint8_t *zbuf;              /* owned; ZBUF_SIZE bytes */
	uint64_t zframe_in;         /* input bytes in the open frame */
	uint64_t zframe_start;      /* when its first byte went in */
	bool zdirty;                /* input since the last sync */
	uint64_t zsync;             /* when the last sync or frame end was */
	atomic_bool stop;
	_Atomic uint64_t records;
	_Atomic uint64_t bytes;
	_Atomic uint64_t bytes_raw;
	_Atomic uint64_t segments;
	_Atomic uint64_t dropped;
	atomic_int error;
};

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

static uint32_t get_le32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t w = write(fd, b, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static void set_error(struct flowlog_writer *w, int err)
{
	int zero = 0;

	atomic_compare_exchange_strong(&w->error, &zero, err);
}

static bool failed(struct flowlog_writer *w)
{
	return atomic_load_explicit(&w->error, memory_order_relaxed) != 0;
}

static void count_out(struct flowlog_writer *w, size_t n)
{
	w->seg_bytes += n;
	atomic_fetch_add_explicit(&w->bytes, n, memory_order_relaxed);
}

static void count_raw(struct flowlog_writer *w, size_t n)
{
	atomic_fetch_add_explicit(&w->bytes_raw, n, memory_order_relaxed);
}

/* Feed |n| bytes to the compressor and write what comes out. */
static void z_put(struct flowlog_writer *w, const void *p, size_t n,
		  enum out_mode mode)
{
	static const ZSTD_EndDirective dir[] = {ZSTD_e_continue, ZSTD_e_flush,
						ZSTD_e_end};
	ZSTD_inBuffer in = {p, n, 0};

	if (failed(w))
		return;
	if (n && !w->zframe_in)
		w->zframe_start = w->now;
	w->zframe_in += n;
	w->zdirty |= n > 0;
	for (;;) {
		ZSTD_outBuffer out = {w->zbuf, ZBUF_SIZE, 0};
		size_t left = ZSTD_compressStream2(w->zc, &out, &in, dir[mode]);
		int rc;

		if (ZSTD_isError(left)) {
			set_error(w, -EIO);
			return;
		}
		if (out.pos) {
			rc = write_all(w->fd, w->zbuf, out.pos);
			if (rc) {
				set_error(w, rc);
				return;
			}
			count_out(w, out.pos);
		}
		if (mode == OUT_MORE ? in.pos == in.size : left == 0)
			break;
	}
	if (mode != OUT_MORE) {
		w->zdirty = false;
		w->zsync = w->now;
	}
	if (mode == OUT_END)
		w->zframe_in = 0;
}

/* Send the staged records on: to the file, or through the compressor. */
static void flush(struct flowlog_writer *w, enum out_mode mode)
{
	int rc;

	if (w->fd < 0)
		return;
	if (w->zc) {
		/* a sync only if something came since the last; an end only
		 * if a frame is open (a frame opens with its first byte) */
		if (w->buf_len || (mode == OUT_SYNC && w->zdirty) ||
		    (mode == OUT_END && w->zframe_in))
			z_put(w, w->buf, w->buf_len, mode);
		w->buf_len = 0;
		return;
	}
	if (!w->buf_len)
		return;
	rc = failed(w) ? 0 : write_all(w->fd, w->buf, w->buf_len);
	if (rc)
		set_error(w, rc);
	else if (!failed(w))
		count_out(w, w->buf_len);
	w->buf_len = 0;
}

/* A large record goes straight from the ring to the file (or compressor),
 * framing and payload in one writev(2), without passing through the
 * buffer. */
static void write_big(struct flowlog_writer *w, const uint8_t *frame,
		      const void *p, size_t len)
{
	struct iovec iov[2] = {{(void *)frame, FRAME_SIZE}, {(void *)p, len}};
	struct iovec *v = iov;
	int cnt = 2;

	flush(w, OUT_MORE);
	if (failed(w))
		return;
	if (w->zc) {
		z_put(w, frame, FRAME_SIZE, OUT_MORE);
		z_put(w, p, len, OUT_MORE);
		return;
	}
	while (cnt) {
		ssize_t n = writev(w->fd, v, cnt);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			set_error(w, n < 0 ? -errno : -EIO);
			return;
		}
		while (cnt && (size_t)n >= v->iov_len) {
			n -= (ssize_t)v->iov_len;
			v++;
			cnt--;
		}
		if (cnt) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= (size_t)n;
		}
	}
	count_out(w, FRAME_SIZE + len);
}

/* --- segments ------------------------------------------------------------ */

/* "name.000042" or "name.000042.part": the length of "name" and 42.
 * Returns false for any other name. */
static bool seg_parse(const char *name, size_t *prefix_len,
		      unsigned long *num, bool *part)
{
	size_t n = strlen(name), d = 0;

	*part = n > 5 && !strcmp(name + n - 5, ".part");
	if (*part)
		n -= 5;
	while (d < n && name[n - 1 - d] >= '0' && name[n - 1 - d] <= '9')
		d++;
	if (d < SEG_DIGITS || d > 18 || d + 1 >= n || name[n - 1 - d] != '.')
		return false;
	*prefix_len = n - 1 - d;
	*num = strtoul(name + n - d, NULL, 10);
	return true;
}

static char *seg_name(const char *prefix, unsigned long num, bool part)
{
	char *s;

	if (asprintf(&s, "%s.%0*lu%s", prefix, SEG_DIGITS, num,
		     part ? ".part" : "") < 0)
		return NULL;
	return s;
}

/* Split |path| into its directory ("." if none) and file name. */
static int split_path(const char *path, char **dir, const char **base)
{
	const char *slash = strrchr(path, '/');

	*base = slash ? slash + 1 : path;
	*dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path))
		     : strdup(".");
	return *dir ? 0 : -ENOMEM;
}

/* Highest segment number of |prefix| already on disk (0: none). */
static int seg_highest(const char *prefix, unsigned long *out)
{
	const char *base;
	char *dir;
	DIR *d;
	struct dirent *e;
	size_t bl;
	int rc = split_path(prefix, &dir, &base);

	if (rc)
		return rc;
	*out = 0;
	bl = strlen(base);
	d = opendir(dir);
	free(dir);
	if (!d)
		return errno == ENOENT ? -ENOENT : 0;
	while ((e = readdir(d))) {
		size_t pl;
		unsigned long num;
		bool part;

		if (seg_parse(e->d_name, &pl, &num, &part) && pl == bl &&
		    !memcmp(e->d_name, base, bl) && num > *out)
			*out = num;
	}
	closedir(d);
	return 0;
}

/* Create the next file (the only one without rotation) and write the
 * header; everything before this is on disk. */
static int open_segment(struct flowlog_writer *w)
{
	uint8_t hdr[HEADER_SIZE];
	int fd;

	free(w->live);
	w->live = w->rotating ? seg_name(w->path, w->seg, true)
			      : strdup(w->path);
	if (!w->live)
		return -ENOMEM;
	/* Flow logs hold cookies and passwords: owner-only by default. */
	fd = open(w->live, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	w->fd = fd;
	w->seg_bytes = 0;
	w->seg_records = 0;
	w->seg_start = w->now;
	memcpy(hdr, FLOWLOG_MAGIC, 16);
	put_le32(hdr + 16, FLOWLOG_VERSION);
	put_le32(hdr + 20, 0);
	count_raw(w, HEADER_SIZE);
	if (w->zc) {
		ZSTD_CCtx_reset(w->zc, ZSTD_reset_session_only);
		w->zframe_in = 0;
		/* the frame header and flow log header reach the disk now */
		z_put(w, hdr, HEADER_SIZE, OUT_SYNC);
	} else {
		int rc = write_all(fd, hdr, HEADER_SIZE);

		if (rc)
			set_error(w, rc);
		else
			count_out(w, HEADER_SIZE);
	}
	return atomic_load(&w->error);
}

/* Flush, fsync and close the segment; with rotation, rename it from
 * path.NNNNNN.part to path.NNNNNN and move on to the next number. The next
 * segment is created when the next record comes. */
static void close_segment(struct flowlog_writer *w)
{
	char *final;

	if (w->fd < 0)
		return;
	flush(w, OUT_END);
	if (fsync(w->fd) < 0 && errno != EINVAL)
		set_error(w, -errno);
	if (close(w->fd) < 0)
		set_error(w, -errno);
	w->fd = -1;
	if (!w->rotating)
		return;
	final = seg_name(w->path, w->seg, false);
	if (!final)
		set_error(w, -ENOMEM);
	else if (rename(w->live, final) < 0)
		set_error(w, -errno);
	free(final);
	w->seg++;
	atomic_fetch_add_explicit(&w->segments, 1, memory_order_relaxed);
}

/* Before a record of |len| bytes: close a full or old segment, open one if
 * none is. Records never straddle segments. */
static void rotate_before(struct flowlog_writer *w, size_t len)
{
	if (w->fd >= 0 && w->rotating && w->seg_records) {
		uint64_t size = w->seg_bytes;

		/* plain: the staged bytes count, so a segment stays within
		 * the limit unless one record is larger; compressed: only
		 * what the compressor has put out */
		if (!w->zc)
			size += w->buf_len + FRAME_SIZE + len;
		if ((w->rotate_size && size > w->rotate_size) ||
		    (w->rotate_ms && w->now - w->seg_start >= w->rotate_ms))
			close_segment(w);
	}
	if (w->fd < 0 && !failed(w)) {
		int rc = open_segment(w);

		if (rc)
			set_error(w, rc);
	}
}

static void store(struct flowlog_writer *w, const void *p, size_t len)
{
	uint8_t frame[FRAME_SIZE];

	if (!failed(w) && len <= MAX_RECORD)
		rotate_before(w, len);
	if (failed(w) || len > MAX_RECORD) {
		atomic_fetch_add_explicit(&w->dropped, 1, memory_order_relaxed);
		return;
	}
	put_le32(frame, (uint32_t)len);
	put_le32(frame + 4, (uint32_t)crc32(0, p, (uInt)len));
	w->seg_records++;
	count_raw(w, FRAME_SIZE + len);
	if (len >= BIG_RECORD) {
		write_big(w, frame, p, len);
		return;
	}
	if (FRAME_SIZE + len > WBUF_SIZE - w->buf_len)
		flush(w, OUT_MORE);
	memcpy(w->buf + w->buf_len, frame, FRAME_SIZE);
	memcpy(w->buf + w->buf_len + FRAME_SIZE, p, len);
	w->buf_len += FRAME_SIZE + len;
}

static void print_record(struct flowlog_writer *w, const void *p, size_t len)
{
	struct flow f;

	if (flow_decode(p, len, &w->zone, &f) == 0)
		flow_print_line(w->print, &f, w->verbosity);
	else
		fprintf(w->print, "ringcap: %s\n", rc_strerror(RC_SINK_DECODE));
	msgpack_zone_clear(&w->zone);
}

/* One pass over every ring, at most BATCH records each. */
static uint64_t drain_pass(struct flowlog_writer *w)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < w->nrings; i++) {
		struct frq *q = w->rings[i];

		for (int k = 0; k < BATCH; k++) {
			size_t len;
			const void *p = frq_peek(q, &len);

			if (!p)
				break;
			if (w->path)
				store(w, p, len);
			if (w->print)
				print_record(w, p, len);
			frq_release(q);
			n++;
		}
	}
	if (n)
		atomic_fetch_add_explicit(&w->records, n, memory_order_relaxed);
	return n;
}

/* Between passes: end a zstd frame that is big or old enough (so a file
 * cut by kill -9 loses at most that much), make everything readable once
 * the traffic pauses, and close a segment whose time is up. */
static void housekeeping(struct flowlog_writer *w, bool quiet)
{
	if (w->fd < 0)
		return;
	if (!w->zc) {
		if (w->buf_len >= FLUSH_AT || quiet)
			flush(w, OUT_MORE);
	} else if (w->zframe_in + w->buf_len >= ZFRAME_MAX ||
		   (w->zframe_in && w->now - w->zframe_start >= ZFRAME_MS)) {
		flush(w, OUT_END);
	} else if (quiet && (w->buf_len || w->zdirty) &&
		   w->now - w->zsync >= ZSYNC_MS) {
		/* at most 4 syncs a second: each ends a zstd block, and
		 * light traffic would otherwise end one per record */
		flush(w, OUT_SYNC);
	} else if (w->buf_len >= FLUSH_AT) {
		flush(w, OUT_MORE);
	}
	if (w->rotating && w->rotate_ms && quiet &&
	    w->now - w->seg_start >= w->rotate_ms) {
		if (w->seg_records)
			close_segment(w);
		else
			w->seg_start = w->now; /* an empty segment stays */
	}
}

/* Nothing to do: sleep 250us doubling up to 8ms. No spinning: on a small
 * machine the shards need the CPU more than the writer needs latency. */
static void backoff(unsigned *idle)
{
	struct timespec ts = {0, SLEEP_MIN_NS << (*idle < 5 ? *idle : 5)};

	if (ts.tv_nsec > SLEEP_MAX_NS)
		ts.tv_nsec = SLEEP_MAX_NS;
	(*idle)++;
	nanosleep(&ts, NULL);
}

static void *writer_main(void *arg)
{
	struct flowlog_writer *w = arg;
	unsigned idle = 0;

	for (;;) {
		bool stopping = atomic_load_explicit(&w->stop,
						     memory_order_acquire);

		w->now = rc_mono_ms();
		if (drain_pass(w)) {
			idle = 0;
			housekeeping(w, false);
			continue;
		}
		/* Rings are empty. Write when enough has gathered or once the
		 * traffic has paused for a moment (idle >= 3: ~2 ms), so a
		 * busy proxy costs one write(2) per FLUSH_AT bytes. */
		housekeeping(w, idle >= 3 || stopping);
		if (w->print && (idle >= 3 || stopping))
			fflush(w->print);
		if (stopping)
			break;
		backoff(&idle);
	}
	close_segment(w);
	return NULL;
}

static void writer_free(struct flowlog_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	ZSTD_freeCCtx(w->zc);
	msgpack_zone_destroy(&w->zone);
	free(w->zbuf);
	free(w->live);
	free(w->path);
	free(w->buf);
	free(w->rings);
	free(w);
}

static int setup_output(struct flowlog_writer *w,
			const struct flowlog_writer_opts *opts)
{
	int level = opts->compress_level ? opts->compress_level
					 : FLOWLOG_ZSTD_LEVEL;
	int rc;

	w->path = strdup(opts->path);
	if (!w->path)
		return -ENOMEM;
	w->rotate_size = opts->rotate_size;
	w->rotate_ms = opts->rotate_interval_ms;
	w->rotating = w->rotate_size || w->rotate_ms;
	if (opts->compress == FLOWLOG_COMPRESS_ZSTD) {
		if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel())
			return -EINVAL;
		w->zc = ZSTD_createCCtx();
		w->zbuf = malloc(ZBUF_SIZE);
		if (!w->zc || !w->zbuf)
			return -ENOMEM;
		if (ZSTD_isError(ZSTD_CCtx_setParameter(
			    w->zc, ZSTD_c_compressionLevel, level)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(
			    w->zc, ZSTD_c_checksumFlag, 1)))
			return -EINVAL;
	} else if (opts->compress != FLOWLOG_COMPRESS_NONE) {
		return -EINVAL;
	}
	if (w->rotating) {
		rc = seg_highest(w->path, &w->seg);
		if (rc)
			return rc;
		w->seg++;
	}
	w->now = rc_mono_ms();
	return open_segment(w);
}

int flowlog_writer_start(struct flowlog_writer **out,
			 const struct flowlog_writer_opts *opts,
			 struct frq *const *rings, unsigned nrings)
{
	struct flowlog_writer *w;
	sigset_t all, old;
	int rc;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = -1;
	if (!msgpack_zone_init(&w->zone, 64 * 1024)) {
		free(w);
		return -ENOMEM;
	}
	w->rings = calloc(nrings ? nrings : 1, sizeof(*w->rings));
	w->buf = malloc(WBUF_SIZE);
	if (!w->rings || !w->buf) {
		rc = -ENOMEM;
		goto out_free;
	}
	memcpy(w->rings, rings, nrings * sizeof(*rings));
	w->nrings = nrings;
	w->print = opts->print;
	w->verbosity = opts->print_verbosity;
	if (opts->path) {
		rc = setup_output(w, opts);
		if (rc)
			goto out_unlink;
	}
	/* Signals are for the main thread, not this one. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = -pthread_create(&w->thread, NULL, writer_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		goto out_unlink;
	pthread_setname_np(w->thread, "rc-flowlog");
	*out = w;
	return 0;

out_unlink:
	/* a segment we created and will never use would read as a set */
	if (w->fd >= 0 && w->rotating)
		unlink(w->live);
out_free:
	writer_free(w);
	return rc;
}

void flowlog_writer_stats(struct flowlog_writer *w, struct flowlog_stats *st)
{
	st->records = atomic_load(&w->records);
	st->bytes = atomic_load(&w->bytes);
	st->bytes_raw = atomic_load(&w->bytes_raw);
	st->segments = atomic_load(&w->segments);
	st->error = atomic_load(&w->error);
	st->dropped = atomic_load(&w->dropped);
}

int flowlog_writer_stop(struct flowlog_writer *w)
{
	int rc;

	atomic_store_explicit(&w->stop, true, memory_order_release);
	pthread_join(w->thread, NULL);
	rc = atomic_load(&w->error);
	writer_free(w);
	return rc;
}

/* --- reader ------------------------------------------------------------- */

#define RAW_SIZE ((size_t)128 << 10)   /* compressed input */
#define RBUF_MIN ((size_t)1 << 20)     /* decoded bytes */

struct flowlog_reader {
	int fd;            /* owned */
	bool follow;       /* the file may still grow */
	bool known;        /* format told from the first bytes */
	bool started;      /* header checked */
	ZSTD_DStream *zd;  /* owned; NULL: plain */
	bool zmid;         /* stopped inside a zstd frame */
	size_t zhint;      /* input the decoder wants next (about a block) */
	bool zfull;        /* output filled up: the decoder may hold more */
	int src_err;       /* sticky: bad zstd data or a read error */
	uint8_t *raw;      /* owned; RAW_SIZE bytes of file, [raw_pos, raw_len) */
	size_t raw_pos, raw_len;
	uint8_t *buf;      /* owned; flow log bytes [pos, len) not returned yet */
	size_t cap, pos, len;
	int state;         /* 0 reading, END, or the sticky error returned */
};

#define END 1

static ssize_t read_fd(int fd, void *p, size_t n)
{
	for (;;) {
		ssize_t got = read(fd, p, n);

		if (got >= 0)
			return got;
		if (errno != EINTR)
			return -errno;
	}
}

/* Make room for |need| bytes from pos: move the unread bytes to the front
 * (also when little room is left to read into), grow if it must. */
static int room(struct flowlog_reader *r, size_t need)
{
	size_t cap = r->cap ? r->cap : RBUF_MIN;
	uint8_t *p;

	if (r->cap - r->pos >= need && r->cap - r->len >= r->cap / 4)
		return 0;
	if (r->pos) {
		memmove(r->buf, r->buf + r->pos, r->len - r->pos);
		r->len -= r->pos;
		r->pos = 0;
	}
	if (r->cap && r->cap >= need)
		return 0;
	while (cap < need)
		cap *= 2;
	p = realloc(r->buf, cap);
	if (!p)
		return -ENOMEM;
	r->buf = p;
	r->cap = cap;
	return 0;
}

/* More decoded bytes: 1 if some came, 0 if the file has no more for now,
 * or an error. */
static int more_plain(struct flowlog_reader *r)
{
	ssize_t n = read_fd(r->fd, r->buf + r->len, r->cap - r->len);

	if (n > 0)
		r->len += (size_t)n;
	return n > 0 ? 1 : (int)n;
}

/* More compressed input: 1, 0 (none for now) or an error. */
static int read_raw(struct flowlog_reader *r)
{
	ssize_t n;

	if (r->raw_pos == r->raw_len) {
		r->raw_pos = r->raw_len = 0;
	} else if (r->raw_pos) {
		memmove(r->raw, r->raw + r->raw_pos, r->raw_len - r->raw_pos);
		r->raw_len -= r->raw_pos;
		r->raw_pos = 0;
	}
	if (r->raw_len == RAW_SIZE) /* the decoder takes what it is given */
		return RC_SINK_CORRUPT;
	n = read_fd(r->fd, r->raw + r->raw_len, RAW_SIZE - r->raw_len);
	if (n > 0)
		r->raw_len += (size_t)n;
	return n > 0 ? 1 : (int)n;
}

/* The decoder is given at most the input it asks for, about one block:
 * on bad data it reports the error without saying how much it put out, so
 * what it put out before must have been taken in earlier calls. */
static int more_zstd(struct flowlog_reader *r)
{
	size_t avail = r->raw_len - r->raw_pos;
	ZSTD_outBuffer out = {r->buf, r->cap, r->len};
	ZSTD_inBuffer in;
	size_t ret;

	/* no input and nothing held back: read first (zstd calls it an
	 * error to be called again and again without input) */
	if (!avail && !r->zfull)
		return read_raw(r);
	in.src = r->raw;
	in.pos = r->raw_pos;
	in.size = r->raw_pos + (avail < r->zhint ? avail : r->zhint);
	ret = ZSTD_decompressStream(r->zd, &out, &in);
	if (ZSTD_isError(ret))
		return RC_SINK_CORRUPT;
	r->zfull = out.pos == out.size;
	if (out.pos != r->len || in.pos != r->raw_pos) {
		/* (with no input at a frame boundary the hint is the next
		 * frame's header size: only believe it after progress) */
		r->zmid = ret != 0;
		/* 0: a frame ended; the next one starts with its header */
		r->zhint = ret ? ret : ZFRAME_PREFIX;
		r->len = out.pos;
		r->raw_pos = in.pos;
		return 1;
	}
	return read_raw(r);
}

/* Have |need| bytes at pos: 0 yes, 1 the file has no more for now, or an
 * error (which sticks: bytes before it are still returned). */
static int fill(struct flowlog_reader *r, size_t need)
{
	while (r->len - r->pos < need) {
		int rc;

		if (r->src_err)
			return r->src_err;
		rc = room(r, need);
		if (rc)
			return rc;
		rc = r->zd ? more_zstd(r) : more_plain(r);
		if (rc < 0)
			r->src_err = rc;
		if (rc <= 0)
			return rc ? rc : 1;
	}
	return 0;
}

/* Tell plain from zstd by the first four bytes: 0, 1 (not there yet) or
 * an error. */
static int detect(struct flowlog_reader *r)
{
	int rc;

	while (r->raw_len < sizeof(zstd_magic)) {
		ssize_t n = read_fd(r->fd, r->raw + r->raw_len,
				    RAW_SIZE - r->raw_len);

		if (n <= 0)
			return n ? (int)n : 1;
		r->raw_len += (size_t)n;
	}
	if (!memcmp(r->raw, zstd_magic, sizeof(zstd_magic))) {
		r->zd = ZSTD_createDStream();
		if (!r->zd)
			return -ENOMEM;
		r->zhint = ZSTD_initDStream(r->zd);
	} else {
		rc = room(r, r->raw_len);
		if (rc)
			return rc;
		memcpy(r->buf, r->raw, r->raw_len);
		r->len = r->raw_len;
		r->raw_len = 0;
	}
	r->known = true;
	return 0;
}

static int start(struct flowlog_reader *r)
{
	const uint8_t *h;
	int rc = r->known ? 0 : detect(r);

	if (!rc)
		rc = fill(r, HEADER_SIZE);
	if (rc > 0 && r->follow)
		return -EAGAIN;
	/* too short for a header: a zstd stream was cut short (a plain one
	 * too, but then nothing says it is a flow log) */
	if (rc > 0 && r->zd && (r->zmid || r->len > r->pos))
		return RC_SINK_TRUNCATED;
	if (rc > 0 || (rc == RC_SINK_CORRUPT && r->len - r->pos < 16))
		return RC_SINK_BAD_MAGIC;
	if (rc < 0)
		return rc;
	h = r->buf + r->pos;
	if (memcmp(h, FLOWLOG_MAGIC, 16) != 0)
		return RC_SINK_BAD_MAGIC;
	if (get_le32(h + 16) != FLOWLOG_VERSION)
		return RC_SINK_BAD_VERSION;
	r->pos += HEADER_SIZE;
	r->started = true;
	return 0;
}

/* |rc| from fill(): the file has no more (1) or failed. */
static int at_end(struct flowlog_reader *r, int rc)
{
	if (rc < 0)
		return rc;
	if (r->follow)
		return -EAGAIN;
	return r->len == r->pos && !r->zmid ? 0 : RC_SINK_TRUNCATED;
}

static int next_record(struct flowlog_reader *r, const void **buf,
		       size_t *len)
{
	const uint8_t *fr;
	uint32_t n;
	int rc;

	if (!r->started) {
		rc = start(r);
		if (rc)
			return rc;
	}
	rc = fill(r, FRAME_SIZE);
	if (rc)
		return at_end(r, rc);
	n = get_le32(r->buf + r->pos);
	if (n > MAX_RECORD)
		return RC_SINK_CORRUPT;
	rc = fill(r, FRAME_SIZE + (size_t)n);
	if (rc)
		return at_end(r, rc);
	fr = r->buf + r->pos;
	if ((uint32_t)crc32(0, fr + FRAME_SIZE, n) != get_le32(fr + 4))
		return RC_SINK_CORRUPT;
	*buf = fr + FRAME_SIZE;
	*len = n;
	r->pos += FRAME_SIZE + (size_t)n;
	return 1;
}

int flowlog_open_follow(struct flowlog_reader **out, const char *path)
{
	struct flowlog_reader *r;
	int rc;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->fd = -1;
	r->follow = true;
	r->raw = malloc(RAW_SIZE);
	if (!r->raw) {
		flowlog_close(r);
		return -ENOMEM;
	}
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		rc = -errno;
		flowlog_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

int flowlog_open(struct flowlog_reader **out, const char *path)
{
	struct flowlog_reader *r;
	int rc = flowlog_open_follow(&r, path);

	if (rc)
		return rc;
	r->follow = false;
	rc = start(r);
	if (rc) {
		flowlog_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

void flowlog_stop_following(struct flowlog_reader *r)
{
	r->follow = false;
}

bool flowlog_compressed(const struct flowlog_reader *r)
{
	return r->zd != NULL;
}

int flowlog_next(struct flowlog_reader *r, const void **buf, size_t *len)
{
	int rc;

	if (r->state < 0)
		return r->state;
	if (r->state == END)
		return 0;
	rc = next_record(r, buf, len);
	if (rc == -EAGAIN && r->follow)
		return rc;
	if (rc <= 0)
		r->state = rc ? rc : END;
	return rc;
}

void flowlog_close(struct flowlog_reader *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	ZSTD_freeDStream(r->zd);
	free(r->raw);
	free(r->buf);
	free(r);
}

/* --- a sequence of logs: lists, directories, rotated sets -------------- */

struct set_item {
	char *path;          /* owned */
	char *prefix;        /* owned; a segment's set, else NULL */
	unsigned long num;   /* segment number */
	bool part;           /* named .part when listed */
	int err;             /* report this instead of opening (0: open) */
};

struct flowlog_set {
	struct set_item *items; /* owned, with their strings */
	size_t n, cap;
	size_t cur;             /* item being read */
	struct flowlog_reader *r; /* owned; the open item's reader, or NULL */
	bool follow;
	char *wait_arg;         /* owned; following: argument not there yet */
	const char *path;       /* an item's path, see flowlog_set_path() */
	unsigned long records;
};

static int add_item(struct flowlog_set *s, const char *path, int err)
{
	struct set_item *it;
	size_t pl;

	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;

		it = realloc(s->items, cap * sizeof(*it));
		if (!it)
			return -ENOMEM;
		s->items = it;
		s->cap = cap;
	}
	it = &s->items[s->n];
	memset(it, 0, sizeof(*it));
	it->err = err;
	it->path = strdup(path);
	if (!it->path)
		return -ENOMEM;
	if (seg_parse(path, &pl, &it->num, &it->part)) {
		it->prefix = strndup(path, pl);
		if (!it->prefix) {
			free(it->path);
			return -ENOMEM;
		}
	}
	s->n++;
	return 0;
}

/* Directory entries in reading order: by set (or file) name, a set's
 * segments by number. */
struct dir_ent {
	char *path;          /* owned; dir/name */
	const char *name;    /* in path */
	size_t prefix_len;   /* the whole name if not a segment */
	bool seg, part;
	unsigned long num;
};

static int dir_ent_cmp(const void *pa, const void *pb)
{
	const struct dir_ent *a = pa, *b = pb;
	size_t n = a->prefix_len < b->prefix_len ? a->prefix_len
						 : b->prefix_len;
	int c = memcmp(a->name, b->name, n);

	if (c)
		return c;
	if (a->prefix_len != b->prefix_len)
		return a->prefix_len < b->prefix_len ? -1 : 1;
	if (a->seg != b->seg)
		return a->seg ? 1 : -1;
	if (a->num != b->num)
		return a->num < b->num ? -1 : 1;
	return (int)a->part - (int)b->part;
}

/* Whether |path| is a flow log (plain or zstd): a segment by its name, any
 * other file by its first bytes. */
static bool looks_like_log(const char *path, bool seg)
{
	uint8_t m[4];
	int fd;
	ssize_t n;

	if (seg)
		return true;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return false;
	n = read_fd(fd, m, sizeof(m));
	close(fd);
	return n == 4 && (!memcmp(m, FLOWLOG_MAGIC, 4) ||
			  !memcmp(m, zstd_magic, 4));
}

/* Add the flow logs of directory |dir| in order, or with |base|, only the
 * segments base.NNNNNN[.part]. Returns how many, or -ENOMEM. */
static int add_dir(struct flowlog_set *s, const char *dir, const char *base)
{
	struct dir_ent *ents = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	DIR *d = opendir(dir);
	int rc = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		struct dir_ent de = {0};
		struct stat st;
		char *full;

		if (e->d_name[0] == '.')
			continue;
		de.seg = seg_parse(e->d_name, &de.prefix_len, &de.num,
				   &de.part);
		if (!de.seg)
			de.prefix_len = strlen(e->d_name);
		if (base && (!de.seg || de.prefix_len != strlen(base) ||
			     memcmp(e->d_name, base, de.prefix_len)))
			continue;
		if (asprintf(&full, "%s/%s", dir, e->d_name) < 0) {
			rc = -ENOMEM;
			break;
		}
		/* a segment renamed from .part since it was listed is still
		 * kept: open_item() finds it under its new name */
		if (stat(full, &st) < 0 ? !de.seg
					: !S_ISREG(st.st_mode) ||
					  !looks_like_log(full, de.seg)) {
			free(full);
			continue;
		}
		if (n == cap) {
			struct dir_ent *p;

			cap = cap ? cap * 2 : 32;
			p = realloc(ents, cap * sizeof(*ents));
			if (!p) {
				free(full);
				rc = -ENOMEM;
				break;
			}
			ents = p;
		}
		de.path = full;
		de.name = full + strlen(full) - strlen(e->d_name);
		ents[n++] = de;
	}
	closedir(d);
	if (!rc && n) {
		qsort(ents, n, sizeof(*ents), dir_ent_cmp);
		for (size_t i = 0; i < n && !rc; i++)
			rc = add_item(s, ents[i].path, 0);
	}
	for (size_t i = 0; i < n; i++)
		free(ents[i].path);
	free(ents);
	return rc ? rc : (int)n;
}

/* One argument: a directory, a file, or the -w FILE of a rotated set.
 * Returns how many files it gave (0: nothing there), or -ENOMEM. */
static int expand(struct flowlog_set *s, const char *arg)
{
	struct stat st;
	const char *base;
	char *dir;
	int rc;

	if (stat(arg, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return add_dir(s, arg, NULL);
		rc = add_item(s, arg, 0);
		return rc ? rc : 1;
	}
	if (errno != ENOENT)
		return 0;
	rc = split_path(arg, &dir, &base);
	if (rc)
		return rc;
	rc = *base ? add_dir(s, dir, base) : 0;
	/* add_dir gave "dir/base.N"; keep the user's spelling of dir */
	free(dir);
	return rc;
}

int flowlog_set_open(struct flowlog_set **out, char *const *paths,
		     unsigned n, bool follow)
{
	struct flowlog_set *s = calloc(1, sizeof(*s));
	int rc = 0;

	if (!s)
		return -ENOMEM;
	s->follow = follow;
	for (unsigned i = 0; i < n && rc >= 0; i++) {
		struct stat st;
		bool last = i + 1 == n;

		rc = expand(s, paths[i]);
		if (rc != 0)
			continue;
		if (follow && last) {
			s->wait_arg = strdup(paths[i]);
			rc = s->wait_arg ? 0 : -ENOMEM;
		} else if (stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			rc = add_item(s, paths[i], -ENODATA);
		} else {
			rc = add_item(s, paths[i], 0); /* open says why */
		}
	}
	if (rc < 0) {
		flowlog_set_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* The segment after |it| exists (under either name), or the name it has
 * in *name (owned by the caller; NULL if it does not exist). */
static int next_segment(const struct set_item *it, char **name)
{
	*name = seg_name(it->prefix, it->num + 1, false);
	if (!*name)
		return -ENOMEM;
	if (exists(*name))
		return 0;
	free(*name);
	*name = seg_name(it->prefix, it->num + 1, true);
	if (!*name)
		return -ENOMEM;
	if (exists(*name))
		return 0;
	free(*name);
	*name = NULL;
	return 0;
}

/* Nothing left in the list while following: look for more. Returns 1 if
 * items were added, -EAGAIN, 0 (nothing will come) or -ENOMEM. */
static int follow_more(struct flowlog_set *s)
{
	const struct set_item *last = s->n ? &s->items[s->n - 1] : NULL;
	char *name;
	int rc;

	if (s->wait_arg) {
		rc = expand(s, s->wait_arg);
		if (rc <= 0)
			return rc ? rc : -EAGAIN;
		free(s->wait_arg);
		s->wait_arg = NULL;
		return 1;
	}
	if (!last || !last->prefix)
		return 0;
	rc = next_segment(last, &name);
	if (rc || !name)
		return rc ? rc : -EAGAIN;
	rc = add_item(s, name, 0);
	free(name);
	return rc ? rc : 1;
}

/* Open the current item. A segment may have been renamed from .part since
 * it was listed: try the other name too. */
static int open_item(struct flowlog_set *s, const struct set_item *it)
{
	bool follow = s->follow && s->cur + 1 == s->n;
	int (*op)(struct flowlog_reader **, const char *) =
		follow ? flowlog_open_follow : flowlog_open;
	int rc = op(&s->r, it->path);

	for (int i = 0; rc == -ENOENT && it->prefix && i < 2; i++) {
		char *alt = seg_name(it->prefix, it->num, i ? it->part
							   : !it->part);

		if (!alt)
			return -ENOMEM;
		rc = op(&s->r, alt);
		free(alt);
	}
	if (rc)
		s->r = NULL;
	return rc;
}

/* Following a segment and no whole record is there: if the next segment
 * exists, this one is closed; read the rest of it and move on. */
static int segment_done(struct flowlog_set *s, const struct set_item *it)
{
	char *name;
	int rc;

	if (!it->prefix || s->cur + 1 != s->n)
		return 0;
	rc = next_segment(it, &name);
	if (rc || !name)
		return rc;
	free(name);
	return 1;
}

int flowlog_set_next(struct flowlog_set *s, const void **buf, size_t *len)
{
	for (;;) {
		struct set_item *it;
		int rc;

		if (s->cur >= s->n) {
			if (!s->follow)
				return 0;
			rc = follow_more(s);
			if (rc <= 0)
				return rc;
			continue;
		}
		it = &s->items[s->cur];
		if (!s->r) {
			s->path = it->path;
			s->records = 0;
			rc = it->err ? it->err : open_item(s, it);
			if (rc) {
				s->cur++;
				return rc;
			}
		}
		rc = flowlog_next(s->r, buf, len);
		if (rc == 1) {
			s->records++;
			return 1;
		}
		if (rc == -EAGAIN) {
			rc = segment_done(s, it);
			if (rc <= 0)
				return rc ? rc : -EAGAIN;
			flowlog_stop_following(s->r);
			continue;
		}
		flowlog_close(s->r);
		s->r = NULL;
		s->cur++;
		if (rc)
			return rc;
	}
}

const char *flowlog_set_path(const struct flowlog_set *s)
{
	return s->path;
}

unsigned long flowlog_set_records(const struct flowlog_set *s)
{
	return s->records;
}

void flowlog_set_close(struct flowlog_set *s)
{
	if (!s)
		return;
	flowlog_close(s->r);
	for (size_t i = 0; i < s->n; i++) {
		free(s->items[i].path);
		free(s->items[i].prefix);
	}
	free(s->items);
	free(s->wait_arg);
	free(s);
}
