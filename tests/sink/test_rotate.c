/* SPDX-License-Identifier: MIT */
/* Long recordings: rotation into segments (by size, by age), zstd
 * compression (round trip, cuts at many offsets, several frames), sets of
 * logs (directories in order, rotated sets by their prefix) and following
 * a set while it is written. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "sink/flowlog.h"

static char dir[64];

static void mk_dir(void)
{
	strcpy(dir, "/tmp/rc_rotate_XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void rm_dir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static char *path_of(const char *name)
{
	static char bufs[4][256];
	static int i;
	char *p = bufs[i++ % 4];

	snprintf(p, 256, "%s/%s", dir, name);
	return p;
}

/* Flow |seq|: the number is in the id; bodies vary a little, as real
 * traffic does, so compression has something to do. */
static void seq_flow(struct flow *f, uint32_t seq, char *body, size_t len)
{
	memset(f, 0, sizeof(*f));
	memcpy(f->id, &seq, 4);
	f->type = FLOW_HTTP;
	strcpy(f->client.peer.addr, "10.0.0.1");
	f->client.peer.port = (uint16_t)seq;
	f->has_request = true;
	f->req.method = RC_STR("GET");
	f->req.path = RC_STR("/rotate/test");
	for (size_t i = 0; i < len; i++)
		body[i] = (char)('a' + (seq * 7 + i * i) % 26);
	f->req.body.p = (const uint8_t *)body;
	f->req.body.captured = (uint32_t)len;
	f->req.body.length = len;
}

static void push(struct frq *q, uint32_t seq, size_t body_len)
{
	char body[4096];
	struct flow f;
	size_t n;
	void *p;

	seq_flow(&f, seq, body, body_len);
	n = flow_encoded_size(&f);
	while (!(p = frq_reserve(q, n)))
		usleep(100);
	cr_assert_eq(flow_encode(&f, p, n), (ssize_t)n);
	frq_commit(q, n);
}

static uint32_t seq_of(const void *buf, size_t len, msgpack_zone *zone)
{
	struct flow f;
	uint32_t seq;

	msgpack_zone_clear(zone);
	cr_assert_eq(flow_decode(buf, len, zone, &f), 0);
	memcpy(&seq, f.id, 4);
	return seq;
}

/* Write flows 0..n-1 with |opts| (path set by the caller). */
static void write_flows(struct flowlog_writer_opts *opts, unsigned n,
			size_t body_max)
{
	struct frq *q = frq_create(1 << 20);
	struct flowlog_writer *w;

	cr_assert_eq(flowlog_writer_start(&w, opts, &q, 1), 0);
	for (unsigned i = 0; i < n; i++)
		push(q, i, (i * 37) % (body_max + 1));
	cr_assert_eq(flowlog_writer_stop(w), 0);
	frq_destroy(q);
}

/* Read one file; returns the records and checks they run from *next on;
 * *end gets how it ended. */
static unsigned read_file(const char *path, uint32_t *next, int *end)
{
	struct flowlog_reader *r;
	msgpack_zone zone;
	const void *buf;
	size_t len;
	unsigned n = 0;
	int rc;

	rc = flowlog_open(&r, path);
	if (rc) {
		*end = rc;
		return 0;
	}
	msgpack_zone_init(&zone, 4096);
	while ((rc = flowlog_next(r, &buf, &len)) == 1) {
		cr_assert_eq(seq_of(buf, len, &zone), *next, "%s", path);
		(*next)++;
		n++;
	}
	msgpack_zone_destroy(&zone);
	flowlog_close(r);
	*end = rc;
	return n;
}

/* Read a set; returns the records (in order 0..n-1) and how many files. */
static unsigned read_set(char *const *args, unsigned nargs, unsigned *files)
{
	struct flowlog_set *s;
	msgpack_zone zone;
	const char *last = NULL;
	const void *buf;
	size_t len;
	uint32_t next = 0;
	int rc;

	*files = 0;
	cr_assert_eq(flowlog_set_open(&s, args, nargs, false), 0);
	msgpack_zone_init(&zone, 4096);
	while ((rc = flowlog_set_next(s, &buf, &len)) != 0) {
		cr_assert_eq(rc, 1, "%s: %s", flowlog_set_path(s),
			     rc_strerror(rc));
		if (flowlog_set_path(s) != last) {
			last = flowlog_set_path(s);
			(*files)++;
		}
		cr_assert_eq(seq_of(buf, len, &zone), next);
		next++;
	}
	msgpack_zone_destroy(&zone);
	flowlog_set_close(s);
	return next;
}

