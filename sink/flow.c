/* SPDX-License-Identifier: MIT */
/* The flow record's msgpack form (schema in FLOWLOG.md): encoded once by the
 * shard straight into ring space, decoded by the writer's printer and by
 * `ringcap read`. */
#include "sink/flow.h"

#include <errno.h>
#include <string.h>

/* --- enum names --------------------------------------------------------- */

static const char *const type_names[FLOW_TYPE_COUNT] = {
	[FLOW_HTTP] = "http",
	[FLOW_TCP] = "tcp",
	[FLOW_DNS] = "dns",
};

static const char *const mode_names[FLOW_MODE_COUNT] = {
	[FLOW_MODE_REGULAR] = "regular",
	[FLOW_MODE_REVERSE] = "reverse",
	[FLOW_MODE_UPSTREAM] = "upstream",
	[FLOW_MODE_TRANSPARENT] = "transparent",
	[FLOW_MODE_SOCKS5] = "socks5",
	[FLOW_MODE_DNS] = "dns",
};

static const char *const term_names[FLOW_TERM_COUNT] = {
	[FLOW_TERM_OK] = "ok",
	[FLOW_TERM_CLIENT_CLOSED] = "client_closed",
	[FLOW_TERM_CLIENT_ERROR] = "client_error",
	[FLOW_TERM_CLIENT_TIMEOUT] = "client_timeout",
	[FLOW_TERM_UPSTREAM_CLOSED] = "upstream_closed",
	[FLOW_TERM_UPSTREAM_ERROR] = "upstream_error",
	[FLOW_TERM_UPSTREAM_TIMEOUT] = "upstream_timeout",
	[FLOW_TERM_PROXY_SHUTDOWN] = "proxy_shutdown",
	[FLOW_TERM_PROXY_REFUSED] = "proxy_refused",
};

const char *flow_type_str(enum flow_type t)
{
	return (unsigned)t < FLOW_TYPE_COUNT ? type_names[t] : "?";
}

const char *flow_mode_str(enum flow_mode m)
{
	return (unsigned)m < FLOW_MODE_COUNT ? mode_names[m] : "?";
}

const char *flow_term_str(enum flow_term t)
{
	return (unsigned)t < FLOW_TERM_COUNT ? term_names[t] : "?";
}

void flow_id_str(const uint8_t id[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	char *o = out;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = hex[id[i] >> 4];
		*o++ = hex[id[i] & 15];
	}
	*o = '\0';
}

/* --- encoder ------------------------------------------------------------ */

/* Two sinks for one packing routine: a counter and a bounded copy. */
struct bounded {
	uint8_t *p;
	size_t cap;
	size_t off;
	bool overflow;
};

static int count_write(void *data, const char *buf, size_t len)
{
	(void)buf;
	*(size_t *)data += len;
	return 0;
}

static int bounded_write(void *data, const char *buf, size_t len)
{
	struct bounded *b = data;

	if (b->overflow || len > b->cap - b->off) {
		b->overflow = true;
		return -1;
	}
	if (len) /* an empty string may come with a NULL pointer */
		memcpy(b->p + b->off, buf, len);
	b->off += len;
	return 0;
}

static void pk_key(msgpack_packer *pk, const char *k)
{
	msgpack_pack_str_with_body(pk, k, strlen(k));
}

