/* SPDX-License-Identifier: MIT */
/* HTTP/2 towards a client on nghttp2, translated to and from HTTP/1.1 bytes
 * per stream. See h2.h for the contract. */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/h1.h"
#include "proto/h2_util.h"
#include "proto/h2.h"

#define RESP_MAX_HEADERS 256
#define RESP_HEAD_MAX (64u * 1024)

struct h2stream {
	int32_t id;
	uint64_t user;                /* engine handle, 0: none */
	struct h2stream *next, *prev; /* the connection's streams */
	struct h2stream *room_next;   /* on the room-due list */
	bool room_due;
	/* request */
	char method[24];
	struct h2_buf path, auth;       /* ":path" and ":authority" */
	bool has_authority;
	struct h2_buf fields;           /* "name: value\r\n" lines */
	struct h2_buf cookie;           /* cookie crumbs joined with "; " */
	struct h2_buf req;              /* HTTP/1.1 bytes for the engine */
	struct h2_buf req_trl;          /* request trailer lines */
	size_t req_credit;            /* DATA bytes not yet acknowledged */
	bool has_host, has_cl, chunked, req_end;
	uint32_t synth;
	/* response */
	struct h2_buf rh;               /* head bytes until the head is whole */
	bool resp_head, resp_ended;
	struct h2_body_out rb;          /* the response body on its way out */
};

struct h2conn {
	nghttp2_session *ng;
	struct h2conn_cb cb;
	void *arg;
	struct h2conn_opts o;
	struct h2stream *streams;
	struct h2stream *room;        /* streams whose buffer drained */
	size_t nstreams;
	const uint8_t *pend;          /* output from mem_send not yet copied */
	size_t pend_len;
	bool broken;
	struct h1_header hdrs[RESP_MAX_HEADERS];
};

int h2_sniff_preface(const char *buf, size_t len)
{
	size_t n = len < H2_PREFACE_LEN ? len : H2_PREFACE_LEN;
	if (memcmp(buf, H2_PREFACE, n) != 0)
		return -1;
	return n == H2_PREFACE_LEN ? 1 : 0;
}

static struct h2stream *stream_of(struct h2conn *c, int32_t sid)
{
	return nghttp2_session_get_stream_user_data(c->ng, sid);
}

static void stream_free(struct h2conn *c, struct h2stream *st)
{
	if (st->prev)
		st->prev->next = st->next;
	else
		c->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	if (st->room_due) { /* unlink from the room list */
		struct h2stream **pp = &c->room;
		while (*pp && *pp != st)
			pp = &(*pp)->room_next;
		if (*pp)
			*pp = st->room_next;
	}
	c->nstreams--;
	h2_buf_free(&st->path);
	h2_buf_free(&st->auth);
	h2_buf_free(&st->fields);
	h2_buf_free(&st->cookie);
	h2_buf_free(&st->req);
	h2_buf_free(&st->req_trl);
	h2_buf_free(&st->rh);
	h2_body_out_free(&st->rb);
	free(st);
}

/* ---- request side ---- */

