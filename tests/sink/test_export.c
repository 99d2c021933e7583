/* SPDX-License-Identifier: MIT */
/* Exporters: the tnetstring encoder against Python's tnetstring.dumps()
 * byte for byte, the mitmproxy flow state's framing and keys, and the HAR
 * of known flows field by field. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/export.h"

/* ---- tnetstring ---------------------------------------------------------- */

static struct tns T;

static void tns_setup(void)
{
	tns_init(&T);
}

static void tns_teardown(void)
{
	tns_free(&T);
}

/* The buffer equals |want| (a literal, may hold NULs) and is complete. */
#define TNS_IS(want)                                                           \
	do {                                                                   \
		cr_assert_eq(tns_status(&T), 0);                               \
		cr_assert_eq(T.len, sizeof(want) - 1, "length %zu, want %zu: " \
			     "%.*s", T.len, sizeof(want) - 1, (int)T.len,     \
			     (const char *)T.p);                               \
		cr_assert(!memcmp(T.p, want, sizeof(want) - 1), "got %.*s",    \
			  (int)T.len, (const char *)T.p);                      \
		tns_reset(&T);                                                 \
	} while (0)

TestSuite(tnetstring, .init = tns_setup, .fini = tns_teardown);

/* Expected values are what mitmproxy.io.tnetstring.dumps() returns. */
Test(tnetstring, scalars)
{
	tns_null(&T);
	TNS_IS("0:~");
	tns_bool(&T, true);
	TNS_IS("4:true!");
	tns_bool(&T, false);
	TNS_IS("5:false!");
	tns_int(&T, 12345);
	TNS_IS("5:12345#");
	tns_int(&T, 0);
	TNS_IS("1:0#");
	tns_int(&T, -5100);
	TNS_IS("5:-5100#");
	tns_int(&T, INT64_MIN);
	TNS_IS("20:-9223372036854775808#");
}

Test(tnetstring, floats_as_python_repr)
{
	tns_float(&T, 946681200.0);
	TNS_IS("11:946681200.0^");
	tns_float(&T, 1795494577.789411);
	TNS_IS("17:1795494577.789411^");
	tns_float(&T, 946681204.2);
	TNS_IS("11:946681204.2^");
	tns_float(&T, 0.1);
	TNS_IS("3:0.1^");
	tns_float(&T, 0.0);
	TNS_IS("3:0.0^");
	tns_float(&T, -2.5);
	TNS_IS("4:-2.5^");
	tns_float(&T, 1e-05);
	TNS_IS("5:1e-05^");
	tns_float(&T, 1e16);
	TNS_IS("5:1e+16^");
	tns_float(&T, 1.0 / 3.0);
	TNS_IS("18:0.3333333333333333^");
	tns_float(&T, 1.5e16);
	TNS_IS("7:1.5e+16^");
	tns_float(&T, 123456789012345.6);
	TNS_IS("17:123456789012345.6^");
	tns_float(&T, 0.0001);
	TNS_IS("6:0.0001^");
	tns_float(&T, 1.234e-7);
	TNS_IS("9:1.234e-07^");
	tns_float(&T, 1e100);
	TNS_IS("6:1e+100^");
}

Test(tnetstring, strings)
{
	tns_bytes(&T, "hello world", 11);
	TNS_IS("11:hello world,");
	tns_bytes(&T, "", 0);
	TNS_IS("0:,");
	tns_bytes(&T, "a\0\xff:,", 5);
	TNS_IS("5:a\0\xff:,,");
	tns_cstr(&T, "tcp");
	TNS_IS("3:tcp;");
	tns_cstr(&T, "caf\xc3\xa9");
	TNS_IS("5:caf\xc3\xa9;");
	/* Not UTF-8: each bad byte becomes U+FFFD, so Python can decode it. */
	tns_str(&T, "a\xff" "b\xc3", 4);
	TNS_IS("8:a\xef\xbf\xbd" "b\xef\xbf\xbd;");
	tns_str(&T, "\xed\xa0\x80", 3); /* a UTF-16 surrogate */
	TNS_IS("9:\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd;");
}

