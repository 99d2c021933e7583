/* SPDX-License-Identifier: MIT */
/* sink/filter: every operator on hand-made flows, precedence, quoting,
 * regex translation, and the parse trees and refusals of mitmproxy 8.1.1
 * (the expected dumps were produced by mitmproxy.flowfilter itself). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "sink/filter.h"

static struct flow_header req_h[] = {
	{RC_STR("Host"), RC_STR("example.com:8080")},
	{RC_STR("User-Agent"), RC_STR("curl/8.0")},
	{RC_STR("Content-Type"), RC_STR("application/json")},
};
static struct flow_header resp_h[] = {
	{RC_STR("Content-Type"), RC_STR("text/html; charset=utf-8")},
	{RC_STR("Server"), RC_STR("nginx")},
};
static const uint8_t req_body[] = "{\"user\":\"alice\"}";
static const uint8_t resp_body[] = "<html>\nHello\x00World</html>";

/* GET http://example.com:8080/api/v1?x=1 -> 200, from 10.0.0.1:41234 */
static struct flow http_flow(void)
{
	struct flow f;
	memset(&f, 0, sizeof(f));
	f.type = FLOW_HTTP;
	f.mode = FLOW_MODE_REGULAR;
	snprintf(f.client.peer.addr, sizeof(f.client.peer.addr), "10.0.0.1");
	f.client.peer.port = 41234;
	f.has_server = true;
	snprintf(f.server.peer.addr, sizeof(f.server.peer.addr), "93.184.216.34");
	f.server.peer.port = 8080;
	f.has_request = true;
	f.req.method = RC_STR("GET");
	f.req.scheme = RC_STR("http");
	f.req.host = RC_STR("example.com");
	f.req.port = 8080;
	f.req.path = RC_STR("/api/v1?x=1");
	f.req.http_version = RC_STR("HTTP/1.1");
	f.req.headers = req_h;
	f.req.num_headers = 3;
	f.req.body = (struct flow_body){req_body, sizeof(req_body) - 1,
					sizeof(req_body) - 1, false};
	f.has_response = true;
	f.resp.status = 200;
	f.resp.reason = RC_STR("OK");
	f.resp.http_version = RC_STR("HTTP/1.1");
	f.resp.headers = resp_h;
	f.resp.num_headers = 2;
	f.resp.body = (struct flow_body){resp_body, sizeof(resp_body) - 1,
					 sizeof(resp_body) - 1, false};
	return f;
}

static struct flow tcp_flow(void)
{
	struct flow f;
	memset(&f, 0, sizeof(f));
	f.type = FLOW_TCP;
	snprintf(f.client.peer.addr, sizeof(f.client.peer.addr), "::1");
	f.client.peer.port = 5000;
	f.tcp_host = RC_STR("db.internal");
	f.tcp_port = 5432;
	f.has_request = true;
	f.req.method = RC_STR("CONNECT");
	f.req.host = RC_STR("db.internal");
	f.req.port = 5432;
	f.req.path = RC_STR("");
	f.bytes_up = 10;
	return f;
}

static bool m(const char *expr, const struct flow *fl)
{
	struct filter *f;
	char err[256];
	int rc = filter_compile(expr, &f, err, sizeof(err));
	cr_assert_eq(rc, 0, "%s: %s", expr, err);
	struct filter_scratch *s = filter_scratch_new(f);
	cr_assert_not_null(s);
	bool r = filter_match(f, fl, s);
	/* a second run on a warm scratch gives the same answer */
	cr_assert_eq(filter_match(f, fl, s), r, "%s: unstable", expr);
	cr_assert_eq(filter_scratch_match_errors(s), 0);
	filter_scratch_free(s);
	filter_free(f);
	return r;
}

#define YES(e, fl) cr_expect(m((e), (fl)), "expected %s to match", (e))
#define NO(e, fl) cr_expect(!m((e), (fl)), "expected %s not to match", (e))