static bool name_is(const uint8_t *n, size_t nl, const char *s)
{
	return nl == strlen(s) && memcmp(n, s, nl) == 0;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *fr,
			    void *ud)
{
	struct h2conn *c = ud;
	if (fr->hd.type != NGHTTP2_HEADERS ||
	    fr->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	struct h2stream *st = calloc(1, sizeof(*st));
	if (!st)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	st->id = fr->hd.stream_id;
	st->next = c->streams;
	if (c->streams)
		c->streams->prev = st;
	c->streams = st;
	c->nstreams++;
	nghttp2_session_set_stream_user_data(ng, st->id, st);
	return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *fr,
		     const uint8_t *name, size_t nl, const uint8_t *value,
		     size_t vl, uint8_t flags, void *ud)
{
	struct h2conn *c = ud;
	(void)flags;
	struct h2stream *st = stream_of(c, fr->hd.stream_id);
	if (!st || fr->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (fr->headers.cat == NGHTTP2_HCAT_HEADERS) { /* request trailers */
		/* bounded like the head: HPACK expands small frames a lot */
		if (h2_buf_len(&st->req_trl) + nl + vl > c->o.max_header_list)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		if (h2_buf_add(&st->req_trl, name, nl) || h2_buf_str(&st->req_trl, ": ") ||
		    h2_buf_add(&st->req_trl, value, vl) || h2_buf_str(&st->req_trl, "\r\n"))
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		return 0;
	}
	if (fr->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	size_t total = h2_buf_len(&st->fields) + h2_buf_len(&st->path) + h2_buf_len(&st->auth) +
		       h2_buf_len(&st->cookie) + nl + vl;
	if (total > c->o.max_header_list)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets it */
	int r = 0;
	if (nl && name[0] == ':') {
		/* nghttp2 has checked the set: each once, before the fields */
		if (name_is(name, nl, ":method")) {
			if (vl >= sizeof(st->method))
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
			memcpy(st->method, value, vl);
			st->method[vl] = 0;
		} else if (name_is(name, nl, ":path")) {
			r = h2_buf_add(&st->path, value, vl);
		} else if (name_is(name, nl, ":authority")) {
			r = h2_buf_add(&st->auth, value, vl);
			st->has_authority = true;
		} else if (name_is(name, nl, ":protocol")) {
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		}
		return r ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
	}
	if (name_is(name, nl, "cookie")) {
		/* RFC 9113 8.2.3: crumbs are joined into one field for 1.1 */
		if (h2_buf_len(&st->cookie))
			r = h2_buf_str(&st->cookie, "; ");
		r = r || h2_buf_add(&st->cookie, value, vl);
		return r ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
	}
	if (name_is(name, nl, "host"))
		st->has_host = true;
	else if (name_is(name, nl, "content-length"))
		st->has_cl = true;
	r = h2_buf_add(&st->fields, name, nl) || h2_buf_str(&st->fields, ": ") ||
	    h2_buf_add(&st->fields, value, vl) || h2_buf_str(&st->fields, "\r\n");
	return r ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static bool method_wants_length(const char *m)
{
	return !strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "PATCH");
}

/* The request head as HTTP/1.1, into st->req. */
static int build_request(struct h2stream *st, bool end_stream)
{
	size_t pl = h2_buf_len(&st->path), al = h2_buf_len(&st->auth);
	int r = 0;
	if (!strcmp(st->method, "CONNECT") || !pl)
		return -EINVAL; /* CONNECT over HTTP/2 is not supported */
	const char *path = st->path.p + st->path.rd;
	/* HTTP/1.1 gets origin form (or "*"): nghttp2 checks the form only
	 * for http(s) schemes, and anything else ("x", "http://other/")
	 * would be another target form, or another host, upstream */
	if (path[0] != '/' &&
	    !(pl == 1 && path[0] == '*' && !strcmp(st->method, "OPTIONS")))
		return -EPROTO;
	const char *auth = al ? st->auth.p + st->auth.rd : "";
	r |= h2_buf_str(&st->req, st->method);
	r |= h2_buf_str(&st->req, " ");
	r |= h2_buf_add(&st->req, path, pl);
	r |= h2_buf_str(&st->req, " HTTP/1.1\r\n");
	r |= h2_buf_add(&st->req, st->fields.p ? st->fields.p + st->fields.rd : "",
		    h2_buf_len(&st->fields));
	if (h2_buf_len(&st->cookie)) {
		r |= h2_buf_str(&st->req, "cookie: ");
		r |= h2_buf_add(&st->req, st->cookie.p + st->cookie.rd,
			    h2_buf_len(&st->cookie));
		r |= h2_buf_str(&st->req, "\r\n");
	}
	/* Added for HTTP/1.1, last, so the flow can leave them out. */
	if (!st->has_host && st->has_authority) {
		r |= h2_buf_str(&st->req, "host: ");
		r |= h2_buf_add(&st->req, auth, al);
		r |= h2_buf_str(&st->req, "\r\n");
		st->synth++;
	}
	if (!st->has_cl) {
		if (!end_stream) {
			r |= h2_buf_str(&st->req, "transfer-encoding: chunked\r\n");
			st->chunked = true;
			st->synth++;
		} else if (method_wants_length(st->method)) {
			r |= h2_buf_str(&st->req, "content-length: 0\r\n");
			st->synth++;
		}
	}
	r |= h2_buf_str(&st->req, "\r\n");
	h2_buf_free(&st->path);
	h2_buf_free(&st->auth);
	h2_buf_free(&st->fields);
	h2_buf_free(&st->cookie);
	return r ? -ENOMEM : 0;
}

static int request_end(struct h2stream *st)
{
	st->req_end = true;
	return h2_body_in_end(&st->req, st->chunked, &st->req_trl);
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *fr,
			 void *ud)
{
	struct h2conn *c = ud;
	struct h2stream *st;
	bool end = fr->hd.flags & NGHTTP2_FLAG_END_STREAM;
	switch (fr->hd.type) {
	case NGHTTP2_HEADERS:
		st = stream_of(c, fr->hd.stream_id);
		if (!st)
			return 0;
		if (fr->headers.cat == NGHTTP2_HCAT_REQUEST) {
			int br = build_request(st, end);
			if (br < 0) {
				nghttp2_submit_rst_stream(
					ng, NGHTTP2_FLAG_NONE, st->id,
					br == -EPROTO ? NGHTTP2_PROTOCOL_ERROR
						      : NGHTTP2_REFUSED_STREAM);
				return 0;
			}
			if (end)
				request_end(st);
			st->user = c->cb.on_request(c->arg, st->id);
			if (!st->user)
				nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE,
							  st->id,
							  NGHTTP2_REFUSED_STREAM);
			return 0;
		}
		if (end && !st->req_end) { /* trailers end the request */
			if (request_end(st) < 0)
				return NGHTTP2_ERR_CALLBACK_FAILURE;
			if (st->user)
				c->cb.on_req_data(c->arg, st->user);
		}
		return 0;
	case NGHTTP2_DATA:
		st = stream_of(c, fr->hd.stream_id);
		if (st && end && !st->req_end) {
			if (request_end(st) < 0)
				return NGHTTP2_ERR_CALLBACK_FAILURE;
			if (st->user)
				c->cb.on_req_data(c->arg, st->user);
		}
		return 0;
	default:
		return 0;
	}
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t sid,
			 const uint8_t *data, size_t len, void *ud)
{
	struct h2conn *c = ud;
	(void)flags;
	struct h2stream *st = stream_of(c, sid);
	if (!len)
		return 0;
	if (!st || st->req_end || !st->user) { /* nobody takes these */
		nghttp2_session_consume(ng, sid, len);
		return 0;
	}
	if (h2_body_in_data(&st->req, st->chunked, data, len))
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	/* Acknowledged once the engine takes the bytes (h2conn_req_consume). */
	st->req_credit += len;
	if (st->user && len)
		c->cb.on_req_data(c->arg, st->user);
	return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t sid, uint32_t code,
			   void *ud)
{
	struct h2conn *c = ud;
	struct h2stream *st = stream_of(c, sid);
	if (!st)
		return 0;
	nghttp2_session_set_stream_user_data(ng, sid, NULL);
	/* request bytes never taken still count against the connection's
	 * window: give them back, or every such stream shrinks it for good */
	if (st->req_credit)
		nghttp2_session_consume_connection(ng, st->req_credit);
	uint64_t user = st->user;
	bool complete = st->rb.done && !h2_buf_len(&st->rb.out);
	stream_free(c, st);
	if (user && (code != NGHTTP2_NO_ERROR || !complete))
		c->cb.on_reset(c->arg, user,
			       code != NGHTTP2_NO_ERROR ? code : NGHTTP2_CANCEL);
	return 0;
}

size_t h2conn_req_peek(struct h2conn *c, int32_t sid, const char **p)
{
	struct h2stream *st = stream_of(c, sid);
	*p = NULL;
	if (!st || !h2_buf_len(&st->req))
		return 0;
	*p = st->req.p + st->req.rd;
	return h2_buf_len(&st->req);
}

void h2conn_req_consume(struct h2conn *c, int32_t sid, size_t n)
{
	struct h2stream *st = stream_of(c, sid);
	if (!st)
		return;
	if (n > h2_buf_len(&st->req))
		n = h2_buf_len(&st->req);
	st->req.rd += n;
	/* What the engine holds is bounded by the window: once it has taken
	 * everything, the client may send that much again. */
	if (!h2_buf_len(&st->req) && st->req_credit) {
		nghttp2_session_consume(c->ng, sid, st->req_credit);
		st->req_credit = 0;
	}
}

bool h2conn_req_done(struct h2conn *c, int32_t sid)
{
	struct h2stream *st = stream_of(c, sid);
	return !st || (st->req_end && !h2_buf_len(&st->req));
}

uint32_t h2conn_req_synth(struct h2conn *c, int32_t sid)
{
	struct h2stream *st = stream_of(c, sid);
	return st ? st->synth : 0;
}

/* ---- response side ---- */


static ssize_t read_body(nghttp2_session *ng, int32_t sid, uint8_t *buf,
			 size_t length, uint32_t *flags,
			 nghttp2_data_source *src, void *ud)
{
	struct h2conn *c = ud;
	struct h2stream *st = src->ptr;
	bool was_full = h2_buf_len(&st->rb.out) >= c->o.resp_buffer;
	ssize_t n = h2_body_out_read(&st->rb, ng, sid, buf, length, flags,
				     c->hdrs, RESP_MAX_HEADERS);
	if (was_full && h2_buf_len(&st->rb.out) < c->o.resp_buffer &&
	    st->user && !st->room_due) {
		/* told after mem_send returns: the engine may feed again */
		st->room_due = true;
		st->room_next = c->room;
		c->room = st;
	}
	return n;
}

/* Submit the final response head; the body follows through read_body. */
static int submit_head(struct h2conn *c, struct h2stream *st,
		       const struct h1_response *rp)
{
	size_t nh = rp->num_headers, k = 0, total = 0;
	/* Transfer-Encoding overrides Content-Length (RFC 9112 6.3), and a
	 * 204 has none (RFC 9110 8.6): an HTTP/2 client checks the field
	 * against the DATA it gets and resets the stream when they differ */
	bool void_length = !rp->has_content_length || rp->status == 204;
	for (size_t i = 0; i < nh; i++)
		total += rp->headers[i].name_len;
	nghttp2_nv *nv = calloc(nh + 1, sizeof(*nv));
	char *lc = malloc(total + 4);
	if (!nv || !lc) {
		free(nv);
		free(lc);
		return -ENOMEM;
	}
	int code = rp->status % 1000; /* three digits, as :status wants */
	lc[0] = (char)('0' + code / 100);
	lc[1] = (char)('0' + code / 10 % 10);
	lc[2] = (char)('0' + code % 10);
	nv[k++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)lc, 7, 3,
			       NGHTTP2_NV_FLAG_NONE};
	char *o = lc + 3;
	/* One Content-Length, with the value HTTP/1 settled on: repeats
	 * ("5" twice, or "5, 5") are fine in HTTP/1.1 but malformed to an
	 * HTTP/2 client */
	char clv[24];
	bool cl_sent = void_length;
	for (size_t i = 0; i < nh; i++) {
		const struct h1_header *f = &rp->headers[i];
		bool is_cl = f->name_len == 14 &&
			     !strncasecmp(f->name, "content-length", 14);
		if (h2_hop_by_hop(f->name, f->name_len) ||
		    h2_named_by_connection(rp->headers, nh, f->name, f->name_len) ||
		    (is_cl && cl_sent))
			continue;
		h2_lower(o, f->name, f->name_len);
		nv[k] = (nghttp2_nv){(uint8_t *)o, (uint8_t *)f->value,
				     f->name_len, f->value_len,
				     NGHTTP2_NV_FLAG_NONE};
		if (is_cl) {
			int l = snprintf(clv, sizeof(clv), "%llu",
					 (unsigned long long)rp->content_length);
			nv[k].value = (uint8_t *)clv;
			nv[k].valuelen = (size_t)l;
			cl_sent = true;
		}
		k++;
		o += f->name_len;
	}
	nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_body};
	/* nghttp2 copies the fields */
	int r = nghttp2_submit_response(c->ng, st->id, nv, k,
					st->rb.done ? NULL : &prd);
	free(nv);
	free(lc);
	return r == 0 ? 0 : -EPROTO;
}

