/* SPDX-License-Identifier: MIT */
/* The end of a flow's path: the writer thread drains every shard's ring into
 * the flow log (FLOWLOG.md) and/or prints it; the reader walks a flow log
 * back, record by record, for `ringcap read`. */
#include "sink/flowlog.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define HEADER_SIZE 24                 /* magic, version, flags */
#define FRAME_SIZE 8                   /* u32 length, u32 crc32 */
#define MAX_RECORD ((size_t)1 << 30)   /* larger is corruption */
#define WBUF_SIZE ((size_t)1 << 20)
#define BATCH 256                      /* records per ring per pass */
#define FLUSH_AT ((size_t)256 << 10)
#define BIG_RECORD ((size_t)64 << 10)     /* written from the ring directly */
#define SLEEP_MIN_NS 250000L
#define SLEEP_MAX_NS 8000000L

struct flowlog_writer {
	pthread_t thread;
	struct frq **rings;         /* owned array; the rings are the caller's */
	unsigned nrings;
	int fd;                     /* owned; -1: no file */
	uint8_t *buf;               /* owned; WBUF_SIZE bytes */
	size_t buf_len;
	FILE *print;                /* caller's stream, or NULL */
	int verbosity;
	msgpack_zone zone;          /* reused for every printed record */
	atomic_bool stop;
	_Atomic uint64_t records;
	_Atomic uint64_t bytes;
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

static void flush(struct flowlog_writer *w)
{
	int rc;

	if (!w->buf_len)
		return;
	rc = write_all(w->fd, w->buf, w->buf_len);
	if (rc)
		set_error(w, rc);
	else
		atomic_fetch_add_explicit(&w->bytes, w->buf_len,
					  memory_order_relaxed);
	w->buf_len = 0;
}

/* A large record goes straight from the ring to the file, framing and
 * payload in one writev(2), without passing through the buffer. */
static void write_big(struct flowlog_writer *w, const uint8_t *frame,
		      const void *p, size_t len)
{
	struct iovec iov[2] = {{(void *)frame, FRAME_SIZE}, {(void *)p, len}};
	struct iovec *v = iov;
	int cnt = 2;

	flush(w);
	if (atomic_load(&w->error))
		return;
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
	atomic_fetch_add_explicit(&w->bytes, FRAME_SIZE + len,
				  memory_order_relaxed);
}

static void store(struct flowlog_writer *w, const void *p, size_t len)
{
	uint8_t frame[FRAME_SIZE];

	if (atomic_load_explicit(&w->error, memory_order_relaxed) ||
	    len > MAX_RECORD) {
		atomic_fetch_add_explicit(&w->dropped, 1, memory_order_relaxed);
		return;
	}
	put_le32(frame, (uint32_t)len);
	put_le32(frame + 4, (uint32_t)crc32(0, p, (uInt)len));
	if (len >= BIG_RECORD) {
		write_big(w, frame, p, len);
		return;
	}
	if (FRAME_SIZE + len > WBUF_SIZE - w->buf_len)
		flush(w);
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
			if (w->fd >= 0)
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

		if (drain_pass(w)) {
			idle = 0;
			continue;
		}
		/* Rings are empty. Write when enough has gathered or once the
		 * traffic has paused for a moment (idle >= 3: ~2 ms), so a
		 * busy proxy costs one write(2) per FLUSH_AT bytes. */
		if (w->fd >= 0 && (w->buf_len >= FLUSH_AT || idle >= 3 || stopping))
			flush(w);
		if (w->print && (idle >= 3 || stopping))
			fflush(w->print);
		if (stopping)
			break;
		backoff(&idle);
	}
	if (w->fd >= 0 && fsync(w->fd) < 0 && errno != EINVAL)
		set_error(w, -errno);
	return NULL;
}

