/* SPDX-License-Identifier: MIT */
/* The command line, mitmdump's grammar: modes, listen address, flow file,
 * verbosity and --set options, into struct cli_opts. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/options.h"

#define RINGCAP_VERSION "0.1.0"

void cli_usage(FILE *out)
{
	fputs(
"usage: ringcap [options]            run the proxy\n"
"       ringcap read [--json] [-v] [-f] FILE|DIR...   print recorded flows\n"
"\n"
"  --mode MODE          regular (default) | reverse:URL[@port] |\n"
"                       upstream:URL[@port]; repeat for several listeners\n"
"  -p, --listen-port N  port for modes without @port (default 8080)\n"
"  --listen-host ADDR   bind address (default: all; clients from public\n"
"                       addresses are refused unless block_global=false)\n"
"  -w FILE              record every flow to FILE (see FLOWLOG.md)\n"
"  -q, --quiet          print no flows      -v, --verbose  more detail\n"
"  --set name=value     shards=N  keep_host_header=BOOL\n"
"                       body_capture_limit=SIZE (1m)  capture_overflow=block|drop\n"
"                       capture_ring_size=SIZE (16m)  max_header_size=SIZE (64k)\n"
"                       idle_timeout=DUR (60s)  header_timeout=DUR (30s)\n"
"                       connect_timeout=DUR (10s)  response_timeout=DUR (60s)\n"
"                       shutdown_grace=DUR (5s)  block_global=BOOL (true)\n"
"                       upstream_pool_size=N (256)\n"
"  Long recordings (-w): flowlog_rotate_size=SIZE  flowlog_rotate_interval=DUR\n"
"                       (numbered segments FILE.000001...)  flowlog_compress=\n"
"                       none|zstd|zstd:LEVEL (1-19, default 3)\n"
"  TLS:                 confdir=DIR (~/.ringcap: CA, cert cache)  ssl_insecure=BOOL\n"
"                       ignore_hosts=REGEX  allow_hosts=REGEX (on host:port)\n"
"                       cert_warm=FILE  leaf_cache_size=N  tls_intercept=BOOL\n"
"                       ktls=auto|true|false (kernel TLS after handshakes)\n"
"  modes:               transparent_method=redirect|tproxy\n"
"                       spoof_source_address=BOOL  proxyauth=USER:PASS (socks5)\n"
"                       save_stream_filter=EXPR (record only matching flows)\n"
"  -h, --help           this text          --version  print the version\n"
"\n"
"SIZE: 100, 64k, 1m, 2g (KiB/MiB/GiB); DUR: 250ms, 5s, 2m, 1h.\n"
"Stop with Ctrl-C / SIGTERM: in-flight flows get shutdown_grace to finish.\n",
		out);
}

int cli_parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || errno || *s == '-')
		return -EINVAL;
	uint64_t mul = 1;
	switch (*end) {
	case 'k': case 'K': mul = 1ull << 10; end++; break;
	case 'm': case 'M': mul = 1ull << 20; end++; break;
	case 'g': case 'G': mul = 1ull << 30; end++; break;
	default: break;
	}
	if (mul > 1 && (*end == 'i' || *end == 'I'))
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end || (v && v * mul / mul != v))
		return -EINVAL;
	*out = v * mul;
	return 0;
}

int cli_parse_duration_ms(const char *s, uint32_t *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || v < 0)
		return -EINVAL;
	double mul = 1000;
	if (!strcmp(end, "ms"))
		mul = 1;
	else if (!strcmp(end, "s") || !*end)
		mul = 1000;
	else if (!strcmp(end, "m"))
		mul = 60000;
	else if (!strcmp(end, "h"))
		mul = 3600000;
	else
		return -EINVAL;
	if (v * mul > 4e9)
		return -EINVAL;
	*out = (uint32_t)(v * mul);
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	if (!strcasecmp(s, "true") || !strcmp(s, "1") || !strcasecmp(s, "yes") ||
	    !strcasecmp(s, "on"))
		*out = true;
	else if (!strcasecmp(s, "false") || !strcmp(s, "0") ||
		 !strcasecmp(s, "no") || !strcasecmp(s, "off"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

static int parse_port(const char *s, uint16_t *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (end == s || *end || v == 0 || v > 65535)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

/* URL: scheme://host[:port][/...] -> m->scheme/host/port. */
static int parse_url(const char *url, struct eng_mode *m, char *err,
		     size_t err_len)
{
	const char *sep = strstr(url, "://");
	if (!sep || sep == url || (size_t)(sep - url) >= sizeof(m->scheme)) {
		snprintf(err, err_len, "%s: expected scheme://host[:port]", url);
		return RC_CFG_BAD_MODE;
	}
	memcpy(m->scheme, url, (size_t)(sep - url));
	m->scheme[sep - url] = 0;
	for (char *p = m->scheme; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	/* default ports; tcp and tls targets need one */
	static const struct {
		const char *scheme;
		uint16_t port;
	} schemes[] = {{"http", 80}, {"https", 443}, {"tcp", 0}, {"tls", 0},
		       {"dns", 53}};
	int si = -1;
	for (int i = 0; i < (int)(sizeof(schemes) / sizeof(schemes[0])); i++)
		if (!strcmp(m->scheme, schemes[i].scheme))
			si = i;
	if (si < 0) {
		snprintf(err, err_len,
			 "%s: scheme must be http, https, tcp, tls or dns", url);
		return RC_CFG_BAD_MODE;
	}
	const char *h = sep + 3, *end = h + strcspn(h, "/?#");
	const char *port = NULL, *hend = end;
	if (*h == '[') {
		const char *rb = memchr(h, ']', (size_t)(end - h));
		if (!rb) {
			snprintf(err, err_len, "%s: unclosed [", url);
			return RC_CFG_BAD_MODE;
		}
		if (rb + 1 < end && rb[1] == ':')
			port = rb + 2;
		h++;
		hend = rb;
	} else {
		const char *c = memchr(h, ':', (size_t)(end - h));
		if (c) {
			port = c + 1;
			hend = c;
		}
	}
	if (hend == h || (size_t)(hend - h) >= sizeof(m->host)) {
		snprintf(err, err_len, "%s: no host", url);
		return RC_CFG_BAD_MODE;
	}
	memcpy(m->host, h, (size_t)(hend - h));
	m->host[hend - h] = 0;
	if (!port && !schemes[si].port) {
		snprintf(err, err_len, "%s: a %s:// target needs a port", url,
			 m->scheme);
		return RC_CFG_BAD_MODE;
	}
	m->port = schemes[si].port;
	if (port) {
		char pb[8];
		size_t pl = (size_t)(end - port);
		if (pl == 0 || pl >= sizeof(pb)) {
			snprintf(err, err_len, "%s: bad port", url);
			return RC_CFG_BAD_MODE;
		}
		memcpy(pb, port, pl);
		pb[pl] = 0;
		if (parse_port(pb, &m->port) < 0) {
			snprintf(err, err_len, "%s: bad port", url);
			return RC_CFG_BAD_MODE;
		}
	}
	return 0;
}

int cli_parse_mode(const char *spec, struct eng_mode *m, char *err,
		   size_t err_len)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->spec, sizeof(m->spec), "%s", spec);
	char buf[sizeof(m->spec)];
	snprintf(buf, sizeof(buf), "%s", spec);
	/* "@port" suffix: the last '@' followed by digits only */
	char *at = strrchr(buf, '@');
	if (at && at[1] && strspn(at + 1, "0123456789") == strlen(at + 1)) {
		if (parse_port(at + 1, &m->listen_port) < 0) {
			snprintf(err, err_len, "--mode %s: bad listen port", spec);
			return RC_CFG_BAD_MODE;
		}
		*at = 0;
	}
	char *colon = strchr(buf, ':');
	size_t kl = colon ? (size_t)(colon - buf) : strlen(buf);
	static const struct {
		const char *name;
		enum flow_mode kind;
	} plain[] = {
		{"regular", FLOW_MODE_REGULAR},
		{"transparent", FLOW_MODE_TRANSPARENT},
		{"socks5", FLOW_MODE_SOCKS5},
		{"dns", FLOW_MODE_DNS},
	};
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		if (colon || strcmp(buf, plain[i].name))
			continue;
		m->kind = plain[i].kind;
		if (m->kind == FLOW_MODE_DNS) {
			/* answered through the system's resolver */
			snprintf(m->scheme, sizeof(m->scheme), "dns");
			if (!m->listen_port)
				m->listen_port = 53; /* as mitmproxy */
		}
		return 0;
	}
	int kind = -1;
	if (kl == 7 && !strncmp(buf, "reverse", 7))
		kind = FLOW_MODE_REVERSE;
	else if (kl == 8 && !strncmp(buf, "upstream", 8))
		kind = FLOW_MODE_UPSTREAM;
	if (kind < 0) {
		snprintf(err, err_len,
			 "--mode %s: unknown mode (regular, transparent, socks5, "
			 "dns, reverse:URL[@port], upstream:URL[@port])", spec);
		return RC_CFG_BAD_MODE;
	}
	if (!colon || !colon[1]) {
		snprintf(err, err_len, "--mode %s: needs a URL, e.g. %.*s:http://127.0.0.1:9000",
			 spec, (int)kl, buf);
		return RC_CFG_BAD_MODE;
	}
	m->kind = (enum flow_mode)kind;
	int r = parse_url(colon + 1, m, err, err_len);
	if (r == 0 && kind == FLOW_MODE_UPSTREAM && strcmp(m->scheme, "http") &&
	    strcmp(m->scheme, "https")) {
		snprintf(err, err_len, "upstream proxy %s: http:// or https://",
			 colon + 1);
		r = RC_CFG_BAD_MODE;
	}
	if (r == 0 && !strcmp(m->scheme, "dns") && !m->listen_port)
		m->listen_port = 53;
	if (r < 0) {
		char tmp[512];
		snprintf(tmp, sizeof(tmp), "--mode %s", err);
		snprintf(err, err_len, "%s", tmp);
	}
	return r;
}

