/* SPDX-License-Identifier: MIT */
/* The flow record's msgpack encoding: round trips, exact sizes, short
 * buffers, and a decoder that refuses garbage and wrong types. */
#include <criterion/criterion.h>
#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "sink/flow.h"

static const struct flow_header req_hdrs[] = {
	{RC_STR("Host"), RC_STR("example.com")},
	{RC_STR("User-Agent"), RC_STR("curl/7.88")},
	{RC_STR("X-Bin"), RC_STR("\xff\x00\xfe")},
};
static const struct flow_header resp_hdrs[] = {
	{RC_STR("Content-Type"), RC_STR("text/html; charset=utf-8")},
	{RC_STR("Content-Length"), RC_STR("5")},
};

static void full_flow(struct flow *f)
{
	memset(f, 0, sizeof(*f));
	for (int i = 0; i < 16; i++)
		f->id[i] = (uint8_t)(0x10 * i + i);
	f->type = FLOW_HTTP;
	f->mode = FLOW_MODE_REVERSE;
	f->term = FLOW_TERM_UPSTREAM_CLOSED;
	strcpy(f->client.peer.addr, "127.0.0.1");
	f->client.peer.port = 41234;
	strcpy(f->client.local.addr, "127.0.0.1");
	f->client.local.port = 8080;
	f->client.ts_start = 1700000000.25;
	f->client.ts_end = 1700000001.5;
	f->has_server = true;
	strcpy(f->server.peer.addr, "2001:db8::1");
	f->server.peer.port = 9000;
	strcpy(f->server.local.addr, "2001:db8::2");
	f->server.local.port = 50000;
	f->server.ts_start = 1700000000.3;
	f->server.ts_setup = 1700000000.31;
	f->server.ts_end = 1700000001.4;
	f->has_request = true;
	f->req.method = RC_STR("POST");
	f->req.scheme = RC_STR("http");
	f->req.host = RC_STR("example.com");
	f->req.port = 9000;
	f->req.path = RC_STR("/a?b=c");
	f->req.http_version = RC_STR("HTTP/1.1");
	f->req.headers = req_hdrs;
	f->req.num_headers = 3;
	f->req.body.p = (const uint8_t *)"hello\0world";
	f->req.body.captured = 11;
	f->req.body.length = 11;
	f->req.ts_start = 1700000000.26;
	f->req.ts_end = 1700000000.27;
	f->has_response = true;
	f->resp.status = 200;
	f->resp.reason = RC_STR("OK");
	f->resp.http_version = RC_STR("HTTP/1.1");
	f->resp.headers = resp_hdrs;
	f->resp.num_headers = 2;
	f->resp.body.p = (const uint8_t *)"<html";
	f->resp.body.captured = 5;
	f->resp.body.length = 5000000000ull;
	f->resp.body.truncated = true;
	f->resp.ts_start = 1700000000.4;
	f->resp.ts_end = 1700000000.5;
	f->has_error = true;
	f->err.code = RC_ENG_UPSTREAM_CLOSED;
	f->err.msg = RC_STR("upstream closed the connection early");
	f->err.ts = 1700000001.0;
	f->bytes_up = 123;
	f->bytes_down = 456;
}

static void tcp_flow(struct flow *f)
{
	memset(f, 0, sizeof(*f));
	f->id[0] = 1;
	f->type = FLOW_TCP;
	strcpy(f->client.peer.addr, "::1");
	f->client.peer.port = 1;
	f->tcp_host = RC_STR("example.com");
	f->tcp_port = 443;
	f->bytes_up = 517;
	f->bytes_down = 4200;
}

static void error_flow(struct flow *f)
{
	memset(f, 0, sizeof(*f));
	f->id[15] = 0xff;
	f->term = FLOW_TERM_CLIENT_ERROR;
	f->has_error = true;
	f->err.code = RC_H1_SYNTAX;
	f->err.ts = 5;
}