Test(tnetstring, containers)
{
	/* dumps([12345, True, 0]) */
	tns_list_begin(&T);
	tns_int(&T, 12345);
	tns_bool(&T, true);
	tns_int(&T, 0);
	tns_end(&T);
	TNS_IS("19:5:12345#4:true!1:0#]");

	tns_list_begin(&T);
	tns_end(&T);
	TNS_IS("0:]");
	tns_dict_begin(&T);
	tns_end(&T);
	TNS_IS("0:}");

	/* A TCPMessage and a state dict as mitmproxy writes them. */
	tns_list_begin(&T);
	tns_bool(&T, true);
	tns_bytes(&T, "hello", 5);
	tns_float(&T, 946681204.2);
	tns_end(&T);
	TNS_IS("30:4:true!5:hello,11:946681204.2^]");

	tns_dict_begin(&T);
	tns_cstr(&T, "address");
	tns_list_begin(&T);
	tns_cstr(&T, "127.0.0.1");
	tns_int(&T, 22);
	tns_end(&T);
	tns_cstr(&T, "error");
	tns_null(&T);
	tns_cstr(&T, "metadata");
	tns_dict_begin(&T);
	tns_end(&T);
	tns_end(&T);
	TNS_IS("56:7:address;17:9:127.0.0.1;2:22#]5:error;0:~8:metadata;0:}}");
}

/* A length prefix that grows by a digit when the payload is closed. */
Test(tnetstring, large_nested_payload)
{
	size_t n = 100000;
	char *big = malloc(n);
	cr_assert(big);
	memset(big, 'x', n);
	tns_dict_begin(&T);
	tns_cstr(&T, "content");
	tns_bytes(&T, big, n);
	tns_end(&T);
	cr_assert_eq(tns_status(&T), 0);
	/* "7:content;" 10 + "100000:" 7 + 100000 + "," 1 = 100018 */
	const char *want_head = "100018:7:content;100000:xxx";
	cr_assert_eq(T.len, 7 + 100018 + 1);
	cr_assert(!memcmp(T.p, want_head, strlen(want_head)));
	cr_assert_eq(T.p[T.len - 1], '}');
	cr_assert_eq(T.p[T.len - 2], ',');
	free(big);
}

Test(tnetstring, nesting_errors)
{
	tns_end(&T);
	cr_assert_eq(tns_status(&T), -EINVAL);
	tns_reset(&T);
	tns_list_begin(&T);
	cr_assert_eq(tns_status(&T), -EINVAL, "an open container is an error");
	tns_reset(&T);
	for (int i = 0; i <= TNS_MAX_DEPTH; i++)
		tns_list_begin(&T);
	cr_assert_eq(tns_status(&T), -EINVAL);
	tns_reset(&T);
	tns_int(&T, 1);
	TNS_IS("1:1#");
}

/* ---- Known flows --------------------------------------------------------- */

static const struct flow_header req_hdrs[] = {
	{RC_STR("Host"), RC_STR("example.com:9000")},
	{RC_STR("Cookie"), RC_STR("sid=abc; theme=dark")},
	{RC_STR("Content-Type"), RC_STR("application/x-www-form-urlencoded")},
	{RC_STR("X-Bin"), RC_STR("\xff\"")},
};
static const struct flow_header resp_hdrs[] = {
	{RC_STR("Content-Type"), RC_STR("text/html; charset=utf-8")},
	{RC_STR("Set-Cookie"),
	 RC_STR("sid=xyz; Path=/; Domain=example.com; "
		"Expires=Wed, 21 Oct 2015 07:28:00 GMT; Secure; HttpOnly")},
	{RC_STR("Location"), RC_STR("/next")},
};

/* A POST through regular mode on a fresh upstream connection:
 * request head at t0 = 1700000000.250, connect issued +1 ms, connected
 * +3 ms, request body done +4 ms, response head +10 ms, response done
 * +12 ms. */
static void known_flow(struct flow *f)
{
	memset(f, 0, sizeof(*f));
	for (int i = 0; i < 16; i++)
		f->id[i] = (uint8_t)(0x10 * i + i);
	f->type = FLOW_HTTP;
	f->mode = FLOW_MODE_REGULAR;
	f->term = FLOW_TERM_OK;
	strcpy(f->client.peer.addr, "127.0.0.1");
	f->client.peer.port = 41234;
	strcpy(f->client.local.addr, "127.0.0.1");
	f->client.local.port = 8080;
	f->client.ts_start = 1700000000.2;
	f->has_server = true;
	strcpy(f->server.peer.addr, "192.0.2.7");
	f->server.peer.port = 9000;
	strcpy(f->server.local.addr, "192.0.2.1");
	f->server.local.port = 50000;
	f->server.ts_start = 1700000000.251;
	f->server.ts_setup = 1700000000.253;
	f->has_request = true;
	f->req.method = RC_STR("POST");
	f->req.scheme = RC_STR("http");
	f->req.host = RC_STR("example.com");
	f->req.port = 9000;
	f->req.path = RC_STR("/a%20b?q=1+2&e=%C3%A9&flag");
	f->req.http_version = RC_STR("HTTP/1.1");
	f->req.headers = req_hdrs;
	f->req.num_headers = 4;
	f->req.body.p = (const uint8_t *)"x=1&y=a%26b";
	f->req.body.captured = 11;
	f->req.body.length = 11;
	f->req.ts_start = 1700000000.25;
	f->req.ts_end = 1700000000.254;
	f->has_response = true;
	f->resp.status = 302;
	f->resp.reason = RC_STR("Found");
	f->resp.http_version = RC_STR("HTTP/1.1");
	f->resp.headers = resp_hdrs;
	f->resp.num_headers = 3;
	f->resp.body.p = (const uint8_t *)"<p>moved</p>";
	f->resp.body.captured = 12;
	f->resp.body.length = 12;
	f->resp.ts_start = 1700000000.26;
	f->resp.ts_end = 1700000000.262;
}

