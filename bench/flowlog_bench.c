/* SPDX-License-Identifier: MIT */
/* The flow log writer's throughput, plain and zstd: the records of a real
 * log are pushed again and again through a ring into the writer thread,
 * as a shard would, and timed from the first push to the fsync'd close.
 *
 *   flowlog_bench LOG [MIB] [OUTDIR]   replay LOG's records until MIB MiB
 *                                      (default 1024) have been written
 *
 * Prints, per configuration (none, zstd:1, zstd:3, zstd:6): compressed
 * size and ratio, and records/s and MB/s of flow log (before compression)
 * two ways: by wall clock, and by the writer thread's own CPU time (the
 * process's minus the producer's), which is what a writer on a core of its
 * own would do, whatever else the machine is running. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sink/flowlog.h"

struct rec {
	void *p;
	size_t len;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int load(const char *path, struct rec **out, size_t *n, size_t *bytes)
{
	char *args[] = {(char *)path};
	struct flowlog_set *s;
	struct rec *v = NULL;
	size_t cap = 0;
	const void *buf;
	size_t len;
	int rc;

	if (flowlog_set_open(&s, args, 1, false))
		return -ENOMEM;
	*n = *bytes = 0;
	while ((rc = flowlog_set_next(s, &buf, &len)) != 0) {
		if (rc != 1) {
			fprintf(stderr, "%s: %s\n", flowlog_set_path(s),
				rc_strerror(rc));
			continue;
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 4096;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				return -ENOMEM;
		}
		v[*n].p = malloc(len);
		if (!v[*n].p)
			return -ENOMEM;
		memcpy(v[*n].p, buf, len);
		v[*n].len = len;
		*bytes += 8 + len;
		(*n)++;
	}
	flowlog_set_close(s);
	*out = v;
	return *n ? 0 : -ENODATA;
}

static void run(const char *name, enum flowlog_compress c, int level,
		const struct rec *v, size_t n, uint64_t target,
		const char *outdir)
{
	char path[512];
	struct flowlog_writer_opts o = {.path = path, .compress = c,
					.compress_level = level};
	struct frq *q = frq_create(64 << 20);
	struct flowlog_writer *w;
	struct flowlog_stats st;
	uint64_t pushed = 0, recs = 0;
	double t0, t1, c0, c1, p0, p1, wcpu;
	struct stat sb;

	snprintf(path, sizeof(path), "%s/bench-%s.rcap", outdir, name);
	if (!q || flowlog_writer_start(&w, &o, &q, 1)) {
		fprintf(stderr, "cannot start the writer on %s\n", path);
		exit(1);
	}
	t0 = now_s();
	c0 = cpu_s();
	p0 = thread_cpu_s();
	for (size_t i = 0; pushed < target; i = (i + 1) % n) {
		void *p;

		while (!(p = frq_reserve(q, v[i].len)))
			usleep(50); /* the ring is full: the writer is behind */
		memcpy(p, v[i].p, v[i].len);
		frq_commit(q, v[i].len);
		pushed += 8 + v[i].len;
		recs++;
	}
	p1 = thread_cpu_s();
	flowlog_writer_stats(w, &st);
	if (flowlog_writer_stop(w)) {
		fprintf(stderr, "write failed\n");
		exit(1);
	}
	t1 = now_s();
	c1 = cpu_s();
	stat(path, &sb);
	wcpu = (c1 - c0) - (p1 - p0);
	printf("%-7s %7.1f MB -> %7.1f MB  ratio %5.2f | wall %6.0f rec/s "
	       "%6.1f MB/s | writer cpu %5.2fs: %7.0f rec/s %7.1f MB/s\n",
	       name, (double)pushed / 1e6, (double)sb.st_size / 1e6,
	       (double)pushed / (double)sb.st_size, (double)recs / (t1 - t0),
	       (double)pushed / 1e6 / (t1 - t0), wcpu, (double)recs / wcpu,
	       (double)pushed / 1e6 / wcpu);
	unlink(path);
	frq_destroy(q);
}

int main(int argc, char **argv)
{
	struct rec *v;
	size_t n, bytes;
	uint64_t target;
	const char *outdir;

	if (argc < 2) {
		fputs("usage: flowlog_bench LOG [MIB] [OUTDIR]\n", stderr);
		return 2;
	}
	target = (uint64_t)(argc > 2 ? atoi(argv[2]) : 1024) << 20;
	outdir = argc > 3 ? argv[3] : "/tmp";
	if (load(argv[1], &v, &n, &bytes)) {
		fprintf(stderr, "%s: no records\n", argv[1]);
		return 1;
	}
	printf("%zu records, %.1f MB, %.0f bytes each on average; %.0f MiB "
	       "per run into %s\n", n, (double)bytes / 1e6,
	       (double)bytes / (double)n, (double)(target >> 20), outdir);
	run("none", FLOWLOG_COMPRESS_NONE, 0, v, n, target, outdir);
	run("zstd:1", FLOWLOG_COMPRESS_ZSTD, 1, v, n, target, outdir);
	run("zstd:3", FLOWLOG_COMPRESS_ZSTD, 3, v, n, target, outdir);
	run("zstd:6", FLOWLOG_COMPRESS_ZSTD, 6, v, n, target, outdir);
	for (size_t i = 0; i < n; i++)
		free(v[i].p);
	free(v);
	return 0;
}