static void str_eq(struct rc_str a, struct rc_str b, const char *what)
{
	cr_assert_eq(a.n, b.n, "%s length %u != %u", what, a.n, b.n);
	cr_assert(a.n == 0 || memcmp(a.p, b.p, a.n) == 0, "%s content", what);
}

static void hdrs_eq(const struct flow_header *a, uint32_t na,
		    const struct flow_header *b, uint32_t nb)
{
	cr_assert_eq(na, nb);
	for (uint32_t i = 0; i < na; i++) {
		str_eq(a[i].name, b[i].name, "header name");
		str_eq(a[i].value, b[i].value, "header value");
	}
}

static void body_eq(const struct flow_body *a, const struct flow_body *b)
{
	cr_assert_eq(a->captured, b->captured);
	cr_assert(a->captured == 0 || !memcmp(a->p, b->p, a->captured));
	cr_assert_eq(a->length, b->length);
	cr_assert_eq(a->truncated, b->truncated);
}

static void conn_eq(const struct flow_conn *a, const struct flow_conn *b)
{
	cr_assert_str_eq(a->peer.addr, b->peer.addr);
	cr_assert_eq(a->peer.port, b->peer.port);
	cr_assert_str_eq(a->local.addr, b->local.addr);
	cr_assert_eq(a->local.port, b->local.port);
	cr_assert_eq(a->ts_start, b->ts_start);
	cr_assert_eq(a->ts_setup, b->ts_setup);
	cr_assert_eq(a->ts_end, b->ts_end);
}

static void flow_eq(const struct flow *a, const struct flow *b)
{
	cr_assert(!memcmp(a->id, b->id, 16));
	cr_assert_eq(a->type, b->type);
	cr_assert_eq(a->mode, b->mode);
	cr_assert_eq(a->term, b->term);
	conn_eq(&a->client, &b->client);
	cr_assert_eq(a->has_server, b->has_server);
	if (a->has_server)
		conn_eq(&a->server, &b->server);
	cr_assert_eq(a->has_request, b->has_request);
	if (a->has_request) {
		str_eq(a->req.method, b->req.method, "method");
		str_eq(a->req.scheme, b->req.scheme, "scheme");
		str_eq(a->req.host, b->req.host, "host");
		cr_assert_eq(a->req.port, b->req.port);
		str_eq(a->req.path, b->req.path, "path");
		str_eq(a->req.http_version, b->req.http_version, "version");
		hdrs_eq(a->req.headers, a->req.num_headers, b->req.headers,
			b->req.num_headers);
		body_eq(&a->req.body, &b->req.body);
		cr_assert_eq(a->req.ts_start, b->req.ts_start);
		cr_assert_eq(a->req.ts_end, b->req.ts_end);
	}
	cr_assert_eq(a->has_response, b->has_response);
	if (a->has_response) {
		cr_assert_eq(a->resp.status, b->resp.status);
		str_eq(a->resp.reason, b->resp.reason, "reason");
		str_eq(a->resp.http_version, b->resp.http_version, "version");
		hdrs_eq(a->resp.headers, a->resp.num_headers, b->resp.headers,
			b->resp.num_headers);
		body_eq(&a->resp.body, &b->resp.body);
		cr_assert_eq(a->resp.ts_start, b->resp.ts_start);
		cr_assert_eq(a->resp.ts_end, b->resp.ts_end);
	}
	cr_assert_eq(a->has_error, b->has_error);
	if (a->has_error) {
		cr_assert_eq(a->err.code, b->err.code);
		str_eq(a->err.msg, b->err.msg, "error msg");
		cr_assert_eq(a->err.ts, b->err.ts);
	}
	str_eq(a->tcp_host, b->tcp_host, "tcp host");
	cr_assert_eq(a->tcp_port, b->tcp_port);
	cr_assert_eq(a->bytes_up, b->bytes_up);
	cr_assert_eq(a->bytes_down, b->bytes_down);
}