/* Upstream refused: no server connection, no response. */
static void refused_flow(struct flow *f)
{
	known_flow(f);
	f->term = FLOW_TERM_UPSTREAM_ERROR;
	f->has_server = false;
	f->has_response = false;
	f->req.method = RC_STR("GET");
	f->req.body = (struct flow_body){0};
	f->req.ts_end = 0;
	f->has_error = true;
	f->err.code = RC_ENG_UPSTREAM_REFUSED;
	f->err.msg = RC_STR("upstream connection refused: example.com:9000");
	f->err.ts = 1700000000.2515;
}

static void tcp_flow(struct flow *f)
{
	memset(f, 0, sizeof(*f));
	f->id[0] = 1;
	f->type = FLOW_TCP;
	strcpy(f->client.peer.addr, "::1");
	f->client.peer.port = 1;
	f->client.ts_start = 1700000000.0;
	f->tcp_host = RC_STR("example.com");
	f->tcp_port = 443;
	f->bytes_up = 517;
	f->bytes_down = 4200;
}

/* Output of |fn| on |f| into a NUL-terminated heap string. */
static char *capture_har(const struct flow *f, int *res)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	struct har_writer w;

	cr_assert(m);
	cr_assert_eq(har_begin(&w, m, "9.9"), 0);
	*res = har_write_flow(&w, f);
	cr_assert_eq(har_end(&w), 0);
	fclose(m);
	return buf;
}

/* |har| contains |frag| once. */
static void has(const char *har, const char *frag)
{
	const char *p = strstr(har, frag);
	cr_assert(p, "missing %s in\n%s", frag, har);
	cr_assert(!strstr(p + 1, frag), "%s twice", frag);
}

Test(har, document_frame)
{
	struct flow f;
	int res;

	tcp_flow(&f);
	char *har = capture_har(&f, &res);
	cr_assert_eq(res, EXP_SKIP_TCP);
	cr_assert_str_eq(har, "{\"log\":{\"version\":\"1.2\",\"creator\":{"
			      "\"name\":\"ringcap\",\"version\":\"9.9\"},"
			      "\"pages\":[],\"entries\":[\n]}}\n");
	free(har);

	memset(&f, 0, sizeof(f));
	f.type = FLOW_HTTP;
	har = capture_har(&f, &res);
	cr_assert_eq(res, EXP_SKIP_NO_REQUEST);
	free(har);
}

