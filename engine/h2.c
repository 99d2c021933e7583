/* SPDX-License-Identifier: MIT */
/* HTTP/2 client connections. proto/h2 speaks the protocol; here each
 * stream becomes a session of its own (a "stream session") whose client
 * side is virtual: sess_arm_recv() on it takes the stream's request bytes
 * (HTTP/1.1, made by proto/h2) and sess_send() gives response bytes to
 * the stream. Everything else - routing, upstream connections and their
 * pool, timeouts, capture - is the HTTP/1 session machine, unchanged.
 *
 * Work for a stream session that an event of another session causes
 * (request bytes arrived, the stream's buffer drained, the client reset
 * the stream, a virtual send completed) is queued on shard->vready and run
 * after the completion batch, never from inside the caller: the session
 * machine expects sends and receives to complete later, as real ones do. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/shard.h"

#define H2_OUT_SIZE (64u * 1024)
#define H2_DELIVER_MAX (32u * 1024) /* request bytes handed over at once */

enum {
	VD_START = 1u << 0, /* run the stream's first request */
	VD_RECV = 1u << 1,  /* request bytes for an armed virtual recv */
	VD_FEED = 1u << 2,  /* retry the pending virtual send */
	VD_SENT = 1u << 3,  /* the virtual send is complete */
	VD_RESET = 1u << 4, /* the client reset the stream */
	VD_FAIL = 1u << 5,  /* the stream is gone or the response unusable */
};

struct h2_link {
	struct shard *s;
	uint32_t idx, gen; /* the connection's session */
};

static uint64_t handle_of(struct shard *s, struct sess *x)
{
	return (1ull << 63) | ((uint64_t)x->gen << 32) | sess_idx(s, x);
}

static struct sess *sess_of_handle(struct shard *s, uint64_t h)
{
	uint32_t idx = (uint32_t)h, gen = (uint32_t)(h >> 32) & 0xffffff;
	if (idx >= s->nsess || s->sess[idx].gen != gen ||
	    (s->sess[idx].flags & SF_CLOSING))
		return NULL;
	return &s->sess[idx];
}

static struct sess *parent_of(struct shard *s, struct sess *x)
{
	if (x->h2_parent >= s->nsess)
		return NULL;
	struct sess *p = &s->sess[x->h2_parent];
	if (p->gen != x->h2_parent_gen || !p->h2 || (p->flags & SF_CLOSING))
		return NULL;
	return p;
}

static void due(struct shard *s, struct sess *x, uint8_t what)
{
	if (!x->v_due) {
		x->v_next = s->vready;
		s->vready = x;
	}
	x->v_due |= what;
}

void h2_unready(struct shard *s, struct sess *x)
{
	struct sess **pp = &s->vready;
	while (*pp && *pp != x)
		pp = &(*pp)->v_next;
	if (*pp)
		*pp = x->v_next;
	x->v_due = 0;
	x->v_next = NULL;
}

/* ---- the connection ---- */

/* Send what proto/h2 has for the client, one send at a time; close the
 * connection when it has nothing left to do. */
static void flush(struct shard *s, struct sess *x)
{
	if (x->c.send_armed || (x->flags & SF_CLOSING))
		return;
	ssize_t n = h2conn_output(x->h2, (uint8_t *)x->h2_out, H2_OUT_SIZE);
	if (n > 0) {
		sess_send(s, x, false, x->h2_out, (uint32_t)n);
		return;
	}
	if (n < 0 || !h2conn_alive(x->h2) ||
	    (s->stopping && !h2conn_open_streams(x->h2))) {
		sess_close(s, x);
		return;
	}
	if (!h2conn_open_streams(x->h2) && !x->deadline)
		x->deadline = s->now + s->cfg->idle_timeout_ms;
}