/* Parse the head once it is whole. Returns bytes of |rh| used by the head
 * (the rest is body), 0 when incomplete, or a negative code. */
static ssize_t response_head(struct h2conn *c, struct h2stream *st)
{
	for (;;) {
		struct h1_response rp;
		ssize_t hl = h1_parse_response(st->rh.p + st->rh.rd,
					       h2_buf_len(&st->rh), 0, &rp, c->hdrs,
					       RESP_MAX_HEADERS, NULL);
		if (hl == 0)
			return h2_buf_len(&st->rh) > RESP_HEAD_MAX
				       ? RC_H1_HEAD_TOO_LARGE : 0;
		if (hl < 0)
			return hl;
		if (rp.status == 101)
			return RC_H1_SYNTAX; /* no protocol switch in HTTP/2 */
		if (rp.status >= 100 && rp.status < 200) {
			/* interim: 100 Continue goes on (a client waiting to
			 * upload would otherwise wait for its own timer);
			 * others (103) are dropped */
			if (rp.status == 100) {
				nghttp2_nv nv = {(uint8_t *)":status",
						 (uint8_t *)"100", 7, 3,
						 NGHTTP2_NV_FLAG_NONE};
				nghttp2_submit_headers(c->ng, NGHTTP2_FLAG_NONE,
						       st->id, NULL, &nv, 1, NULL);
			}
			st->rh.rd += (size_t)hl;
			continue;
		}
		enum h1_body_kind k = h1_response_body_kind(&rp, st->method,
							    strlen(st->method));
		h2_body_out_init(&st->rb, k, rp.content_length);
		if (submit_head(c, st, &rp) < 0)
			return -ENOMEM;
		st->resp_head = true;
		st->rh.rd += (size_t)hl;
		return hl;
	}
}