static off_t size_of(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0, "%s", path);
	return st.st_size;
}

static void check_segments(const char *prefix, unsigned nseg, bool zstd,
			   uint64_t limit, unsigned total)
{
	uint32_t next = 0;
	char name[300];
	int end;

	for (unsigned i = 1; i <= nseg; i++) {
		snprintf(name, sizeof(name), "%s.%06u", prefix, i);
		unsigned before = next;
		unsigned n = read_file(name, &next, &end);

		cr_assert_eq(end, 0, "%s: %s", name, rc_strerror(end));
		cr_assert_gt(n, 0, "%s is empty", name);
		if (!zstd)
			cr_assert_leq(size_of(name), (off_t)limit, "%s", name);
		(void)before;
	}
	cr_assert_eq(next, total);
	snprintf(name, sizeof(name), "%s.%06u", prefix, nseg + 1);
	cr_assert_neq(access(name, F_OK), 0, "%s should not exist", name);
	snprintf(name, sizeof(name), "%s.%06u.part", prefix, nseg);
	cr_assert_neq(access(name, F_OK), 0, "%s left behind", name);
}

static unsigned count_segments(const char *prefix)
{
	char name[300];
	unsigned n = 0;

	for (;;) {
		snprintf(name, sizeof(name), "%s.%06u", prefix, n + 1);
		if (access(name, F_OK))
			return n;
		n++;
	}
}

Test(rotate, by_size_plain, .init = mk_dir, .fini = rm_dir)
{
	struct flowlog_writer_opts o = {.path = path_of("s.rcap"),
					.rotate_size = 64 << 10};
	char *args[] = {path_of("s.rcap")};
	unsigned nseg, files;

	write_flows(&o, 5000, 600);
	nseg = count_segments(o.path);
	cr_assert_geq(nseg, 10, "only %u segments", nseg);
	cr_assert_neq(access(o.path, F_OK), 0, "no file under the bare name");
	check_segments(o.path, nseg, false, 64 << 10, 5000);
	/* the prefix reads as the whole set, in order */
	cr_assert_eq(read_set(args, 1, &files), 5000);
	cr_assert_eq(files, nseg);
}

Test(rotate, by_size_zstd, .init = mk_dir, .fini = rm_dir)
{
	struct flowlog_writer_opts o = {.path = path_of("z.rcap"),
					.rotate_size = 64 << 10,
					.compress = FLOWLOG_COMPRESS_ZSTD};
	char *args[] = {dir};
	unsigned nseg, files;

	write_flows(&o, 20000, 2000);
	nseg = count_segments(o.path);
	cr_assert_geq(nseg, 3, "only %u segments", nseg);
	check_segments(o.path, nseg, true, 0, 20000);
	/* a directory reads as its segments, in order */
	cr_assert_eq(read_set(args, 1, &files), 20000);
	cr_assert_eq(files, nseg);
}

Test(rotate, by_interval_and_numbering_goes_on, .init = mk_dir,
     .fini = rm_dir)
{
	struct flowlog_writer_opts o = {.path = path_of("t.rcap"),
					.rotate_interval_ms = 200};
	struct frq *q = frq_create(1 << 20);
	struct flowlog_writer *w;
	struct flowlog_stats st;
	char *args[] = {path_of("t.rcap")};
	unsigned files;

	cr_assert_eq(flowlog_writer_start(&w, &o, &q, 1), 0);
	push(q, 0, 10);
	usleep(400 * 1000); /* the first segment is closed while quiet */
	cr_assert_eq(access(path_of("t.rcap.000001"), F_OK), 0);
	usleep(300 * 1000); /* nothing came: no empty segment */
	cr_assert_neq(access(path_of("t.rcap.000002.part"), F_OK), 0);
	push(q, 1, 10);
	cr_assert_eq(flowlog_writer_stop(w), 0);
	cr_assert_eq(count_segments(o.path), 2);

	/* a second run goes on after the highest number */
	cr_assert_eq(flowlog_writer_start(&w, &o, &q, 1), 0);
	push(q, 2, 10);
	flowlog_writer_stats(w, &st);
	cr_assert_eq(flowlog_writer_stop(w), 0);
	cr_assert_eq(count_segments(o.path), 3);
	cr_assert_eq(read_set(args, 1, &files), 3);
	cr_assert_eq(files, 3);
	frq_destroy(q);
}

