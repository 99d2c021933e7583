/* SPDX-License-Identifier: MIT */
/* libFuzzer target for sink/filter: compile arbitrary expressions (the
 * parser, the Python-to-PCRE2 regex translation) and match each one that
 * compiles against a fixed flow (the evaluator, URL and header building). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sink/filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct flow_header req_h[] = {
	{RC_STR("Host"), RC_STR("[::1]:8080")},
	{RC_STR("Content-Type"), RC_STR("text/plain")},
	{RC_STR("Content-Encoding"), RC_STR("gzip")},
};
static struct flow_header resp_h[] = {
	{RC_STR("Content-Type"), RC_STR("image/png")},
	{RC_STR("Content-Encoding"), RC_STR("deflate")},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *expr = malloc(size + 1);
	if (!expr)
		return 0;
	memcpy(expr, data, size);
	expr[size] = 0;
	struct filter *f;
	char err[128];
	if (filter_compile(expr, &f, err, sizeof(err)) == 0) {
		struct flow fl;
		memset(&fl, 0, sizeof(fl));
		fl.type = FLOW_HTTP;
		strcpy(fl.client.peer.addr, "127.0.0.1");
		fl.has_request = true;
		fl.req.method = RC_STR("POST");
		fl.req.scheme = RC_STR("http");
		fl.req.host = RC_STR("example.com");
		fl.req.port = 80;
		fl.req.path = RC_STR("/a?b=\xff");
		fl.req.headers = req_h;
		fl.req.num_headers = 3;
		fl.req.body = (struct flow_body){(const uint8_t *)"\x1f\x8b\x08",
						 3, 10, true};
		fl.has_response = true;
		fl.resp.status = 200;
		fl.resp.headers = resp_h;
		fl.resp.num_headers = 2;
		fl.resp.body = (struct flow_body){(const uint8_t *)"x\x9c", 2, 2,
						  false};
		struct filter_scratch *s = filter_scratch_new(f);
		if (s) {
			filter_match(f, &fl, s);
			fl.type = FLOW_TCP;
			filter_match(f, &fl, s);
			filter_scratch_free(s);
		}
		filter_free(f);
	}
	free(expr);
	return 0;
}
