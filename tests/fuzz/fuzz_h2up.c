/* SPDX-License-Identifier: MIT */
/* libFuzzer target for proto/h2up: a server byte stream fed to h2up_input
 * in pieces of every size, interleaved with what an engine does (open
 * streams, feed HTTP/1.1 requests in pieces, take response bytes, end
 * streams, also from inside callbacks), output drained throughout;
 * callback invariants checked (none for a stream the engine ended, at
 * most one reset), and everything freed (ASan sees leaks). Every response
 * byte handed out is parsed back with proto/h1: heads must parse (1xx
 * first, then one final head, keep-alive, never close-delimited) and the
 * body must decode, with nothing after its end.
 *
 * With F_SERVER the server stream bytes are instead operations of a real
 * nghttp2 server session (answer a stream in one of several shapes,
 * interim responses, resets, GOAWAY, window updates) that h2up's output
 * goes to: a request frame the server finds malformed is a failure, and
 * every stream the server answered whole, that nothing reset, must give
 * the engine a whole response by the end.
 *
 * Input: flags (1 byte), server stream length (2 bytes, big endian), the
 * server stream, then a script of one-byte operations (some followed by
 * their bytes). tests/fuzz/gen_h2up_corpus.py writes seeds in this
 * shape. */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/h1.h"
#include "proto/h2up.h"

#define CHECK(x)                   \
	do {                       \
		if (!(x))          \
			abort();   \
	} while (0)

#define MAXS 64

enum {
	F_SETTINGS = 1 << 0,     /* an empty server SETTINGS comes first */
	F_SMALL_WINDOW = 1 << 1, /* stream_window 100 */
	F_SMALL_REQBUF = 1 << 2, /* req_buffer 50 */
	F_END_IN_CB = 1 << 3,    /* the engine ends streams inside callbacks */
	F_SERVER = 1 << 4,       /* a real server session makes the stream */
};

/* The engine's side of one stream. */
struct slot {
	struct h2up_stream *st; /* NULL: free */
	uint64_t user;
	char req[512];          /* the request to feed */
	size_t reqlen, reqoff;
	bool head_req;          /* HEAD: no response body */
	bool reset;             /* on_reset seen */
	/* the response as taken so far */
	char head[8192];        /* head bytes not parsed yet */
	size_t headlen;
	bool in_body, body_done;
	struct h1_body body;
};

struct srv;

