/* SPDX-License-Identifier: MIT */
/* The flow log: the writer thread over two rings, the reader after a clean
 * stop, a cut-short file and a corrupt one, and the printers' exact output. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sink/flowlog.h"

static char dir[64];

static void mk_dir(void)
{
	strcpy(dir, "/tmp/rc_flowlog_XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void rm_dir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static void path_of(char *out, const char *name)
{
	snprintf(out, 128, "%s/%s", dir, name);
}

/* Flow |seq| of ring |ring|: both numbers are in the id. */
static void seq_flow(struct flow *f, unsigned ring, uint32_t seq, char *body,
		     size_t body_len)
{
	memset(f, 0, sizeof(*f));
	f->id[0] = (uint8_t)ring;
	memcpy(f->id + 4, &seq, 4);
	f->type = FLOW_HTTP;
	strcpy(f->client.peer.addr, "10.0.0.1");
	f->client.peer.port = (uint16_t)seq;
	f->has_request = true;
	f->req.method = RC_STR("GET");
	f->req.path = RC_STR("/x");
	memset(body, 'a' + (int)(seq % 26), body_len);
	f->req.body.p = (const uint8_t *)body;
	f->req.body.captured = (uint32_t)body_len;
	f->req.body.length = body_len;
}

static void push(struct frq *q, const struct flow *f)
{
	size_t n = flow_encoded_size(f);
	void *p;

	while (!(p = frq_reserve(q, n)))
		usleep(100);
	cr_assert_eq(flow_encode(f, p, n), (ssize_t)n);
	frq_commit(q, n);
}

/* Write |n| flows alternating over two rings; returns the file size. */
static off_t write_log(const char *path, unsigned n, size_t body_max)
{
	struct flowlog_writer_opts opts = {.path = path};
	struct frq *rings[2] = {frq_create(64 * 1024), frq_create(64 * 1024)};
	struct flowlog_writer *w;
	struct flowlog_stats st;
	char *body = malloc(body_max + 1);
	struct stat sb;

	cr_assert_eq(flowlog_writer_start(&w, &opts, rings, 2), 0);
	for (unsigned i = 0; i < n; i++) {
		struct flow f;

		seq_flow(&f, i % 2, i / 2, body, (i * 37) % (body_max + 1));
		push(rings[i % 2], &f);
	}
	flowlog_writer_stats(w, &st);
	cr_assert_leq(st.records, n);
	cr_assert_eq(flowlog_writer_stop(w), 0);
	cr_assert_eq(stat(path, &sb), 0);
	frq_destroy(rings[0]);
	frq_destroy(rings[1]);
	free(body);
	return sb.st_size;
}

/* Read all records, checking per-ring order; returns the count and the
 * final return code in *end. */
static unsigned read_log(const char *path, int *end)
{
	struct flowlog_reader *r;
	const void *buf;
	size_t len;
	uint32_t next[2] = {0, 0};
	unsigned n = 0;
	msgpack_zone zone;
	int rc;

	cr_assert_eq(flowlog_open(&r, path), 0);
	msgpack_zone_init(&zone, 4096);
	while ((rc = flowlog_next(r, &buf, &len)) == 1) {
		struct flow f;
		uint32_t seq;

		cr_assert_eq(flow_decode(buf, len, &zone, &f), 0);
		cr_assert_lt(f.id[0], 2);
		memcpy(&seq, f.id + 4, 4);
		cr_assert_eq(seq, next[f.id[0]], "ring %u", f.id[0]);
		next[f.id[0]]++;
		n++;
		msgpack_zone_clear(&zone);
	}
	/* the end state sticks */
	cr_assert_eq(flowlog_next(r, &buf, &len), rc);
	msgpack_zone_destroy(&zone);
	flowlog_close(r);
	*end = rc;
	return n;
}

Test(flowlog, writer_two_rings_reader_gets_all, .init = mk_dir, .fini = rm_dir)
{
	char path[128];
	int end;

	path_of(path, "a.flows");
	write_log(path, 20000, 300);
	cr_assert_eq(read_log(path, &end), 20000);
	cr_assert_eq(end, 0);
}

