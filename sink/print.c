/* SPDX-License-Identifier: MIT */
/* Flow printers: mitmdump-style lines (live output and `ringcap read`) and
 * one JSON object per flow (`ringcap read --json`). Formats in docs/CLI.md
 * and FLOWLOG.md. */
#include "sink/flowlog.h"
#include "sink/json_out.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <strings.h>

/* --- text line ---------------------------------------------------------- */

/* Wire bytes go to a terminal: printable ASCII as is, the rest as \xNN. */
static void put_safe(FILE *out, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c >= 0x20 && c < 0x7f)
			fputc(c, out);
		else
			fprintf(out, "\\x%02x", c);
	}
}

static void put_str(FILE *out, struct rc_str s)
{
	put_safe(out, s.p, s.n);
}

static bool str_eq(struct rc_str s, const char *lit)
{
	return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

static void put_endpoint(FILE *out, const struct flow_endpoint *e)
{
	const char *a = e->addr[0] ? e->addr : "?";

	if (strchr(a, ':'))
		fprintf(out, "[%s]:%u", a, e->port);
	else
		fprintf(out, "%s:%u", a, e->port);
}

static void put_host(FILE *out, struct rc_str host)
{
	bool v6 = host.n && host.p[0] != '[' && memchr(host.p, ':', host.n);

	if (v6)
		fputc('[', out);
	put_str(out, host);
	if (v6)
		fputc(']', out);
}

/* mitmproxy's pretty_size: 612b, 4.1k, 120k, 2.3m (at most 5 chars). */
static void pretty_size(char out[16], uint64_t size)
{
	static const char units[] = "kmgt";
	double s = (double)size;

	if (size < 1024) {
		snprintf(out, 16, "%" PRIu64 "b", size);
		return;
	}
	for (int i = 0; i < 4; i++) {
		s /= 1024;
		if (s < 99.95) {
			snprintf(out, 16, "%.1f%c", s, units[i]);
			return;
		}
		if (s < 1024 || i == 3) {
			snprintf(out, 16, "%.0f%c", s, units[i]);
			return;
		}
	}
}

/* 3ms, 1.2s, 12.3s, 125s; "" when the interval is unknown. */
static void pretty_duration(char out[16], double start, double end)
{
	double d = end - start;

	out[0] = '\0';
	if (!(start > 0) || !(end > 0) || !(d >= 0) || !isfinite(d))
		return;
	if (d < 0.9995)
		snprintf(out, 16, "%.0fms", d * 1000);
	else if (d < 99.95)
		snprintf(out, 16, "%.1fs", d);
	else if (d < 1e9)
		snprintf(out, 16, "%.0fs", d);
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

static void put_url(FILE *out, const struct flow_request *r)
{
	struct rc_str scheme = r->scheme.n ? r->scheme : RC_STR("http");
	bool dflt = r->port == 0 || (str_eq(scheme, "http") && r->port == 80) ||
		    (str_eq(scheme, "https") && r->port == 443);

	put_str(out, scheme);
	fputs("://", out);
	put_host(out, r->host);
	if (!dflt)
		fprintf(out, ":%u", r->port);
	if (r->path.n == 0 || r->path.p[0] != '/')
		fputc('/', out);
	put_str(out, r->path);
}

static void put_request(FILE *out, const struct flow_request *r)
{
	put_str(out, r->method);
	fputc(' ', out);
	put_url(out, r);
	if (r->http_version.n) {
		fputc(' ', out);
		put_str(out, r->http_version);
	}
}

static void put_response(FILE *out, const struct flow *f)
{
	const struct flow_response *r = &f->resp;
	const struct flow_header *ct;
	char size[16], dur[16];

	fprintf(out, " << %u", r->status);
	if (r->reason.n) {
		fputc(' ', out);
		put_str(out, r->reason);
	}
	ct = find_header(r->headers, r->num_headers, "content-type");
	if (ct && ct->value.n) {
		const char *semi = memchr(ct->value.p, ';', ct->value.n);
		size_t n = semi ? (size_t)(semi - ct->value.p) : ct->value.n;

		while (n && ct->value.p[n - 1] == ' ')
			n--;
		if (n) {
			fputc(' ', out);
			put_safe(out, ct->value.p, n);
		}
	}
	pretty_size(size, r->body.length);
	fprintf(out, " %s", size);
	pretty_duration(dur, f->has_request ? f->req.ts_start : r->ts_start,
			r->ts_end);
	if (dur[0])
		fprintf(out, " %s", dur);
}

static void put_error(FILE *out, const struct flow_error *e)
{
	fputs(" << error: ", out);
	if (e->msg.n)
		put_str(out, e->msg);
	else
		fputs(rc_strerror(e->code), out);
	fprintf(out, " (%s)", rc_errname(e->code));
}

static void put_tcp(FILE *out, const struct flow *f)
{
	struct rc_str host = f->tcp_host.n ? f->tcp_host : f->req.host;
	char up[16], down[16], dur[16];
	double end = f->client.ts_end;

	if (!(end > 0) && f->has_server)
		end = f->server.ts_end;
	pretty_size(up, f->bytes_up);
	pretty_size(down, f->bytes_down);
	pretty_duration(dur, f->client.ts_start, end);
	/* a CONNECT tunnel, or a relay with no request (reverse:tcp,
	 * transparent, socks5) */
	fputs(f->has_request ? "CONNECT " : "TCP ", out);
	put_host(out, host);
	fprintf(out, ":%u tcp up %s down %s", f->tcp_port ? f->tcp_port :
			f->req.port, up, down);
	if (dur[0])
		fprintf(out, " %s", dur);
}

static void put_headers(FILE *out, const char *dir,
			const struct flow_header *h, uint32_t n)
{
	for (uint32_t i = 0; h && i < n; i++) {
		fprintf(out, "    %s ", dir);
		put_str(out, h[i].name);
		fputs(": ", out);
		put_str(out, h[i].value);
		fputc('\n', out);
	}
}

/* "DNS A example.test << NOERROR A 192.0.2.1 2ms" */
static void put_dns(FILE *out, const struct flow *f)
{
	static const struct {
		uint16_t t;
		const char *n;
	} types[] = {{1, "A"},    {2, "NS"},   {5, "CNAME"}, {6, "SOA"},
		     {12, "PTR"}, {15, "MX"},  {16, "TXT"},  {28, "AAAA"},
		     {33, "SRV"}, {64, "SVCB"}, {65, "HTTPS"}, {255, "ANY"}};
	static const char *const rcodes[] = {"NOERROR", "FORMERR", "SERVFAIL",
					     "NXDOMAIN", "NOTIMP", "REFUSED"};
	const struct flow_dns *d = &f->dns;
	char dur[16];
	const char *tn = NULL;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].t == d->qtype)
			tn = types[i].n;
	fprintf(out, "DNS%s ", d->tcp ? "/TCP" : "");
	if (tn)
		fputs(tn, out);
	else
		fprintf(out, "TYPE%u", d->qtype);
	fputc(' ', out);
	put_str(out, d->qname);
	if (d->rcode < 0)
		return;
	if (d->rcode < 6)
		fprintf(out, " << %s", rcodes[d->rcode]);
	else
		fprintf(out, " << RCODE%d", d->rcode);
	if (d->answers.n) {
		fputc(' ', out);
		put_str(out, d->answers);
	}
	pretty_duration(dur, d->ts_query, d->ts_response);
	if (dur[0])
		fprintf(out, " %s", dur);
}