Test(zstd, round_trip, .init = mk_dir, .fini = rm_dir)
{
	struct flowlog_writer_opts o = {.path = path_of("r.rcap"),
					.compress = FLOWLOG_COMPRESS_ZSTD};
	struct flowlog_writer_opts p = {.path = path_of("r.plain")};
	struct flowlog_reader *r;
	uint8_t head[4];
	uint32_t next = 0;
	int end, fd;

	write_flows(&o, 3000, 3000);
	write_flows(&p, 3000, 3000);
	fd = open(o.path, O_RDONLY);
	cr_assert_eq(read(fd, head, 4), 4);
	close(fd);
	cr_assert_eq(memcmp(head, "\x28\xb5\x2f\xfd", 4), 0);
	cr_assert_lt(size_of(o.path) * 3, size_of(p.path),
		     "%ld compressed vs %ld", (long)size_of(o.path),
		     (long)size_of(p.path));
	cr_assert_eq(flowlog_open(&r, o.path), 0);
	cr_assert(flowlog_compressed(r));
	flowlog_close(r);
	cr_assert_eq(read_file(o.path, &next, &end), 3000);
	cr_assert_eq(end, 0);
}

Test(zstd, stream_is_a_flow_log, .init = mk_dir, .fini = rm_dir)
{
	/* `zstd -d` of a segment gives the plain flow log, byte for byte */
	struct flowlog_writer_opts o = {.path = path_of("d.rcap"),
					.compress = FLOWLOG_COMPRESS_ZSTD};
	struct flowlog_writer_opts p = {.path = path_of("d.plain")};
	char cmd[400];

	write_flows(&o, 500, 500);
	write_flows(&p, 500, 500);
	snprintf(cmd, sizeof(cmd), "zstd -qdc %s | cmp -s - %s", o.path,
		 p.path);
	if (access("/usr/bin/zstd", X_OK))
		cr_skip_test("no zstd(1)");
	cr_assert_eq(system(cmd), 0);
}

static void copy_prefix(const char *from, const char *to, size_t n)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	char *buf = malloc(n + 1);

	cr_assert_eq(fread(buf, 1, n, in), n);
	cr_assert_eq(fwrite(buf, 1, n, out), n);
	fclose(in);
	fclose(out);
	free(buf);
}

Test(zstd, cut_at_many_offsets, .init = mk_dir, .fini = rm_dir)
{
	struct flowlog_writer_opts o = {.path = path_of("c.rcap"),
					.compress = FLOWLOG_COMPRESS_ZSTD};
	const char *cut = path_of("cut.rcap");
	size_t size, step;
	unsigned prev = 0;
	int end;

	write_flows(&o, 4000, 1500);
	size = (size_t)size_of(o.path);
	step = size / 100 + 1;
	/* every offset near the start and the end, a hundred in between */
	for (size_t n = 0; n <= size;
	     n += n < 64 || n + 32 >= size ? 1 : step) {
		uint32_t next = 0;
		unsigned got;

		copy_prefix(o.path, cut, n);
		got = read_file(cut, &next, &end);
		cr_assert_geq(got, prev, "cut at %zu", n);
		prev = got;
		if (n == size) {
			cr_assert_eq(got, 4000);
			cr_assert_eq(end, 0);
		} else if (got || end != RC_SINK_BAD_MAGIC) {
			cr_assert_eq(end, RC_SINK_TRUNCATED, "cut at %zu: %s",
				     n, rc_strerror(end));
		}
		/* only the frame checksum cut off: every record is there */
		if (n + 4 >= size)
			cr_assert_eq(got, 4000, "cut at %zu", n);
	}
}

/* A hand-made file of several zstd frames, one per |per| records: cut
 * anywhere, every frame before the cut is read whole. */