struct fz {
	struct h2up *c;
	uint8_t flags;
	struct slot s[MAXS];
	uint64_t next_user;
	bool reset_all;     /* h2up_reset_all was called */
	struct srv *sv;
	const uint8_t *raw; /* the server stream */
	size_t rawlen, rawoff;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct slot *slot_of(struct fz *f, uint64_t user)
{
	for (int i = 0; i < MAXS; i++)
		if (f->s[i].st && f->s[i].user == user)
			return &f->s[i];
	return NULL;
}

static struct slot *pick(struct fz *f, unsigned k)
{
	int n = 0;
	for (int i = 0; i < MAXS; i++)
		n += f->s[i].st != NULL;
	if (!n)
		return NULL;
	k %= (unsigned)n;
	for (int i = 0; i < MAXS; i++)
		if (f->s[i].st && k-- == 0)
			return &f->s[i];
	return NULL;
}

static void end(struct fz *f, struct slot *s)
{
	if (!s)
		return;
	h2up_stream_end(f->c, s->st);
	memset(s, 0, sizeof(*s));
}

static struct h1_header hdrs[256];

/* Response bytes taken by the engine: one valid HTTP/1.1 response. */
static void check_resp(struct slot *s, const char *p, size_t n)
{
	size_t o = 0;
	while (o < n) {
		CHECK(!s->body_done); /* nothing after the end */
		if (!s->in_body) {
			size_t k = n - o;
			if (k > sizeof(s->head) - s->headlen)
				k = sizeof(s->head) - s->headlen;
			memcpy(s->head + s->headlen, p + o, k);
			struct h1_response rp;
			ssize_t hl = h1_parse_response(s->head, s->headlen + k, 0,
						       &rp, hdrs, 256, NULL);
			CHECK(hl >= 0);
			if (hl == 0) {
				/* (a head larger than the buffer: stop checking) */
				s->headlen += k;
				if (s->headlen == sizeof(s->head))
					s->body_done = s->in_body = true;
				return;
			}
			CHECK((size_t)hl > s->headlen);
			o += (size_t)hl - s->headlen;
			s->headlen = 0;
			CHECK(rp.version_minor == 1 && rp.status >= 100 &&
			      rp.status <= 999 && rp.keep_alive);
			if (rp.status < 200)
				continue; /* (100 Continue) */
			const char *m = s->head_req ? "HEAD" : "GET";
			enum h1_body_kind k2 = h1_response_body_kind(&rp, m, strlen(m));
			CHECK(k2 != H1_BODY_CLOSE);
			h1_body_init(&s->body, k2, rp.content_length);
			s->in_body = true;
			s->body_done = s->body.done;
			continue;
		}
		const char *d;
		size_t dl;
		ssize_t r = h1_body_parse(&s->body, p + o, n - o, &d, &dl);
		CHECK(r > 0);
		o += (size_t)r;
		s->body_done = s->body.done;
	}
}

/* The engine takes response bytes of |s| (|half|: about half). */
static void take(struct fz *f, struct slot *s, bool half)
{
	if (!s)
		return;
	const char *p;
	size_t n = h2up_resp_peek(f->c, s->st, &p);
	if (!n)
		return;
	CHECK(p);
	if (half)
		n = (n + 1) / 2;
	check_resp(s, p, n);
	h2up_resp_consume(f->c, s->st, n);
	CHECK(h2up_resp_synth(s->st) <= 1);
}

static void cb_data(void *arg, uint64_t user)
{
	struct fz *f = arg;
	struct slot *s = slot_of(f, user);
	CHECK(s && !s->reset); /* (bytes, or the end of a response) */
	if ((f->flags & F_END_IN_CB) && user % 5 == 0)
		end(f, s);
	else if ((f->flags & F_END_IN_CB) && user % 5 == 1)
		take(f, s, false);
}

static void cb_room(void *arg, uint64_t user)
{
	struct fz *f = arg;
	struct slot *s = slot_of(f, user);
	CHECK(s && !s->reset);
	if ((f->flags & F_END_IN_CB) && user % 7 == 3)
		end(f, s);
}

static void cb_reset(void *arg, uint64_t user, uint32_t code)
{
	struct fz *f = arg;
	(void)code;
	struct slot *s = slot_of(f, user);
	CHECK(s && !s->reset);
	s->reset = true;
	if ((f->flags & F_END_IN_CB) && user % 3 == 0)
		end(f, s);
}

static const struct h2up_cb cbs = {
	.on_resp_data = cb_data,
	.on_req_room = cb_room,
	.on_reset = cb_reset,
};

static const char *const reqs[] = {
	"GET /u%u HTTP/1.1\r\nHost: h.test\r\nAccept: */*\r\n\r\n",
	"HEAD /u%u HTTP/1.1\r\nHost: h.test\r\n\r\n",
	"POST /u%u HTTP/1.1\r\nHost: h.test\r\nContent-Length: 11\r\n\r\nhello world",
	"PUT /u%u HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: chunked\r\n"
	"Connection: x-a\r\nX-A: 1\r\n\r\n5\r\nhello\r\n3;e=1\r\nabc\r\n0\r\n"
	"X-T: 1\r\n\r\n",
	"GET http://h.test:81/u%u?q HTTP/1.1\r\nTE: trailers\r\n"
	"Keep-Alive: 1\r\n\r\n",
	"POST /u%u HTTP/1.1\r\nHost: h.test\r\nExpect: 100-continue\r\n"
	"Content-Length: 300\r\n\r\n"
	"0123456789012345678901234567890123456789012345678901234567890123456789"
	"0123456789012345678901234567890123456789012345678901234567890123456789"
	"0123456789012345678901234567890123456789012345678901234567890123456789"
	"0123456789012345678901234567890123456789012345678901234567890123456789"
	"01234567890123456789",
	"DELETE /u%u HTTP/1.1\r\nhost: H.Test\r\nCookie: a=b\r\nUpgrade: x\r\n"
	"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: h.test\r\n\r\n",
};
#define NREQ (sizeof(reqs) / sizeof(reqs[0]))

/* ---- the server session (F_SERVER) ---- */

#define MAXSID 512

struct sbody {
	size_t left;
	bool hold, deferred, trailers;
};

struct srv {
	nghttp2_session *s;
	const uint8_t *ops;
	size_t nops, oi;
	int32_t sids[MAXSID]; /* requests seen, in order */
	int nsids;
	bool answered[MAXSID]; /* by index in sids */
	bool whole[MAXSID];    /* the response went out whole */
	unsigned uid[MAXSID];  /* the engine's user, from the path */
	struct sbody body[MAXSID];
};

static int sv_index(struct srv *sv, int32_t sid)
{
	for (int i = 0; i < sv->nsids; i++)
		if (sv->sids[i] == sid)
			return i;
	return -1;
}

static int sv_header(nghttp2_session *s, const nghttp2_frame *fr,
		     const uint8_t *name, size_t nl, const uint8_t *value,
		     size_t vl, uint8_t flags, void *ud)
{
	struct srv *sv = ud;
	(void)s;
	(void)flags;
	if (fr->hd.type != NGHTTP2_HEADERS || nl != 5 || memcmp(name, ":path", 5))
		return 0;
	int i = sv_index(sv, fr->hd.stream_id);
	if (i < 0 && sv->nsids < MAXSID) {
		i = sv->nsids++;
		sv->sids[i] = fr->hd.stream_id;
	}
	if (i >= 0) {
		char num[16] = {0};
		size_t k = 0;
		const uint8_t *v = value + (vl >= 2 && value[0] == '/' &&
					    value[1] == 'u' ? 2 : vl);
		size_t left = vl - (size_t)(v - value);
		while (k < left && k < 10 && v[k] >= '0' && v[k] <= '9') {
			num[k] = (char)v[k];
			k++;
		}
		sv->uid[i] = k ? (unsigned)strtoul(num, NULL, 10) : 0;
	}
	return 0;
}

/* h2up sends nothing malformed: the server never resets for that. */
static int sv_frame_send(nghttp2_session *s, const nghttp2_frame *fr,
			 void *ud)
{
	(void)s;
	(void)ud;
	if (fr->hd.type == NGHTTP2_RST_STREAM &&
	    fr->rst_stream.error_code == NGHTTP2_PROTOCOL_ERROR) {
		fprintf(stderr, "server: reset stream %d: malformed\n",
			fr->hd.stream_id);
		abort();
	}
	if (fr->hd.type == NGHTTP2_GOAWAY)
		CHECK(fr->goaway.error_code == NGHTTP2_NO_ERROR);
	return 0;
}

static int sv_invalid(nghttp2_session *s, const nghttp2_frame *fr, int err,
		      void *ud)
{
	(void)s;
	(void)ud;
	if (err == NGHTTP2_ERR_REFUSED_STREAM)
		return 0; /* (a lower stream limit crossed our HEADERS) */
	fprintf(stderr, "server: invalid frame type %d on stream %d: %s\n",
		fr->hd.type, fr->hd.stream_id, nghttp2_strerror(err));
	abort();
}

static ssize_t sv_read(nghttp2_session *s, int32_t sid, uint8_t *buf,
		       size_t length, uint32_t *flags, nghttp2_data_source *src,
		       void *ud)
{
	struct sbody *b = src->ptr;
	(void)ud;
	size_t n = b->left < length ? b->left : length;
	memset(buf, 'r', n);
	b->left -= n;
	if (!b->left) {
		if (b->hold) {
			if (!n) {
				b->deferred = true;
				return NGHTTP2_ERR_DEFERRED;
			}
			return (ssize_t)n;
		}
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (b->trailers) {
			nghttp2_nv t[] = {{(uint8_t *)"x-t", (uint8_t *)"1", 3, 1,
					   NGHTTP2_NV_FLAG_NONE}};
			if (nghttp2_submit_trailer(s, sid, t, 1) == 0)
				*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		}
	}
	return (ssize_t)n;
}

static int sv_close(nghttp2_session *s, int32_t sid, uint32_t code, void *ud)
{
	struct srv *sv = ud;
	(void)s;
	int i = sv_index(sv, sid);
	if (i >= 0 && code != NGHTTP2_NO_ERROR)
		sv->whole[i] = false;
	return 0;
}

static int sv_data_sent(nghttp2_session *s, const nghttp2_frame *fr, void *ud)
{
	struct srv *sv = ud;
	(void)s;
	if ((fr->hd.type == NGHTTP2_DATA || fr->hd.type == NGHTTP2_HEADERS) &&
	    (fr->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
		int i = sv_index(sv, fr->hd.stream_id);
		if (i >= 0 && sv->answered[i])
			sv->whole[i] = true;
	}
	return sv_frame_send(s, fr, ud);
}

static struct srv *srv_new(const uint8_t *ops, size_t n)
{
	struct srv *sv = calloc(1, sizeof(*sv));
	nghttp2_session_callbacks *ncb;
	CHECK(sv && nghttp2_session_callbacks_new(&ncb) == 0);
	nghttp2_session_callbacks_set_on_header_callback(ncb, sv_header);
	nghttp2_session_callbacks_set_on_frame_send_callback(ncb, sv_data_sent);
	nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(ncb, sv_invalid);
	nghttp2_session_callbacks_set_on_stream_close_callback(ncb, sv_close);
	CHECK(nghttp2_session_server_new(&sv->s, ncb, sv) == 0);
	nghttp2_session_callbacks_del(ncb);
	nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 8},
				       {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
					ops && n ? (uint32_t)ops[0] * 64 + 1 : 65535}};
	CHECK(nghttp2_submit_settings(sv->s, NGHTTP2_FLAG_NONE, iv, 2) == 0);
	sv->ops = ops;
	sv->nops = n;
	sv->oi = n ? 1 : 0;
	return sv;
}