void flow_print_line(FILE *out, const struct flow *f, int verbosity)
{
	put_endpoint(out, &f->client.peer);
	fputs(": ", out);
	if (f->type == FLOW_DNS) {
		put_dns(out, f);
	} else if (f->type == FLOW_TCP) {
		put_tcp(out, f);
	} else {
		if (f->has_request)
			put_request(out, &f->req);
		if (f->has_response)
			put_response(out, f);
	}
	if (f->has_error)
		put_error(out, &f->err);
	fputc('\n', out);
	if (verbosity < 1)
		return;
	if (f->has_request)
		put_headers(out, ">", f->req.headers, f->req.num_headers);
	if (f->has_response)
		put_headers(out, "<", f->resp.headers, f->resp.num_headers);
	if (f->has_response && f->resp.num_trailers)
		put_headers(out, "< trailer", f->resp.trailers,
			    f->resp.num_trailers);
}

/* --- JSON --------------------------------------------------------------- */
/* A JSON string; a byte that is not part of valid UTF-8 becomes \u00XX. */
static void json_bytes(FILE *out, const char *s, size_t n)
{
	fputc('"', out);
	json_escape(out, s, n);
	fputc('"', out);
}

static void json_str(FILE *out, struct rc_str s)
{
	json_bytes(out, s.p, s.n);
}

