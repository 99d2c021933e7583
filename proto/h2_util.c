/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/h2_util.h"


int h2_buf_add(struct h2_buf *b, const void *d, size_t n)
{
	if (!n)
		return 0;
	if (b->rd && b->rd == b->wr)
		b->rd = b->wr = 0;
	if (b->wr + n > b->cap) {
		if (b->rd) { /* compact first */
			memmove(b->p, b->p + b->rd, b->wr - b->rd);
			b->wr -= b->rd;
			b->rd = 0;
		}
		if (b->wr + n > b->cap) {
			size_t nc = b->cap ? b->cap : 512;
			while (nc < b->wr + n)
				nc *= 2;
			char *np = realloc(b->p, nc);
			if (!np)
				return -ENOMEM;
			b->p = np;
			b->cap = nc;
		}
	}
	memcpy(b->p + b->wr, d, n);
	b->wr += n;
	return 0;
}

int h2_buf_str(struct h2_buf *b, const char *s)
{
	return h2_buf_add(b, s, strlen(s));
}

void h2_buf_free(struct h2_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void h2_lower(char *dst, const char *src, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char ch = src[i];
		dst[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
	}
}

bool h2_hop_by_hop(const char *n, size_t nl)
{
	static const char *const hop[] = {"connection", "keep-alive",
					  "proxy-connection", "transfer-encoding",
					  "upgrade", "te", NULL};
	for (size_t i = 0; hop[i]; i++)
		if (nl == strlen(hop[i]) && !strncasecmp(n, hop[i], nl))
			return true;
	return false;
}

bool h2_named_by_connection(const struct h1_header *hs, size_t nh,
			    const char *n, size_t nl)
{
	for (size_t i = 0; i < nh; i++) {
		if (hs[i].name_len != 10 ||
		    strncasecmp(hs[i].name, "connection", 10))
			continue;
		const char *v = hs[i].value, *e = v + hs[i].value_len;
		while (v < e) {
			while (v < e && (*v == ',' || *v == ' ' || *v == '\t'))
				v++;
			const char *t = v;
			while (v < e && *v != ',' && *v != ' ' && *v != '\t')
				v++;
			if ((size_t)(v - t) == nl && nl && !strncasecmp(t, n, nl))
				return true;
		}
	}
	return false;
}

int h2_submit_trailer_section(nghttp2_session *ng, int32_t sid,
			      const char *raw, size_t n,
			      struct h1_header *scratch, size_t max)
{
	if (!raw || n <= 2)
		return 1;
	/* the section parsed as a head behind a made-up status line */
	static const char fake[] = "HTTP/1.1 200 T\r\n";
	size_t fl = sizeof(fake) - 1;
	char *h = malloc(fl + n);
	if (!h)
		return -ENOMEM;
	memcpy(h, fake, fl);
	memcpy(h + fl, raw, n);
	struct h1_response rp;
	ssize_t hl = h1_parse_response(h, fl + n, 0, &rp, scratch, max, NULL);
	nghttp2_nv *nv = hl > 0 && rp.num_headers
		? calloc(rp.num_headers, sizeof(*nv)) : NULL;
	char *lc = nv ? malloc(n) : NULL;
	int r = 1;
	if (nv && lc) {
		size_t o = 0, k = 0;
		for (size_t i = 0; i < rp.num_headers; i++) {
			const struct h1_header *f = &rp.headers[i];
			if (h2_hop_by_hop(f->name, f->name_len) ||
			    h2_named_by_connection(rp.headers, rp.num_headers,
						   f->name, f->name_len))
				continue;
			h2_lower(lc + o, f->name, f->name_len);
			nv[k++] = (nghttp2_nv){(uint8_t *)lc + o,
					       (uint8_t *)f->value, f->name_len,
					       f->value_len, NGHTTP2_NV_FLAG_NONE};
			o += f->name_len;
		}
		/* nghttp2 copies the fields */
		if (k)
			r = nghttp2_submit_trailer(ng, sid, nv, k) == 0 ? 0 : -EPROTO;
	} else if (hl > 0 && rp.num_headers) {
		r = -ENOMEM;
	}
	free(lc);
	free(nv);
	free(h);
	return r;
}

#define TRAILER_MAX (16u * 1024) /* h1 refuses bigger sections anyway */

void h2_body_out_init(struct h2_body_out *o, enum h1_body_kind kind,
		      uint64_t content_length)
{
	h2_body_out_free(o);
	h1_body_init(&o->b, kind, content_length);
	o->b.stop_at_trailers = true; /* kept in |trl| */
	o->done = o->b.done;
	o->deferred = false;
}

void h2_body_out_free(struct h2_body_out *o)
{
	h2_buf_free(&o->out);
	h2_buf_free(&o->trl);
}

ssize_t h2_body_out_feed(struct h2_body_out *o, const char *p, size_t n,
			 size_t cap)
{
	size_t used = 0;
	while (used < n && !o->done) {
		const char *d;
		size_t dl;
		if (h1_body_in_trailers(&o->b)) {
			/* one byte at a time: the trailer section is kept */
			ssize_t r = h1_body_parse(&o->b, p + used, 1, &d, &dl);
			if (r < 0)
				return r;
			if (h2_buf_len(&o->trl) < TRAILER_MAX &&
			    h2_buf_add(&o->trl, p + used, 1))
				return -ENOMEM;
			used += (size_t)r;
			o->done = o->b.done;
			continue;
		}
		size_t have = h2_buf_len(&o->out);
		if (have >= cap)
			break;
		size_t take = n - used;
		if (take > cap - have)
			take = cap - have;
		ssize_t r = h1_body_parse(&o->b, p + used, take, &d, &dl);
		if (r < 0)
			return r;
		if (dl && h2_buf_add(&o->out, d, dl))
			return -ENOMEM;
		used += (size_t)r;
		o->done = o->b.done;
		if (r == 0)
			break;
	}
	if (o->done) {
		/* only the final CRLF: no trailer fields */
		if (h2_buf_len(&o->trl) <= 2)
			h2_buf_free(&o->trl);
		used = n; /* nothing follows a finished message */
	}
	return (ssize_t)used;
}

ssize_t h2_body_out_read(struct h2_body_out *o, nghttp2_session *ng,
			 int32_t sid, uint8_t *buf, size_t len,
			 uint32_t *flags, struct h1_header *scratch, size_t max)
{
	size_t avail = h2_buf_len(&o->out);
	size_t n = avail < len ? avail : len;
	if (n) {
		memcpy(buf, o->out.p + o->out.rd, n);
		o->out.rd += n;
	}
	if (o->done && !h2_buf_len(&o->out)) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (h2_buf_len(&o->trl) &&
		    h2_submit_trailer_section(ng, sid, o->trl.p + o->trl.rd,
					      h2_buf_len(&o->trl), scratch,
					      max) == 0)
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		h2_buf_free(&o->trl);
	} else if (!n) {
		o->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	return (ssize_t)n;
}

void h2_body_out_resume(struct h2_body_out *o, nghttp2_session *ng,
			int32_t sid)
{
	if (o->deferred && (h2_buf_len(&o->out) || o->done)) {
		o->deferred = false;
		nghttp2_session_resume_data(ng, sid);
	}
}

int h2_body_in_data(struct h2_buf *dst, bool chunked, const void *d, size_t n)
{
	if (!chunked)
		return h2_buf_add(dst, d, n);
	char sz[24];
	snprintf(sz, sizeof(sz), "%zx\r\n", n);
	int r = h2_buf_str(dst, sz);
	r |= h2_buf_add(dst, d, n);
	r |= h2_buf_str(dst, "\r\n");
	return r ? -ENOMEM : 0;
}

int h2_body_in_end(struct h2_buf *dst, bool chunked,
		   struct h2_buf *trailer_lines)
{
	int r = 0;
	if (chunked) {
		r |= h2_buf_str(dst, "0\r\n");
		if (h2_buf_len(trailer_lines))
			r |= h2_buf_add(dst, trailer_lines->p + trailer_lines->rd,
					h2_buf_len(trailer_lines));
		r |= h2_buf_str(dst, "\r\n");
	}
	h2_buf_free(trailer_lines);
	return r ? -ENOMEM : 0;
}

ssize_t h2_session_output(nghttp2_session *ng, const uint8_t **pend,
			  size_t *pend_len, uint8_t *buf, size_t cap)
{
	size_t o = 0;
	while (o < cap) {
		if (!*pend_len) {
			ssize_t r = nghttp2_session_mem_send(ng, pend);
			if (r < 0)
				return -EPROTO;
			if (r == 0)
				break;
			*pend_len = (size_t)r;
		}
		size_t take = *pend_len < cap - o ? *pend_len : cap - o;
		memcpy(buf + o, *pend, take);
		*pend += take;
		*pend_len -= take;
		o += take;
	}
	return (ssize_t)o;
}