static void srv_free(struct srv *sv)
{
	if (!sv)
		return;
	nghttp2_session_del(sv->s);
	free(sv);
}

#define NVS(n, v)                                                      \
	(nghttp2_nv)                                                   \
	{                                                              \
		(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), \
			NGHTTP2_NV_FLAG_NONE                            \
	}

/* Answer the |k|-th stream not answered yet, in the shape |op| says. */
static void srv_answer(struct srv *sv, unsigned k, uint8_t op, uint8_t arg)
{
	static const char *const status[] = {"200", "204", "304", "404",
					     "500", "201", "302", "206"};
	int i;
	for (i = 0; i < sv->nsids; i++)
		if (!sv->answered[i] && nghttp2_session_find_stream(sv->s, sv->sids[i]) &&
		    k-- == 0)
			break;
	if (i == sv->nsids)
		return;
	int32_t sid = sv->sids[i];
	if (op & 1) { /* an interim response first */
		nghttp2_nv nv[] = {NVS(":status", (op & 2) ? "100" : "103")};
		nghttp2_submit_headers(sv->s, NGHTTP2_FLAG_NONE, sid, NULL, nv, 1,
				       NULL);
	}
	struct sbody *b = &sv->body[i];
	b->left = (size_t)arg * 13;
	b->trailers = op & 4;
	b->hold = false;
	const char *st = status[(op >> 3) & 7];
	bool nobody = !strcmp(st, "204") || !strcmp(st, "304");
	nghttp2_nv nv[4];
	size_t n = 0;
	char cl[24];
	nv[n++] = NVS(":status", st);
	if ((op & 0x40) && !nobody) {
		snprintf(cl, sizeof(cl), "%zu", b->left);
		nv[n++] = NVS("content-length", cl);
	}
	if (op & 0x80)
		nv[n++] = NVS("trailer", "x-t");
	nv[n++] = NVS("x-s", "v");
	nghttp2_data_provider prd = {.source.ptr = b, .read_callback = sv_read};
	sv->answered[i] = true;
	if (nghttp2_submit_response(sv->s, sid, nv, n,
				    nobody || (!b->left && !b->trailers) ? NULL
									 : &prd))
		sv->answered[i] = false;
}

