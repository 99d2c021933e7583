/* SPDX-License-Identifier: MIT */
/* `ringcap export --har`: flow records as HAR 1.2 entries (the spec at
 * http://www.softwareishard.com/blog/har-12-spec/), written as they are
 * read so a log of any size exports in constant memory. See sink/export.h
 * for what becomes of error and tcp flows. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sink/export.h"
#include "sink/json_out.h"

/* ---- JSON output -------------------------------------------------------- */

static bool is_utf8(const void *s, size_t n)
{
	const unsigned char *p = s;

	for (size_t i = 0; i < n;) {
		size_t k = json_utf8_len(p + i, n - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

/* The inside of a JSON string. Well-formed UTF-8 is kept; a byte that is
 * not part of it becomes \u00XX, as in `ringcap read --json` (FLOWLOG.md). */
static void jraw(FILE *out, const void *s, size_t n)
{
	json_escape(out, s, n);
}

static void jstr(FILE *out, const void *s, size_t n)
{
	fputc('"', out);
	jraw(out, s, n);
	fputc('"', out);
}

static void jrc(FILE *out, struct rc_str s)
{
	jstr(out, s.p, s.n);
}

static void jcstr(FILE *out, const char *s)
{
	jstr(out, s, strlen(s));
}

/* "name":"value" for a header, a cookie, a query parameter. */
static void jpair(FILE *out, const void *name, size_t nn, const void *value,
		  size_t vn)
{
	fputs("{\"name\":", out);
	jstr(out, name, nn);
	fputs(",\"value\":", out);
	jstr(out, value, vn);
	fputc('}', out);
}

/* Milliseconds, to the microsecond our timestamps hold. */
static void jms(FILE *out, double ms)
{
	if (!isfinite(ms))
		ms = -1;
	if (ms < 0 && ms != -1)
		ms = 0;
	fprintf(out, "%.3f", ms);
}

/* ISO 8601 in UTC with milliseconds: 2024-05-01T12:34:56.789Z. */
static void jdate(FILE *out, double ts)
{
	long long ms = isfinite(ts) && ts > 0 ? (long long)(ts * 1000.0 + 0.5) : 0;
	time_t sec = (time_t)(ms / 1000);
	struct tm tm;
	char buf[40];

	gmtime_r(&sec, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(out, "\"%s.%03lldZ\"", buf, ms % 1000);
}

/* ---- Small parsers over recorded bytes ---------------------------------- */

static const struct flow_header *find_header(const struct flow_header *h,
					     uint32_t n, const char *name)
{
	size_t len = strlen(name);

	for (uint32_t i = 0; h && i < n; i++)
		if (h[i].name.n == len && !strncasecmp(h[i].name.p, name, len))
			return &h[i];
	return NULL;
}

static bool name_is(struct rc_str s, const char *name)
{
	return s.n == strlen(name) && !strncasecmp(s.p, name, s.n);
}

static struct rc_str trim(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	return (struct rc_str){p, (uint32_t)(end - p)};
}

/* Next |sep|-separated item of [*pos, end), trimmed; false at the end. */
static bool next_item(const char **pos, const char *end, char sep,
		      struct rc_str *item)
{
	if (*pos >= end)
		return false;
	const char *p = *pos, *q = memchr(p, sep, (size_t)(end - p));
	if (!q)
		q = end;
	*item = trim(p, q);
	*pos = q < end ? q + 1 : end;
	return true;
}

/* Split "name=value" at the first '='; a bare word is a name. */
static void split_eq(struct rc_str s, struct rc_str *name, struct rc_str *value)
{
	const char *eq = memchr(s.p, '=', s.n);

	if (!eq) {
		*name = s;
		*value = (struct rc_str){s.p + s.n, 0};
		return;
	}
	*name = trim(s.p, eq);
	*value = trim(eq + 1, s.p + s.n);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode |s| (and '+' as space: form encoding) into |buf|, which
 * has room for s.n bytes. Returns the decoded length. */
static size_t form_decode(struct rc_str s, char *buf)
{
	size_t k = 0;

	for (size_t i = 0; i < s.n; i++) {
		int hi, lo;
		if (s.p[i] == '+') {
			buf[k++] = ' ';
		} else if (s.p[i] == '%' && i + 2 < s.n &&
			   (hi = hexval(s.p[i + 1])) >= 0 &&
			   (lo = hexval(s.p[i + 2])) >= 0) {
			buf[k++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			buf[k++] = s.p[i];
		}
	}
	return k;
}

/* A JSON array of {name, value} from "a=1&b=2", decoded (written empty if
 * out of memory). */
static void form_params(FILE *out, struct rc_str s)
{
	const char *pos = s.p, *end = s.p + s.n;
	struct rc_str item, name, value;
	bool first = true;
	char *buf = malloc(s.n + 1);

	fputc('[', out);
	while (buf && next_item(&pos, end, '&', &item)) {
		if (!item.n)
			continue;
		split_eq(item, &name, &value);
		size_t nn = form_decode(name, buf);
		if (!first)
			fputc(',', out);
		first = false;
		fputs("{\"name\":", out);
		jstr(out, buf, nn);
		size_t vn = form_decode(value, buf);
		fputs(",\"value\":", out);
		jstr(out, buf, vn);
		fputc('}', out);
	}
	fputc(']', out);
	free(buf);
}

/* ---- Entry parts --------------------------------------------------------- */

static void headers(FILE *out, const struct flow_header *h, uint32_t n)
{
	fputc('[', out);
	for (uint32_t i = 0; i < n; i++) {
		if (i)
			fputc(',', out);
		jpair(out, h[i].name.p, h[i].name.n, h[i].value.p,
		      h[i].value.n);
	}
	fputc(']', out);
}

/* Header block size as it is framed on the wire: start line, each field as
 * "Name: value\r\n", the empty line. Exact for the usual spelling; ringcap
 * does not keep the raw head. */
static uint64_t fields_size(const struct flow_header *h, uint32_t n)
{
	uint64_t s = 2;

	for (uint32_t i = 0; i < n; i++)
		s += h[i].name.n + 2 + h[i].value.n + 2;
	return s;
}

static bool str_eq(struct rc_str s, const char *lit)
{
	return s.n == strlen(lit) && !memcmp(s.p, lit, s.n);
}

static bool default_port(const struct flow_request *r)
{
	return r->port == 0 || (r->scheme.n == 0 && r->port == 80) ||
	       (str_eq(r->scheme, "http") && r->port == 80) ||
	       (str_eq(r->scheme, "https") && r->port == 443);
}

/* Bytes of a URL: printable ASCII as is (JSON-escaped), anything else
 * percent-encoded, so the URL is always valid text. */
static void url_bytes(FILE *out, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
			fprintf(out, "%%%02X", c);
		else
			fputc(c, out);
	}
}

static void url(FILE *out, const struct flow_request *r)
{
	bool v6 = r->host.n && r->host.p[0] != '[' &&
		  memchr(r->host.p, ':', r->host.n);

	fputc('"', out);
	if (r->scheme.n)
		url_bytes(out, r->scheme.p, r->scheme.n);
	else
		fputs("http", out);
	fputs("://", out);
	if (v6)
		fputc('[', out);
	url_bytes(out, r->host.p, r->host.n);
	if (v6)
		fputc(']', out);
	if (!default_port(r))
		fprintf(out, ":%u", r->port);
	if (r->path.n == 0 || r->path.p[0] != '/')
		fputc('/', out);
	url_bytes(out, r->path.p, r->path.n);
	fputc('"', out);
}

static uint64_t request_head_size(const struct flow *f)
{
	const struct flow_request *r = &f->req;
	uint64_t target = r->path.n ? r->path.n : 1;

	if (f->mode != FLOW_MODE_REVERSE) { /* absolute-form */
		const struct flow_header *h =
			find_header(r->headers, r->num_headers, "host");
		target += (r->scheme.n ? r->scheme.n : 4) + 3;
		if (h)
			target += h->value.n;
		else
			target += r->host.n + (default_port(r) ? 0 : 6);
	}
	return r->method.n + 1 + target + 1 + r->http_version.n + 2 +
	       fields_size(r->headers, r->num_headers);
}

static void request_cookies(FILE *out, const struct flow_request *r)
{
	bool first = true;

	fputc('[', out);
	for (uint32_t i = 0; i < r->num_headers; i++) {
		if (!name_is(r->headers[i].name, "cookie"))
			continue;
		struct rc_str v = r->headers[i].value, item, name, value;
		const char *pos = v.p, *end = v.p + v.n;
		while (next_item(&pos, end, ';', &item)) {
			if (!item.n)
				continue;
			split_eq(item, &name, &value);
			if (!first)
				fputc(',', out);
			first = false;
			jpair(out, name.p, name.n, value.p, value.n);
		}
	}
	fputc(']', out);
}

static void query_string(FILE *out, const struct flow_request *r)
{
	const char *q = memchr(r->path.p, '?', r->path.n);

	if (!q) {
		fputs("[]", out);
		return;
	}
	const char *end = r->path.p + r->path.n, *hash;
	q++;
	hash = memchr(q, '#', (size_t)(end - q));
	if (hash)
		end = hash;
	form_params(out, (struct rc_str){q, (uint32_t)(end - q)});
}

static void truncation_comment(FILE *out, const struct flow_body *b)
{
	fprintf(out,
		",\"comment\":\"body cut short by body_capture_limit: %u of "
		"%llu bytes captured\"",
		b->captured, (unsigned long long)b->length);
}

/* postData: text when the body is UTF-8, else base64 with "encoding" (as
 * content has it; HAR 1.2 names no encoding for postData, and DevTools
 * then shows the base64 text). */
static void post_data(FILE *out, const struct flow_request *r)
{
	const struct flow_header *ct =
		find_header(r->headers, r->num_headers, "content-type");
	const struct flow_body *b = &r->body;
	const char *p = b->p ? (const char *)b->p : "";
	bool text = is_utf8(p, b->captured);

	fputs(",\"postData\":{\"mimeType\":", out);
	if (ct)
		jrc(out, ct->value);
	else
		jcstr(out, "");
	if (text) {
		fputs(",\"text\":", out);
		jstr(out, p, b->captured);
	} else {
		fputs(",\"text\":\"", out);
		json_base64(out, (const uint8_t *)p, b->captured);
		fputs("\",\"encoding\":\"base64\"", out);
	}
	fputs(",\"params\":", out);
	if (ct && text && !b->truncated && ct->value.n >= 33 &&
	    !strncasecmp(ct->value.p, "application/x-www-form-urlencoded", 33))
		form_params(out, (struct rc_str){p, b->captured});
	else
		fputs("[]", out);
	if (b->truncated)
		truncation_comment(out, b);
	fputc('}', out);
}

static void request(FILE *out, const struct flow *f)
{
	const struct flow_request *r = &f->req;

	fputs("\"request\":{\"method\":", out);
	jrc(out, r->method);
	fputs(",\"url\":", out);
	url(out, r);
	fputs(",\"httpVersion\":", out);
	jrc(out, r->http_version);
	fputs(",\"cookies\":", out);
	request_cookies(out, r);
	fputs(",\"headers\":", out);
	headers(out, r->headers, r->num_headers);
	fputs(",\"queryString\":", out);
	query_string(out, r);
	if (r->body.length || r->body.captured)
		post_data(out, r);
	fprintf(out, ",\"headersSize\":%llu,\"bodySize\":%llu}",
		(unsigned long long)request_head_size(f),
		(unsigned long long)r->body.length);
}

/* Set-Cookie "expires": an HTTP date, as ISO 8601. */
static bool http_date(struct rc_str s, double *ts)
{
	static const char *const fmts[] = {
		"%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate */
		"%a, %d-%b-%Y %H:%M:%S GMT", /* Netscape cookies */
		"%A, %d-%b-%y %H:%M:%S GMT", /* RFC 850 */
		"%a %b %d %H:%M:%S %Y",      /* asctime */
	};
	char buf[64];

	if (s.n >= sizeof(buf))
		return false;
	memcpy(buf, s.p, s.n);
	buf[s.n] = 0;
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		struct tm tm;
		memset(&tm, 0, sizeof(tm));
		const char *end = strptime(buf, fmts[i], &tm);
		if (end && !*end) {
			*ts = (double)timegm(&tm);
			return true;
		}
	}
	return false;
}

static void set_cookie(FILE *out, struct rc_str v, double now)
{
	const char *pos = v.p, *end = v.p + v.n;
	struct rc_str item, name, value;
	bool http_only = false, secure = false, have_exp = false;
	double exp = 0;

	next_item(&pos, end, ';', &item);
	split_eq(item, &name, &value);
	fputs("{\"name\":", out);
	jrc(out, name);
	fputs(",\"value\":", out);
	jrc(out, value);
	while (next_item(&pos, end, ';', &item)) {
		struct rc_str an, av;
		split_eq(item, &an, &av);
		if (name_is(an, "path") || name_is(an, "domain")) {
			fprintf(out, ",\"%s\":", name_is(an, "path") ? "path"
								 : "domain");
			jrc(out, av);
		} else if (name_is(an, "expires") && !have_exp) {
			have_exp = http_date(av, &exp);
		} else if (name_is(an, "max-age") && av.n && av.n < 20) {
			char buf[24];
			memcpy(buf, av.p, av.n);
			buf[av.n] = 0;
			char *e;
			long long age = strtoll(buf, &e, 10);
			if (!*e && now > 0) { /* Max-Age wins over Expires */
				exp = now + (double)(age > 0 ? age : 0);
				have_exp = true;
			}
		} else if (name_is(an, "httponly")) {
			http_only = true;
		} else if (name_is(an, "secure")) {
			secure = true;
		}
	}
	if (have_exp) {
		fputs(",\"expires\":", out);
		jdate(out, exp);
	}
	fprintf(out, ",\"httpOnly\":%s,\"secure\":%s}",
		http_only ? "true" : "false", secure ? "true" : "false");
}

static void response_cookies(FILE *out, const struct flow_response *r)
{
	bool first = true;

	fputc('[', out);
	for (uint32_t i = 0; i < r->num_headers; i++) {
		if (!name_is(r->headers[i].name, "set-cookie") ||
		    !r->headers[i].value.n)
			continue;
		if (!first)
			fputc(',', out);
		first = false;
		set_cookie(out, r->headers[i].value, r->ts_start);
	}
	fputc(']', out);
}

/* content: the body as received (content-encoding is not undone), as text
 * when it is UTF-8, else base64 with "encoding":"base64", which Chrome and
 * Firefox DevTools decode on import. */
static void content(FILE *out, const struct flow_response *r)
{
	const struct flow_header *ct =
		find_header(r->headers, r->num_headers, "content-type");
	const struct flow_body *b = &r->body;
	const uint8_t *p = b->p ? b->p : (const uint8_t *)"";

	fprintf(out, ",\"content\":{\"size\":%llu,\"mimeType\":",
		(unsigned long long)b->length);
	if (ct)
		jrc(out, ct->value);
	else
		jcstr(out, "x-unknown");
	if (is_utf8(p, b->captured)) {
		fputs(",\"text\":", out);
		jstr(out, p, b->captured);
	} else {
		fputs(",\"text\":\"", out);
		json_base64(out, p, b->captured);
		fputs("\",\"encoding\":\"base64\"", out);
	}
	if (b->truncated)
		truncation_comment(out, b);
	fputc('}', out);
}

static void error_text(FILE *out, const struct flow *f)
{
	fputc('"', out);
	if (f->err.msg.n)
		jraw(out, f->err.msg.p, f->err.msg.n);
	else
		jraw(out, rc_strerror(f->err.code), strlen(rc_strerror(f->err.code)));
	fprintf(out, " (%s)\"", rc_errname(f->err.code));
}

static void response(FILE *out, const struct flow *f)
{
	const struct flow_response *r = &f->resp;

	if (!f->has_response) {
		/* What Chrome writes for a request that got no response. */
		fputs("\"response\":{\"status\":0,\"statusText\":\"\","
		      "\"httpVersion\":\"\",\"cookies\":[],\"headers\":[],"
		      "\"content\":{\"size\":0,\"mimeType\":\"x-unknown\"},"
		      "\"redirectURL\":\"\",\"headersSize\":-1,\"bodySize\":-1",
		      out);
		if (f->has_error) {
			fputs(",\"_error\":", out);
			error_text(out, f);
		}
		fputc('}', out);
		return;
	}
	const struct flow_header *loc =
		find_header(r->headers, r->num_headers, "location");
	fprintf(out, "\"response\":{\"status\":%u,\"statusText\":", r->status);
	jrc(out, r->reason);
	fputs(",\"httpVersion\":", out);
	jrc(out, r->http_version);
	fputs(",\"cookies\":", out);
	response_cookies(out, r);
	fputs(",\"headers\":", out);
	headers(out, r->headers, r->num_headers);
	content(out, r);
	fputs(",\"redirectURL\":", out);
	if (loc)
		jrc(out, loc->value);
	else
		jcstr(out, "");
	fprintf(out, ",\"headersSize\":%llu,\"bodySize\":%llu",
		(unsigned long long)(r->http_version.n + 5 + r->reason.n + 2 +
				     fields_size(r->headers, r->num_headers)),
		(unsigned long long)r->body.length);
	if (f->has_error) {
		fputs(",\"_error\":", out);
		error_text(out, f);
	}
	fputc('}', out);
}

struct timings {
	double blocked, dns, connect, ssl, send, wait, receive; /* ms, -1 */
};

static double span(double a, double b)
{
	return a > 0 && b > 0 && b >= a ? (b - a) * 1000.0 : -1;
}

/* From ringcap's timestamps. The request's first byte starts the entry.
 * An upstream connection made for this request gives blocked (head read,
 * name resolved: ringcap does not time DNS apart) and connect; a pooled
 * one gives neither. send runs to the request's last byte (or to the
 * connection, if the request was read before it was up), wait to the
 * response's first byte (or the error), receive to its last. */
static void compute_timings(const struct flow *f, struct timings *t)
{
	const struct flow_request *rq = &f->req;
	double t0 = rq->ts_start, send_from = t0, sent;

	*t = (struct timings){-1, -1, -1, -1, 0, 0, 0};
	if (f->has_server && f->server.ts_start >= t0 && t0 > 0) {
		t->blocked = span(t0, f->server.ts_start);
		t->connect = span(f->server.ts_start, f->server.ts_setup);
		if (f->server.ts_setup > 0)
			send_from = f->server.ts_setup;
		else if (t->blocked >= 0)
			send_from = f->server.ts_start;
	}
	sent = rq->ts_end > send_from ? rq->ts_end : send_from;
	t->send = span(send_from, sent);
	if (t->send < 0)
		t->send = 0;
	double answer = f->has_response ? f->resp.ts_start
			: f->has_error  ? f->err.ts
					: 0;
	t->wait = span(sent, answer);
	if (t->wait < 0)
		t->wait = 0;
	if (f->has_response) {
		t->receive = span(f->resp.ts_start, f->resp.ts_end);
		if (t->receive < 0)
			t->receive = 0;
	}
}

static void timings(FILE *out, const struct timings *t)
{
	fputs("\"timings\":{\"blocked\":", out);
	jms(out, t->blocked);
	fputs(",\"dns\":", out);
	jms(out, t->dns);
	fputs(",\"connect\":", out);
	jms(out, t->connect);
	fputs(",\"ssl\":", out);
	jms(out, t->ssl);
	fputs(",\"send\":", out);
	jms(out, t->send);
	fputs(",\"wait\":", out);
	jms(out, t->wait);
	fputs(",\"receive\":", out);
	jms(out, t->receive);
	fputc('}', out);
}

static double total_ms(const struct timings *t)
{
	const double v[] = {t->blocked, t->dns,  t->connect, t->send,
			    t->wait,    t->receive};
	double sum = 0;

	/* ssl is part of connect already (HAR 1.2), not added twice. */
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (v[i] > 0)
			sum += v[i];
	return sum;
}

static void endpoint_text(FILE *out, const struct flow_endpoint *e)
{
	if (strchr(e->addr, ':'))
		fprintf(out, "\"[%s]:%u\"", e->addr, e->port);
	else
		fprintf(out, "\"%s:%u\"", e->addr, e->port);
}

static void entry(FILE *out, const struct flow *f)
{
	struct timings t;
	char id[37];

	compute_timings(f, &t);
	fputs("{\"startedDateTime\":", out);
	jdate(out, f->req.ts_start > 0 ? f->req.ts_start : f->client.ts_start);
	fputs(",\"time\":", out);
	jms(out, total_ms(&t));
	fputc(',', out);
	request(out, f);
	fputc(',', out);
	response(out, f);
	fputs(",\"cache\":{},", out);
	timings(out, &t);
	if (f->has_server && f->server.peer.addr[0]) {
		fputs(",\"serverIPAddress\":", out);
		jcstr(out, f->server.peer.addr);
		/* The upstream TCP connection, by our port on it (the spec
		 * allows a port number): equal on reuse. */
		fprintf(out, ",\"connection\":\"%u\"", f->server.local.port);
	}
	if (f->has_error) {
		fputs(",\"comment\":", out);
		error_text(out, f);
	}
	flow_id_str(f->id, id);
	fprintf(out, ",\"_ringcap\":{\"id\":\"%s\",\"term\":\"%s\",\"client\":",
		id, flow_term_str(f->term));
	endpoint_text(out, &f->client.peer);
	fputs("}}", out);
}

/* ---- Document ------------------------------------------------------------ */

int har_begin(struct har_writer *w, FILE *out, const char *creator_version)
{
	w->out = out;
	w->entries = 0;
	fputs("{\"log\":{\"version\":\"1.2\",\"creator\":{\"name\":\"ringcap\","
	      "\"version\":",
	      out);
	jcstr(out, creator_version);
	fputs("},\"pages\":[],\"entries\":[", out);
	return ferror(out) ? -EIO : 0;
}

int har_write_flow(struct har_writer *w, const struct flow *f)
{
	if (f->type == FLOW_TCP)
		return EXP_SKIP_TCP;
	if (!f->has_request)
		return EXP_SKIP_NO_REQUEST;
	fputs(w->entries ? ",\n" : "\n", w->out);
	entry(w->out, f);
	w->entries++;
	return ferror(w->out) ? -EIO : EXP_WRITTEN;
}

int har_end(struct har_writer *w)
{
	fputs("\n]}}\n", w->out);
	if (fflush(w->out) == EOF || ferror(w->out))
		return -EIO;
	return 0;
}