Test(flowlog, stats_count_records_and_bytes, .init = mk_dir, .fini = rm_dir)
{
	struct flowlog_writer_opts opts = {.path = NULL};
	struct frq *q = frq_create(1 << 20);
	struct flowlog_writer *w;
	struct flowlog_stats st = {0};
	char path[128], body[64];
	struct stat sb;
	size_t total = 24;

	path_of(path, "s.flows");
	opts.path = path;
	cr_assert_eq(flowlog_writer_start(&w, &opts, &q, 1), 0);
	for (uint32_t i = 0; i < 100; i++) {
		struct flow f;

		seq_flow(&f, 0, i, body, i % 64);
		total += 8 + flow_encoded_size(&f);
		push(q, &f);
	}
	for (int i = 0; i < 1000 && st.records < 100; i++) {
		usleep(1000);
		flowlog_writer_stats(w, &st);
	}
	cr_assert_eq(st.records, 100);
	cr_assert_eq(flowlog_writer_stop(w), 0);
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq((size_t)sb.st_size, total);
	frq_destroy(q);
}

Test(flowlog, record_bigger_than_write_buffer, .init = mk_dir, .fini = rm_dir)
{
	struct flowlog_writer_opts opts = {.path = NULL};
	struct frq *q = frq_create(8 << 20);
	struct flowlog_writer *w;
	char path[128];
	char *body = malloc(3 << 20);
	int end;

	path_of(path, "big.flows");
	opts.path = path;
	cr_assert_eq(flowlog_writer_start(&w, &opts, &q, 1), 0);
	for (uint32_t i = 0; i < 5; i++) {
		struct flow f;

		seq_flow(&f, 0, i, body, i % 2 ? 3 << 20 : 100);
		push(q, &f);
	}
	cr_assert_eq(flowlog_writer_stop(w), 0);
	cr_assert_eq(read_log(path, &end), 5);
	cr_assert_eq(end, 0);
	frq_destroy(q);
	free(body);
}

Test(flowlog, writer_refuses_bad_path)
{
	struct flowlog_writer_opts opts = {.path = "/nonexistent/dir/x"};
	struct frq *q = frq_create(0);
	struct flowlog_writer *w;

	cr_assert_eq(flowlog_writer_start(&w, &opts, &q, 1), -ENOENT);
	frq_destroy(q);
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

/* Start offset of the last record: walk the frames. */
static size_t last_record_offset(const char *path, size_t size)
{
	FILE *in = fopen(path, "rb");
	size_t off = 24, last = 24;

	while (off < size) {
		uint8_t fr[8];
		uint32_t len;

		fseek(in, (long)off, SEEK_SET);
		cr_assert_eq(fread(fr, 1, 8, in), 8);
		len = fr[0] | fr[1] << 8 | fr[2] << 16 | (uint32_t)fr[3] << 24;
		last = off;
		off += 8 + len;
	}
	cr_assert_eq(off, size);
	fclose(in);
	return last;
}

Test(flowlog, truncation_at_every_offset, .init = mk_dir, .fini = rm_dir)
{
	char path[128], cut[128];
	size_t size, last;
	int end;

	path_of(path, "t.flows");
	path_of(cut, "cut.flows");
	size = (size_t)write_log(path, 7, 200);
	last = last_record_offset(path, size);
	for (size_t n = last; n <= size; n++) {
		copy_prefix(path, cut, n);
		if (n == size) {
			cr_assert_eq(read_log(cut, &end), 7);
			cr_assert_eq(end, 0);
		} else {
			cr_assert_eq(read_log(cut, &end), 6, "cut at %zu", n);
			cr_assert_eq(end, n == last ? 0 : RC_SINK_TRUNCATED,
				     "cut at %zu", n);
		}
	}
}

static void patch(const char *path, long off, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY);

	cr_assert_eq(pwrite(fd, p, n, off), (ssize_t)n);
	close(fd);
}

Test(flowlog, corrupt_crc_and_length, .init = mk_dir, .fini = rm_dir)
{
	char path[128];
	size_t size, last;
	uint8_t b = 0x5a;
	const uint8_t huge[4] = {0, 0, 0, 0x41}; /* 1 GiB + 1 ... */
	int end;

	path_of(path, "c.flows");
	size = (size_t)write_log(path, 4, 50);
	last = last_record_offset(path, size);
	patch(path, (long)size - 1, &b, 1);
	cr_assert_eq(read_log(path, &end), 3);
	cr_assert_eq(end, RC_SINK_CORRUPT);

	patch(path, (long)last, huge, 4);
	cr_assert_eq(read_log(path, &end), 3);
	cr_assert_eq(end, RC_SINK_CORRUPT);
}