static void resume(struct h2conn *c, struct h2stream *st)
{
	h2_body_out_resume(&st->rb, c->ng, st->id);
}

ssize_t h2conn_resp_feed(struct h2conn *c, int32_t sid, const char *p,
			 size_t n)
{
	struct h2stream *st = stream_of(c, sid);
	if (!st || st->resp_ended)
		return -ENOENT;
	if (!n)
		return 0; /* (nothing to parse: rh may have no buffer yet) */
	size_t used = 0;
	if (!st->resp_head) {
		if (h2_buf_add(&st->rh, p, n))
			return -ENOMEM;
		ssize_t hl = response_head(c, st);
		if (hl <= 0)
			return hl < 0 ? hl : (ssize_t)n;
		/* bytes of |p| after the head are body: take them from |p| */
		size_t in_rh = h2_buf_len(&st->rh); /* body bytes copied into rh */
		used = n - in_rh;
		h2_buf_free(&st->rh);
		if (st->rb.done) {
			resume(c, st);
			return (ssize_t)n;
		}
	}
	ssize_t r = h2_body_out_feed(&st->rb, p + used, n - used, c->o.resp_buffer);
	if (r < 0)
		return r;
	resume(c, st);
	return (ssize_t)(used + (size_t)r);
}

/* The response is out whole but the client is still sending a request
 * nobody will read: ask it to stop (RFC 9113 section 8.1), or the stream
 * would wait for the rest of the request forever. */
