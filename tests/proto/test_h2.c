/* SPDX-License-Identifier: MIT */
/* proto/h2 tests: a real nghttp2 client session talks to an h2conn in
 * memory (client mem_send -> h2conn_input, h2conn_output -> client
 * mem_recv); the tests check the HTTP/1.1 bytes each stream's request
 * becomes and what the client sees of each HTTP/1.1 response fed in. Heads
 * are also fed one byte at a time and from the end of a page followed by a
 * no-access page. */
#include <criterion/criterion.h>
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/h2.h"
#include "tests/proto/harness.h"

#define MAXSID 1024
#define MAXEV 1024

/* ---- small helpers ---- */

/* ---- the test bench: one h2conn and one nghttp2 client ---- */

/* A request body the client sends: up to |max_frame| bytes per DATA
 * frame; |hold| keeps the stream open (deferred) after the bytes. */
struct cbody {
	const char *p;
	size_t len, off, max_frame;
	bool hold, deferred;
	const nghttp2_nv *trl;
	size_t ntrl;
};

/* What the client saw on one stream. */
struct cres {
	int status;
	int heads;            /* HEADERS frames with a final :status */
	int interim;          /* informational (1xx) HEADERS frames */
	bool in_interim;      /* the HEADERS being read is one */
	int trailer_frames;   /* HEADERS frames without */
	int data_frames;      /* DATA frames with a payload */
	struct dbuf hdrs;     /* "name: value\n" of the response head */
	struct dbuf trl;      /* the same for trailers */
	struct dbuf body;
	bool end_stream;      /* END_STREAM seen */
	bool got_rst;
	uint32_t rst_code;
	bool closed;
	uint32_t close_code;
};

struct bench {
	struct h2conn *c;
	nghttp2_session *cl;
	bool refuse;
	ssize_t in_rc;        /* first negative h2conn_input result */
	/* server-side events */
	int nreq;
	int32_t req_sid[MAXEV];
	int nreqdata;
	int nroom;
	uint64_t room_user[MAXEV];
	int nreset;
	uint64_t reset_user[MAXEV];
	uint32_t reset_code[MAXEV];
	/* client side */
	struct cres res[MAXSID];
	bool goaway;
	uint32_t goaway_code;
	struct dbuf wire;     /* everything h2conn_output produced */
	size_t outcap;        /* output buffer size used by pump */
};

static uint64_t user_of(int32_t sid) { return (uint64_t)sid + 1000; }

static uint64_t s_on_request(void *arg, int32_t sid)
{
	struct bench *b = arg;
	cr_assert(b->nreq < MAXEV);
	b->req_sid[b->nreq++] = sid;
	return b->refuse ? 0 : user_of(sid);
}

static void s_on_req_data(void *arg, uint64_t user)
{
	struct bench *b = arg;
	(void)user;
	b->nreqdata++;
}

static void s_on_resp_room(void *arg, uint64_t user)
{
	struct bench *b = arg;
	cr_assert(b->nroom < MAXEV);
	b->room_user[b->nroom++] = user;
}

static void s_on_reset(void *arg, uint64_t user, uint32_t code)
{
	struct bench *b = arg;
	cr_assert(b->nreset < MAXEV);
	b->reset_user[b->nreset] = user;
	b->reset_code[b->nreset++] = code;
}

static const struct h2conn_cb server_cb = {
	.on_request = s_on_request,
	.on_req_data = s_on_req_data,
	.on_resp_room = s_on_resp_room,
	.on_reset = s_on_reset,
};

static struct cres *res_of(struct bench *b, int32_t sid)
{
	cr_assert(sid > 0 && sid < MAXSID, "sid %d", sid);
	return &b->res[sid];
}

static int c_on_header(nghttp2_session *s, const nghttp2_frame *fr,
		       const uint8_t *name, size_t nl, const uint8_t *value,
		       size_t vl, uint8_t flags, void *ud)
{
	struct bench *b = ud;
	(void)s;
	(void)flags;
	if (fr->hd.type != NGHTTP2_HEADERS)
		return 0;
	struct cres *r = res_of(b, fr->hd.stream_id);
	bool trailer = r->heads > 0;
	struct dbuf *d = trailer ? &r->trl : &r->hdrs;
	if (!trailer && nl == 7 && !memcmp(name, ":status", 7) && vl &&
	    value[0] == '1') {
		r->in_interim = true; /* not part of the response head */
		return 0;
	}
	if (r->in_interim)
		return 0;
	if (!trailer && nl == 7 && !memcmp(name, ":status", 7)) {
		char st[8] = {0};
		memcpy(st, value, vl < 7 ? vl : 7);
		r->status = atoi(st);
	}
	db_add(d, name, nl);
	db_str(d, ": ");
	db_add(d, value, vl);
	db_str(d, "\n");
	return 0;
}

static int c_on_frame_recv(nghttp2_session *s, const nghttp2_frame *fr,
			   void *ud)
{
	struct bench *b = ud;
	(void)s;
	struct cres *r;
	switch (fr->hd.type) {
	case NGHTTP2_HEADERS:
		r = res_of(b, fr->hd.stream_id);
		if (r->in_interim) {
			r->in_interim = false;
			r->interim++;
			break;
		}
		if (r->heads)
			r->trailer_frames++;
		else
			r->heads++;
		if (fr->hd.flags & NGHTTP2_FLAG_END_STREAM)
			r->end_stream = true;
		break;
	case NGHTTP2_DATA:
		r = res_of(b, fr->hd.stream_id);
		if (fr->hd.length)
			r->data_frames++;
		if (fr->hd.flags & NGHTTP2_FLAG_END_STREAM)
			r->end_stream = true;
		break;
	case NGHTTP2_RST_STREAM:
		r = res_of(b, fr->hd.stream_id);
		r->got_rst = true;
		r->rst_code = fr->rst_stream.error_code;
		break;
	case NGHTTP2_GOAWAY:
		b->goaway = true;
		b->goaway_code = fr->goaway.error_code;
		break;
	default:
		break;
	}
	return 0;
}

static int c_on_data(nghttp2_session *s, uint8_t flags, int32_t sid,
		     const uint8_t *data, size_t len, void *ud)
{
	struct bench *b = ud;
	(void)s;
	(void)flags;
	db_add(&res_of(b, sid)->body, data, len);
	return 0;
}

static int c_on_close(nghttp2_session *s, int32_t sid, uint32_t code,
		      void *ud)
{
	struct bench *b = ud;
	(void)s;
	struct cres *r = res_of(b, sid);
	r->closed = true;
	r->close_code = code;
	return 0;
}

static ssize_t c_read_body(nghttp2_session *s, int32_t sid, uint8_t *buf,
			   size_t length, uint32_t *flags,
			   nghttp2_data_source *src, void *ud)
{
	struct cbody *cb = src->ptr;
	(void)ud;
	size_t n = cb->len - cb->off;
	if (n > length)
		n = length;
	if (cb->max_frame && n > cb->max_frame)
		n = cb->max_frame;
	memcpy(buf, cb->p + cb->off, n);
	cb->off += n;
	if (cb->off == cb->len) {
		if (cb->hold) {
			if (!n) {
				cb->deferred = true;
				return NGHTTP2_ERR_DEFERRED;
			}
			return (ssize_t)n;
		}
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (cb->ntrl) {
			cr_assert(nghttp2_submit_trailer(s, sid, cb->trl,
							 cb->ntrl) == 0);
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		}
	}
	return (ssize_t)n;
}

/* Move bytes both ways until neither side has anything to say. */
static void pump(struct bench *b)
{
	uint8_t buf[16384];
	size_t cap = b->outcap ? b->outcap : sizeof(buf);
	for (int round = 0; round < 100000; round++) {
		bool moved = false;
		const uint8_t *d;
		ssize_t n;
		while ((n = nghttp2_session_mem_send(b->cl, &d)) > 0) {
			moved = true;
			if (b->in_rc < 0)
				continue;
			ssize_t r = h2conn_input(b->c, d, (size_t)n);
			if (r < 0)
				b->in_rc = r;
			else
				cr_assert_eq(r, n);
		}
		cr_assert_geq(n, 0);
		while ((n = h2conn_output(b->c, buf, cap)) > 0) {
			moved = true;
			db_add(&b->wire, buf, (size_t)n);
			ssize_t r = nghttp2_session_mem_recv(b->cl, buf, (size_t)n);
			cr_assert_eq(r, n, "client mem_recv: %zd (%s)", r,
				     r < 0 ? nghttp2_strerror((int)r) : "");
		}
		cr_assert_geq(n, 0);
		if (!moved)
			return;
	}
	cr_assert_fail("pump did not settle");
}

