/* SPDX-License-Identifier: MIT */
/* `ringcap export --mitmproxy`: flow records as mitmproxy 8.1.1 flow files
 * (a tnetstring per flow, the dict of Flow.get_state()), and the small
 * tnetstring encoder that writes them. See sink/export.h. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sink/export.h"
#include "sink/json_out.h"

const char *exp_result_str(enum exp_result r)
{
	static const char *const names[EXP_RESULT_COUNT] = {
		[EXP_WRITTEN] = "written",
		[EXP_SKIP_TCP] = "skipped_tcp",
		[EXP_SKIP_NO_REQUEST] = "skipped_no_request",
	};
	return (unsigned)r < EXP_RESULT_COUNT ? names[r] : "?";
}

/* ---- tnetstring ------------------------------------------------------- */

void tns_init(struct tns *t)
{
	memset(t, 0, sizeof(*t));
}

void tns_free(struct tns *t)
{
	free(t->p);
	tns_init(t);
}

void tns_reset(struct tns *t)
{
	t->len = 0;
	t->depth = 0;
	t->err = 0;
}

static bool reserve(struct tns *t, size_t n)
{
	if (t->err)
		return false;
	if (t->cap - t->len >= n)
		return true;
	size_t cap = t->cap ? t->cap : 4096;
	while (cap - t->len < n) {
		if (cap > SIZE_MAX / 2) {
			t->err = -ENOMEM;
			return false;
		}
		cap *= 2;
	}
	uint8_t *p = realloc(t->p, cap);
	if (!p) {
		t->err = -ENOMEM;
		return false;
	}
	t->p = p;
	t->cap = cap;
	return true;
}

static void put(struct tns *t, const void *p, size_t n)
{
	if (n && reserve(t, n)) {
		memcpy(t->p + t->len, p, n);
		t->len += n;
	}
}

/* "LEN:" + data + tag, data already in text form. */
static void atom(struct tns *t, const void *p, size_t n, char tag)
{
	char pre[24];
	int k = snprintf(pre, sizeof(pre), "%zu:", n);

	if (!reserve(t, (size_t)k + n + 1))
		return;
	put(t, pre, (size_t)k);
	put(t, p, n);
	put(t, &tag, 1);
}

void tns_null(struct tns *t)
{
	atom(t, "", 0, '~');
}

void tns_bool(struct tns *t, bool v)
{
	if (v)
		atom(t, "true", 4, '!');
	else
		atom(t, "false", 5, '!');
}

void tns_int(struct tns *t, int64_t v)
{
	char s[24];
	int n = snprintf(s, sizeof(s), "%lld", (long long)v);
	atom(t, s, (size_t)n, '#');
}

/* Python's float repr: the fewest significant digits that read back as
 * |v|, in fixed notation when the decimal exponent is in [-4, 16), else
 * in scientific notation ("1e-05", "1e+16"); an integral value in fixed
 * notation gets ".0". */
void tns_float(struct tns *t, double v)
{
	char s[64];
	int n = 0, sig, exp;

	if (isnan(v) || isinf(v)) {
		n = snprintf(s, sizeof(s), "%s",
			     isnan(v) ? "nan" : v < 0 ? "-inf" : "inf");
		atom(t, s, (size_t)n, '^');
		return;
	}
	for (sig = 1; sig <= 17; sig++) {
		n = snprintf(s, sizeof(s), "%.*e", sig - 1, v);
		if (strtod(s, NULL) == v)
			break;
	}
	exp = atoi(strchr(s, 'e') + 1);
	if (exp >= -4 && exp < 16) {
		int decimals = sig - 1 - exp;
		n = snprintf(s, sizeof(s), "%.*f", decimals > 0 ? decimals : 0,
			     v);
		if (!strchr(s, '.'))
			n += snprintf(s + n, sizeof(s) - (size_t)n, ".0");
	}
	atom(t, s, (size_t)n, '^');
}

