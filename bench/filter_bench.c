/* SPDX-License-Identifier: MIT */
/* Filter and flow-log reading throughput (issue 5's benchmark):
 *   filter_bench gen FILE [N]        write N synthetic flows (default 1M) as
 *                                    a flow log (flow_encode + FLOWLOG.md)
 *   filter_bench run FILE [EXPR...]  read, decode and filter FILE once per
 *                                    expression on one core; flows/s each
 * The run prints, for each expression, the read+decode+filter rate, the
 * rate of read+decode alone, and the matches (compare with
 * `mitmdump -nr FILE.flow EXPR | wc -l`). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "sink/filter.h"
#include "sink/flowlog.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const hosts[] = {"example.com", "api.example.com",
	"cdn.example.net", "login.example.org", "10.0.0.7"};
static const char *const paths[] = {"/", "/api/v1/users?id=42",
	"/static/app.js", "/img/logo.png", "/login", "/api/v2/orders/17"};
static const char *const ctypes[] = {"text/html; charset=utf-8",
	"application/json", "application/javascript", "image/png",
	"text/css"};
static const uint16_t statuses[] = {200, 200, 200, 304, 404, 500, 302};

static uint32_t rnd(uint64_t *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)(*s >> 33);
}

/* A plausible HTTP/1.1 flow: 6 request and 5 response headers, a small
 * JSON body on POSTs, 1 in 50 an upstream error, 1 in 100 a tunnel. */
