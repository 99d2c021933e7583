/* SPDX-License-Identifier: MIT */
/* HTTP/2 towards a server on nghttp2's client session, translated to and
 * from HTTP/1.1 bytes per stream. See h2up.h for the contract. */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/h1.h"
#include "proto/h2_util.h"
#include "proto/h2up.h"

#define REQ_MAX_HEADERS 256
#define REQ_HEAD_MAX (64u * 1024)
#define TRAILER_MAX (16u * 1024)
#define FIELDS_MAX (256u * 1024) /* response head we accept */


struct h2up_stream {
	uint64_t user;
	int32_t id;                   /* 0 until the request head is submitted */
	struct h2up_stream *next, *prev;
	struct h2up_stream *room_next;
	bool room_due, closed;
	/* request: HTTP/1.1 in, HEADERS/DATA out */
	char method[24];
	struct h2_buf rh;               /* request head until it is whole */
	bool req_head;
	struct h2_body_out qb;          /* the request body on its way out */
	/* response: HEADERS/DATA in, HTTP/1.1 out */
	int status;
	struct h2_buf fields;           /* "name: value\r\n" of the head */
	struct h2_buf rtrl;             /* trailer lines */
	size_t cl_off, cl_end;          /* its content-length line in fields */
	bool has_cl, chunked, head_done, resp_end;
	bool trailers_announced;      /* "trailer" field, or gRPC */
	struct h2_buf resp;             /* HTTP/1.1 bytes for the engine */
	size_t credit;                /* DATA bytes not acknowledged yet */
	uint32_t synth;
};

struct h2up {
	nghttp2_session *ng;
	struct h2up_cb cb;
	void *arg;
	struct h2up_opts o;
	struct h2up_stream *streams, *room;
	size_t nstreams;
	const uint8_t *pend;
	size_t pend_len;
	bool broken;      /* no more input, requests or streams */
	bool fatal;       /* nghttp2 failed: no output either */
	bool goaway_recv; /* the server's GOAWAY */
	struct h1_header hdrs[REQ_MAX_HEADERS];
};

static struct h2up_stream *stream_of(struct h2up *c, int32_t sid)
{
	return nghttp2_session_get_stream_user_data(c->ng, sid);
}

static void notify(struct h2up *c, struct h2up_stream *st)
{
	if (st->user)
		c->cb.on_resp_data(c->arg, st->user);
}

/* ---- response: frames in, HTTP/1.1 out ---- */