Test(flowlog, bad_magic_version_and_missing, .init = mk_dir, .fini = rm_dir)
{
	struct flowlog_reader *r;
	char path[128];
	uint8_t v2 = 2;

	path_of(path, "m.flows");
	write_log(path, 1, 10);
	patch(path, 16, &v2, 1);
	cr_assert_eq(flowlog_open(&r, path), RC_SINK_BAD_VERSION);
	patch(path, 0, "X", 1);
	cr_assert_eq(flowlog_open(&r, path), RC_SINK_BAD_MAGIC);
	cr_assert_eq(truncate(path, 10), 0);
	cr_assert_eq(flowlog_open(&r, path), RC_SINK_BAD_MAGIC);
	path_of(path, "none.flows");
	cr_assert_eq(flowlog_open(&r, path), -ENOENT);
}

Test(flowlog, empty_log_is_clean, .init = mk_dir, .fini = rm_dir)
{
	char path[128];
	int end;

	path_of(path, "e.flows");
	cr_assert_eq(write_log(path, 0, 0), 24);
	cr_assert_eq(read_log(path, &end), 0);
	cr_assert_eq(end, 0);
}

/* --- printers ----------------------------------------------------------- */

static const struct flow_header h_req[] = {
	{RC_STR("Host"), RC_STR("127.0.0.1:9000")},
};
static const struct flow_header h_resp[] = {
	{RC_STR("content-type"), RC_STR("text/html; charset=utf-8")},
};

static void http_flow(struct flow *f)
{
	memset(f, 0, sizeof(*f));
	f->id[15] = 1;
	strcpy(f->client.peer.addr, "127.0.0.1");
	f->client.peer.port = 41234;
	strcpy(f->client.local.addr, "127.0.0.1");
	f->client.local.port = 8080;
	f->client.ts_start = 1000;
	f->client.ts_end = 1000.5;
	f->has_request = true;
	f->req.method = RC_STR("GET");
	f->req.scheme = RC_STR("http");
	f->req.host = RC_STR("127.0.0.1");
	f->req.port = 9000;
	f->req.path = RC_STR("/x");
	f->req.http_version = RC_STR("HTTP/1.1");
	f->req.headers = h_req;
	f->req.num_headers = 1;
	f->req.ts_start = 1000;
	f->req.ts_end = 1000.001;
	f->has_response = true;
	f->resp.status = 200;
	f->resp.reason = RC_STR("OK");
	f->resp.http_version = RC_STR("HTTP/1.1");
	f->resp.headers = h_resp;
	f->resp.num_headers = 1;
	f->resp.body.length = 612;
	f->resp.ts_start = 1000.002;
	f->resp.ts_end = 1000.003;
}

/* Run a printer into a string; the caller frees it. */
static char *capture_line(const struct flow *f, int verbosity, bool json)
{
	char *s = NULL;
	size_t n = 0;
	FILE *m = open_memstream(&s, &n);

	if (json)
		flow_print_json(m, f);
	else
		flow_print_line(m, f, verbosity);
	fclose(m);
	return s;
}

static void expect_line(const struct flow *f, int verbosity, const char *want)
{
	char *s = capture_line(f, verbosity, false);

	cr_assert_str_eq(s, want);
	free(s);
}

Test(print, http_line)
{
	struct flow f;

	http_flow(&f);
	expect_line(&f, 0, "127.0.0.1:41234: GET http://127.0.0.1:9000/x "
			   "HTTP/1.1 << 200 OK text/html 612b 3ms\n");
	expect_line(&f, 1, "127.0.0.1:41234: GET http://127.0.0.1:9000/x "
			   "HTTP/1.1 << 200 OK text/html 612b 3ms\n"
			   "    > Host: 127.0.0.1:9000\n"
			   "    < content-type: text/html; charset=utf-8\n");
	f.req.port = 80;
	f.req.path = RC_STR("/a\x1b[0m");
	f.resp.num_headers = 0;
	f.resp.body.length = 4200;
	f.resp.ts_end = 1001.25;
	expect_line(&f, 0, "127.0.0.1:41234: GET http://127.0.0.1/a\\x1b[0m "
			   "HTTP/1.1 << 200 OK 4.1k 1.2s\n");
}

