/* SPDX-License-Identifier: MIT */
/* libFuzzer target for proto/h2: a client byte stream fed in pieces of
 * every size, interleaved with what an engine does to the streams the
 * callbacks report (take request bytes, feed HTTP/1.1 response bytes,
 * end streams well or badly, shut down), output drained throughout;
 * callback invariants checked, and everything freed (ASan sees leaks).
 * Every request the engine takes is parsed back with proto/h1: the head
 * must be one valid HTTP/1.1 head and the body framing must decode to its
 * end exactly when the stream says the request is done.
 *
 * With F_CLIENT the client stream bytes are instead operations of a real
 * nghttp2 client session (requests with and without bodies, resets,
 * resumed uploads) whose output is what h2conn gets, and h2conn's output
 * goes to that client: a response the client finds malformed (it resets
 * the stream with PROTOCOL_ERROR) or any frame it rejects is a failure.
 *
 * Input: flags (1 byte), client stream length (2 bytes, big endian), the
 * client stream, then a script of one-byte operations (some followed by
 * their bytes) run in turn; at the end the rest of the client stream is
 * fed and every stream still held gets a response and is ended.
 * tests/fuzz/gen_h2_corpus.py writes seeds in this shape. */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/h1.h"
#include "proto/h2.h"

#define CHECK(x)                   \
	do {                       \
		if (!(x))          \
			abort();   \
	} while (0)

#define MAXS 128

enum {
	F_PREFACE = 1 << 0, /* prepend the client preface */
	F_SMALL_RESP = 1 << 1,
	F_SMALL_WINDOW = 1 << 2,
	F_REFUSE = 1 << 3,   /* refuse every fourth stream */
	F_EAGER = 1 << 4,    /* answer inside on_request */
	F_FEW_STREAMS = 1 << 5,
	F_CLIENT = 1 << 6,   /* a real client session makes the client stream */
};

/* A request body the client session sends ('b' bytes). */
struct upload {
	size_t left;
	bool hold, deferred;
	int32_t sid;
};

struct client {
	nghttp2_session *s;
	const uint8_t *ops;  /* its operations */
	size_t nops, oi;
	uint8_t *pend;       /* bytes it sent that h2conn has not had yet */
	size_t pn, prd, pcap;
	struct upload up[64];
	int nup;
};