static int on_header(nghttp2_session *ng, const nghttp2_frame *fr,
		     const uint8_t *name, size_t nl, const uint8_t *value,
		     size_t vl, uint8_t flags, void *ud)
{
	struct h2up *c = ud;
	(void)ng;
	(void)flags;
	struct h2up_stream *st = stream_of(c, fr->hd.stream_id);
	if (!st || fr->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (st->head_done) { /* trailers */
		if (nl && name[0] == ':')
			return 0;
		if (h2_buf_len(&st->rtrl) + nl + vl > TRAILER_MAX)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		int r = h2_buf_add(&st->rtrl, name, nl) || h2_buf_str(&st->rtrl, ": ") ||
			h2_buf_add(&st->rtrl, value, vl) || h2_buf_str(&st->rtrl, "\r\n");
		return r ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
	}
	if (nl == 7 && !memcmp(name, ":status", 7)) {
		int s = 0;
		for (size_t i = 0; i < vl && i < 3; i++)
			s = s * 10 + (value[i] - '0'); /* nghttp2 checked: 3 digits */
		if (s < 100) /* ("051" passes nghttp2; no HTTP/1.1 head has it) */
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		st->status = s;
		return 0;
	}
	if (nl && name[0] == ':')
		return 0;
	if (h2_buf_len(&st->fields) + nl + vl > FIELDS_MAX)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	bool cl = nl == 14 && !memcmp(name, "content-length", 14);
	if ((nl == 7 && !memcmp(name, "trailer", 7)) ||
	    (nl == 12 && !memcmp(name, "content-type", 12) && vl >= 16 &&
	     !memcmp(value, "application/grpc", 16)))
		st->trailers_announced = true;
	size_t at = h2_buf_len(&st->fields);
	int r = h2_buf_add(&st->fields, name, nl) || h2_buf_str(&st->fields, ": ") ||
		h2_buf_add(&st->fields, value, vl) || h2_buf_str(&st->fields, "\r\n");
	if (cl) { /* (nghttp2 lets one through, at most) */
		st->has_cl = true;
		st->cl_off = at;
		st->cl_end = h2_buf_len(&st->fields);
	}
	return r ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static bool no_body(const struct h2up_stream *st)
{
	return !strcmp(st->method, "HEAD") || st->status == 204 ||
	       st->status == 304;
}

static int response_head(struct h2up_stream *st, bool end)
{
	char line[64];
	int r = 0;
	snprintf(line, sizeof(line), "HTTP/1.1 %03d %s\r\n", st->status,
		 h1_reason(st->status));
	r |= h2_buf_str(&st->resp, line);
	/* Trailers need chunked framing in HTTP/1.1, whatever the length;
	 * the server's Content-Length then stays out (RFC 9112 6.1: a
	 * sender must not send both; HTTP/1.1 peers treat a message with
	 * both as suspect and close the connection after it). */
	bool chunk = !end && st->trailers_announced && !no_body(st);
	const char *f = st->fields.p ? st->fields.p + st->fields.rd : "";
	if (chunk && st->has_cl) {
		r |= h2_buf_add(&st->resp, f, st->cl_off);
		r |= h2_buf_add(&st->resp, f + st->cl_end,
				h2_buf_len(&st->fields) - st->cl_end);
	} else {
		r |= h2_buf_add(&st->resp, f, h2_buf_len(&st->fields));
	}
	if ((!st->has_cl || chunk) && !no_body(st)) {
		if (end) {
			r |= h2_buf_str(&st->resp, "content-length: 0\r\n");
		} else {
			r |= h2_buf_str(&st->resp, "transfer-encoding: chunked\r\n");
			st->chunked = true;
		}
		st->synth = 1;
	}
	r |= h2_buf_str(&st->resp, "\r\n");
	h2_buf_free(&st->fields);
	st->head_done = true;
	return r ? -ENOMEM : 0;
}

static int response_end(struct h2up_stream *st)
{
	st->resp_end = true;
	return h2_body_in_end(&st->resp, st->chunked, &st->rtrl);
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *fr,
			 void *ud)
{
	struct h2up *c = ud;
	(void)ng;
	bool end = fr->hd.flags & NGHTTP2_FLAG_END_STREAM;
	if (fr->hd.type == NGHTTP2_GOAWAY)
		c->goaway_recv = true;
	if (fr->hd.type != NGHTTP2_HEADERS && fr->hd.type != NGHTTP2_DATA)
		return 0;
	struct h2up_stream *st = stream_of(c, fr->hd.stream_id);
	if (!st)
		return 0;
	if (fr->hd.type == NGHTTP2_HEADERS && !st->head_done) {
		if (st->status >= 100 && st->status < 200) {
			/* interim: 100 Continue is passed on (the client may
			 * be waiting for it to upload), others (103) not */
			bool cont = st->status == 100;
			h2_buf_free(&st->fields);
			st->status = 0;
			st->has_cl = st->trailers_announced = false;
			if (cont) { /* (last: the callback may end the stream) */
				if (h2_buf_str(&st->resp, "HTTP/1.1 100 Continue\r\n\r\n"))
					return NGHTTP2_ERR_CALLBACK_FAILURE;
				notify(c, st);
			}
			return 0;
		}
		if (response_head(st, end) < 0)
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		if (end && response_end(st) < 0)
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		notify(c, st);
		return 0;
	}
	if (end && st->head_done && !st->resp_end) {
		if (response_end(st) < 0)
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		notify(c, st);
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t sid,
			 const uint8_t *data, size_t len, void *ud)
{
	struct h2up *c = ud;
	(void)flags;
	struct h2up_stream *st = stream_of(c, sid);
	if (!len)
		return 0;
	if (!st || !st->head_done || st->resp_end || no_body(st)) {
		nghttp2_session_consume(ng, sid, len);
		return 0;
	}
	if (h2_body_in_data(&st->resp, st->chunked, data, len))
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	st->credit += len;
	notify(c, st);
	return 0;
}

static void unlink_room(struct h2up *c, struct h2up_stream *st)
{
	if (!st->room_due)
		return;
	struct h2up_stream **pp = &c->room;
	while (*pp && *pp != st)
		pp = &(*pp)->room_next;
	if (*pp)
		*pp = st->room_next;
	st->room_due = false;
}

static int on_stream_close(nghttp2_session *ng, int32_t sid, uint32_t code,
			   void *ud)
{
	struct h2up *c = ud;
	struct h2up_stream *st = stream_of(c, sid);
	if (!st)
		return 0;
	nghttp2_session_set_stream_user_data(ng, sid, NULL);
	st->closed = true;
	unlink_room(c, st);
	if (!st->resp_end && st->user) {
		uint64_t u = st->user;
		st->user = 0;
		c->cb.on_reset(c->arg, u, code ? code : NGHTTP2_INTERNAL_ERROR);
	}
	return 0;
}

size_t h2up_resp_peek(struct h2up *c, struct h2up_stream *st, const char **p)
{
	(void)c;
	*p = h2_buf_len(&st->resp) ? st->resp.p + st->resp.rd : NULL;
	return h2_buf_len(&st->resp);
}

void h2up_resp_consume(struct h2up *c, struct h2up_stream *st, size_t n)
{
	if (n > h2_buf_len(&st->resp))
		n = h2_buf_len(&st->resp);
	st->resp.rd += n;
	if (!h2_buf_len(&st->resp) && st->credit) {
		if (!st->closed && st->id > 0)
			nghttp2_session_consume(c->ng, st->id, st->credit);
		else
			nghttp2_session_consume_connection(c->ng, st->credit);
		st->credit = 0;
	}
}

uint32_t h2up_resp_synth(const struct h2up_stream *st) { return st->synth; }

/* ---- request: HTTP/1.1 in, frames out ---- */

static ssize_t read_body(nghttp2_session *ng, int32_t sid, uint8_t *buf,
			 size_t length, uint32_t *flags,
			 nghttp2_data_source *src, void *ud)
{
	struct h2up *c = ud;
	(void)src;
	struct h2up_stream *st = stream_of(c, sid);
	if (!st)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	bool was_full = h2_buf_len(&st->qb.out) >= c->o.req_buffer;
	ssize_t n = h2_body_out_read(&st->qb, ng, sid, buf, length, flags,
				     c->hdrs, REQ_MAX_HEADERS);
	if (was_full && h2_buf_len(&st->qb.out) < c->o.req_buffer && st->user &&
	    !st->room_due) {
		st->room_due = true;
		st->room_next = c->room;
		c->room = st;
	}
	return n;
}

static bool skip_field(const char *n, size_t nl, const char *v, size_t vl)
{
	/* TE: only "trailers" may cross into HTTP/2 */
	if (nl == 2 && !strncasecmp(n, "te", 2))
		return !(vl == 8 && !strncasecmp(v, "trailers", 8));
	return h2_hop_by_hop(n, nl) || (nl == 4 && !strncasecmp(n, "host", 4));
}

static int submit_request(struct h2up *c, struct h2up_stream *st,
			  const char *scheme, const struct h1_request *rq)
{
	size_t nh = rq->num_headers, k = 0, total = 0;
	for (size_t i = 0; i < nh; i++)
		total += rq->headers[i].name_len;
	nghttp2_nv *nv = calloc(nh + 4, sizeof(*nv));
	char *lc = malloc(total + 1);
	if (!nv || !lc) {
		free(nv);
		free(lc);
		return -ENOMEM;
	}
	const char *auth = rq->host_hdr, *path = rq->target;
	size_t al = rq->host_hdr_len, pl = rq->target_len;
	if (rq->form == H1_FORM_ABSOLUTE) {
		auth = rq->t.host; /* (a port in the target is in host_hdr) */
		al = rq->t.host_len;
		if (rq->host_hdr) {
			auth = rq->host_hdr;
			al = rq->host_hdr_len;
		}
		path = rq->t.path_len ? rq->t.path : "/";
		pl = rq->t.path_len ? rq->t.path_len : 1;
	}
#define NV(n, v, vlen)                                                         \
	nv[k++] = (nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), strlen(n), (vlen), \
			       NGHTTP2_NV_FLAG_NONE}
	NV(":method", rq->method, rq->method_len);
	NV(":scheme", scheme, strlen(scheme));
	if (auth && al)
		NV(":authority", auth, al);
	NV(":path", path, pl);
#undef NV
	char *o = lc;
	for (size_t i = 0; i < nh; i++) {
		const struct h1_header *f = &rq->headers[i];
		if (skip_field(f->name, f->name_len, f->value, f->value_len) ||
		    h2_named_by_connection(rq->headers, nh, f->name, f->name_len))
			continue;
		h2_lower(o, f->name, f->name_len);
		nv[k++] = (nghttp2_nv){(uint8_t *)o, (uint8_t *)f->value,
				       f->name_len, f->value_len,
				       NGHTTP2_NV_FLAG_NONE};
		o += f->name_len;
	}
	nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_body};
	int32_t id = nghttp2_submit_request(c->ng, NULL, nv, k,
					    st->qb.done ? NULL : &prd, st);
	free(nv);
	free(lc);
	if (id < 0)
		return id == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPIPE;
	st->id = id;
	return 0;
}

static void resume(struct h2up *c, struct h2up_stream *st)
{
	if (st->id > 0 && !st->closed)
		h2_body_out_resume(&st->qb, c->ng, st->id);
}

ssize_t h2up_req_feed(struct h2up *c, struct h2up_stream *st,
		      const char *scheme, const char *p, size_t n)
{
	if (st->closed || c->broken)
		return -EPIPE;
	size_t used = 0;
	if (!st->req_head) {
		if (h2_buf_add(&st->rh, p, n))
			return -ENOMEM;
		struct h1_request rq;
		ssize_t hl = h1_parse_request(st->rh.p + st->rh.rd, h2_buf_len(&st->rh),
					      0, &rq, c->hdrs, REQ_MAX_HEADERS,
					      NULL);
		if (hl == 0)
			return h2_buf_len(&st->rh) > REQ_HEAD_MAX ? RC_H1_HEAD_TOO_LARGE
							      : (ssize_t)n;
		if (hl < 0)
			return hl;
		if (rq.form == H1_FORM_AUTHORITY || rq.method_len >= sizeof(st->method))
			return RC_H1_BAD_TARGET; /* no CONNECT over HTTP/2 */
		memcpy(st->method, rq.method, rq.method_len);
		st->method[rq.method_len] = 0;
		h2_body_out_init(&st->qb, rq.body, rq.content_length);
		int r = submit_request(c, st, scheme, &rq);
		if (r < 0)
			return r;
		st->req_head = true;
		used = n - (h2_buf_len(&st->rh) - (size_t)hl);
		h2_buf_free(&st->rh);
		if (st->qb.done)
			return (ssize_t)n;
	}
	ssize_t r = h2_body_out_feed(&st->qb, p + used, n - used, c->o.req_buffer);
	if (r < 0)
		return r;
	resume(c, st);
	return (ssize_t)(used + (size_t)r);
}

/* ---- streams and the connection ---- */

struct h2up_stream *h2up_open(struct h2up *c, uint64_t user)
{
	struct h2up_stream *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->user = user;
	st->next = c->streams;
	if (c->streams)
		c->streams->prev = st;
	c->streams = st;
	c->nstreams++;
	return st;
}

void h2up_stream_end(struct h2up *c, struct h2up_stream *st)
{
	if (st->id > 0 && !st->closed) {
		nghttp2_session_set_stream_user_data(c->ng, st->id, NULL);
		if (!c->broken)
			nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, st->id,
						  NGHTTP2_CANCEL);
	}
	/* bytes we never passed on still count against the connection */
	if (st->credit)
		nghttp2_session_consume_connection(c->ng, st->credit);
	unlink_room(c, st);
	if (st->prev)
		st->prev->next = st->next;
	else
		c->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	c->nstreams--;
	h2_buf_free(&st->rh);
	h2_body_out_free(&st->qb);
	h2_buf_free(&st->fields);
	h2_buf_free(&st->rtrl);
	h2_buf_free(&st->resp);
	free(st);
}

