/* SPDX-License-Identifier: MIT */
/* The HTTP/1 session: one client connection, its upstream connection, and
 * the flow in progress. Two pumps run side by side (request: client to
 * upstream, response: upstream to client); bytes are forwarded as they
 * came, the proto/h1 decoders say where messages end and what to capture. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common/rc_time.h"
#include "crypto/ca.h"
#include "crypto/leaf.h"
#include "engine/shard.h"
#include "proto/dns.h"
#include "proto/socks5.h"
#include "proto/tls_hello.h"

enum { SW_NONE, SW_FWD, SW_OWN };

static const char connect_ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";

const char *rq_state_str(enum rq_state st)
{
	static const char *const n[RQ_STATE_COUNT] = {
		"idle", "head", "upstream", "body", "done", "tunnel",
		"sniff", "tls-setup", "socks", "dns", "h2"};
	return st < RQ_STATE_COUNT ? n[st] : "?";
}

const char *rs_state_str(enum rs_state st)
{
	static const char *const n[RS_STATE_COUNT] = {"none", "head", "body",
						      "done", "tunnel"};
	return st < RS_STATE_COUNT ? n[st] : "?";
}

const char *tun_kind_str(enum tun_kind k)
{
	static const char *const n[TUN_KIND_COUNT] = {
		"none", "connect", "tcp", "tls", "transparent", "socks5"};
	return k < TUN_KIND_COUNT ? n[k] : "?";
}

static const struct eng_mode *sess_mode(struct shard *s, struct sess *x)
{
	return s->listeners[x->listener].mode;
}

static bool m_regular(struct shard *s, struct sess *x)
{
	return sess_mode(s, x)->kind == FLOW_MODE_REGULAR;
}

static void client_process(struct shard *s, struct sess *x);
static void upstream_process(struct shard *s, struct sess *x);
static void flow_done(struct shard *s, struct sess *x);
static void upstream_ready(struct shard *s, struct sess *x);
static void sniff_client(struct shard *s, struct sess *x);
static void become_h2(struct shard *s, struct sess *x);
static void start_tunnel(struct shard *s, struct sess *x);
static bool side_alpn_is_h2(const struct side *sd);
static bool maybe_h2c(struct shard *s, struct sess *x);
static void tunnel_established(struct shard *s, struct sess *x);
static void socks_reply(struct shard *s, struct sess *x, uint8_t rep);
static void socks_process(struct shard *s, struct sess *x);
static void dns_tcp_process(struct shard *s, struct sess *x);
static void abort_flow(struct shard *s, struct sess *x, int code,
		       enum flow_term term);
static int tls_upstream_start(struct shard *s, struct sess *x,
			      const char *host);

/* ---- small helpers ---- */

static uint32_t rbuf_len(const struct rbuf *b) { return b->wr - b->rd; }

/* Append n bytes; grows up to |limit| bytes of unprocessed data. */
static int rbuf_append(struct rbuf *b, const char *data, uint32_t n,
		       uint32_t limit)
{
	if (b->rd == b->wr)
		b->rd = b->wr = 0;
	if (b->cap - b->wr < n && b->rd) {
		memmove(b->p, b->p + b->rd, b->wr - b->rd);
		b->wr -= b->rd;
		b->rd = 0;
	}
	if (b->cap - b->wr < n) {
		uint32_t need = b->wr + n;
		if (need > limit)
			return -E2BIG;
		uint32_t cap = b->cap ? b->cap : b->small ? 4096 : SHARD_BUF_SIZE;
		while (cap < need)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->wr, data, n);
	b->wr += n;
	return 0;
}

/* Give an idle, empty buffer's memory back (keep-alive connections). */
static void rbuf_trim(struct rbuf *b)
{
	if (b->rd == b->wr && b->p) {
		free(b->p);
		b->p = NULL;
		b->cap = b->rd = b->wr = 0;
	}
}

/* "name[:port]" or "[v6]:port" (a Host field): the host, without
 * brackets, in |h| and |hl|; the port, if any, in |port| unless NULL. */
static void split_host_port(const char **h, size_t *hl, uint16_t *port)
{
	const char *colon = memrchr(*h, ':', *hl);
	const char *rb = memrchr(*h, ']', *hl);
	if (colon && (!rb || colon > rb)) {
		if (port)
			*port = (uint16_t)strtoul(colon + 1, NULL, 10);
		*hl = (size_t)(colon - *h);
	}
	if (*hl >= 2 && (*h)[0] == '[' && (*h)[*hl - 1] == ']') {
		(*h)++;
		*hl -= 2;
	}
}

static void endpoint_from(struct flow_endpoint *e,
			  const struct sockaddr_storage *ss)
{
	const void *a;
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;
		a = &s6->sin6_addr;
		e->port = ntohs(s6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], e->addr,
				  sizeof(e->addr));
			return;
		}
	} else if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;
		a = &s4->sin_addr;
		e->port = ntohs(s4->sin_port);
	} else {
		e->addr[0] = 0;
		return;
	}
	inet_ntop(ss->ss_family, a, e->addr, sizeof(e->addr));
}