static void pk_text(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* Bytes off the wire are bin; ringcap's own text is str. */
static void pk_bytes(msgpack_packer *pk, struct rc_str s)
{
	msgpack_pack_bin_with_body(pk, s.n ? s.p : "", s.n);
}

static void pk_endpoint(msgpack_packer *pk, const struct flow_endpoint *e)
{
	size_t n = strnlen(e->addr, sizeof(e->addr) - 1);

	msgpack_pack_array(pk, 2);
	msgpack_pack_str_with_body(pk, e->addr, n);
	msgpack_pack_uint16(pk, e->port);
}

static void pk_conn(msgpack_packer *pk, const struct flow_conn *c)
{
	msgpack_pack_map(pk, 5);
	pk_key(pk, "peer");
	pk_endpoint(pk, &c->peer);
	pk_key(pk, "local");
	pk_endpoint(pk, &c->local);
	pk_key(pk, "ts_start");
	msgpack_pack_double(pk, c->ts_start);
	pk_key(pk, "ts_setup");
	msgpack_pack_double(pk, c->ts_setup);
	pk_key(pk, "ts_end");
	msgpack_pack_double(pk, c->ts_end);
}

static void pk_fields(msgpack_packer *pk, const char *name,
		      const struct flow_header *h, uint32_t n)
{
	pk_key(pk, name);
	msgpack_pack_array(pk, h ? n : 0);
	for (uint32_t i = 0; h && i < n; i++) {
		msgpack_pack_array(pk, 2);
		pk_bytes(pk, h[i].name);
		pk_bytes(pk, h[i].value);
	}
}

static void pk_body(msgpack_packer *pk, const struct flow_body *b)
{
	uint32_t n = b->p ? b->captured : 0;

	pk_key(pk, "body");
	msgpack_pack_bin_with_body(pk, n ? (const void *)b->p : "", n);
	pk_key(pk, "body_len");
	msgpack_pack_uint64(pk, b->length);
	pk_key(pk, "body_truncated");
	if (b->truncated)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
}

static void pk_request(msgpack_packer *pk, const struct flow_request *r)
{
	msgpack_pack_map(pk, 12 + (r->num_trailers > 0));
	pk_key(pk, "method");
	pk_bytes(pk, r->method);
	pk_key(pk, "scheme");
	pk_bytes(pk, r->scheme);
	pk_key(pk, "host");
	pk_bytes(pk, r->host);
	pk_key(pk, "port");
	msgpack_pack_uint16(pk, r->port);
	pk_key(pk, "path");
	pk_bytes(pk, r->path);
	pk_key(pk, "http_version");
	pk_bytes(pk, r->http_version);
	pk_fields(pk, "headers", r->headers, r->num_headers);
	if (r->num_trailers)
		pk_fields(pk, "trailers", r->trailers, r->num_trailers);
	pk_body(pk, &r->body);
	pk_key(pk, "ts_start");
	msgpack_pack_double(pk, r->ts_start);
	pk_key(pk, "ts_end");
	msgpack_pack_double(pk, r->ts_end);
}

static void pk_response(msgpack_packer *pk, const struct flow_response *r)
{
	msgpack_pack_map(pk, 9 + (r->num_trailers > 0));
	pk_key(pk, "status");
	msgpack_pack_uint16(pk, r->status);
	pk_key(pk, "reason");
	pk_bytes(pk, r->reason);
	pk_key(pk, "http_version");
	pk_bytes(pk, r->http_version);
	pk_fields(pk, "headers", r->headers, r->num_headers);
	if (r->num_trailers)
		pk_fields(pk, "trailers", r->trailers, r->num_trailers);
	pk_body(pk, &r->body);
	pk_key(pk, "ts_start");
	msgpack_pack_double(pk, r->ts_start);
	pk_key(pk, "ts_end");
	msgpack_pack_double(pk, r->ts_end);
}

static void pk_error(msgpack_packer *pk, const struct flow_error *e)
{
	msgpack_pack_map(pk, 4);
	pk_key(pk, "code");
	msgpack_pack_int32(pk, e->code);
	pk_key(pk, "name");
	pk_text(pk, rc_errname(e->code));
	pk_key(pk, "msg");
	msgpack_pack_str_with_body(pk, e->msg.n ? e->msg.p : "", e->msg.n);
	pk_key(pk, "ts");
	msgpack_pack_double(pk, e->ts);
}

static bool has_tcp(const struct flow *f)
{
	return f->type == FLOW_TCP || f->tcp_host.n || f->tcp_port ||
	       f->bytes_up || f->bytes_down;
}

static void pk_tls(msgpack_packer *pk, const char *key,
		   const struct flow_tls *t)
{
	size_t n = 6 + (t->cert_sha256.n > 0) + (t->cert_names.n > 0) +
		   (t->verify.n > 0);

	pk_key(pk, key);
	msgpack_pack_map(pk, n);
	pk_key(pk, "sni");
	pk_bytes(pk, t->sni);
	pk_key(pk, "alpn");
	pk_bytes(pk, t->alpn);
	pk_key(pk, "version");
	pk_bytes(pk, t->version);
	pk_key(pk, "cipher");
	pk_bytes(pk, t->cipher);
	pk_key(pk, "ktls");
	if (t->ktls)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
	pk_key(pk, "ts_setup");
	msgpack_pack_double(pk, t->ts_setup);
	if (t->cert_sha256.n) {
		pk_key(pk, "cert_sha256");
		pk_bytes(pk, t->cert_sha256);
	}
	if (t->cert_names.n) {
		pk_key(pk, "cert_names");
		pk_bytes(pk, t->cert_names);
	}
	if (t->verify.n) {
		pk_key(pk, "verify");
		pk_bytes(pk, t->verify);
	}
}

static void pk_flow(msgpack_packer *pk, const struct flow *f)
{
	size_t n = 6 + f->has_server + f->has_request + f->has_response +
		   f->has_error + has_tcp(f) + f->client_tls.present +
		   f->server_tls.present + f->has_dns;

	msgpack_pack_map(pk, n);
	pk_key(pk, "v");
	msgpack_pack_uint8(pk, FLOW_SCHEMA_VERSION);
	pk_key(pk, "id");
	msgpack_pack_bin_with_body(pk, f->id, 16);
	pk_key(pk, "type");
	pk_text(pk, flow_type_str(f->type));
	pk_key(pk, "mode");
	pk_text(pk, flow_mode_str(f->mode));
	pk_key(pk, "term");
	pk_text(pk, flow_term_str(f->term));
	pk_key(pk, "client");
	pk_conn(pk, &f->client);
	if (f->has_server) {
		pk_key(pk, "server");
		pk_conn(pk, &f->server);
	}
	if (f->has_request) {
		pk_key(pk, "request");
		pk_request(pk, &f->req);
	}
	if (f->has_response) {
		pk_key(pk, "response");
		pk_response(pk, &f->resp);
	}
	if (f->has_error) {
		pk_key(pk, "error");
		pk_error(pk, &f->err);
	}
	if (has_tcp(f)) {
		pk_key(pk, "tcp");
		msgpack_pack_map(pk, 4 + (f->num_tcp_msgs > 0) + f->tcp_truncated);
		pk_key(pk, "host");
		pk_bytes(pk, f->tcp_host);
		pk_key(pk, "port");
		msgpack_pack_uint16(pk, f->tcp_port);
		pk_key(pk, "bytes_up");
		msgpack_pack_uint64(pk, f->bytes_up);
		pk_key(pk, "bytes_down");
		msgpack_pack_uint64(pk, f->bytes_down);
		if (f->num_tcp_msgs) {
			pk_key(pk, "messages");
			msgpack_pack_array(pk, f->num_tcp_msgs);
			for (uint32_t i = 0; i < f->num_tcp_msgs; i++) {
				const struct flow_tcp_msg *m = &f->tcp_msgs[i];
				msgpack_pack_array(pk, 3);
				if (m->from_client)
					msgpack_pack_true(pk);
				else
					msgpack_pack_false(pk);
				msgpack_pack_double(pk, m->ts);
				pk_bytes(pk, m->content);
			}
		}
		if (f->tcp_truncated) {
			pk_key(pk, "truncated");
			msgpack_pack_true(pk);
		}
	}
	if (f->has_dns) {
		const struct flow_dns *d = &f->dns;
		pk_key(pk, "dns");
		msgpack_pack_map(pk, 9);
		pk_key(pk, "query");
		msgpack_pack_bin_with_body(pk, d->query.p, d->query.n);
		pk_key(pk, "response");
		msgpack_pack_bin_with_body(pk, d->response.p, d->response.n);
		pk_key(pk, "qname");
		pk_bytes(pk, d->qname);
		pk_key(pk, "qtype");
		msgpack_pack_uint16(pk, d->qtype);
		pk_key(pk, "rcode");
		msgpack_pack_int16(pk, d->rcode);
		pk_key(pk, "answers");
		pk_bytes(pk, d->answers);
		pk_key(pk, "tcp");
		if (d->tcp)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		pk_key(pk, "ts_query");
		msgpack_pack_double(pk, d->ts_query);
		pk_key(pk, "ts_response");
		msgpack_pack_double(pk, d->ts_response);
	}
	if (f->client_tls.present)
		pk_tls(pk, "client_tls", &f->client_tls);
	if (f->server_tls.present)
		pk_tls(pk, "server_tls", &f->server_tls);
}

size_t flow_encoded_size(const struct flow *f)
{
	msgpack_packer pk;
	size_t n = 0;

	msgpack_packer_init(&pk, &n, count_write);
	pk_flow(&pk, f);
	return n;
}

ssize_t flow_encode(const struct flow *f, void *out, size_t cap)
{
	struct bounded b = {.p = out, .cap = cap};
	msgpack_packer pk;

	msgpack_packer_init(&pk, &b, bounded_write);
	pk_flow(&pk, f);
	return b.overflow ? -ENOSPC : (ssize_t)b.off;
}

/* --- decoder ------------------------------------------------------------ */

#define FAIL RC_SINK_DECODE

static bool key_is(const msgpack_object *k, const char *s)
{
	size_t n = strlen(s);

	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	       memcmp(k->via.str.ptr, s, n) == 0;
}

/* str or bin: both are accepted for every byte string. */
static int get_bytes(const msgpack_object *o, struct rc_str *out)
{
	if (o->type == MSGPACK_OBJECT_STR) {
		out->p = o->via.str.ptr;
		out->n = o->via.str.size;
	} else if (o->type == MSGPACK_OBJECT_BIN) {
		out->p = o->via.bin.ptr;
		out->n = o->via.bin.size;
	} else {
		return FAIL;
	}
	return 0;
}

static int get_uint(const msgpack_object *o, uint64_t max, uint64_t *out)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
		return FAIL;
	*out = o->via.u64;
	return 0;
}