Test(print, sizes_and_durations)
{
	static const struct {
		uint64_t size;
		double secs;
		const char *tail;
	} cases[] = {
		{0, 0.0004, "0b 0ms"},
		{1023, 0.9994, "1023b 999ms"},
		{1024, 1.0, "1.0k 1.0s"},
		{102400, 12.34, "100k 12.3s"},
		{2411724, 99.9, "2.3m 99.9s"},
		{5000000000ull, 150, "4.7g 150s"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct flow f;
		char want[128], *s;

		http_flow(&f);
		f.resp.num_headers = 0;
		f.resp.body.length = cases[i].size;
		f.resp.ts_end = f.req.ts_start + cases[i].secs;
		snprintf(want, sizeof(want), "127.0.0.1:41234: GET "
			 "http://127.0.0.1:9000/x HTTP/1.1 << 200 OK %s\n",
			 cases[i].tail);
		s = capture_line(&f, 0, false);
		cr_assert_str_eq(s, want);
		free(s);
	}
}

Test(print, error_and_tcp_lines)
{
	struct flow f;

	http_flow(&f);
	f.client.peer.port = 41236;
	f.req.port = 1;
	f.req.path = RC_STR("/");
	f.has_response = false;
	f.has_error = true;
	f.err.code = RC_ENG_UPSTREAM_REFUSED;
	expect_line(&f, 0, "127.0.0.1:41236: GET http://127.0.0.1:1/ HTTP/1.1 "
			   "<< error: upstream connection refused "
			   "(ENG_UPSTREAM_REFUSED)\n");
	f.has_response = true;
	f.resp.num_headers = 0;
	f.err.code = RC_ENG_UPSTREAM_CLOSED;
	f.err.msg = RC_STR("closed after 10 bytes");
	expect_line(&f, 0, "127.0.0.1:41236: GET http://127.0.0.1:1/ HTTP/1.1 "
			   "<< 200 OK 612b 3ms << error: closed after 10 bytes "
			   "(ENG_UPSTREAM_CLOSED)\n");

	memset(&f, 0, sizeof(f));
	f.type = FLOW_TCP;
	strcpy(f.client.peer.addr, "127.0.0.1");
	f.client.peer.port = 41238;
	f.client.ts_start = 1000;
	f.client.ts_end = 1001.2;
	f.tcp_host = RC_STR("example.com");
	f.tcp_port = 443;
	f.bytes_up = 517;
	f.bytes_down = 4200;
	/* no request: a relay (reverse:tcp, transparent, socks5) */
	expect_line(&f, 0, "127.0.0.1:41238: TCP example.com:443 tcp up "
			   "517b down 4.1k 1.2s\n");
	/* a CONNECT tunnel has its request */
	f.has_request = true;
	f.req.method = RC_STR("CONNECT");
	expect_line(&f, 0, "127.0.0.1:41238: CONNECT example.com:443 tcp up "
			   "517b down 4.1k 1.2s\n");
	strcpy(f.client.peer.addr, "::1");
	f.tcp_host = RC_STR("2001:db8::1");
	expect_line(&f, 0, "[::1]:41238: CONNECT [2001:db8::1]:443 tcp up "
			   "517b down 4.1k 1.2s\n");
}

Test(print, json)
{
	static const struct flow_header h[] = {
		{RC_STR("X-A"), RC_STR("a\"b\\\xff\xe9 \xc3\xa9\n\x01")},
	};
	struct flow f;
	char *s;

	memset(&f, 0, sizeof(f));
	f.id[15] = 1;
	strcpy(f.client.peer.addr, "127.0.0.1");
	f.client.peer.port = 41234;
	strcpy(f.client.local.addr, "127.0.0.1");
	f.client.local.port = 8080;
	f.client.ts_start = 1000;
	f.client.ts_end = 1000.5;
	f.has_request = true;
	f.req.method = RC_STR("GET");
	f.req.scheme = RC_STR("http");
	f.req.host = RC_STR("h");
	f.req.port = 80;
	f.req.path = RC_STR("/");
	f.req.http_version = RC_STR("HTTP/1.1");
	f.req.headers = h;
	f.req.num_headers = 1;
	f.req.body.p = (const uint8_t *)"hi";
	f.req.body.captured = 2;
	f.req.body.length = 2;
	f.req.ts_start = 1000;
	f.req.ts_end = 1000.25;
	s = capture_line(&f, 0, true);
	cr_assert_str_eq(s,
		"{\"id\":\"00000000-0000-0000-0000-000000000001\","
		"\"type\":\"http\",\"mode\":\"regular\",\"term\":\"ok\","
		"\"client\":{\"peer\":[\"127.0.0.1\",41234],"
		"\"local\":[\"127.0.0.1\",8080],\"ts_start\":1000.000000,"
		"\"ts_setup\":0.000000,\"ts_end\":1000.500000},"
		"\"request\":{\"method\":\"GET\",\"scheme\":\"http\","
		"\"host\":\"h\",\"port\":80,\"path\":\"/\","
		"\"http_version\":\"HTTP/1.1\","
		"\"headers\":[[\"X-A\",\"a\\\"b\\\\\\u00ff\\u00e9 \xc3\xa9\\n\\u0001\"]],"
		"\"content\":\"aGk=\",\"content_length\":2,"
		"\"content_truncated\":false,\"ts_start\":1000.000000,"
		"\"ts_end\":1000.250000}}\n");
	free(s);

	/* response, error, tcp, base64 padding */
	memset(&f, 0, sizeof(f));
	f.type = FLOW_TCP;
	f.mode = FLOW_MODE_UPSTREAM;
	f.term = FLOW_TERM_UPSTREAM_ERROR;
	f.has_response = true;
	f.resp.status = 502;
	f.resp.body.p = (const uint8_t *)"abcd";
	f.resp.body.captured = 4;
	f.resp.body.length = 10;
	f.resp.body.truncated = true;
	f.has_error = true;
	f.err.code = -111;
	f.err.ts = 2;
	f.tcp_host = RC_STR("e.com");
	f.tcp_port = 443;
	f.bytes_up = 1;
	s = capture_line(&f, 0, true);
	cr_assert_str_eq(s,
		"{\"id\":\"00000000-0000-0000-0000-000000000000\","
		"\"type\":\"tcp\",\"mode\":\"upstream\","
		"\"term\":\"upstream_error\","
		"\"client\":{\"peer\":[\"\",0],\"local\":[\"\",0],"
		"\"ts_start\":0.000000,\"ts_setup\":0.000000,"
		"\"ts_end\":0.000000},"
		"\"response\":{\"status\":502,\"reason\":\"\","
		"\"http_version\":\"\",\"headers\":[],\"content\":\"YWJjZA==\","
		"\"content_length\":10,\"content_truncated\":true,"
		"\"ts_start\":0.000000,\"ts_end\":0.000000},"
		"\"error\":{\"code\":-111,\"name\":\"ECONNREFUSED\","
		"\"msg\":\"Connection refused\",\"ts\":2.000000},"
		"\"tcp\":{\"host\":\"e.com\",\"port\":443,\"bytes_up\":1,"
		"\"bytes_down\":0,\"truncated\":false}}\n");
	free(s);
}

Test(print, writer_prints_without_file)
{
	struct frq *q = frq_create(0);
	struct flowlog_writer_opts opts = {.path = NULL};
	struct flowlog_writer *w;
	struct flow f;
	char *s = NULL;
	size_t n = 0;

	opts.print = open_memstream(&s, &n);
	http_flow(&f);
	cr_assert_eq(flowlog_writer_start(&w, &opts, &q, 1), 0);
	push(q, &f);
	push(q, &f);
	cr_assert_eq(flowlog_writer_stop(w), 0);
	fclose(opts.print);
	cr_assert_str_eq(s, "127.0.0.1:41234: GET http://127.0.0.1:9000/x "
			    "HTTP/1.1 << 200 OK text/html 612b 3ms\n"
			    "127.0.0.1:41234: GET http://127.0.0.1:9000/x "
			    "HTTP/1.1 << 200 OK text/html 612b 3ms\n");
	free(s);
	frq_destroy(q);
}