int cli_set(struct cli_opts *o, const char *assignment, char *err,
	    size_t err_len)
{
	struct eng_config *c = &o->eng;
	const char *eq = strchr(assignment, '=');
	if (!eq) {
		snprintf(err, err_len, "--set %s: expected name=value", assignment);
		return RC_CFG_BAD_VALUE;
	}
	char name[64];
	size_t nl = (size_t)(eq - assignment);
	if (nl >= sizeof(name))
		nl = sizeof(name) - 1;
	memcpy(name, assignment, nl);
	name[nl] = 0;
	const char *v = eq + 1;
	uint64_t u64 = 0;
	int r = 0;
	if (!strcmp(name, "shards")) {
		r = cli_parse_size(v, &u64);
		if (!r && (u64 < 1 || u64 > 256))
			r = -EINVAL;
		c->shards = (unsigned)u64;
	} else if (!strcmp(name, "keep_host_header")) {
		r = parse_bool(v, &c->keep_host_header);
	} else if (!strcmp(name, "block_global")) {
		r = parse_bool(v, &c->block_global);
	} else if (!strcmp(name, "body_capture_limit")) {
		r = cli_parse_size(v, &c->body_capture_limit);
		if (!r && c->body_capture_limit > (1ull << 30))
			r = -EINVAL;
	} else if (!strcmp(name, "capture_ring_size")) {
		r = cli_parse_size(v, &c->capture_ring_size);
		if (!r && (c->capture_ring_size < (64u << 10) ||
			   c->capture_ring_size > (8ull << 30)))
			r = -EINVAL;
	} else if (!strcmp(name, "capture_overflow")) {
		if (!strcmp(v, "block"))
			c->capture_overflow = ENG_OVERFLOW_BLOCK;
		else if (!strcmp(v, "drop"))
			c->capture_overflow = ENG_OVERFLOW_DROP;
		else
			r = -EINVAL;
	} else if (!strcmp(name, "max_header_size")) {
		r = cli_parse_size(v, &u64);
		if (!r && (u64 < 1024 || u64 > (16u << 20)))
			r = -EINVAL;
		c->max_header_size = (uint32_t)u64;
	} else if (!strcmp(name, "upstream_pool_size")) {
		r = cli_parse_size(v, &u64);
		if (!r && u64 > 65536)
			r = -EINVAL;
		c->upstream_pool_size = (uint32_t)u64;
	} else if (!strcmp(name, "idle_timeout")) {
		r = cli_parse_duration_ms(v, &c->idle_timeout_ms);
	} else if (!strcmp(name, "header_timeout")) {
		r = cli_parse_duration_ms(v, &c->header_timeout_ms);
	} else if (!strcmp(name, "connect_timeout")) {
		r = cli_parse_duration_ms(v, &c->connect_timeout_ms);
	} else if (!strcmp(name, "response_timeout")) {
		r = cli_parse_duration_ms(v, &c->response_timeout_ms);
	} else if (!strcmp(name, "shutdown_grace")) {
		r = cli_parse_duration_ms(v, &c->shutdown_grace_ms);
	} else if (!strcmp(name, "transparent_method")) {
		if (!strcmp(v, "redirect") || !strcmp(v, "tproxy"))
			c->tproxy = v[0] == 't';
		else
			r = -EINVAL;
	} else if (!strcmp(name, "spoof_source_address")) {
		r = parse_bool(v, &c->spoof_source);
	} else if (!strcmp(name, "save_stream_filter")) {
		if (strlen(v) >= sizeof(c->save_filter))
			r = -EINVAL;
		else
			snprintf(c->save_filter, sizeof(c->save_filter), "%s", v);
	} else if (!strcmp(name, "proxyauth")) {
		if (strlen(v) >= sizeof(c->proxyauth) || !strchr(v, ':'))
			r = -EINVAL;
		else
			snprintf(c->proxyauth, sizeof(c->proxyauth), "%s", v);
	} else if (!strcmp(name, "http2")) {
		r = parse_bool(v, &c->http2);
	} else if (!strcmp(name, "ssl_insecure")) {
		r = parse_bool(v, &c->ssl_insecure);
	} else if (!strcmp(name, "tls_intercept")) {
		r = parse_bool(v, &c->tls);
	} else if (!strcmp(name, "ktls")) {
		if (!strcmp(v, "auto"))
			c->ktls = ENG_KTLS_AUTO;
		else if (!strcmp(v, "true"))
			c->ktls = ENG_KTLS_ON;
		else if (!strcmp(v, "false"))
			c->ktls = ENG_KTLS_OFF;
		else
			r = -EINVAL;
	} else if (!strcmp(name, "confdir") || !strcmp(name, "cert_warm") ||
		   !strcmp(name, "ignore_hosts") || !strcmp(name, "allow_hosts")) {
		char *dst = !strcmp(name, "confdir") ? c->confdir
			: !strcmp(name, "cert_warm") ? c->cert_warm
			: !strcmp(name, "ignore_hosts") ? c->ignore_hosts
							: c->allow_hosts;
		if (strlen(v) >= 512)
			r = -EINVAL;
		else
			snprintf(dst, 512, "%s", v);
	} else if (!strcmp(name, "leaf_cache_size")) {
		r = cli_parse_size(v, &u64);
		if (!r && (u64 < 16 || u64 > (1u << 20)))
			r = -EINVAL;
		c->leaf_cache_size = (uint32_t)u64;
	} else if (!strcmp(name, "flowlog_rotate_size")) {
		r = cli_parse_size(v, &o->flowlog_rotate_size);
		if (!r && o->flowlog_rotate_size &&
		    o->flowlog_rotate_size < (64u << 10))
			r = -EINVAL;
	} else if (!strcmp(name, "flowlog_rotate_interval")) {
		r = cli_parse_duration_ms(v, &o->flowlog_rotate_interval_ms);
		if (!r && o->flowlog_rotate_interval_ms &&
		    o->flowlog_rotate_interval_ms < 1000)
			r = -EINVAL;
	} else if (!strcmp(name, "flowlog_compress")) {
		o->flowlog_compress_level = 0;
		if (!strcmp(v, "none")) {
			o->flowlog_compress = FLOWLOG_COMPRESS_NONE;
		} else if (!strncmp(v, "zstd", 4) && (!v[4] || v[4] == ':')) {
			o->flowlog_compress = FLOWLOG_COMPRESS_ZSTD;
			if (v[4]) {
				r = cli_parse_size(v + 5, &u64);
				if (!r && (u64 < 1 || u64 > 19))
					r = -EINVAL;
				o->flowlog_compress_level = (int)u64;
			}
		} else {
			r = -EINVAL;
		}
	} else if (!strcmp(name, "stream_large_bodies")) {
		/* mitmproxy compatibility: ringcap always streams bodies and
		 * captures up to body_capture_limit; the value is checked. */
		r = cli_parse_size(v, &u64);
	} else {
		snprintf(err, err_len, "--set %s: unknown option (see ringcap --help)",
			 name);
		return RC_CFG_BAD_OPTION;
	}
	if (r < 0) {
		snprintf(err, err_len, "--set %s: invalid value '%s'", name, v);
		return RC_CFG_BAD_VALUE;
	}
	return 0;
}