int h2up_new(struct h2up **out, const struct h2up_cb *cb, void *arg,
	     const struct h2up_opts *opts)
{
	struct h2up *c = calloc(1, sizeof(*c));
	nghttp2_session_callbacks *cbs = NULL;
	nghttp2_option *opt = NULL;
	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->cb = *cb;
	c->arg = arg;
	if (opts)
		c->o = *opts;
	if (!c->o.stream_window)
		c->o.stream_window = 256u * 1024;
	if (!c->o.req_buffer)
		c->o.req_buffer = 64u * 1024;
	if (nghttp2_session_callbacks_new(&cbs) || nghttp2_option_new(&opt))
		goto fail;
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	nghttp2_option_set_no_auto_window_update(opt, 1);
	int r = nghttp2_session_client_new2(&c->ng, cbs, c, opt);
	nghttp2_session_callbacks_del(cbs);
	nghttp2_option_del(opt);
	cbs = NULL;
	opt = NULL;
	if (r)
		goto fail;
	nghttp2_settings_entry iv[] = {
		{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
		{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, c->o.stream_window},
		{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
	};
	if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv,
				    sizeof(iv) / sizeof(iv[0])))
		goto fail;
	nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0,
					      64 << 20);
	*out = c;
	return 0;
fail:
	if (cbs)
		nghttp2_session_callbacks_del(cbs);
	if (opt)
		nghttp2_option_del(opt);
	h2up_free(c);
	return -ENOMEM;
}