static void decline_rest(struct h2conn *c, struct h2stream *st)
{
	if (st->resp_ended && !st->req_end)
		nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, st->id,
					  NGHTTP2_NO_ERROR);
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *fr,
			 void *ud)
{
	struct h2conn *c = ud;
	/* nghttp2 answers a protocol error with a GOAWAY and swallows all
	 * later input (mem_recv still returns its length): say so */
	if (fr->hd.type == NGHTTP2_GOAWAY &&
	    fr->goaway.error_code != NGHTTP2_NO_ERROR)
		c->broken = true;
	if ((fr->hd.type == NGHTTP2_DATA || fr->hd.type == NGHTTP2_HEADERS) &&
	    (fr->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
		struct h2stream *st = stream_of(c, fr->hd.stream_id);
		if (st)
			decline_rest(c, st);
	}
	(void)ng;
	return 0;
}

void h2conn_resp_end(struct h2conn *c, int32_t sid, bool ok)
{
	struct h2stream *st = stream_of(c, sid);
	if (!st)
		return;
	st->user = 0;
	st->resp_ended = true;
	/* request bytes not taken will never be: reopen the window */
	h2_buf_free(&st->req);
	if (st->req_credit) {
		nghttp2_session_consume(c->ng, sid, st->req_credit);
		st->req_credit = 0;
	}
	if (ok && st->resp_head && !st->rb.done &&
	    h1_body_eof(&st->rb.b) == 0)
		st->rb.done = true; /* delimited by the close */
	if (ok && st->resp_head && st->rb.done) {
		resume(c, st);
		if (nghttp2_session_get_stream_local_close(c->ng, sid) == 1)
			decline_rest(c, st); /* already sent whole */
		return;
	}
	nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, sid,
				  NGHTTP2_INTERNAL_ERROR);
}