static int get_u16(const msgpack_object *o, uint16_t *out)
{
	uint64_t v;

	if (get_uint(o, UINT16_MAX, &v))
		return FAIL;
	*out = (uint16_t)v;
	return 0;
}

static int get_double(const msgpack_object *o, double *out)
{
	switch (o->type) {
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		*out = o->via.f64;
		return 0;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		*out = (double)o->via.u64;
		return 0;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		*out = (double)o->via.i64;
		return 0;
	default:
		return FAIL;
	}
}

static int get_bool(const msgpack_object *o, bool *out)
{
	if (o->type != MSGPACK_OBJECT_BOOLEAN)
		return FAIL;
	*out = o->via.boolean;
	return 0;
}

/* Map a str to its index in |names|, or FAIL. */
static int get_enum(const msgpack_object *o, const char *const *names,
		    int count, int *out)
{
	if (o->type != MSGPACK_OBJECT_STR)
		return FAIL;
	for (int i = 0; i < count; i++) {
		if (key_is(o, names[i])) {
			*out = i;
			return 0;
		}
	}
	return FAIL;
}

static int get_endpoint(const msgpack_object *o, struct flow_endpoint *e)
{
	struct rc_str a;

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 2)
		return FAIL;
	if (get_bytes(&o->via.array.ptr[0], &a) || a.n >= sizeof(e->addr) ||
	    memchr(a.p, '\0', a.n))
		return FAIL;
	memcpy(e->addr, a.p, a.n);
	e->addr[a.n] = '\0';
	return get_u16(&o->via.array.ptr[1], &e->port);
}

