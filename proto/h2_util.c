/* SPDX-License-Identifier: MIT */
#include <errno.h>
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
