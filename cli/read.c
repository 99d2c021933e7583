/* SPDX-License-Identifier: MIT */
/* `ringcap read [--json] [-v] FILE...`: print the flows of flow logs, one
 * line each (mitmdump style) or one JSON object each. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "sink/flowlog.h"

int cli_read_main(int argc, char **argv);

static int read_one(const char *path, bool json, int verbosity)
{
	struct flowlog_reader *r;
	int rc = flowlog_open(&r, path);
	if (rc < 0) {
		fprintf(stderr, "ringcap: %s: %s\n", path, rc_strerror(rc));
		return 1;
	}
	msgpack_zone zone;
	msgpack_zone_init(&zone, 4096);
	unsigned long n = 0, bad = 0;
	int ret = 0;
	for (;;) {
		const void *buf;
		size_t len;
		rc = flowlog_next(r, &buf, &len);
		if (rc <= 0)
			break;
		struct flow f;
		msgpack_zone_clear(&zone);
		if (flow_decode(buf, len, &zone, &f) < 0) {
			bad++;
			continue;
		}
		n++;
		if (json)
			flow_print_json(stdout, &f);
		else
			flow_print_line(stdout, &f, verbosity);
	}
	if (rc == RC_SINK_TRUNCATED)
		fprintf(stderr,
			"ringcap: warning: %s: last record cut short (%lu flows "
			"read)\n", path, n);
	else if (rc < 0) {
		fprintf(stderr, "ringcap: %s: %s after %lu flows\n", path,
			rc_strerror(rc), n);
		ret = 1;
	}
	if (bad)
		fprintf(stderr, "ringcap: %s: %lu records did not decode\n",
			path, bad);
	msgpack_zone_destroy(&zone);
	flowlog_close(r);
	return ret;
}

int cli_read_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool json = false;
	int verbosity = 0, ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "jvh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = true;
			break;
		case 'v':
			verbosity++;
			break;
		case 'h':
			puts("usage: ringcap read [--json] [-v] FILE...");
			return 0;
		default:
			fputs("usage: ringcap read [--json] [-v] FILE...\n",
			      stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		fputs("usage: ringcap read [--json] [-v] FILE...\n", stderr);
		return 2;
	}
	int rc = 0;
	for (int i = optind; i < argc; i++)
		rc |= read_one(argv[i], json, verbosity);
	fflush(stdout);
	return rc;
}