static int get_conn(const msgpack_object *o, struct flow_conn *c)
{
	if (o->type != MSGPACK_OBJECT_MAP)
		return FAIL;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;
		const msgpack_object *v = &o->via.map.ptr[i].val;
		int rc = 0;

		if (key_is(k, "peer"))
			rc = get_endpoint(v, &c->peer);
		else if (key_is(k, "local"))
			rc = get_endpoint(v, &c->local);
		else if (key_is(k, "ts_start"))
			rc = get_double(v, &c->ts_start);
		else if (key_is(k, "ts_setup"))
			rc = get_double(v, &c->ts_setup);
		else if (key_is(k, "ts_end"))
			rc = get_double(v, &c->ts_end);
		if (rc)
			return rc;
	}
	return 0;
}

static int get_headers(const msgpack_object *o, msgpack_zone *zone,
		       const struct flow_header **out, uint32_t *num)
{
	struct flow_header *h;
	uint32_t n;

	if (o->type != MSGPACK_OBJECT_ARRAY)
		return FAIL;
	n = o->via.array.size;
	*out = NULL;
	*num = 0;
	if (n == 0)
		return 0;
	h = msgpack_zone_malloc(zone, (size_t)n * sizeof(*h));
	if (!h)
		return FAIL;
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object *pair = &o->via.array.ptr[i];

		if (pair->type != MSGPACK_OBJECT_ARRAY ||
		    pair->via.array.size != 2 ||
		    get_bytes(&pair->via.array.ptr[0], &h[i].name) ||
		    get_bytes(&pair->via.array.ptr[1], &h[i].value))
			return FAIL;
	}
	*out = h;
	*num = n;
	return 0;
}