int cli_parse_args(int argc, char **argv, struct cli_opts *o)
{
	enum { OPT_MODE = 256, OPT_LISTEN_HOST, OPT_SET, OPT_VERSION };
	static const struct option longopts[] = {
		{"mode", required_argument, NULL, OPT_MODE},
		{"listen-host", required_argument, NULL, OPT_LISTEN_HOST},
		{"listen-port", required_argument, NULL, 'p'},
		{"save-stream-file", required_argument, NULL, 'w'},
		{"set", required_argument, NULL, OPT_SET},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, OPT_VERSION},
		{NULL, 0, NULL, 0},
	};
	char err[600];
	memset(o, 0, sizeof(*o));
	eng_config_defaults(&o->eng);
	optind = 1;
	int ch;
	while ((ch = getopt_long(argc, argv, "p:w:qvh", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_MODE:
			if (o->eng.nmodes >= ENG_MAX_MODES) {
				fprintf(stderr, "ringcap: at most %d --mode\n",
					ENG_MAX_MODES);
				return 2;
			}
			if (cli_parse_mode(optarg, &o->eng.modes[o->eng.nmodes],
					   err, sizeof(err)) < 0) {
				fprintf(stderr, "ringcap: %s\n", err);
				return 2;
			}
			o->eng.nmodes++;
			break;
		case OPT_LISTEN_HOST:
			snprintf(o->eng.listen_host, sizeof(o->eng.listen_host),
				 "%s", optarg);
			break;
		case 'p':
			if (parse_port(optarg, &o->eng.listen_port) < 0) {
				fprintf(stderr, "ringcap: -p %s: not a port\n",
					optarg);
				return 2;
			}
			break;
		case 'w':
			o->save_file = optarg;
			break;
		case OPT_SET:
			if (cli_set(o, optarg, err, sizeof(err)) < 0) {
				fprintf(stderr, "ringcap: %s\n", err);
				return 2;
			}
			break;
		case 'q':
			o->verbosity = -1;
			break;
		case 'v':
			if (o->verbosity >= 0)
				o->verbosity++;
			break;
		case 'h':
			cli_usage(stdout);
			return 1;
		case OPT_VERSION:
			printf("ringcap %s\n", RINGCAP_VERSION);
			return 1;
		default:
			fprintf(stderr, "ringcap: see ringcap --help\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ringcap: unexpected argument '%s' (see --help)\n",
			argv[optind]);
		return 2;
	}
	if (!o->eng.nmodes) {
		cli_parse_mode("regular", &o->eng.modes[0], err, sizeof(err));
		o->eng.nmodes = 1;
	}
	/* two listeners on one port would split connections between modes */
	for (unsigned i = 0; i < o->eng.nmodes; i++)
		for (unsigned j = i + 1; j < o->eng.nmodes; j++) {
			uint16_t a = o->eng.modes[i].listen_port
				? o->eng.modes[i].listen_port : o->eng.listen_port;
			uint16_t b = o->eng.modes[j].listen_port
				? o->eng.modes[j].listen_port : o->eng.listen_port;
			if (a == b) {
				fprintf(stderr,
					"ringcap: --mode %s and --mode %s both listen "
					"on port %u; give one of them @port\n",
					o->eng.modes[i].spec, o->eng.modes[j].spec, a);
				return 2;
			}
		}
	o->eng.verbosity = o->verbosity;
	return 0;
}
