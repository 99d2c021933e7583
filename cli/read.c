/* SPDX-License-Identifier: MIT */
/* `ringcap read [--json] [-v] [-f] FILE|DIR...`: print the flows of flow
 * logs (plain or zstd, single files, directories, rotated sets), one line
 * each (mitmdump style) or one JSON object each; -f follows a growing log. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sink/flowlog.h"

#define FOLLOW_POLL_MS 100

int cli_read_main(int argc, char **argv);

#define READ_USAGE "usage: ringcap read [--json] [-v] [-f] FILE|DIR...\n"

/* Print one record; false if it does not decode. */
static bool show(const void *buf, size_t len, msgpack_zone *zone, bool json,
		 int verbosity)
{
	struct flow f;

	msgpack_zone_clear(zone);
	if (flow_decode(buf, len, zone, &f) < 0)
		return false;
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
		    bool follow)
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
			if (!show(buf, len, &zone, json, verbosity))
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
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
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
	int rc = read_all(argv + optind, (unsigned)(argc - optind), json,
			  verbosity, follow);
	fflush(stdout);
	return rc;
}