/* Fields shared by request and response; 1 if |k| was not one of them. */
static int get_msg_field(const msgpack_object *k, const msgpack_object *v,
			 msgpack_zone *zone, const struct flow_header **hdrs,
			 uint32_t *nhdrs, const struct flow_header **trls,
			 uint32_t *ntrls, struct flow_body *b, double *ts_start,
			 double *ts_end)
{
	struct rc_str s;

	if (key_is(k, "headers"))
		return get_headers(v, zone, hdrs, nhdrs);
	if (key_is(k, "trailers"))
		return get_headers(v, zone, trls, ntrls);
	if (key_is(k, "body")) {
		if (v->type != MSGPACK_OBJECT_BIN && v->type != MSGPACK_OBJECT_STR)
			return FAIL;
		get_bytes(v, &s);
		b->p = (const uint8_t *)s.p;
		b->captured = s.n;
		return 0;
	}
	if (key_is(k, "body_len"))
		return get_uint(v, UINT64_MAX, &b->length);
	if (key_is(k, "body_truncated"))
		return get_bool(v, &b->truncated);
	if (key_is(k, "ts_start"))
		return get_double(v, ts_start);
	if (key_is(k, "ts_end"))
		return get_double(v, ts_end);
	return 1;
}

static int get_request(const msgpack_object *o, msgpack_zone *zone,
		       struct flow_request *r)
{
	if (o->type != MSGPACK_OBJECT_MAP)
		return FAIL;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;
		const msgpack_object *v = &o->via.map.ptr[i].val;
		int rc = get_msg_field(k, v, zone, &r->headers, &r->num_headers,
				       &r->trailers, &r->num_trailers,
				       &r->body, &r->ts_start, &r->ts_end);

		if (rc <= 0) {
			if (rc)
				return rc;
			continue;
		}
		rc = 0;
		if (key_is(k, "method"))
			rc = get_bytes(v, &r->method);
		else if (key_is(k, "scheme"))
			rc = get_bytes(v, &r->scheme);
		else if (key_is(k, "host"))
			rc = get_bytes(v, &r->host);
		else if (key_is(k, "port"))
			rc = get_u16(v, &r->port);
		else if (key_is(k, "path"))
			rc = get_bytes(v, &r->path);
		else if (key_is(k, "http_version"))
			rc = get_bytes(v, &r->http_version);
		if (rc)
			return rc;
	}
	return 0;
}