void h2up_free(struct h2up *c)
{
	if (!c)
		return;
	while (c->streams) {
		struct h2up_stream *st = c->streams;
		c->streams = st->next;
		h2_buf_free(&st->rh);
		h2_body_out_free(&st->qb);
		h2_buf_free(&st->fields);
		h2_buf_free(&st->rtrl);
		h2_buf_free(&st->resp);
		free(st);
	}
	if (c->ng)
		nghttp2_session_del(c->ng);
	free(c);
}

ssize_t h2up_input(struct h2up *c, const uint8_t *p, size_t n)
{
	if (c->broken)
		return -EPROTO;
	ssize_t r = nghttp2_session_mem_recv(c->ng, p, n);
	if (r < 0) {
		c->broken = c->fatal = true;
		return r == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO;
	}
	/* Most protocol errors do not fail mem_recv: nghttp2 queues a
	 * GOAWAY, ignores the rest of the input and allows no request; the
	 * streams would wait for answers that never come. Without a GOAWAY
	 * from the server (or spent stream ids), that is the sign. */
	if (!c->goaway_recv && !nghttp2_session_check_request_allowed(c->ng) &&
	    nghttp2_session_get_next_stream_id(c->ng) <= INT32_MAX) {
		c->broken = true;
		return -EPROTO;
	}
	return r;
}