/* The error message, or NULL if |expr| compiles. */
static const char *err_of(const char *expr)
{
	static char err[256];
	struct filter *f;
	int rc = filter_compile(expr, &f, err, sizeof(err));
	if (rc == 0) {
		filter_free(f);
		return NULL;
	}
	cr_assert_eq(rc, RC_CFG_BAD_VALUE);
	cr_assert_null(f);
	return err;
}

#define REFUSED(e, msg)                                                        \
	do {                                                                   \
		const char *got_ = err_of(e);                                  \
		cr_expect(got_ && strstr(got_, (msg)),                        \
			  "%s: expected error containing '%s', got '%s'", (e), \
			  (msg), got_ ? got_ : "(compiled)");                  \
	} while (0)

static char *dump(const char *expr)
{
	static char buf[1024];
	struct filter *f;
	char err[256];
	cr_assert_eq(filter_compile(expr, &f, err, sizeof(err)), 0, "%s: %s",
		     expr, err);
	FILE *o = fmemopen(buf, sizeof(buf), "w");
	filter_dump(o, f);
	fclose(o);
	filter_free(f);
	return buf;
}

#define TREE(e, want) cr_expect_str_eq(dump(e), (want), "tree of %s", (e))

Test(filter, flow_kind_operators)
{
	struct flow h = http_flow(), t = tcp_flow();
	YES("~all", &h);
	YES("~all", &t);
	YES("~http", &h);
	NO("~http", &t);
	YES("~tcp", &t);
	NO("~tcp", &h);
	NO("~dns", &h);
	NO("~udp", &t);
	NO("~websocket", &h);
	YES("~s", &h);
	NO("~q", &h);
	NO("~s", &t);
	NO("~q", &t); /* ~q and ~s are for HTTP (and DNS) flows only */
	h.has_response = false;
	YES("~q", &h);
	NO("~s", &h);
	NO("~c 200", &h);
}

Test(filter, error_operator)
{
	struct flow h = http_flow(), t = tcp_flow();
	NO("~e", &h);
	h.has_error = true;
	h.err.code = RC_ENG_UPSTREAM_REFUSED;
	YES("~e", &h);
	t.has_error = true;
	YES("~e", &t);
}

Test(filter, flags_we_do_not_record)
{
	/* ringcap flows are never marked, replayed, commented: such flows in
	 * mitmproxy have marked "", is_replay None, metadata {}, comment "" */
	struct flow h = http_flow();
	NO("~marked", &h);
	NO("~replay", &h);
	NO("~replayq", &h);
	NO("~replays", &h);
	NO("~marker x", &h);
	NO("~comment x", &h);
	NO("~meta x", &h);
	/* ... and a regex that matches the empty string matches them all */
	YES("~marker \"\"", &h);
	YES("~comment ^$", &h);
	YES("~meta .*", &h);
	NO("!~marker .*", &h);
}

Test(filter, status_code)
{
	struct flow h = http_flow();
	YES("~c 200", &h);
	YES("~c 0200", &h);
	NO("~c 404", &h);
	NO("~c 20", &h);
	NO("~c 99999999999999999999", &h);
	h.resp.status = 404;
	YES("~c 404", &h);
	YES("~c   404", &h);
}

Test(filter, url)
{
	struct flow h = http_flow();
	/* pretty_url: scheme://Host-header[:port unless default]/path */
	YES("~u ^http://example\\.com:8080/api/v1\\?x=1$", &h);
	YES("~u /api/", &h);
	YES("/api/", &h); /* a bare word is ~u */
	YES("\"v1\\\\?x\"", &h);
	NO("\"v1?x\"", &h); /* regex v1?x */
	NO("~u /API/", &h); /* case-sensitive */
	NO("~u ^https", &h);
	/* the port is left out when it is the scheme's default */
	req_h[0].value = RC_STR("example.com");
	YES("~u ^http://example.com/api", &h);
	NO("~u :80", &h);
	req_h[0].value = RC_STR("example.com:8080");
	/* no Host header: built from host and port */
	h.req.num_headers = 0;
	h.req.host = RC_STR("10.1.2.3");
	h.req.port = 80;
	YES("~u ^http://10\\.1\\.2\\.3/api/v1", &h);
	/* CONNECT in authority form: host:port */
	h.req.method = RC_STR("CONNECT");
	h.req.path = RC_STR("");
	h.req.port = 443;
	YES("~u ^10\\.1\\.2\\.3:443$", &h);
	struct flow t = tcp_flow();
	NO("~u .", &t); /* TCP flows have no URL */
	NO("~u \"\"", &t);
	h.has_request = false;
	NO("~u \"\"", &h);
}

