/* SPDX-License-Identifier: MIT */
/* libFuzzer target for proto/dns: the parser on the raw input (every text
 * inside the caller's buffer and NUL-terminated, every span inside the
 * message, prefixes refused), then round trips: the question re-encoded by
 * dns_write_query(), the A/AAAA/CNAME/PTR/NS answers by
 * dns_write_response(), an error answer by dns_write_error(), PTR names,
 * and TCP framing. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/dns.h"

#define CHECK(x)                   \
	do {                       \
		if (!(x))          \
			abort();   \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RRS 8

static struct dns_rr rrs[MAX_RRS], rrs2[MAX_RRS];
static char text[4096], text2[8192];
static uint8_t out[DNS_MAX_MSG];

static bool in(const void *pv, size_t n, const void *basev, size_t len)
{
	const char *p = pv, *base = basev;

	return p >= base && p <= base + len && n <= (size_t)(base + len - p);
}

static bool text_ok(const char *s, const struct dns_msg *m)
{
	return s == NULL ||
	       (in(s, 1, m->text, m->text_used) &&
		in(s, strlen(s) + 1, m->text, m->text_used));
}

static void check_msg(const struct dns_msg *m, const uint8_t *buf,
		      size_t len)
{
	size_t i;

	CHECK(m->msg_len <= len);
	CHECK(m->n_rrs <= m->max_rrs);
	CHECK(m->text_used <= m->text_cap);
	CHECK(m->rrs_more == (m->n_rrs < (size_t)m->ancount + m->nscount +
					       m->arcount));
	CHECK(m->has_question == (m->qdcount > 0));
	CHECK(text_ok(m->qname, m));
	CHECK(!m->qname || strlen(m->qname) == m->qname_len);
	CHECK(!m->has_question ||
	      (m->q_end > DNS_HEADER_LEN && m->q_end <= m->msg_len));
	for (i = 0; i < m->n_rrs; i++) {
		const struct dns_rr *r = &m->rrs[i];

		CHECK(text_ok(r->name, m));
		CHECK(text_ok(r->text, m));
		CHECK(in(r->rdata, r->rdlen, buf, m->msg_len));
		CHECK(r->section < DNS_SEC_COUNT);
		if (!m->text_short)
			CHECK(r->name != NULL);
		if (r->type == DNS_TYPE_A)
			CHECK(r->rdlen == 4);
		if (r->type == DNS_TYPE_AAAA)
			CHECK(r->rdlen == 16);
		(void)dns_type_str(r->type);
		(void)dns_class_str(r->cls);
	}
	(void)dns_rcode_str(m->rcode);
	(void)dns_opcode_str(m->opcode);
}

/* The question's text re-encodes to an equal question. */
static void roundtrip_query(const struct dns_msg *m)
{
	struct dns_msg m2;
	ssize_t n;

	if (!m->qname)
		return;
	n = dns_write_query(out, sizeof(out), m->id, m->qname, m->qtype,
			    m->rd);
	CHECK(n > 0);
	dns_msg_init(&m2, NULL, 0, text2, sizeof(text2));
	CHECK(dns_parse(out, (size_t)n, &m2, NULL) == 0);
	CHECK(m2.msg_len == (size_t)n);
	CHECK(dns_check_query(&m2) == 0);
	CHECK(m2.id == m->id && m2.qtype == m->qtype && m2.rd == m->rd);
	CHECK(strcmp(m2.qname, m->qname) == 0);
	CHECK(m2.qname_escaped == m->qname_escaped);
	CHECK(memcmp(out + DNS_HEADER_LEN, m->wire + DNS_HEADER_LEN,
		     (size_t)n - DNS_HEADER_LEN - 4) == 0);
}

static bool writable(const struct dns_rr *r)
{
	switch (r->type) {
	case DNS_TYPE_A:
	case DNS_TYPE_AAAA:
		return r->name != NULL;
	case DNS_TYPE_CNAME:
	case DNS_TYPE_PTR:
	case DNS_TYPE_NS:
		return r->name != NULL && r->text != NULL;
	default:
		return false;
	}
}

