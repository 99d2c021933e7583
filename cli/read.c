/* SPDX-License-Identifier: MIT */
/* `ringcap read [--json] [-v] [-f] [--filter EXPR] FILE|DIR... [EXPR]`:
 * print the flows of flow logs (plain or zstd, single files, directories,
 * rotated sets), one line each (mitmdump style) or one JSON object each;
 * -f follows a growing log. With a filter expression (mitmproxy syntax,
 * sink/filter.h), only the flows that match, as `mitmdump -nr FILE EXPR`. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "sink/filter.h"
#include "sink/flowlog.h"

#define FOLLOW_POLL_MS 100

int cli_read_main(int argc, char **argv);

#define READ_USAGE                                                       \
	"usage: ringcap read [--json] [-v] [-f] [--filter EXPR] FILE|DIR... " \
	"[EXPR]\n"

/* The flow filter of one `ringcap read` run (NULL: print everything). */
struct read_filter {
	struct filter *f;
	struct filter_scratch *scr;
};

/* --filter EXPR, or else the last of two or more arguments when it names
 * no file (mitmdump -nr FILE EXPR). Returns 0 (and drops that argument
 * from *argc), or 2 after saying what is wrong with the expression. */
static int read_filter_setup(struct read_filter *rf, const char *opt_expr,
			     int optind_, int *argc, char **argv)
{
	const char *expr = opt_expr;
	struct stat st;
	bool positional = false;
	if (!expr && *argc - optind_ >= 2 && stat(argv[*argc - 1], &st) < 0) {
		expr = argv[*argc - 1];
		positional = true;
	}
	if (!expr)
		return 0;
	char err[256];
	int rc = filter_compile(expr, &rf->f, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "ringcap read: %s'%s' is not a valid filter "
			"expression: %s\n", positional ? "no such file, and " : "",
			expr, err);
		return 2;
	}
	rf->scr = filter_scratch_new(rf->f);
	if (!rf->scr) {
		fputs("ringcap read: out of memory\n", stderr);
		return 2;
	}
	if (positional)
		(*argc)--;
	return 0;
}

static void read_filter_free(struct read_filter *rf)
{
	filter_scratch_free(rf->scr);
	filter_free(rf->f);
}

/* Print one record if it matches the filter; false if it does not
 * decode. */
static bool show(const void *buf, size_t len, msgpack_zone *zone, bool json,
		 int verbosity, const struct read_filter *rf)
{
	struct flow f;

	msgpack_zone_clear(zone);
	if (flow_decode(buf, len, zone, &f) < 0)
		return false;
	if (rf->f && !filter_match(rf->f, &f, rf->scr))
		return true;
	if (json)
		flow_print_json(stdout, &f);
	else
		flow_print_line(stdout, &f, verbosity);
	return true;
}

/* How a file of the sequence ended badly; returns the exit status it
 * calls for (a cut-short file is normal after kill -9: 0). */
static int report(struct flowlog_set *s, int rc)
{
	const char *path = flowlog_set_path(s);
	unsigned long n = flowlog_set_records(s);

	if (rc == RC_SINK_TRUNCATED) {
		fprintf(stderr,
			"ringcap: warning: %s: last record cut short (%lu flows "
			"read)\n", path, n);
		return 0;
	}
	if (rc == -ENODATA)
		fprintf(stderr, "ringcap: %s: no flow logs in it\n", path);
	else if (n)
		fprintf(stderr, "ringcap: %s: %s after %lu flows\n", path,
			rc_strerror(rc), n);
	else
		fprintf(stderr, "ringcap: %s: %s\n", path, rc_strerror(rc));
	return 1;
}

static void nap(void)
{
	struct timespec ts = {0, FOLLOW_POLL_MS * 1000000L};

	nanosleep(&ts, NULL);
}

static int read_all(char *const *paths, unsigned n, bool json, int verbosity,
		    bool follow, const struct read_filter *rf)
{
	struct flowlog_set *s;
	msgpack_zone zone;
	unsigned long bad = 0;
	int ret = 0, rc;

	if (flowlog_set_open(&s, paths, n, follow) < 0) {
		fprintf(stderr, "ringcap: out of memory\n");
		return 1;
	}
	msgpack_zone_init(&zone, 4096);
	for (;;) {
		const void *buf;
		size_t len;

		rc = flowlog_set_next(s, &buf, &len);
		if (rc == 1) {
			if (!show(buf, len, &zone, json, verbosity, rf))
				bad++;
			continue;
		}
		if (rc == 0)
			break;
		if (rc == -EAGAIN) {
			/* following: what is printed is seen now; Ctrl-C
			 * ends it */
			fflush(stdout);
			nap();
			continue;
		}
		ret |= report(s, rc);
	}
	if (bad)
		fprintf(stderr, "ringcap: %lu records did not decode\n", bad);
	msgpack_zone_destroy(&zone);
	flowlog_set_close(s);
	return ret;
}

int cli_read_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'},
		{"verbose", no_argument, NULL, 'v'},
		{"follow", no_argument, NULL, 'f'},
		{"filter", required_argument, NULL, 'F'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *filter_opt = NULL;
	bool json = false, follow = false;
	int verbosity = 0, ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "jvfh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = true;
			break;
		case 'v':
			verbosity++;
			break;
		case 'f':
			follow = true;
			break;
		case 'F':
			filter_opt = optarg;
			break;
		case 'h':
			fputs(READ_USAGE, stdout);
			return 0;
		default:
			fputs(READ_USAGE, stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		fputs(READ_USAGE, stderr);
		return 2;
	}
	struct read_filter rf = {NULL, NULL};
	int rc = read_filter_setup(&rf, filter_opt, optind, &argc, argv);
	if (rc)
		return rc;
	rc = read_all(argv + optind, (unsigned)(argc - optind), json,
		      verbosity, follow, &rf);
	fflush(stdout);
	read_filter_free(&rf);
	return rc;
}