Test(filter, domain)
{
	struct flow h = http_flow();
	YES("~d example.com", &h);
	YES("~d EXAMPLE", &h); /* case-insensitive */
	YES("~d ^example\\.com$", &h);
	NO("~d 8080", &h); /* pretty_host has no port */
	NO("~d other", &h);
	/* request.host or the Host header */
	h.req.host = RC_STR("10.0.0.9");
	YES("~d ^10\\.0\\.0\\.9$", &h);
	YES("~d ^example\\.com$", &h);
	struct flow t = tcp_flow();
	NO("~d db", &t);
}

Test(filter, method)
{
	struct flow h = http_flow();
	YES("~m GET", &h);
	YES("~m get", &h); /* case-insensitive */
	YES("~m ^G", &h);
	NO("~m POST", &h);
}

Test(filter, headers)
{
	struct flow h = http_flow();
	/* "Name: value" lines, names as sent: case-sensitive */
	YES("~h \"User-Agent: curl\"", &h);
	NO("~h \"user-agent: curl\"", &h);
	YES("~h Server", &h);
	YES("~hq User-Agent", &h);
	NO("~hq Server", &h);
	YES("~hs Server", &h);
	NO("~hs User-Agent", &h);
	/* multiline: ^ and $ at each line; lines end in \r\n */
	YES("~hq ^User-Agent", &h);
	NO("~hq curl/8.0$", &h);
	YES("~hq \"curl/8.0\\r$\"", &h);
	h.has_response = false;
	NO("~hs Server", &h);
	NO("~h Server", &h);
	/* an empty header block still gets searched */
	h.req.num_headers = 0;
	YES("~hq \"\"", &h);
	struct flow t = tcp_flow();
	NO("~h \"\"", &t);
}

Test(filter, content_type)
{
	struct flow h = http_flow();
	YES("~t json", &h);
	YES("~t html", &h);
	YES("~tq json", &h);
	NO("~tq html", &h);
	YES("~ts html", &h);
	NO("~ts json", &h);
	NO("~t JSON", &h); /* case-sensitive on the value */
	YES("~ts charset=utf-8", &h);
}

Test(filter, asset)
{
	struct flow h = http_flow();
	NO("~a", &h);
	static struct flow_header css[] = {{RC_STR("content-type"),
					    RC_STR("text/css")}};
	h.resp.headers = css;
	h.resp.num_headers = 1;
	YES("~a", &h);
	static const char *const yes[] = {"image/png", "font/woff2",
		"application/font-woff", "application/javascript",
		"application/x-javascript", "text/javascript; charset=x"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		css[0].value = (struct rc_str){yes[i], (uint32_t)strlen(yes[i])};
		YES("~a", &h);
	}
	css[0].value = RC_STR("application/json");
	NO("~a", &h);
	h.has_response = false;
	NO("~a", &h);
}

Test(filter, body)
{
	struct flow h = http_flow();
	YES("~b alice", &h);
	YES("~b Hello", &h);
	YES("~bq alice", &h);
	NO("~bq Hello", &h);
	YES("~bs Hello", &h);
	NO("~bs alice", &h);
	/* DOTALL: . crosses lines; binary bytes match */
	YES("~bs \"<html>.Hello\"", &h);
	YES("~bs Hello\\x00World", &h);
	NO("~bs hello", &h);
	struct flow t = tcp_flow();
	NO("~b \"\"", &t); /* tunnels keep no content */
	h.req.body.captured = 0;
	NO("~bq \"\"", &h); /* an empty body is not searched */
}