void tns_bytes(struct tns *t, const void *p, size_t n)
{
	atom(t, p, n, ',');
}
void tns_str(struct tns *t, const void *s, size_t n)
{
	static const char repl[] = "\xef\xbf\xbd"; /* U+FFFD */
	const unsigned char *p = s;
	size_t bad = 0, i;

	for (i = 0; i < n;) {
		size_t k = json_utf8_len(p + i, n - i);
		bad += !k;
		i += k ? k : 1;
	}
	if (!bad) {
		atom(t, p, n, ';');
		return;
	}
	size_t out = n + bad * 2; /* each bad byte grows from 1 to 3 */
	char pre[24];
	int k = snprintf(pre, sizeof(pre), "%zu:", out);
	if (!reserve(t, (size_t)k + out + 1))
		return;
	put(t, pre, (size_t)k);
	for (i = 0; i < n;) {
		size_t m = json_utf8_len(p + i, n - i);
		if (m) {
			put(t, p + i, m);
			i += m;
		} else {
			put(t, repl, 3);
			i++;
		}
	}
	put(t, ";", 1);
}

void tns_cstr(struct tns *t, const char *s)
{
	tns_str(t, s, strlen(s));
}

static void begin(struct tns *t, char kind)
{
	if (t->err)
		return;
	if (t->depth == TNS_MAX_DEPTH) {
		t->err = -EINVAL;
		return;
	}
	t->open[t->depth] = t->len;
	t->kind[t->depth] = kind;
	t->depth++;
}

void tns_dict_begin(struct tns *t)
{
	begin(t, '}');
}

void tns_list_begin(struct tns *t)
{
	begin(t, ']');
}

void tns_end(struct tns *t)
{
	if (t->err)
		return;
	if (!t->depth) {
		t->err = -EINVAL;
		return;
	}
	t->depth--;
	size_t start = t->open[t->depth], n = t->len - start;
	char pre[24];
	int k = snprintf(pre, sizeof(pre), "%zu:", n);
	if (!reserve(t, (size_t)k + 1))
		return;
	memmove(t->p + start + k, t->p + start, n);
	memcpy(t->p + start, pre, (size_t)k);
	t->len += (size_t)k;
	t->p[t->len++] = (uint8_t)t->kind[t->depth];
}

int tns_status(const struct tns *t)
{
	if (t->err)
		return t->err;
	return t->depth ? -EINVAL : 0;
}

/* ---- mitmproxy's state dicts ------------------------------------------- */

static void key(struct tns *t, const char *k)
{
	tns_cstr(t, k);
}

static void rstr(struct tns *t, struct rc_str s)
{
	tns_str(t, s.p, s.n);
}

static void rbytes(struct tns *t, struct rc_str s)
{
	tns_bytes(t, s.p, s.n);
}

/* Timestamps: 0 means "did not happen", which mitmproxy writes as None. */
static void ts_or_null(struct tns *t, double ts)
{
	if (ts > 0 && isfinite(ts))
		tns_float(t, ts);
	else
		tns_null(t);
}

/* (host, port), or None for an unknown address. */
static void address(struct tns *t, const struct flow_endpoint *e)
{
	if (!e->addr[0] && !e->port) {
		tns_null(t);
		return;
	}
	tns_list_begin(t);
	tns_cstr(t, e->addr);
	tns_int(t, e->port);
	tns_end(t);
}

/* ringcap records no connection ids; mitmproxy groups flows by them (same
 * client connection, same server connection). Derive a stable one from
 * what identifies a connection: its addresses and start time. Formatted as
 * an RFC 9562 version 8 ("custom") UUID. */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void conn_id(struct tns *t, const char *side, const struct flow_conn *c,
		    const uint8_t *fallback)
{
	uint8_t id[16];
	uint64_t h[2] = {0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL};

	for (int i = 0; i < 2; i++) {
		h[i] = fnv1a(h[i], side, strlen(side));
		h[i] = fnv1a(h[i], c->peer.addr, strlen(c->peer.addr));
		h[i] = fnv1a(h[i], &c->peer.port, sizeof(c->peer.port));
		h[i] = fnv1a(h[i], c->local.addr, strlen(c->local.addr));
		h[i] = fnv1a(h[i], &c->local.port, sizeof(c->local.port));
		h[i] = fnv1a(h[i], &c->ts_start, sizeof(c->ts_start));
		if (fallback)
			h[i] = fnv1a(h[i], fallback, 16);
		memcpy(id + 8 * i, &h[i], 8);
	}
	id[6] = (uint8_t)((id[6] & 0x0f) | 0x80);
	id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
	char s[37];
	flow_id_str(id, s);
	tns_cstr(t, s);
}