static void round_trip(const struct flow *f)
{
	size_t n = flow_encoded_size(f);
	uint8_t *buf = malloc(n);
	msgpack_zone zone;
	struct flow g;

	cr_assert_gt(n, 0);
	cr_assert_eq(flow_encode(f, buf, n), (ssize_t)n);
	msgpack_zone_init(&zone, 1024);
	cr_assert_eq(flow_decode(buf, n, &zone, &g), 0);
	flow_eq(f, &g);
	msgpack_zone_destroy(&zone);
	free(buf);
}

Test(flow, round_trip_full)
{
	struct flow f;

	full_flow(&f);
	round_trip(&f);
}

Test(flow, round_trip_tcp)
{
	struct flow f;

	tcp_flow(&f);
	round_trip(&f);
}

Test(flow, round_trip_error_only)
{
	struct flow f;

	error_flow(&f);
	round_trip(&f);
}

Test(flow, every_enum_value_round_trips)
{
	struct flow f;

	error_flow(&f);
	for (int t = 0; t < FLOW_TERM_COUNT; t++) {
		f.term = t;
		f.mode = t % FLOW_MODE_COUNT;
		f.type = t % FLOW_TYPE_COUNT;
		round_trip(&f);
	}
}

Test(flow, enum_names)
{
	cr_assert_str_eq(flow_type_str(FLOW_TCP), "tcp");
	cr_assert_str_eq(flow_mode_str(FLOW_MODE_UPSTREAM), "upstream");
	cr_assert_str_eq(flow_term_str(FLOW_TERM_CLIENT_TIMEOUT),
			 "client_timeout");
	cr_assert_str_eq(flow_term_str(FLOW_TERM_COUNT), "?");
	cr_assert_str_eq(flow_type_str((enum flow_type)-1), "?");
}

Test(flow, id_str)
{
	uint8_t id[16];
	char s[37];

	for (int i = 0; i < 16; i++)
		id[i] = (uint8_t)(0x10 * i + i);
	flow_id_str(id, s);
	cr_assert_str_eq(s, "00112233-4455-6677-8899-aabbccddeeff");
}

Test(flow, enospc_on_short_buffers)
{
	struct flow f;
	size_t n;
	uint8_t *buf;

	full_flow(&f);
	n = flow_encoded_size(&f);
	buf = malloc(n + 16);
	for (size_t cap = 0; cap < n; cap++) {
		memset(buf, 0xaa, n + 16);
		cr_assert_eq(flow_encode(&f, buf, cap), -ENOSPC, "cap %zu", cap);
		for (size_t i = cap; i < n + 16; i++)
			cr_assert_eq(buf[i], 0xaa, "wrote past cap %zu", cap);
	}
	cr_assert_eq(flow_encode(&f, buf, n + 16), (ssize_t)n);
	free(buf);
}

Test(flow, decoder_rejects_every_prefix)
{
	struct flow f, g;
	uint8_t buf[4096];
	msgpack_zone zone;
	ssize_t n;

	full_flow(&f);
	n = flow_encode(&f, buf, sizeof(buf));
	cr_assert_gt(n, 0);
	msgpack_zone_init(&zone, 1024);
	for (ssize_t i = 0; i < n; i++) {
		uint8_t *copy = malloc(i ? i : 1);

		memcpy(copy, buf, i);
		cr_assert_eq(flow_decode(copy, i, &zone, &g), RC_SINK_DECODE,
			     "prefix %zd", i);
		msgpack_zone_clear(&zone);
		free(copy);
	}
	/* trailing bytes are not a record either */
	buf[n] = 0xc0;
	cr_assert_eq(flow_decode(buf, n + 1, &zone, &g), RC_SINK_DECODE);
	msgpack_zone_destroy(&zone);
}