static void bench_init(struct bench *b, const struct h2conn_opts *o)
{
	memset(b, 0, sizeof(*b));
	cr_assert_eq(h2conn_new(&b->c, &server_cb, b, o), 0);
	nghttp2_session_callbacks *cbs;
	cr_assert_eq(nghttp2_session_callbacks_new(&cbs), 0);
	nghttp2_session_callbacks_set_on_header_callback(cbs, c_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, c_on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, c_on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, c_on_close);
	cr_assert_eq(nghttp2_session_client_new(&b->cl, cbs, b), 0);
	nghttp2_session_callbacks_del(cbs);
	cr_assert_eq(nghttp2_submit_settings(b->cl, NGHTTP2_FLAG_NONE, NULL, 0), 0);
	/* the handshake: both SETTINGS seen and acknowledged */
	pump(b);
}

static void bench_free(struct bench *b)
{
	nghttp2_session_del(b->cl);
	h2conn_free(b->c);
	for (int i = 0; i < MAXSID; i++) {
		db_free(&b->res[i].hdrs);
		db_free(&b->res[i].trl);
		db_free(&b->res[i].body);
	}
	db_free(&b->wire);
}

#define NV(n, v)                                                            \
	{                                                                   \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, \
			NGHTTP2_NV_FLAG_NONE                                 \
	}
#define NVN(a) (sizeof(a) / sizeof((a)[0]))

static int32_t submit(struct bench *b, const nghttp2_nv *nv, size_t n,
		      struct cbody *body)
{
	nghttp2_data_provider prd = {.source.ptr = body,
				     .read_callback = c_read_body};
	int32_t sid = nghttp2_submit_request(b->cl, NULL, nv, n,
					     body ? &prd : NULL, NULL);
	cr_assert_gt(sid, 0, "submit_request: %s", nghttp2_strerror(sid));
	return sid;
}

/* A GET to /x; returns the stream id once h2conn has the request. */
static int32_t simple_get(struct bench *b, const char *method)
{
	nghttp2_nv nv[] = {
		{(uint8_t *)":method", (uint8_t *)method, 7, strlen(method),
		 NGHTTP2_NV_FLAG_NONE},
		NV(":scheme", "https"),
		NV(":authority", "example.com"),
		NV(":path", "/x"),
	};
	int before = b->nreq;
	int32_t sid = submit(b, nv, NVN(nv), NULL);
	pump(b);
	cr_assert_eq(b->nreq, before + 1);
	cr_assert_eq(b->req_sid[before], sid);
	return sid;
}

/* The request bytes h2conn holds for |sid|, all taken. */
static void take_req(struct bench *b, int32_t sid, struct dbuf *out)
{
	const char *p;
	size_t n = h2conn_req_peek(b->c, sid, &p);
	if (n) {
		db_add(out, p, n);
		h2conn_req_consume(b->c, sid, n);
	}
}

static void feed_all(struct bench *b, int32_t sid, const char *s)
{
	size_t n = strlen(s);
	cr_assert_eq(h2conn_resp_feed(b->c, sid, s, n), (ssize_t)n);
}

/* ---- h2_sniff_preface ---- */

Test(h2_sniff, preface_full_partial_wrong)
{
	struct guard g;
	guard_init(&g, 64);
	const char *pf = H2_PREFACE "\x00\x00\x00\x04";
	char *p = guard_put(&g, pf, H2_PREFACE_LEN);
	cr_assert_eq(h2_sniff_preface(p, H2_PREFACE_LEN), 1);
	p = guard_put(&g, pf, H2_PREFACE_LEN + 4);
	cr_assert_eq(h2_sniff_preface(p, H2_PREFACE_LEN + 4), 1);
	for (size_t n = 0; n < H2_PREFACE_LEN; n++) {
		p = guard_put(&g, pf, n);
		cr_assert_eq(h2_sniff_preface(p, n), 0, "prefix %zu", n);
	}
	const char *wrong[] = {"GET / HTTP/1.1\r\n\r\n", "PRI * HTTP/1.1\r\n",
			       "X", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\r",
			       "\x16\x03\x01\x02\x00\x01"};
	for (size_t i = 0; i < NVN(wrong); i++) {
		size_t n = strlen(wrong[i]);
		p = guard_put(&g, wrong[i], n);
		cr_assert_eq(h2_sniff_preface(p, n), -1, "%s", wrong[i]);
	}
	guard_free(&g);
}

/* ---- requests ---- */

Test(h2_req, get_authority_without_host)
{
	struct bench b;
	bench_init(&b, NULL);
	nghttp2_nv nv[] = {
		NV(":method", "GET"), NV(":scheme", "https"),
		NV(":authority", "example.com:8443"), NV(":path", "/a?b=c"),
		NV("user-agent", "t/1"), NV("accept", "*/*"),
	};
	int32_t sid = submit(&b, nv, NVN(nv), NULL);
	pump(&b);
	cr_assert_eq(b.nreq, 1);
	cr_assert_eq(b.req_sid[0], sid);
	cr_assert_eq(h2conn_req_synth(b.c, sid), 1);
	cr_assert_not(h2conn_req_done(b.c, sid));
	struct dbuf r = {0};
	take_req(&b, sid, &r);
	cr_assert_str_eq(db_s(&r), "GET /a?b=c HTTP/1.1\r\n"
				   "user-agent: t/1\r\n"
				   "accept: */*\r\n"
				   "host: example.com:8443\r\n\r\n");
	cr_assert(h2conn_req_done(b.c, sid));
	cr_assert_eq(h2conn_open_streams(b.c), 1);
	db_free(&r);
	bench_free(&b);
}

Test(h2_req, host_field_kept_nothing_synthesized)
{
	struct bench b;
	bench_init(&b, NULL);
	nghttp2_nv nv[] = {
		NV(":method", "GET"), NV(":scheme", "http"),
		NV(":path", "/"), NV("host", "h.example"),
	};
	int32_t sid = submit(&b, nv, NVN(nv), NULL);
	pump(&b);
	cr_assert_eq(b.nreq, 1);
	cr_assert_eq(h2conn_req_synth(b.c, sid), 0);
	struct dbuf r = {0};
	take_req(&b, sid, &r);
	cr_assert_str_eq(db_s(&r), "GET / HTTP/1.1\r\nhost: h.example\r\n\r\n");
	db_free(&r);
	bench_free(&b);
}

Test(h2_req, post_with_content_length)
{
	struct bench b;
	bench_init(&b, NULL);
	nghttp2_nv nv[] = {
		NV(":method", "POST"), NV(":scheme", "https"),
		NV(":authority", "h"), NV(":path", "/up"),
		NV("content-length", "11"),
	};
	struct cbody body = {.p = "hello world", .len = 11};
	int32_t sid = submit(&b, nv, NVN(nv), &body);
	pump(&b);
	cr_assert_eq(b.nreq, 1);
	cr_assert_eq(h2conn_req_synth(b.c, sid), 1);
	cr_assert(b.nreqdata >= 1);
	struct dbuf r = {0};
	take_req(&b, sid, &r);
	cr_assert_str_eq(db_s(&r), "POST /up HTTP/1.1\r\ncontent-length: 11\r\n"
				   "host: h\r\n\r\nhello world");
	cr_assert(h2conn_req_done(b.c, sid));
	db_free(&r);
	bench_free(&b);
}

/* Strictly undo chunked framing: the payload, the number of chunks (not
 * counting the last) and the trailer section. */
static void dechunk(const char *s, size_t n, struct dbuf *payload,
		    int *chunks, struct dbuf *trailers)
{
	size_t i = 0;
	*chunks = 0;
	for (;;) {
		char *end;
		unsigned long sz = strtoul(s + i, &end, 16);
		cr_assert(end > s + i);
		i = (size_t)(end - s);
		cr_assert(i + 2 <= n && s[i] == '\r' && s[i + 1] == '\n');
		i += 2;
		if (!sz)
			break;
		cr_assert(i + sz + 2 <= n);
		db_add(payload, s + i, sz);
		i += sz;
		cr_assert(s[i] == '\r' && s[i + 1] == '\n');
		i += 2;
		(*chunks)++;
	}
	db_add(trailers, s + i, n - i);
}

