/* SPDX-License-Identifier: MIT */
/* HTTP/1 (RFC 9112), sans-IO: the engine hands recv'd bytes to the head
 * parsers and body decoder here, and forwards what they consumed; the
 * serializers build heads the proxy sends itself. */
#include "proto/h1.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define TRAILERS_MAX (16 * 1024) /* bytes of trailer fields we skip */
#define CHUNK_LINE_MAX 4096      /* chunk-size line incl. extensions */
#define EARLY_CHECK_MAX 64       /* start-line bytes checked before the end */

/* Character classes (RFC 9110 5.6.2, 5.5, RFC 3986 3.1, 3.2.2). */
#define C_TCHAR 0x01  /* token */
#define C_FVAL 0x02   /* field value: HTAB SP VCHAR obs-text */
#define C_TARGET 0x04 /* request-target: VCHAR obs-text */
#define C_HOST 0x08   /* reg-name: unreserved pct-encoded sub-delims */
#define C_HEX 0x10
#define C_SCHEME 0x20

static const uint8_t cclass[256] = {
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x02, 0x0f, 0x06, 0x07, 0x0f, 0x0f, 0x0f, 0x0f, 0x0e, 0x0e, 0x0f, 0x2f, 0x0e, 0x2f, 0x2f, 0x06,
	0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x06, 0x0e, 0x06, 0x0e, 0x06, 0x06,
	0x06, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f,
	0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x06, 0x06, 0x06, 0x07, 0x0f,
	0x07, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f,
	0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x06, 0x07, 0x06, 0x0f, 0x00,
	[0x80 ... 0xff] = C_FVAL | C_TARGET,
};

static inline bool is(char c, uint8_t cls)
{
	return cclass[(unsigned char)c] & cls;
}

static inline bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static inline bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static int fail(size_t *err_off, const char *buf, const char *at, int code)
{
	if (err_off)
		*err_off = (size_t)(at - buf);
	return code;
}

/* Case-insensitive: does [s, s+n) equal the C string |lit|? */
static bool eq_nocase(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

static bool name_is(const struct h1_header *h, const char *lit)
{
	return eq_nocase(h->name, h->name_len, lit);
}

/* ---- Head boundaries ---- */

/* Offset just past the empty line that ends the head, searching for line
 * ends from |from|; 0 if the head is not complete. Accepts CRLF and LF. */
static size_t find_head_end(const char *buf, size_t len, size_t from)
{
	const char *p = buf + from, *end = buf + len;

	while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		p++;
		if (p < end && *p == '\n')
			return (size_t)(p + 1 - buf);
		if (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
			return (size_t)(p + 2 - buf);
	}
	return 0;
}

/* Where the search for the end of the head may start: lines that ended
 * more than 3 bytes before |last_len| were already seen not to be empty. */
static size_t search_from(size_t skip, size_t len, size_t last_len)
{
	size_t from = last_len >= 3 && last_len <= len ? last_len - 3 : 0;

	return from > skip ? from : skip;
}

/* Next line of a complete head: returns the start of the following line
 * and sets *eol to the end of this line's content (before CR LF or LF). */
static const char *next_line(const char *p, const char *end, const char **eol)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));

	*eol = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
	return nl + 1;
}

/* "HTTP/1.0" or "HTTP/1.1" in [p, end). Anything else beginning "HTTP/" is
 * an unsupported version; anything else is not HTTP at all. */
static int parse_version(const char *buf, const char *p, const char *end,
			 int *minor, size_t *err_off)
{
	if (end - p < 5 || memcmp(p, "HTTP/", 5) != 0)
		return fail(err_off, buf, p, RC_H1_SYNTAX);
	if (end - p != 8 || p[5] != '1' || p[6] != '.' ||
	    (p[7] != '0' && p[7] != '1'))
		return fail(err_off, buf, p, RC_H1_BAD_VERSION);
	*minor = p[7] - '0';
	return 0;
}

/* ---- Fields ---- */