/* Connection.get_state() keys shared by Client and Server. */
static void conn_common(struct tns *t)
{
	key(t, "alpn");
	tns_null(t);
	key(t, "alpn_offers");
	tns_list_begin(t);
	tns_end(t);
	key(t, "cipher_name");
	tns_null(t);
	key(t, "cipher_list");
	tns_list_begin(t);
	tns_end(t);
	key(t, "certificate_list");
	tns_list_begin(t);
	tns_end(t);
	key(t, "sni");
	tns_null(t);
	key(t, "tls");
	tns_bool(t, false);
	key(t, "tls_established");
	tns_bool(t, false);
	key(t, "tls_version");
	tns_null(t);
	key(t, "timestamp_tls_setup");
	tns_null(t);
	key(t, "error");
	tns_null(t);
	key(t, "state"); /* ConnectionState.CLOSED: the flow is finished */
	tns_int(t, 0);
}

static void client_conn(struct tns *t, const struct flow *f)
{
	const struct flow_conn *c = &f->client;

	tns_dict_begin(t);
	key(t, "id");
	conn_id(t, "client", c, NULL);
	key(t, "address");
	address(t, &c->peer);
	key(t, "sockname");
	address(t, &c->local);
	key(t, "timestamp_start");
	ts_or_null(t, c->ts_start);
	key(t, "timestamp_end");
	ts_or_null(t, c->ts_end);
	key(t, "mitmcert");
	tns_null(t);
	key(t, "tls_extensions");
	tns_list_begin(t);
	tns_end(t);
	conn_common(t);
	tns_end(t);
}

/* The server's (host, port) as the client asked for it. */
static void server_address(struct tns *t, const struct flow *f)
{
	struct rc_str host = f->type == FLOW_TCP ? f->tcp_host : f->req.host;
	uint16_t port = f->type == FLOW_TCP ? f->tcp_port : f->req.port;

	if (f->type == FLOW_TCP && !host.n && f->has_request) {
		host = f->req.host;
		port = f->req.port;
	}
	if (!host.n && f->has_server) {
		address(t, &f->server.peer);
		return;
	}
	tns_list_begin(t);
	rstr(t, host);
	tns_int(t, port);
	tns_end(t);
}

static void server_conn(struct tns *t, const struct flow *f)
{
	struct flow_conn none;
	const struct flow_conn *c = f->has_server ? &f->server : &none;

	memset(&none, 0, sizeof(none));
	tns_dict_begin(t);
	key(t, "id");
	conn_id(t, "server", c, f->has_server ? NULL : f->id);
	key(t, "address");
	server_address(t, f);
	key(t, "ip_address");
	address(t, &c->peer);
	key(t, "source_address");
	address(t, &c->local);
	key(t, "timestamp_start");
	ts_or_null(t, c->ts_start);
	key(t, "timestamp_tcp_setup");
	ts_or_null(t, c->ts_setup);
	key(t, "timestamp_end");
	ts_or_null(t, c->ts_end);
	key(t, "via");
	tns_null(t);
	key(t, "via2");
	tns_null(t);
	conn_common(t);
	tns_end(t);
}

static void headers(struct tns *t, const struct flow_header *h, uint32_t n)
{
	tns_list_begin(t);
	for (uint32_t i = 0; i < n; i++) {
		tns_list_begin(t);
		rbytes(t, h[i].name);
		rbytes(t, h[i].value);
		tns_end(t);
	}
	tns_end(t);
}

