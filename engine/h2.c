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
	/* the virtual upstream side (HTTP/2 to the server) */
	VD_URECV = 1u << 6, /* response bytes (or the reset) for an armed recv */
	VD_UFEED = 1u << 7, /* retry the pending request send */
	VD_USENT = 1u << 8, /* the request send is complete */
	VD_UFAIL = 1u << 9, /* the request could not be sent */
	/* on a connection's session: send what its streams produced, once
	 * per round rather than once per stream event */
	VD_FLUSH = 1u << 10,
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

static void due(struct shard *s, struct sess *x, uint16_t what)
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

static void flush_later(struct shard *s, struct sess *p)
{
	if (p)
		due(s, p, VD_FLUSH);
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
	/* upstream mode: a stream's own connection is a CONNECT of ours */
	memcpy(x->proxy_connect, p->proxy_connect, p->proxy_connect_len);
	x->proxy_connect_len = p->proxy_connect_len;
	if (p->c.ssl && p->c.hs_done) {
		tls_describe(&p->c, &x->h2_ctls, x->tls_c_desc,
			     sizeof(x->tls_c_desc));
		x->h2_ctls.ts_setup = p->c_tls_ts;
	}
	/* its request bytes come 32 KiB at most, only when it asks and its
	 * buffer is not being sent from: it may start small and grow */
	x->c.in.small = true;
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

/* ---- HTTP/2 to the server: the connection's upstream side ---- */

#define H2U_OUT_SIZE (64u * 1024)

static void up_flush(struct shard *s, struct sess *x)
{
	if (!x->h2u || x->h2u_state != H2U_READY || x->u.send_armed ||
	    x->u.fd < 0 || (x->flags & SF_CLOSING))
		return;
	ssize_t n = h2up_output(x->h2u, (uint8_t *)x->h2u_out, H2U_OUT_SIZE);
	if (n > 0)
		sess_send(s, x, true, x->h2u_out, (uint32_t)n);
	else if (n < 0)
		h2_up_dead(s, x);
}

static void cb_up_resp_data(void *arg, uint64_t user)
{
	struct h2_link *l = arg;
	struct sess *x = sess_of_handle(l->s, user);
	if (x && x->u.recv_armed)
		due(l->s, x, VD_URECV);
}

static void cb_up_req_room(void *arg, uint64_t user)
{
	struct h2_link *l = arg;
	struct sess *x = sess_of_handle(l->s, user);
	if (x && x->u.send_armed)
		due(l->s, x, VD_UFEED);
}

static void cb_up_reset(void *arg, uint64_t user, uint32_t code)
{
	struct h2_link *l = arg;
	struct sess *x = sess_of_handle(l->s, user);
	if (!x)
		return;
	x->h2u_reset = code | (1u << 31);
	if (x->u.recv_armed)
		due(l->s, x, VD_URECV);
	if (x->u.send_armed)
		due(l->s, x, VD_UFAIL);
}

static const struct h2up_cb up_callbacks = {
	.on_resp_data = cb_up_resp_data,
	.on_req_room = cb_up_req_room,
	.on_reset = cb_up_reset,
};

/* Streams of |x| that wait for its upstream go on, one way or the other. */
static void wake_waiters(struct shard *s, struct sess *x)
{
	uint32_t idx = sess_idx(s, x);
	for (struct sess *c = s->active, *n; c; c = n) {
		n = c->next;
		if (c->h2u_waiting && c->h2_parent == idx &&
		    c->h2_parent_gen == x->gen && !(c->flags & SF_CLOSING)) {
			c->h2u_waiting = false;
			session_upstream_resume(s, c);
		}
	}
}

void h2_up_ready(struct shard *s, struct sess *x)
{
	struct h2up_opts o = {0};
	x->h2u_out = malloc(H2U_OUT_SIZE);
	if (!x->h2u_out || h2up_new(&x->h2u, &up_callbacks, x->h2_link, &o) < 0) {
		h2_up_off(s, x);
		return;
	}
	x->h2u_state = H2U_READY;
	up_flush(s, x);
	sess_arm_recv(s, x, true);
	wake_waiters(s, x);
}

void h2_up_off(struct shard *s, struct sess *x)
{
	x->h2u_state = H2U_OFF;
	wake_waiters(s, x);
}

void h2_up_dead(struct shard *s, struct sess *x)
{
	if (x->h2u_state != H2U_READY)
		return;
	x->h2u_state = H2U_OFF; /* new streams get connections of their own */
	if (x->h2u)
		h2up_reset_all(x->h2u, 2 /* INTERNAL_ERROR */);
	if (x->u.fd >= 0)
		shutdown(x->u.fd, SHUT_RDWR); /* closed with the session */
}

void h2_up_process(struct shard *s, struct sess *x)
{
	if ((x->flags & SF_CLOSING) || x->h2u_state != H2U_READY)
		return;
	uint32_t n = x->u.in.wr - x->u.in.rd;
	if (n) {
		ssize_t r = h2up_input(x->h2u, (uint8_t *)x->u.in.p + x->u.in.rd, n);
		x->u.in.rd = x->u.in.wr = 0;
		if (r < 0) {
			if (s->cfg->verbosity >= 1)
				fprintf(stderr, "ringcap: %s:%u: upstream HTTP/2: "
					"protocol error\n", x->up_host, x->up_port);
			up_flush(s, x); /* the GOAWAY, if it can still go */
			h2_up_dead(s, x);
			return;
		}
	}
	if (x->u.eof) {
		h2_up_dead(s, x);
		return;
	}
	up_flush(s, x);
	sess_arm_recv(s, x, true);
}

int h2_stream_upstream(struct shard *s, struct sess *x, const char *host,
		       uint16_t port)
{
	struct sess *p = parent_of(s, x);
	if (!p || !s->cfg->http2 || !x->up_tls)
		return 0;
	if (strcmp(p->up_host, host) != 0 || p->up_port != port)
		return 0; /* not where the connection's upstream goes */
	switch (p->h2u_state) {
	case H2U_PENDING:
		if (s->now - p->h2u_since > s->cfg->connect_timeout_ms)
			return 0;
		x->h2u_waiting = true;
		return 2;
	case H2U_READY:
		if (!h2up_usable(p->h2u))
			return 0;
		x->h2u_st = h2up_open(p->h2u, handle_of(s, x));
		if (!x->h2u_st)
			return 0;
		x->u_virtual = true;
		x->h2u_reset = 0;
		x->u_peer = p->u_peer;
		x->u_local = p->u_local;
		if (p->u.ssl && p->u.hs_done) {
			tls_describe(&p->u, &x->h2_stls, x->tls_u_desc,
				     sizeof(x->tls_u_desc));
			x->h2_stls.ts_setup = p->u_tls_ts;
		}
		memcpy(x->up_cert_sha, p->up_cert_sha, sizeof(x->up_cert_sha));
		memcpy(x->up_cert_names, p->up_cert_names, sizeof(x->up_cert_names));
		memcpy(x->up_verify_msg, p->up_verify_msg, sizeof(x->up_verify_msg));
		return 1;
	default:
		return 0;
	}
}

static void ufeed(struct shard *s, struct sess *x)
{
	if (!x->u.send_armed || !x->u.sendlen)
		return;
	struct sess *p = parent_of(s, x);
	ssize_t r = p && p->h2u && x->h2u_st && !x->h2u_reset
		? h2up_req_feed(p->h2u, x->h2u_st, "https", x->u.sendp,
				x->u.sendlen)
		: -EPIPE;
	if (r < 0) {
		due(s, x, VD_UFAIL);
		return;
	}
	x->u.sendp += r;
	x->u.sendlen -= (uint32_t)r;
	if (!x->u.sendlen)
		due(s, x, VD_USENT);
	flush_later(s, p);
}

void h2_stream_usend(struct shard *s, struct sess *x, const char *p,
		     uint32_t len)
{
	x->u.send_armed = true;
	x->u.sendp = p;
	x->u.sendlen = len;
	if (!len)
		due(s, x, VD_USENT);
	ufeed(s, x);
}

void h2_stream_uarm_recv(struct shard *s, struct sess *x)
{
	if (x->u.recv_armed || (x->flags & SF_CLOSING))
		return;
	x->u.recv_armed = true;
	struct sess *p = parent_of(s, x);
	const char *d;
	if (x->h2u_reset || !p || !x->h2u_st ||
	    h2up_resp_peek(p->h2u, x->h2u_st, &d))
		due(s, x, VD_URECV);
}

static void udeliver(struct shard *s, struct sess *x)
{
	struct sess *p = parent_of(s, x);
	const char *d = NULL;
	size_t n = p && x->h2u_st ? h2up_resp_peek(p->h2u, x->h2u_st, &d) : 0;
	if (!x->u.recv_armed)
		return;
	if (!n) {
		if (x->h2u_reset || !p || !x->h2u_st) {
			/* the server reset the stream (or the connection
			 * broke): the upstream side ends here */
			x->u.recv_armed = false;
			session_on_recv(s, x, true, NULL, -ECONNRESET, -1);
		}
		return;
	}
	if (n > H2_DELIVER_MAX)
		n = H2_DELIVER_MAX;
	x->u.recv_armed = false;
	struct h2up_stream *st = x->h2u_st;
	session_on_recv(s, x, true, d, (int)n, -1);
	if (p->flags & SF_CLOSING)
		return;
	if (x->h2u_st == st) /* still ours (not ended inside the call) */
		h2up_resp_consume(p->h2u, st, n);
	flush_later(s, p); /* WINDOW_UPDATE */
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
	/* A feed due from before the send completed finds nothing left:
	 * it must not complete the next send too. */
	if (!x->c.send_armed || !x->c.sendlen)
		return;
	struct sess *p = parent_of(s, x);
	ssize_t r = p && x->h2_sid > 0
		? h2conn_resp_feed(p->h2, x->h2_sid, x->c.sendp, x->c.sendlen)
		: -ENOENT;
	if (r < 0) {
		x->err = (int)r;
		due(s, x, VD_FAIL);
		if (p)
			flush_later(s, p);
		return;
	}
	x->c.sendp += r;
	x->c.sendlen -= (uint32_t)r;
	if (!x->c.sendlen)
		due(s, x, VD_SENT);
	flush_later(s, p);
}

void h2_stream_send(struct shard *s, struct sess *x, const char *p,
		    uint32_t len)
{
	x->c.send_armed = true;
	x->c.sendp = p;
	x->c.sendlen = len;
	atomic_fetch_add_explicit(&s->st.bytes_out, len, memory_order_relaxed);
	if (!len)
		due(s, x, VD_SENT);
	feed(s, x);
}

void h2_stream_closing(struct shard *s, struct sess *x)
{
	struct sess *p = parent_of(s, x);
	if (p && x->h2u_st && p->h2u) {
		h2up_stream_end(p->h2u, x->h2u_st);
		flush_later(s, p);
	}
	x->h2u_st = NULL;
	if (!p || x->h2_sid <= 0)
		return;
	/* whole: the server's response, or our own (an error answer) */
	h2conn_resp_end(p->h2, x->h2_sid, x->rs == RS_DONE ||
					      (x->flags & SF_OWN_REPLY));
	x->h2_sid = -x->h2_sid;
	flush_later(s, p);
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
	flush_later(s, p);
}

static void run_round(struct shard *s)
{
	struct sess *list = s->vready;
	s->vready = NULL;
	while (list) {
		struct sess *x = list;
		list = x->v_next;
		uint16_t what = x->v_due;
		x->v_due = 0;
		x->v_next = NULL;
		if (x->flags & (SF_CLOSING | SF_PARKED))
			continue;
		if (what & VD_FLUSH) { /* a connection: both its sides */
			if (x->h2)
				flush(s, x);
			if (x->h2u)
				up_flush(s, x);
			continue;
		}
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
		if ((what & VD_SENT) && !(x->v_due & VD_FAIL) &&
		    x->c.send_armed && !x->c.sendlen) {
			x->c.send_armed = false;
			session_on_sent(s, x, false);
		}
		if (x->gen != gen || (x->flags & SF_CLOSING))
			continue;
		if (what & VD_RECV)
			deliver(s, x);
		if (x->gen != gen || (x->flags & SF_CLOSING))
			continue;
		if (what & VD_UFAIL) {
			x->u.send_armed = false;
			session_on_send_error(s, x, true, -EPIPE);
			continue;
		}
		if (what & VD_UFEED)
			ufeed(s, x);
		if ((what & VD_USENT) && !(x->v_due & VD_UFAIL) &&
		    x->u.send_armed && !x->u.sendlen) {
			x->u.send_armed = false;
			session_on_sent(s, x, true);
		}
		if (x->gen != gen || (x->flags & SF_CLOSING))
			continue;
		if (what & VD_URECV)
			udeliver(s, x);
	}
}

void h2_run_ready(struct shard *s)
{
	/* Work queued by a round runs in the next one; connections flush
	 * after their streams, so one send carries many frames. Bounded:
	 * what is left waits for the next loop (which does not block while
	 * vready is non-empty). */
	for (int i = 0; i < 16 && s->vready; i++)
		run_round(s);
}