static int get_response(const msgpack_object *o, msgpack_zone *zone,
			struct flow_response *r)
{
	if (o->type != MSGPACK_OBJECT_MAP)
		return FAIL;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;
		const msgpack_object *v = &o->via.map.ptr[i].val;
		int rc = get_msg_field(k, v, zone, &r->headers, &r->num_headers,
				       &r->trailers, &r->num_trailers,
				       &r->body, &r->ts_start, &r->ts_end);

		if (rc <= 0) {
			if (rc)
				return rc;
			continue;
		}
		rc = 0;
		if (key_is(k, "status"))
			rc = get_u16(v, &r->status);
		else if (key_is(k, "reason"))
			rc = get_bytes(v, &r->reason);
		else if (key_is(k, "http_version"))
			rc = get_bytes(v, &r->http_version);
		if (rc)
			return rc;
	}
	return 0;
}

static int get_error(const msgpack_object *o, struct flow_error *e)
{
	if (o->type != MSGPACK_OBJECT_MAP)
		return FAIL;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;
		const msgpack_object *v = &o->via.map.ptr[i].val;
		int rc = 0;

		if (key_is(k, "code")) {
			if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER &&
			    v->via.i64 >= INT32_MIN)
				e->code = (int32_t)v->via.i64;
			else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
				 v->via.u64 <= INT32_MAX)
				e->code = (int32_t)v->via.u64;
			else
				rc = FAIL;
		} else if (key_is(k, "msg")) {
			rc = get_bytes(v, &e->msg);
		} else if (key_is(k, "name")) {
			/* derived from code; checked for type only */
			if (v->type != MSGPACK_OBJECT_STR)
				rc = FAIL;
		} else if (key_is(k, "ts")) {
			rc = get_double(v, &e->ts);
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int get_tcp_msgs(const msgpack_object *o, msgpack_zone *zone,
			struct flow *f)
{
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return FAIL;
	uint32_t n = o->via.array.size;
	struct flow_tcp_msg *m = NULL;
	if (n) {
		m = msgpack_zone_malloc(zone, sizeof(*m) * n);
		if (!m)
			return FAIL;
	}
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object *e = &o->via.array.ptr[i];
		if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 3 ||
		    get_bool(&e->via.array.ptr[0], &m[i].from_client) ||
		    get_double(&e->via.array.ptr[1], &m[i].ts) ||
		    get_bytes(&e->via.array.ptr[2], &m[i].content))
			return FAIL;
	}
	f->tcp_msgs = m;
	f->num_tcp_msgs = n;
	return 0;
}

static int get_tcp(const msgpack_object *o, msgpack_zone *zone, struct flow *f)
{
	if (o->type != MSGPACK_OBJECT_MAP)
		return FAIL;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;
		const msgpack_object *v = &o->via.map.ptr[i].val;
		int rc = 0;

		if (key_is(k, "host"))
			rc = get_bytes(v, &f->tcp_host);
		else if (key_is(k, "port"))
			rc = get_u16(v, &f->tcp_port);
		else if (key_is(k, "bytes_up"))
			rc = get_uint(v, UINT64_MAX, &f->bytes_up);
		else if (key_is(k, "bytes_down"))
			rc = get_uint(v, UINT64_MAX, &f->bytes_down);
		else if (key_is(k, "truncated"))
			rc = get_bool(v, &f->tcp_truncated);
		else if (key_is(k, "messages"))
			rc = get_tcp_msgs(v, zone, f);
		if (rc)
			return rc;
	}
	return 0;
}