/* ---- the connection ---- */

int h2conn_new(struct h2conn **out, const struct h2conn_cb *cb, void *arg,
	       const struct h2conn_opts *opts)
{
	struct h2conn *c = calloc(1, sizeof(*c));
	nghttp2_session_callbacks *cbs = NULL;
	nghttp2_option *opt = NULL;
	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->cb = *cb;
	c->arg = arg;
	if (opts)
		c->o = *opts;
	if (!c->o.max_concurrent_streams)
		c->o.max_concurrent_streams = 100;
	if (!c->o.stream_window)
		c->o.stream_window = 256u * 1024;
	if (!c->o.resp_buffer)
		c->o.resp_buffer = 64u * 1024;
	if (!c->o.max_header_list)
		c->o.max_header_list = 64u * 1024;
	if (nghttp2_session_callbacks_new(&cbs) || nghttp2_option_new(&opt))
		goto fail;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
	int r = nghttp2_session_server_new2(&c->ng, cbs, c, opt);
	nghttp2_session_callbacks_del(cbs);
	nghttp2_option_del(opt);
	cbs = NULL;
	opt = NULL;
	if (r)
		goto fail;
	nghttp2_settings_entry iv[] = {
		{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, c->o.max_concurrent_streams},
		{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, c->o.stream_window},
		{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
		{NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)c->o.max_header_list},
	};
	if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv,
				    sizeof(iv) / sizeof(iv[0])))
		goto fail;
	/* The connection window covers every stream's window. */
	uint64_t conn_win = (uint64_t)c->o.stream_window * c->o.max_concurrent_streams;
	nghttp2_session_set_local_window_size(
		c->ng, NGHTTP2_FLAG_NONE, 0,
		conn_win > 0x7fffffff ? 0x7fffffff : (int32_t)conn_win);
	*out = c;
	return 0;
fail:
	if (cbs)
		nghttp2_session_callbacks_del(cbs);
	if (opt)
		nghttp2_option_del(opt);
	h2conn_free(c);
	return -ENOMEM;
}

void h2conn_free(struct h2conn *c)
{
	if (!c)
		return;
	while (c->streams)
		stream_free(c, c->streams);
	if (c->ng)
		nghttp2_session_del(c->ng);
	free(c);
}

ssize_t h2conn_input(struct h2conn *c, const uint8_t *p, size_t n)
{
	if (c->broken)
		return -EPROTO;
	ssize_t r = nghttp2_session_mem_recv(c->ng, p, n);
	if (r < 0) {
		c->broken = true;
		/* nghttp2 has queued a GOAWAY for protocol errors */
		return r == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO;
	}
	return r;
}

static void run_room(struct h2conn *c)
{
	while (c->room) {
		struct h2stream *st = c->room;
		c->room = st->room_next;
		st->room_due = false;
		if (st->user)
			c->cb.on_resp_room(c->arg, st->user);
	}
}

ssize_t h2conn_output(struct h2conn *c, uint8_t *buf, size_t cap)
{
	ssize_t o = h2_session_output(c->ng, &c->pend, &c->pend_len, buf, cap);
	if (o < 0) {
		c->broken = true;
		return o;
	}
	run_room(c);
	return o;
}

bool h2conn_alive(const struct h2conn *c)
{
	return c->pend_len || nghttp2_session_want_read(c->ng) ||
	       nghttp2_session_want_write(c->ng);
}

size_t h2conn_open_streams(const struct h2conn *c) { return c->nstreams; }

void h2conn_shutdown(struct h2conn *c)
{
	nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE,
			      nghttp2_session_get_last_proc_stream_id(c->ng),
			      NGHTTP2_NO_ERROR, NULL, 0);
}

void h2conn_reset_all(struct h2conn *c)
{
	for (struct h2stream *st = c->streams; st; st = st->next) {
		uint64_t u = st->user;
		st->user = 0;
		if (u)
			c->cb.on_reset(c->arg, u, NGHTTP2_CANCEL);
	}
}