/* One server operation. */
static void srv_op(struct fz *f)
{
	struct srv *sv = f->sv;
	if (sv->oi >= sv->nops)
		return;
	uint8_t op = sv->ops[sv->oi++];
	uint8_t a1 = sv->oi < sv->nops ? sv->ops[sv->oi++] : 0;
	uint8_t a2 = sv->oi < sv->nops ? sv->ops[sv->oi++] : 0;
	int i = sv->nsids ? (int)(a1 % (unsigned)sv->nsids) : -1;
	switch (op & 7) {
	case 0:
	case 1:
	case 2:
		srv_answer(sv, a1 & 7, a2, (uint8_t)(op | (uint8_t)(a1 >> 3)));
		break;
	case 3: /* reset a stream */
		if (i >= 0 && nghttp2_session_find_stream(sv->s, sv->sids[i]))
			nghttp2_submit_rst_stream(sv->s, NGHTTP2_FLAG_NONE,
						  sv->sids[i],
						  /* (PROTOCOL_ERROR: not on purpose) */
						  a2 % 14 == 1 ? 8u : a2 % 14u);
		break;
	case 4: /* GOAWAY below the last stream */
		nghttp2_submit_goaway(sv->s, NGHTTP2_FLAG_NONE,
				      i >= 0 ? sv->sids[i] : 0,
				      NGHTTP2_NO_ERROR, NULL, 0);
		break;
	case 5: /* a window for a stream or the connection */
		nghttp2_submit_window_update(sv->s, NGHTTP2_FLAG_NONE,
					     i >= 0 && (a2 & 1) ? sv->sids[i] : 0,
					     (int32_t)a2 * 97 + 1);
		break;
	case 6:
		nghttp2_submit_ping(sv->s, NGHTTP2_FLAG_NONE, NULL);
		break;
	default: { /* a new SETTINGS */
		nghttp2_settings_entry iv[] = {
			{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)a2 * 500},
			{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, a1 & 15}};
		nghttp2_submit_settings(sv->s, NGHTTP2_FLAG_NONE, iv, 2);
		break;
	}
	}
}