struct fz {
	struct h2conn *c;
	uint8_t flags;
	int32_t sid[MAXS]; /* streams the engine holds; 0: free slot */
	bool head_taken[MAXS];
	struct h1_body body[MAXS]; /* decoding what the engine took */
	int n;             /* slots in use */
	int32_t last_sid;
	unsigned nreq;
	struct client *cl;   /* F_CLIENT */
	bool reset_all;      /* streams were let go without an end */
	const uint8_t *raw;  /* otherwise the client stream as given */
	size_t rawlen, rawoff;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char canned[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

static int slot_of(struct fz *f, int32_t sid)
{
	for (int i = 0; i < MAXS; i++)
		if (f->sid[i] == sid && sid)
			return i;
	return -1;
}

static int32_t pick(struct fz *f, unsigned k)
{
	if (!f->n)
		return 0;
	k %= (unsigned)f->n;
	for (int i = 0; i < MAXS; i++)
		if (f->sid[i] && k-- == 0)
			return f->sid[i];
	return 0;
}

static void drop(struct fz *f, int32_t sid)
{
	int i = slot_of(f, sid);
	CHECK(i >= 0);
	f->sid[i] = 0;
	f->n--;
}

static uint64_t cb_request(void *arg, int32_t sid)
{
	struct fz *f = arg;
	CHECK(sid > 0 && (sid & 1) && sid > f->last_sid);
	f->last_sid = sid;
	f->nreq++;
	const char *p;
	size_t n = h2conn_req_peek(f->c, sid, &p);
	/* the head is there whole: "METHOD SP path SP HTTP/1.1 CRLF ... CRLF" */
	CHECK(n >= 16 && p && memmem(p, n, "\r\n\r\n", 4));
	CHECK(h2conn_req_synth(f->c, sid) <= 2);
	if ((f->flags & F_REFUSE) && f->nreq % 4 == 0)
		return 0;
	int i;
	for (i = 0; i < MAXS && f->sid[i]; i++)
		;
	if (i == MAXS)
		return 0;
	f->sid[i] = sid;
	f->head_taken[i] = false;
	f->n++;
	if (f->flags & F_EAGER) {
		ssize_t r = h2conn_resp_feed(f->c, sid, canned, sizeof(canned) - 1);
		CHECK(r == (ssize_t)sizeof(canned) - 1);
	}
	return (uint64_t)sid;
}

static void cb_req_data(void *arg, uint64_t user)
{
	struct fz *f = arg;
	CHECK(slot_of(f, (int32_t)user) >= 0);
}

static void cb_room(void *arg, uint64_t user)
{
	struct fz *f = arg;
	CHECK(slot_of(f, (int32_t)user) >= 0);
}

static void cb_reset(void *arg, uint64_t user, uint32_t code)
{
	struct fz *f = arg;
	(void)code;
	drop(f, (int32_t)user);
}

static const struct h2conn_cb cbs = {
	.on_request = cb_request,
	.on_req_data = cb_req_data,
	.on_resp_room = cb_room,
	.on_reset = cb_reset,
};

static void drain(struct fz *f, size_t cap)
{
	static uint8_t buf[1 << 16];
	if (cap > sizeof(buf))
		cap = sizeof(buf);
	for (int i = 0; i < 10000; i++) {
		ssize_t n = h2conn_output(f->c, buf, cap);
		CHECK(n <= (ssize_t)cap);
		if (n <= 0)
			return;
		if (f->cl) /* every frame h2conn sends is valid HTTP/2 */
			CHECK(nghttp2_session_mem_recv(f->cl->s, buf, (size_t)n) == n);
	}
}

static void input(struct fz *f, const uint8_t *p, size_t n)
{
	if (!n)
		return;
	ssize_t r = h2conn_input(f->c, p, n);
	CHECK(r < 0 || (size_t)r == n);
	CHECK(r >= 0 || !f->cl); /* a real client breaks nothing */
}

static struct h1_header hdrs[256];

/* The engine takes request bytes: parse them as HTTP/1.1. */
static void take(struct fz *f, int32_t sid, bool half)
{
	if (!sid)
		return;
	const char *p;
	size_t n = h2conn_req_peek(f->c, sid, &p);
	int i = slot_of(f, sid);
	CHECK(i >= 0);
	if (!n)
		return; /* (done, or the stream is gone: both say done) */
	size_t k = half ? (n + 1) / 2 : n, o = 0;
	if (!f->head_taken[i]) {
		struct h1_request rq;
		size_t eo = 0;
		ssize_t hl = h1_parse_request(p, n, 0, &rq, hdrs, 256, &eo);
		/* The engine answers a head HTTP/1 rejects (400, 431): fine
		 * for too many fields or a target with bytes HTTP/1 does not
		 * take; the fields and the framing must always parse. */
		const char *eol = memmem(p, n, "\r\n", 2);
		CHECK(hl > 0 || hl == RC_H1_TOO_MANY_HEADERS ||
		      (eol && eo < (size_t)(eol - p)));
		if (hl < 0) {
			h2conn_req_consume(f->c, sid, n);
			return;
		}
		const char *e = memmem(p, n, "\r\n\r\n", 4);
		CHECK(e && (size_t)(e + 4 - p) == (size_t)hl);
		CHECK(rq.version_minor == 1);
		h1_body_init(&f->body[i], rq.body, rq.content_length);
		f->head_taken[i] = true;
		o = (size_t)hl;
		if (k < o)
			k = o;
	}
	while (o < k) {
		const char *d;
		size_t dl;
		CHECK(!f->body[i].done); /* nothing after the end */
		ssize_t r = h1_body_parse(&f->body[i], p + o, k - o, &d, &dl);
		CHECK(r > 0);
		o += (size_t)r;
	}
	h2conn_req_consume(f->c, sid, k);
	if (h2conn_req_done(f->c, sid))
		CHECK(f->body[i].done);
}

static void respond(struct fz *f, int32_t sid, const uint8_t *p, size_t n)
{
	if (!sid)
		return;
	ssize_t r = h2conn_resp_feed(f->c, sid, (const char *)p, n);
	CHECK(r <= (ssize_t)n);
	if (r < 0 && r != -ENOENT) {
		h2conn_resp_end(f->c, sid, false);
		drop(f, sid);
	}
}

static void end(struct fz *f, int32_t sid, bool ok)
{
	if (!sid)
		return;
	h2conn_resp_end(f->c, sid, ok);
	drop(f, sid);
	/* the stream is the engine's no more: nothing it does there counts */
	CHECK(h2conn_resp_feed(f->c, sid, "x", 1) == -ENOENT);
}

/* ---- the client session (F_CLIENT) ---- */

static ssize_t up_read(nghttp2_session *s, int32_t sid, uint8_t *buf,
		       size_t length, uint32_t *flags, nghttp2_data_source *src,
		       void *ud)
{
	struct upload *u = src->ptr;
	(void)s;
	(void)sid;
	(void)ud;
	size_t n = u->left < length ? u->left : length;
	memset(buf, 'b', n);
	u->left -= n;
	if (!u->left) {
		if (u->hold) {
			if (!n) {
				u->deferred = true;
				return NGHTTP2_ERR_DEFERRED;
			}
		} else {
			*flags |= NGHTTP2_DATA_FLAG_EOF;
		}
	}
	return (ssize_t)n;
}

/* The client resets a stream only on purpose (CANCEL): a PROTOCOL_ERROR
 * reset or GOAWAY means h2conn sent something malformed. */
static int cl_frame_send(nghttp2_session *s, const nghttp2_frame *fr,
			 void *ud)
{
	(void)s;
	(void)ud;
	if (fr->hd.type == NGHTTP2_RST_STREAM)
		CHECK(fr->rst_stream.error_code == NGHTTP2_CANCEL);
	if (fr->hd.type == NGHTTP2_GOAWAY)
		CHECK(fr->goaway.error_code == NGHTTP2_NO_ERROR);
	return 0;
}

static int cl_invalid(nghttp2_session *s, const nghttp2_frame *fr, int err,
		      void *ud)
{
	(void)s;
	(void)fr;
	(void)err;
	(void)ud;
	abort();
}

static struct client *client_new(const uint8_t *ops, size_t n)
{
	struct client *cl = calloc(1, sizeof(*cl));
	nghttp2_session_callbacks *ncb;
	CHECK(cl && nghttp2_session_callbacks_new(&ncb) == 0);
	nghttp2_session_callbacks_set_on_frame_send_callback(ncb, cl_frame_send);
	nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(ncb, cl_invalid);
	CHECK(nghttp2_session_client_new(&cl->s, ncb, NULL) == 0);
	nghttp2_session_callbacks_del(ncb);
	CHECK(nghttp2_submit_settings(cl->s, NGHTTP2_FLAG_NONE, NULL, 0) == 0);
	cl->ops = ops;
	cl->nops = n;
	return cl;
}

static void client_free(struct client *cl)
{
	if (!cl)
		return;
	nghttp2_session_del(cl->s);
	free(cl->pend);
	free(cl);
}

#define NVS(n, v)                                                      \
	(nghttp2_nv)                                                   \
	{                                                              \
		(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), \
			NGHTTP2_NV_FLAG_NONE                            \
	}

/* Run one client operation. */
static void client_op(struct client *cl)
{
	static const char *const paths[] = {"/", "/a?b=c", "/%20x", "/\xc9",
					    "/a/../b", "/x;y", "//", "/?"};
	static const char *const methods[] = {"GET", "POST", "HEAD", "PUT",
					      "DELETE", "OPTIONS"};
	uint8_t op = cl->ops[cl->oi++];
	uint8_t arg = cl->oi < cl->nops ? cl->ops[cl->oi] : 0;
	switch (op & 3) {
	case 0:
	case 1: { /* a request */
		nghttp2_nv nv[8];
		size_t k = 0;
		const char *m = methods[(op >> 2) % 6];
		nv[k++] = NVS(":method", m);
		nv[k++] = NVS(":scheme", "https");
		nv[k++] = NVS(":authority", "h.test");
		nv[k++] = NVS(":path", paths[(op >> 5) & 7]);
		if (op & 0x80)
			nv[k++] = NVS("cookie", "a=1");
		if (op & 0x40)
			nv[k++] = NVS("cookie", "b=2");
		struct upload *u = NULL;
		char clen[24];
		if ((op & 1) && cl->nup < 64) {
			cl->oi++; /* its length byte */
			u = &cl->up[cl->nup++];
			u->left = (size_t)arg * 37;
			u->hold = arg & 1;
			if (arg & 2 && !u->hold) {
				snprintf(clen, sizeof(clen), "%zu", u->left);
				nv[k++] = NVS("content-length", clen);
			}
		}
		nghttp2_data_provider prd = {.source.ptr = u, .read_callback = up_read};
		int32_t sid = nghttp2_submit_request(cl->s, NULL, nv, k,
						     u ? &prd : NULL, NULL);
		if (u)
			u->sid = sid;
		break;
	}
	case 2: /* reset one of its streams */
		if (cl->nup) {
			struct upload *u = &cl->up[arg % cl->nup];
			cl->oi++;
			/* only once its HEADERS are out: nghttp2 1.52 would
			 * reset a stream still queued, which is idle to the
			 * server (a connection error, rightly) */
			nghttp2_stream *ns = u->sid > 0
				? nghttp2_session_find_stream(cl->s, u->sid) : NULL;
			if (ns && nghttp2_stream_get_state(ns) !=
					  NGHTTP2_STREAM_STATE_IDLE)
				nghttp2_submit_rst_stream(cl->s, NGHTTP2_FLAG_NONE,
							  u->sid, NGHTTP2_CANCEL);
		} else {
			nghttp2_submit_ping(cl->s, NGHTTP2_FLAG_NONE, NULL);
		}
		break;
	default: /* finish a held upload */
		for (int i = 0; i < cl->nup; i++) {
			struct upload *u = &cl->up[i];
			if (u->hold && u->sid > 0) {
				u->hold = false;
				u->left += arg;
				if (u->deferred) {
					u->deferred = false;
					nghttp2_session_resume_data(cl->s, u->sid);
				}
				break;
			}
		}
		break;
	}
}

/* Up to |want| client bytes for h2conn (|all|: everything the client has
 * and will say); returns how many are at *p. */
static size_t client_bytes(struct client *cl, size_t want, bool all,
			   const uint8_t **p)
{
	for (;;) {
		const uint8_t *d;
		ssize_t n;
		while ((n = nghttp2_session_mem_send(cl->s, &d)) > 0) {
			if (cl->pn + (size_t)n > cl->pcap) {
				size_t nc = cl->pcap ? cl->pcap * 2 : 4096;
				while (nc < cl->pn + (size_t)n)
					nc *= 2;
				cl->pend = realloc(cl->pend, nc);
				CHECK(cl->pend);
				cl->pcap = nc;
			}
			memcpy(cl->pend + cl->pn, d, (size_t)n);
			cl->pn += (size_t)n;
		}
		CHECK(n == 0);
		if (cl->pn - cl->prd >= want && !all)
			break;
		if (cl->oi >= cl->nops)
			break;
		client_op(cl);
	}
	size_t n = cl->pn - cl->prd;
	if (n > want)
		n = want;
	*p = cl->pend + cl->prd;
	cl->prd += n;
	if (cl->prd == cl->pn)
		cl->prd = cl->pn = 0; /* (the caller feeds before the next call) */
	return n;
}

/* Give h2conn |n| more client bytes (|all|: all there are). */
static void feed(struct fz *f, size_t n, bool all)
{
	if (!f->cl) {
		if (all || n > f->rawlen - f->rawoff)
			n = f->rawlen - f->rawoff;
		input(f, f->raw + f->rawoff, n);
		f->rawoff += n;
		return;
	}
	for (int i = 0; i < 1000; i++) {
		const uint8_t *p;
		size_t k = client_bytes(f->cl, all ? SIZE_MAX : n, all, &p);
		input(f, p, k);
		if (!all || !k)
			return;
		drain(f, 4096);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	struct fz f;
	memset(&f, 0, sizeof(f));
	f.flags = data[0];
	size_t clen = (size_t)data[1] << 8 | data[2];
	const uint8_t *cl = data + 3;
	if (clen > size - 3)
		clen = size - 3;
	const uint8_t *sc = cl + clen, *se = data + size;
	struct h2conn_opts o = {0};
	if (f.flags & F_SMALL_RESP)
		o.resp_buffer = 100;
	if (f.flags & F_SMALL_WINDOW)
		o.stream_window = 100;
	if (f.flags & F_FEW_STREAMS)
		o.max_concurrent_streams = 3;
	CHECK(h2conn_new(&f.c, &cbs, &f, &o) == 0);
	if (f.flags & F_CLIENT)
		f.cl = client_new(cl, clen);
	f.raw = cl;
	f.rawlen = clen;
	drain(&f, 1 << 16);
	if ((f.flags & F_PREFACE) && !f.cl)
		input(&f, (const uint8_t *)H2_PREFACE, H2_PREFACE_LEN);
	while (sc < se) {
		uint8_t op = *sc++;
		unsigned arg = op >> 3;
		size_t n;
		switch (op & 7) {
		case 0: /* a small piece of the client stream */
			feed(&f, arg + 1, arg == 31);
			break;
		case 1: /* response bytes for a stream */
			n = sc < se ? *sc++ : 0;
			if (n > (size_t)(se - sc))
				n = (size_t)(se - sc);
			respond(&f, pick(&f, arg), sc, n);
			sc += n;
			break;
		case 2: /* the engine is done with a stream */
			end(&f, pick(&f, arg & 15), !(arg & 16));
			break;
		case 3: /* the engine takes request bytes */
			take(&f, pick(&f, arg & 15), arg & 16);
			break;
		case 4: /* the canned response for a stream */
			respond(&f, pick(&f, arg), (const uint8_t *)canned,
				sizeof(canned) - 1);
			break;
		case 5:
			if (arg == 0)
				h2conn_shutdown(f.c);
			else if (arg == 1) {
				h2conn_reset_all(f.c);
				f.reset_all = true;
			}
			else
				drain(&f, (size_t)arg * 16);
			break;
		default: /* a bigger piece of the client stream */
			feed(&f, sc < se ? (size_t)*sc++ * 8 + 1 : 1, false);
			break;
		}
		drain(&f, 4096);
	}
	/* the rest of the client stream; every stream held gets an answer
	 * (a client session may send more requests as streams finish) */
	for (int round = 0; round < 64; round++) {
		feed(&f, 0, true);
		drain(&f, 1 << 16);
		if (!f.n)
			break;
		for (int i = 0; i < MAXS; i++) {
			int32_t sid = f.sid[i];
			if (!sid)
				continue;
			take(&f, sid, false);
			ssize_t r = h2conn_resp_feed(f.c, sid, canned,
						     sizeof(canned) - 1);
			CHECK(r <= (ssize_t)sizeof(canned) - 1);
			if (f.sid[i])
				end(&f, sid, r >= 0);
			drain(&f, 1 << 16);
		}
	}
	CHECK(f.n == 0);
	/* every stream ended by the engine or the client is closed: none
	 * waits for a request nobody reads, or on a window nobody opens */
	if (f.cl && !f.reset_all)
		CHECK(h2conn_open_streams(f.c) == 0);
	client_free(f.cl);
	(void)h2conn_alive(f.c);
	(void)h2conn_open_streams(f.c);
	h2conn_free(f.c);
	return 0;
}