/* Parse field lines from |p| up to the empty line ending at |end|. */
static int parse_fields(const char *buf, const char *p, const char *end,
			struct h1_header *headers, size_t max_headers,
			size_t *num_headers, size_t *err_off)
{
	size_t n = 0;

	for (;;) {
		const char *line = p, *eol, *q, *v, *ve;

		p = next_line(p, end, &eol);
		if (eol == line)
			break;
		if (n == max_headers)
			return fail(err_off, buf, line, RC_H1_TOO_MANY_HEADERS);
		/* Leading whitespace (obs-fold), whitespace before the colon
		 * and an empty name all fail here. */
		for (q = line; q < eol && is(*q, C_TCHAR); q++)
			;
		if (q == line || q == eol || *q != ':')
			return fail(err_off, buf, q, RC_H1_SYNTAX);
		for (v = q + 1; v < eol && is_ows(*v); v++)
			;
		for (ve = v; ve < eol; ve++)
			if (!is(*ve, C_FVAL))
				return fail(err_off, buf, ve, RC_H1_SYNTAX);
		while (ve > v && is_ows(ve[-1]))
			ve--;
		headers[n].name = line;
		headers[n].name_len = (size_t)(q - line);
		headers[n].value = v;
		headers[n].value_len = (size_t)(ve - v);
		n++;
	}
	*num_headers = n;
	return 0;
}

/* Calls |fn| for each non-empty element of a comma-separated list, trimmed
 * of whitespace; stops at the first non-zero return. */
static int for_each_elem(const char *s, size_t n,
			 int (*fn)(const char *e, size_t len, void *arg),
			 void *arg)
{
	const char *end = s + n;

	while (s < end) {
		const char *e = memchr(s, ',', (size_t)(end - s));
		const char *a = s, *b = e ? e : end;
		int rc;

		s = e ? e + 1 : end;
		while (a < b && is_ows(*a))
			a++;
		while (b > a && is_ows(b[-1]))
			b--;
		if (a < b && (rc = fn(a, (size_t)(b - a), arg)) != 0)
			return rc;
	}
	return 0;
}

struct framing {
	bool has_cl;
	uint64_t cl;
	const struct h1_header *te; /* last Transfer-Encoding field */
	int codings;                /* transfer codings seen */
	bool chunked_last;          /* the last coding is chunked */
	bool after_chunked;         /* a coding follows chunked */
	bool conn_close, conn_keep_alive;
	bool expect_continue;
	const struct h1_header *host;
};

/* Content-Length: a list of digits; repeats (fields or list elements) must
 * have the same value (RFC 9110 8.6). */
static int scan_content_length(struct framing *f, const struct h1_header *h)
{
	const char *p = h->value, *end = p + h->value_len, *d;

	for (;;) {
		uint64_t v = 0;

		for (d = p; p < end && is_digit(*p); p++) {
			unsigned dig = (unsigned)(*p - '0');

			if (v > (UINT64_MAX - dig) / 10)
				return -1;
			v = v * 10 + dig;
		}
		if (p == d || (f->has_cl && f->cl != v))
			return -1;
		f->has_cl = true;
		f->cl = v;
		while (p < end && is_ows(*p))
			p++;
		if (p == end)
			return 0;
		if (*p++ != ',')
			return -1;
		while (p < end && is_ows(*p))
			p++;
	}
}

static int te_elem(const char *e, size_t len, void *arg)
{
	struct framing *f = arg;

	if (f->chunked_last)
		f->after_chunked = true;
	f->chunked_last = eq_nocase(e, len, "chunked");
	f->codings++;
	return 0;
}

static int conn_elem(const char *e, size_t len, void *arg)
{
	struct framing *f = arg;

	if (eq_nocase(e, len, "close"))
		f->conn_close = true;
	else if (eq_nocase(e, len, "keep-alive"))
		f->conn_keep_alive = true;
	return 0;
}

/* One pass over the fields for what frames and steers the message. */
static int scan_fields(const char *buf, const struct h1_header *hs, size_t n,
		       struct framing *f, size_t *err_off)
{
	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < n; i++) {
		const struct h1_header *h = &hs[i];

		if (name_is(h, "content-length")) {
			if (scan_content_length(f, h) != 0)
				return fail(err_off, buf, h->value,
					    RC_H1_BAD_CONTENT_LENGTH);
		} else if (name_is(h, "transfer-encoding")) {
			f->te = h;
			for_each_elem(h->value, h->value_len, te_elem, f);
		} else if (name_is(h, "connection")) {
			for_each_elem(h->value, h->value_len, conn_elem, f);
		} else if (name_is(h, "expect")) {
			if (eq_nocase(h->value, h->value_len, "100-continue"))
				f->expect_continue = true;
		} else if (name_is(h, "host")) {
			if (f->host)
				return fail(err_off, buf, h->name,
					    RC_H1_SYNTAX);
			f->host = h;
		}
	}
	return 0;
}