Test(filter, body_gzip)
{
	struct flow h = http_flow();
	static const char plain[] = "compressed secret payload";
	uint8_t gz[128];
	z_stream z;
	memset(&z, 0, sizeof(z));
	cr_assert_eq(deflateInit2(&z, 9, Z_DEFLATED, 16 + 15, 8,
				  Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (Bytef *)plain;
	z.avail_in = sizeof(plain) - 1;
	z.next_out = gz;
	z.avail_out = sizeof(gz);
	cr_assert_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
	size_t n = sizeof(gz) - z.avail_out;
	deflateEnd(&z);
	static struct flow_header hd[] = {
		{RC_STR("Content-Encoding"), RC_STR("gzip")},
	};
	h.resp.headers = hd;
	h.resp.num_headers = 1;
	h.resp.body = (struct flow_body){gz, (uint32_t)n, n, false};
	YES("~bs \"secret payload\"", &h);
	/* not gzip after all: mitmproxy falls back to the raw bytes */
	hd[0].value = RC_STR("deflate");
	NO("~bs secret", &h);
	hd[0].value = RC_STR("identity");
	YES("~bs \\x1f\\x8b", &h);
}

Test(filter, src_dst)
{
	struct flow h = http_flow(), t = tcp_flow();
	YES("~src ^10\\.0\\.0\\.1:41234$", &h);
	NO("~src 10.0.0.2", &h);
	YES("~src ^::1:5000$", &t); /* no brackets, as mitmproxy */
	/* ~dst: server_conn.address, where the client asked to go */
	YES("~dst ^example\\.com:8080$", &h);
	NO("~dst 93.184", &h);
	YES("~dst ^db\\.internal:5432$", &t);
	h.mode = FLOW_MODE_UPSTREAM;
	YES("~dst ^93\\.184\\.216\\.34:8080$", &h);
	h.client.peer.addr[0] = 0;
	NO("~src \"\"", &h);
}

Test(filter, precedence)
{
	struct flow h = http_flow();
	/* ! binds tighter than &, & tighter than | */
	YES("~q | ~s & ~m GET", &h);
	NO("~q | ~s & ~m POST", &h);
	YES("~s | ~q & ~m POST", &h);
	NO("!~s & ~m GET", &h);
	YES("!~q & ~m GET", &h);
	YES("!(~s & ~m POST)", &h);
	YES("!!~s", &h);
	/* juxtaposition is and */
	YES("~s ~m GET", &h);
	NO("~s ~m POST", &h);
	TREE("a | b & c", "FOr\n\tFUrla\n\tFAnd\n\t\tFUrlb\n\t\tFUrlc\n");
	TREE("!a & b", "FAnd\n\tFNot\n\t\tFUrla\n\tFUrlb\n");
	TREE("a | b | c & d",
	     "FOr\n\tFUrla\n\tFUrlb\n\tFAnd\n\t\tFUrlc\n\t\tFUrld\n");
	TREE("(a | b) & c", "FAnd\n\tFOr\n\t\tFUrla\n\t\tFUrlb\n\tFUrlc\n");
	TREE("a b", "FAnd\n\tFUrla\n\tFUrlb\n");
	TREE("((a))", "FUrla\n");
	TREE("! a", "FNot\n\tFUrla\n");
}

Test(filter, pyparsing_quirks)
{
	/* Trees as mitmproxy 8.1.1 builds them. Words run until whitespace,
	 * ( ) ~ or a quote, so & | ! inside them are part of the word. */
	TREE("a|b&c", "FUrla|b&c\n");
	TREE("!a&b", "FNot\n\tFUrla&b\n");
	TREE("a& b", "FAnd\n\tFUrla&\n\tFUrlb\n");
	TREE("a &b", "FAnd\n\tFUrla\n\tFUrlb\n");
	TREE("~d foo&~s", "FAnd\n\tFDomainfoo&\n\tFResp\n");
	/* an operator with nothing after it reads as a word */
	TREE("a &", "FAnd\n\tFUrla\n\tFUrl&\n");
	TREE("a |", "FAnd\n\tFUrla\n\tFUrl|\n");
	TREE("!", "FUrl!\n");
	TREE("!!", "FNot\n\tFUrl!\n");
	TREE("a & & b", "FAnd\n\tFAnd\n\t\tFUrla\n\t\tFUrl&\n\tFUrlb\n");
	/* ~c takes the digits, the rest is another word */
	TREE("~c 200x", "FAnd\n\tFCode\n\tFUrlx\n");
	TREE("foo(bar)", "FAnd\n\tFUrlfoo\n\tFUrlbar\n");
	TREE("(~q )", "FReq\n");
	TREE("~all", "FAll\n");
	TREE("~replayq", "FReplayClient\n");
	TREE("~hq x", "FHeadRequestx\n");
	TREE("~comment x", "FCommentx\n");
	/* a non-ASCII character ends an operator (not in `printables`) */
	TREE("~q\xc3\xa9", "FAnd\n\tFReq\n\tFUrl\xc3\xa9\n");
	/* pyparsing expands tabs before parsing, quoted ones too */
	TREE("'a\tb'", "FUrla      b\n");
}

Test(filter, quoting)
{
	struct flow h = http_flow();
	TREE("~u \"a b\"", "FUrla b\n");
	TREE("~u 'a b'", "FUrla b\n");
	TREE("~u 'it\"s'", "FUrlit\"s\n");
	TREE("~u \"a\\\"b\"", "FUrla\"b\n");
	TREE("~u 'a\\'b'", "FUrla'b\n");
	/* in quotes a backslash escapes the next character and is dropped:
	 * "a\.b" is the regex a.b; write "a\\.b" for a\.b */
	TREE("~u \"a\\.b\"", "FUrla.b\n");
	TREE("~u \"a\\\\.b\"", "FUrla\\.b\n");
	TREE("~u \"\\d+\"", "FUrld+\n");
	/* \t \n \f \r become control characters */
	TREE("~u \"x\\ty\"", "FUrlx\ty\n");
	/* bare words keep backslashes */
	TREE("~u a\\.b", "FUrla\\.b\n");
	TREE("\"x\" \"y\"", "FAnd\n\tFUrlx\n\tFUrly\n");
	TREE("~u \"\"", "FUrl\n");
	YES("~h \"Server: nginx\"", &h);
	YES("~b 'user\":\"alice'", &h);
	NO("~u \"a\\.b\"", &h);
}

Test(filter, regex_syntax)
{
	struct flow h = http_flow();
	YES("~u [0-9]+", &h);
	YES("~u v\\d", &h);
	YES("~u \\?x=1\\Z", &h); /* \Z is the very end, as in Python */
	YES("~u \"(?i)/API/\"", &h);
	YES("~u \"(?P<p>api)/v1\"", &h);
	REFUSED("~u (?P<p>api)", "expected a regular expression"); /* ( ends a word */
	YES("~u a{,1}pi", &h);   /* {,n} is {0,n} in Python */
	NO("~u ^x{,1}pi", &h);
	YES("~u \\u0061pi", &h); /* \uXXXX in str patterns */
	YES("~u [[]*api", &h);  /* '[' in a class is a literal */
	YES("~u [:a]pi", &h);   /* not a POSIX class */
	YES("~b \\x61lice", &h);
	YES("~u \"\\\\.com\"", &h);
	NO("~u \"\\\\.co,\"", &h);
	YES("~u \"x=1$\"", &h);
	REFUSED("~u \\q", "bad escape");
	REFUSED("~u \"(?<n>a)\"", "invalid regular expression");
	REFUSED("~b \\u0061", "bad escape");
	REFUSED("~u \"a(\"",
		"~u: invalid regular expression 'a(' at column 4");
	REFUSED("~u *", "invalid regular expression");
	/* a bad regex anywhere ends the parse, as in mitmproxy */
	REFUSED("!*~s", "invalid regular expression '*' at column 2");
}

Test(filter, unicode)
{
	struct flow h = http_flow();
	h.req.path = RC_STR("/caf\xc3\xa9");
	YES("~u caf.$", &h);     /* str pattern: é is one character */
	YES("~u \xc3\xa9", &h);
	YES("~u \\w$", &h);   /* \w is Unicode for text */
	h.req.path = RC_STR("/caf\xe9"); /* not UTF-8 */
	YES("~u caf", &h);
	NO("~u caf.$", &h);
	h.resp.body = (struct flow_body){(const uint8_t *)"caf\xc3\xa9", 5, 5,
					 false};
	YES("~bs caf..$", &h);   /* bytes pattern: é is two bytes */
	NO("~bs caf\\w$", &h);
}

Test(filter, malformed)
{
	REFUSED("", "empty filter expression");
	REFUSED("   ", "expected a filter expression at column 4");
	REFUSED("~c", "~c: expected a number at column 3");
	REFUSED("~c x", "~c: expected a number at column 4");
	REFUSED("~s & ~c ok", "~c: expected a number at column 9");
	REFUSED("~d", "~d: expected a regular expression at column 3");
	REFUSED("~d (x)", "~d: expected a regular expression at column 4");
	REFUSED("~foo", "unknown operator '~foo' at column 1");
	REFUSED("~", "unknown operator '~' at column 1");
	REFUSED("(a b)", "expected ')' for the '(' at column 1 at column 4");
	REFUSED("(a", "expected ')'");
	REFUSED("()", "expected a filter expression, found ')' at column 2");
	REFUSED("a )", "found ')' at column 3");
	REFUSED("~u \"abc", "unterminated quoted string at column 4");
	REFUSED("~u 'a\nb'", "unterminated quoted string");
	/* mitmproxy requires whitespace (or the end) after an operator */
	REFUSED("(~q)", "~q: expected a space or the end after the operator, "
		"found ')' at column 4");
	REFUSED("~q&~s", "found '&' at column 3");
	REFUSED("~dfoo", "~d: expected a space");
	REFUSED("a \xff", "invalid UTF-8 at column 3");
	char deep[1000];
	memset(deep, '!', sizeof(deep) - 2);
	deep[sizeof(deep) - 2] = 'a';
	deep[sizeof(deep) - 1] = 0;
	REFUSED(deep, "nested too deeply");
	/* accepted where pyparsing backtracks */
	cr_expect_null(err_of("a & | b"));
	cr_expect_null(err_of("~udp")); /* mitmproxy >= 9 */
}

Test(filter, error_buffer)
{
	struct filter *f = (struct filter *)1;
	char small[8];
	cr_assert_eq(filter_compile("~c", &f, small, sizeof(small)),
		     RC_CFG_BAD_VALUE);
	cr_assert_null(f);
	cr_assert_eq(strlen(small), 7);
	cr_assert_eq(filter_compile("~c", &f, NULL, 0), RC_CFG_BAD_VALUE);
	cr_assert_eq(filter_compile("~s", &f, NULL, 0), 0);
	cr_assert_str_eq(filter_expr(f), "~s");
	filter_free(f);
	filter_free(NULL);
	filter_scratch_free(NULL);
}

Test(filter, many_flows_one_scratch)
{
	struct filter *f;
	char err[128];
	cr_assert_eq(filter_compile("~d example & (~u v1 | ~h nginx) & ~c 200",
				    &f, err, sizeof(err)), 0);
	struct filter_scratch *s = filter_scratch_new(f);
	struct flow h = http_flow(), t = tcp_flow();
	for (int i = 0; i < 1000; i++) {
		cr_assert(filter_match(f, &h, s));
		cr_assert(!filter_match(f, &t, s));
	}
	filter_scratch_free(s);
	filter_free(f);
}