Test(zstd, several_frames_cut_anywhere, .init = mk_dir, .fini = rm_dir)
{
	struct flowlog_writer_opts p = {.path = path_of("f.plain")};
	const char *z = path_of("f.rcap"), *cut = path_of("fcut.rcap");
	size_t plen = (size_t)0, zlen = 0, off = 24;
	size_t frame_end[64], frame_recs[64];
	unsigned nframes = 0, recs = 0;
	uint8_t *plain, *out;
	FILE *f;

	write_flows(&p, 600, 800);
	plen = (size_t)size_of(p.path);
	plain = malloc(plen);
	out = malloc(ZSTD_compressBound(plen) + 64 * 32);
	f = fopen(p.path, "rb");
	cr_assert_eq(fread(plain, 1, plen, f), plen);
	fclose(f);
	/* frame k holds the header (k = 0) and then 50 records */
	size_t start = 0;
	while (off < plen) {
		for (int k = 0; k < 50 && off < plen; k++) {
			uint32_t n = plain[off] | plain[off + 1] << 8 |
				     plain[off + 2] << 16 |
				     (uint32_t)plain[off + 3] << 24;

			off += 8 + n;
			recs++;
		}
		zlen += ZSTD_compress(out + zlen, ZSTD_compressBound(off - start),
				      plain + start, off - start, 3);
		frame_end[nframes] = zlen;
		frame_recs[nframes++] = recs;
		start = off;
	}
	cr_assert_eq(recs, 600);
	f = fopen(z, "wb");
	cr_assert_eq(fwrite(out, 1, zlen, f), zlen);
	fclose(f);
	for (unsigned k = 0; k < nframes; k++) {
		for (size_t d = 0; d < 3; d++) {
			size_t n = frame_end[k] - d;
			uint32_t next = 0;
			int end;
			unsigned got;

			copy_prefix(z, cut, n);
			got = read_file(cut, &next, &end);
			if (d == 0) {
				/* cut between frames and records: clean */
				cr_assert_eq(got, frame_recs[k]);
				cr_assert_eq(end, 0);
			} else {
				cr_assert_geq(got, k ? frame_recs[k - 1] : 0);
				cr_assert_eq(end, RC_SINK_TRUNCATED, "frame %u: %s",
					     k, rc_strerror(end));
			}
		}
	}
	free(plain);
	free(out);
}

Test(zstd, corrupt_data_is_corrupt, .init = mk_dir, .fini = rm_dir)
{
	struct flowlog_writer_opts o = {.path = path_of("x.rcap"),
					.compress = FLOWLOG_COMPRESS_ZSTD};
	uint32_t next = 0;
	uint8_t b = 0x55;
	int end, fd;

	write_flows(&o, 2000, 1000);
	fd = open(o.path, O_WRONLY);
	cr_assert_eq(pwrite(fd, &b, 1, size_of(o.path) / 2), 1);
	close(fd);
	read_file(o.path, &next, &end);
	cr_assert_eq(end, RC_SINK_CORRUPT, "%s", rc_strerror(end));
}

/* A one-flow plain log whose flow is |seq|. */
static void one_flow_log(const char *path, uint32_t seq, bool zstd)
{
	struct flowlog_writer_opts o = {
		.path = path,
		.compress = zstd ? FLOWLOG_COMPRESS_ZSTD : FLOWLOG_COMPRESS_NONE};
	struct frq *q = frq_create(1 << 16);
	struct flowlog_writer *w;

	cr_assert_eq(flowlog_writer_start(&w, &o, &q, 1), 0);
	push(q, seq, 10);
	cr_assert_eq(flowlog_writer_stop(w), 0);
	frq_destroy(q);
}

Test(set, directory_in_order, .init = mk_dir, .fini = rm_dir)
{
	char *args[] = {dir};
	unsigned files;
	FILE *f;

	/* by name, a set's segments by number (not by spelling) */
	one_flow_log(path_of("w.rcap"), 0, false);
	one_flow_log(path_of("x.rcap.000009"), 1, true);
	one_flow_log(path_of("x.rcap.000010"), 2, false);
	one_flow_log(path_of("x.rcap.000011.part"), 3, true);
	one_flow_log(path_of("x.rcap.1000000"), 4, false);
	one_flow_log(path_of("y"), 5, true);
	one_flow_log(path_of(".hidden"), 99, false);
	f = fopen(path_of("notes.txt"), "w");
	fputs("not a flow log\n", f);
	fclose(f);
	cr_assert_eq(mkdir(path_of("sub"), 0700), 0);
	cr_assert_eq(read_set(args, 1, &files), 6);
	cr_assert_eq(files, 6);
}