static int get_tls(const msgpack_object *o, struct flow_tls *t)
{
	if (o->type != MSGPACK_OBJECT_MAP)
		return FAIL;
	t->present = true;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;
		const msgpack_object *v = &o->via.map.ptr[i].val;
		int rc = 0;

		if (key_is(k, "sni"))
			rc = get_bytes(v, &t->sni);
		else if (key_is(k, "alpn"))
			rc = get_bytes(v, &t->alpn);
		else if (key_is(k, "version"))
			rc = get_bytes(v, &t->version);
		else if (key_is(k, "cipher"))
			rc = get_bytes(v, &t->cipher);
		else if (key_is(k, "cert_sha256"))
			rc = get_bytes(v, &t->cert_sha256);
		else if (key_is(k, "cert_names"))
			rc = get_bytes(v, &t->cert_names);
		else if (key_is(k, "verify"))
			rc = get_bytes(v, &t->verify);
		else if (key_is(k, "ktls"))
			rc = get_bool(v, &t->ktls);
		else if (key_is(k, "ts_setup"))
			rc = get_double(v, &t->ts_setup);
		if (rc)
			return rc;
	}
	return 0;
}

static int get_dns(const msgpack_object *o, struct flow_dns *d)
{
	if (o->type != MSGPACK_OBJECT_MAP)
		return FAIL;
	d->rcode = -1;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;
		const msgpack_object *v = &o->via.map.ptr[i].val;
		int rc = 0;
		uint64_t u = 0;

		if (key_is(k, "query"))
			rc = get_bytes(v, &d->query);
		else if (key_is(k, "response"))
			rc = get_bytes(v, &d->response);
		else if (key_is(k, "qname"))
			rc = get_bytes(v, &d->qname);
		else if (key_is(k, "answers"))
			rc = get_bytes(v, &d->answers);
		else if (key_is(k, "qtype"))
			rc = get_u16(v, &d->qtype);
		else if (key_is(k, "rcode")) {
			if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
				d->rcode = -1;
			else if (!(rc = get_uint(v, 4095, &u)))
				d->rcode = (int16_t)u;
		} else if (key_is(k, "tcp"))
			rc = get_bool(v, &d->tcp);
		else if (key_is(k, "ts_query"))
			rc = get_double(v, &d->ts_query);
		else if (key_is(k, "ts_response"))
			rc = get_double(v, &d->ts_response);
		if (rc)
			return rc;
	}
	return 0;
}

/* One top-level key; unknown keys are skipped (forward compatibility). */
static int get_top(const msgpack_object *k, const msgpack_object *v,
		   msgpack_zone *zone, struct flow *f, unsigned *seen)
{
	int e = 0;
	uint64_t ver;
	int rc;

	if (key_is(k, "v")) {
		if (get_uint(v, UINT64_MAX, &ver) || ver != FLOW_SCHEMA_VERSION)
			return FAIL;
		*seen |= 1;
		return 0;
	}
	if (key_is(k, "id")) {
		if (v->type != MSGPACK_OBJECT_BIN || v->via.bin.size != 16)
			return FAIL;
		memcpy(f->id, v->via.bin.ptr, 16);
		*seen |= 2;
		return 0;
	}
	if (key_is(k, "type")) {
		rc = get_enum(v, type_names, FLOW_TYPE_COUNT, &e);
		f->type = (enum flow_type)e;
		*seen |= 4;
		return rc;
	}
	if (key_is(k, "mode")) {
		rc = get_enum(v, mode_names, FLOW_MODE_COUNT, &e);
		f->mode = (enum flow_mode)e;
		return rc;
	}
	if (key_is(k, "term")) {
		rc = get_enum(v, term_names, FLOW_TERM_COUNT, &e);
		f->term = (enum flow_term)e;
		return rc;
	}
	if (key_is(k, "client"))
		return get_conn(v, &f->client);
	if (key_is(k, "server")) {
		f->has_server = true;
		return get_conn(v, &f->server);
	}
	if (key_is(k, "request")) {
		f->has_request = true;
		return get_request(v, zone, &f->req);
	}
	if (key_is(k, "response")) {
		f->has_response = true;
		return get_response(v, zone, &f->resp);
	}
	if (key_is(k, "error")) {
		f->has_error = true;
		return get_error(v, &f->err);
	}
	if (key_is(k, "tcp"))
		return get_tcp(v, zone, f);
	if (key_is(k, "client_tls"))
		return get_tls(v, &f->client_tls);
	if (key_is(k, "dns")) {
		f->has_dns = true;
		return get_dns(v, &f->dns);
	}
	if (key_is(k, "server_tls"))
		return get_tls(v, &f->server_tls);
	return 0;
}

