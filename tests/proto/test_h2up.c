/* SPDX-License-Identifier: MIT */
/* proto/h2up tests: a real nghttp2 server session talks to an h2up client
 * in memory (h2up_output -> server mem_recv, server mem_send ->
 * h2up_input); the tests check the HTTP/2 request each HTTP/1.1 request
 * fed in becomes, and the HTTP/1.1 bytes each HTTP/2 response becomes
 * (parsed back with proto/h1 too). Request heads are also fed one byte at
 * a time and from the end of a page followed by a no-access page. */
#include <criterion/criterion.h>
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/h1.h"
#include "proto/h2up.h"
#include "tests/proto/harness.h"

#define MAXSID 1024
#define MAXU 512
#define MAXEV 4096

/* ---- small helpers ---- */

/* ---- the test bench: one h2up and one nghttp2 server ---- */

/* A response body the server sends: up to |max_frame| bytes per DATA
 * frame; |hold| keeps the stream open (deferred) after the bytes. */
struct sbody {
	const char *p;
	size_t len, off, max_frame;
	bool hold, deferred;
	const nghttp2_nv *trl;
	size_t ntrl;
};

/* What the server saw on one stream. */
struct sreq {
	int heads;           /* request HEADERS */
	int trailer_frames;  /* HEADERS after the first */
	int data_frames;     /* DATA frames with a payload */
	struct dbuf hdrs;    /* "name: value\n" of the request head */
	struct dbuf trl;     /* the same for trailers */
	struct dbuf body;
	bool end_stream;     /* END_STREAM seen */
	bool head_end_stream; /* on the HEADERS itself */
	bool got_rst;
	uint32_t rst_code;
	bool closed;
	uint32_t close_code;
	struct sbody *resp;  /* the body being sent, if any */
};

/* What the engine (h2up's user) saw on one stream. */
struct ustate {
	struct h2up_stream *st;
	int ndata, nroom, nreset;
	uint32_t reset_code;
};

struct bench {
	struct h2up *c;
	nghttp2_session *srv;
	ssize_t in_rc;          /* first negative h2up_input result */
	struct ustate u[MAXU];  /* by user handle (index) */
	int nroom_ev;
	struct sreq req[MAXSID];
	int nreq;               /* request HEADERS seen */
	bool goaway;            /* the server got a GOAWAY */
	uint32_t goaway_code;
	struct dbuf wire;       /* everything h2up_output produced */
	size_t outcap;          /* output buffer size used by pump */
	bool end_in_reset;      /* the engine ends a stream inside on_reset */
	bool end_in_data;       /* ... inside on_resp_data */
};

static void u_resp_data(void *arg, uint64_t user)
{
	struct bench *b = arg;
	cr_assert(user > 0 && user < MAXU);
	cr_assert(b->u[user].st, "on_resp_data for an ended stream %lu",
		  (unsigned long)user);
	b->u[user].ndata++;
	if (b->end_in_data) {
		h2up_stream_end(b->c, b->u[user].st);
		b->u[user].st = NULL;
	}
}

static void u_req_room(void *arg, uint64_t user)
{
	struct bench *b = arg;
	cr_assert(user > 0 && user < MAXU);
	cr_assert(b->u[user].st, "on_req_room for an ended stream");
	b->u[user].nroom++;
	b->nroom_ev++;
}

static void u_reset(void *arg, uint64_t user, uint32_t code)
{
	struct bench *b = arg;
	cr_assert(user > 0 && user < MAXU);
	cr_assert(b->u[user].st, "on_reset for an ended stream");
	b->u[user].nreset++;
	b->u[user].reset_code = code;
	if (b->end_in_reset) {
		h2up_stream_end(b->c, b->u[user].st);
		b->u[user].st = NULL;
	}
}

static const struct h2up_cb up_cb = {
	.on_resp_data = u_resp_data,
	.on_req_room = u_req_room,
	.on_reset = u_reset,
};

static struct sreq *req_of(struct bench *b, int32_t sid)
{
	cr_assert(sid > 0 && sid < MAXSID, "sid %d", sid);
	return &b->req[sid];
}

static int s_on_header(nghttp2_session *s, const nghttp2_frame *fr,
		       const uint8_t *name, size_t nl, const uint8_t *value,
		       size_t vl, uint8_t flags, void *ud)
{
	struct bench *b = ud;
	(void)s;
	(void)flags;
	if (fr->hd.type != NGHTTP2_HEADERS)
		return 0;
	struct sreq *r = req_of(b, fr->hd.stream_id);
	struct dbuf *d = r->heads ? &r->trl : &r->hdrs;
	db_add(d, name, nl);
	db_str(d, ": ");
	db_add(d, value, vl);
	db_str(d, "\n");
	return 0;
}