Test(set, list_and_errors, .init = mk_dir, .fini = rm_dir)
{
	char *args[] = {path_of("a"), path_of("missing"), path_of("empty"),
			path_of("b")};
	struct flowlog_set *s;
	const void *buf;
	size_t len;
	int rc;

	one_flow_log(args[0], 0, false);
	one_flow_log(args[3], 1, true);
	cr_assert_eq(mkdir(args[2], 0700), 0);
	cr_assert_eq(flowlog_set_open(&s, args, 4, false), 0);
	cr_assert_eq(flowlog_set_next(s, &buf, &len), 1);
	cr_assert_str_eq(flowlog_set_path(s), args[0]);
	cr_assert_eq(flowlog_set_next(s, &buf, &len), -ENOENT);
	cr_assert_str_eq(flowlog_set_path(s), args[1]);
	cr_assert_eq(flowlog_set_next(s, &buf, &len), -ENODATA);
	cr_assert_str_eq(flowlog_set_path(s), args[2]);
	cr_assert_eq(flowlog_set_next(s, &buf, &len), 1);
	cr_assert_str_eq(flowlog_set_path(s), args[3]);
	cr_assert_eq(flowlog_set_records(s), 1);
	rc = flowlog_set_next(s, &buf, &len);
	cr_assert_eq(rc, 0);
	flowlog_set_close(s);
}

/* Follow a rotated, compressed set from before it exists until every
 * flow has been seen, while the writer rotates under it. */
Test(set, follow_across_rotation, .init = mk_dir, .fini = rm_dir,
     .timeout = 60)
{
	struct flowlog_writer_opts o = {.path = path_of("live.rcap"),
					.rotate_size = 16 << 10,
					.compress = FLOWLOG_COMPRESS_ZSTD};
	char *args[] = {path_of("live.rcap")};
	struct frq *q = frq_create(1 << 20);
	struct flowlog_writer *w;
	struct flowlog_set *s;
	msgpack_zone zone;
	const char *last = NULL;
	unsigned seen = 0, files = 0, pushed = 0, spins = 0;
	const unsigned total = 6000;

	cr_assert_eq(flowlog_set_open(&s, args, 1, true), 0);
	msgpack_zone_init(&zone, 4096);
	cr_assert_eq(flowlog_writer_start(&w, &o, &q, 1), 0);
	while (seen < total) {
		const void *buf;
		size_t len;
		int rc;

		/* write in bursts, read in between */
		for (unsigned k = 0; k < 200 && pushed < total; k++)
			push(q, pushed++, 1500);
		while ((rc = flowlog_set_next(s, &buf, &len)) == 1) {
			cr_assert_eq(seq_of(buf, len, &zone), seen);
			seen++;
			if (flowlog_set_path(s) != last) {
				last = flowlog_set_path(s);
				files++;
			}
		}
		cr_assert_eq(rc, -EAGAIN, "%s: %s", flowlog_set_path(s),
			     rc_strerror(rc));
		if (pushed == total) {
			cr_assert_lt(spins++, 2000, "stuck at %u", seen);
			usleep(5000);
		}
	}
	cr_assert_eq(flowlog_writer_stop(w), 0);
	cr_assert_geq(files, 3, "%u segments followed", files);
	msgpack_zone_destroy(&zone);
	flowlog_set_close(s);
	frq_destroy(q);
}

Test(follow, plain_file_grows, .init = mk_dir, .fini = rm_dir)
{
	const char *p = path_of("g.rcap"), *src = path_of("g.full");
	struct flowlog_reader *r;
	const void *buf;
	size_t len, size;
	unsigned got = 0;
	FILE *f;
	int fd;

	one_flow_log(src, 0, false);
	size = (size_t)size_of(src);
	f = fopen(src, "rb");
	char *all = malloc(size);
	cr_assert_eq(fread(all, 1, size, f), size);
	fclose(f);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_eq(flowlog_open_follow(&r, p), 0);
	/* byte by byte: nothing until the whole record is there */
	for (size_t i = 0; i < size; i++) {
		cr_assert_eq(flowlog_next(r, &buf, &len), -EAGAIN, "at %zu", i);
		cr_assert_eq(write(fd, all + i, 1), 1);
	}
	got = flowlog_next(r, &buf, &len) == 1;
	cr_assert_eq(got, 1);
	cr_assert_eq(flowlog_next(r, &buf, &len), -EAGAIN);
	flowlog_stop_following(r);
	cr_assert_eq(flowlog_next(r, &buf, &len), 0);
	flowlog_close(r);
	close(fd);
	free(all);
}