static void make_flow(struct flow *f, uint64_t i, uint64_t *seed,
		      struct flow_header *rq, struct flow_header *rs,
		      char *hostport, size_t hpn)
{
	memset(f, 0, sizeof(*f));
	for (int k = 0; k < 16; k++)
		f->id[k] = (uint8_t)rnd(seed);
	const char *host = hosts[rnd(seed) % 5];
	double t0 = 1.7e9 + (double)i * 0.001;
	f->type = rnd(seed) % 100 == 0 ? FLOW_TCP : FLOW_HTTP;
	f->mode = FLOW_MODE_REGULAR;
	f->term = FLOW_TERM_OK;
	snprintf(f->client.peer.addr, sizeof(f->client.peer.addr), "10.1.%u.%u",
		 rnd(seed) % 256, rnd(seed) % 256);
	f->client.peer.port = (uint16_t)(32768 + rnd(seed) % 28000);
	snprintf(f->client.local.addr, sizeof(f->client.local.addr),
		 "10.0.0.1");
	f->client.local.port = 8080;
	f->client.ts_start = t0;
	f->client.ts_end = t0 + 0.01;
	f->has_server = true;
	snprintf(f->server.peer.addr, sizeof(f->server.peer.addr), "93.184.%u.%u",
		 rnd(seed) % 256, rnd(seed) % 256);
	f->server.peer.port = 80;
	f->server.ts_start = t0 + 0.001;
	f->server.ts_setup = t0 + 0.002;
	if (f->type == FLOW_TCP) {
		f->tcp_host = (struct rc_str){host, (uint32_t)strlen(host)};
		f->tcp_port = 443;
		f->bytes_up = 517;
		f->bytes_down = 4200;
		return;
	}
	bool post = rnd(seed) % 5 == 0;
	snprintf(hostport, hpn, "%s", host);
	rq[0] = (struct flow_header){RC_STR("Host"),
		{hostport, (uint32_t)strlen(hostport)}};
	rq[1] = (struct flow_header){RC_STR("User-Agent"),
		RC_STR("Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0")};
	rq[2] = (struct flow_header){RC_STR("Accept"), RC_STR("*/*")};
	rq[3] = (struct flow_header){RC_STR("Accept-Encoding"),
		RC_STR("gzip, deflate, br")};
	rq[4] = (struct flow_header){RC_STR("Cookie"),
		RC_STR("session=6f1c2b7e9a0d4c3b8e5f")};
	rq[5] = (struct flow_header){RC_STR("Content-Type"),
		RC_STR("application/json")};
	f->has_request = true;
	f->req.method = post ? RC_STR("POST") : RC_STR("GET");
	f->req.scheme = RC_STR("http");
	f->req.host = (struct rc_str){host, (uint32_t)strlen(host)};
	f->req.port = 80;
	const char *p = paths[rnd(seed) % 6];
	f->req.path = (struct rc_str){p, (uint32_t)strlen(p)};
	f->req.http_version = RC_STR("HTTP/1.1");
	f->req.headers = rq;
	f->req.num_headers = post ? 6 : 5;
	static const uint8_t json[] = "{\"user\":\"alice\",\"qty\":3}";
	if (post)
		f->req.body = (struct flow_body){json, sizeof(json) - 1,
						 sizeof(json) - 1, false};
	f->req.ts_start = t0 + 0.0005;
	f->req.ts_end = t0 + 0.0006;
	if (rnd(seed) % 50 == 0) {
		f->has_error = true;
		f->err.code = RC_ENG_UPSTREAM_REFUSED;
		f->err.msg = RC_STR("upstream connection refused");
		f->err.ts = t0 + 0.003;
		f->term = FLOW_TERM_UPSTREAM_ERROR;
		return;
	}
	const char *ct = ctypes[rnd(seed) % 5];
	rs[0] = (struct flow_header){RC_STR("Server"), RC_STR("nginx/1.22.1")};
	rs[1] = (struct flow_header){RC_STR("Date"),
		RC_STR("Mon, 01 Jan 2024 00:00:00 GMT")};
	rs[2] = (struct flow_header){RC_STR("Content-Type"),
		{ct, (uint32_t)strlen(ct)}};
	rs[3] = (struct flow_header){RC_STR("Content-Length"), RC_STR("612")};
	rs[4] = (struct flow_header){RC_STR("Connection"), RC_STR("keep-alive")};
	static uint8_t body[612];
	if (!body[0])
		for (size_t k = 0; k < sizeof(body); k++)
			body[k] = (uint8_t)("<html><body>Hello, world. "[k % 26]);
	f->has_response = true;
	f->resp.status = statuses[rnd(seed) % 7];
	f->resp.reason = RC_STR("OK");
	f->resp.http_version = RC_STR("HTTP/1.1");
	f->resp.headers = rs;
	f->resp.num_headers = 5;
	f->resp.body = (struct flow_body){body, sizeof(body), sizeof(body),
					  false};
	f->resp.ts_start = t0 + 0.004;
	f->resp.ts_end = t0 + 0.005;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static int gen(const char *path, uint64_t n)
{
	FILE *o = fopen(path, "wb");
	if (!o) {
		fprintf(stderr, "filter_bench: %s: %s\n", path, strerror(errno));
		return 1;
	}
	static char obuf[1 << 20];
	setvbuf(o, obuf, _IOFBF, sizeof(obuf));
	uint8_t hdr[24] = {0};
	memcpy(hdr, FLOWLOG_MAGIC, 16);
	put32(hdr + 16, FLOWLOG_VERSION);
	fwrite(hdr, 1, sizeof(hdr), o);
	static uint8_t rec[8 + 65536];
	uint64_t seed = 42, bytes = sizeof(hdr);
	for (uint64_t i = 0; i < n; i++) {
		struct flow f;
		struct flow_header rq[6], rs[5];
		char hp[64];
		make_flow(&f, i, &seed, rq, rs, hp, sizeof(hp));
		ssize_t len = flow_encode(&f, rec + 8, sizeof(rec) - 8);
		if (len < 0) {
			fprintf(stderr, "filter_bench: flow_encode: %zd\n", len);
			fclose(o);
			return 1;
		}
		put32(rec, (uint32_t)len);
		put32(rec + 4, (uint32_t)crc32(0, rec + 8, (uInt)len));
		fwrite(rec, 1, (size_t)len + 8, o);
		bytes += (uint64_t)len + 8;
	}
	if (fclose(o) != 0) {
		fprintf(stderr, "filter_bench: %s: %s\n", path, strerror(errno));
		return 1;
	}
	printf("wrote %llu flows, %.1f MB, to %s\n", (unsigned long long)n,
	       (double)bytes / 1e6, path);
	return 0;
}

/* One pass over |path|: decode every record, match |flt| (NULL: none).
 * Returns flows seen, *matched, and the wall time in *secs. */
static long pass(const char *path, const struct filter *flt,
		 struct filter_scratch *scr, long *matched, double *secs)
{
	struct flowlog_reader *r;
	if (flowlog_open(&r, path) < 0)
		return -1;
	msgpack_zone zone;
	msgpack_zone_init(&zone, 4096);
	long n = 0, m = 0;
	double t0 = now();
	const void *buf;
	size_t len;
	while (flowlog_next(r, &buf, &len) == 1) {
		struct flow f;
		msgpack_zone_clear(&zone);
		if (flow_decode(buf, len, &zone, &f) < 0)
			continue;
		n++;
		if (!flt || filter_match(flt, &f, scr))
			m++;
	}
	*secs = now() - t0;
	msgpack_zone_destroy(&zone);
	flowlog_close(r);
	*matched = m;
	return n;
}

#define HELD 20000 /* flows decoded into memory for the filter-only rate */

/* Decode the first HELD flows of |path| into |out| (memory from |zone|). */
static size_t hold(const char *path, msgpack_zone *zone, struct flow *out,
		   void **keep)
{
	struct flowlog_reader *r;
	if (flowlog_open(&r, path) < 0)
		return 0;
	size_t n = 0;
	const void *buf;
	size_t len;
	while (n < HELD && flowlog_next(r, &buf, &len) == 1) {
		void *copy = msgpack_zone_malloc(zone, len);
		if (!copy)
			break;
		memcpy(copy, buf, len);
		if (flow_decode(copy, len, zone, &out[n]) == 0)
			n++;
	}
	*keep = NULL;
	flowlog_close(r);
	return n;
}

/* filter_match alone, 1M evaluations over the held flows: ns each. */
static double filter_only(const struct filter *f, struct filter_scratch *scr,
			  const struct flow *fl, size_t n)
{
	long evals = 1000000, hits = 0;
	double t0 = now();
	for (long i = 0; i < evals; i++)
		hits += filter_match(f, &fl[(size_t)i % n], scr);
	double dt = now() - t0;
	if (hits < 0)
		puts("");
	return dt * 1e9 / (double)evals;
}

static int run(const char *path, char **exprs, int nexpr)
{
	static char *defaults[] = {
		"~d example.com & ~s & !~c 200",
		"~u /api/",
		"~h \"Content-Type: application/json\" | ~bq alice",
		"~t html & ~bs Hello",
		"~e | ~tcp",
	};
	if (!nexpr) {
		exprs = defaults;
		nexpr = (int)(sizeof(defaults) / sizeof(defaults[0]));
	}
	long matched;
	double base;
	long n = pass(path, NULL, NULL, &matched, &base); /* warms the cache */
	n = pass(path, NULL, NULL, &matched, &base);
	if (n < 0) {
		fprintf(stderr, "filter_bench: cannot read %s\n", path);
		return 1;
	}
	msgpack_zone hz;
	msgpack_zone_init(&hz, 1 << 20);
	static struct flow held[HELD];
	void *keep;
	size_t nheld = hold(path, &hz, held, &keep);
	if (!nheld) {
		fprintf(stderr, "filter_bench: cannot read %s\n", path);
		return 1;
	}
	printf("%-52s %10s %12s %9s %10s\n", "filter", "matched",
	       "read+filter", "ns/flow", "filter ns");
	printf("%-52s %10ld %10.0f/s %9.0f %10s\n", "(read+decode, no filter)",
	       n, (double)n / base, base * 1e9 / (double)n, "-");
	for (int i = 0; i < nexpr; i++) {
		struct filter *f;
		char err[256];
		if (filter_compile(exprs[i], &f, err, sizeof(err)) < 0) {
			fprintf(stderr, "filter_bench: %s\n", err);
			return 2;
		}
		struct filter_scratch *scr = filter_scratch_new(f);
		double secs;
		long k = pass(path, f, scr, &matched, &secs);
		double fns = filter_only(f, scr, held, nheld);
		printf("%-52s %10ld %10.0f/s %9.0f %10.0f\n", exprs[i], matched,
		       (double)k / secs, secs * 1e9 / (double)k, fns);
		filter_scratch_free(scr);
		filter_free(f);
	}
	msgpack_zone_destroy(&hz);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "gen"))
		return gen(argv[2], argc > 3 ? strtoull(argv[3], NULL, 10)
					     : 1000000);
	if (argc >= 3 && !strcmp(argv[1], "run"))
		return run(argv[2], argv + 3, argc - 3);
	fputs("usage: filter_bench gen FILE [N] | run FILE [EXPR...]\n", stderr);
	return 2;
}