static int open_log(const char *path, int *fd_out)
{
	uint8_t hdr[HEADER_SIZE];
	int fd, rc;

	/* Flow logs hold cookies and passwords: owner-only by default. */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	memcpy(hdr, FLOWLOG_MAGIC, 16);
	put_le32(hdr + 16, FLOWLOG_VERSION);
	put_le32(hdr + 20, 0);
	rc = write_all(fd, hdr, sizeof(hdr));
	if (rc) {
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}

static void writer_free(struct flowlog_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	msgpack_zone_destroy(&w->zone);
	free(w->buf);
	free(w->rings);
	free(w);
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
		rc = open_log(opts->path, &w->fd);
		if (rc)
			goto out_free;
		atomic_store(&w->bytes, HEADER_SIZE);
	}
	/* Signals are for the main thread, not this one. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = -pthread_create(&w->thread, NULL, writer_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		goto out_free;
	pthread_setname_np(w->thread, "rc-flowlog");
	*out = w;
	return 0;

out_free:
	writer_free(w);
	return rc;
}

void flowlog_writer_stats(struct flowlog_writer *w, struct flowlog_stats *st)
{
	st->records = atomic_load(&w->records);
	st->bytes = atomic_load(&w->bytes);
	st->error = atomic_load(&w->error);
	st->dropped = atomic_load(&w->dropped);
}

int flowlog_writer_stop(struct flowlog_writer *w)
{
	int rc;

	atomic_store_explicit(&w->stop, true, memory_order_release);
	pthread_join(w->thread, NULL);
	if (w->fd >= 0 && close(w->fd) < 0)
		set_error(w, -errno);
	w->fd = -1;
	rc = atomic_load(&w->error);
	writer_free(w);
	return rc;
}

/* --- reader ------------------------------------------------------------- */

struct flowlog_reader {
	FILE *f;        /* owned */
	uint8_t *buf;   /* owned; the current record */
	size_t cap;
	int state;      /* 0 reading, END, or the sticky error returned */
};

#define END 1

static int read_error(FILE *f)
{
	(void)f;
	return errno ? -errno : -EIO;
}

int flowlog_open(struct flowlog_reader **out, const char *path)
{
	struct flowlog_reader *r;
	uint8_t hdr[HEADER_SIZE];
	size_t n;
	int rc;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->f = fopen(path, "rbe");
	if (!r->f) {
		rc = -errno;
		free(r);
		return rc;
	}
	setvbuf(r->f, NULL, _IOFBF, 1 << 20);
	errno = 0;
	n = fread(hdr, 1, sizeof(hdr), r->f);
	if (n < sizeof(hdr) && ferror(r->f))
		rc = read_error(r->f);
	else if (n < sizeof(hdr) || memcmp(hdr, FLOWLOG_MAGIC, 16) != 0)
		rc = RC_SINK_BAD_MAGIC;
	else if (get_le32(hdr + 16) != FLOWLOG_VERSION)
		rc = RC_SINK_BAD_VERSION;
	else
		rc = 0;
	if (rc) {
		flowlog_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

static int grow(struct flowlog_reader *r, size_t len)
{
	size_t cap = r->cap ? r->cap : 64 * 1024;
	uint8_t *p;

	if (len <= r->cap)
		return 0;
	while (cap < len)
		cap *= 2;
	p = realloc(r->buf, cap);
	if (!p)
		return -ENOMEM;
	r->buf = p;
	r->cap = cap;
	return 0;
}

static int next_record(struct flowlog_reader *r, const void **buf,
		       size_t *len)
{
	uint8_t frame[FRAME_SIZE];
	uint32_t n;
	size_t got;
	int rc;

	errno = 0;
	got = fread(frame, 1, sizeof(frame), r->f);
	if (got < sizeof(frame)) {
		if (ferror(r->f))
			return read_error(r->f);
		return got == 0 ? 0 : RC_SINK_TRUNCATED;
	}
	n = get_le32(frame);
	if (n > MAX_RECORD)
		return RC_SINK_CORRUPT;
	rc = grow(r, n ? n : 1);
	if (rc)
		return rc;
	got = fread(r->buf, 1, n, r->f);
	if (got < n)
		return ferror(r->f) ? read_error(r->f) : RC_SINK_TRUNCATED;
	if ((uint32_t)crc32(0, r->buf, n) != get_le32(frame + 4))
		return RC_SINK_CORRUPT;
	*buf = r->buf;
	*len = n;
	return 1;
}

int flowlog_next(struct flowlog_reader *r, const void **buf, size_t *len)
{
	int rc;

	if (r->state < 0)
		return r->state;
	if (r->state == END)
		return 0;
	rc = next_record(r, buf, len);
	if (rc <= 0)
		r->state = rc ? rc : END;
	return rc;
}

void flowlog_close(struct flowlog_reader *r)
{
	if (!r)
		return;
	if (r->f)
		fclose(r->f);
	free(r->buf);
	free(r);
}