static bool te_is_chunked(const struct framing *f)
{
	return f->te && f->chunked_last && !f->after_chunked;
}

static bool keep_alive(const struct framing *f, int minor)
{
	if (f->conn_close)
		return false;
	return minor >= 1 || f->conn_keep_alive;
}

/* ---- Request target ---- */

/* host[:port] in [a, e): reg-name, IPv4 or [IPv6]; port 1..65535. */
static int parse_authority(const char *buf, const char *a, const char *e,
			   struct h1_target *t, bool need_port, size_t *err_off)
{
	const char *q = a;

	if (q < e && *q == '[') {
		const char *h = ++q;

		while (q < e && (is(*q, C_HEX) || *q == ':' || *q == '.'))
			q++;
		if (q == h || q == e || *q != ']')
			return fail(err_off, buf, q, RC_H1_BAD_TARGET);
		t->host = h;
		t->host_len = (size_t)(q - h);
		q++;
	} else {
		while (q < e && is(*q, C_HOST))
			q++;
		if (q == a)
			return fail(err_off, buf, q, RC_H1_BAD_TARGET);
		t->host = a;
		t->host_len = (size_t)(q - a);
	}
	if (q < e && *q == ':') {
		const char *d = ++q;
		unsigned port = 0;

		for (; q < e && is_digit(*q); q++) {
			port = port * 10 + (unsigned)(*q - '0');
			if (port > 65535)
				return fail(err_off, buf, q, RC_H1_BAD_TARGET);
		}
		if (q > d && port == 0)
			return fail(err_off, buf, d, RC_H1_BAD_TARGET);
		t->port = (uint16_t)port;
	}
	if (need_port && t->port == 0)
		return fail(err_off, buf, q, RC_H1_BAD_TARGET);
	if (q != e) /* userinfo, a fragment, junk */
		return fail(err_off, buf, q, RC_H1_BAD_TARGET);
	return 0;
}

/* scheme "://" authority [path-abempty] ["?" query]. The path is whatever
 * follows the authority: empty, "/...", or "?query". */
static int parse_absolute(const char *buf, const char *p, const char *end,
			  struct h1_target *t, size_t *err_off)
{
	const char *q = p, *a;

	if (!((*q | 0x20) >= 'a' && (*q | 0x20) <= 'z'))
		return fail(err_off, buf, q, RC_H1_BAD_TARGET);
	while (q < end && is(*q, C_SCHEME))
		q++;
	if (end - q < 3 || memcmp(q, "://", 3) != 0)
		return fail(err_off, buf, q, RC_H1_BAD_TARGET);
	t->scheme = p;
	t->scheme_len = (size_t)(q - p);
	a = q += 3;
	while (q < end && *q != '/' && *q != '?')
		q++;
	t->path = q;
	t->path_len = (size_t)(end - q);
	return parse_authority(buf, a, q, t, false, err_off);
}

static int parse_target(const char *buf, struct h1_request *req,
			size_t *err_off)
{
	const char *p = req->target, *end = p + req->target_len;
	struct h1_target *t = &req->t;

	memset(t, 0, sizeof(*t));
	t->scheme = t->host = t->path = p;
	if (req->method_len == 7 && memcmp(req->method, "CONNECT", 7) == 0) {
		req->form = H1_FORM_AUTHORITY;
		return parse_authority(buf, p, end, t, true, err_off);
	}
	if (*p == '/') {
		req->form = H1_FORM_ORIGIN;
		t->path_len = req->target_len;
		return 0;
	}
	if (*p == '*' && req->target_len == 1) {
		if (req->method_len != 7 || memcmp(req->method, "OPTIONS", 7))
			return fail(err_off, buf, p, RC_H1_BAD_TARGET);
		req->form = H1_FORM_ASTERISK;
		t->path_len = 1;
		return 0;
	}
	req->form = H1_FORM_ABSOLUTE;
	return parse_absolute(buf, p, end, t, err_off);
}

/* ---- Request head ---- */

/* While the head is incomplete, look at the start of the request line so
 * that a peer speaking something else is refused at once. */
static int early_check_request(const char *buf, size_t len, size_t skip,
			       size_t *err_off)
{
	size_t lim = len - skip > EARLY_CHECK_MAX ? skip + EARLY_CHECK_MAX : len;

	for (size_t i = skip; i < lim; i++) {
		if (buf[i] == ' ' && i > skip)
			return 0;
		if (!is(buf[i], C_TCHAR))
			return fail(err_off, buf, buf + i, RC_H1_SYNTAX);
	}
	return 0;
}