Test(har, known_flow_field_by_field)
{
	struct flow f;
	int res;

	known_flow(&f);
	char *har = capture_har(&f, &res);
	cr_assert_eq(res, EXP_WRITTEN);
	/* entry */
	has(har, "{\"startedDateTime\":\"2023-11-14T22:13:20.250Z\"");
	/* blocked 1 + connect 2 + send 1 + wait 6 + receive 2 */
	has(har, ",\"time\":12.000,");
	/* request */
	has(har, "\"request\":{\"method\":\"POST\","
		 "\"url\":\"http://example.com:9000/a%20b?q=1+2&e=%C3%A9&flag\","
		 "\"httpVersion\":\"HTTP/1.1\",");
	has(har, "\"cookies\":[{\"name\":\"sid\",\"value\":\"abc\"},"
		 "{\"name\":\"theme\",\"value\":\"dark\"}],");
	has(har, "{\"name\":\"Host\",\"value\":\"example.com:9000\"}");
	/* a byte that is not UTF-8 as \u00XX, a quote escaped */
	has(har, "{\"name\":\"X-Bin\",\"value\":\"\\u00ff\\\"\"}");
	has(har, "\"queryString\":[{\"name\":\"q\",\"value\":\"1 2\"},"
		 "{\"name\":\"e\",\"value\":\"\xc3\xa9\"},"
		 "{\"name\":\"flag\",\"value\":\"\"}],");
	has(har, "\"postData\":{\"mimeType\":"
		 "\"application/x-www-form-urlencoded\","
		 "\"text\":\"x=1&y=a%26b\",\"params\":["
		 "{\"name\":\"x\",\"value\":\"1\"},"
		 "{\"name\":\"y\",\"value\":\"a&b\"}]}");
	/* "POST http://example.com:9000/a%20b?q=1+2&e=%C3%A9&flag HTTP/1.1\r\n"
	 * is 65 bytes; fields 24 + 29 + 49 + 11; final CRLF 2 */
	has(har, "\"headersSize\":180,\"bodySize\":11}");
	/* response */
	has(har, "\"response\":{\"status\":302,\"statusText\":\"Found\","
		 "\"httpVersion\":\"HTTP/1.1\",");
	has(har, "\"cookies\":[{\"name\":\"sid\",\"value\":\"xyz\","
		 "\"path\":\"/\",\"domain\":\"example.com\","
		 "\"expires\":\"2015-10-21T07:28:00.000Z\","
		 "\"httpOnly\":true,\"secure\":true}]");
	has(har, "\"content\":{\"size\":12,"
		 "\"mimeType\":\"text/html; charset=utf-8\","
		 "\"text\":\"<p>moved</p>\"}");
	has(har, "\"redirectURL\":\"/next\"");
	/* "HTTP/1.1 302 Found\r\n" 20; fields 40 + 105 + 18; CRLF 2 */
	has(har, "\"headersSize\":185,\"bodySize\":12}");
	has(har, "\"cache\":{}");
	has(har, "\"timings\":{\"blocked\":1.000,\"dns\":-1.000,"
		 "\"connect\":2.000,\"ssl\":-1.000,\"send\":1.000,"
		 "\"wait\":6.000,\"receive\":2.000}");
	has(har, "\"serverIPAddress\":\"192.0.2.7\",\"connection\":\"50000\"");
	has(har, "\"_ringcap\":{\"id\":\"00112233-4455-6677-8899-aabbccddeeff\","
		 "\"term\":\"ok\",\"client\":\"127.0.0.1:41234\"}");
	cr_assert(!strstr(har, "_error"));
	free(har);
}

Test(har, error_flow_has_status_0_and_error)
{
	struct flow f;
	int res;

	refused_flow(&f);
	char *har = capture_har(&f, &res);
	cr_assert_eq(res, EXP_WRITTEN);
	has(har, "\"response\":{\"status\":0,\"statusText\":\"\","
		 "\"httpVersion\":\"\",\"cookies\":[],\"headers\":[],"
		 "\"content\":{\"size\":0,\"mimeType\":\"x-unknown\"},"
		 "\"redirectURL\":\"\",\"headersSize\":-1,\"bodySize\":-1,"
		 "\"_error\":\"upstream connection refused: example.com:9000 "
		 "(ENG_UPSTREAM_REFUSED)\"}");
	/* no upstream connection: blocked/connect unknown; waited 1.5 ms
	 * from the request head to the error */
	has(har, "\"timings\":{\"blocked\":-1.000,\"dns\":-1.000,"
		 "\"connect\":-1.000,\"ssl\":-1.000,\"send\":0.000,"
		 "\"wait\":1.500,\"receive\":0.000}");
	has(har, "\"time\":1.500,");
	cr_assert(!strstr(har, "serverIPAddress"));
	cr_assert(!strstr(har, "postData"));
	has(har, "\"comment\":\"upstream connection refused");
	free(har);
}

Test(har, binary_and_truncated_bodies)
{
	struct flow f;
	int res;

	known_flow(&f);
	f.resp.body.p = (const uint8_t *)"\x89PNG\r\n\x1a\n\x00";
	f.resp.body.captured = 9;
	f.resp.body.length = 1000;
	f.resp.body.truncated = true;
	f.resp.headers = NULL;
	f.resp.num_headers = 0;
	char *har = capture_har(&f, &res);
	has(har, "\"content\":{\"size\":1000,\"mimeType\":\"x-unknown\","
		 "\"text\":\"iVBORw0KGgoA\",\"encoding\":\"base64\","
		 "\"comment\":\"body cut short by body_capture_limit: 9 of "
		 "1000 bytes captured\"}");
	has(har, "\"redirectURL\":\"\"");
	free(har);
}

/* ---- mitmproxy ----------------------------------------------------------- */

