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
 * Input: flags (1 byte), client stream length (2 bytes, big endian), the
 * client stream, then a script of one-byte operations (some followed by
 * their bytes) run in turn; at the end the rest of the client stream is
 * fed and every stream still held gets a response and is ended.
 * tests/fuzz/gen_h2_corpus.py writes seeds in this shape. */
#include <errno.h>
#include <stdint.h>
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
	bool in_cb;
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
	}
}

static void input(struct fz *f, const uint8_t *p, size_t n)
{
	if (!n)
		return;
	ssize_t r = h2conn_input(f->c, p, n);
	CHECK(r < 0 || (size_t)r == n);
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
		ssize_t hl = h1_parse_request(p, n, 0, &rq, hdrs, 256, NULL);
		CHECK(hl > 0 || hl == RC_H1_TOO_MANY_HEADERS);
		if (hl < 0) {
			h2conn_req_consume(f->c, sid, n);
			return; /* the engine would answer 431 */
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
	drain(&f, 1 << 16);
	if (f.flags & F_PREFACE)
		input(&f, (const uint8_t *)H2_PREFACE, H2_PREFACE_LEN);
	size_t co = 0; /* client bytes fed */
	while (sc < se) {
		uint8_t op = *sc++;
		unsigned arg = op >> 3;
		size_t n;
		switch (op & 7) {
		case 0: /* a small piece of the client stream */
			n = arg == 31 ? clen - co : arg + 1;
			if (n > clen - co)
				n = clen - co;
			input(&f, cl + co, n);
			co += n;
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
			else if (arg == 1)
				h2conn_reset_all(f.c);
			else
				drain(&f, (size_t)arg * 16);
			break;
		default: /* a bigger piece of the client stream */
			n = sc < se ? (size_t)*sc++ * 8 + 1 : 1;
			if (n > clen - co)
				n = clen - co;
			input(&f, cl + co, n);
			co += n;
			break;
		}
		drain(&f, 4096);
	}
	input(&f, cl + co, clen - co);
	drain(&f, 1 << 16);
	for (int i = 0; i < MAXS; i++) {
		int32_t sid = f.sid[i];
		if (!sid)
			continue;
		take(&f, sid, false);
		ssize_t r = h2conn_resp_feed(f.c, sid, canned, sizeof(canned) - 1);
		CHECK(r <= (ssize_t)sizeof(canned) - 1);
		if (f.sid[i])
			end(&f, sid, r >= 0);
		drain(&f, 1 << 16);
	}
	CHECK(f.n == 0);
	(void)h2conn_alive(f.c);
	(void)h2conn_open_streams(f.c);
	h2conn_free(f.c);
	return 0;
}