/* A body cut short by body_capture_limit is not the message: mitmproxy's
 * own word for "not recorded" is content None ("(content missing)"), which
 * also makes its replay refuse the flow instead of sending the wrong
 * bytes. The real length goes to metadata. */
static void content(struct tns *t, const struct flow_body *b)
{
	if (b->truncated)
		tns_null(t);
	else
		tns_bytes(t, b->p ? (const void *)b->p : "", b->captured);
}

static const struct flow_header *find_header(const struct flow_header *h,
					     uint32_t n, const char *name)
{
	size_t len = strlen(name);

	for (uint32_t i = 0; h && i < n; i++)
		if (h[i].name.n == len && !strncasecmp(h[i].name.p, name, len))
			return &h[i];
	return NULL;
}

/* The authority of an absolute-form target: what a client in regular or
 * upstream mode sent (mitmproxy keeps it); origin-form (reverse) has none.
 * The Host header is what clients put there. */
static void authority(struct tns *t, const struct flow *f)
{
	const struct flow_request *r = &f->req;
	const struct flow_header *h;

	if (f->mode == FLOW_MODE_REVERSE) {
		tns_bytes(t, "", 0);
		return;
	}
	h = find_header(r->headers, r->num_headers, "host");
	if (h) {
		rbytes(t, h->value);
		return;
	}
	char port[8];
	int k = snprintf(port, sizeof(port), ":%u", r->port);
	char pre[24];
	int m = snprintf(pre, sizeof(pre), "%zu:", (size_t)r->host.n + (size_t)k);
	if (!reserve(t, (size_t)m + r->host.n + (size_t)k + 1))
		return;
	put(t, pre, (size_t)m);
	put(t, r->host.p, r->host.n);
	put(t, port, (size_t)k);
	put(t, ",", 1);
}

static void request(struct tns *t, const struct flow *f)
{
	const struct flow_request *r = &f->req;

	tns_dict_begin(t);
	key(t, "host");
	rstr(t, r->host);
	key(t, "port");
	tns_int(t, r->port);
	key(t, "method");
	rbytes(t, r->method);
	key(t, "scheme");
	if (r->scheme.n)
		rbytes(t, r->scheme);
	else
		tns_bytes(t, "http", 4);
	key(t, "authority");
	authority(t, f);
	key(t, "path");
	rbytes(t, r->path);
	key(t, "http_version");
	rbytes(t, r->http_version);
	key(t, "headers");
	headers(t, r->headers, r->num_headers);
	key(t, "content");
	content(t, &r->body);
	key(t, "trailers");
	if (r->num_trailers)
		headers(t, r->trailers, r->num_trailers);
	else
		tns_null(t);
	key(t, "timestamp_start"); /* a float in mitmproxy, never None */
	tns_float(t, r->ts_start > 0 ? r->ts_start : f->client.ts_start);
	key(t, "timestamp_end");
	ts_or_null(t, r->ts_end);
	tns_end(t);
}

static void response(struct tns *t, const struct flow *f)
{
	const struct flow_response *r = &f->resp;
	double start = r->ts_start > 0 ? r->ts_start
		       : f->req.ts_end > 0 ? f->req.ts_end
					   : f->req.ts_start;

	tns_dict_begin(t);
	key(t, "http_version");
	rbytes(t, r->http_version);
	key(t, "status_code");
	tns_int(t, r->status);
	key(t, "reason");
	rbytes(t, r->reason);
	key(t, "headers");
	headers(t, r->headers, r->num_headers);
	key(t, "content");
	content(t, &r->body);
	key(t, "trailers");
	if (r->num_trailers)
		headers(t, r->trailers, r->num_trailers);
	else
		tns_null(t);
	key(t, "timestamp_start");
	tns_float(t, start);
	key(t, "timestamp_end");
	ts_or_null(t, r->ts_end);
	tns_end(t);
}

static double error_ts(const struct flow *f)
{
	if (f->err.ts > 0)
		return f->err.ts;
	if (f->client.ts_end > 0)
		return f->client.ts_end;
	return f->has_request ? f->req.ts_start : f->client.ts_start;
}