static void json_key(FILE *out, const char *k)
{
	fprintf(out, "\"%s\":", k);
}

static void json_num(FILE *out, const char *k, double v)
{
	json_key(out, k);
	if (isfinite(v))
		fprintf(out, "%.6f", v);
	else
		fputs("null", out);
}

static void base64(FILE *out, const uint8_t *p, size_t n)
{
	fputc('"', out);
	json_base64(out, p, n);
	fputc('"', out);
}

static void json_endpoint(FILE *out, const char *k,
			  const struct flow_endpoint *e)
{
	json_key(out, k);
	fputc('[', out);
	json_bytes(out, e->addr, strnlen(e->addr, sizeof(e->addr)));
	fprintf(out, ",%u]", e->port);
}

static void json_conn(FILE *out, const char *k, const struct flow_conn *c)
{
	json_key(out, k);
	fputc('{', out);
	json_endpoint(out, "peer", &c->peer);
	fputc(',', out);
	json_endpoint(out, "local", &c->local);
	fputc(',', out);
	json_num(out, "ts_start", c->ts_start);
	fputc(',', out);
	json_num(out, "ts_setup", c->ts_setup);
	fputc(',', out);
	json_num(out, "ts_end", c->ts_end);
	fputc('}', out);
}

static void json_fields(FILE *out, const char *k, const struct flow_header *h,
			uint32_t n)
{
	json_key(out, k);
	fputc('[', out);
	for (uint32_t i = 0; h && i < n; i++) {
		fputs(i ? ",[" : "[", out);
		json_str(out, h[i].name);
		fputc(',', out);
		json_str(out, h[i].value);
		fputc(']', out);
	}
	fputs("],", out);
}

/* headers, [trailers,] content, content_length, content_truncated,
 * ts_start, ts_end */
static void json_msg_tail(FILE *out, const struct flow_header *h, uint32_t n,
			  const struct flow_header *tr, uint32_t ntr,
			  const struct flow_body *b, double ts_start,
			  double ts_end)
{
	json_fields(out, "headers", h, n);
	if (ntr)
		json_fields(out, "trailers", tr, ntr);
	json_key(out, "content");
	base64(out, b->p, b->p ? b->captured : 0);
	fprintf(out, ",\"content_length\":%" PRIu64
		",\"content_truncated\":%s,", b->length,
		b->truncated ? "true" : "false");
	json_num(out, "ts_start", ts_start);
	fputc(',', out);
	json_num(out, "ts_end", ts_end);
}

static void json_request(FILE *out, const struct flow_request *r)
{
	fputs(",\"request\":{\"method\":", out);
	json_str(out, r->method);
	fputs(",\"scheme\":", out);
	json_str(out, r->scheme);
	fputs(",\"host\":", out);
	json_str(out, r->host);
	fprintf(out, ",\"port\":%u,\"path\":", r->port);
	json_str(out, r->path);
	fputs(",\"http_version\":", out);
	json_str(out, r->http_version);
	fputc(',', out);
	json_msg_tail(out, r->headers, r->num_headers, r->trailers,
		      r->num_trailers, &r->body, r->ts_start, r->ts_end);
	fputc('}', out);
}

static void json_response(FILE *out, const struct flow_response *r)
{
	fprintf(out, ",\"response\":{\"status\":%u,\"reason\":", r->status);
	json_str(out, r->reason);
	fputs(",\"http_version\":", out);
	json_str(out, r->http_version);
	fputc(',', out);
	json_msg_tail(out, r->headers, r->num_headers, r->trailers,
		      r->num_trailers, &r->body, r->ts_start, r->ts_end);
	fputc('}', out);
}