static char *capture_mitm(const struct flow *f, int *res, size_t *len)
{
	char *buf = NULL;
	FILE *m = open_memstream(&buf, len);
	struct tns t;

	cr_assert(m);
	tns_init(&t);
	*res = mitm_write_flow(m, &t, f);
	tns_free(&t);
	fclose(m);
	return buf;
}

static void mhas(const char *buf, size_t len, const char *frag)
{
	cr_assert(memmem(buf, len, frag, strlen(frag)), "missing %s in\n%.*s",
		  frag, (int)len, buf);
}

Test(mitm, http_flow_state)
{
	struct flow f;
	size_t len;
	int res;

	known_flow(&f);
	char *buf = capture_mitm(&f, &res, &len);
	cr_assert_eq(res, EXP_WRITTEN);
	/* one dict, its length prefix covering the rest exactly */
	char *colon = memchr(buf, ':', len);
	cr_assert(colon);
	cr_assert_eq(strtoul(buf, NULL, 10), len - (size_t)(colon - buf) - 2);
	cr_assert_eq(buf[len - 1], '}');
	mhas(buf, len, "7:version;2:17#4:type;4:http;2:id;36:"
		       "00112233-4455-6677-8899-aabbccddeeff;5:error;0:~");
	mhas(buf, len, "4:host;11:example.com;4:port;4:9000#"
		       "6:method;4:POST,6:scheme;4:http,"
		       "9:authority;16:example.com:9000,");
	mhas(buf, len, "7:content;11:x=1&y=a%26b,8:trailers;0:~"
		       "15:timestamp_start;13:1700000000.25^"
		       "13:timestamp_end;14:1700000000.254^");
	mhas(buf, len, "7:headers;");
	mhas(buf, len, "13:5:X-Bin,2:\xff\",]");
	mhas(buf, len, "11:status_code;3:302#6:reason;5:Found,");
	mhas(buf, len, "7:address;20:9:127.0.0.1;5:41234#]"
		       "8:sockname;19:9:127.0.0.1;4:8080#]");
	mhas(buf, len, "7:address;22:11:example.com;4:9000#]"
		       "10:ip_address;19:9:192.0.2.7;4:9000#]");
	mhas(buf, len, "19:timestamp_tcp_setup;14:1700000000.253^");
	mhas(buf, len, "9:websocket;0:~");
	mhas(buf, len, "8:metadata;43:7:ringcap;29:4:mode;7:regular;4:term;2:ok;}}");
	free(buf);
}

Test(mitm, error_and_tcp_flows)
{
	struct flow f;
	size_t len;
	int res;

	refused_flow(&f);
	char *buf = capture_mitm(&f, &res, &len);
	cr_assert_eq(res, EXP_WRITTEN);
	mhas(buf, len, "5:error;86:3:msg;45:upstream connection refused: "
		       "example.com:9000;9:timestamp;15:1700000000.2515^}");
	mhas(buf, len, "8:response;0:~");
	mhas(buf, len, "10:ip_address;0:~");
	mhas(buf, len, "13:1700000000.25^13:timestamp_end;0:~}"); /* request unfinished */
	mhas(buf, len, "10:error_code;5:-5100#10:error_name;20:ENG_UPSTREAM_REFUSED;");
	free(buf);

	tcp_flow(&f);
	buf = capture_mitm(&f, &res, &len);
	cr_assert_eq(res, EXP_WRITTEN);
	mhas(buf, len, "4:type;3:tcp;");
	mhas(buf, len, "8:messages;0:]");
	mhas(buf, len, "7:address;21:11:example.com;3:443#]");
	mhas(buf, len, "8:bytes_up;3:517#10:bytes_down;4:4200#");
	cr_assert(!memmem(buf, len, "7:request;", 10));
	free(buf);

	memset(&f, 0, sizeof(f));
	buf = capture_mitm(&f, &res, &len);
	cr_assert_eq(res, EXP_SKIP_NO_REQUEST);
	cr_assert_eq(len, 0);
	free(buf);
}

Test(mitm, truncated_body_is_missing_content)
{
	struct flow f;
	size_t len;
	int res;

	known_flow(&f);
	f.resp.body.length = 5000000;
	f.resp.body.truncated = true;
	char *buf = capture_mitm(&f, &res, &len);
	mhas(buf, len, "6:reason;5:Found,7:headers;");
	mhas(buf, len, "7:content;0:~8:trailers;0:~15:timestamp_start;13:1700000000.26^");
	mhas(buf, len, "23:response_content_length;7:5000000#"
		       "25:response_content_captured;2:12#");
	free(buf);
}