static void error_state(struct tns *t, const struct flow *f)
{
	if (!f->has_error) {
		tns_null(t);
		return;
	}
	tns_dict_begin(t);
	key(t, "msg");
	if (f->err.msg.n)
		rstr(t, f->err.msg);
	else
		tns_cstr(t, rc_strerror(f->err.code));
	key(t, "timestamp");
	tns_float(t, error_ts(f));
	tns_end(t);
}

static void body_meta(struct tns *t, const char *which,
		      const struct flow_body *b)
{
	char k[48];

	if (!b->truncated)
		return;
	snprintf(k, sizeof(k), "%s_content_length", which);
	key(t, k);
	tns_int(t, (int64_t)b->length);
	snprintf(k, sizeof(k), "%s_content_captured", which);
	key(t, k);
	tns_int(t, b->captured);
}

/* What mitmproxy has no field for goes to metadata["ringcap"] (JSON-safe
 * values only: mitmproxy checks metadata with json.dumps). */
static void metadata(struct tns *t, const struct flow *f)
{
	tns_dict_begin(t);
	key(t, "ringcap");
	tns_dict_begin(t);
	key(t, "mode");
	tns_cstr(t, flow_mode_str(f->mode));
	key(t, "term");
	tns_cstr(t, flow_term_str(f->term));
	if (f->has_error) {
		key(t, "error_code");
		tns_int(t, f->err.code);
		key(t, "error_name");
		tns_cstr(t, rc_errname(f->err.code));
	}
	if (f->type == FLOW_TCP || f->bytes_up || f->bytes_down) {
		key(t, "bytes_up");
		tns_int(t, (int64_t)f->bytes_up);
		key(t, "bytes_down");
		tns_int(t, (int64_t)f->bytes_down);
	}
	if (f->has_request)
		body_meta(t, "request", &f->req.body);
	if (f->has_response)
		body_meta(t, "response", &f->resp.body);
	tns_end(t);
	tns_end(t);
}

static void flow_state(struct tns *t, const struct flow *f)
{
	char id[37];
	bool http = f->type == FLOW_HTTP;

	flow_id_str(f->id, id);
	tns_dict_begin(t);
	key(t, "version");
	tns_int(t, MITM_FLOW_FORMAT_VERSION);
	key(t, "type");
	tns_cstr(t, http ? "http" : "tcp");
	key(t, "id");
	tns_cstr(t, id);
	key(t, "error");
	error_state(t, f);
	key(t, "client_conn");
	client_conn(t, f);
	key(t, "server_conn");
	server_conn(t, f);
	key(t, "intercepted");
	tns_bool(t, false);
	key(t, "is_replay");
	tns_null(t);
	key(t, "marked");
	tns_cstr(t, "");
	key(t, "metadata");
	metadata(t, f);
	key(t, "comment");
	tns_cstr(t, "");
	key(t, "timestamp_created");
	tns_float(t, http && f->req.ts_start > 0 ? f->req.ts_start
						  : f->client.ts_start);
	if (http) {
		key(t, "request");
		request(t, f);
		key(t, "response");
		if (f->has_response)
			response(t, f);
		else
			tns_null(t);
		key(t, "websocket");
		tns_null(t);
	} else {
		/* ringcap relays tunnels without keeping their bytes: no
		 * messages, only the counts (in metadata). */
		key(t, "messages");
		tns_list_begin(t);
		tns_end(t);
	}
	tns_end(t);
}

int mitm_write_flow(FILE *out, struct tns *scratch, const struct flow *f)
{
	if (f->type == FLOW_HTTP && !f->has_request)
		return EXP_SKIP_NO_REQUEST;
	tns_reset(scratch);
	flow_state(scratch, f);
	int rc = tns_status(scratch);
	if (rc < 0)
		return rc;
	if (fwrite(scratch->p, 1, scratch->len, out) != scratch->len)
		return -EIO;
	return EXP_WRITTEN;
}