static int s_on_frame_recv(nghttp2_session *s, const nghttp2_frame *fr,
			   void *ud)
{
	struct bench *b = ud;
	(void)s;
	struct sreq *r;
	switch (fr->hd.type) {
	case NGHTTP2_HEADERS:
		r = req_of(b, fr->hd.stream_id);
		if (r->heads) {
			r->trailer_frames++;
		} else {
			r->heads++;
			b->nreq++;
			if (fr->hd.flags & NGHTTP2_FLAG_END_STREAM)
				r->head_end_stream = true;
		}
		if (fr->hd.flags & NGHTTP2_FLAG_END_STREAM)
			r->end_stream = true;
		break;
	case NGHTTP2_DATA:
		r = req_of(b, fr->hd.stream_id);
		if (fr->hd.length)
			r->data_frames++;
		if (fr->hd.flags & NGHTTP2_FLAG_END_STREAM)
			r->end_stream = true;
		break;
	case NGHTTP2_RST_STREAM:
		r = req_of(b, fr->hd.stream_id);
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

static int s_on_data(nghttp2_session *s, uint8_t flags, int32_t sid,
		     const uint8_t *data, size_t len, void *ud)
{
	struct bench *b = ud;
	(void)s;
	(void)flags;
	db_add(&req_of(b, sid)->body, data, len);
	return 0;
}

static int s_on_close(nghttp2_session *s, int32_t sid, uint32_t code,
		      void *ud)
{
	struct bench *b = ud;
	(void)s;
	struct sreq *r = req_of(b, sid);
	r->closed = true;
	r->close_code = code;
	return 0;
}

static ssize_t s_read_body(nghttp2_session *s, int32_t sid, uint8_t *buf,
			   size_t length, uint32_t *flags,
			   nghttp2_data_source *src, void *ud)
{
	struct sbody *sb = src->ptr;
	(void)ud;
	size_t n = sb->len - sb->off;
	if (n > length)
		n = length;
	if (sb->max_frame && n > sb->max_frame)
		n = sb->max_frame;
	if (n)
		memcpy(buf, sb->p + sb->off, n);
	sb->off += n;
	if (sb->off == sb->len) {
		if (sb->hold) {
			if (!n) {
				sb->deferred = true;
				return NGHTTP2_ERR_DEFERRED;
			}
			return (ssize_t)n;
		}
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (sb->ntrl) {
			cr_assert(nghttp2_submit_trailer(s, sid, sb->trl,
							 sb->ntrl) == 0);
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
		while ((n = h2up_output(b->c, buf, cap)) > 0) {
			moved = true;
			db_add(&b->wire, buf, (size_t)n);
			ssize_t r = nghttp2_session_mem_recv(b->srv, buf, (size_t)n);
			cr_assert_eq(r, n, "server mem_recv: %zd (%s)", r,
				     r < 0 ? nghttp2_strerror((int)r) : "");
		}
		while ((n = nghttp2_session_mem_send(b->srv, &d)) > 0) {
			moved = true;
			if (b->in_rc < 0)
				continue;
			ssize_t r = h2up_input(b->c, d, (size_t)n);
			if (r < 0)
				b->in_rc = r;
			else
				cr_assert_eq(r, n);
		}
		cr_assert_geq(n, 0);
		if (!moved)
			return;
	}
	cr_assert_fail("pump did not settle");
}

static void bench_init_srv(struct bench *b, const struct h2up_opts *o,
			   const nghttp2_settings_entry *iv, size_t niv,
			   bool manual_window)
{
	memset(b, 0, sizeof(*b));
	cr_assert_eq(h2up_new(&b->c, &up_cb, b, o), 0);
	nghttp2_session_callbacks *cbs;
	cr_assert_eq(nghttp2_session_callbacks_new(&cbs), 0);
	nghttp2_session_callbacks_set_on_header_callback(cbs, s_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, s_on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, s_on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, s_on_close);
	nghttp2_option *opt;
	cr_assert_eq(nghttp2_option_new(&opt), 0);
	nghttp2_option_set_max_send_header_block_length(opt, 1u << 20);
	if (manual_window)
		nghttp2_option_set_no_auto_window_update(opt, 1);
	cr_assert_eq(nghttp2_session_server_new2(&b->srv, cbs, b, opt), 0);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cbs);
	cr_assert_eq(nghttp2_submit_settings(b->srv, NGHTTP2_FLAG_NONE, iv, niv), 0);
	/* the handshake: both SETTINGS seen and acknowledged */
	pump(b);
	cr_assert_eq(b->in_rc, 0);
}

static void bench_init(struct bench *b, const struct h2up_opts *o)
{
	bench_init_srv(b, o, NULL, 0, false);
}

static void bench_free(struct bench *b)
{
	nghttp2_session_del(b->srv);
	h2up_free(b->c);
	for (int i = 0; i < MAXSID; i++) {
		db_free(&b->req[i].hdrs);
		db_free(&b->req[i].trl);
		db_free(&b->req[i].body);
	}
	db_free(&b->wire);
}

#define NV(n, v)                                                            \
	{                                                                   \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, \
			NGHTTP2_NV_FLAG_NONE                                 \
	}
#define NVN(a) (sizeof(a) / sizeof((a)[0]))

/* Open stream |user| and feed it the whole request |raw|. */
static struct h2up_stream *open_req(struct bench *b, uint64_t user,
				    const char *raw)
{
	struct h2up_stream *st = h2up_open(b->c, user);
	cr_assert(st);
	b->u[user].st = st;
	size_t n = strlen(raw);
	ssize_t r = h2up_req_feed(b->c, st, "https", raw, n);
	cr_assert_eq(r, (ssize_t)n, "req_feed: %zd", r);
	return st;
}

static void end_stream(struct bench *b, uint64_t user)
{
	cr_assert(b->u[user].st);
	h2up_stream_end(b->c, b->u[user].st);
	b->u[user].st = NULL;
}

/* The server answers |sid|: a response with fields |nv| (":status"
 * first), body |sb| or none (END_STREAM on the HEADERS). */
static void respond(struct bench *b, int32_t sid, const nghttp2_nv *nv,
		    size_t n, struct sbody *sb)
{
	nghttp2_data_provider prd = {.source.ptr = sb,
				     .read_callback = s_read_body};
	req_of(b, sid)->resp = sb;
	cr_assert_eq(nghttp2_submit_response(b->srv, sid, nv, n,
					     sb ? &prd : NULL), 0);
}

/* Every response byte of |user| so far, taken. */
static void take_resp(struct bench *b, uint64_t user, struct dbuf *out)
{
	const char *p;
	struct h2up_stream *st = b->u[user].st;
	size_t n;
	while ((n = h2up_resp_peek(b->c, st, &p)) > 0) {
		db_add(out, p, n);
		h2up_resp_consume(b->c, st, n);
	}
}

/* |raw| is one whole HTTP/1.1 response to |method|: its head parses, its
 * body decodes to the end exactly at the end of the bytes. */
static void check_h1_response(const char *raw, size_t n, const char *method,
			      struct dbuf *payload)
{
	struct h1_header hs[64];
	struct h1_response rp;
	size_t o = 0;
	ssize_t hl;
	for (;;) {
		hl = h1_parse_response(raw + o, n - o, 0, &rp, hs, 64, NULL);
		cr_assert_gt(hl, 0, "response head: %zd in %s", hl, raw);
		o += (size_t)hl;
		if (rp.status >= 200)
			break;
	}
	cr_assert_eq(rp.version_minor, 1);
	cr_assert(rp.keep_alive, "a translated response keeps the connection");
	struct h1_body bd;
	h1_body_init(&bd, h1_response_body_kind(&rp, method, strlen(method)),
		     rp.content_length);
	cr_assert_neq(bd.kind, H1_BODY_CLOSE);
	while (!bd.done) {
		const char *d;
		size_t dl;
		cr_assert(o < n, "body ends early");
		ssize_t r = h1_body_parse(&bd, raw + o, n - o, &d, &dl);
		cr_assert_gt(r, 0);
		if (payload && dl)
			db_add(payload, d, dl);
		o += (size_t)r;
	}
	cr_assert_eq(o, n, "bytes after the response");
}

static const char GET_H[] = "GET / HTTP/1.1\r\nHost: h.test\r\n\r\n";

/* ---- requests ---- */

Test(h2up_req, get_host_becomes_authority)
{
	struct bench b;
	bench_init(&b, NULL);
	open_req(&b, 1, "GET /x?y=1 HTTP/1.1\r\nHost: example.com:8443\r\n"
			"User-Agent: t/1\r\nAccept: */*\r\n\r\n");
	cr_assert_eq(h2up_streams(b.c), 1);
	pump(&b);
	cr_assert_eq(b.nreq, 1);
	struct sreq *r = req_of(&b, 1);
	cr_assert_str_eq(db_s(&r->hdrs), ":method: GET\n"
					 ":scheme: https\n"
					 ":authority: example.com:8443\n"
					 ":path: /x?y=1\n"
					 "user-agent: t/1\n"
					 "accept: */*\n");
	cr_assert(r->head_end_stream);
	cr_assert_eq(r->data_frames, 0);
	bench_free(&b);
}

Test(h2up_req, absolute_form_target)
{
	struct bench b;
	bench_init(&b, NULL);
	open_req(&b, 1, "GET http://example.com:8080/p?q=1 HTTP/1.1\r\n"
			"Host: example.com:8080\r\n\r\n");
	open_req(&b, 2, "GET http://example.org HTTP/1.1\r\n\r\n");
	pump(&b);
	cr_assert_eq(b.nreq, 2);
	cr_assert_str_eq(db_s(&req_of(&b, 1)->hdrs),
			 ":method: GET\n:scheme: https\n"
			 ":authority: example.com:8080\n:path: /p?q=1\n");
	cr_assert_str_eq(db_s(&req_of(&b, 3)->hdrs),
			 ":method: GET\n:scheme: https\n"
			 ":authority: example.org\n:path: /\n");
	bench_free(&b);
}

Test(h2up_req, scheme_as_given)
{
	struct bench b;
	bench_init(&b, NULL);
	struct h2up_stream *st = h2up_open(b.c, 1);
	b.u[1].st = st;
	ssize_t n = (ssize_t)strlen(GET_H);
	cr_assert_eq(h2up_req_feed(b.c, st, "http", GET_H, (size_t)n), n);
	pump(&b);
	cr_assert_str_eq(db_s(&req_of(&b, 1)->hdrs),
			 ":method: GET\n:scheme: http\n"
			 ":authority: h.test\n:path: /\n");
	bench_free(&b);
}

Test(h2up_req, post_with_content_length)
{
	struct bench b;
	bench_init(&b, NULL);
	open_req(&b, 1, "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n"
			"Content-Type: text/plain\r\n\r\nhello world");
	pump(&b);
	struct sreq *r = req_of(&b, 1);
	cr_assert_str_eq(db_s(&r->hdrs), ":method: POST\n:scheme: https\n"
					 ":authority: h\n:path: /up\n"
					 "content-length: 11\n"
					 "content-type: text/plain\n");
	cr_assert_not(r->head_end_stream);
	cr_assert_str_eq(db_s(&r->body), "hello world");
	cr_assert(r->end_stream);
	cr_assert_eq(r->trailer_frames, 0);
	bench_free(&b);
}

Test(h2up_req, post_body_in_pieces)
{
	struct bench b;
	bench_init(&b, NULL);
	struct h2up_stream *st = h2up_open(b.c, 1);
	b.u[1].st = st;
	const char *parts[] = {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10",
			       "\r\n\r\nab", "cde", "", "fghij"};
	for (size_t i = 0; i < NVN(parts); i++) {
		size_t n = strlen(parts[i]);
		cr_assert_eq(h2up_req_feed(b.c, st, "https", parts[i], n),
			     (ssize_t)n);
		pump(&b);
	}
	struct sreq *r = req_of(&b, 1);
	cr_assert_str_eq(db_s(&r->body), "abcdefghij");
	cr_assert(r->end_stream);
	cr_assert_not(r->got_rst);
	bench_free(&b);
}

static const char CHUNKED_REQ[] =
	"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	"Content-Type: a/b\r\n\r\n"
	"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n"
	"X-Sum: abc\r\nConnection: x-gone\r\nX-Gone: 1\r\nTE: trailers\r\n"
	"X-Two: 2\r\n\r\n";

static void check_chunked_req(struct bench *b)
{
	struct sreq *r = req_of(b, 1);
	cr_assert_str_eq(db_s(&r->hdrs), ":method: POST\n:scheme: https\n"
					 ":authority: h\n:path: /c\n"
					 "content-type: a/b\n");
	cr_assert_str_eq(db_s(&r->body), "hello world");
	cr_assert_geq(r->data_frames, 1);
	cr_assert_eq(r->trailer_frames, 1);
	cr_assert_str_eq(db_s(&r->trl), "x-sum: abc\nx-two: 2\n");
	cr_assert(r->end_stream);
	cr_assert_not(r->got_rst);
}

Test(h2up_req, chunked_with_trailers)
{
	struct bench b;
	bench_init(&b, NULL);
	open_req(&b, 1, CHUNKED_REQ);
	pump(&b);
	check_chunked_req(&b);
	bench_free(&b);
}

Test(h2up_req, chunked_one_byte_at_a_time)
{
	struct bench b;
	bench_init(&b, NULL);
	struct h2up_stream *st = h2up_open(b.c, 1);
	b.u[1].st = st;
	for (size_t i = 0; i < sizeof(CHUNKED_REQ) - 1; i++) {
		cr_assert_eq(h2up_req_feed(b.c, st, "https", CHUNKED_REQ + i, 1), 1,
			     "byte %zu", i);
		if (i % 7 == 0)
			pump(&b);
	}
	pump(&b);
	check_chunked_req(&b);
	bench_free(&b);
}

Test(h2up_req, chunked_without_trailers)
{
	struct bench b;
	bench_init(&b, NULL);
	open_req(&b, 1, "PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
			"\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
	pump(&b);
	struct sreq *r = req_of(&b, 1);
	cr_assert_str_eq(db_s(&r->body), "abc");
	cr_assert_eq(r->trailer_frames, 0);
	cr_assert(r->end_stream);
	bench_free(&b);
}

Test(h2up_req, empty_chunked_body)
{
	struct bench b;
	bench_init(&b, NULL);
	open_req(&b, 1, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
			"\r\n\r\n0\r\n\r\n");
	pump(&b);
	struct sreq *r = req_of(&b, 1);
	cr_assert_eq(r->body.n, 0);
	cr_assert(r->end_stream);
	cr_assert_not(r->got_rst);
	bench_free(&b);
}

Test(h2up_req, fields_lowered_connection_specific_dropped)
{
	struct bench b;
	bench_init(&b, NULL);
	open_req(&b, 1, "GET / HTTP/1.1\r\nHost: h\r\nX-Mixed-CASE: V a l\r\n"
			"Connection: keep-alive, X-Hop\r\nKeep-Alive: 5\r\n"
			"Upgrade: h2c\r\nX-Hop: 1\r\nTE: trailers\r\n"
			"Proxy-Connection: x\r\nCOOKIE: a=b\r\n\r\n");
	open_req(&b, 2, "GET / HTTP/1.1\r\nHost: h\r\nTE: gzip\r\n"
			"Accept: x\r\n\r\n");
	pump(&b);
	cr_assert_str_eq(db_s(&req_of(&b, 1)->hdrs),
			 ":method: GET\n:scheme: https\n:authority: h\n:path: /\n"
			 "x-mixed-case: V a l\nte: trailers\ncookie: a=b\n");
	cr_assert_str_eq(db_s(&req_of(&b, 3)->hdrs),
			 ":method: GET\n:scheme: https\n:authority: h\n:path: /\n"
			 "accept: x\n");
	cr_assert_not(req_of(&b, 1)->got_rst);
	cr_assert_not(b.goaway);
	bench_free(&b);
}

Test(h2up_req, connect_and_bad_heads_refused)
{
	struct bench b;
	bench_init(&b, NULL);
	const char *bad[] = {
		"CONNECT h.test:443 HTTP/1.1\r\nHost: h.test:443\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nBad Field: x\r\n\r\n",
		"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
		"AVERYLONGMETHODNAMETHATDOESNOTFIT / HTTP/1.1\r\nHost: h\r\n\r\n",
	};
	for (size_t i = 0; i < NVN(bad); i++) {
		struct h2up_stream *st = h2up_open(b.c, 1);
		b.u[1].st = st;
		ssize_t r = h2up_req_feed(b.c, st, "https", bad[i], strlen(bad[i]));
		cr_assert_lt(r, 0, "%s: %zd", bad[i], r);
		end_stream(&b, 1);
	}
	pump(&b);
	cr_assert_eq(b.nreq, 0, "nothing reached the server");
	cr_assert(h2up_usable(b.c));
	cr_assert_eq(h2up_streams(b.c), 0);
	/* and the connection still serves */
	open_req(&b, 2, GET_H);
	pump(&b);
	cr_assert_eq(b.nreq, 1);
	bench_free(&b);
}

Test(h2up_req, head_too_large)
{
	struct bench b;
	bench_init(&b, NULL);
	struct h2up_stream *st = h2up_open(b.c, 1);
	b.u[1].st = st;
	const char *h = "GET / HTTP/1.1\r\nHost: h\r\n";
	cr_assert_eq(h2up_req_feed(b.c, st, "https", h, strlen(h)),
		     (ssize_t)strlen(h));
	char line[1024];
	memset(line, 'a', sizeof(line));
	memcpy(line, "X-A: ", 5);
	line[1022] = '\r';
	line[1023] = '\n';
	ssize_t r = 0;
	for (int i = 0; i < 100 && r >= 0; i++)
		r = h2up_req_feed(b.c, st, "https", line, sizeof(line));
	cr_assert_eq(r, RC_H1_HEAD_TOO_LARGE);
	end_stream(&b, 1);
	pump(&b);
	cr_assert_eq(b.nreq, 0);
	bench_free(&b);
}

/* The same request head fed whole, one byte at a time, and from the end
 * of a page: the same frames on the wire. */
Test(h2up_req, head_byte_at_a_time_same_frames)
{
	static const char *const heads[] = {
		"GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n"
		"Cookie: x=1\r\nConnection: close\r\n\r\n",
		"POST http://h.test:81/u HTTP/1.1\r\nContent-Length: 3\r\n"
		"X-Y: z\r\n\r\nabc",
		"PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
		"1\r\nx\r\n0\r\nT: 1\r\n\r\n",
	};
	struct guard g;
	guard_init(&g, 4096);
	for (size_t k = 0; k < NVN(heads); k++) {
		size_t n = strlen(heads[k]);
		struct dbuf wire[3] = {{0}};
		for (int mode = 0; mode < 3; mode++) {
			struct bench b;
			bench_init(&b, NULL);
			size_t start = b.wire.n;
			struct h2up_stream *st = h2up_open(b.c, 1);
			b.u[1].st = st;
			if (mode == 0) {
				cr_assert_eq(h2up_req_feed(b.c, st, "https",
							   heads[k], n),
					     (ssize_t)n);
			} else if (mode == 1) {
				for (size_t i = 0; i < n; i++) {
					char *p = guard_put(&g, heads[k] + i, 1);
					cr_assert_eq(h2up_req_feed(b.c, st, "https",
								   p, 1),
						     1, "%zu: byte %zu", k, i);
				}
			} else {
				char *p = guard_put(&g, heads[k], n);
				cr_assert_eq(h2up_req_feed(b.c, st, "https", p, n),
					     (ssize_t)n);
			}
			pump(&b);
			cr_assert(req_of(&b, 1)->end_stream, "%zu/%d", k, mode);
			db_add(&wire[mode], b.wire.p + start, b.wire.n - start);
			bench_free(&b);
		}
		/* one byte at a time may split DATA differently: compare the
		 * HEADERS frame, which comes first */
		size_t hl = 9 + ((size_t)(uint8_t)wire[0].p[0] << 16 |
				 (size_t)(uint8_t)wire[0].p[1] << 8 |
				 (uint8_t)wire[0].p[2]);
		cr_assert_eq(wire[0].p[3], NGHTTP2_HEADERS);
		for (int mode = 1; mode < 3; mode++) {
			cr_assert_geq(wire[mode].n, hl);
			cr_assert(!memcmp(wire[0].p, wire[mode].p, hl),
				  "%zu: mode %d differs", k, mode);
		}
		cr_assert_eq(wire[0].n, wire[2].n);
		cr_assert(!memcmp(wire[0].p, wire[2].p, wire[0].n));
		for (int mode = 0; mode < 3; mode++)
			db_free(&wire[mode]);
	}
	guard_free(&g);
}

Test(h2up_req, request_body_flow_control)
{
	struct h2up_opts o = {.req_buffer = 1000};
	nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 0}};
	struct bench b;
	bench_init_srv(&b, &o, iv, NVN(iv), true);
	char body[5000];
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (char)('a' + i % 26);
	char head[128];
	int hl = snprintf(head, sizeof(head),
			  "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %zu\r\n\r\n",
			  sizeof(body));
	struct h2up_stream *st = h2up_open(b.c, 1);
	b.u[1].st = st;
	cr_assert_eq(h2up_req_feed(b.c, st, "https", head, (size_t)hl), hl);
	ssize_t r = h2up_req_feed(b.c, st, "https", body, sizeof(body));
	cr_assert_eq(r, 1000, "short: %zd", r);
	cr_assert_eq(h2up_req_feed(b.c, st, "https", body + r, sizeof(body) - 1000), 0);
	pump(&b);
	cr_assert_eq(b.nreq, 1);
	cr_assert_eq(req_of(&b, 1)->body.n, 0, "the window is closed");
	cr_assert_eq(b.u[1].nroom, 0);
	size_t off = 1000;
	for (int round = 0; round < 100 && off < sizeof(body); round++) {
		/* the server reads: WINDOW_UPDATE for what it got, or a
		 * first window */
		size_t got = req_of(&b, 1)->body.n;
		cr_assert_eq(nghttp2_session_set_local_window_size(
				     b.srv, NGHTTP2_FLAG_NONE, 1, 700), 0);
		if (got)
			nghttp2_session_consume(b.srv, 1, got);
		int before = b.u[1].nroom;
		pump(&b);
		cr_assert_gt(req_of(&b, 1)->body.n, got);
		if (b.u[1].nroom > before) {
			r = h2up_req_feed(b.c, st, "https", body + off,
					  sizeof(body) - off);
			cr_assert_gt(r, 0);
			off += (size_t)r;
		}
	}
	cr_assert_eq(off, sizeof(body));
	for (int round = 0; round < 100 && !req_of(&b, 1)->end_stream; round++) {
		nghttp2_session_consume(b.srv, 1, req_of(&b, 1)->body.n);
		cr_assert_eq(nghttp2_session_set_local_window_size(
				     b.srv, NGHTTP2_FLAG_NONE, 1, 700), 0);
		pump(&b);
	}
	cr_assert(req_of(&b, 1)->end_stream);
	cr_assert_eq(req_of(&b, 1)->body.n, sizeof(body));
	cr_assert(!memcmp(req_of(&b, 1)->body.p, body, sizeof(body)));
	bench_free(&b);
}

/* ---- responses ---- */

/* A GET on stream 1 (user 1) that the server has seen. */
static void get1(struct bench *b, const char *raw)
{
	open_req(b, 1, raw ? raw : GET_H);
	pump(b);
	cr_assert_eq(b->nreq, 1);
}

Test(h2up_resp, content_length_exact_bytes)
{
	struct bench b;
	bench_init(&b, NULL);
	get1(&b, NULL);
	nghttp2_nv nv[] = {NV(":status", "200"), NV("content-length", "5"),
			   NV("x-a", "b")};
	struct sbody sb = {.p = "hello", .len = 5};
	respond(&b, 1, nv, NVN(nv), &sb);
	pump(&b);
	struct dbuf r = {0};
	take_resp(&b, 1, &r);
	cr_assert_str_eq(db_s(&r), "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n"
				   "x-a: b\r\n\r\nhello");
	cr_assert_eq(h2up_resp_synth(b.u[1].st), 0);
	cr_assert_gt(b.u[1].ndata, 0);
	cr_assert_eq(b.u[1].nreset, 0);
	struct dbuf pl = {0};
	check_h1_response(r.p, r.n, "GET", &pl);
	cr_assert_str_eq(db_s(&pl), "hello");
	end_stream(&b, 1);
	pump(&b);
	cr_assert_not(req_of(&b, 1)->got_rst, "a finished stream is not reset");
	cr_assert_eq(h2up_streams(b.c), 0);
	db_free(&r);
	db_free(&pl);
	bench_free(&b);
}

Test(h2up_resp, no_length_becomes_chunked)
{
	struct bench b;
	bench_init(&b, NULL);
	get1(&b, NULL);
	nghttp2_nv nv[] = {NV(":status", "404"), NV("x-a", "b")};
	struct sbody sb = {.p = "hello world", .len = 11, .max_frame = 5};
	respond(&b, 1, nv, NVN(nv), &sb);
	pump(&b);
	struct dbuf r = {0};
	take_resp(&b, 1, &r);
	cr_assert_str_eq(db_s(&r), "HTTP/1.1 404 Not Found\r\nx-a: b\r\n"
				   "transfer-encoding: chunked\r\n\r\n"
				   "5\r\nhello\r\n5\r\n worl\r\n1\r\nd\r\n"
				   "0\r\n\r\n");
	cr_assert_eq(h2up_resp_synth(b.u[1].st), 1);
	struct dbuf pl = {0};
	check_h1_response(r.p, r.n, "GET", &pl);
	cr_assert_str_eq(db_s(&pl), "hello world");
	db_free(&r);
	db_free(&pl);
	bench_free(&b);
}

Test(h2up_resp, end_stream_on_headers)
{
	static const struct {
		const char *method, *status, *want;
		uint32_t synth;
	} cases[] = {
		{"GET", "200", "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", 1},
		{"POST", "302", "HTTP/1.1 302 Found\r\nlocation: /x\r\n"
				"content-length: 0\r\n\r\n", 1},
		{"HEAD", "200", "HTTP/1.1 200 OK\r\n\r\n", 0},
		{"GET", "204", "HTTP/1.1 204 No Content\r\n\r\n", 0},
		{"GET", "304", "HTTP/1.1 304 Not Modified\r\n\r\n", 0},
	};
	for (size_t i = 0; i < NVN(cases); i++) {
		struct bench b;
		bench_init(&b, NULL);
		char req[128];
		snprintf(req, sizeof(req), "%s / HTTP/1.1\r\nHost: h\r\n%s\r\n",
			 cases[i].method,
			 strcmp(cases[i].method, "POST") ? "" : "Content-Length: 0\r\n");
		get1(&b, req);
		nghttp2_nv nv[] = {
			{(uint8_t *)":status", (uint8_t *)cases[i].status, 7, 3,
			 NGHTTP2_NV_FLAG_NONE},
			NV("location", "/x"),
		};
		respond(&b, 1, nv, cases[i].status[0] == '3' &&
				       cases[i].status[2] == '2' ? 2 : 1, NULL);
		pump(&b);
		struct dbuf r = {0};
		take_resp(&b, 1, &r);
		cr_assert_str_eq(db_s(&r), cases[i].want, "case %zu", i);
		cr_assert_eq(h2up_resp_synth(b.u[1].st), cases[i].synth);
		check_h1_response(r.p, r.n, cases[i].method, NULL);
		cr_assert_eq(b.u[1].nreset, 0);
		db_free(&r);
		bench_free(&b);
	}
}

Test(h2up_resp, head_response_with_length)
{
	struct bench b;
	bench_init(&b, NULL);
	get1(&b, "HEAD /big HTTP/1.1\r\nHost: h\r\n\r\n");
	nghttp2_nv nv[] = {NV(":status", "200"), NV("content-length", "4242")};
	respond(&b, 1, nv, NVN(nv), NULL);
	pump(&b);
	struct dbuf r = {0};
	take_resp(&b, 1, &r);
	cr_assert_str_eq(db_s(&r), "HTTP/1.1 200 OK\r\ncontent-length: 4242\r\n\r\n");
	cr_assert_eq(h2up_resp_synth(b.u[1].st), 0);
	check_h1_response(r.p, r.n, "HEAD", NULL);
	db_free(&r);
	bench_free(&b);
}

Test(h2up_resp, trailers_without_length)
{
	struct bench b;
	bench_init(&b, NULL);
	get1(&b, NULL);
	nghttp2_nv nv[] = {NV(":status", "200"), NV("content-type", "text/x")};
	nghttp2_nv trl[] = {NV("x-t", "1"), NV("x-u", "two")};
	struct sbody sb = {.p = "abc", .len = 3, .trl = trl, .ntrl = NVN(trl)};
	respond(&b, 1, nv, NVN(nv), &sb);
	pump(&b);
	struct dbuf r = {0};
	take_resp(&b, 1, &r);
	cr_assert_str_eq(db_s(&r), "HTTP/1.1 200 OK\r\ncontent-type: text/x\r\n"
				   "transfer-encoding: chunked\r\n\r\n"
				   "3\r\nabc\r\n0\r\nx-t: 1\r\nx-u: two\r\n\r\n");
	cr_assert_eq(h2up_resp_synth(b.u[1].st), 1);
	check_h1_response(r.p, r.n, "GET", NULL);
	db_free(&r);
	bench_free(&b);
}

/* Trailers announced (a Trailer field, or gRPC) need chunked framing even
 * with a Content-Length, which then must not go along (RFC 9112 6.1). */
Test(h2up_resp, trailers_announced_with_length)
{
	static const char *const ann[][2] = {{"trailer", "x-t"},
					     {"content-type", "application/grpc"}};
	for (size_t i = 0; i < NVN(ann); i++) {
		struct bench b;
		bench_init(&b, NULL);
		get1(&b, NULL);
		nghttp2_nv nv[] = {
			NV(":status", "200"), NV("content-length", "3"),
			{(uint8_t *)ann[i][0], (uint8_t *)ann[i][1],
			 strlen(ann[i][0]), strlen(ann[i][1]), NGHTTP2_NV_FLAG_NONE},
		};
		nghttp2_nv trl[] = {NV("x-t", "1")};
		struct sbody sb = {.p = "abc", .len = 3, .trl = trl, .ntrl = 1};
		respond(&b, 1, nv, NVN(nv), &sb);
		pump(&b);
		struct dbuf r = {0}, want = {0};
		take_resp(&b, 1, &r);
		db_str(&want, "HTTP/1.1 200 OK\r\n");
		db_str(&want, ann[i][0]);
		db_str(&want, ": ");
		db_str(&want, ann[i][1]);
		db_str(&want, "\r\ntransfer-encoding: chunked\r\n\r\n"
			      "3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n");
		cr_assert_str_eq(db_s(&r), db_s(&want));
		cr_assert_eq(h2up_resp_synth(b.u[1].st), 1);
		check_h1_response(r.p, r.n, "GET", NULL);
		db_free(&r);
		db_free(&want);
		bench_free(&b);
	}
}

/* With a Content-Length and no announcement, trailers cannot follow in
 * HTTP/1.1: the body is passed on with its length, the trailers dropped. */
Test(h2up_resp, unannounced_trailers_with_length_dropped)
{
	struct bench b;
	bench_init(&b, NULL);
	get1(&b, NULL);
	nghttp2_nv nv[] = {NV(":status", "200"), NV("content-length", "3")};
	nghttp2_nv trl[] = {NV("x-t", "1")};
	struct sbody sb = {.p = "abc", .len = 3, .trl = trl, .ntrl = 1};
	respond(&b, 1, nv, NVN(nv), &sb);
	pump(&b);
	struct dbuf r = {0};
	take_resp(&b, 1, &r);
	cr_assert_str_eq(db_s(&r), "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc");
	cr_assert_eq(b.u[1].nreset, 0);
	db_free(&r);
	bench_free(&b);
}

static int submit_interim(struct bench *b, int32_t sid, const char *status)
{
	nghttp2_nv nv[] = {
		{(uint8_t *)":status", (uint8_t *)status, 7, 3,
		 NGHTTP2_NV_FLAG_NONE},
		NV("link", "</s.css>; rel=preload"),
	};
	return nghttp2_submit_headers(b->srv, NGHTTP2_FLAG_NONE, sid, NULL, nv,
				      status[2] == '3' ? 2 : 1, NULL);
}

Test(h2up_resp, continue_passed_early_hints_dropped)
{
	struct bench b;
	bench_init(&b, NULL);
	struct h2up_stream *st = h2up_open(b.c, 1);
	b.u[1].st = st;
	const char *h = "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
			"Content-Length: 2\r\n\r\n";
	cr_assert_eq(h2up_req_feed(b.c, st, "https", h, strlen(h)),
		     (ssize_t)strlen(h));
	pump(&b);
	cr_assert_str_eq(db_s(&req_of(&b, 1)->hdrs),
			 ":method: POST\n:scheme: https\n:authority: h\n:path: /\n"
			 "expect: 100-continue\ncontent-length: 2\n");
	cr_assert_eq(submit_interim(&b, 1, "100"), 0);
	pump(&b);
	struct dbuf r = {0};
	take_resp(&b, 1, &r);
	cr_assert_str_eq(db_s(&r), "HTTP/1.1 100 Continue\r\n\r\n");
	cr_assert_eq(b.u[1].ndata, 1);
	cr_assert_eq(h2up_req_feed(b.c, st, "https", "ok", 2), 2);
	cr_assert_eq(submit_interim(&b, 1, "103"), 0);
	pump(&b);
	cr_assert_str_eq(db_s(&req_of(&b, 1)->body), "ok");
	cr_assert_eq(h2up_resp_peek(b.c, st, &(const char *){0}), 0, "103 dropped");
	nghttp2_nv nv[] = {NV(":status", "201"), NV("content-length", "1")};
	struct sbody sb = {.p = "!", .len = 1};
	respond(&b, 1, nv, NVN(nv), &sb);
	pump(&b);
	take_resp(&b, 1, &r);
	cr_assert_str_eq(db_s(&r), "HTTP/1.1 100 Continue\r\n\r\n"
				   "HTTP/1.1 201 Created\r\ncontent-length: 1\r\n\r\n!");
	check_h1_response(r.p, r.n, "POST", NULL);
	cr_assert_eq(h2up_resp_synth(st), 0);
	db_free(&r);
	bench_free(&b);
}

Test(h2up_resp, server_reset_mid_body)
{
	struct bench b;
	bench_init(&b, NULL);
	get1(&b, NULL);
	nghttp2_nv nv[] = {NV(":status", "200"), NV("content-length", "100")};
	struct sbody sb = {.p = "part", .len = 4, .hold = true};
	respond(&b, 1, nv, NVN(nv), &sb);
	pump(&b);
	struct dbuf r = {0};
	take_resp(&b, 1, &r);
	cr_assert_str_eq(db_s(&r), "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npart");
	cr_assert_eq(b.u[1].nreset, 0);
	cr_assert_eq(nghttp2_submit_rst_stream(b.srv, NGHTTP2_FLAG_NONE, 1,
					       NGHTTP2_ENHANCE_YOUR_CALM), 0);
	pump(&b);
	cr_assert_eq(b.u[1].nreset, 1);
	cr_assert_eq(b.u[1].reset_code, NGHTTP2_ENHANCE_YOUR_CALM);
	cr_assert_eq(h2up_req_feed(b.c, b.u[1].st, "https", "x", 1), -EPIPE);
	end_stream(&b, 1);
	pump(&b);
	cr_assert_not(req_of(&b, 1)->got_rst, "no reset for a closed stream");
	cr_assert(h2up_usable(b.c));
	db_free(&r);
	bench_free(&b);
}

/* A reset whose bytes the engine still holds: those stay readable. */
Test(h2up_resp, reset_keeps_bytes_not_taken)
{
	struct bench b;
	bench_init(&b, NULL);
	b.end_in_reset = false;
	get1(&b, NULL);
	nghttp2_nv nv[] = {NV(":status", "200")};
	struct sbody sb = {.p = "part", .len = 4, .hold = true};
	respond(&b, 1, nv, NVN(nv), &sb);
	pump(&b);
	nghttp2_submit_rst_stream(b.srv, NGHTTP2_FLAG_NONE, 1, NGHTTP2_CANCEL);
	pump(&b);
	cr_assert_eq(b.u[1].nreset, 1);
	cr_assert_eq(b.u[1].reset_code, NGHTTP2_CANCEL);
	struct dbuf r = {0};
	take_resp(&b, 1, &r);
	cr_assert_str_eq(db_s(&r), "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked"
				   "\r\n\r\n4\r\npart\r\n");
	db_free(&r);
	bench_free(&b);
}

Test(h2up_resp, end_stream_inside_reset_callback)
{
	struct bench b;
	bench_init(&b, NULL);
	b.end_in_reset = true;
	get1(&b, NULL);
	nghttp2_submit_rst_stream(b.srv, NGHTTP2_FLAG_NONE, 1,
				  NGHTTP2_INTERNAL_ERROR);
	pump(&b);
	cr_assert_eq(b.u[1].nreset, 1);
	cr_assert_null(b.u[1].st);
	cr_assert_eq(h2up_streams(b.c), 0);
	open_req(&b, 2, GET_H);
	pump(&b);
	cr_assert_eq(b.nreq, 2);
	bench_free(&b);
}

Test(h2up_resp, fields_too_large_reset_stream)
{
	struct bench b;
	bench_init(&b, NULL);
	get1(&b, NULL);
	open_req(&b, 2, GET_H);
	pump(&b);
	/* 100 fields of 3000 bytes: 300 KB decoded, a few KB on the wire
	 * (HPACK indexes the repeated field) */
	static char big[3000];
	memset(big, 'v', sizeof(big));
	nghttp2_nv nv[101];
	nv[0] = (nghttp2_nv)NV(":status", "200");
	for (int i = 1; i < 101; i++)
		nv[i] = (nghttp2_nv){(uint8_t *)"x-big", (uint8_t *)big, 5,
				     sizeof(big), NGHTTP2_NV_FLAG_NONE};
	respond(&b, 1, nv, 101, NULL);
	pump(&b);
	cr_assert_eq(b.in_rc, 0, "the connection survives");
	cr_assert_eq(b.u[1].nreset, 1);
	cr_assert(req_of(&b, 1)->got_rst);
	const char *p;
	cr_assert_eq(h2up_resp_peek(b.c, b.u[1].st, &p), 0);
	/* the other stream goes on */
	nghttp2_nv ok[] = {NV(":status", "200"), NV("content-length", "0")};
	respond(&b, 3, ok, NVN(ok), NULL);
	pump(&b);
	struct dbuf r = {0};
	take_resp(&b, 2, &r);
	cr_assert_str_eq(db_s(&r), "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
	cr_assert(h2up_usable(b.c));
	db_free(&r);
	bench_free(&b);
}

Test(h2up_resp, trailers_too_large_reset_stream)
{
	struct bench b;
	bench_init(&b, NULL);
	get1(&b, NULL);
	static char big[3000];
	memset(big, 't', sizeof(big));
	nghttp2_nv trl[10];
	for (int i = 0; i < 10; i++)
		trl[i] = (nghttp2_nv){(uint8_t *)"x-t", (uint8_t *)big, 3,
				      sizeof(big), NGHTTP2_NV_FLAG_NONE};
	nghttp2_nv nv[] = {NV(":status", "200")};
	struct sbody sb = {.p = "abc", .len = 3, .trl = trl, .ntrl = 10};
	respond(&b, 1, nv, NVN(nv), &sb);
	pump(&b);
	cr_assert_eq(b.in_rc, 0);
	cr_assert_eq(b.u[1].nreset, 1);
	bench_free(&b);
}

Test(h2up_resp, flow_control_window_held_until_consumed)
{
	struct h2up_opts o = {.stream_window = 1000};
	struct bench b;
	bench_init(&b, &o);
	get1(&b, NULL);
	static char body[10000];
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (char)('A' + i % 23);
	nghttp2_nv nv[] = {NV(":status", "200"), NV("content-length", "10000")};
	struct sbody sb = {.p = body, .len = sizeof(body)};
	respond(&b, 1, nv, NVN(nv), &sb);
	pump(&b);
	const char *hdr = "HTTP/1.1 200 OK\r\ncontent-length: 10000\r\n\r\n";
	size_t hl = strlen(hdr);
	const char *p;
	size_t n = h2up_resp_peek(b.c, b.u[1].st, &p);
	cr_assert_eq(n, hl + 1000, "only the window: %zu", n);
	cr_assert_eq(sb.off, 1000);
	/* nothing taken: pumping again changes nothing */
	pump(&b);
	cr_assert_eq(h2up_resp_peek(b.c, b.u[1].st, &p), hl + 1000);
	/* taken in part: still held */
	h2up_resp_consume(b.c, b.u[1].st, hl + 10);
	pump(&b);
	cr_assert_eq(h2up_resp_peek(b.c, b.u[1].st, &p), 990);
	cr_assert_eq(sb.off, 1000);
	struct dbuf r = {0};
	db_add(&r, hdr, hl);
	db_add(&r, body, 10);
	for (int round = 0; round < 100 && sb.off < sb.len; round++) {
		take_resp(&b, 1, &r);
		size_t before = sb.off;
		pump(&b);
		cr_assert_gt(sb.off, before);
		cr_assert_leq(h2up_resp_peek(b.c, b.u[1].st, &p), 1000);
	}
	pump(&b);
	take_resp(&b, 1, &r);
	cr_assert_eq(r.n, hl + sizeof(body));
	cr_assert(!memcmp(r.p + hl, body, sizeof(body)));
	cr_assert(req_of(&b, 1)->closed);
	bench_free(&b);
	db_free(&r);
}

/* A stream's window does not stall the connection's: 10 streams each
 * holding a full window, the connection window is large enough. */
Test(h2up_resp, held_streams_do_not_stall_others)
{
	struct h2up_opts o = {.stream_window = 40000};
	struct bench b;
	bench_init(&b, &o);
	static char body[100000];
	memset(body, 'z', sizeof(body));
	struct sbody sb[10];
	for (int i = 1; i <= 10; i++)
		open_req(&b, (uint64_t)i, GET_H);
	pump(&b);
	nghttp2_nv nv[] = {NV(":status", "200"), NV("content-length", "100000")};
	for (int i = 0; i < 10; i++) {
		sb[i] = (struct sbody){.p = body, .len = sizeof(body)};
		respond(&b, 2 * i + 1, nv, NVN(nv), &sb[i]);
	}
	pump(&b);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(sb[i].off, 40000);
	struct dbuf r = {0};
	for (int round = 0; round < 100 && sb[9].off < sb[9].len; round++) {
		take_resp(&b, 10, &r);
		pump(&b);
	}
	take_resp(&b, 10, &r);
	cr_assert_eq(sb[9].off, sizeof(body));
	cr_assert_gt(r.n, sizeof(body));
	db_free(&r);
	bench_free(&b);
}

/* ---- streams and the connection ---- */

Test(h2up_conn, stream_end_cancels_open_stream)
{
	struct bench b;
	bench_init(&b, NULL);
	get1(&b, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nab");
	end_stream(&b, 1);
	pump(&b);
	cr_assert(req_of(&b, 1)->got_rst);
	cr_assert_eq(req_of(&b, 1)->rst_code, NGHTTP2_CANCEL);
	cr_assert_eq(h2up_streams(b.c), 0);
	cr_assert(h2up_usable(b.c));
	/* bytes the server still sends for it are let go */
	open_req(&b, 2, GET_H);
	pump(&b);
	cr_assert_eq(b.nreq, 2);
	bench_free(&b);
}

/* A stream ended with data the engine never took: the connection window
 * gets those bytes back. */
Test(h2up_conn, stream_end_returns_connection_window)
{
	struct h2up_opts o = {.stream_window = 60000};
	struct bench b;
	bench_init(&b, &o);
	static char body[60000];
	memset(body, 'q', sizeof(body));
	nghttp2_nv nv[] = {NV(":status", "200"), NV("content-length", "60000")};
	/* more than the default connection window in total unless returned */
	for (int i = 1; i <= 40; i++) {
		open_req(&b, (uint64_t)i, GET_H);
		pump(&b);
		struct sbody sb = {.p = body, .len = sizeof(body)};
		respond(&b, 2 * i - 1, nv, NVN(nv), &sb);
		pump(&b);
		cr_assert_eq(sb.off, sizeof(body), "stream %d", i);
		end_stream(&b, (uint64_t)i);
		pump(&b);
	}
	bench_free(&b);
}

/* The engine gives up on a stream whose HEADERS have not gone out yet:
 * the server must not see a RST_STREAM for a stream it does not know (a
 * connection error), and the connection goes on. */
Test(h2up_conn, stream_end_before_headers_sent)
{
	struct bench b;
	bench_init(&b, NULL);
	open_req(&b, 1, GET_H);
	end_stream(&b, 1);
	open_req(&b, 2, GET_H);
	pump(&b);
	cr_assert_not(b.goaway, "server got GOAWAY");
	cr_assert(h2up_usable(b.c));
	cr_assert_eq(b.in_rc, 0);
	/* the second stream is answered */
	int32_t sid = req_of(&b, 3)->heads ? 3 : 1;
	cr_assert(req_of(&b, sid)->heads);
	nghttp2_nv nv[] = {NV(":status", "200"), NV("content-length", "0")};
	respond(&b, sid, nv, NVN(nv), NULL);
	pump(&b);
	struct dbuf r = {0};
	take_resp(&b, 2, &r);
	cr_assert_str_eq(db_s(&r), "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
	cr_assert_eq(b.u[2].nreset, 0);
	db_free(&r);
	bench_free(&b);
}

/* The same with a body still being fed, and queued behind the server's
 * concurrency limit. */
Test(h2up_conn, stream_end_while_queued_by_concurrency)
{
	nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1}};
	struct bench b;
	bench_init_srv(&b, NULL, iv, NVN(iv), false);
	get1(&b, NULL);
	open_req(&b, 2, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab");
	open_req(&b, 3, GET_H);
	pump(&b);
	cr_assert_eq(b.nreq, 1, "one at a time");
	end_stream(&b, 2);
	pump(&b);
	nghttp2_nv nv[] = {NV(":status", "200"), NV("content-length", "0")};
	respond(&b, 1, nv, NVN(nv), NULL);
	pump(&b);
	cr_assert_not(b.goaway);
	cr_assert_eq(b.in_rc, 0);
	cr_assert_eq(b.u[3].nreset, 0);
	/* stream 3 reaches the server, as the next one */
	cr_assert_eq(b.nreq, 2);
	int32_t sid = req_of(&b, 3)->heads ? 3 : 5;
	respond(&b, sid, nv, NVN(nv), NULL);
	pump(&b);
	struct dbuf r = {0};
	take_resp(&b, 3, &r);
	cr_assert_str_eq(db_s(&r), "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
	db_free(&r);
	bench_free(&b);
}

Test(h2up_conn, goaway_refuses_streams_above_last)
{
	struct bench b;
	bench_init(&b, NULL);
	for (int i = 1; i <= 3; i++)
		open_req(&b, (uint64_t)i, GET_H);
	pump(&b);
	cr_assert_eq(b.nreq, 3);
	cr_assert(h2up_usable(b.c));
	cr_assert_eq(nghttp2_submit_goaway(b.srv, NGHTTP2_FLAG_NONE, 1,
					   NGHTTP2_NO_ERROR, NULL, 0), 0);
	pump(&b);
	cr_assert_not(h2up_usable(b.c));
	cr_assert_eq(b.u[1].nreset, 0);
	cr_assert_eq(b.u[2].nreset, 1);
	cr_assert_eq(b.u[2].reset_code, NGHTTP2_REFUSED_STREAM);
	cr_assert_eq(b.u[3].nreset, 1);
	/* stream 1 is still answered */
	nghttp2_nv nv[] = {NV(":status", "200"), NV("content-length", "2")};
	struct sbody sb = {.p = "ok", .len = 2};
	respond(&b, 1, nv, NVN(nv), &sb);
	pump(&b);
	struct dbuf r = {0};
	take_resp(&b, 1, &r);
	cr_assert_str_eq(db_s(&r), "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
	cr_assert_eq(b.u[1].nreset, 0);
	for (int i = 1; i <= 3; i++)
		end_stream(&b, (uint64_t)i);
	pump(&b);
	db_free(&r);
	bench_free(&b);
}

Test(h2up_conn, many_concurrent_streams)
{
	nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 16}};
	struct bench b;
	bench_init_srv(&b, NULL, iv, NVN(iv), false);
	enum { N = 300 };
	static char bodies[N][16];
	struct sbody sb[N];
	int answered = 0;
	for (int i = 1; i <= N; i++) {
		char req[96];
		snprintf(req, sizeof(req), "GET /%d HTTP/1.1\r\nHost: h\r\n\r\n", i);
		open_req(&b, (uint64_t)i, req);
	}
	cr_assert_eq(h2up_streams(b.c), N);
	for (int round = 0; round < 1000 && answered < N; round++) {
		pump(&b);
		for (int32_t sid = 1; sid < MAXSID; sid += 2) {
			struct sreq *r = req_of(&b, sid);
			if (!r->heads || r->resp || !r->end_stream)
				continue;
			const char *path = strstr(db_s(&r->hdrs), ":path: /");
			cr_assert(path);
			int i = atoi(path + 8);
			cr_assert(i >= 1 && i <= N);
			snprintf(bodies[i - 1], sizeof(bodies[i - 1]), "body %d", i);
			sb[i - 1] = (struct sbody){.p = bodies[i - 1],
						   .len = strlen(bodies[i - 1]),
						   .max_frame = 3};
			nghttp2_nv nv[] = {NV(":status", "200")};
			respond(&b, sid, nv, NVN(nv), &sb[i - 1]);
			answered++;
		}
	}
	pump(&b);
	cr_assert_eq(answered, N);
	for (int i = 1; i <= N; i++) {
		struct dbuf r = {0}, pl = {0};
		take_resp(&b, (uint64_t)i, &r);
		check_h1_response(r.p, r.n, "GET", &pl);
		char want[32];
		snprintf(want, sizeof(want), "body %d", i);
		cr_assert_str_eq(db_s(&pl), want);
		cr_assert_eq(b.u[i].nreset, 0);
		end_stream(&b, (uint64_t)i);
		db_free(&r);
		db_free(&pl);
	}
	cr_assert_eq(h2up_streams(b.c), 0);
	bench_free(&b);
}

Test(h2up_conn, garbage_from_server)
{
	static const char *const garbage[] = {
		"HTTP/1.1 200 OK\r\n\r\n",
		/* a DATA frame on stream 0 */
		"\x00\x00\x01\x00\x00\x00\x00\x00\x00x",
		/* a frame larger than the maximum frame size */
		"\x01\x00\x00\x00\x00\x00\x00\x00\x01",
		/* HEADERS with a broken HPACK block */
		"\x00\x00\x02\x01\x05\x00\x00\x00\x01\xff\xff",
	};
	static const size_t glen[] = {19, 10, 9, 11};
	for (size_t i = 0; i < NVN(garbage); i++) {
		struct h2up *c;
		struct bench b;
		memset(&b, 0, sizeof(b));
		if (i == 0) {
			/* before any SETTINGS */
			cr_assert_eq(h2up_new(&c, &up_cb, &b, NULL), 0);
			b.c = c;
			struct h2up_stream *st = h2up_open(c, 1);
			b.u[1].st = st;
			cr_assert_eq(h2up_req_feed(c, st, "https", GET_H,
						   strlen(GET_H)),
				     (ssize_t)strlen(GET_H));
			uint8_t out[4096];
			cr_assert_gt(h2up_output(c, out, sizeof(out)), 0);
			ssize_t r = h2up_input(c, (const uint8_t *)garbage[i], glen[i]);
			cr_assert_lt(r, 0, "garbage %zu: %zd", i, r);
			cr_assert_not(h2up_usable(c));
			/* the GOAWAY nghttp2 queued still goes out */
			ssize_t n = h2up_output(c, out, sizeof(out));
			cr_assert_geq(n, 9);
			cr_assert_eq(out[3], NGHTTP2_GOAWAY);
			h2up_reset_all(c, NGHTTP2_PROTOCOL_ERROR);
			cr_assert_eq(b.u[1].nreset, 1);
			h2up_free(c);
			continue;
		}
		bench_init(&b, NULL);
		open_req(&b, 1, GET_H);
		pump(&b);
		ssize_t r = h2up_input(b.c, (const uint8_t *)garbage[i], glen[i]);
		cr_assert_lt(r, 0, "garbage %zu: %zd", i, r);
		cr_assert_not(h2up_usable(b.c));
		cr_assert_lt(h2up_input(b.c, (const uint8_t *)"x", 1), 0);
		cr_assert_eq(h2up_req_feed(b.c, b.u[1].st, "https", "x", 1), -EPIPE);
		/* the GOAWAY nghttp2 queued still goes out */
		pump(&b);
		cr_assert(b.goaway, "garbage %zu: no GOAWAY", i);
		cr_assert_neq(b.goaway_code, NGHTTP2_NO_ERROR);
		h2up_reset_all(b.c, NGHTTP2_PROTOCOL_ERROR);
		cr_assert_eq(b.u[1].nreset, 1);
		cr_assert_eq(b.u[1].reset_code, NGHTTP2_PROTOCOL_ERROR);
		end_stream(&b, 1);
		bench_free(&b);
	}
}

Test(h2up_conn, reset_all_tells_each_stream_once)
{
	struct bench b;
	bench_init(&b, NULL);
	for (int i = 1; i <= 3; i++)
		open_req(&b, (uint64_t)i, GET_H);
	pump(&b);
	nghttp2_nv nv[] = {NV(":status", "200"), NV("content-length", "0")};
	respond(&b, 1, nv, NVN(nv), NULL);
	pump(&b);
	h2up_reset_all(b.c, 2);
	cr_assert_eq(b.u[1].nreset, 0, "a finished stream is not reset");
	cr_assert_eq(b.u[2].nreset, 1);
	cr_assert_eq(b.u[3].nreset, 1);
	cr_assert_eq(b.u[3].reset_code, 2);
	cr_assert_not(h2up_usable(b.c));
	h2up_reset_all(b.c, 2);
	cr_assert_eq(b.u[2].nreset, 1);
	/* the streams are freed with the connection */
	bench_free(&b);
}

/* The engine may end streams from inside on_reset (the contract allows
 * the stream functions in callbacks). */
Test(h2up_conn, reset_all_with_streams_ended_in_callback)
{
	struct bench b;
	bench_init(&b, NULL);
	for (int i = 1; i <= 5; i++)
		open_req(&b, (uint64_t)i, GET_H);
	pump(&b);
	b.end_in_reset = true;
	h2up_reset_all(b.c, 2);
	for (int i = 1; i <= 5; i++) {
		cr_assert_eq(b.u[i].nreset, 1);
		cr_assert_null(b.u[i].st);
	}
	cr_assert_eq(h2up_streams(b.c), 0);
	bench_free(&b);
}

/* ... and from inside on_resp_data, for an interim response too. */
Test(h2up_resp, stream_ended_inside_data_callback)
{
	struct bench b;
	bench_init(&b, NULL);
	get1(&b, "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
		 "Content-Length: 2\r\n\r\n");
	open_req(&b, 2, GET_H);
	pump(&b);
	b.end_in_data = true;
	cr_assert_eq(submit_interim(&b, 1, "100"), 0);
	nghttp2_nv nv[] = {NV(":status", "200")};
	struct sbody sb = {.p = "abc", .len = 3};
	respond(&b, 3, nv, NVN(nv), &sb);
	pump(&b);
	cr_assert_eq(b.u[1].ndata, 1);
	cr_assert_eq(b.u[2].ndata, 1);
	cr_assert_eq(h2up_streams(b.c), 0);
	cr_assert(req_of(&b, 1)->got_rst);
	cr_assert_not(b.goaway);
	bench_free(&b);
}

/* A status nghttp2 lets through but HTTP/1.1 has no head for. */
Test(h2up_resp, status_below_100_resets_stream)
{
	struct bench b;
	bench_init(&b, NULL);
	get1(&b, NULL);
	nghttp2_nv nv[] = {NV(":status", "051"), NV("content-length", "0")};
	respond(&b, 1, nv, NVN(nv), NULL);
	pump(&b);
	cr_assert_eq(b.u[1].nreset, 1);
	const char *p;
	cr_assert_eq(h2up_resp_peek(b.c, b.u[1].st, &p), 0);
	cr_assert(h2up_usable(b.c));
	bench_free(&b);
}