Test(h2_req, post_without_length_is_chunked_with_trailers)
{
	struct bench b;
	bench_init(&b, NULL);
	nghttp2_nv nv[] = {
		NV(":method", "POST"), NV(":scheme", "https"),
		NV(":authority", "h"), NV(":path", "/c"),
		NV("content-type", "application/octet-stream"),
	};
	nghttp2_nv trl[] = {NV("x-sum", "1234"), NV("x-other", "two")};
	size_t blen = 40000;
	char *data = malloc(blen);
	for (size_t i = 0; i < blen; i++)
		data[i] = (char)('a' + i % 26);
	struct cbody body = {.p = data, .len = blen, .max_frame = 7000,
			     .trl = trl, .ntrl = NVN(trl)};
	int32_t sid = submit(&b, nv, NVN(nv), &body);
	pump(&b);
	cr_assert_eq(b.nreq, 1);
	cr_assert_eq(h2conn_req_synth(b.c, sid), 2);
	struct dbuf r = {0};
	take_req(&b, sid, &r);
	cr_assert(h2conn_req_done(b.c, sid));
	const char *head = "POST /c HTTP/1.1\r\n"
			   "content-type: application/octet-stream\r\n"
			   "host: h\r\ntransfer-encoding: chunked\r\n\r\n";
	size_t hl = strlen(head);
	cr_assert(r.n > hl);
	cr_assert(!memcmp(r.p, head, hl), "%s", r.p);
	struct dbuf pl = {0}, tr = {0};
	int chunks;
	dechunk(r.p + hl, r.n - hl, &pl, &chunks, &tr);
	cr_assert_eq(pl.n, blen);
	cr_assert(!memcmp(pl.p, data, blen));
	cr_assert_geq(chunks, 6, "one chunk per DATA frame: %d", chunks);
	cr_assert_str_eq(db_s(&tr), "x-sum: 1234\r\nx-other: two\r\n\r\n");
	db_free(&pl);
	db_free(&tr);
	db_free(&r);
	free(data);
	bench_free(&b);
}

Test(h2_req, chunked_body_without_trailers)
{
	struct bench b;
	bench_init(&b, NULL);
	nghttp2_nv nv[] = {NV(":method", "PUT"), NV(":scheme", "https"),
			   NV(":authority", "h"), NV(":path", "/p")};
	struct cbody body = {.p = "abcdef", .len = 6, .max_frame = 4};
	int32_t sid = submit(&b, nv, NVN(nv), &body);
	pump(&b);
	struct dbuf r = {0};
	take_req(&b, sid, &r);
	cr_assert_str_eq(db_s(&r), "PUT /p HTTP/1.1\r\nhost: h\r\n"
				   "transfer-encoding: chunked\r\n\r\n"
				   "4\r\nabcd\r\n2\r\nef\r\n0\r\n\r\n");
	cr_assert(h2conn_req_done(b.c, sid));
	db_free(&r);
	bench_free(&b);
}

Test(h2_req, end_stream_on_headers_gives_length_zero)
{
	struct bench b;
	bench_init(&b, NULL);
	const char *methods[] = {"POST", "PUT", "PATCH", "GET", "DELETE"};
	for (size_t i = 0; i < NVN(methods); i++) {
		int32_t sid = simple_get(&b, methods[i]);
		bool want_cl = i < 3;
		cr_assert_eq(h2conn_req_synth(b.c, sid), want_cl ? 2 : 1);
		struct dbuf r = {0}, want = {0};
		take_req(&b, sid, &r);
		db_str(&want, methods[i]);
		db_str(&want, " /x HTTP/1.1\r\nhost: example.com\r\n");
		if (want_cl)
			db_str(&want, "content-length: 0\r\n");
		db_str(&want, "\r\n");
		cr_assert_str_eq(db_s(&r), db_s(&want));
		cr_assert(h2conn_req_done(b.c, sid));
		db_free(&r);
		db_free(&want);
	}
	bench_free(&b);
}

Test(h2_req, cookies_joined)
{
	struct bench b;
	bench_init(&b, NULL);
	nghttp2_nv nv[] = {
		NV(":method", "GET"), NV(":scheme", "https"),
		NV(":authority", "h"), NV(":path", "/"),
		NV("cookie", "a=1"), NV("x-mid", "m"), NV("cookie", "b=2"),
		NV("cookie", "c=3"),
	};
	int32_t sid = submit(&b, nv, NVN(nv), NULL);
	pump(&b);
	struct dbuf r = {0};
	take_req(&b, sid, &r);
	cr_assert_str_eq(db_s(&r), "GET / HTTP/1.1\r\nx-mid: m\r\n"
				   "cookie: a=1; b=2; c=3\r\nhost: h\r\n\r\n");
	cr_assert_eq(h2conn_req_synth(b.c, sid), 1);
	db_free(&r);
	bench_free(&b);
}

Test(h2_req, connect_refused)
{
	struct bench b;
	bench_init(&b, NULL);
	nghttp2_nv nv[] = {NV(":method", "CONNECT"),
			   NV(":authority", "example.com:443")};
	int32_t sid = submit(&b, nv, NVN(nv), NULL);
	pump(&b);
	cr_assert_eq(b.nreq, 0);
	cr_assert(b.res[sid].got_rst);
	cr_assert_eq(b.res[sid].rst_code, NGHTTP2_REFUSED_STREAM);
	cr_assert_eq(h2conn_open_streams(b.c), 0);
	/* the connection goes on */
	int32_t s2 = simple_get(&b, "GET");
	cr_assert_gt(s2, sid);
	bench_free(&b);
}

/* Only origin form (or "*" for OPTIONS) reaches HTTP/1.1: nghttp2 checks
 * :path only for the http and https schemes. */
Test(h2_req, path_not_origin_form_rejected)
{
	struct bench b;
	bench_init(&b, NULL);
	const char *paths[] = {"http://other.example/x", "x", "*"};
	for (size_t i = 0; i < NVN(paths); i++) {
		nghttp2_nv nv[] = {NV(":method", "GET"), NV(":scheme", "foo"),
				   NV(":authority", "h"),
				   {(uint8_t *)":path", (uint8_t *)paths[i], 5,
				    strlen(paths[i]), NGHTTP2_NV_FLAG_NONE}};
		int32_t sid = submit(&b, nv, NVN(nv), NULL);
		pump(&b);
		cr_assert_eq(b.nreq, 0, "%s", paths[i]);
		cr_assert(b.res[sid].got_rst, "%s", paths[i]);
		cr_assert_eq(b.res[sid].rst_code, NGHTTP2_PROTOCOL_ERROR);
	}
	nghttp2_nv nv[] = {NV(":method", "OPTIONS"), NV(":scheme", "https"),
			   NV(":authority", "h"), NV(":path", "*")};
	int32_t sid = submit(&b, nv, NVN(nv), NULL);
	pump(&b);
	cr_assert_eq(b.nreq, 1);
	struct dbuf r = {0};
	take_req(&b, sid, &r);
	cr_assert_str_eq(db_s(&r), "OPTIONS * HTTP/1.1\r\nhost: h\r\n\r\n");
	db_free(&r);
	cr_assert_eq(h2conn_open_streams(b.c), 1);
	bench_free(&b);
}

Test(h2_req, refused_by_engine)
{
	struct bench b;
	bench_init(&b, NULL);
	b.refuse = true;
	nghttp2_nv nv[] = {NV(":method", "POST"), NV(":scheme", "https"),
			   NV(":authority", "h"), NV(":path", "/")};
	struct cbody body = {.p = "xyz", .len = 3};
	int32_t sid = submit(&b, nv, NVN(nv), &body);
	pump(&b);
	cr_assert_eq(b.nreq, 1);
	cr_assert(b.res[sid].got_rst);
	cr_assert_eq(b.res[sid].rst_code, NGHTTP2_REFUSED_STREAM);
	cr_assert_eq(b.nreset, 0);
	cr_assert_eq(h2conn_open_streams(b.c), 0);
	bench_free(&b);
}

Test(h2_req, header_list_too_large_resets_stream)
{
	struct bench b;
	struct h2conn_opts o = {.max_header_list = 1000};
	bench_init(&b, &o);
	char big[2000];
	memset(big, 'v', sizeof(big));
	nghttp2_nv nv[] = {NV(":method", "GET"), NV(":scheme", "https"),
			   NV(":authority", "h"), NV(":path", "/"),
			   {(uint8_t *)"x-big", (uint8_t *)big, 5, sizeof(big),
			    NGHTTP2_NV_FLAG_NONE}};
	int32_t sid = submit(&b, nv, NVN(nv), NULL);
	pump(&b);
	cr_assert_eq(b.nreq, 0);
	cr_assert(b.res[sid].got_rst);
	cr_assert_eq(h2conn_open_streams(b.c), 0);
	simple_get(&b, "GET");
	bench_free(&b);
}