/* The parsed answers of the kinds a DNS server writes come back the same. */
static void roundtrip_response(const struct dns_msg *m)
{
	struct dns_rr ans[MAX_RRS];
	struct dns_msg m2;
	size_t n = 0, i;
	ssize_t w;

	if (!m->has_question || m->text_short)
		return;
	for (i = 0; i < m->n_rrs; i++)
		if (writable(&m->rrs[i]))
			ans[n++] = m->rrs[i];
	w = dns_write_response(out, sizeof(out), m, m->rcode, ans, n);
	CHECK(w > 0);
	dns_msg_init(&m2, rrs2, MAX_RRS, text2, sizeof(text2));
	CHECK(dns_parse(out, (size_t)w, &m2, NULL) == 0);
	CHECK(m2.id == m->id && m2.qr && !m2.tc && m2.rcode == m->rcode);
	CHECK(m2.qdcount == 1 && m2.ancount == n && m2.n_rrs == n);
	CHECK(strcmp(m2.qname, m->qname) == 0 && m2.qtype == m->qtype);
	for (i = 0; i < n; i++) {
		CHECK(rrs2[i].type == ans[i].type && rrs2[i].ttl == ans[i].ttl);
		CHECK(rrs2[i].cls == (ans[i].cls ? ans[i].cls : DNS_CLASS_IN));
		CHECK(rrs2[i].name && strcasecmp(rrs2[i].name, ans[i].name) == 0);
		CHECK(rrs2[i].text && strcmp(rrs2[i].text, ans[i].text) == 0);
	}
	/* a tight buffer truncates cleanly */
	if (n > 0) {
		ssize_t w2 = dns_write_response(out, (size_t)w - 1, m, 0, ans, n);

		CHECK(w2 > 0 && w2 < w);
		dns_msg_init(&m2, NULL, 0, NULL, 0);
		CHECK(dns_parse(out, (size_t)w2, &m2, NULL) == 0);
		CHECK(m2.tc && m2.ancount < n);
	}
}

static void fuzz_ptr(const struct dns_msg *m)
{
	struct sockaddr_storage ss, ss2;
	char name[DNS_PTR_NAME_MAX];
	int n;

	if (!m->qname)
		return;
	if (dns_ptr_addr(m->qname, m->qname_len, &ss) <= 0)
		return;
	n = dns_ptr_name((struct sockaddr *)&ss, name, sizeof(name));
	CHECK(n > 0 && (size_t)n < sizeof(name));
	CHECK(dns_ptr_addr(name, (size_t)n, &ss2) > 0);
	CHECK(memcmp(&ss, &ss2, sizeof(ss)) == 0);
}

static void fuzz_parse(const uint8_t *buf, size_t len)
{
	struct dns_msg m;
	size_t eo = 0, eo2;
	int rc;

	dns_msg_init(&m, rrs, MAX_RRS, text, (len & 0x100) ? 64 : sizeof(text));
	rc = dns_parse(buf, len, &m, &eo);
	if (rc < 0) {
		CHECK(eo <= len && rc_errname(rc)[0] != 'U');
		return;
	}
	check_msg(&m, buf, len);
	/* any prefix of what was parsed is refused */
	if (m.msg_len > 0) {
		struct dns_msg p;

		dns_msg_init(&p, NULL, 0, NULL, 0);
		CHECK(dns_parse(buf, m.msg_len - 1, &p, &eo2) < 0);
		CHECK(dns_parse(buf, m.msg_len / 2, &p, &eo2) < 0);
	}
	roundtrip_query(&m);
	roundtrip_response(&m);
	fuzz_ptr(&m);
}

static void fuzz_error(const uint8_t *buf, size_t len)
{
	struct dns_msg m;
	ssize_t w = dns_write_error(out, sizeof(out), buf, len,
				    DNS_RCODE_FORMERR);

	if (w < 0) {
		CHECK(w == -EINVAL &&
		      (len < 2 || (len >= 3 && (buf[2] & 0x80))));
		return;
	}
	dns_msg_init(&m, NULL, 0, text2, sizeof(text2));
	CHECK(dns_parse(out, (size_t)w, &m, NULL) == 0);
	CHECK(m.qr && m.rcode == DNS_RCODE_FORMERR && m.ancount == 0);
	CHECK(m.id == (uint16_t)(buf[0] << 8 | buf[1]));
}

static void fuzz_tcp(const uint8_t *buf, size_t len)
{
	const uint8_t *msg;
	size_t ml, eo;
	ssize_t n;

	while ((n = dns_tcp_frame(buf, len, &msg, &ml, &eo)) > 0) {
		CHECK((size_t)n == ml + 2 && (size_t)n <= len);
		CHECK(msg == buf + 2 && ml >= DNS_HEADER_LEN);
		buf += n;
		len -= (size_t)n;
	}
	CHECK(n == 0 || (n == RC_DNS_BAD_FRAME && eo == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	if (size > DNS_MAX_MSG)
		return 0;
	/* An exact-size copy so ASan sees any read past the end. */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	fuzz_parse(copy, size);
	fuzz_error(copy, size);
	fuzz_tcp(copy, size);
	free(copy);
	return 0;
}