/* ---- the engine ---- */

static void input(struct fz *f, const uint8_t *p, size_t n)
{
	if (!n)
		return;
	ssize_t r = h2up_input(f->c, p, n);
	CHECK(r < 0 || (size_t)r == n);
	/* a real server breaks nothing (h2up_reset_all does) */
	CHECK(r >= 0 || !f->sv || f->reset_all);
}

/* Output to the server (F_SERVER: both ways, |piece| bytes at a time). */
static void drain(struct fz *f, size_t cap)
{
	static uint8_t buf[1 << 16];
	if (cap > sizeof(buf))
		cap = sizeof(buf);
	if (!cap)
		cap = 1;
	for (int i = 0; i < 10000; i++) {
		bool moved = false;
		ssize_t n = h2up_output(f->c, buf, cap);
		CHECK(n <= (ssize_t)cap);
		if (n > 0) {
			moved = true;
			if (f->sv)
				CHECK(nghttp2_session_mem_recv(f->sv->s, buf,
							       (size_t)n) == n);
		}
		if (f->sv) {
			const uint8_t *d;
			ssize_t k = nghttp2_session_mem_send(f->sv->s, &d);
			CHECK(k >= 0);
			if (k > 0) {
				moved = true;
				for (ssize_t o = 0; o < k; o += (ssize_t)cap)
					input(f, d + o, (size_t)(k - o) < cap
								 ? (size_t)(k - o) : cap);
			}
		}
		if (!moved)
			return;
	}
}

/* Give h2up |n| more server bytes (F_SERVER: run server operations). */
static void feed(struct fz *f, size_t n, bool all)
{
	if (f->sv) {
		size_t k = all ? f->sv->nops : n / 8 + 1;
		for (size_t i = 0; i < k && f->sv->oi < f->sv->nops; i++) {
			srv_op(f);
			drain(f, 4096);
		}
		return;
	}
	if (all || n > f->rawlen - f->rawoff)
		n = f->rawlen - f->rawoff;
	input(f, f->raw + f->rawoff, n);
	f->rawoff += n;
}

static void open_stream(struct fz *f, unsigned k, const uint8_t **sc,
			const uint8_t *se)
{
	int i;
	for (i = 0; i < MAXS && f->s[i].st; i++)
		;
	if (i == MAXS)
		return;
	struct slot *s = &f->s[i];
	uint64_t user = ++f->next_user;
	struct h2up_stream *st = h2up_open(f->c, user);
	CHECK(st);
	memset(s, 0, sizeof(*s));
	s->st = st;
	s->user = user;
	if (k == 31 && !f->sv) { /* request bytes from the input */
		size_t n = *sc < se ? *(*sc)++ : 0;
		if (n > (size_t)(se - *sc))
			n = (size_t)(se - *sc);
		memcpy(s->req, *sc, n);
		*sc += n;
		s->reqlen = n;
		s->head_req = n >= 4 && !memcmp(s->req, "HEAD", 4);
		return;
	}
	/* the template with the user in place of its "%u" */
	const char *t = reqs[k % NREQ], *u = strstr(t, "%u");
	char num[24];
	int nl = snprintf(num, sizeof(num), "%llu", (unsigned long long)user);
	size_t pre = u ? (size_t)(u - t) : strlen(t), post = u ? strlen(u + 2) : 0;
	CHECK(nl > 0 && pre + (size_t)nl + post < sizeof(s->req));
	memcpy(s->req, t, pre);
	memcpy(s->req + pre, num, u ? (size_t)nl : 0);
	memcpy(s->req + pre + (u ? (size_t)nl : 0), u ? u + 2 : "", post);
	s->reqlen = pre + (u ? (size_t)nl : 0) + post;
	s->head_req = !strncmp(t, "HEAD", 4);
}

