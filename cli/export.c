/* SPDX-License-Identifier: MIT */
/* `ringcap export --har|--mitmproxy FILE... > OUT`: convert flow logs to
 * HAR 1.2 or to mitmproxy's flow file (sink/export.h), streaming, one
 * record in memory at a time. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "sink/export.h"
#include "sink/flowlog.h"

/* Same as `ringcap --version` (cli/options.c). */
#ifndef RINGCAP_VERSION
#define RINGCAP_VERSION "0.1.0"
#endif

#define USAGE "usage: ringcap export --har|--mitmproxy FILE|DIR... > OUT\n"

int cli_export_main(int argc, char **argv);

enum fmt { FMT_NONE, FMT_HAR, FMT_MITM };

struct export_run {
	enum fmt fmt;
	struct har_writer har;
	struct tns tns; /* mitmproxy: one flow's encoding, reused */
	uint64_t counts[EXP_RESULT_COUNT];
	uint64_t undecodable;
	int write_err; /* set: stop everything */
};

static int export_flow(struct export_run *x, const struct flow *f)
{
	if (x->fmt == FMT_HAR)
		return har_write_flow(&x->har, f);
	return mitm_write_flow(stdout, &x->tns, f);
}

static void file_ended(const struct flowlog_set *set, int rc, int *ret)
{
	const char *path = flowlog_set_path(set);
	unsigned long n = flowlog_set_records(set);

	if (rc == RC_SINK_TRUNCATED) {
		fprintf(stderr,
			"ringcap: warning: %s: last record cut short (%lu flows "
			"read)\n", path, n);
		return;
	}
	if (rc == RC_SINK_BAD_MAGIC || rc == RC_SINK_BAD_VERSION || n == 0)
		fprintf(stderr, "ringcap: %s: %s\n", path,
			rc < -4095 ? rc_strerror(rc) : strerror(-rc));
	else
		fprintf(stderr, "ringcap: %s: %s after %lu flows\n", path,
			rc < -4095 ? rc_strerror(rc) : strerror(-rc), n);
	*ret = 1;
}

/* Every record of every file (files, directories, rotated sets, as `ringcap
 * read` takes them). Returns 0, or 1 if some file could not be read in
 * full; a write error stops everything and is left in x->write_err. */
static int export_files(struct export_run *x, char *const *paths, unsigned n)
{
	struct flowlog_set *set;
	int ret = 0, rc;

	rc = flowlog_set_open(&set, paths, n, false);
	if (rc < 0) {
		x->write_err = rc;
		return 1;
	}
	msgpack_zone zone;
	msgpack_zone_init(&zone, 4096);
	for (;;) {
		const void *buf;
		size_t len;
		rc = flowlog_set_next(set, &buf, &len);
		if (rc == 0)
			break;
		if (rc < 0) {
			file_ended(set, rc, &ret);
			continue;
		}
		struct flow f;
		msgpack_zone_clear(&zone);
		if (flow_decode(buf, len, &zone, &f) < 0) {
			x->undecodable++;
			continue;
		}
		int res = export_flow(x, &f);
		if (res < 0) {
			x->write_err = res;
			break;
		}
		x->counts[res]++;
	}
	msgpack_zone_destroy(&zone);
	flowlog_set_close(set);
	return ret;
}

static void summary(const struct export_run *x)
{
	const char *what = x->fmt == FMT_HAR ? "HAR entries" : "mitmproxy flows";
	fprintf(stderr, "ringcap: exported %llu %s",
		(unsigned long long)x->counts[EXP_WRITTEN], what);
	if (x->counts[EXP_SKIP_TCP])
		fprintf(stderr,
			"; skipped %llu tcp flows (HAR has no place for raw "
			"TCP tunnels)",
			(unsigned long long)x->counts[EXP_SKIP_TCP]);
	if (x->counts[EXP_SKIP_NO_REQUEST])
		fprintf(stderr,
			"; skipped %llu flows with no request (client sent "
			"no valid request head)",
			(unsigned long long)x->counts[EXP_SKIP_NO_REQUEST]);
	if (x->undecodable)
		fprintf(stderr, "; %llu records did not decode (skipped)",
			(unsigned long long)x->undecodable);
	fputc('\n', stderr);
}

static int parse_args(int argc, char **argv, enum fmt *fmt)
{
	static const struct option longopts[] = {
		{"har", no_argument, NULL, 'H'},
		{"mitmproxy", no_argument, NULL, 'M'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int ch;

	*fmt = FMT_NONE;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'H':
		case 'M':
			if (*fmt != FMT_NONE) {
				fputs("ringcap export: give one of --har, "
				      "--mitmproxy\n" USAGE, stderr);
				return 2;
			}
			*fmt = ch == 'H' ? FMT_HAR : FMT_MITM;
			break;
		case 'h':
			fputs(USAGE, stdout);
			return 1;
		default:
			fputs(USAGE, stderr);
			return 2;
		}
	}
	if (*fmt == FMT_NONE) {
		fputs("ringcap export: say which format: --har or --mitmproxy\n"
		      USAGE, stderr);
		return 2;
	}
	if (optind >= argc) {
		fputs("ringcap export: no flow log given\n" USAGE, stderr);
		return 2;
	}
	return 0;
}

int cli_export_main(int argc, char **argv)
{
	static char outbuf[1 << 20];
	struct export_run x;
	int r = parse_args(argc, argv, &x.fmt);
	if (r)
		return r == 1 ? 0 : 2;

	setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
	memset(x.counts, 0, sizeof(x.counts));
	x.undecodable = 0;
	x.write_err = 0;
	tns_init(&x.tns);
	if (x.fmt == FMT_HAR &&
	    har_begin(&x.har, stdout, RINGCAP_VERSION) < 0)
		x.write_err = -EIO;
	int rc = 0;
	if (!x.write_err)
		rc = export_files(&x, argv + optind, (unsigned)(argc - optind));
	if (!x.write_err && x.fmt == FMT_HAR && har_end(&x.har) < 0)
		x.write_err = -EIO;
	if (!x.write_err && fflush(stdout) == EOF)
		x.write_err = -EIO;
	tns_free(&x.tns);
	if (x.write_err == -ENOMEM) {
		fputs("ringcap: export: out of memory\n", stderr);
		return 1;
	}
	if (x.write_err) {
		fprintf(stderr, "ringcap: export: cannot write the output: %s\n",
			strerror(errno ? errno : EIO));
		return 1;
	}
	summary(&x);
	return rc;
}