Test(flow, decoder_survives_garbage)
{
	uint8_t buf[256];
	msgpack_zone zone;
	struct flow g;
	uint32_t x = 12345;

	msgpack_zone_init(&zone, 1024);
	for (int round = 0; round < 20000; round++) {
		size_t n = (size_t)(round % 256);

		for (size_t i = 0; i < n; i++) {
			x = x * 1103515245 + 12345;
			buf[i] = (uint8_t)(x >> 16);
		}
		/* mostly: a map header first, so the walk goes deeper */
		if (n && round % 2)
			buf[0] = 0x80 | (buf[0] & 15);
		cr_assert_eq(flow_decode(buf, n, &zone, &g), RC_SINK_DECODE);
		msgpack_zone_clear(&zone);
	}
	msgpack_zone_destroy(&zone);
}

Test(flow, decoder_refuses_huge_announced_counts)
{
	static const uint8_t arr[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t map[] = {0x81, 0xa1, 'v', 0xdf, 0x10, 0, 0, 0};
	static const uint8_t bin[] = {0x81, 0xa1, 'v', 0xc6, 0x7f, 0, 0, 0};
	msgpack_zone zone;
	struct flow g;

	msgpack_zone_init(&zone, 1024);
	cr_assert_eq(flow_decode(arr, sizeof(arr), &zone, &g), RC_SINK_DECODE);
	cr_assert_eq(flow_decode(map, sizeof(map), &zone, &g), RC_SINK_DECODE);
	cr_assert_eq(flow_decode(bin, sizeof(bin), &zone, &g), RC_SINK_DECODE);
	msgpack_zone_destroy(&zone);
}

/* --- hand-made records --------------------------------------------------- */

static void key(msgpack_packer *pk, const char *k)
{
	msgpack_pack_str_with_body(pk, k, strlen(k));
}

/* The three required keys; the caller then adds |extra| pairs. */
static void head(msgpack_packer *pk, size_t extra)
{
	static const uint8_t id[16] = {1, 2, 3};

	msgpack_pack_map(pk, 3 + extra);
	key(pk, "v");
	msgpack_pack_uint8(pk, 1);
	key(pk, "id");
	msgpack_pack_bin_with_body(pk, id, 16);
	key(pk, "type");
	key(pk, "http");
}

static int decode_sbuf(msgpack_sbuffer *sb, struct flow *g,
		       msgpack_zone *zone)
{
	return flow_decode(sb->data, sb->size, zone, g);
}

Test(flow, minimal_record_and_unknown_keys)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_zone zone;
	struct flow g;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_zone_init(&zone, 1024);
	head(&pk, 3);
	key(&pk, "future");
	msgpack_pack_map(&pk, 1);
	key(&pk, "x");
	msgpack_pack_array(&pk, 0);
	key(&pk, "request");
	msgpack_pack_map(&pk, 3);
	key(&pk, "method");
	key(&pk, "GET"); /* str accepted where bin is written */
	key(&pk, "new_field");
	msgpack_pack_nil(&pk);
	key(&pk, "ts_start");
	msgpack_pack_uint32(&pk, 7); /* integer timestamps are fine */
	msgpack_pack_int(&pk, 42); /* a non-string key is ignored */
	msgpack_pack_int(&pk, 43);
	cr_assert_eq(decode_sbuf(&sb, &g, &zone), 0);
	cr_assert(g.has_request);
	cr_assert_eq(g.req.method.n, 3);
	cr_assert(!memcmp(g.req.method.p, "GET", 3));
	cr_assert_eq(g.req.ts_start, 7.0);
	cr_assert_eq(g.id[2], 3);
	cr_assert_eq(g.type, FLOW_HTTP);
	cr_assert_eq(g.term, FLOW_TERM_OK);
	cr_assert(!g.has_response && !g.has_error && !g.has_server);
	msgpack_zone_destroy(&zone);
	msgpack_sbuffer_destroy(&sb);
}

/* One bad value under |k1| (top level) or |k1|.|k2|. */
typedef void (*bad_fn)(msgpack_packer *pk);