static uint64_t cb_on_request(void *arg, int32_t sid)
{
	struct h2_link *l = arg;
	struct shard *s = l->s;
	struct sess *p = &s->sess[l->idx];
	struct sess *x = shard_sess_new(s);
	if (!x)
		return 0; /* the slab is full: the stream is refused */
	x->listener = p->listener;
	x->caddr = p->caddr;
	x->c_peer = p->c_peer;
	x->c_local = p->c_local;
	x->c_ts_start = p->c_ts_start;
	x->orig_dst = p->orig_dst;
	x->fixed_target = p->fixed_target;
	x->tun = p->tun;
	x->sniffed = true;
	memcpy(x->tunnel_host, p->tunnel_host, sizeof(x->tunnel_host));
	x->tunnel_port = p->tunnel_port;
	memcpy(x->sni, p->sni, sizeof(x->sni));
	if (p->c.ssl && p->c.hs_done) {
		tls_describe(&p->c, &x->h2_ctls, x->tls_c_desc,
			     sizeof(x->tls_c_desc));
		x->h2_ctls.ts_setup = p->c_tls_ts;
	}
	x->h2_parent = l->idx;
	x->h2_parent_gen = l->gen;
	x->h2_sid = sid;
	x->deadline = 0;
	p->deadline = 0; /* busy: the streams have timers of their own */
	due(s, x, VD_START);
	return handle_of(s, x);
}

static void cb_on_req_data(void *arg, uint64_t user)
{
	struct h2_link *l = arg;
	struct sess *x = sess_of_handle(l->s, user);
	if (x && x->c.recv_armed)
		due(l->s, x, VD_RECV);
}

static void cb_on_resp_room(void *arg, uint64_t user)
{
	struct h2_link *l = arg;
	struct sess *x = sess_of_handle(l->s, user);
	if (x && x->c.send_armed)
		due(l->s, x, VD_FEED);
}

static void cb_on_reset(void *arg, uint64_t user, uint32_t code)
{
	struct h2_link *l = arg;
	struct sess *x = sess_of_handle(l->s, user);
	if (!x)
		return;
	x->h2_reset_code = code;
	x->h2_sid = -x->h2_sid; /* the stream is gone: no more calls on it */
	due(l->s, x, VD_RESET);
}

static const struct h2conn_cb callbacks = {
	.on_request = cb_on_request,
	.on_req_data = cb_on_req_data,
	.on_resp_room = cb_on_resp_room,
	.on_reset = cb_on_reset,
};

void h2_conn_start(struct shard *s, struct sess *x)
{
	struct h2conn_opts o = {0};
	x->h2_link = malloc(sizeof(*x->h2_link));
	x->h2_out = malloc(H2_OUT_SIZE);
	if (!x->h2_link || !x->h2_out ||
	    h2conn_new(&x->h2, &callbacks, x->h2_link, &o) < 0) {
		sess_close(s, x);
		return;
	}
	*x->h2_link = (struct h2_link){s, sess_idx(s, x), x->gen};
	x->rq = RQ_H2;
	x->rs = RS_NONE;
	x->deadline = s->now + s->cfg->idle_timeout_ms;
	h2_conn_process(s, x);
}

void h2_conn_process(struct shard *s, struct sess *x)
{
	if (x->flags & SF_CLOSING)
		return;
	uint32_t n = x->c.in.wr - x->c.in.rd;
	if (n) {
		ssize_t r = h2conn_input(x->h2, (uint8_t *)x->c.in.p + x->c.in.rd, n);
		x->c.in.rd = x->c.in.wr = 0;
		if (r < 0) {
			/* a protocol error: GOAWAY goes out, then we close */
			if (s->cfg->verbosity >= 1)
				fprintf(stderr, "ringcap: %s:%u: HTTP/2: %s\n",
					x->c_peer.addr, x->c_peer.port,
					r == -ENOMEM ? "out of memory"
						     : "protocol error");
			h2conn_reset_all(x->h2);
			x->c.eof = true;
		}
		if (!h2conn_open_streams(x->h2))
			x->deadline = s->now + s->cfg->idle_timeout_ms;
	}
	if (x->c.eof) {
		/* the client is gone (or broke the protocol): its streams end */
		flush(s, x);
		if (!(x->flags & SF_CLOSING) && !x->c.send_armed)
			sess_close(s, x);
		return;
	}
	flush(s, x);
	if (!(x->flags & SF_CLOSING))
		sess_arm_recv(s, x, false);
}

void h2_conn_closing(struct shard *s, struct sess *x)
{
	(void)s;
	if (x->h2)
		h2conn_reset_all(x->h2); /* each stream session aborts, queued */
}

void h2_conn_timeout(struct shard *s, struct sess *x)
{
	if (!h2conn_open_streams(x->h2)) {
		h2conn_shutdown(x->h2); /* idle: say goodbye, then close */
		x->c.eof = true;
		h2_conn_process(s, x);
	}
}