Test(h2_req, client_reset_mid_request)
{
	struct bench b;
	bench_init(&b, NULL);
	nghttp2_nv nv[] = {NV(":method", "POST"), NV(":scheme", "https"),
			   NV(":authority", "h"), NV(":path", "/")};
	struct cbody body = {.p = "part", .len = 4, .hold = true};
	int32_t sid = submit(&b, nv, NVN(nv), &body);
	pump(&b);
	cr_assert_eq(b.nreq, 1);
	const char *p;
	cr_assert_gt(h2conn_req_peek(b.c, sid, &p), 0);
	cr_assert_not(h2conn_req_done(b.c, sid));
	cr_assert_eq(nghttp2_submit_rst_stream(b.cl, NGHTTP2_FLAG_NONE, sid,
					       NGHTTP2_CANCEL), 0);
	pump(&b);
	cr_assert_eq(b.nreset, 1);
	cr_assert_eq(b.reset_user[0], user_of(sid));
	cr_assert_eq(b.reset_code[0], NGHTTP2_CANCEL);
	cr_assert_eq(h2conn_req_peek(b.c, sid, &p), 0);
	cr_assert_eq(h2conn_resp_feed(b.c, sid, "HTTP/1.1 200 OK\r\n\r\n", 19),
		     -ENOENT);
	h2conn_resp_end(b.c, sid, false); /* harmless */
	cr_assert_eq(h2conn_open_streams(b.c), 0);
	cr_assert_eq(b.nreset, 1);
	bench_free(&b);
}