static int parse_request_line(const char *buf, const char *p, const char *eol,
			      struct h1_request *req, size_t *err_off)
{
	const char *q = p, *t;
	int rc;

	while (q < eol && is(*q, C_TCHAR))
		q++;
	if (q == p || q == eol || *q != ' ')
		return fail(err_off, buf, q, RC_H1_SYNTAX);
	req->method = p;
	req->method_len = (size_t)(q - p);
	t = ++q;
	while (q < eol && is(*q, C_TARGET))
		q++;
	if (q == t || q == eol || *q != ' ')
		return fail(err_off, buf, q, RC_H1_SYNTAX);
	req->target = t;
	req->target_len = (size_t)(q - t);
	rc = parse_version(buf, q + 1, eol, &req->version_minor, err_off);
	if (rc)
		return rc;
	return parse_target(buf, req, err_off);
}

static int request_framing(const char *buf, struct h1_request *req,
			   size_t *err_off)
{
	struct framing f;
	int rc = scan_fields(buf, req->headers, req->num_headers, &f, err_off);

	if (rc)
		return rc;
	if (f.te) {
		/* TE with CL is smuggling bait; TE in 1.0 is faulty framing
		 * (RFC 9112 6.1, 6.3). */
		if (f.has_cl || req->version_minor == 0)
			return fail(err_off, buf, f.te->name, RC_H1_SYNTAX);
		if (!te_is_chunked(&f))
			return fail(err_off, buf, f.te->value,
				    RC_H1_BAD_TRANSFER_ENCODING);
		req->body = H1_BODY_CHUNKED;
	} else if (f.has_cl) {
		req->body = H1_BODY_LENGTH;
		req->content_length = f.cl;
	} else {
		req->body = H1_BODY_NONE;
	}
	req->keep_alive = keep_alive(&f, req->version_minor);
	req->expect_continue = f.expect_continue && req->version_minor >= 1;
	if (f.host) {
		req->host_hdr = f.host->value;
		req->host_hdr_len = f.host->value_len;
	}
	return 0;
}

ssize_t h1_parse_request(const char *buf, size_t len, size_t last_len,
			 struct h1_request *req, struct h1_header *headers,
			 size_t max_headers, size_t *err_off)
{
	const char *p, *eol, *end;
	size_t skip = 0, head_len;
	int rc;

	memset(req, 0, sizeof(*req));
	req->headers = headers;
	/* One empty line before the request line is ignored (RFC 9112 2.2:
	 * some clients send CRLF after a POST body). */
	if (len > 0 && buf[0] == '\n') {
		skip = 1;
	} else if (len > 0 && buf[0] == '\r') {
		if (len < 2)
			return 0;
		if (buf[1] != '\n')
			return fail(err_off, buf, buf, RC_H1_SYNTAX);
		skip = 2;
	}
	head_len = find_head_end(buf, len, search_from(skip, len, last_len));
	if (head_len == 0)
		return early_check_request(buf, len, skip, err_off);

	end = buf + head_len;
	p = next_line(buf + skip, end, &eol);
	rc = parse_request_line(buf, buf + skip, eol, req, err_off);
	if (!rc)
		rc = parse_fields(buf, p, end, headers, max_headers,
				  &req->num_headers, err_off);
	if (!rc)
		rc = request_framing(buf, req, err_off);
	return rc ? rc : (ssize_t)head_len;
}

/* ---- Response head ---- */

static int parse_status_line(const char *buf, const char *p, const char *eol,
			     struct h1_response *resp, size_t *err_off)
{
	const char *q = memchr(p, ' ', (size_t)(eol - p));
	int rc;

	rc = parse_version(buf, p, q ? q : eol, &resp->version_minor, err_off);
	if (rc)
		return rc;
	if (!q || eol - ++q < 3)
		return fail(err_off, buf, q ? q : eol, RC_H1_SYNTAX);
	for (int i = 0; i < 3; i++, q++) {
		if (!is_digit(*q))
			return fail(err_off, buf, q, RC_H1_SYNTAX);
		resp->status = resp->status * 10 + (*q - '0');
	}
	if (resp->status < 100)
		return fail(err_off, buf, q - 3, RC_H1_SYNTAX);
	/* The SP before an empty reason is often left out: accept that. */
	if (q < eol && *q++ != ' ')
		return fail(err_off, buf, q - 1, RC_H1_SYNTAX);
	resp->reason = q;
	resp->reason_len = (size_t)(eol - q);
	for (; q < eol; q++)
		if (!is(*q, C_FVAL))
			return fail(err_off, buf, q, RC_H1_SYNTAX);
	return 0;
}