void h2_conn_shutdown(struct shard *s, struct sess *x)
{
	h2conn_shutdown(x->h2);
	flush(s, x);
}

/* ---- a stream session's virtual client side ---- */

void h2_stream_arm_recv(struct shard *s, struct sess *x)
{
	if (x->c.recv_armed || (x->flags & SF_CLOSING))
		return;
	x->c.recv_armed = true;
	struct sess *p = parent_of(s, x);
	const char *d;
	if (p && h2conn_req_peek(p->h2, x->h2_sid, &d))
		due(s, x, VD_RECV);
}

/* Give the pending response bytes to the stream, as many as it takes. */
static void feed(struct shard *s, struct sess *x)
{
	struct sess *p = parent_of(s, x);
	ssize_t r = p && x->h2_sid > 0
		? h2conn_resp_feed(p->h2, x->h2_sid, x->c.sendp, x->c.sendlen)
		: -ENOENT;
	if (r < 0) {
		x->err = (int)r;
		due(s, x, VD_FAIL);
		if (p)
			flush(s, p);
		return;
	}
	x->c.sendp += r;
	x->c.sendlen -= (uint32_t)r;
	if (!x->c.sendlen)
		due(s, x, VD_SENT);
	flush(s, p);
}

void h2_stream_send(struct shard *s, struct sess *x, const char *p,
		    uint32_t len)
{
	x->c.send_armed = true;
	x->c.sendp = p;
	x->c.sendlen = len;
	atomic_fetch_add_explicit(&s->st.bytes_out, len, memory_order_relaxed);
	feed(s, x);
}

void h2_stream_closing(struct shard *s, struct sess *x)
{
	struct sess *p = parent_of(s, x);
	if (!p || x->h2_sid <= 0)
		return;
	h2conn_resp_end(p->h2, x->h2_sid, x->rs == RS_DONE);
	x->h2_sid = -x->h2_sid;
	flush(s, p);
}

static void deliver(struct shard *s, struct sess *x)
{
	struct sess *p = parent_of(s, x);
	const char *d;
	size_t n = p && x->h2_sid > 0 ? h2conn_req_peek(p->h2, x->h2_sid, &d) : 0;
	if (!n || !x->c.recv_armed)
		return;
	if (n > H2_DELIVER_MAX)
		n = H2_DELIVER_MAX;
	x->c.recv_armed = false;
	atomic_fetch_add_explicit(&s->st.bytes_in, n, memory_order_relaxed);
	int32_t sid = x->h2_sid;
	/* session_on_recv copies the bytes before anything can touch them */
	session_on_recv(s, x, false, d, (int)n, -1);
	if (p->flags & SF_CLOSING)
		return;
	h2conn_req_consume(p->h2, sid, n); /* WINDOW_UPDATE as it empties */
	flush(s, p);
}

void h2_run_ready(struct shard *s)
{
	/* Work queued while this runs waits for the next round (the shard
	 * loop does not block while vready is non-empty). */
	struct sess *list = s->vready;
	s->vready = NULL;
	while (list) {
		struct sess *x = list;
		list = x->v_next;
		uint8_t what = x->v_due;
		x->v_due = 0;
		x->v_next = NULL;
		if (x->flags & (SF_CLOSING | SF_PARKED))
			continue;
		uint32_t gen = x->gen;
		if (what & VD_RESET) {
			char d[64];
			snprintf(d, sizeof(d), "HTTP/2 stream reset by the client "
				 "(error code %u)", x->h2_reset_code);
			session_stream_abort(s, x, RC_ENG_CLIENT_CLOSED, d);
			continue;
		}
		if (what & VD_FAIL) {
			session_stream_abort(s, x,
					     x->err == -ENOENT ? RC_ENG_CLIENT_CLOSED
							       : RC_ENG_UPSTREAM_BAD_RESPONSE,
					     "HTTP/2 stream could not take the response");
			continue;
		}
		if (what & VD_START)
			session_stream_start(s, x);
		if (x->gen != gen || (x->flags & SF_CLOSING))
			continue;
		if (what & VD_FEED)
			feed(s, x);
		if (what & VD_SENT && !(x->v_due & VD_FAIL)) {
			x->c.send_armed = false;
			session_on_sent(s, x, false);
		}
		if (x->gen != gen || (x->flags & SF_CLOSING))
			continue;
		if (what & VD_RECV)
			deliver(s, x);
	}
}