static void expect_bad(const char *k1, const char *k2, bad_fn bad)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_zone zone;
	struct flow g;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_zone_init(&zone, 1024);
	head(&pk, 1);
	key(&pk, k1);
	if (k2) {
		msgpack_pack_map(&pk, 1);
		key(&pk, k2);
	}
	bad(&pk);
	cr_assert_eq(decode_sbuf(&sb, &g, &zone), RC_SINK_DECODE, "%s.%s",
		     k1, k2 ? k2 : "");
	msgpack_zone_destroy(&zone);
	msgpack_sbuffer_destroy(&sb);
}

static void bad_str(msgpack_packer *pk) { key(pk, "x"); }
static void bad_int(msgpack_packer *pk) { msgpack_pack_int(pk, -1); }
static void bad_big(msgpack_packer *pk) { msgpack_pack_uint32(pk, 70000); }
static void bad_arr(msgpack_packer *pk) { msgpack_pack_array(pk, 0); }
static void bad_map(msgpack_packer *pk) { msgpack_pack_map(pk, 0); }
static void bad_nil(msgpack_packer *pk) { msgpack_pack_nil(pk); }
static void bad_v2(msgpack_packer *pk) { msgpack_pack_uint8(pk, 2); }
static void bad_long_addr(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 2);
	key(pk, "0123456789012345678901234567890123456789012345678");
	msgpack_pack_uint8(pk, 1);
}
static void bad_pairs(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, 1);
	key(pk, "Host");
}
static void bad_hdr_type(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, 2);
	key(pk, "Host");
	msgpack_pack_int(pk, 5);
}

Test(flow, decoder_rejects_wrong_types)
{
	expect_bad("v", NULL, bad_str);
	expect_bad("v", NULL, bad_v2);
	expect_bad("type", NULL, bad_str);
	expect_bad("mode", NULL, bad_int);
	expect_bad("term", NULL, bad_str);
	expect_bad("client", NULL, bad_arr);
	expect_bad("client", "peer", bad_map);
	expect_bad("client", "peer", bad_long_addr);
	expect_bad("client", "ts_start", bad_str);
	expect_bad("server", "ts_end", bad_nil);
	expect_bad("request", NULL, bad_str);
	expect_bad("request", "port", bad_big);
	expect_bad("request", "port", bad_int);
	expect_bad("request", "method", bad_int);
	expect_bad("request", "headers", bad_pairs);
	expect_bad("request", "headers", bad_hdr_type);
	expect_bad("request", "headers", bad_map);
	expect_bad("request", "body", bad_int);
	expect_bad("request", "body_truncated", bad_int);
	expect_bad("response", "status", bad_big);
	expect_bad("response", "reason", bad_arr);
	expect_bad("response", "body_len", bad_int);
	expect_bad("error", "code", bad_str);
	expect_bad("error", "msg", bad_nil);
	expect_bad("tcp", "bytes_up", bad_str);
	expect_bad("tcp", NULL, bad_arr);
}

Test(flow, decoder_requires_version_id_type)
{
	static const char *const keys[] = {"v", "id", "type"};
	struct flow f, g;
	msgpack_zone zone;

	tcp_flow(&f);
	msgpack_zone_init(&zone, 1024);
	for (int skip = 0; skip < 3; skip++) {
		msgpack_sbuffer sb;
		msgpack_packer pk;

		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, 2);
		for (int i = 0; i < 3; i++) {
			if (i == skip)
				continue;
			key(&pk, keys[i]);
			if (i == 0)
				msgpack_pack_uint8(&pk, 1);
			else if (i == 1)
				msgpack_pack_bin_with_body(&pk, f.id, 16);
			else
				key(&pk, "tcp");
		}
		cr_assert_eq(decode_sbuf(&sb, &g, &zone), RC_SINK_DECODE);
		msgpack_sbuffer_destroy(&sb);
	}
	msgpack_zone_destroy(&zone);
}