static int response_framing(const char *buf, struct h1_response *resp,
			    size_t *err_off)
{
	struct framing f;
	int rc = scan_fields(buf, resp->headers, resp->num_headers, &f,
			     err_off);

	if (rc)
		return rc;
	resp->keep_alive = keep_alive(&f, resp->version_minor);
	if (f.te) {
		/* TE overrides CL; TE in 1.0 or not ending in chunked means
		 * the body runs to the close. Either way, do not reuse. */
		resp->chunked = te_is_chunked(&f) && resp->version_minor >= 1;
		if (f.has_cl || !resp->chunked)
			resp->keep_alive = false;
	} else if (f.has_cl) {
		resp->has_content_length = true;
		resp->content_length = f.cl;
	}
	return 0;
}

ssize_t h1_parse_response(const char *buf, size_t len, size_t last_len,
			  struct h1_response *resp, struct h1_header *headers,
			  size_t max_headers, size_t *err_off)
{
	const char *p, *eol, *end;
	size_t head_len;
	int rc;

	memset(resp, 0, sizeof(*resp));
	resp->headers = headers;
	head_len = find_head_end(buf, len, search_from(0, len, last_len));
	if (head_len == 0) {
		size_t n = len < 5 ? len : 5;

		if (memcmp(buf, "HTTP/", n) != 0)
			return fail(err_off, buf, buf, RC_H1_SYNTAX);
		return 0;
	}
	end = buf + head_len;
	p = next_line(buf, end, &eol);
	rc = parse_status_line(buf, buf, eol, resp, err_off);
	if (!rc)
		rc = parse_fields(buf, p, end, headers, max_headers,
				  &resp->num_headers, err_off);
	if (!rc)
		rc = response_framing(buf, resp, err_off);
	return rc ? rc : (ssize_t)head_len;
}

enum h1_body_kind h1_response_body_kind(const struct h1_response *resp,
					const char *req_method,
					size_t req_method_len)
{
	int s = resp->status;

	if (req_method_len == 4 && memcmp(req_method, "HEAD", 4) == 0)
		return H1_BODY_NONE;
	if (req_method_len == 7 && memcmp(req_method, "CONNECT", 7) == 0 &&
	    s >= 200 && s < 300)
		return H1_BODY_NONE;
	if (s < 200 || s == 204 || s == 304)
		return H1_BODY_NONE;
	if (resp->chunked)
		return H1_BODY_CHUNKED;
	if (resp->has_content_length)
		return H1_BODY_LENGTH;
	return H1_BODY_CLOSE;
}

const struct h1_header *h1_find_header(const struct h1_header *headers,
				       size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (name_is(&headers[i], name))
			return &headers[i];
	return NULL;
}

/* ---- Body decoder ---- */

enum chunk_state {
	CH_SIZE,        /* hex digits */
	CH_SIZE_WS,     /* BWS after the size, before ';' */
	CH_EXT,         /* chunk extensions, skipped */
	CH_SIZE_LF,     /* the LF ending the size line */
	CH_DATA,        /* chunk payload */
	CH_DATA_CR,     /* CR LF after the payload */
	CH_DATA_LF,
	CH_TRAILER_BOL, /* start of a trailer line or the final CRLF */
	CH_TRAILER,     /* inside a trailer line */
	CH_TRAILER_LF,
	CH_END_LF,      /* the LF of the final CRLF */
	CH_FAILED,
};

void h1_body_init(struct h1_body *b, enum h1_body_kind kind,
		  uint64_t content_length)
{
	memset(b, 0, sizeof(*b));
	b->kind = kind;
	b->state = CH_SIZE;
	if (kind == H1_BODY_LENGTH)
		b->remaining = content_length;
	b->done = kind == H1_BODY_NONE ||
		  (kind == H1_BODY_LENGTH && content_length == 0);
}

