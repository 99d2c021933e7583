/* SPDX-License-Identifier: MIT */
/* mitmdump-style command line: --mode, -p, --listen-host, -w, -q, -v,
 * --set name=value, parsed into one engine configuration. */
#ifndef RC_CLI_OPTIONS_H
#define RC_CLI_OPTIONS_H

#include <stddef.h>

#include "engine/eng.h"
#include "sink/flowlog.h"

struct cli_opts {
	struct eng_config eng;
	const char *save_file; /* -w */
	int verbosity;         /* -q: -1, default 0, -v: +1 each */
	/* long recordings (FLOWLOG.md, "Segments"); 0: off */
	uint64_t flowlog_rotate_size;         /* bytes per segment */
	uint32_t flowlog_rotate_interval_ms;  /* segment age */
	enum flowlog_compress flowlog_compress;
	int flowlog_compress_level;           /* 0: default */
};

/* Parse one --mode value into |m|. Returns 0 or RC_CFG_BAD_MODE with a
 * message for the user in err. */
int cli_parse_mode(const char *spec, struct eng_mode *m, char *err,
		   size_t err_len) NONNULL(1, 2, 3);

/* Apply one --set name=value. Returns 0, RC_CFG_BAD_OPTION (unknown
 * name) or RC_CFG_BAD_VALUE, with a message in err. */
int cli_set(struct cli_opts *o, const char *assignment, char *err,
	    size_t err_len) NONNULL(1, 2, 3);

/* Parse a size ("64k", "1MiB", "512MB", "100") / duration ("1s", "250ms",
 * "1h", "5" = seconds). Return 0 or -EINVAL. */
int cli_parse_size(const char *s, uint64_t *out) NONNULL(1, 2);
int cli_parse_duration_ms(const char *s, uint32_t *out) NONNULL(1, 2);

/* Parse argv (after the program name) for the proxy. Returns 0, 1 when
 * --help/--version was printed, or 2 after printing an error. */
int cli_parse_args(int argc, char **argv, struct cli_opts *o) NONNULL(2, 3);

void cli_usage(FILE *out);

#endif