static void local_endpoint(struct flow_endpoint *e, int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (fd >= 0 && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		endpoint_from(e, &ss);
}

static void set_deadline(struct shard *s, struct sess *x, uint32_t ms)
{
	x->deadline = ms ? s->now + ms : 0;
}

static bool method_is(const struct h1_request *r, const char *m)
{
	size_t n = strlen(m);
	return r->method_len == n && memcmp(r->method, m, n) == 0;
}

/* ---- capture ---- */

void session_free_capture(struct sess *x)
{
	struct capture *c = &x->cap;
	free(c->req_head);
	free(c->req_hdrs);
	free(c->resp_head);
	free(c->resp_hdrs);
	free(c->req_body);
	free(c->resp_body);
	free(c->path_copy);
	for (int i = 0; i < 2; i++) {
		free(c->trl_raw[i].p);
		free(c->trl_copy[i]);
		free(c->trl_hdrs[i]);
	}
	memset(c, 0, sizeof(*c));
	x->has_flow = false;
	free(x->tcp_msgs);
	free(x->tcp_off);
	free(x->tcp_data);
	x->tcp_msgs = NULL;
	x->tcp_off = NULL;
	x->tcp_data = NULL;
	x->tcp_n = x->tcp_cap = x->tcp_len = x->tcp_data_cap = 0;
}

static void flow_begin(struct shard *s, struct sess *x, double ts)
{
	struct capture *c = &x->cap;
	session_free_capture(x);
	x->has_flow = true;
	shard_uuid(s, c->f.id);
	c->f.type = FLOW_HTTP;
	c->f.mode = sess_mode(s, x)->kind;
	if (!x->c_local.port) { /* once per connection */
		endpoint_from(&x->c_peer, &x->caddr);
		local_endpoint(&x->c_local, x->c.fd);
	}
	c->f.client.peer = x->c_peer;
	c->f.client.local = x->c_local;
	c->f.client.ts_start = x->c_ts_start;
	c->f.req.ts_start = ts;
}

/* Copy a parsed head into flow memory: the raw bytes once, then the
 * header table re-pointed into the copy. */
static int capture_head(const char *head, size_t len,
			const struct h1_header *h, size_t n, char **copy,
			struct flow_header **out)
{
	*copy = malloc(len ? len : 1);
	*out = calloc(n ? n : 1, sizeof(**out));
	if (!*copy || !*out)
		return -ENOMEM;
	memcpy(*copy, head, len);
	for (size_t i = 0; i < n; i++) {
		(*out)[i].name.p = *copy + (h[i].name - head);
		(*out)[i].name.n = (uint32_t)h[i].name_len;
		(*out)[i].value.p = *copy + (h[i].value - head);
		(*out)[i].value.n = (uint32_t)h[i].value_len;
	}
	return 0;
}

static struct rc_str rebase(const char *copy, const char *head,
			    const char *p, size_t n)
{
	return (struct rc_str){copy + (p - head), (uint32_t)n};
}

static void capture_body(struct shard *s, struct flow_body *fb,
			 uint8_t **buf, uint32_t *cap, const char *data,
			 size_t n, uint64_t hint)
{
	uint64_t limit = s->cfg->body_capture_limit;
	uint64_t have = fb->captured;
	fb->length += n;
	if (have >= limit) {
		fb->truncated = n > 0 || fb->truncated;
		return;
	}
	size_t take = n;
	if (have + take > limit) {
		take = (size_t)(limit - have);
		fb->truncated = true;
	}
	if (have + take > *cap) {
		/* First growth: the declared length when there is one, so a
		 * 1 MiB body is one allocation, not eight reallocations. */
		uint64_t nc = *cap ? *cap : (hint > 4096 ? hint : 4096);
		while (nc < have + take)
			nc *= 2;
		if (nc > limit)
			nc = limit;
		uint8_t *p = realloc(*buf, nc);
		if (!p) {
			fb->truncated = true;
			return;
		}
		*buf = p;
		*cap = (uint32_t)nc;
	}
	memcpy(*buf + have, data, take);
	fb->captured = (uint32_t)(have + take);
	fb->p = *buf;
}

/* A tunnel chunk as it arrived: kept as one message while the flow's
 * capture budget (body_capture_limit) lasts. */
static void capture_tcp(struct shard *s, struct sess *x, bool from_client,
			const char *data, size_t n)
{
	uint64_t limit = s->cfg->body_capture_limit;
	if (!n)
		return;
	if (x->tcp_len >= limit) {
		x->cap.f.tcp_truncated = true;
		return;
	}
	size_t take = n;
	if (x->tcp_len + take > limit) {
		take = (size_t)(limit - x->tcp_len);
		x->cap.f.tcp_truncated = true;
	}
	if (x->tcp_n == x->tcp_cap) {
		uint32_t nc = x->tcp_cap ? x->tcp_cap * 2 : 16;
		struct flow_tcp_msg *m = realloc(x->tcp_msgs, nc * sizeof(*m));
		if (m)
			x->tcp_msgs = m;
		uint32_t *o = m ? realloc(x->tcp_off, nc * sizeof(*o)) : NULL;
		if (!m || !o) {
			x->cap.f.tcp_truncated = true;
			return;
		}
		x->tcp_off = o;
		x->tcp_cap = nc;
	}
	if (x->tcp_len + take > x->tcp_data_cap) {
		uint64_t nc = x->tcp_data_cap ? x->tcp_data_cap : 4096;
		while (nc < x->tcp_len + take)
			nc *= 2;
		if (nc > limit)
			nc = limit;
		uint8_t *d = realloc(x->tcp_data, nc);
		if (!d) {
			x->cap.f.tcp_truncated = true;
			return;
		}
		x->tcp_data = d;
		x->tcp_data_cap = (uint32_t)nc;
	}
	memcpy(x->tcp_data + x->tcp_len, data, take);
	x->tcp_msgs[x->tcp_n] = (struct flow_tcp_msg){from_client, rc_wall_now(),
						      {NULL, (uint32_t)take}};
	x->tcp_off[x->tcp_n++] = x->tcp_len;
	x->tcp_len += (uint32_t)take;
}

/* The trailer fields of a chunked body, for the record: the raw section
 * parsed like a head behind a made-up status line. */
static void capture_trailers(struct shard *s, struct sess *x)
{
	struct capture *c = &x->cap;
	for (int i = 0; i < 2; i++) {
		struct rbuf *r = &c->trl_raw[i];
		uint32_t n = r->wr - r->rd;
		if (n <= 2 || c->trl_hdrs[i])
			continue;
		static const char fake[] = "HTTP/1.1 200 T\r\n";
		size_t fl = sizeof(fake) - 1;
		char *copy = malloc(fl + n);
		if (!copy)
			continue;
		memcpy(copy, fake, fl);
		memcpy(copy + fl, r->p + r->rd, n);
		struct h1_response rp;
		ssize_t hl = h1_parse_response(copy, fl + n, 0, &rp, s->hdrs,
					       SHARD_MAX_HEADERS, NULL);
		struct flow_header *h = hl > 0 && rp.num_headers
			? calloc(rp.num_headers, sizeof(*h)) : NULL;
		if (!h) {
			free(copy);
			continue;
		}
		for (size_t j = 0; j < rp.num_headers; j++) {
			h[j].name = rebase(copy, copy, rp.headers[j].name,
					   rp.headers[j].name_len);
			h[j].value = rebase(copy, copy, rp.headers[j].value,
					    rp.headers[j].value_len);
		}
		c->trl_copy[i] = copy;
		c->trl_hdrs[i] = h;
		if (i) {
			c->f.resp.trailers = h;
			c->f.resp.num_trailers = (uint32_t)rp.num_headers;
		} else {
			c->f.req.trailers = h;
			c->f.req.num_trailers = (uint32_t)rp.num_headers;
		}
	}
}

/* "HTTP/2 stream reset by the server (error code N)" when that is why
 * the upstream side of |x| ended, else NULL. */
static const char *h2_reset_detail(const struct sess *x, char *buf,
				   size_t len)
{
	if (!x->u_virtual || !x->h2u_reset)
		return NULL;
	snprintf(buf, len, "HTTP/2 stream reset by the server (error code %u)",
		 x->h2u_reset & ~(1u << 31));
	return buf;
}

static void flow_set_error(struct sess *x, int code, const char *detail)
{
	struct capture *c = &x->cap;
	if (c->f.has_error)
		return;
	c->f.has_error = true;
	c->f.err.code = code;
	if (detail && *detail)
		snprintf(c->err_msg, sizeof(c->err_msg), "%s: %s",
			 rc_strerror(code), detail);
	else
		snprintf(c->err_msg, sizeof(c->err_msg), "%s",
			 rc_strerror(code));
	c->f.err.msg = (struct rc_str){c->err_msg, (uint32_t)strlen(c->err_msg)};
	c->f.err.ts = rc_wall_now();
}

/* Put the finished record into the shard's ring. Returns false when the
 * ring is full and the policy is to wait. */
static bool flow_emit(struct shard *s, struct sess *x)
{
	struct flow *f = &x->cap.f;
	if (!s->frq || !shard_should_record(s, f))
		return true;
	size_t need = flow_encoded_size(f);
	void *p = frq_reserve(s->frq, need);
	if (!p) {
		if (need > frq_max_record(s->frq) ||
		    s->cfg->capture_overflow == ENG_OVERFLOW_DROP ||
		    s->stopping) {
			atomic_fetch_add_explicit(&s->st.dropped, 1,
						  memory_order_relaxed);
			if (need > frq_max_record(s->frq))
				fprintf(stderr,
					"ringcap: flow record of %zu bytes exceeds the "
					"capture ring; raise capture_ring_size\n",
					need);
			return true;
		}
		atomic_fetch_add_explicit(&s->st.ring_waits, 1,
					  memory_order_relaxed);
		return false;
	}
	ssize_t n = flow_encode(f, p, need);
	if (n < 0) {
		atomic_fetch_add_explicit(&s->st.dropped, 1,
					  memory_order_relaxed);
		return true;
	}
	frq_commit(s->frq, (size_t)n);
	atomic_fetch_add_explicit(&s->st.captured, 1, memory_order_relaxed);
	return true;
}

/* ---- the end of a flow ---- */

static void upstream_detach(struct shard *s, struct sess *x, bool reusable)
{
	if (x->u.fd < 0)
		return;
	/* A TLS connection can be pooled too when it is quiet: nothing on
	 * the wire either way and no plaintext waiting for us. */
	bool busy = x->u.recv_armed || x->u.send_armed || x->u.sock_busy ||
		    rbuf_len(&x->u.in) > 0 ||
		    (x->u.ssl && (!x->u.hs_done || x->u.plain_pending ||
				  SSL_pending(x->u.ssl) > 0));
	if (busy) {
		/* Ops still hold the socket: the whole session goes. */
		x->flags |= SF_CLIENT_CLOSE;
		return;
	}
	/* a tunnel through the next proxy leads elsewhere than its address
	 * says: it is never pooled */
	if (reusable && !s->stopping && !x->up_via_proxy) {
		struct up_facts uf;
		bool have = x->u_ep_fd == x->u.fd;
		if (have) {
			uf.peer = x->u_peer;
			uf.local = x->u_local;
			uf.verify_err = x->up_verify_err;
			memcpy(uf.cert_sha, x->up_cert_sha, sizeof(uf.cert_sha));
			memcpy(uf.cert_names, x->up_cert_names, sizeof(uf.cert_names));
			memcpy(uf.verify_msg, x->up_verify_msg, sizeof(uf.verify_msg));
		}
		pool_put(s, x->u.fd, x->up_host, x->up_port, x->up_sni, &x->u,
			 have ? &uf : NULL);
	} else {
		close(x->u.fd);
		tls_side_free(&x->u);
	}
	x->u.fd = -1;
	x->u_ep_fd = -1;
	free(x->u.in.p);
	memset(&x->u.in, 0, sizeof(x->u.in));
	x->u.eof = false;
}

static void flow_tls_facts(struct sess *x)
{
	struct flow *f = &x->cap.f;
	for (uint32_t i = 0; i < x->tcp_n; i++)
		x->tcp_msgs[i].content.p = (const char *)x->tcp_data + x->tcp_off[i];
	f->tcp_msgs = x->tcp_msgs;
	f->num_tcp_msgs = x->tcp_n;
	if (x->c.ssl && x->c.hs_done) {
		tls_describe(&x->c, &f->client_tls, x->tls_c_desc,
			     sizeof(x->tls_c_desc));
		f->client_tls.ts_setup = x->c_tls_ts;
	} else if (x->h2_ctls.present) { /* a stream: its connection's */
		f->client_tls = x->h2_ctls;
	} else if (x->sni[0] && f->type == FLOW_TCP) {
		/* passed through: the SNI is all we know */
		f->client_tls.present = true;
		f->client_tls.sni = (struct rc_str){x->sni, (uint32_t)strlen(x->sni)};
	}
	if ((x->u.ssl && x->u.hs_done) || x->h2_stls.present) {
		struct flow_tls *t = &f->server_tls;
		if (x->u.ssl && x->u.hs_done) {
			tls_describe(&x->u, t, x->tls_u_desc, sizeof(x->tls_u_desc));
			t->ts_setup = x->u_tls_ts;
		} else {
			*t = x->h2_stls; /* the HTTP/2 upstream connection's */
		}
		t->cert_sha256 = (struct rc_str){x->up_cert_sha,
						 (uint32_t)strlen(x->up_cert_sha)};
		t->cert_names = (struct rc_str){x->up_cert_names,
						(uint32_t)strlen(x->up_cert_names)};
		t->verify = (struct rc_str){x->up_verify_msg,
					    (uint32_t)strlen(x->up_verify_msg)};
	}
}

static void flow_done(struct shard *s, struct sess *x)
{
	struct flow *f = &x->cap.f;
	bool up_ok = x->rq == RQ_DONE && x->rs == RS_DONE &&
		     !(x->flags & SF_UP_NOREUSE) && x->rs_kind != H1_BODY_CLOSE;
	bool tunnel = x->rq == RQ_TUNNEL;
	/* a stream session ends with its one flow */
	bool closing = tunnel || s->stopping || sess_is_stream(x) ||
		       (x->flags & (SF_CLIENT_CLOSE | SF_OWN_REPLY));
	if (x->has_flow) {
		double now = rc_wall_now();
		flow_tls_facts(x);
		capture_trailers(s, x);
		if (closing && !f->client.ts_end && !sess_is_stream(x))
			f->client.ts_end = now;
		if ((closing || !up_ok) && f->has_server && !f->server.ts_end)
			f->server.ts_end = now;
		if (!flow_emit(s, x)) {
			x->flags |= SF_PARKED;
			x->park_next = s->parked;
			s->parked = x;
			set_deadline(s, x, 0);
			return;
		}
		atomic_fetch_add_explicit(&s->st.flows, 1, memory_order_relaxed);
		if (f->has_error)
			atomic_fetch_add_explicit(&s->st.flow_errors, 1,
						  memory_order_relaxed);
		session_free_capture(x);
	}
	free(x->obuf);
	x->obuf = NULL;
	x->obuf_len = 0;
	if (closing) {
		upstream_detach(s, x, up_ok && !tunnel);
		sess_close(s, x);
		return;
	}
	if (!up_ok)
		upstream_detach(s, x, false);
	if (x->flags & SF_CLIENT_CLOSE) { /* upstream_detach found it busy */
		sess_close(s, x);
		return;
	}
	x->rq = RQ_IDLE;
	x->rs = RS_NONE;
	x->flags &= ~(SF_UP_REUSED | SF_RETRIED | SF_UP_NOREUSE);
	x->resp_started = false;
	x->err = 0;
	set_deadline(s, x, s->cfg->idle_timeout_ms);
	client_process(s, x);
}

void session_retry_parked(struct shard *s, struct sess *x)
{
	flow_done(s, x);
}

/* Answer the client ourselves (400, 431, 502, 504, ...), record the error
 * and close once the answer is out. */
static void reply_error(struct shard *s, struct sess *x, int status, int code,
			const char *detail)
{
	char body[400];
	if (!x->has_flow)
		flow_begin(s, x, rc_wall_now());
	flow_set_error(x, code, detail);
	x->cap.f.term = status >= 500 ? (code == RC_ENG_UPSTREAM_TIMEOUT
						 ? FLOW_TERM_UPSTREAM_TIMEOUT
						 : FLOW_TERM_UPSTREAM_ERROR)
				      : (status == 408 ? FLOW_TERM_CLIENT_TIMEOUT
						       : FLOW_TERM_CLIENT_ERROR);
	x->flags |= SF_OWN_REPLY | SF_CLIENT_CLOSE | SF_UP_NOREUSE;
	if (x->tun == TUN_SOCKS5 && x->rq == RQ_UPSTREAM && !x->resp_started) {
		socks_reply(s, x, socks5_reply_for_error(code));
		return;
	}
	if (x->resp_started || x->c.eof || x->c.send_armed ||
	    (x->tun != TUN_NONE && x->tun != TUN_CONNECT && !x->fixed_target)) {
		/* a raw tunnel has no way to carry an HTTP error */
		flow_done(s, x);
		return;
	}
	snprintf(body, sizeof(body), "ringcap: %s\n", x->cap.err_msg);
	free(x->obuf);
	x->obuf = malloc(1024);
	if (!x->obuf) {
		flow_done(s, x);
		return;
	}
	ssize_t n = h1_write_error_response(x->obuf, 1024, status, body);
	if (n <= 0) {
		flow_done(s, x);
		return;
	}
	x->obuf_len = (uint32_t)n;
	x->resp_started = true;
	x->csend_what = SW_OWN;
	set_deadline(s, x, s->cfg->idle_timeout_ms);
	sess_send(s, x, false, x->obuf, x->obuf_len);
}

/* Answer with a response of our own that is not an error (mitm.it): it is
 * recorded like any response; the connection closes after it. */
static void reply_local(struct shard *s, struct sess *x, const char *ctype,
			const char *extra_hdr, const void *body, size_t len)
{
	struct capture *c = &x->cap;
	size_t cap = 512 + len;
	free(x->obuf);
	x->obuf = malloc(cap);
	if (!x->obuf) {
		abort_flow(s, x, -ENOMEM, FLOW_TERM_PROXY_REFUSED);
		return;
	}
	int hl = snprintf(x->obuf, 512,
			  "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n%s"
			  "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			  ctype, extra_hdr ? extra_hdr : "", len);
	memcpy(x->obuf + hl, body, len);
	x->obuf_len = (uint32_t)(hl + len);
	struct h1_response rp;
	size_t off;
	if (h1_parse_response(x->obuf, (size_t)hl, 0, &rp, s->hdrs,
			      SHARD_MAX_HEADERS, &off) == hl &&
	    capture_head(x->obuf, (size_t)hl, rp.headers, rp.num_headers,
			 &c->resp_head, &c->resp_hdrs) == 0) {
		struct flow_response *fr = &c->f.resp;
		c->f.has_response = true;
		fr->status = 200;
		fr->reason = RC_STR("OK");
		fr->http_version = RC_STR("HTTP/1.1");
		fr->headers = c->resp_hdrs;
		fr->num_headers = (uint32_t)rp.num_headers;
		fr->ts_start = rc_wall_now();
		capture_body(s, &fr->body, &c->resp_body, &c->resp_body_cap,
			     body, len, len);
		fr->ts_end = fr->ts_start;
	}
	c->f.req.ts_end = rc_wall_now();
	c->f.term = FLOW_TERM_OK;
	x->rq = RQ_DONE;
	x->rs = RS_DONE;
	x->flags |= SF_OWN_REPLY | SF_CLIENT_CLOSE;
	x->resp_started = true;
	x->csend_what = SW_OWN;
	sess_send(s, x, false, x->obuf, x->obuf_len);
}

/* http://mitm.it/ through the proxy: the CA for installing on devices. */
static bool serve_mitm_it(struct shard *s, struct sess *x)
{
	const struct flow_request *fr = &x->cap.f.req;
	if (!s->tls || fr->host.n != 7 || strncasecmp(fr->host.p, "mitm.it", 7))
		return false;
	static const struct {
		const char *path, *fmt, *ctype, *file;
	} certs[] = {
		{"/cert/pem", "pem", "application/x-x509-ca-cert", "ringcap-ca-cert.pem"},
		{"/cert/cer", "cer", "application/x-x509-ca-cert", "ringcap-ca-cert.cer"},
		{"/cert/p12", "p12", "application/x-pkcs12", "ringcap-ca-cert.p12"},
	};
	for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++) {
		size_t pl = strlen(certs[i].path);
		if (fr->path.n < pl || memcmp(fr->path.p, certs[i].path, pl) ||
		    (fr->path.n > pl && fr->path.p[pl] != '?'))
			continue;
		const unsigned char *data;
		size_t len;
		if (ca_cert_file(s->tls->ca, certs[i].fmt, &data, &len) < 0)
			return false;
		char disp[128];
		snprintf(disp, sizeof(disp),
			 "Content-Disposition: attachment; filename=\"%s\"\r\n",
			 certs[i].file);
		reply_local(s, x, certs[i].ctype, disp, data, len);
		return true;
	}
	static const char page[] =
		"<!doctype html><html><head><meta charset=utf-8>"
		"<title>ringcap: install the CA</title></head><body>"
		"<h1>ringcap certificate authority</h1>"
		"<p>ringcap intercepts HTTPS with certificates signed by its own "
		"CA. Install and trust it on this device to see its encrypted "
		"traffic; remove it when you are done.</p><ul>"
		"<li><a href=\"/cert/pem\">PEM</a> &mdash; Linux, macOS, Firefox: "
		"<code>sudo cp ringcap-ca-cert.pem /usr/local/share/ca-certificates/"
		"ringcap.crt &amp;&amp; sudo update-ca-certificates</code>; on macOS "
		"open it in Keychain Access and set it to Always Trust; in Firefox: "
		"Settings, Certificates, Import.</li>"
		"<li><a href=\"/cert/cer\">CER (DER)</a> &mdash; Windows: open it, "
		"Install Certificate, Local Machine, Trusted Root Certification "
		"Authorities.</li>"
		"<li><a href=\"/cert/p12\">P12</a> &mdash; iOS and Android: open it, "
		"install the profile, then on iOS enable full trust under "
		"Settings, General, About, Certificate Trust Settings.</li>"
		"</ul><p>curl: <code>curl --cacert ringcap-ca-cert.pem -x "
		"http://PROXY:8080 https://example.com/</code></p></body></html>\n";
	reply_local(s, x, "text/html; charset=utf-8", NULL, page,
		    sizeof(page) - 1);
	return true;
}

/* A flow that cannot go on (peer gone, timeout, shutdown): record the
 * error and close without answering. */
static void abort_flow(struct shard *s, struct sess *x, int code,
		       enum flow_term term)
{
	if (x->has_flow) {
		flow_set_error(x, code, NULL);
		x->cap.f.term = term;
	}
	x->flags |= SF_CLIENT_CLOSE | SF_UP_NOREUSE;
	if (x->has_flow && x->rq != RQ_IDLE)
		flow_done(s, x);
	else
		sess_close(s, x);
}

/* ---- starting a request ---- */

static void get_upstream(struct shard *s, struct sess *x, const char *host,
			 uint16_t port);

/* A connection that is a tunnel from its first byte (reverse:tcp/tls,
 * transparent): a tcp flow to host:port, connected right away. */
static void start_direct(struct shard *s, struct sess *x, const char *host,
			 uint16_t port, enum tun_kind kind)
{
	struct capture *c = &x->cap;
	flow_begin(s, x, rc_wall_now());
	c->f.type = FLOW_TCP;
	snprintf(x->tunnel_host, sizeof(x->tunnel_host), "%s", host);
	x->tunnel_port = port;
	snprintf(c->tcp_host, sizeof(c->tcp_host), "%s", host);
	c->f.tcp_host = (struct rc_str){c->tcp_host, (uint32_t)strlen(c->tcp_host)};
	c->f.tcp_port = port;
	x->tun = (uint8_t)kind;
	x->req_is_connect = true;
	get_upstream(s, x, host, port);
}

void session_start(struct shard *s, struct sess *x)
{
	const struct eng_mode *m = sess_mode(s, x);
	x->c_ts_start = rc_wall_now();
	x->rq = RQ_IDLE;
	x->rs = RS_NONE;
	set_deadline(s, x, s->cfg->header_timeout_ms);
	if (m->kind == FLOW_MODE_REVERSE && (!strcmp(m->scheme, "tcp") ||
					     !strcmp(m->scheme, "tls"))) {
		start_direct(s, x, m->host, m->port,
			     m->scheme[1] == 'c' ? TUN_DIRECT_TCP : TUN_DIRECT_TLS);
		return;
	}
	if (m->kind == FLOW_MODE_TRANSPARENT) {
		struct flow_endpoint d;
		endpoint_from(&d, &x->orig_dst);
		start_direct(s, x, d.addr, d.port, TUN_TRANSPARENT);
		return;
	}
	if (m->kind == FLOW_MODE_SOCKS5) {
		x->rq = RQ_SOCKS;
		x->tun = TUN_SOCKS5;
	}
	if (!strcmp(m->scheme, "dns")) {
		x->rq = RQ_DNS; /* DNS over TCP */
		set_deadline(s, x, s->cfg->idle_timeout_ms);
	}
	sess_arm_recv(s, x, false);
}

static int h1_status_for(ssize_t err)
{
	switch (err) {
	case RC_H1_TOO_MANY_HEADERS:
	case RC_H1_HEAD_TOO_LARGE:
		return 431;
	case RC_H1_BAD_TRANSFER_ENCODING:
		return 501;
	case RC_H1_BAD_VERSION:
		return 505;
	default:
		return 400;
	}
}

static bool is_ip_literal(const char *h);
static size_t collect_upstream_cert(struct shard *s, struct sess *x,
				    char names[][256], size_t max);

static void get_upstream(struct shard *s, struct sess *x, const char *host,
			 uint16_t port)
{
	const struct eng_mode *m = sess_mode(s, x);
	/* Upstream mode: a CONNECT target, and the requests found inside
	 * its tunnel, are reached through a CONNECT of ours to the next
	 * proxy (proxy_connect_reply()). */
	bool via = m->kind == FLOW_MODE_UPSTREAM &&
		   (x->req_is_connect || x->fixed_target);
	x->rq = RQ_UPSTREAM;
	set_deadline(s, x, s->cfg->connect_timeout_ms);
	if (sess_is_stream(x) && !x->u_virtual && x->u.fd < 0) {
		/* a stream of an HTTP/2 connection: over the connection's
		 * HTTP/2 upstream when there is one */
		int r = h2_stream_upstream(s, x, host, port);
		if (r == 2) { /* its outcome is not known yet */
			if (host != x->up_host)
				snprintf(x->up_host, sizeof(x->up_host), "%s", host);
			x->up_port = port;
			return;
		}
		if (r == 1) {
			struct capture *c = &x->cap;
			snprintf(x->up_host, sizeof(x->up_host), "%s", host);
			x->up_port = port;
			c->f.has_server = true;
			c->f.server.ts_start = c->f.server.ts_setup = rc_wall_now();
			c->f.server.peer = x->u_peer;
			c->f.server.local = x->u_local;
			upstream_ready(s, x);
			return;
		}
	}
	if (x->u.fd >= 0 && !(x->flags & SF_UP_NOREUSE) &&
	    (x->u.ssl != NULL) == x->up_tls && x->up_port == port &&
	    x->up_via_proxy == via &&
	    strcmp(x->up_host, host) == 0) {
		x->flags |= SF_UP_REUSED;
		atomic_fetch_add_explicit(&s->st.upstream_reused, 1,
					  memory_order_relaxed);
		session_on_connect(s, x, 0);
		return;
	}
	upstream_detach(s, x, !(x->flags & SF_UP_NOREUSE));
	snprintf(x->up_host, sizeof(x->up_host), "%s", host);
	x->up_port = port;
	snprintf(x->up_sni, sizeof(x->up_sni), "%s",
		 x->sni[0] ? x->sni : is_ip_literal(host) ? "" : host);
	x->up_via_proxy = via;
	x->up_proxy_stage = via ? 1 : 0;
	struct up_facts uf;
	bool have = false;
	int fd = via ? -1 : pool_take(s, host, port, x->up_tls, x->up_sni, &x->u,
				      &uf, &have);
	if (fd >= 0) {
		x->u.fd = fd;
		x->u_ep_fd = -1;
		if (have) { /* what was found out when it was made */
			x->u_peer = uf.peer;
			x->u_local = uf.local;
			x->u_ep_fd = fd;
			x->up_verify_err = uf.verify_err;
			memcpy(x->up_cert_sha, uf.cert_sha, sizeof(uf.cert_sha));
			memcpy(x->up_cert_names, uf.cert_names, sizeof(uf.cert_names));
			memcpy(x->up_verify_msg, uf.verify_msg, sizeof(uf.verify_msg));
		} else if (x->u.ssl) { /* the certificate facts */
			char names[16][256];
			collect_upstream_cert(s, x, names, 16);
		}
		x->flags |= SF_UP_REUSED;
		atomic_fetch_add_explicit(&s->st.upstream_reused, 1,
					  memory_order_relaxed);
		session_on_connect(s, x, 0);
		return;
	}
	x->cap.f.server.ts_start = rc_wall_now();
	x->flags |= SF_IN_DNS;
	dns_resolve(s, x, via ? m->host : host, via ? m->port : port);
}

void session_upstream_resume(struct shard *s, struct sess *x)
{
	char host[256];
	snprintf(host, sizeof(host), "%s", x->up_host);
	get_upstream(s, x, host, x->up_port);
}

/* Build the head we send upstream into x->obuf. */
static int build_upstream_head(struct shard *s, struct sess *x,
			       const struct h1_request *rq, const char *host,
			       uint16_t port)
{
	const struct eng_mode *m = sess_mode(s, x);
	/* Hop-by-hop fields stay on the client's hop (RFC 9110 7.6.1): the
	 * upstream connection is ours to keep alive, whatever the client
	 * does with its own. An Upgrade handshake keeps its Connection. */
	static const char *const skip_proxy[] = {
		"Proxy-Connection", "Connection", "Keep-Alive", NULL};
	static const char *const skip_host[] = {
		"Proxy-Connection", "Connection", "Keep-Alive", "Host", NULL};
	static const char *const skip_proxy_up[] = {"Proxy-Connection", NULL};
	static const char *const skip_host_up[] = {"Proxy-Connection", "Host",
						   NULL};
	const struct h1_header *conn = h1_find_header(rq->headers,
						      rq->num_headers,
						      "Connection");
	bool upgrade = conn && memmem(conn->value, conn->value_len, "pgrade", 6);
	bool h10 = rq->version_minor == 0;
	const char *const *skip = upgrade || h10 ? skip_proxy_up : skip_proxy;
	struct h1_header extra[1];
	size_t nextra = 0;
	char hostval[300], target[8192];
	const char *tp = rq->target;
	size_t tl = rq->target_len;
	bool default_port = port == (x->up_tls ? 443 : 80);
	snprintf(hostval, sizeof(hostval), strchr(host, ':') ? "[%s]" : "%s",
		 host);
	if (!default_port)
		snprintf(hostval + strlen(hostval),
			 sizeof(hostval) - strlen(hostval), ":%u", port);

	if (m->kind == FLOW_MODE_UPSTREAM && !x->fixed_target) {
		if (rq->form == H1_FORM_ORIGIN) {
			int n = snprintf(target, sizeof(target), "http://%s%.*s",
					 hostval, (int)rq->target_len, rq->target);
			if (n < 0 || (size_t)n >= sizeof(target))
				return RC_H1_BAD_TARGET;
			tp = target;
			tl = (size_t)n;
		}
	} else if (rq->form == H1_FORM_ABSOLUTE) {
		tp = rq->t.path_len ? rq->t.path : "/";
		tl = rq->t.path_len ? rq->t.path_len : 1;
		if (tp[0] != '/' && tp[0] != '*') { /* "http://h?q" */
			int n = snprintf(target, sizeof(target), "/%.*s",
					 (int)tl, tp);
			if (n < 0 || (size_t)n >= sizeof(target))
				return RC_H1_BAD_TARGET;
			tp = target;
			tl = (size_t)n;
		}
	}
	if (m->kind == FLOW_MODE_REVERSE && !s->cfg->keep_host_header) {
		skip = upgrade || h10 ? skip_host_up : skip_host;
		extra[0] = (struct h1_header){"Host", 4, hostval, strlen(hostval)};
		nextra = 1;
	} else if (!rq->host_hdr) {
		extra[0] = (struct h1_header){"Host", 4, hostval, strlen(hostval)};
		nextra = 1;
	}
	size_t cap = 256 + tl + rbuf_len(&x->c.in);
	if (cap > 256 + tl + s->cfg->max_header_size)
		cap = 256 + tl + s->cfg->max_header_size;
	cap += 512;
	free(x->obuf);
	x->obuf = malloc(cap);
	if (!x->obuf)
		return -ENOMEM;
	ssize_t n = h1_write_request_head(
		x->obuf, cap, rq->method, rq->method_len, tp, tl,
		rq->version_minor, rq->headers, rq->num_headers, skip, extra,
		nextra);
	if (n < 0)
		return (int)n;
	x->obuf_len = (uint32_t)n;
	return 0;
}

/* Upstream mode: the CONNECT we send the next proxy for |rq|'s target,
 * with the client's Proxy-Authorization (plain requests carry it on too).
 * Kept for the session: every connection through the proxy sends it. */
static int proxy_connect_build(struct sess *x, const struct h1_request *rq)
{
	const struct h1_header *pa = h1_find_header(rq->headers,
						    rq->num_headers,
						    "Proxy-Authorization");
	int n = snprintf(x->proxy_connect, sizeof(x->proxy_connect),
			 "CONNECT %.*s HTTP/1.1\r\nHost: %.*s\r\n%s%.*s%s\r\n",
			 (int)rq->target_len, rq->target, (int)rq->target_len,
			 rq->target, pa ? "Proxy-Authorization: " : "",
			 pa ? (int)pa->value_len : 0, pa ? pa->value : "",
			 pa ? "\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(x->proxy_connect))
		return RC_H1_HEAD_TOO_LARGE;
	x->proxy_connect_len = (uint16_t)n;
	return 0;
}

/* Where the request goes: host and port to connect to, and what the flow
 * records as the request's scheme/host/port/path. */
static int route_request(struct shard *s, struct sess *x,
			 const struct h1_request *rq, const char **chost,
			 uint16_t *cport)
{
	const struct eng_mode *m = sess_mode(s, x);
	struct capture *c = &x->cap;
	struct flow_request *fr = &c->f.req;
	const char *h = NULL;
	size_t hl = 0;
	uint16_t port = 80;
	fr->scheme = RC_STR("http");
	if (x->fixed_target) {
		/* HTTP found inside a CONNECT, transparent or SOCKS connection:
		 * every request goes to the tunnel's target, whatever the Host
		 * header says */
		bool ctls = x->c.ssl || x->h2_ctls.present;
		fr->scheme = ctls ? RC_STR("https") : RC_STR("http");
		snprintf(c->url_host, sizeof(c->url_host), "%s",
			 x->sni[0] ? x->sni : x->tunnel_host);
		if (rq->host_hdr && rq->host_hdr_len &&
		    rq->host_hdr_len < sizeof(c->url_host)) {
			const char *hh = rq->host_hdr;
			size_t hhl = rq->host_hdr_len;
			split_host_port(&hh, &hhl, NULL);
			memcpy(c->url_host, hh, hhl);
			c->url_host[hhl] = 0;
		}
		fr->host = (struct rc_str){c->url_host,
					   (uint32_t)strlen(c->url_host)};
		fr->port = x->tunnel_port;
		*chost = x->tunnel_host;
		*cport = x->tunnel_port;
		x->up_tls = ctls;
		return 0;
	}
	if (rq->form == H1_FORM_ABSOLUTE || rq->form == H1_FORM_AUTHORITY) {
		h = rq->t.host;
		hl = rq->t.host_len;
		if (rq->t.port)
			port = rq->t.port;
		if (rq->t.scheme_len == 5 &&
		    strncasecmp(rq->t.scheme, "https", 5) == 0) {
			fr->scheme = RC_STR("https");
			if (!rq->t.port)
				port = 443;
		}
	} else if (rq->host_hdr && rq->host_hdr_len) {
		/* Host: name[:port] or [v6]:port */
		h = rq->host_hdr;
		hl = rq->host_hdr_len;
		split_host_port(&h, &hl, &port);
	}
	if (m->kind == FLOW_MODE_REVERSE) {
		fr->scheme = (struct rc_str){m->scheme, (uint32_t)strlen(m->scheme)};
		x->up_tls = !strcmp(m->scheme, "https");
		snprintf(c->url_host, sizeof(c->url_host), "%s", m->host);
		fr->port = m->port;
		*chost = m->host;
		*cport = m->port;
	} else {
		if (!h || !hl || hl >= sizeof(c->url_host))
			return RC_ENG_NO_HOST;
		memcpy(c->url_host, h, hl);
		c->url_host[hl] = 0;
		fr->port = port;
		if (m->kind == FLOW_MODE_UPSTREAM) {
			*chost = m->host;
			*cport = m->port;
		} else {
			*chost = c->url_host;
			*cport = port;
		}
	}
	fr->host = (struct rc_str){c->url_host, (uint32_t)strlen(c->url_host)};
	if (m->kind == FLOW_MODE_REGULAR && fr->scheme.n == 5 &&
	    rq->form != H1_FORM_AUTHORITY)
		return -EPROTONOSUPPORT; /* https:// in absolute form: issue 3 */
	return 0;
}

static void on_request_head(struct shard *s, struct sess *x, ssize_t hlen,
			    struct h1_request *rq)
{
	struct capture *c = &x->cap;
	struct flow_request *fr = &c->f.req;
	const char *head = x->c.in.p + x->c.in.rd;
	if (!x->has_flow)
		flow_begin(s, x, rc_wall_now());
	if (capture_head(head, (size_t)hlen, rq->headers, rq->num_headers,
			 &c->req_head, &c->req_hdrs) < 0) {
		reply_error(s, x, 500, -ENOMEM, NULL);
		return;
	}
	c->f.has_request = true;
	fr->method = rebase(c->req_head, head, rq->method, rq->method_len);
	fr->headers = c->req_hdrs;
	fr->num_headers = (uint32_t)rq->num_headers;
	fr->http_version = rq->version_minor ? RC_STR("HTTP/1.1")
					     : RC_STR("HTTP/1.0");
	if (sess_is_stream(x)) {
		/* the client spoke HTTP/2; the last fields were added for
		 * the HTTP/1.1 upstream (Host, framing) and are not its */
		struct sess *p = &s->sess[x->h2_parent];
		uint32_t synth = x->h2_sid > 0 && p->h2
			? h2conn_req_synth(p->h2, x->h2_sid) : 0;
		fr->http_version = RC_STR("HTTP/2.0");
		fr->num_headers -= synth <= fr->num_headers ? synth : 0;
	}
	if (rq->form == H1_FORM_ABSOLUTE)
		fr->path = rq->t.path_len
			? rebase(c->req_head, head, rq->t.path, rq->t.path_len)
			: RC_STR("/");
	else if (rq->form == H1_FORM_AUTHORITY)
		fr->path = RC_STR("");
	else
		fr->path = rebase(c->req_head, head, rq->target, rq->target_len);
	if (fr->path.n && fr->path.p[0] == '?') {
		/* "http://h?q" asks for "/?q" */
		c->path_copy = malloc(fr->path.n + 1);
		if (c->path_copy) {
			c->path_copy[0] = '/';
			memcpy(c->path_copy + 1, fr->path.p, fr->path.n);
			fr->path = (struct rc_str){c->path_copy, fr->path.n + 1};
		}
	}

	const char *chost = NULL;
	uint16_t cport = 0;
	int r = route_request(s, x, rq, &chost, &cport);
	bool is_connect = method_is(rq, "CONNECT");
	if (r == -EPROTONOSUPPORT) {
		x->c.in.rd += (uint32_t)hlen;
		reply_error(s, x, 501, RC_H1_BAD_TARGET,
			    "https:// requests need TLS interception, not "
			    "available yet; use CONNECT");
		return;
	}
	if (r == 0 && is_connect && rq->form != H1_FORM_AUTHORITY)
		r = RC_H1_BAD_TARGET;
	if (r < 0) {
		x->c.in.rd += (uint32_t)hlen;
		reply_error(s, x, 400, r, NULL);
		return;
	}
	if (m_regular(s, x) && !is_connect && serve_mitm_it(s, x)) {
		x->c.in.rd += (uint32_t)hlen;
		return;
	}
	if (x->up_fail_code) {
		/* intercepted, but the server's side failed: say why */
		x->c.in.rd += (uint32_t)hlen;
		reply_error(s, x, 502, x->up_fail_code, x->up_fail_msg);
		return;
	}
	if (!rq->keep_alive)
		x->flags |= SF_CLIENT_CLOSE;
	x->req_head_is_head = method_is(rq, "HEAD");
	x->req_is_connect = is_connect;
	if (is_connect) {
		x->tun = TUN_CONNECT;
		if (sess_mode(s, x)->kind == FLOW_MODE_UPSTREAM) {
			/* the tunnel leads to the target, through the next
			 * proxy; after that, as in regular mode */
			chost = c->url_host;
			cport = fr->port;
			r = proxy_connect_build(x, rq);
			if (r < 0) {
				x->c.in.rd += (uint32_t)hlen;
				reply_error(s, x, 431, r, "Proxy-Authorization");
				return;
			}
		}
		snprintf(x->tunnel_host, sizeof(x->tunnel_host), "%s", chost);
		x->tunnel_port = cport;
		c->f.type = FLOW_TCP;
		snprintf(c->tcp_host, sizeof(c->tcp_host), "%s", c->url_host);
		c->f.tcp_host = (struct rc_str){c->tcp_host,
						(uint32_t)strlen(c->tcp_host)};
		c->f.tcp_port = fr->port;
	}
	/* A CONNECT needs no head upstream (in upstream mode,
	 * session_on_connect() sends the next proxy a CONNECT of ours). */
	if (!is_connect) {
		r = build_upstream_head(s, x, rq, c->url_host, fr->port);
		if (r < 0) {
			x->c.in.rd += (uint32_t)hlen;
			reply_error(s, x, 400, r, NULL);
			return;
		}
	}
	h1_body_init(&x->rqb, rq->body, rq->content_length);
	x->rqb.stop_at_trailers = true; /* body_take keeps them */
	x->c.in.rd += (uint32_t)hlen;
	get_upstream(s, x, chost, cport);
}

static void parse_client_head(struct shard *s, struct sess *x)
{
	struct h1_request rq;
	size_t err_off = 0;
	uint32_t avail = rbuf_len(&x->c.in);
	/* |head_scanned|: what the last incomplete parse already looked at,
	 * so a client sending its head byte by byte costs linear time. */
	ssize_t r = h1_parse_request(x->c.in.p + x->c.in.rd, avail,
				     x->head_scanned, &rq, s->hdrs,
				     SHARD_MAX_HEADERS, &err_off);
	x->head_scanned = r == 0 ? avail : 0;
	if (r > 0 && (size_t)r > s->cfg->max_header_size)
		r = RC_H1_HEAD_TOO_LARGE;
	if (r == 0 && avail > s->cfg->max_header_size)
		r = RC_H1_HEAD_TOO_LARGE;
	if (r > 0) {
		on_request_head(s, x, r, &rq);
		return;
	}
	if (r == 0) {
		if (x->c.eof) {
			/* closed mid-head: record what we know */
			abort_flow(s, x, RC_ENG_CLIENT_CLOSED,
				   FLOW_TERM_CLIENT_CLOSED);
			return;
		}
		sess_arm_recv(s, x, false);
		return;
	}
	char detail[64];
	snprintf(detail, sizeof(detail), "at byte %zu", err_off);
	x->c.in.rd = x->c.in.wr; /* the rest is unparseable */
	reply_error(s, x, h1_status_for(r), (int)r, detail);
}

/* ---- pumps ---- */

enum { SW_Q = SW_OWN + 1, SW_PCONN /* our CONNECT to the next proxy */ };

static bool in_body(const struct sess *x, bool upstream)
{
	if (upstream)
		return (x->rs == RS_BODY && !x->switching) || x->rs == RS_TUNNEL;
	return x->rq == RQ_BODY || x->rq == RQ_TUNNEL;
}

/* Run the body decoder over raw bytes from one side: capture the payload,
 * count tunnel bytes. Returns how many of the |avail| bytes belong to the
 * current message (the rest starts the next one), or a negative code. */
static ssize_t body_take(struct shard *s, struct sess *x, bool from_upstream,
			 const char *p, size_t avail)
{
	struct h1_body *b = from_upstream ? &x->rsb : &x->rqb;
	struct capture *c = &x->cap;
	bool tunnel = x->rq == RQ_TUNNEL;
	size_t used = 0;
	while (used < avail && !b->done) {
		const char *data = NULL;
		size_t dl = 0;
		if (h1_body_in_trailers(b)) {
			/* byte by byte: the trailer section is kept for the
			 * record (h1 bounds it) */
			ssize_t n = h1_body_parse(b, p + used, 1, &data, &dl);
			if (n < 0)
				return n;
			if (!tunnel &&
			    rbuf_append(&c->trl_raw[from_upstream], p + used, 1,
					64u << 10) < 0)
				return -ENOMEM;
			used += (size_t)n;
			continue;
		}
		ssize_t n = h1_body_parse(b, p + used, avail - used, &data, &dl);
		if (n < 0)
			return n;
		if (dl && !tunnel) {
			if (from_upstream)
				capture_body(s, &c->f.resp.body, &c->resp_body,
					     &c->resp_body_cap, data, dl,
					     x->rsb.kind == H1_BODY_LENGTH
						     ? x->rsb.remaining + dl : 0);
			else
				capture_body(s, &c->f.req.body, &c->req_body,
					     &c->req_body_cap, data, dl,
					     x->rqb.kind == H1_BODY_LENGTH
						     ? x->rqb.remaining + dl : 0);
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	if (tunnel) {
		if (from_upstream)
			c->f.bytes_down += used;
		else
			c->f.bytes_up += used;
		capture_tcp(s, x, !from_upstream, p, used);
	}
	return (ssize_t)used;
}

static void request_body_done(struct shard *s, struct sess *x)
{
	x->rq = RQ_DONE;
	x->cap.f.req.ts_end = rc_wall_now();
	if (x->rs == RS_DONE)
		flow_done(s, x);
}

static void response_done(struct shard *s, struct sess *x)
{
	x->rs = RS_DONE;
	x->cap.f.resp.ts_end = rc_wall_now();
	if (x->rq != RQ_DONE) {
		/* Answered before the request was complete (an early 413,
		 * say): the connection cannot be reused either way. */
		x->flags |= SF_CLIENT_CLOSE | SF_UP_NOREUSE;
	}
	flow_done(s, x);
}

/* Everything of one direction's message has been forwarded. */
static void direction_done(struct shard *s, struct sess *x, bool from_upstream)
{
	struct side *dst = from_upstream ? &x->c : &x->u;
	if (x->rq == RQ_TUNNEL) {
		if (dst->fd >= 0 && !dst->shut_wr) {
			shutdown(dst->fd, SHUT_WR);
			dst->shut_wr = true;
		}
		if (x->rqb.done && x->rsb.done && x->c.shut_wr && x->u.shut_wr) {
			x->cap.f.term = FLOW_TERM_OK;
			flow_done(s, x);
		}
		return;
	}
	if (from_upstream && x->rs == RS_BODY)
		response_done(s, x);
	else if (!from_upstream && x->rq == RQ_BODY)
		request_body_done(s, x);
}

/* Move one direction forward: send what is queued or buffered, finish the
 * message when all of it is out, or ask for more bytes. */
static void pump(struct shard *s, struct sess *x, bool from_upstream)
{
	struct side *src = from_upstream ? &x->u : &x->c;
	struct side *dst = from_upstream ? &x->c : &x->u;
	struct h1_body *b = from_upstream ? &x->rsb : &x->rqb;
	if (dst->send_armed || src->sent_from_in || (x->flags & SF_CLOSING))
		return; /* a forward is in flight; on_sent continues */
	if (src->qn) {
		struct chunk *ch = &src->q[src->qhead];
		if (from_upstream)
			x->csend_what = SW_Q;
		else
			x->usend_what = SW_Q;
		sess_send(s, x, !from_upstream, shard_buf(s, ch->bid) + ch->off,
			  ch->len);
		/* keep reading while the send is out */
		if (!b->done && src->qn < SIDE_QN && !rbuf_len(&src->in))
			sess_arm_recv(s, x, from_upstream);
		return;
	}
	uint32_t avail = rbuf_len(&src->in);
	if (avail && !b->done) {
		const char *p = src->in.p + src->in.rd;
		ssize_t used = body_take(s, x, from_upstream, p, avail);
		if (used < 0) {
			abort_flow(s, x, (int)used,
				   from_upstream ? FLOW_TERM_UPSTREAM_ERROR
						 : FLOW_TERM_CLIENT_ERROR);
			return;
		}
		if (used > 0) {
			src->sent_from_in = (uint32_t)used;
			if (from_upstream)
				x->csend_what = SW_FWD;
			else
				x->usend_what = SW_FWD;
			sess_send(s, x, !from_upstream, p, (uint32_t)used);
			return;
		}
	}
	if (b->done) {
		direction_done(s, x, from_upstream);
		return;
	}
	if (src->eof) {
		if (h1_body_eof(b) < 0) {
			char d[80];
			if (from_upstream && h2_reset_detail(x, d, sizeof(d)))
				flow_set_error(x, RC_ENG_UPSTREAM_CLOSED, d);
			abort_flow(s, x,
				   from_upstream ? RC_ENG_UPSTREAM_CLOSED
						 : RC_ENG_CLIENT_CLOSED,
				   from_upstream ? FLOW_TERM_UPSTREAM_CLOSED
						 : FLOW_TERM_CLIENT_CLOSED);
			return;
		}
		b->done = true;
		direction_done(s, x, from_upstream);
		return;
	}
	sess_arm_recv(s, x, from_upstream);
}

/* A body buffer arrived with nothing ahead of it: decode it in place and
 * queue it for sending without copying. Returns true if queued. */
static bool recv_zero_copy(struct shard *s, struct sess *x, bool upstream,
			   const char *data, int res, int bid)
{
	struct side *sd = upstream ? &x->u : &x->c;
	struct h1_body *b = upstream ? &x->rsb : &x->rqb;
	ssize_t used = body_take(s, x, upstream, data, (size_t)res);
	if (used < 0) {
		abort_flow(s, x, (int)used,
			   upstream ? FLOW_TERM_UPSTREAM_ERROR
				    : FLOW_TERM_CLIENT_ERROR);
		return false;
	}
	if (used < res) {
		/* the next message starts here: keep it for the head parser */
		if (rbuf_append(&sd->in, data + used, (uint32_t)(res - used),
				s->cfg->max_header_size + 2 * SHARD_BUF_SIZE) < 0) {
			abort_flow(s, x, -ENOMEM, FLOW_TERM_CLIENT_ERROR);
			return false;
		}
	}
	if (used > 0) {
		unsigned slot = (sd->qhead + sd->qn) % SIDE_QN;
		sd->q[slot] = (struct chunk){(uint16_t)bid, 0, (uint32_t)used};
		sd->qn++;
	}
	if (!b->done && sd->qn < SIDE_QN)
		sess_arm_recv(s, x, upstream);
	pump(s, x, upstream);
	return used > 0;
}

/* The response head for the client with "Connection: close" in place of
 * the server's Connection and Keep-Alive fields, into x->obuf. */
static int close_head(struct sess *x, const char *head, size_t hlen,
		      const struct h1_response *rp)
{
	const char *eol = memchr(head, '\n', hlen);
	if (!eol)
		return -EINVAL;
	/* a field may grow by the ": " the server wrote as ":" */
	size_t cap = hlen + 2 * rp->num_headers + 32;
	char *out = malloc(cap), *o = out;
	if (!out)
		return -ENOMEM;
	size_t sl = (size_t)(eol - head) + 1; /* status line, kept as is */
	memcpy(o, head, sl);
	o += sl;
	for (size_t i = 0; i < rp->num_headers; i++) {
		const struct h1_header *h = &rp->headers[i];
		if ((h->name_len == 10 && !strncasecmp(h->name, "Connection", 10)) ||
		    (h->name_len == 10 && !strncasecmp(h->name, "Keep-Alive", 10)))
			continue;
		memcpy(o, h->name, h->name_len);
		o += h->name_len;
		*o++ = ':';
		*o++ = ' ';
		memcpy(o, h->value, h->value_len);
		o += h->value_len;
		*o++ = '\r';
		*o++ = '\n';
	}
	memcpy(o, "Connection: close\r\n\r\n", 21);
	o += 21;
	free(x->obuf);
	x->obuf = out;
	x->obuf_len = (uint32_t)(o - out);
	return 0;
}

static void on_response_head(struct shard *s, struct sess *x, ssize_t hlen,
			     struct h1_response *rp)
{
	struct capture *c = &x->cap;
	const char *head = x->u.in.p + x->u.in.rd;
	if (rp->status >= 100 && rp->status < 200 && rp->status != 101) {
		/* interim: forward, keep waiting for the final head */
		x->u.sent_from_in = (uint32_t)hlen;
		x->csend_what = SW_FWD;
		x->resp_started = true;
		sess_send(s, x, false, head, (uint32_t)hlen);
		return;
	}
	free(c->resp_head);
	free(c->resp_hdrs);
	c->resp_head = NULL;
	c->resp_hdrs = NULL;
	if (capture_head(head, (size_t)hlen, rp->headers, rp->num_headers,
			 &c->resp_head, &c->resp_hdrs) < 0) {
		abort_flow(s, x, -ENOMEM, FLOW_TERM_UPSTREAM_ERROR);
		return;
	}
	struct flow_response *fr = &c->f.resp;
	c->f.has_response = true;
	fr->status = (uint16_t)rp->status;
	fr->reason = rebase(c->resp_head, head, rp->reason, rp->reason_len);
	fr->http_version = rp->version_minor ? RC_STR("HTTP/1.1")
					     : RC_STR("HTTP/1.0");
	fr->headers = c->resp_hdrs;
	fr->num_headers = (uint32_t)rp->num_headers;
	if (x->u_virtual && x->h2u_st) {
		/* the server spoke HTTP/2: no reason phrase; the framing
		 * field added for HTTP/1.1 is not the server's */
		uint32_t synth = h2up_resp_synth(x->h2u_st);
		fr->http_version = RC_STR("HTTP/2.0");
		fr->reason = RC_STR("");
		fr->num_headers -= synth <= fr->num_headers ? synth : 0;
	}
	fr->ts_start = rc_wall_now();
	const char *m = x->req_head_is_head ? "HEAD" : "GET";
	x->rs_kind = h1_response_body_kind(rp, m, strlen(m));
	if (rp->status == 101) {
		/* Protocol switch (WebSocket and friends): relay raw bytes
		 * both ways until either side closes. */
		x->rs_kind = H1_BODY_CLOSE;
		x->switching = true;
	}
	if (!rp->keep_alive || x->rs_kind == H1_BODY_CLOSE)
		x->flags |= SF_UP_NOREUSE;
	if (x->rs_kind == H1_BODY_CLOSE)
		x->flags |= SF_CLIENT_CLOSE;
	h1_body_init(&x->rsb, x->rs_kind, rp->content_length);
	x->rsb.stop_at_trailers = true;
	x->rs = RS_BODY;
	x->u.sent_from_in = (uint32_t)hlen; /* consumed once the head is out */
	x->csend_what = SW_FWD;
	x->resp_started = true;
	set_deadline(s, x, s->cfg->idle_timeout_ms);
	if ((x->flags & SF_CLIENT_CLOSE) && rp->keep_alive && rp->status != 101 &&
	    close_head(x, head, (size_t)hlen, rp) == 0) {
		/* the client's connection ends after this response: say so,
		 * whatever the server said about ours */
		sess_send(s, x, false, x->obuf, x->obuf_len);
		return;
	}
	sess_send(s, x, false, head, (uint32_t)hlen);
}

static void retry_upstream(struct shard *s, struct sess *x)
{
	/* A kept-alive connection the server had closed: one fresh try. */
	x->flags |= SF_RETRIED;
	x->flags &= ~SF_UP_REUSED;
	close(x->u.fd);
	tls_side_free(&x->u); /* a new connection needs a new handshake */
	x->u.hs_done = x->u.hs_failed = x->u.want = x->u.plain_pending = false;
	x->u.fd = -1;
	x->u_ep_fd = -1;
	x->u.eof = false;
	x->u.in.rd = x->u.in.wr = 0;
	x->rq = RQ_UPSTREAM;
	x->rs = RS_NONE;
	h1_body_init(&x->rqb, H1_BODY_NONE, 0);
	set_deadline(s, x, s->cfg->connect_timeout_ms);
	x->cap.f.server.ts_start = rc_wall_now();
	x->flags |= SF_IN_DNS;
	const struct eng_mode *m = sess_mode(s, x);
	x->up_proxy_stage = x->up_via_proxy ? 1 : 0;
	dns_resolve(s, x, x->up_via_proxy ? m->host : x->up_host,
		    x->up_via_proxy ? m->port : x->up_port);
}

static void parse_upstream_head(struct shard *s, struct sess *x)
{
	struct h1_response rp;
	size_t err_off = 0;
	uint32_t avail = rbuf_len(&x->u.in);
	if (!avail) {
		if (x->u.eof) {
			if ((x->flags & SF_UP_REUSED) &&
			    !(x->flags & SF_RETRIED) && x->rq == RQ_DONE &&
			    x->rqb.total == 0 && !x->resp_started) {
				retry_upstream(s, x);
				return;
			}
			char d[80];
			reply_error(s, x, 502, RC_ENG_UPSTREAM_CLOSED,
				    h2_reset_detail(x, d, sizeof(d)));
			return;
		}
		sess_arm_recv(s, x, true);
		return;
	}
	ssize_t r = h1_parse_response(x->u.in.p + x->u.in.rd, avail, 0, &rp,
				      s->hdrs, SHARD_MAX_HEADERS, &err_off);
	if ((r == 0 && avail > s->cfg->max_header_size) ||
	    (r > 0 && (size_t)r > s->cfg->max_header_size))
		r = RC_H1_HEAD_TOO_LARGE;
	if (r > 0) {
		on_response_head(s, x, r, &rp);
		return;
	}
	if (r == 0) {
		if (x->u.eof) {
			reply_error(s, x, 502, RC_ENG_UPSTREAM_CLOSED,
				    "inside the response head");
			return;
		}
		sess_arm_recv(s, x, true);
		return;
	}
	char detail[96];
	snprintf(detail, sizeof(detail), "%s at byte %zu", rc_strerror((int)r),
		 err_off);
	reply_error(s, x, 502, RC_ENG_UPSTREAM_BAD_RESPONSE, detail);
}

/* The next proxy's answer to our CONNECT: a 2xx makes x->u a tunnel to
 * up_host:up_port, which then goes on as a direct connection would; any
 * other answer ends the flow with a 502 that says what the proxy said. */
static void proxy_connect_reply(struct shard *s, struct sess *x)
{
	const struct eng_mode *m = sess_mode(s, x);
	struct h1_response rp;
	size_t err_off = 0;
	char detail[700]; /* two host names and a reason */
	ssize_t r;
	for (;;) { /* 1xx answers are skipped */
		uint32_t avail = rbuf_len(&x->u.in);
		r = avail ? h1_parse_response(x->u.in.p + x->u.in.rd, avail, 0,
					      &rp, s->hdrs, SHARD_MAX_HEADERS,
					      &err_off)
			  : 0;
		if (r == 0 && avail > s->cfg->max_header_size)
			r = RC_H1_HEAD_TOO_LARGE;
		if (r <= 0 || rp.status >= 200)
			break;
		x->u.in.rd += (uint32_t)r;
	}
	if (r == 0 && !x->u.eof) {
		sess_arm_recv(s, x, true);
		return;
	}
	if (r <= 0) {
		snprintf(detail, sizeof(detail),
			 "upstream proxy %s:%u %s its answer to CONNECT %s:%u",
			 m->host, m->port,
			 r ? "sent a malformed head as" : "closed before",
			 x->up_host, x->up_port);
		reply_error(s, x, 502,
			    r ? RC_ENG_UPSTREAM_BAD_RESPONSE
			      : RC_ENG_UPSTREAM_CLOSED, detail);
		return;
	}
	if (rp.status > 299) {
		snprintf(detail, sizeof(detail),
			 "upstream proxy %s:%u answered CONNECT %s:%u with "
			 "%d %.*s", m->host, m->port, x->up_host, x->up_port,
			 rp.status, (int)rp.reason_len, rp.reason);
		reply_error(s, x, 502, RC_ENG_UPSTREAM_REFUSED, detail);
		return;
	}
	x->u.in.rd += (uint32_t)r; /* what follows is the target's */
	x->up_proxy_stage = 2;
	if (x->up_tls && !x->u.ssl && !x->req_is_connect) {
		if (tls_upstream_start(s, x, x->up_host) < 0)
			reply_error(s, x, 502, RC_ENG_UPSTREAM_TLS, NULL);
		return; /* upstream_ready() once the handshake is done */
	}
	upstream_ready(s, x);
}

static void client_process(struct shard *s, struct sess *x)
{
	if (x->flags & (SF_CLOSING | SF_PARKED))
		return;
	switch (x->rq) {
	case RQ_IDLE:
	case RQ_HEAD:
		if (!rbuf_len(&x->c.in)) {
			if (x->c.eof) {
				/* the client is done: its idle upstream goes to
				 * the pool for the next client */
				if (x->rq == RQ_IDLE)
					upstream_detach(s, x, !(x->flags & SF_UP_NOREUSE));
				sess_close(s, x);
				return;
			}
			if (x->rq == RQ_IDLE)
				rbuf_trim(&x->c.in);
			sess_arm_recv(s, x, false);
			return;
		}
		if (x->rq == RQ_IDLE && maybe_h2c(s, x)) {
			int h = h2_sniff_preface(x->c.in.p + x->c.in.rd,
						 rbuf_len(&x->c.in));
			if (h == 0 && !x->c.eof) {
				sess_arm_recv(s, x, false);
				return;
			}
			if (h > 0) {
				become_h2(s, x);
				return;
			}
		}
		if (x->rq == RQ_IDLE && !x->sniffed && !x->c.ssl && s->tls &&
		    sess_mode(s, x)->kind == FLOW_MODE_REVERSE) {
			/* a reverse proxy port takes TLS and plain HTTP alike */
			x->rq = RQ_SNIFF;
			sniff_client(s, x);
			return;
		}
		if (x->rq == RQ_IDLE) {
			x->rq = RQ_HEAD;
			flow_begin(s, x, rc_wall_now());
			set_deadline(s, x, s->cfg->header_timeout_ms);
		}
		parse_client_head(s, x);
		return;
	case RQ_BODY:
	case RQ_TUNNEL:
		pump(s, x, false);
		return;
	case RQ_SNIFF:
		sniff_client(s, x);
		return;
	case RQ_SOCKS:
		socks_process(s, x);
		return;
	case RQ_DNS:
		dns_tcp_process(s, x);
		return;
	case RQ_TLS_SETUP:
		return; /* handshakes in progress */
	case RQ_H2:
		h2_conn_process(s, x);
		return;
	case RQ_DONE:
		if (x->c.eof && !rbuf_len(&x->c.in))
			x->flags |= SF_CLIENT_CLOSE; /* half-closed after request */
		return;
	default:
		return;
	}
}

static void upstream_process(struct shard *s, struct sess *x)
{
	if (x->flags & (SF_CLOSING | SF_PARKED))
		return;
	if (x->rq == RQ_H2) {
		h2_up_process(s, x);
		return;
	}
	if (x->up_proxy_stage == 1) {
		proxy_connect_reply(s, x);
		return;
	}
	switch (x->rs) {
	case RS_HEAD:
		if (x->u.sent_from_in)
			return; /* a 1xx is being forwarded */
		parse_upstream_head(s, x);
		return;
	case RS_BODY:
	case RS_TUNNEL:
		pump(s, x, true);
		return;
	default:
		if (x->rq == RQ_SNIFF && (rbuf_len(&x->u.in) || x->u.eof)) {
			start_tunnel(s, x); /* the server spoke first */
			return;
		}
		if (x->u.eof && x->u.fd >= 0)
			x->flags |= SF_UP_NOREUSE;
		return;
	}
}

/* ---- events from shard.c ---- */

bool session_on_recv(struct shard *s, struct sess *x, bool upstream,
		     const char *data, int res, int bid)
{
	struct side *sd = upstream ? &x->u : &x->c;
	x->last_active = s->now;
	if (res > 0) {
		if (in_body(x, upstream))
			set_deadline(s, x, s->cfg->idle_timeout_ms);
		if (bid >= 0 && in_body(x, upstream) && !rbuf_len(&sd->in) &&
		    !sd->sent_from_in && sd->qn < SIDE_QN &&
		    !(upstream ? x->rsb.done : x->rqb.done))
			return recv_zero_copy(s, x, upstream, data, res, bid);
		uint32_t limit = s->cfg->max_header_size + 2 * SHARD_BUF_SIZE;
		/* never move |in| under a send that points into it */
		if ((sd->sent_from_in && sd->in.cap - sd->in.wr < (uint32_t)res) ||
		    rbuf_append(&sd->in, data, (uint32_t)res, limit) < 0) {
			if (upstream)
				reply_error(s, x, 502, RC_H1_HEAD_TOO_LARGE,
					    "response head");
			else
				reply_error(s, x, 431, RC_H1_HEAD_TOO_LARGE,
					    NULL);
			return false;
		}
	} else {
		sd->eof = true;
		if (res < 0)
			sd->err = res;
	}
	if (upstream)
		upstream_process(s, x);
	else
		client_process(s, x);
	return false;
}

void session_on_send_error(struct shard *s, struct sess *x, bool upstream,
			   int res)
{
	struct side *sd = upstream ? &x->u : &x->c;
	sd->eof = true;
	sd->err = res;
	if (x->rq == RQ_H2) {
		if (upstream)
			h2_up_dead(s, x);
		else
			sess_close(s, x);
		return;
	}
	if (upstream && x->rq == RQ_BODY && x->rs == RS_HEAD) {
		/* The server stopped reading (it may still answer, e.g. 413):
		 * stop forwarding the request and wait for its response. */
		x->flags |= SF_CLIENT_CLOSE | SF_UP_NOREUSE;
		return;
	}
	if (x->flags & SF_OWN_REPLY) {
		flow_done(s, x); /* our own error answer could not be sent */
		return;
	}
	abort_flow(s, x, upstream ? RC_ENG_UPSTREAM_CLOSED : RC_ENG_CLIENT_CLOSED,
		   upstream ? FLOW_TERM_UPSTREAM_CLOSED : FLOW_TERM_CLIENT_CLOSED);
}

static void start_tunnel(struct shard *s, struct sess *x)
{
	x->rq = RQ_TUNNEL;
	x->rs = RS_TUNNEL;
	h1_body_init(&x->rqb, H1_BODY_CLOSE, 0);
	h1_body_init(&x->rsb, H1_BODY_CLOSE, 0);
	set_deadline(s, x, s->cfg->idle_timeout_ms);
	pump(s, x, false);
	pump(s, x, true);
}

/* A send finished: release what it carried. */
static void sent_release(struct shard *s, struct sess *x, struct side *src,
			 int what)
{
	if (what == SW_FWD) {
		src->in.rd += src->sent_from_in;
		src->sent_from_in = 0;
	} else if (what == SW_Q && src->qn) {
		shard_return_buf(s, src->q[src->qhead].bid);
		src->qhead = (uint8_t)((src->qhead + 1) % SIDE_QN);
		src->qn--;
	}
}

void session_on_sent(struct shard *s, struct sess *x, bool to_upstream)
{
	x->last_active = s->now;
	if (to_upstream && x->rq == RQ_H2) {
		h2_up_process(s, x);
		return;
	}
	if (to_upstream) {
		int what = x->usend_what;
		x->usend_what = SW_NONE;
		if (what == SW_PCONN) { /* our CONNECT is out: its answer */
			sess_arm_recv(s, x, true);
			return;
		}
		if (what == SW_OWN) {
			/* our request head is out */
			x->rq = RQ_BODY;
			set_deadline(s, x, s->cfg->response_timeout_ms);
		}
		sent_release(s, x, &x->c, what);
		client_process(s, x);
		return;
	}
	if (x->rq == RQ_H2) { /* frames are out */
		h2_conn_process(s, x);
		return;
	}
	int what = x->csend_what;
	x->csend_what = SW_NONE;
	if (what == SW_OWN) {
		if (x->flags & SF_OWN_REPLY) {
			flow_done(s, x);
			return;
		}
		if (x->rq == RQ_DNS) { /* an answer is out: the next query */
			x->dns_busy = false;
			set_deadline(s, x, s->cfg->idle_timeout_ms);
			client_process(s, x);
			return;
		}
		if (x->rq == RQ_SOCKS) { /* method/auth answer is out */
			client_process(s, x);
			return;
		}
		/* "200 Connection established" (or the SOCKS5 reply) is
		 * out: look at what the client says first. */
		tunnel_established(s, x);
		return;
	}
	sent_release(s, x, &x->u, what);
	if (x->rs == RS_BODY && x->switching) {
		x->switching = false;
		start_tunnel(s, x);
		return;
	}
	upstream_process(s, x);
}

void session_on_connect(struct shard *s, struct sess *x, int res)
{
	struct capture *c = &x->cap;
	if (x->rq == RQ_H2) { /* the connection's HTTP/2 upstream */
		if (res < 0 || tls_upstream_start(s, x, x->up_host) < 0) {
			if (x->u.fd >= 0)
				shutdown(x->u.fd, SHUT_RDWR);
			h2_up_off(s, x);
			return;
		}
		atomic_fetch_add_explicit(&s->st.upstream_connects, 1,
					  memory_order_relaxed);
		endpoint_from(&x->u_peer, &x->up_addr);
		local_endpoint(&x->u_local, x->u.fd);
		x->u_ep_fd = x->u.fd;
		return;
	}
	if (res < 0) {
		int code = res == -ETIMEDOUT ? RC_ENG_UPSTREAM_TIMEOUT
					     : RC_ENG_UPSTREAM_REFUSED;
		char detail[320];
		const struct eng_mode *m = sess_mode(s, x);
		snprintf(detail, sizeof(detail), "%s%s:%u (%s)",
			 x->up_via_proxy ? "upstream proxy " : "",
			 x->up_via_proxy ? m->host : x->up_host,
			 x->up_via_proxy ? m->port : x->up_port, strerror(-res));
		close(x->u.fd);
		x->u.fd = -1;
		x->u_ep_fd = -1;
		reply_error(s, x, code == RC_ENG_UPSTREAM_TIMEOUT ? 504 : 502,
			    code, detail);
		return;
	}
	if (!(x->flags & SF_UP_REUSED))
		atomic_fetch_add_explicit(&s->st.upstream_connects, 1,
					  memory_order_relaxed);
	c->f.has_server = true;
	if (!c->f.server.ts_start)
		c->f.server.ts_start = rc_wall_now();
	c->f.server.ts_setup = rc_wall_now();
	if (x->u_ep_fd != x->u.fd) { /* once per upstream connection */
		if (x->flags & SF_UP_REUSED) { /* from the pool */
			socklen_t sl = sizeof(x->up_addr);
			getpeername(x->u.fd, (struct sockaddr *)&x->up_addr, &sl);
		}
		endpoint_from(&x->u_peer, &x->up_addr);
		local_endpoint(&x->u_local, x->u.fd);
		x->u_ep_fd = x->u.fd;
	}
	c->f.server.peer = x->u_peer;
	c->f.server.local = x->u_local;
	if (x->up_proxy_stage == 1) { /* through the next proxy: CONNECT */
		x->usend_what = SW_PCONN;
		sess_send(s, x, true, x->proxy_connect, x->proxy_connect_len);
		return;
	}
	if (x->up_tls && !x->u.ssl && !x->req_is_connect) {
		int r = tls_upstream_start(s, x, x->up_host);
		if (r < 0)
			reply_error(s, x, 502, RC_ENG_UPSTREAM_TLS, NULL);
		return; /* upstream_ready() once the handshake is done */
	}
	upstream_ready(s, x);
}

/* Connected (and TLS set up where it applies): send the request. */
static void upstream_ready(struct shard *s, struct sess *x)
{
	x->rs = x->req_is_connect ? RS_NONE : RS_HEAD;
	if (x->req_is_connect) {
		if (x->tun == TUN_CONNECT) {
			x->csend_what = SW_OWN;
			x->resp_started = true;
			sess_send(s, x, false, connect_ok, sizeof(connect_ok) - 1);
		} else if (x->tun == TUN_SOCKS5) {
			socks_reply(s, x, SOCKS5_REP_SUCCEEDED);
		} else {
			tunnel_established(s, x);
		}
		return;
	}
	set_deadline(s, x, s->cfg->response_timeout_ms);
	x->usend_what = SW_OWN;
	sess_send(s, x, true, x->obuf, x->obuf_len);
	if (!x->req_is_connect)
		sess_arm_recv(s, x, true);
}

void session_on_resolved(struct shard *s, struct sess *x, int err,
			 const struct sockaddr *sa, socklen_t salen)
{
	if (x->rq == RQ_H2 && err) {
		x->flags &= ~SF_IN_DNS;
		h2_up_off(s, x);
		return;
	}
	x->flags &= ~SF_IN_DNS;
	if (err) {
		char detail[300];
		snprintf(detail, sizeof(detail), "%s%s",
			 x->up_via_proxy ? "upstream proxy " : "",
			 x->up_via_proxy ? sess_mode(s, x)->host : x->up_host);
		reply_error(s, x, 502, RC_ENG_RESOLVE_FAILED, detail);
		return;
	}
	memcpy(&x->up_addr, sa, salen);
	upstream_connect(s, x, sa, salen);
}

void session_on_timeout(struct shard *s, struct sess *x)
{
	x->deadline = 0;
	switch (x->rq) {
	case RQ_H2:
		h2_conn_timeout(s, x);
		return;
	case RQ_IDLE:
		/* keep-alive idle: nothing to record */
		upstream_detach(s, x, !(x->flags & SF_UP_NOREUSE));
		sess_close(s, x);
		return;
	case RQ_HEAD:
		reply_error(s, x, 408, RC_ENG_HEADER_TIMEOUT, NULL);
		return;
	case RQ_UPSTREAM:
		if (x->u.fd >= 0)
			shutdown(x->u.fd, SHUT_RDWR);
		x->flags |= SF_UP_NOREUSE;
		reply_error(s, x, 504, RC_ENG_UPSTREAM_TIMEOUT,
			    "connect timed out");
		return;
	default:
		break;
	}
	if (x->rs == RS_HEAD && !x->resp_started) {
		x->flags |= SF_UP_NOREUSE;
		reply_error(s, x, 504, RC_ENG_UPSTREAM_TIMEOUT,
			    "no response in time");
		return;
	}
	abort_flow(s, x, RC_ENG_CLIENT_TIMEOUT, FLOW_TERM_CLIENT_TIMEOUT);
}

void session_on_shutdown(struct shard *s, struct sess *x, bool hard)
{
	if (x->flags & SF_PARKED)
		return; /* the record is written; flow_done closes it */
	if (x->rq == RQ_H2 && !hard) {
		h2_conn_shutdown(s, x); /* GOAWAY; streams in flight finish */
		return;
	}
	if (x->rq == RQ_H2) {
		sess_close(s, x); /* its streams abort with it */
		return;
	}
	if (x->rq == RQ_IDLE && !rbuf_len(&x->c.in) && !sess_is_stream(x)) {
		sess_close(s, x);
		return;
	}
	if (!hard)
		return; /* in flight: let it finish within the grace period */
	abort_flow(s, x, RC_ENG_SHUTDOWN, FLOW_TERM_PROXY_SHUTDOWN);
}

/* ---- TLS interception ---- */

static bool is_ip_literal(const char *h)
{
	unsigned char buf[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

static int tls_upstream_start(struct shard *s, struct sess *x,
			      const char *host)
{
	SSL *ssl = SSL_new(s->tls->up_ctx);
	if (!ssl)
		return -ENOMEM;
	SSL_set_connect_state(ssl);
	/* Verify the name the client asked for (SNI), else the host we
	 * dialled; the result is read after the handshake. An IP address is
	 * never sent as SNI (RFC 6066) and is checked against IP SANs (some
	 * clients do put one in their SNI). */
	const char *name = x->sni[0] ? x->sni : host;
	X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
	if (is_ip_literal(name)) {
		X509_VERIFY_PARAM_set1_ip_asc(vp, name);
	} else {
		SSL_set_tlsext_host_name(ssl, name);
		X509_VERIFY_PARAM_set1_host(vp, name, 0);
	}
	/* h2 too when this connection may carry HTTP/2 streams: the one an
	 * HTTP/2 client connection makes, or the upstream-first one of a
	 * client that offers h2 */
	static const unsigned char h11[] = "\x08http/1.1";
	static const unsigned char h2[] = "\x02h2\x08http/1.1";
	bool offer_h2 = s->cfg->http2 &&
		(x->rq == RQ_H2 || (x->rq == RQ_TLS_SETUP && x->c_offers_h2 &&
				    x->tun != TUN_DIRECT_TLS));
	if (offer_h2)
		SSL_set_alpn_protos(ssl, h2, sizeof(h2) - 1);
	else
		SSL_set_alpn_protos(ssl, h11, sizeof(h11) - 1);
	x->up_tls = true; /* tls.c counts the record-layer path */
	return tls_side_start(s, x, true, ssl);
}

/* After the upstream handshake: certificate facts for the flow and the
 * names the forged leaf must carry. Returns the number of names. */
static size_t collect_upstream_cert(struct shard *s, struct sess *x,
				    char names[][256], size_t max)
{
	size_t n = 0;
	x->up_cert_sha[0] = 0;
	x->up_cert_names[0] = 0;
	X509 *cert = SSL_get1_peer_certificate(x->u.ssl);
	long vr = SSL_get_verify_result(x->u.ssl);
	snprintf(x->up_verify_msg, sizeof(x->up_verify_msg), "%s",
		 !cert ? "no certificate"
		       : vr == X509_V_OK ? "ok"
					 : X509_verify_cert_error_string(vr));
	x->up_verify_err = !cert ? -1 : (int)vr;
	if (!cert)
		return 0;
	tls_cert_fingerprint(cert, x->up_cert_sha);
	int k = leaf_names_from_cert(cert, names, max);
	if (k > 0)
		n = (size_t)k;
	size_t used = 0;
	for (size_t i = 0; i < n && used < sizeof(x->up_cert_names) - 1; i++)
		used += (size_t)snprintf(x->up_cert_names + used,
					 sizeof(x->up_cert_names) - used, "%s%s",
					 i ? "," : "", names[i]);
	X509_free(cert);
	(void)s;
	return n;
}

/* Is the upstream certificate acceptable? Sets up_fail_* if not. */
static bool upstream_cert_ok(struct shard *s, struct sess *x)
{
	if (s->tls->insecure || x->up_verify_err == X509_V_OK)
		return true;
	x->up_fail_code = RC_ENG_UPSTREAM_CERT;
	snprintf(x->up_fail_msg, sizeof(x->up_fail_msg),
		 "%s:%u: %s (--set ssl_insecure=true to accept it)",
		 x->up_host, x->up_port, x->up_verify_msg);
	return false;
}

/* Forge (or find) the leaf and start the client-side handshake; the
 * ClientHello is still in the client's buffer. */
static void client_tls_start(struct shard *s, struct sess *x,
			     char names[][256], size_t n_up)
{
	const char *names_p[24];
	size_t n = 0;
	if (x->sni[0])
		names_p[n++] = x->sni;
	for (size_t i = 0; i < n_up && n < 24; i++)
		names_p[n++] = names[i];
	if (!n)
		names_p[n++] = x->tunnel_host[0] ? x->tunnel_host
						 : sess_mode(s, x)->host;
	SSL_CTX *ctx = leaf_l1_get(s->leaf_l1, names_p, n);
	SSL *ssl = ctx ? SSL_new(ctx) : NULL;
	SSL_CTX_free(ctx);
	if (!ssl) {
		char e[160] = "cannot forge a certificate";
		ERR_error_string_n(ERR_get_error(), e, sizeof(e));
		abort_flow(s, x, RC_ENG_CLIENT_TLS, FLOW_TERM_PROXY_REFUSED);
		return;
	}
	SSL_set_accept_state(ssl);
	/* the server was asked first and does not speak h2: neither will
	 * the client (no translation where none is needed) */
	if (x->u.ssl && x->u.hs_done && !side_alpn_is_h2(&x->u))
		SSL_set_app_data(ssl, ALPN_H1_ONLY);
	x->rq = RQ_TLS_SETUP;
	if (tls_side_start(s, x, false, ssl) < 0)
		abort_flow(s, x, -ENOMEM, FLOW_TERM_PROXY_REFUSED);
}

static bool host_passthrough(struct shard *s, struct sess *x)
{
	char hp[300];
	snprintf(hp, sizeof(hp), "%s:%u", x->sni[0] ? x->sni : x->tunnel_host,
		 x->tunnel_port);
	return eng_tls_passthrough(s->tls, hp);
}

/* Is this the start of an HTTP/1 request? 1 yes, 0 can't tell yet, -1 no. */
static int looks_http(struct shard *s, const char *p, size_t len)
{
	struct h1_request rq;
	ssize_t r = h1_parse_request(p, len, 0, &rq, s->hdrs, SHARD_MAX_HEADERS,
				     NULL);
	if (r > 0)
		return 1;
	if (r < 0)
		return -1;
	/* Incomplete: a method (upper-case letters), then, once the first
	 * line is whole, an HTTP/1.x version at its end. */
	size_t i = 0;
	while (i < len && i < 24 && p[i] >= 'A' && p[i] <= 'Z')
		i++;
	if (i == 0 || i == 24 || (i < len && p[i] != ' '))
		return -1;
	const char *nl = memchr(p, '\n', len);
	if (!nl)
		return len > 8192 ? -1 : 0;
	return memmem(p, (size_t)(nl - p), " HTTP/1.", 8) ? 1 : -1;
}

/* From here on, the tunnel carries HTTP requests to its fixed target. */
static void become_http(struct shard *s, struct sess *x)
{
	session_free_capture(x); /* the requests are the flows */
	if (side_alpn_is_h2(&x->u)) /* HTTP/1.1 requests cannot go there */
		upstream_detach(s, x, false);
	/* inside a tunnel: its target; on a reverse port the mode decides
	 * (reverse:http with a TLS client still talks http upstream) */
	x->fixed_target = x->tun != TUN_NONE;
	x->req_is_connect = false;
	x->rq = RQ_IDLE;
	x->rs = RS_NONE;
	x->resp_started = false;
	x->flags &= ~(SF_UP_REUSED | SF_UP_NOREUSE);
	set_deadline(s, x, s->cfg->idle_timeout_ms);
	client_process(s, x);
}

/* From here on the connection speaks HTTP/2: each stream is a session of
 * its own, the connection itself no flow (as in mitmproxy). */
static void become_h2(struct shard *s, struct sess *x)
{
	session_free_capture(x);
	if (x->tun != TUN_NONE)
		x->fixed_target = true; /* inside a tunnel: its target */
	x->req_is_connect = false;
	x->resp_started = false;
	/* The upstream connection made for the tunnel: HTTP/2 to the server
	 * when it chose h2 (the streams share it), else it goes to the pool
	 * for them. A reverse https proxy makes one of its own. */
	bool up_h2 = x->u.fd >= 0 && x->u.ssl && x->u.hs_done &&
		     side_alpn_is_h2(&x->u) && s->cfg->http2;
	if (!up_h2)
		upstream_detach(s, x, !(x->flags & SF_UP_NOREUSE));
	x->flags &= ~(SF_UP_REUSED | SF_UP_NOREUSE);
	h2_conn_start(s, x);
	if (x->flags & SF_CLOSING)
		return;
	if (up_h2) {
		x->up_fail_code = 0;
		h2_up_ready(s, x);
	} else if (x->tun == TUN_NONE && s->cfg->http2 &&
		   !strcmp(sess_mode(s, x)->scheme, "https")) {
		session_h2_upstream_begin(s, x);
	}
}

void session_h2_upstream_begin(struct shard *s, struct sess *x)
{
	const struct eng_mode *m = sess_mode(s, x);
	x->h2u_state = H2U_PENDING;
	x->h2u_since = s->now;
	x->up_tls = true;
	snprintf(x->up_host, sizeof(x->up_host), "%s", m->host);
	x->up_port = m->port;
	snprintf(x->up_sni, sizeof(x->up_sni), "%s",
		 is_ip_literal(m->host) ? "" : m->host);
	x->flags |= SF_IN_DNS;
	dns_resolve(s, x, m->host, m->port);
}

static bool side_alpn_is_h2(const struct side *sd)
{
	const unsigned char *a = NULL;
	unsigned al = 0;
	if (sd->ssl)
		SSL_get0_alpn_selected(sd->ssl, &a, &al);
	return al == 2 && a[0] == 'h' && a[1] == '2';
}

/* May a new connection start with the h2c preface (HTTP/2 with prior
 * knowledge)? On reverse proxy ports and inside tunnels, as mitmproxy. */
static bool maybe_h2c(struct shard *s, struct sess *x)
{
	return s->cfg->http2 && !sess_is_stream(x) && !x->h2 &&
	       (sess_mode(s, x)->kind == FLOW_MODE_REVERSE || x->fixed_target);
}

void session_stream_start(struct shard *s, struct sess *x)
{
	x->rq = RQ_IDLE;
	x->rs = RS_NONE;
	set_deadline(s, x, s->cfg->header_timeout_ms);
	client_process(s, x);
}

void session_stream_abort(struct shard *s, struct sess *x, int code,
			  const char *detail)
{
	if (!x->has_flow || x->rq == RQ_IDLE) {
		sess_close(s, x);
		return;
	}
	flow_set_error(x, code, detail);
	abort_flow(s, x, code, FLOW_TERM_CLIENT_CLOSED);
}

/* What does the client say first? TLS gets intercepted (or passed through),
 * HTTP gets parsed, anything else is relayed as a tcp flow. */
static void sniff_client(struct shard *s, struct sess *x)
{
	uint32_t avail = rbuf_len(&x->c.in);
	const struct eng_mode *m = sess_mode(s, x);
	bool http_port = m->kind == FLOW_MODE_REVERSE && x->tun == TUN_NONE;
	x->sniffed = true;
	if (x->c.ssl && x->tun != TUN_DIRECT_TLS && side_alpn_is_h2(&x->c)) {
		become_h2(s, x);
		return;
	}
	if (!avail) {
		if (x->c.eof && x->c.ssl) {
			/* intercepted, then nothing: like mitmproxy, no flow */
			session_free_capture(x);
			sess_close(s, x);
			return;
		}
		if (x->c.eof)
			goto out_plain;
		sess_arm_recv(s, x, false);
		return;
	}
	const char *p = x->c.in.p + x->c.in.rd;
	if (x->c.ssl) { /* decrypted: HTTP inside, or something else */
		int h = http_port ? 1 : x->tun == TUN_DIRECT_TLS ? -1
			: looks_http(s, p, avail);
		if (h == 0 && !x->c.eof) {
			sess_arm_recv(s, x, false);
			return;
		}
		if (h > 0) {
			become_http(s, x);
			return;
		}
		start_tunnel(s, x);
		return;
	}
	enum tls_sniff k = tls_sniff((const uint8_t *)p, avail);
	if (k == TLS_SNIFF_NEED_MORE && !x->c.eof) {
		sess_arm_recv(s, x, false);
		return;
	}
	if (k != TLS_SNIFF_TLS)
		goto out_plain;
	struct tls_client_hello ch;
	size_t err_off = 0;
	uint8_t *big = NULL;
	ssize_t r = tls_parse_client_hello((const uint8_t *)p, avail,
					   (uint8_t *)s->tls_scratch,
					   sizeof(s->tls_scratch), &ch, &err_off);
	if (r == RC_TLS_NEED_SCRATCH && (big = malloc(TLS_HELLO_MAX_MSG)))
		r = tls_parse_client_hello((const uint8_t *)p, avail, big,
					   TLS_HELLO_MAX_MSG, &ch, &err_off);
	if (r == 0 && !x->c.eof && avail < (80u << 10)) {
		free(big);
		sess_arm_recv(s, x, false);
		return;
	}
	if (r <= 0) {
		free(big);
		goto out_plain; /* not a hello we can read: relay it as is */
	}
	x->sni[0] = 0;
	if (ch.sni && ch.sni_len < sizeof(x->sni)) {
		memcpy(x->sni, ch.sni, ch.sni_len);
		x->sni[ch.sni_len] = 0;
	}
	x->c_offers_h2 = false;
	for (size_t i = 0; i < ch.n_alpn; i++)
		if (ch.alpn[i].len == 2 && !memcmp(ch.alpn[i].p, "h2", 2))
			x->c_offers_h2 = true;
	free(big); /* |ch| may point into it: nothing of it is used below */
	if (http_port) {
		/* reverse proxy port: the target is fixed, no upstream-first */
		snprintf(x->tunnel_host, sizeof(x->tunnel_host), "%s", m->host);
		x->tunnel_port = m->port;
		client_tls_start(s, x, NULL, 0);
		return;
	}
	if (x->tun == TUN_DIRECT_TLS) { /* upstream TLS is up already */
		char names[16][256];
		size_t n = x->u.ssl ? collect_upstream_cert(s, x, names, 16) : 0;
		client_tls_start(s, x, names, n);
		return;
	}
	if (host_passthrough(s, x))
		goto out_plain;
	x->rq = RQ_TLS_SETUP;
	if (tls_upstream_start(s, x, x->tunnel_host) < 0)
		abort_flow(s, x, -ENOMEM, FLOW_TERM_PROXY_REFUSED);
	return;
out_plain:
	if (http_port) {
		x->rq = RQ_IDLE;
		client_process(s, x);
		return;
	}
	if (x->tun != TUN_DIRECT_TCP && x->tun != TUN_DIRECT_TLS && avail) {
		int h = looks_http(s, p, avail);
		if (h < 0 && s->cfg->http2 && h2_sniff_preface(p, avail) >= 0)
			h = h2_sniff_preface(p, avail) > 0 ? 2 : 0;
		if (h == 2) {
			become_h2(s, x);
			return;
		}
		if (h == 0 && !x->c.eof) {
			sess_arm_recv(s, x, false);
			return;
		}
		if (h > 0) {
			become_http(s, x);
			return;
		}
	}
	start_tunnel(s, x);
}

/* The tunnel is connected (and the client told so, for CONNECT/SOCKS). */
static void tunnel_established(struct shard *s, struct sess *x)
{
	x->rs = RS_NONE;
	if (x->tun == TUN_DIRECT_TCP || !s->tls) {
		start_tunnel(s, x);
		return;
	}
	if (x->tun == TUN_DIRECT_TLS) {
		/* the server speaks TLS: set that up, then see what the
		 * client speaks */
		x->rq = RQ_TLS_SETUP;
		if (tls_upstream_start(s, x, x->tunnel_host) < 0)
			abort_flow(s, x, -ENOMEM, FLOW_TERM_PROXY_REFUSED);
		return;
	}
	/* Who speaks first? The client (TLS, HTTP, anything else: sniffed)
	 * or the server (SMTP, SSH banners: relayed as they are). Both
	 * sides are watched; no timer guesses, so a slow client on a busy
	 * machine is still intercepted. */
	x->rq = RQ_SNIFF;
	set_deadline(s, x, s->cfg->idle_timeout_ms);
	sess_arm_recv(s, x, true);
	client_process(s, x);
}

/* ---- DNS over TCP ---- */

void session_endpoint(struct flow_endpoint *e, const struct sockaddr_storage *ss)
{
	endpoint_from(e, ss);
}

static void dns_tcp_process(struct shard *s, struct sess *x)
{
	if (x->dns_busy)
		return;
	const uint8_t *msg;
	size_t mlen = 0, off = 0;
	ssize_t r = dns_tcp_frame((const uint8_t *)x->c.in.p + x->c.in.rd,
				  rbuf_len(&x->c.in), &msg, &mlen, &off);
	if (r < 0 || (r == 0 && x->c.eof)) {
		sess_close(s, x);
		return;
	}
	if (r == 0) {
		sess_arm_recv(s, x, false);
		return;
	}
	x->dns_busy = true;
	/* the query is copied before the buffer moves on */
	dns_tcp_query(s, x, msg, mlen);
	x->c.in.rd += (uint32_t)r;
}

void session_dns_answer(struct shard *s, struct sess *x, const uint8_t *msg,
			size_t len)
{
	free(x->obuf);
	x->obuf = malloc(len + 2);
	if (!x->obuf || !len) {
		sess_close(s, x);
		return;
	}
	dns_tcp_prefix((uint8_t *)x->obuf, len);
	memcpy(x->obuf + 2, msg, len);
	x->obuf_len = (uint32_t)(len + 2);
	x->csend_what = SW_OWN;
	sess_send(s, x, false, x->obuf, x->obuf_len);
}

/* ---- SOCKS5 ---- */

/* Send one SOCKS5 negotiation message of ours (copied: it must outlive
 * the send). */
static void socks_send(struct shard *s, struct sess *x, const uint8_t *msg,
		       size_t n)
{
	if (msg != x->socks_out)
		memcpy(x->socks_out, msg, n);
	x->socks_out_len = (uint8_t)n;
	x->csend_what = SW_OWN;
	sess_send(s, x, false, (const char *)x->socks_out, x->socks_out_len);
}

static void socks_reply(struct shard *s, struct sess *x, uint8_t rep)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	const struct sockaddr *bound = NULL;
	if (rep == SOCKS5_REP_SUCCEEDED && x->u.fd >= 0 &&
	    getsockname(x->u.fd, (struct sockaddr *)&ss, &sl) == 0)
		bound = (const struct sockaddr *)&ss;
	size_t n = socks5_write_reply(x->socks_out, rep, bound);
	x->resp_started = true;
	if (rep != SOCKS5_REP_SUCCEEDED)
		x->flags |= SF_OWN_REPLY | SF_CLIENT_CLOSE;
	socks_send(s, x, x->socks_out, n);
}

/* A SOCKS5 negotiation message the client must not get past. */
static void socks_fail(struct shard *s, struct sess *x, int code,
		       const uint8_t *answer, size_t n)
{
	if (!x->has_flow)
		flow_begin(s, x, rc_wall_now());
	flow_set_error(x, code, NULL);
	x->cap.f.term = FLOW_TERM_CLIENT_ERROR;
	x->flags |= SF_OWN_REPLY | SF_CLIENT_CLOSE | SF_UP_NOREUSE;
	if (!n) {
		flow_done(s, x);
		return;
	}
	x->resp_started = true;
	socks_send(s, x, answer, n);
}

static void socks_process(struct shard *s, struct sess *x)
{
	const uint8_t *p = (const uint8_t *)x->c.in.p + x->c.in.rd;
	uint32_t avail = rbuf_len(&x->c.in);
	const char *auth = s->cfg->proxyauth;
	size_t off = 0;
	ssize_t r = 0;
	uint8_t out[22];
	if (!avail) {
		if (x->c.eof)
			sess_close(s, x);
		else
			sess_arm_recv(s, x, false);
		return;
	}
	if (x->socks_stage == 0) { /* greeting */
		struct socks5_greeting g;
		r = socks5_parse_greeting(p, avail, &g, &off);
		if (r > 0) {
			int method = socks5_choose_method(&g, auth[0] != 0);
			x->c.in.rd += (uint32_t)r;
			size_t n = socks5_write_method(out, (uint8_t)method);
			if (method == SOCKS5_METHOD_NO_ACCEPTABLE) {
				socks_fail(s, x, RC_SOCKS5_NO_ACCEPTABLE_METHOD,
					   out, n);
				return;
			}
			x->socks_stage = method == SOCKS5_METHOD_USERPASS ? 1 : 2;
			socks_send(s, x, out, n);
			return;
		}
		if (r == RC_SOCKS5_NO_METHODS) {
			size_t n = socks5_write_method(out, SOCKS5_METHOD_NO_ACCEPTABLE);
			socks_fail(s, x, (int)r, out, n);
			return;
		}
	} else if (x->socks_stage == 1) { /* username/password */
		struct socks5_auth a;
		r = socks5_parse_auth(p, avail, &a, &off);
		if (r > 0) {
			char user[256] = "", *pass = NULL;
			const char *colon = strchr(auth, ':');
			bool ok = true;
			if (auth[0]) {
				size_t ul = colon ? (size_t)(colon - auth) : strlen(auth);
				memcpy(user, auth, ul < 255 ? ul : 255);
				pass = (char *)(colon ? colon + 1 : "");
				ok = socks5_auth_check(&a, user, pass);
			}
			x->c.in.rd += (uint32_t)r;
			size_t n = socks5_write_auth_reply(out, ok);
			if (!ok) {
				socks_fail(s, x, RC_SOCKS5_AUTH_FAILED, out, n);
				return;
			}
			x->socks_stage = 2;
			socks_send(s, x, out, n);
			return;
		}
		if (r < 0) {
			size_t n = socks5_write_auth_reply(out, false);
			socks_fail(s, x, (int)r, out, n);
			return;
		}
	} else { /* request */
		struct socks5_request rq;
		r = socks5_parse_request(p, avail, &rq, &off);
		if (r > 0 && rq.cmd != SOCKS5_CMD_CONNECT)
			r = RC_SOCKS5_CMD_NOT_SUPPORTED;
		if (r > 0) {
			char host[SOCKS5_HOST_STR_MAX];
			x->c.in.rd += (uint32_t)r;
			if (socks5_request_host_str(&rq, host, sizeof(host)) < 0)
				host[0] = 0;
			x->socks_stage = 3;
			start_direct(s, x, host, rq.port, TUN_SOCKS5);
			return;
		}
		if (r < 0) {
			size_t n = socks5_write_reply(out, socks5_reply_for_error((int)r),
						      NULL);
			socks_fail(s, x, (int)r, out, n);
			return;
		}
	}
	if (r < 0) { /* not SOCKS5 at all: close without an answer */
		socks_fail(s, x, (int)r, NULL, 0);
		return;
	}
	if (x->c.eof)
		sess_close(s, x);
	else
		sess_arm_recv(s, x, false);
}

void session_on_tls_done(struct shard *s, struct sess *x, bool up, int err)
{
	if (x->flags & SF_CLOSING)
		return;
	if (up && x->rq == RQ_H2) { /* the connection's HTTP/2 upstream */
		char names[16][256];
		x->u_tls_ts = rc_wall_now();
		bool ok = !err;
		if (ok) {
			collect_upstream_cert(s, x, names, 16);
			ok = upstream_cert_ok(s, x);
			x->up_fail_code = 0; /* each stream will say it itself */
		}
		if (ok && side_alpn_is_h2(&x->u)) {
			h2_up_ready(s, x);
			return;
		}
		/* HTTP/1.1 (or no good): the streams use connections of their
		 * own; a good one goes to the pool for them */
		upstream_detach(s, x, ok);
		h2_up_off(s, x);
		return;
	}
	if (up) {
		char names[16][256];
		size_t n = 0;
		x->u_tls_ts = rc_wall_now();
		if (err) {
			x->up_fail_code = RC_ENG_UPSTREAM_TLS;
			snprintf(x->up_fail_msg, sizeof(x->up_fail_msg), "%s:%u: %s",
				 x->up_host, x->up_port, x->u.tls_err);
		} else {
			n = collect_upstream_cert(s, x, names, 16);
			upstream_cert_ok(s, x);
		}
		if (x->rq == RQ_TLS_SETUP && x->tun == TUN_DIRECT_TLS) {
			if (x->up_fail_code) { /* nothing to tell a raw client */
				flow_set_error(x, x->up_fail_code, x->up_fail_msg);
				x->cap.f.term = FLOW_TERM_UPSTREAM_ERROR;
				x->flags |= SF_CLIENT_CLOSE | SF_UP_NOREUSE;
				flow_done(s, x);
				return;
			}
			x->rq = RQ_SNIFF; /* now: does the client speak TLS? */
			client_process(s, x);
			return;
		}
		if (x->rq == RQ_TLS_SETUP) { /* upstream first, then the client */
			client_tls_start(s, x, names, n);
			return;
		}
		if (x->up_fail_code) { /* a request is waiting for this upstream */
			int code = x->up_fail_code;
			x->up_fail_code = 0;
			reply_error(s, x, 502, code, x->up_fail_msg);
			return;
		}
		upstream_ready(s, x);
		return;
	}
	x->c_tls_ts = rc_wall_now();
	atomic_fetch_add_explicit(err ? &s->st.tls_client_failed
				      : &s->st.tls_intercepted, 1,
				  memory_order_relaxed);
	if (err) {
		if (!x->has_flow) /* (also looks up the client's address) */
			flow_begin(s, x, rc_wall_now());
		if (s->cfg->verbosity >= 0)
			fprintf(stderr, "ringcap: %s:%u: %s: %s\n",
				x->c_peer.addr, x->c_peer.port,
				rc_strerror(RC_ENG_CLIENT_TLS), x->c.tls_err);
		flow_set_error(x, RC_ENG_CLIENT_TLS, x->c.tls_err);
		x->cap.f.term = FLOW_TERM_CLIENT_ERROR;
		x->flags |= SF_CLIENT_CLOSE | SF_UP_NOREUSE;
		flow_done(s, x);
		return;
	}
	/* Intercepting. What is inside: HTTP (each request a flow, the
	 * tunnel itself none, as in mitmproxy) or another protocol (the
	 * tunnel stays a tcp flow, decrypted). */
	x->resp_started = false;
	x->flags &= ~(SF_UP_REUSED | SF_UP_NOREUSE);
	set_deadline(s, x, s->cfg->idle_timeout_ms);
	x->rq = RQ_SNIFF;
	client_process(s, x);
}