/* One framing byte of a chunked body: the next state, or a negative code. */
static int chunk_byte(struct h1_body *b, char c)
{
	unsigned d;

	switch (b->state) {
	case CH_SIZE:
		if (is(c, C_HEX)) {
			d = (unsigned)(is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
			if (b->remaining > (UINT64_MAX >> 4))
				return RC_H1_BAD_CHUNK;
			b->remaining = b->remaining << 4 | d;
			return CH_SIZE;
		}
		if (b->line_len == 1) /* no digit at all */
			return RC_H1_BAD_CHUNK;
		/* fall through */
	case CH_SIZE_WS:
		if (is_ows(c))
			return CH_SIZE_WS;
		if (c == ';')
			return CH_EXT;
		if (c == '\r' && b->state == CH_SIZE)
			return CH_SIZE_LF;
		return RC_H1_BAD_CHUNK;
	case CH_EXT:
		if (c == '\r')
			return CH_SIZE_LF;
		return is(c, C_FVAL) ? CH_EXT : RC_H1_BAD_CHUNK;
	case CH_SIZE_LF:
		if (c != '\n')
			return RC_H1_BAD_CHUNK;
		b->line_len = 0;
		return b->remaining ? CH_DATA : CH_TRAILER_BOL;
	case CH_DATA_CR:
		return c == '\r' ? CH_DATA_LF : RC_H1_BAD_CHUNK;
	case CH_DATA_LF:
		return c == '\n' ? CH_SIZE : RC_H1_BAD_CHUNK;
	case CH_TRAILER_BOL:
		if (c == '\r')
			return CH_END_LF;
		return is(c, C_TCHAR) ? CH_TRAILER : RC_H1_BAD_CHUNK;
	case CH_TRAILER:
		if (c == '\r')
			return CH_TRAILER_LF;
		return is(c, C_FVAL) ? CH_TRAILER : RC_H1_BAD_CHUNK;
	case CH_TRAILER_LF:
		return c == '\n' ? CH_TRAILER_BOL : RC_H1_BAD_CHUNK;
	case CH_END_LF:
		if (c != '\n')
			return RC_H1_BAD_CHUNK;
		b->done = true;
		return CH_END_LF;
	default:
		return RC_H1_BAD_CHUNK;
	}
}

static ssize_t chunked_parse(struct h1_body *b, const char *buf, size_t len,
			     const char **data, size_t *data_len)
{
	size_t i = 0;
	int st;

	while (i < len && !b->done) {
		if (b->state == CH_DATA) {
			size_t n = len - i;

			if (*data) /* one span per call */
				break;
			if (n > b->remaining)
				n = (size_t)b->remaining;
			*data = buf + i;
			*data_len = n;
			b->remaining -= n;
			b->total += n;
			i += n;
			if (b->remaining == 0)
				b->state = CH_DATA_CR;
			continue;
		}
		if (b->state >= CH_TRAILER_BOL && b->state <= CH_END_LF &&
		    ++b->trailer_bytes > TRAILERS_MAX) {
			b->state = CH_FAILED;
			return RC_H1_TRAILERS_TOO_LARGE;
		}
		if (b->state <= CH_EXT && ++b->line_len > CHUNK_LINE_MAX)
			st = RC_H1_BAD_CHUNK;
		else
			st = chunk_byte(b, buf[i]);
		if (st < 0) {
			b->state = CH_FAILED;
			return st;
		}
		b->state = st;
		i++;
		if (st == CH_TRAILER_BOL && b->stop_at_trailers &&
		    b->trailer_bytes == 0)
			break; /* the caller takes the trailers */
	}
	return (ssize_t)i;
}

bool h1_body_in_trailers(const struct h1_body *b)
{
	return b->kind == H1_BODY_CHUNKED && !b->done &&
	       b->state >= CH_TRAILER_BOL && b->state <= CH_END_LF;
}

ssize_t h1_body_parse(struct h1_body *b, const char *buf, size_t len,
		      const char **data, size_t *data_len)
{
	size_t n;

	*data = NULL;
	*data_len = 0;
	if (b->done || len == 0)
		return 0;
	switch (b->kind) {
	case H1_BODY_LENGTH:
		n = len < b->remaining ? len : (size_t)b->remaining;
		b->remaining -= n;
		b->done = b->remaining == 0;
		break;
	case H1_BODY_CHUNKED:
		if (b->state == CH_FAILED)
			return RC_H1_BAD_CHUNK;
		return chunked_parse(b, buf, len, data, data_len);
	case H1_BODY_CLOSE:
		n = len;
		break;
	default:
		return 0;
	}
	*data = buf;
	*data_len = n;
	b->total += n;
	return (ssize_t)n;
}

int h1_body_eof(struct h1_body *b)
{
	if (b->done)
		return 0;
	switch (b->kind) {
	case H1_BODY_CLOSE:
		b->done = true;
		return 0;
	case H1_BODY_CHUNKED:
		return RC_H1_BAD_CHUNK;
	default:
		return RC_H1_SYNTAX;
	}
}

/* ---- Serializers ---- */

struct out {
	char *p;
	size_t cap, len;
	bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->full || o->cap - o->len < n) {
		o->full = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void put_str(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void put_header(struct out *o, const struct h1_header *h)
{
	put(o, h->name, h->name_len);
	put(o, ": ", 2);
	put(o, h->value, h->value_len);
	put(o, "\r\n", 2);
}

static bool skipped(const struct h1_header *h, const char *const *skip)
{
	for (; skip && *skip; skip++)
		if (name_is(h, *skip))
			return true;
	return false;
}

ssize_t h1_write_request_head(char *out, size_t cap, const char *method,
			      size_t method_len, const char *target,
			      size_t target_len, int version_minor,
			      const struct h1_header *headers, size_t n,
			      const char *const *skip,
			      const struct h1_header *extra, size_t n_extra)
{
	struct out o = { .p = out, .cap = cap };

	put(&o, method, method_len);
	put(&o, " ", 1);
	put(&o, target, target_len);
	put_str(&o, version_minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
	for (size_t i = 0; i < n; i++)
		if (!skipped(&headers[i], skip))
			put_header(&o, &headers[i]);
	for (size_t i = 0; i < n_extra; i++)
		put_header(&o, &extra[i]);
	put(&o, "\r\n", 2);
	return o.full ? -ENOSPC : (ssize_t)o.len;
}

ssize_t h1_write_error_response(char *out, size_t cap, int status,
				const char *body)
{
	size_t body_len = strlen(body);
	int n;

	if (status < 100 || status > 999)
		status = 500;
	n = snprintf(out, cap,
		     "HTTP/1.1 %d %s\r\n"
		     "Content-Type: text/plain\r\n"
		     "Content-Length: %zu\r\n"
		     "Connection: close\r\n"
		     "\r\n",
		     status, h1_reason(status), body_len);
	if (n < 0 || (size_t)n >= cap || cap - (size_t)n < body_len)
		return -ENOSPC;
	memcpy(out + n, body, body_len);
	return (ssize_t)((size_t)n + body_len);
}

const char *h1_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 102: return "Processing";
	case 103: return "Early Hints";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 203: return "Non-Authoritative Information";
	case 204: return "No Content";
	case 205: return "Reset Content";
	case 206: return "Partial Content";
	case 207: return "Multi-Status";
	case 208: return "Already Reported";
	case 226: return "IM Used";
	case 300: return "Multiple Choices";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 305: return "Use Proxy";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 407: return "Proxy Authentication Required";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 418: return "I'm a teapot";
	case 421: return "Misdirected Request";
	case 422: return "Unprocessable Content";
	case 423: return "Locked";
	case 424: return "Failed Dependency";
	case 425: return "Too Early";
	case 426: return "Upgrade Required";
	case 428: return "Precondition Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 451: return "Unavailable For Legal Reasons";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	case 506: return "Variant Also Negotiates";
	case 507: return "Insufficient Storage";
	case 508: return "Loop Detected";
	case 511: return "Network Authentication Required";
	default: return "";
	}
}

const char *h1_target_form_str(enum h1_target_form form)
{
	static const char *const names[H1_FORM_COUNT] = {
		[H1_FORM_ORIGIN] = "origin",
		[H1_FORM_ABSOLUTE] = "absolute",
		[H1_FORM_AUTHORITY] = "authority",
		[H1_FORM_ASTERISK] = "asterisk",
	};

	return (unsigned)form < H1_FORM_COUNT ? names[form] : "?";
}

const char *h1_body_kind_str(enum h1_body_kind kind)
{
	static const char *const names[H1_BODY_KIND_COUNT] = {
		[H1_BODY_NONE] = "none",
		[H1_BODY_LENGTH] = "length",
		[H1_BODY_CHUNKED] = "chunked",
		[H1_BODY_CLOSE] = "close",
	};

	return (unsigned)kind < H1_BODY_KIND_COUNT ? names[kind] : "?";
}