Test(h2_req, hundred_concurrent_streams)
{
	struct bench b;
	bench_init(&b, NULL);
	int32_t sids[110];
	nghttp2_nv nv[] = {NV(":method", "GET"), NV(":scheme", "https"),
			   NV(":authority", "h"), NV(":path", "/many")};
	for (int i = 0; i < 100; i++)
		sids[i] = submit(&b, nv, NVN(nv), NULL);
	pump(&b);
	cr_assert_eq(b.nreq, 100);
	cr_assert_eq(h2conn_open_streams(b.c), 100);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(b.req_sid[i], sids[i]);
	/* ten more wait in the client until streams finish */
	for (int i = 100; i < 110; i++)
		sids[i] = submit(&b, nv, NVN(nv), NULL);
	pump(&b);
	cr_assert_eq(b.nreq, 100);
	for (int i = 0; i < 100; i++) {
		struct dbuf r = {0};
		take_req(&b, sids[i], &r);
		cr_assert_str_eq(db_s(&r), "GET /many HTTP/1.1\r\nhost: h\r\n\r\n");
		db_free(&r);
		feed_all(&b, sids[i], "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
		h2conn_resp_end(b.c, sids[i], true);
	}
	pump(&b);
	cr_assert_eq(b.nreq, 110);
	for (int i = 100; i < 110; i++) {
		feed_all(&b, sids[i], "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
		h2conn_resp_end(b.c, sids[i], true);
	}
	pump(&b);
	for (int i = 0; i < 110; i++) {
		struct cres *r = &b.res[sids[i]];
		cr_assert_eq(r->status, 200);
		cr_assert_str_eq(db_s(&r->body), "ok");
		cr_assert(r->closed && r->close_code == 0 && !r->got_rst);
	}
	cr_assert_eq(b.nreset, 0);
	cr_assert_eq(h2conn_open_streams(b.c), 0);
	bench_free(&b);
}

Test(h2_req, request_window_until_consumed)
{
	struct bench b;
	struct h2conn_opts o = {.stream_window = 1000};
	bench_init(&b, &o);
	nghttp2_nv nv[] = {NV(":method", "POST"), NV(":scheme", "https"),
			   NV(":authority", "h"), NV(":path", "/w"),
			   NV("content-length", "5000")};
	char data[5000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7);
	struct cbody body = {.p = data, .len = sizeof(data)};
	int32_t sid = submit(&b, nv, NVN(nv), &body);
	pump(&b);
	cr_assert_eq(b.nreq, 1);
	const char *head = "POST /w HTTP/1.1\r\ncontent-length: 5000\r\n"
			   "host: h\r\n\r\n";
	size_t hl = strlen(head);
	const char *p;
	size_t n = h2conn_req_peek(b.c, sid, &p);
	cr_assert_eq(n, hl + 1000, "%zu", n);
	cr_assert(!memcmp(p, head, hl));
	cr_assert(!memcmp(p + hl, data, 1000));
	cr_assert_eq(nghttp2_session_get_stream_remote_window_size(b.cl, sid), 0);
	/* taking all but one byte keeps the window shut */
	h2conn_req_consume(b.c, sid, n - 1);
	pump(&b);
	n = h2conn_req_peek(b.c, sid, &p);
	cr_assert_eq(n, 1);
	h2conn_req_consume(b.c, sid, 1);
	size_t got = 1000;
	while (got < sizeof(data)) {
		pump(&b);
		n = h2conn_req_peek(b.c, sid, &p);
		cr_assert_eq(n, 1000, "%zu at %zu", n, got);
		cr_assert(!memcmp(p, data + got, n));
		got += n;
		h2conn_req_consume(b.c, sid, n);
	}
	pump(&b);
	cr_assert(h2conn_req_done(b.c, sid));
	bench_free(&b);
}

/* Request bytes the engine never took (the stream was reset) must not
 * shrink the connection's window for good. */
Test(h2_req, reset_stream_returns_connection_window)
{
	struct bench b;
	struct h2conn_opts o = {.stream_window = 65535, .max_concurrent_streams = 1};
	bench_init(&b, &o);
	int32_t conn_win = nghttp2_session_get_remote_window_size(b.cl);
	size_t blen = 65535;
	char *data = calloc(1, blen);
	nghttp2_nv nv[] = {NV(":method", "POST"), NV(":scheme", "https"),
			   NV(":authority", "h"), NV(":path", "/big")};
	for (int round = 0; round < 4; round++) {
		struct cbody body = {.p = data, .len = blen, .hold = true};
		int32_t sid = submit(&b, nv, NVN(nv), &body);
		pump(&b);
		cr_assert_eq(b.nreq, round + 1);
		/* the engine reads nothing, the stream ends */
		h2conn_resp_end(b.c, sid, false);
		pump(&b);
		cr_assert(b.res[sid].got_rst);
		cr_assert_eq(h2conn_open_streams(b.c), 0);
	}
	cr_assert_eq(nghttp2_session_get_remote_window_size(b.cl), conn_win,
		     "connection window %d, was %d",
		     nghttp2_session_get_remote_window_size(b.cl), conn_win);
	free(data);
	bench_free(&b);
}

/* The response is complete before the request body is: the stream must
 * not hang with the client stuck on a window nobody reopens. */
Test(h2_req, early_response_ends_stream)
{
	struct bench b;
	struct h2conn_opts o = {.stream_window = 1000};
	bench_init(&b, &o);
	char data[5000] = {0};
	nghttp2_nv nv[] = {NV(":method", "POST"), NV(":scheme", "https"),
			   NV(":authority", "h"), NV(":path", "/early"),
			   NV("content-length", "5000")};
	struct cbody body = {.p = data, .len = sizeof(data)};
	int32_t sid = submit(&b, nv, NVN(nv), &body);
	pump(&b);
	cr_assert_eq(b.nreq, 1);
	feed_all(&b, sid, "HTTP/1.1 413 Too Large\r\nContent-Length: 3\r\n\r\nbig");
	h2conn_resp_end(b.c, sid, true);
	pump(&b);
	struct cres *r = &b.res[sid];
	cr_assert_eq(r->status, 413);
	cr_assert_str_eq(db_s(&r->body), "big");
	cr_assert(r->end_stream);
	cr_assert(r->closed, "the stream hangs");
	/* RFC 9113 8.1: the rest of the request is declined without error */
	cr_assert(!r->got_rst || r->rst_code == NGHTTP2_NO_ERROR);
	cr_assert_eq(r->close_code, NGHTTP2_NO_ERROR);
	cr_assert_eq(h2conn_open_streams(b.c), 0);
	cr_assert_eq(b.nreset, 0);
	bench_free(&b);
}

/* The same when the response is complete and sent before the engine
 * lets go of the stream. */
Test(h2_req, early_response_sent_then_ended)
{
	struct bench b;
	struct h2conn_opts o = {.stream_window = 1000};
	bench_init(&b, &o);
	char data[5000] = {0};
	nghttp2_nv nv[] = {NV(":method", "POST"), NV(":scheme", "https"),
			   NV(":authority", "h"), NV(":path", "/early")};
	struct cbody body = {.p = data, .len = sizeof(data)};
	int32_t sid = submit(&b, nv, NVN(nv), &body);
	pump(&b);
	feed_all(&b, sid, "HTTP/1.1 403 No\r\nContent-Length: 0\r\n\r\n");
	pump(&b);
	struct cres *r = &b.res[sid];
	cr_assert_eq(r->status, 403);
	cr_assert(r->end_stream);
	h2conn_resp_end(b.c, sid, true);
	pump(&b);
	cr_assert(r->closed, "the stream hangs");
	cr_assert(!r->got_rst || r->rst_code == NGHTTP2_NO_ERROR);
	cr_assert_eq(h2conn_open_streams(b.c), 0);
	cr_assert_eq(b.nreset, 0);
	/* the connection still carries requests */
	struct cbody body2 = {.p = data, .len = 3000};
	int32_t s2 = submit(&b, nv, NVN(nv), &body2);
	struct dbuf req = {0};
	for (int i = 0; i < 10 && !h2conn_req_done(b.c, s2); i++) {
		pump(&b);
		take_req(&b, s2, &req);
	}
	cr_assert(h2conn_req_done(b.c, s2));
	db_free(&req);
	bench_free(&b);
}

/* Trailers count against max_header_list like the head: HPACK lets a
 * small frame expand to a huge field list. */
Test(h2_req, request_trailers_limited)
{
	struct bench b;
	struct h2conn_opts o = {.max_header_list = 1000};
	bench_init(&b, &o);
	char big[3000];
	memset(big, 't', sizeof(big));
	nghttp2_nv nv[] = {NV(":method", "POST"), NV(":scheme", "https"),
			   NV(":authority", "h"), NV(":path", "/")};
	nghttp2_nv trl[] = {{(uint8_t *)"x-big", (uint8_t *)big, 5, sizeof(big),
			     NGHTTP2_NV_FLAG_NONE}};
	struct cbody body = {.p = "abc", .len = 3, .trl = trl, .ntrl = 1};
	int32_t sid = submit(&b, nv, NVN(nv), &body);
	pump(&b);
	cr_assert_eq(b.nreq, 1);
	cr_assert(b.res[sid].got_rst);
	cr_assert_eq(b.nreset, 1);
	cr_assert_eq(b.reset_user[0], user_of(sid));
	cr_assert_eq(h2conn_open_streams(b.c), 0);
	bench_free(&b);
}

/* A large window times many streams must not wrap the connection
 * window. */
Test(h2_req, connection_window_does_not_wrap)
{
	struct bench b;
	struct h2conn_opts o = {.stream_window = 1u << 20,
				.max_concurrent_streams = 4096};
	bench_init(&b, &o);
	size_t blen = 200000;
	char *data = calloc(1, blen);
	nghttp2_nv nv[] = {NV(":method", "POST"), NV(":scheme", "https"),
			   NV(":authority", "h"), NV(":path", "/")};
	struct cbody body = {.p = data, .len = blen};
	int32_t sid = submit(&b, nv, NVN(nv), &body);
	pump(&b);
	cr_assert_eq(b.nreq, 1);
	cr_assert(h2conn_req_peek(b.c, sid, &(const char *){0}) > blen);
	cr_assert_eq(b.in_rc, 0);
	free(data);
	bench_free(&b);
}

Test(h2_req, client_bytes_one_at_a_time)
{
	/* the same request fed whole and byte by byte into a fresh h2conn */
	struct bench b;
	bench_init(&b, NULL);
	nghttp2_nv nv[] = {NV(":method", "POST"), NV(":scheme", "https"),
			   NV(":authority", "h"), NV(":path", "/bytes"),
			   NV("cookie", "a=1"), NV("cookie", "b=2")};
	nghttp2_nv trl[] = {NV("x-t", "1")};
	struct cbody body = {.p = "0123456789", .len = 10, .max_frame = 3,
			     .trl = trl, .ntrl = 1};
	submit(&b, nv, NVN(nv), &body);
	/* capture the client's bytes from its first send on */
	nghttp2_session *cl2;
	nghttp2_session_callbacks *cbs;
	cr_assert_eq(nghttp2_session_callbacks_new(&cbs), 0);
	cr_assert_eq(nghttp2_session_client_new(&cl2, cbs, NULL), 0);
	nghttp2_session_callbacks_del(cbs);
	cr_assert_eq(nghttp2_submit_settings(cl2, NGHTTP2_FLAG_NONE, NULL, 0), 0);
	struct cbody body2 = body;
	nghttp2_data_provider prd = {.source.ptr = &body2,
				     .read_callback = c_read_body};
	cr_assert_gt(nghttp2_submit_request(cl2, NULL, nv, NVN(nv), &prd, NULL), 0);
	struct dbuf wire = {0};
	const uint8_t *d;
	ssize_t n;
	while ((n = nghttp2_session_mem_send(cl2, &d)) > 0)
		db_add(&wire, d, (size_t)n);
	nghttp2_session_del(cl2);

	struct dbuf whole = {0}, bytes = {0};
	for (int way = 0; way < 2; way++) {
		struct bench x;
		memset(&x, 0, sizeof(x));
		cr_assert_eq(h2conn_new(&x.c, &server_cb, &x, NULL), 0);
		struct guard g;
		guard_init(&g, wire.n);
		if (way == 0) {
			char *p = guard_put(&g, wire.p, wire.n);
			cr_assert_eq(h2conn_input(x.c, (uint8_t *)p, wire.n),
				     (ssize_t)wire.n);
		} else {
			for (size_t i = 0; i < wire.n; i++) {
				char *p = guard_put(&g, wire.p + i, 1);
				cr_assert_eq(h2conn_input(x.c, (uint8_t *)p, 1), 1);
			}
		}
		guard_free(&g);
		cr_assert_eq(x.nreq, 1);
		struct dbuf *out = way ? &bytes : &whole;
		take_req(&x, x.req_sid[0], out);
		cr_assert(h2conn_req_done(x.c, x.req_sid[0]));
		h2conn_free(x.c);
	}
	/* DATA is handed over as it arrives, so the chunk sizes differ;
	 * the head, the payload and the trailers do not */
	const char *head = "POST /bytes HTTP/1.1\r\ncookie: a=1; b=2\r\nhost: h\r\n"
			   "transfer-encoding: chunked\r\n\r\n";
	size_t hl = strlen(head);
	cr_assert_str_eq(db_s(&whole),
			 "POST /bytes HTTP/1.1\r\ncookie: a=1; b=2\r\nhost: h\r\n"
			 "transfer-encoding: chunked\r\n\r\n"
			 "3\r\n012\r\n3\r\n345\r\n3\r\n678\r\n1\r\n9\r\n"
			 "0\r\nx-t: 1\r\n\r\n");
	cr_assert(bytes.n > hl && !memcmp(bytes.p, head, hl));
	struct dbuf pl = {0}, tr = {0};
	int chunks;
	dechunk(bytes.p + hl, bytes.n - hl, &pl, &chunks, &tr);
	cr_assert_str_eq(db_s(&pl), "0123456789");
	cr_assert_str_eq(db_s(&tr), "x-t: 1\r\n\r\n");
	db_free(&pl);
	db_free(&tr);
	db_free(&whole);
	db_free(&bytes);
	db_free(&wire);
	bench_free(&b);
}

/* ---- responses ---- */

Test(h2_resp, content_length)
{
	struct bench b;
	bench_init(&b, NULL);
	int32_t sid = simple_get(&b, "GET");
	feed_all(&b, sid, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
			  "X-A: b\r\n\r\nhello");
	pump(&b);
	struct cres *r = &b.res[sid];
	cr_assert_eq(r->status, 200);
	cr_assert_str_eq(db_s(&r->hdrs), ":status: 200\ncontent-length: 5\nx-a: b\n");
	cr_assert_str_eq(db_s(&r->body), "hello");
	cr_assert(r->end_stream);
	cr_assert_eq(r->data_frames, 1);
	cr_assert_not(r->got_rst);
	h2conn_resp_end(b.c, sid, true);
	pump(&b);
	cr_assert(r->closed && r->close_code == 0);
	cr_assert_not(r->got_rst);
	cr_assert_eq(b.nreset, 0);
	cr_assert_eq(h2conn_open_streams(b.c), 0);
	bench_free(&b);
}

Test(h2_resp, chunked_with_trailers)
{
	struct bench b;
	bench_init(&b, NULL);
	int32_t sid = simple_get(&b, "GET");
	feed_all(&b, sid, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
			  "Trailer: X-T\r\n\r\n"
			  "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n"
			  "X-T: 1\r\nX-U: two\r\n\r\n");
	h2conn_resp_end(b.c, sid, true);
	pump(&b);
	struct cres *r = &b.res[sid];
	cr_assert_eq(r->status, 200);
	cr_assert_str_eq(db_s(&r->hdrs), ":status: 200\ntrailer: X-T\n");
	cr_assert_str_eq(db_s(&r->body), "hello world");
	cr_assert_eq(r->trailer_frames, 1);
	cr_assert_str_eq(db_s(&r->trl), "x-t: 1\nx-u: two\n");
	cr_assert(r->end_stream);
	cr_assert(r->closed && !r->got_rst);
	cr_assert_eq(b.nreset, 0);
	bench_free(&b);
}

Test(h2_resp, chunked_without_trailers)
{
	struct bench b;
	bench_init(&b, NULL);
	int32_t sid = simple_get(&b, "GET");
	feed_all(&b, sid, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			  "3\r\nabc\r\n0\r\n\r\n");
	h2conn_resp_end(b.c, sid, true);
	pump(&b);
	struct cres *r = &b.res[sid];
	cr_assert_str_eq(db_s(&r->body), "abc");
	cr_assert_eq(r->trailer_frames, 0);
	cr_assert(r->end_stream && r->closed && !r->got_rst);
	bench_free(&b);
}

Test(h2_resp, head_has_no_data)
{
	struct bench b;
	bench_init(&b, NULL);
	int32_t sid = simple_get(&b, "HEAD");
	feed_all(&b, sid, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
	h2conn_resp_end(b.c, sid, true);
	pump(&b);
	struct cres *r = &b.res[sid];
	cr_assert_eq(r->status, 200);
	cr_assert_str_eq(db_s(&r->hdrs), ":status: 200\ncontent-length: 1000\n");
	cr_assert_eq(r->data_frames, 0);
	cr_assert(r->end_stream && r->closed && !r->got_rst);
	bench_free(&b);
}

Test(h2_resp, no_content_and_not_modified)
{
	struct bench b;
	bench_init(&b, NULL);
	const char *resp[] = {"HTTP/1.1 204 No Content\r\nX: y\r\n\r\n",
			      "HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\n\r\n"};
	int want[] = {204, 304};
	for (int i = 0; i < 2; i++) {
		int32_t sid = simple_get(&b, "GET");
		feed_all(&b, sid, resp[i]);
		pump(&b);
		struct cres *r = &b.res[sid];
		cr_assert_eq(r->status, want[i]);
		cr_assert_eq(r->data_frames, 0);
		cr_assert(r->end_stream);
		h2conn_resp_end(b.c, sid, true);
		pump(&b);
		cr_assert(r->closed && !r->got_rst);
	}
	cr_assert_eq(b.nreset, 0);
	bench_free(&b);
}

/* 100 Continue goes on as an informational HEADERS (a client waiting to
 * upload must not wait for its own timer); 103 is dropped. */
Test(h2_resp, interim_100_forwarded_others_skipped)
{
	struct bench b;
	bench_init(&b, NULL);
	int32_t sid = simple_get(&b, "GET");
	feed_all(&b, sid, "HTTP/1.1 100 Continue\r\n\r\n");
	pump(&b);
	cr_assert_eq(b.res[sid].heads, 0);
	cr_assert_eq(b.res[sid].interim, 1);
	feed_all(&b, sid, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
			  "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	h2conn_resp_end(b.c, sid, true);
	pump(&b);
	struct cres *r = &b.res[sid];
	cr_assert_eq(r->heads, 1);
	cr_assert_eq(r->interim, 1);
	cr_assert_eq(r->status, 200);
	cr_assert_str_eq(db_s(&r->hdrs), ":status: 200\ncontent-length: 2\n");
	cr_assert_str_eq(db_s(&r->body), "ok");
	cr_assert(r->closed && !r->got_rst);
	bench_free(&b);
}

Test(h2_resp, switching_protocols_rejected)
{
	struct bench b;
	bench_init(&b, NULL);
	int32_t sid = simple_get(&b, "GET");
	const char *s = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			"Connection: upgrade\r\n\r\n";
	cr_assert_lt(h2conn_resp_feed(b.c, sid, s, strlen(s)), 0);
	h2conn_resp_end(b.c, sid, false);
	pump(&b);
	cr_assert_eq(b.res[sid].heads, 0);
	cr_assert(b.res[sid].got_rst);
	cr_assert_eq(b.res[sid].rst_code, NGHTTP2_INTERNAL_ERROR);
	cr_assert_eq(b.nreset, 0);
	bench_free(&b);
}

Test(h2_resp, malformed_head_rejected)
{
	struct bench b;
	bench_init(&b, NULL);
	int32_t sid = simple_get(&b, "GET");
	const char *s = "HTTP/1.1 2x0 OK\r\n\r\n";
	cr_assert_lt(h2conn_resp_feed(b.c, sid, s, strlen(s)), 0);
	h2conn_resp_end(b.c, sid, false);
	pump(&b);
	cr_assert(b.res[sid].got_rst);
	bench_free(&b);
}

Test(h2_resp, hop_by_hop_dropped_names_lowercased)
{
	struct bench b;
	bench_init(&b, NULL);
	int32_t sid = simple_get(&b, "GET");
	feed_all(&b, sid, "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\n"
			  "X-Hop: 1\r\nConnection: x-other\r\nX-Other: 2\r\n"
			  "Keep-Alive: timeout=5\r\nProxy-Connection: x\r\n"
			  "Upgrade: h2c\r\nTransfer-Encoding: chunked\r\n"
			  "X-Mixed-Case: V a L\r\nSERVER: S\r\n\r\n"
			  "3\r\nabc\r\n0\r\n\r\n");
	h2conn_resp_end(b.c, sid, true);
	pump(&b);
	struct cres *r = &b.res[sid];
	cr_assert_eq(r->status, 200);
	cr_assert_str_eq(db_s(&r->hdrs), ":status: 200\nx-mixed-case: V a L\n"
					 "server: S\n");
	cr_assert_str_eq(db_s(&r->body), "abc");
	cr_assert(r->closed && !r->got_rst);
	bench_free(&b);
}

Test(h2_resp, close_delimited_ended_ok)
{
	struct bench b;
	bench_init(&b, NULL);
	int32_t sid = simple_get(&b, "GET");
	feed_all(&b, sid, "HTTP/1.0 200 OK\r\nServer: old\r\n\r\nabc");
	pump(&b);
	feed_all(&b, sid, "def");
	pump(&b);
	struct cres *r = &b.res[sid];
	cr_assert_str_eq(db_s(&r->body), "abcdef");
	cr_assert_not(r->end_stream);
	h2conn_resp_end(b.c, sid, true);
	pump(&b);
	cr_assert(r->end_stream && r->closed && !r->got_rst);
	cr_assert_eq(b.nreset, 0);
	bench_free(&b);
}

Test(h2_resp, end_not_ok_mid_body_resets)
{
	struct bench b;
	bench_init(&b, NULL);
	int32_t sid = simple_get(&b, "GET");
	feed_all(&b, sid, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
	pump(&b);
	h2conn_resp_end(b.c, sid, false);
	pump(&b);
	struct cres *r = &b.res[sid];
	cr_assert_eq(r->status, 200);
	cr_assert_str_eq(db_s(&r->body), "0123456789");
	cr_assert_not(r->end_stream);
	cr_assert(r->got_rst);
	cr_assert_eq(r->rst_code, NGHTTP2_INTERNAL_ERROR);
	cr_assert_eq(b.nreset, 0, "no on_reset after resp_end");
	cr_assert_eq(h2conn_open_streams(b.c), 0);
	bench_free(&b);
}

Test(h2_resp, end_ok_but_short_body_resets)
{
	struct bench b;
	bench_init(&b, NULL);
	int32_t sid = simple_get(&b, "GET");
	feed_all(&b, sid, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nxx");
	h2conn_resp_end(b.c, sid, true);
	pump(&b);
	cr_assert(b.res[sid].got_rst);
	cr_assert_eq(b.res[sid].rst_code, NGHTTP2_INTERNAL_ERROR);
	bench_free(&b);
}

Test(h2_resp, end_before_head_resets)
{
	struct bench b;
	bench_init(&b, NULL);
	int32_t sid = simple_get(&b, "GET");
	feed_all(&b, sid, "HTTP/1.1 200 OK\r\nContent-");
	h2conn_resp_end(b.c, sid, true);
	pump(&b);
	cr_assert_eq(b.res[sid].heads, 0);
	cr_assert(b.res[sid].got_rst);
	cr_assert_eq(h2conn_resp_feed(b.c, sid, "x", 1), -ENOENT);
	bench_free(&b);
}

/* Feed |resp| for a fresh stream of |b| in pieces of |step| (0: whole,
 * from the end of a guarded page), respecting partial takes. */
static void feed_steps(struct bench *b, int32_t sid, const char *resp,
		       size_t len, size_t step)
{
	struct guard g;
	guard_init(&g, len);
	if (!step) {
		char *p = guard_put(&g, resp, len);
		size_t off = 0;
		while (off < len) {
			ssize_t r = h2conn_resp_feed(b->c, sid, p + off, len - off);
			cr_assert_geq(r, 0);
			off += (size_t)r;
			pump(b);
		}
	} else {
		for (size_t off = 0; off < len;) {
			size_t n = len - off < step ? len - off : step;
			char *p = guard_put(&g, resp + off, n);
			ssize_t r = h2conn_resp_feed(b->c, sid, p, n);
			cr_assert_geq(r, 0);
			off += (size_t)r;
			if ((size_t)r < n)
				pump(b);
		}
	}
	guard_free(&g);
	h2conn_resp_end(b->c, sid, true);
	pump(b);
}

Test(h2_resp, head_byte_at_a_time_same_as_whole)
{
	const char *vectors[] = {
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n"
		"Location: /n\r\nTransfer-Encoding: chunked\r\n\r\n"
		"5\r\nhello\r\n1;a=b\r\n!\r\n0\r\nX-T: 1\r\nX-Long: abc def\r\n\r\n",
		"HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\nnot here",
		"HTTP/1.1 204 No Content\r\nX: y\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	};
	for (size_t v = 0; v < NVN(vectors); v++) {
		struct dbuf hd[2] = {{0}}, body[2] = {{0}}, trl[2] = {{0}};
		for (int way = 0; way < 2; way++) {
			struct bench b;
			bench_init(&b, NULL);
			int32_t sid = simple_get(&b, "GET");
			feed_steps(&b, sid, vectors[v], strlen(vectors[v]),
				   way ? 1 : 0);
			struct cres *r = &b.res[sid];
			cr_assert(r->end_stream && r->closed && !r->got_rst,
				  "vector %zu way %d", v, way);
			db_str(&hd[way], db_s(&r->hdrs));
			db_str(&body[way], db_s(&r->body));
			db_str(&trl[way], db_s(&r->trl));
			bench_free(&b);
		}
		cr_assert_str_eq(db_s(&hd[0]), db_s(&hd[1]), "vector %zu", v);
		cr_assert_str_eq(db_s(&body[0]), db_s(&body[1]), "vector %zu", v);
		cr_assert_str_eq(db_s(&trl[0]), db_s(&trl[1]), "vector %zu", v);
		if (v == 1) {
			cr_assert_str_eq(db_s(&hd[0]), ":status: 201\nlocation: /n\n");
			cr_assert_str_eq(db_s(&body[0]), "hello!");
			cr_assert_str_eq(db_s(&trl[0]), "x-t: 1\nx-long: abc def\n");
		}
		for (int w = 0; w < 2; w++) {
			db_free(&hd[w]);
			db_free(&body[w]);
			db_free(&trl[w]);
		}
	}
}

static char *make_body(size_t n)
{
	char *p = malloc(n);
	for (size_t i = 0; i < n; i++)
		p[i] = (char)('A' + (i * 31) % 53);
	return p;
}

Test(h2_resp, flow_control_content_length)
{
	struct bench b;
	struct h2conn_opts o = {.resp_buffer = 1000};
	bench_init(&b, &o);
	int32_t sid = simple_get(&b, "GET");
	size_t blen = 100000;
	char *data = make_body(blen);
	struct dbuf resp = {0};
	db_str(&resp, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
	size_t hl = resp.n;
	db_add(&resp, data, blen);
	ssize_t r = h2conn_resp_feed(b.c, sid, resp.p, resp.n);
	cr_assert_eq(r, (ssize_t)(hl + 1000), "%zd", r);
	cr_assert_eq(h2conn_resp_feed(b.c, sid, resp.p + r, resp.n - (size_t)r), 0);
	size_t off = (size_t)r;
	int rounds = 0;
	while (off < resp.n) {
		int room = b.nroom;
		pump(&b);
		cr_assert_gt(b.nroom, room, "on_resp_room after the client read");
		cr_assert_eq(b.room_user[b.nroom - 1], user_of(sid));
		r = h2conn_resp_feed(b.c, sid, resp.p + off, resp.n - off);
		cr_assert_gt(r, 0);
		cr_assert_leq(r, 1000);
		off += (size_t)r;
		rounds++;
	}
	h2conn_resp_end(b.c, sid, true);
	pump(&b);
	struct cres *res = &b.res[sid];
	cr_assert_eq(res->body.n, blen);
	cr_assert(!memcmp(res->body.p, data, blen));
	cr_assert(res->end_stream && res->closed && !res->got_rst);
	cr_assert_geq(rounds, 99);
	db_free(&resp);
	free(data);
	bench_free(&b);
}

/* The client's window is the bottleneck: the stream's buffer fills, and
 * room comes back only as the client opens its window. */
Test(h2_resp, flow_control_slow_client_chunked)
{
	struct bench b;
	struct h2conn_opts o = {.resp_buffer = 1000};
	memset(&b, 0, sizeof(b));
	cr_assert_eq(h2conn_new(&b.c, &server_cb, &b, &o), 0);
	nghttp2_session_callbacks *cbs;
	cr_assert_eq(nghttp2_session_callbacks_new(&cbs), 0);
	nghttp2_session_callbacks_set_on_header_callback(cbs, c_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, c_on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, c_on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, c_on_close);
	nghttp2_option *opt;
	cr_assert_eq(nghttp2_option_new(&opt), 0);
	nghttp2_option_set_no_auto_window_update(opt, 1);
	cr_assert_eq(nghttp2_session_client_new2(&b.cl, cbs, &b, opt), 0);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cbs);
	nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 3000}};
	cr_assert_eq(nghttp2_submit_settings(b.cl, NGHTTP2_FLAG_NONE, iv, 1), 0);
	pump(&b);
	int32_t sid = simple_get(&b, "GET");
	size_t blen = 20000;
	char *data = make_body(blen);
	struct dbuf resp = {0};
	db_str(&resp, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (size_t i = 0; i < blen; i += 700) {
		size_t n = blen - i < 700 ? blen - i : 700;
		char sz[16];
		snprintf(sz, sizeof(sz), "%zx\r\n", n);
		db_str(&resp, sz);
		db_add(&resp, data + i, n);
		db_str(&resp, "\r\n");
	}
	db_str(&resp, "0\r\nX-Done: yes\r\n\r\n");
	size_t off = 0;
	int stalls = 0;
	while (off < resp.n) {
		ssize_t r = h2conn_resp_feed(b.c, sid, resp.p + off, resp.n - off);
		cr_assert_geq(r, 0);
		off += (size_t)r;
		int room = b.nroom;
		pump(&b);
		if (off < resp.n && b.nroom == room) {
			/* stuck on the client's window: it reads and opens it */
			struct cres *res = &b.res[sid];
			size_t got = res->body.n;
			cr_assert_gt(got, 0);
			stalls++;
			cr_assert_eq(nghttp2_session_consume(b.cl, sid, 3000), 0);
			nghttp2_session_consume_connection(b.cl, 0);
			pump(&b);
			cr_assert_gt(b.nroom, room, "room after WINDOW_UPDATE");
		}
		(void)nghttp2_session_consume(b.cl, sid, 0);
	}
	h2conn_resp_end(b.c, sid, true);
	for (int i = 0; i < 100 && !b.res[sid].closed; i++) {
		nghttp2_session_consume(b.cl, sid, 3000);
		pump(&b);
	}
	struct cres *res = &b.res[sid];
	cr_assert_gt(stalls, 0);
	cr_assert_eq(res->body.n, blen);
	cr_assert(!memcmp(res->body.p, data, blen));
	cr_assert_str_eq(db_s(&res->trl), "x-done: yes\n");
	cr_assert(res->end_stream && res->closed && !res->got_rst);
	db_free(&resp);
	free(data);
	bench_free(&b);
}

/* ---- the connection ---- */

static bool wire_has_goaway(const struct dbuf *w, uint32_t *code)
{
	size_t i = 0;
	while (i + 9 <= w->n) {
		const uint8_t *h = (const uint8_t *)w->p + i;
		size_t len = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
		if (h[3] == 7 && i + 9 + 8 <= w->n) {
			const uint8_t *pl = h + 9 + 4;
			*code = (uint32_t)pl[0] << 24 | (uint32_t)pl[1] << 16 |
				(uint32_t)pl[2] << 8 | pl[3];
			return true;
		}
		i += 9 + len;
	}
	return false;
}

static void drain_wire(struct h2conn *c, struct dbuf *w)
{
	uint8_t buf[4096];
	ssize_t n;
	while ((n = h2conn_output(c, buf, sizeof(buf))) > 0)
		db_add(w, buf, (size_t)n);
}

Test(h2_conn, bad_preface_rejected)
{
	struct bench x;
	memset(&x, 0, sizeof(x));
	cr_assert_eq(h2conn_new(&x.c, &server_cb, &x, NULL), 0);
	const char *s = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	cr_assert_lt(h2conn_input(x.c, (const uint8_t *)s, strlen(s)), 0);
	cr_assert_lt(h2conn_input(x.c, (const uint8_t *)s, strlen(s)), 0);
	struct dbuf w = {0};
	drain_wire(x.c, &w); /* a GOAWAY may be omitted (RFC 9113 3.4) */
	cr_assert_eq(x.nreq, 0);
	db_free(&w);
	h2conn_free(x.c);
}

Test(h2_conn, garbage_after_preface_goaway)
{
	struct bench x;
	memset(&x, 0, sizeof(x));
	cr_assert_eq(h2conn_new(&x.c, &server_cb, &x, NULL), 0);
	/* the first frame must be SETTINGS; this is a DATA frame on 0 */
	const uint8_t in[] = H2_PREFACE "\x00\x00\x03\x00\x00\x00\x00\x00\x00xyz";
	/* nghttp2 swallows the input and queues a GOAWAY: the error shows
	 * once that is out */
	ssize_t r = h2conn_input(x.c, in, sizeof(in) - 1);
	cr_assert(r < 0 || r == (ssize_t)sizeof(in) - 1);
	struct dbuf w = {0};
	drain_wire(x.c, &w);
	uint32_t code = 0;
	cr_assert(wire_has_goaway(&w, &code));
	cr_assert_eq(code, NGHTTP2_PROTOCOL_ERROR);
	cr_assert_lt(h2conn_input(x.c, in, sizeof(in) - 1), 0);
	cr_assert_not(h2conn_alive(x.c));
	db_free(&w);
	h2conn_free(x.c);
}

Test(h2_conn, garbage_mid_connection_goaway)
{
	struct bench b;
	bench_init(&b, NULL);
	int32_t sid = simple_get(&b, "GET");
	(void)sid;
	/* a DATA frame on stream 0 */
	const uint8_t bad[] = "\x00\x00\x03\x00\x00\x00\x00\x00\x00xyz";
	b.wire.n = 0;
	ssize_t r = h2conn_input(b.c, bad, sizeof(bad) - 1);
	cr_assert(r < 0 || r == (ssize_t)sizeof(bad) - 1);
	drain_wire(b.c, &b.wire);
	uint32_t code = 0;
	cr_assert(wire_has_goaway(&b.wire, &code));
	cr_assert_eq(code, NGHTTP2_PROTOCOL_ERROR);
	cr_assert_lt(h2conn_input(b.c, bad, sizeof(bad) - 1), 0);
	cr_assert_not(h2conn_alive(b.c));
	h2conn_reset_all(b.c);
	cr_assert_eq(b.nreset, 1);
	cr_assert_eq(b.reset_user[0], user_of(sid));
	bench_free(&b);
}

Test(h2_conn, shutdown_finishes_streams_refuses_new)
{
	struct bench b;
	bench_init(&b, NULL);
	int32_t sid = simple_get(&b, "GET");
	h2conn_shutdown(b.c);
	pump(&b);
	cr_assert(b.goaway);
	cr_assert_eq(b.goaway_code, NGHTTP2_NO_ERROR);
	feed_all(&b, sid, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!");
	h2conn_resp_end(b.c, sid, true);
	pump(&b);
	cr_assert_str_eq(db_s(&b.res[sid].body), "!");
	cr_assert(b.res[sid].closed && !b.res[sid].got_rst);
	cr_assert_eq(h2conn_open_streams(b.c), 0);
	bench_free(&b);
}

Test(h2_conn, reset_all_tells_each_stream)
{
	struct bench b;
	bench_init(&b, NULL);
	int32_t s1 = simple_get(&b, "GET");
	int32_t s2 = simple_get(&b, "GET");
	h2conn_resp_end(b.c, s1, false); /* the engine let go of s1 */
	h2conn_reset_all(b.c);
	cr_assert_eq(b.nreset, 1);
	cr_assert_eq(b.reset_user[0], user_of(s2));
	cr_assert_eq(b.reset_code[0], NGHTTP2_CANCEL);
	h2conn_reset_all(b.c);
	cr_assert_eq(b.nreset, 1);
	bench_free(&b);
}

/* Response fields an HTTP/2 client rejects must not get through. */
Test(h2_resp, fields_h2_clients_reject)
{
	const char *vectors[] = {
		/* Transfer-Encoding wins: Content-Length must not go along */
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
		"3\r\nabc\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTE: gzip\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
		/* connection-specific fields in the trailer section */
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		"3\r\nabc\r\n0\r\nConnection: close\r\nKeep-Alive: 1\r\n"
		"X-T: 1\r\nTE: x\r\n\r\n",
		/* the same length twice, or as a list */
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Ctl: a\x7f b\r\n\r\nabc",
	};
	const char *want_body[] = {"abc", "abc", "", "abc", "abc", "abc", "abc"};
	for (size_t v = 0; v < NVN(vectors); v++) {
		struct bench b;
		bench_init(&b, NULL);
		int32_t sid = simple_get(&b, "GET");
		ssize_t r = h2conn_resp_feed(b.c, sid, vectors[v], strlen(vectors[v]));
		h2conn_resp_end(b.c, sid, r == (ssize_t)strlen(vectors[v]));
		pump(&b);
		struct cres *res = &b.res[sid];
		if (r < 0) {
			cr_assert(res->got_rst, "vector %zu: r %zd closed %d code %u", v, r, res->closed, res->close_code);
		} else {
			cr_assert(!res->got_rst, "vector %zu: %s rst %u", v,
				  db_s(&res->hdrs), res->rst_code);
			cr_assert(res->end_stream && res->closed, "vector %zu: %s/%s end %d closed %d code %u", v, db_s(&res->hdrs), db_s(&res->body), res->end_stream, res->closed, res->close_code);
			cr_assert_str_eq(db_s(&res->body), want_body[v]);
		}
		bench_free(&b);
	}
}

Test(h2_resp, empty_feed)
{
	struct bench b;
	bench_init(&b, NULL);
	int32_t sid = simple_get(&b, "GET");
	cr_assert_eq(h2conn_resp_feed(b.c, sid, "", 0), 0);
	cr_assert_eq(h2conn_resp_feed(b.c, sid, NULL, 0), 0);
	feed_all(&b, sid, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n");
	cr_assert_eq(h2conn_resp_feed(b.c, sid, NULL, 0), 0);
	feed_all(&b, sid, "!");
	h2conn_resp_end(b.c, sid, true);
	pump(&b);
	cr_assert_str_eq(db_s(&b.res[sid].body), "!");
	cr_assert(b.res[sid].closed && !b.res[sid].got_rst);
	bench_free(&b);
}

/* A client may send up to the default windows (65535) before it has the
 * server's SETTINGS; a smaller configured window must not turn that into
 * a flow-control error. */
Test(h2_req, upload_before_settings_with_small_windows)
{
	struct bench b;
	memset(&b, 0, sizeof(b));
	struct h2conn_opts o = {.stream_window = 1000, .max_concurrent_streams = 10};
	cr_assert_eq(h2conn_new(&b.c, &server_cb, &b, &o), 0);
	nghttp2_session_callbacks *cbs;
	cr_assert_eq(nghttp2_session_callbacks_new(&cbs), 0);
	nghttp2_session_callbacks_set_on_header_callback(cbs, c_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, c_on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, c_on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, c_on_close);
	cr_assert_eq(nghttp2_session_client_new(&b.cl, cbs, &b), 0);
	nghttp2_session_callbacks_del(cbs);
	cr_assert_eq(nghttp2_submit_settings(b.cl, NGHTTP2_FLAG_NONE, NULL, 0), 0);
	size_t blen = 30000;
	char *data = calloc(1, blen);
	nghttp2_nv nv[] = {NV(":method", "POST"), NV(":scheme", "https"),
			   NV(":authority", "h"), NV(":path", "/early-upload")};
	struct cbody body = {.p = data, .len = blen};
	int32_t sid = submit(&b, nv, NVN(nv), &body);
	/* everything the client says before it hears from the server */
	const uint8_t *d;
	ssize_t n;
	while ((n = nghttp2_session_mem_send(b.cl, &d)) > 0)
		cr_assert_eq(h2conn_input(b.c, d, (size_t)n), n);
	struct dbuf req = {0};
	for (int i = 0; i < 100 && !h2conn_req_done(b.c, sid); i++) {
		pump(&b);
		cr_assert_eq(b.in_rc, 0);
		take_req(&b, sid, &req);
	}
	cr_assert(h2conn_req_done(b.c, sid));
	cr_assert_not(b.goaway);
	cr_assert_not(b.res[sid].got_rst);
	db_free(&req);
	free(data);
	bench_free(&b);
}