static void send_req(struct fz *f, struct slot *s, size_t n)
{
	if (!s || s->reqoff == s->reqlen)
		return;
	if (n > s->reqlen - s->reqoff)
		n = s->reqlen - s->reqoff;
	ssize_t r = h2up_req_feed(f->c, s->st, "https", s->req + s->reqoff, n);
	CHECK(r <= (ssize_t)n);
	if (r < 0) {
		/* (a head HTTP/1 rejects, CONNECT, or a stream gone) */
		s->reqoff = s->reqlen;
		return;
	}
	s->reqoff += (size_t)r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t settings[] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
	if (size < 3)
		return 0;
	struct fz f;
	memset(&f, 0, sizeof(f));
	f.flags = data[0];
	size_t slen = (size_t)data[1] << 8 | data[2];
	const uint8_t *sv = data + 3;
	if (slen > size - 3)
		slen = size - 3;
	const uint8_t *sc = sv + slen, *se = data + size;
	struct h2up_opts o = {0};
	if (f.flags & F_SMALL_WINDOW)
		o.stream_window = 100;
	if (f.flags & F_SMALL_REQBUF)
		o.req_buffer = 50;
	CHECK(h2up_new(&f.c, &cbs, &f, &o) == 0);
	f.raw = sv;
	f.rawlen = slen;
	if (f.flags & F_SERVER)
		f.sv = srv_new(sv, slen);
	drain(&f, 1 << 16);
	if ((f.flags & F_SETTINGS) && !f.sv)
		input(&f, settings, sizeof(settings));
	while (sc < se) {
		uint8_t op = *sc++;
		unsigned arg = op >> 3;
		switch (op & 7) {
		case 0:
			open_stream(&f, arg, &sc, se);
			break;
		case 1: /* request bytes */
			send_req(&f, pick(&f, arg & 15),
				 (arg & 16) ? SIZE_MAX
					    : (size_t)(sc < se ? *sc++ : 0) + 1);
			break;
		case 2:
			take(&f, pick(&f, arg & 15), arg & 16);
			break;
		case 3:
			end(&f, pick(&f, arg));
			break;
		case 4: /* a small piece of the server stream */
			feed(&f, arg + 1, arg == 31);
			break;
		case 5:
			drain(&f, (size_t)arg * 16 + 1);
			break;
		case 6: /* a bigger piece of the server stream */
			feed(&f, sc < se ? (size_t)*sc++ * 8 + 1 : 1, false);
			break;
		default:
			if (arg == 0) {
				h2up_reset_all(f.c, NGHTTP2_INTERNAL_ERROR);
				f.reset_all = true;
			} else {
				(void)h2up_usable(f.c);
				size_t n = 0;
				for (int i = 0; i < MAXS; i++)
					n += f.s[i].st != NULL;
				CHECK(h2up_streams(f.c) == n);
			}
			break;
		}
		drain(&f, 4096);
	}
	/* the rest: every request whole, the server's rest, every response
	 * byte taken */
	for (int round = 0; round < 64; round++) {
		for (int i = 0; i < MAXS; i++)
			if (f.s[i].st)
				send_req(&f, &f.s[i], SIZE_MAX);
		feed(&f, 0, true);
		if (f.sv) /* answer whatever is left */
			for (int k = 0; k < 16; k++)
				srv_answer(f.sv, 0, (uint8_t)(k * 37), (uint8_t)k);
		drain(&f, 1 << 16);
		for (int i = 0; i < MAXS; i++)
			if (f.s[i].st)
				take(&f, &f.s[i], false);
		drain(&f, 1 << 16);
	}
	/* a server that answered whole: a whole response, unless reset */
	if (f.sv) {
		for (int i = 0; i < f.sv->nsids; i++) {
			if (!f.sv->whole[i])
				continue;
			struct slot *s = slot_of(&f, f.sv->uid[i]);
			if (s && !s->reset)
				CHECK(s->body_done);
		}
	}
	for (int i = 0; i < MAXS; i++)
		if (f.s[i].st)
			end(&f, &f.s[i]);
	CHECK(h2up_streams(f.c) == 0);
	srv_free(f.sv);
	h2up_free(f.c);
	return 0;
}