static uint64_t be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Walk the msgpack item headers without allocating: exactly one object
 * must fill buf, and no container may announce more elements than there
 * are bytes left (msgpack_unpack allocates by announced counts, so a
 * 5-byte "array of 2^32" would otherwise cost gigabytes). */
static int check_shape(const uint8_t *p, size_t len)
{
	uint64_t pending = 1;
	size_t off = 0;

	while (pending) {
		uint8_t c;
		uint64_t n = 0, skip = 0; /* n: new items; skip: bytes */
		int w = 0;                /* width of a length field */

		if (off >= len)
			return FAIL;
		pending--;
		c = p[off++];
		if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 ||
		    c == 0xc3)
			skip = 0;
		else if (c <= 0x8f)
			n = 2u * (c & 0x0f);
		else if (c <= 0x9f)
			n = c & 0x0f;
		else if (c <= 0xbf)
			skip = c & 0x1f;
		else if (c >= 0xc4 && c <= 0xc6)
			w = 1 << (c - 0xc4);       /* bin 8/16/32 */
		else if (c >= 0xc7 && c <= 0xc9) {
			w = 1 << (c - 0xc7);       /* ext 8/16/32 */
			skip = 1;                  /* its type byte */
		}
		else if (c == 0xca || c == 0xcb)
			skip = c == 0xca ? 4 : 8;
		else if (c >= 0xcc && c <= 0xd3)
			skip = 1u << ((c - 0xcc) & 3);
		else if (c >= 0xd4 && c <= 0xd8)
			skip = 1 + (1u << (c - 0xd4)); /* fixext */
		else if (c >= 0xd9 && c <= 0xdb)
			w = 1 << (c - 0xd9);       /* str 8/16/32 */
		else if (c == 0xdc || c == 0xdd || c == 0xde || c == 0xdf)
			w = c & 1 ? 4 : 2;         /* array/map 16/32 */
		else
			return FAIL;               /* 0xc1 */
		if (w) {
			uint64_t v;

			if (len - off < (size_t)w)
				return FAIL;
			v = be(p + off, w);
			off += w;
			if (c >= 0xdc)
				n = c >= 0xde ? 2 * v : v;
			else
				skip += v;
		}
		if (skip > len - off)
			return FAIL;
		off += skip;
		pending += n;
		if (pending > len - off)
			return FAIL;
	}
	return off == len ? 0 : FAIL;
}

int flow_decode(const void *buf, size_t len, msgpack_zone *zone,
		struct flow *out)
{
	msgpack_object root;
	size_t off = 0;
	unsigned seen = 0;

	memset(out, 0, sizeof(*out));
	if (check_shape(buf, len))
		return FAIL;
	if (msgpack_unpack(buf, len, &off, zone, &root) != MSGPACK_UNPACK_SUCCESS)
		return FAIL;
	if (root.type != MSGPACK_OBJECT_MAP)
		return FAIL;
	for (uint32_t i = 0; i < root.via.map.size; i++) {
		const msgpack_object_kv *kv = &root.via.map.ptr[i];

		if (get_top(&kv->key, &kv->val, zone, out, &seen)) {
			memset(out, 0, sizeof(*out));
			return FAIL;
		}
	}
	if (seen != 7) {
		memset(out, 0, sizeof(*out));
		return FAIL;
	}
	return 0;
}