ssize_t h2up_output(struct h2up *c, uint8_t *buf, size_t cap)
{
	/* (broken but not fatal: the GOAWAY nghttp2 queued may still go) */
	ssize_t o = c->fatal ? 0 : h2_session_output(c->ng, &c->pend,
						     &c->pend_len, buf, cap);
	if (o < 0) {
		c->broken = c->fatal = true;
		return o;
	}
	while (c->room) {
		struct h2up_stream *st = c->room;
		c->room = st->room_next;
		st->room_due = false;
		if (st->user)
			c->cb.on_req_room(c->arg, st->user);
	}
	return o;
}

bool h2up_usable(const struct h2up *c)
{
	return !c->broken && nghttp2_session_want_read(c->ng) &&
	       nghttp2_session_check_request_allowed(c->ng);
}

size_t h2up_streams(const struct h2up *c) { return c->nstreams; }

void h2up_reset_all(struct h2up *c, uint32_t code)
{
	c->broken = true;
	/* The callback may end streams (this one, or others): start over
	 * after each; a stream told has no user any more. */
	for (struct h2up_stream *st = c->streams; st;) {
		if (!st->resp_end && st->user) {
			uint64_t u = st->user;
			st->user = 0;
			c->cb.on_reset(c->arg, u, code);
			st = c->streams;
			continue;
		}
		st = st->next;
	}
}