static void json_tls(FILE *out, const char *k, const struct flow_tls *t)
{
	fprintf(out, ",\"%s\":{", k);
	json_key(out, "sni");
	json_str(out, t->sni);
	fputc(',', out);
	json_key(out, "alpn");
	json_str(out, t->alpn);
	fputc(',', out);
	json_key(out, "version");
	json_str(out, t->version);
	fputc(',', out);
	json_key(out, "cipher");
	json_str(out, t->cipher);
	fprintf(out, ",\"ktls\":%s,", t->ktls ? "true" : "false");
	json_num(out, "ts_setup", t->ts_setup);
	if (t->cert_sha256.n) {
		fputc(',', out);
		json_key(out, "cert_sha256");
		json_str(out, t->cert_sha256);
	}
	if (t->cert_names.n) {
		fputc(',', out);
		json_key(out, "cert_names");
		json_str(out, t->cert_names);
	}
	if (t->verify.n) {
		fputc(',', out);
		json_key(out, "verify");
		json_str(out, t->verify);
	}
	fputc('}', out);
}

void flow_print_json(FILE *out, const struct flow *f)
{
	char id[37];

	flow_id_str(f->id, id);
	fprintf(out, "{\"id\":\"%s\",\"type\":\"%s\",\"mode\":\"%s\","
		"\"term\":\"%s\",", id, flow_type_str(f->type),
		flow_mode_str(f->mode), flow_term_str(f->term));
	json_conn(out, "client", &f->client);
	if (f->has_server) {
		fputc(',', out);
		json_conn(out, "server", &f->server);
	}
	if (f->has_request)
		json_request(out, &f->req);
	if (f->has_response)
		json_response(out, &f->resp);
	if (f->has_error) {
		fprintf(out, ",\"error\":{\"code\":%d,\"name\":\"%s\",\"msg\":",
			(int)f->err.code, rc_errname(f->err.code));
		if (f->err.msg.n) {
			json_str(out, f->err.msg);
		} else {
			/* one call: glibc may reuse strerror's buffer */
			const char *m = rc_strerror(f->err.code);

			json_bytes(out, m, strlen(m));
		}
		fputc(',', out);
		json_num(out, "ts", f->err.ts);
		fputc('}', out);
	}
	if (f->type == FLOW_TCP || f->tcp_host.n || f->bytes_up ||
	    f->bytes_down) {
		fputs(",\"tcp\":{\"host\":", out);
		json_str(out, f->tcp_host);
		fprintf(out, ",\"port\":%u,\"bytes_up\":%" PRIu64
			",\"bytes_down\":%" PRIu64, f->tcp_port,
			f->bytes_up, f->bytes_down);
		if (f->num_tcp_msgs) {
			fputs(",\"messages\":[", out);
			for (uint32_t i = 0; i < f->num_tcp_msgs; i++) {
				const struct flow_tcp_msg *m = &f->tcp_msgs[i];
				fprintf(out, "%s{\"from_client\":%s,", i ? "," : "",
					m->from_client ? "true" : "false");
				json_num(out, "ts", m->ts);
				fputs(",\"content\":", out);
				base64(out, (const uint8_t *)m->content.p,
				       m->content.n);
				fputc('}', out);
			}
			fputc(']', out);
		}
		fprintf(out, ",\"truncated\":%s}",
			f->tcp_truncated ? "true" : "false");
	}
	if (f->has_dns) {
		const struct flow_dns *d = &f->dns;
		fputs(",\"dns\":{\"qname\":", out);
		json_str(out, d->qname);
		fprintf(out, ",\"qtype\":%u,\"rcode\":%d,\"answers\":", d->qtype,
			d->rcode);
		json_str(out, d->answers);
		fprintf(out, ",\"tcp\":%s,", d->tcp ? "true" : "false");
		json_num(out, "ts_query", d->ts_query);
		fputc(',', out);
		json_num(out, "ts_response", d->ts_response);
		fputs(",\"query\":", out);
		base64(out, (const uint8_t *)d->query.p, d->query.n);
		fputs(",\"response\":", out);
		base64(out, (const uint8_t *)d->response.p, d->response.n);
		fputc('}', out);
	}
	if (f->client_tls.present)
		json_tls(out, "client_tls", &f->client_tls);
	if (f->server_tls.present)
		json_tls(out, "server_tls", &f->server_tls);
	fputs("}\n", out);
}
