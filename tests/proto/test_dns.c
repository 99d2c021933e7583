/* SPDX-License-Identifier: MIT */
/* proto/dns tests: real dig queries and dnsmasq answers (the fuzz corpus,
 * recorded by tests/fuzz/capture_dns.py) parsed whole and as every shorter
 * prefix, each copy ending right before a PROT_NONE page; crafted messages
 * for compression, loops, limits and bad RDATA, each error with its offset;
 * the writers round-tripped through the parser. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/dns.h"
#include "tests/proto/harness.h"

#ifndef DNS_CORPUS
#define DNS_CORPUS "tests/fuzz/corpus/dns"
#endif

/* Parsing state shared by the tests. */
static struct guard G;
static struct dns_rr RRS[16];
static char TEXT[8192];
static struct dns_msg M;

static void setup(void)
{
	guard_init(&G, 70000);
}

static void teardown(void)
{
	guard_free(&G);
}

TestSuite(dns, .init = setup, .fini = teardown);

/* Parse raw[0..len) against the guard: whole must give |want| (at
 * |want_off|); every shorter prefix must fail, with RC_DNS_TRUNCATED or
 * (once the offending byte is in) the same error. |M| ends up holding the
 * parse of the whole input. */
static void parse_all_ways(const void *raw, size_t len, int want,
			   size_t want_off)
{
	size_t i, eo;
	int rc;

	for (i = 0; i <= len; i++) {
		uint8_t *p = guard_put(&G, raw, i);

		dns_msg_init(&M, RRS, 16, TEXT, sizeof(TEXT));
		eo = 12345;
		rc = dns_parse(p, i, &M, &eo);
		if (i == len) {
			cr_assert_eq(rc, want, "whole (%zu bytes): %d (%s at %zu), want %d",
				     len, rc, rc_errname(rc), eo, want);
			if (want < 0)
				cr_assert_eq(eo, want_off, "offset %zu, want %zu",
					     eo, want_off);
			break;
		}
		if (rc == RC_DNS_TRUNCATED) {
			cr_assert(eo <= i, "prefix %zu: offset %zu", i, eo);
			continue;
		}
		cr_assert(want < 0, "prefix %zu of %zu gave %d (%s)", i, len,
			  rc, rc_errname(rc));
		cr_assert_eq(rc, want, "prefix %zu gave %s", i, rc_errname(rc));
		cr_assert_eq(eo, want_off, "prefix %zu: offset %zu, want %zu",
			     i, eo, want_off);
	}
}

static size_t load(const char *name, uint8_t *buf, size_t cap)
{
	char path[512];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", DNS_CORPUS, name);
	f = fopen(path, "rb");
	cr_assert(f, "cannot open %s", path);
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

/* ---- Real messages ---- */

struct capture {
	const char *file;
	uint16_t id;
	bool qr, aa, rd, ra;
	uint8_t rcode;
	const char *qname;
	uint16_t qtype;
	uint16_t an;
	const char *a_name, *a_text; /* first answer */
	uint16_t a_type;
	bool edns;
};

static const struct capture captures[] = {
	{ "query-a", 0xf4a7, 0, 0, 1, 0, 0, "example.test", DNS_TYPE_A, 0,
	  NULL, NULL, 0, 1 },
	{ "query-noedns", 0xe410, 0, 0, 1, 0, 0, "example.test", DNS_TYPE_A, 0,
	  NULL, NULL, 0, 0 },
	{ "query-norec-cookie", 0x2cd5, 0, 0, 0, 0, 0, "example.test",
	  DNS_TYPE_A, 0, NULL, NULL, 0, 1 },
	{ "query-ptr6", 0xd97f, 0, 0, 1, 0, 0,
	  "9.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa",
	  DNS_TYPE_PTR, 0, NULL, NULL, 0, 1 },
	{ "response-a", 0xf4a7, 1, 1, 1, 1, 0, "example.test", DNS_TYPE_A, 1,
	  "example.test", "127.0.0.9", DNS_TYPE_A, 1 },
	{ "response-aaaa", 0x6ad2, 1, 1, 1, 1, 0, "example.test",
	  DNS_TYPE_AAAA, 1, "example.test", "fd00::9", DNS_TYPE_AAAA, 1 },
	{ "response-cname", 0x40b4, 1, 1, 1, 1, 0, "www.example.test",
	  DNS_TYPE_A, 1, "www.example.test", "example.test", DNS_TYPE_CNAME,
	  1 },
	{ "response-mx", 0x4e45, 1, 1, 1, 1, 0, "example.test", DNS_TYPE_MX,
	  1, "example.test", "10 mail.example.test", DNS_TYPE_MX, 1 },
	{ "response-txt", 0x0501, 1, 1, 1, 1, 0, "example.test",
	  DNS_TYPE_TXT, 1, "example.test",
	  "\"v=spf1 -all\" \"second \\\"quoted\\\" string\"", DNS_TYPE_TXT, 1 },
	{ "response-ptr", 0xa5db, 1, 1, 1, 1, 0, "9.0.0.127.in-addr.arpa",
	  DNS_TYPE_PTR, 1, "9.0.0.127.in-addr.arpa", "host9.example.test",
	  DNS_TYPE_PTR, 1 },
	{ "response-nxdomain", 0x1bae, 1, 0, 1, 1, DNS_RCODE_NXDOMAIN,
	  "nope.invalid", DNS_TYPE_A, 0, NULL, NULL, 0, 1 },
	{ "response-srv", 0x13a2, 1, 1, 1, 1, 0, "_http._tcp.example.test",
	  DNS_TYPE_SRV, 1, "_http._tcp.example.test", NULL, DNS_TYPE_SRV, 1 },
	{ "response-mixedcase", 0x5546, 1, 1, 1, 1, 0, "ExAmPlE.TeSt",
	  DNS_TYPE_A, 1, "ExAmPlE.TeSt", "127.0.0.9", DNS_TYPE_A, 1 },
	{ "response-noedns", 0xe410, 1, 1, 1, 1, 0, "example.test",
	  DNS_TYPE_A, 1, "example.test", "127.0.0.9", DNS_TYPE_A, 0 },
};

Test(dns, captures)
{
	uint8_t buf[4096];

	for (size_t i = 0; i < sizeof(captures) / sizeof(captures[0]); i++) {
		const struct capture *c = &captures[i];
		size_t n = load(c->file, buf, sizeof(buf));

		parse_all_ways(buf, n, 0, 0);
		cr_assert_eq(M.id, c->id, "%s", c->file);
		cr_assert_eq(M.qr, c->qr, "%s", c->file);
		cr_assert_eq(M.aa, c->aa, "%s", c->file);
		cr_assert_eq(M.rd, c->rd, "%s", c->file);
		cr_assert_eq(M.ra, c->ra, "%s", c->file);
		cr_assert_eq(M.opcode, 0);
		cr_assert_eq(M.rcode, c->rcode, "%s", c->file);
		cr_assert_eq(M.qdcount, 1);
		cr_assert(M.has_question);
		cr_assert_str_eq(M.qname, c->qname, "%s", c->file);
		cr_assert_eq(M.qname_len, strlen(c->qname));
		cr_assert_not(M.qname_escaped);
		cr_assert_eq(M.qtype, c->qtype, "%s", c->file);
		cr_assert_eq(M.qclass, DNS_CLASS_IN);
		cr_assert_eq(M.ancount, c->an, "%s", c->file);
		cr_assert_eq(M.has_edns, c->edns, "%s", c->file);
		if (c->edns)
			cr_assert_eq(M.edns_udp_size, 1232);
		cr_assert_eq(M.n_rrs, (size_t)M.ancount + M.nscount + M.arcount);
		cr_assert_not(M.rrs_more);
		cr_assert_not(M.text_short);
		cr_assert_eq(M.msg_len, n);
		cr_assert_eq(dns_check_query(&M), c->qr ? RC_DNS_NOT_QUERY : 0);
		if (c->an) {
			cr_assert_eq(RRS[0].section, DNS_SEC_ANSWER);
			cr_assert_str_eq(RRS[0].name, c->a_name);
			cr_assert_eq(RRS[0].type, c->a_type);
			cr_assert_eq(RRS[0].cls, DNS_CLASS_IN);
			if (c->a_text)
				cr_assert_str_eq(RRS[0].text, c->a_text,
						 "%s: %s", c->file, RRS[0].text);
			else
				cr_assert_null(RRS[0].text);
			cr_assert(RRS[0].rdata > G.map &&
				  RRS[0].rdata + RRS[0].rdlen <= G.map + G.size);
		}
		if (c->edns) {
			const struct dns_rr *opt = &RRS[M.n_rrs - 1];

			cr_assert_eq(opt->type, DNS_TYPE_OPT);
			cr_assert_eq(opt->section, DNS_SEC_ADDITIONAL);
			cr_assert_str_eq(opt->name, ".");
		}
	}
	cr_assert_eq(RRS[0].pref, 0);
}

Test(dns, mx_pref)
{
	uint8_t buf[512];
	size_t n = load("response-mx", buf, sizeof(buf));

	parse_all_ways(buf, n, 0, 0);
	cr_assert_eq(RRS[0].pref, 10);
}

/* ---- Crafted messages ---- */

/* Build messages by hand: header fields, then raw section bytes. */
static size_t msg(uint8_t *out, uint16_t flags, uint16_t qd, uint16_t an,
		  uint16_t ns, uint16_t ar, const void *body, size_t blen)
{
	static const uint8_t id[2] = { 0xbe, 0xef };

	memcpy(out, id, 2);
	out[2] = (uint8_t)(flags >> 8);
	out[3] = (uint8_t)flags;
	out[4] = (uint8_t)(qd >> 8), out[5] = (uint8_t)qd;
	out[6] = (uint8_t)(an >> 8), out[7] = (uint8_t)an;
	out[8] = (uint8_t)(ns >> 8), out[9] = (uint8_t)ns;
	out[10] = (uint8_t)(ar >> 8), out[11] = (uint8_t)ar;
	memcpy(out + 12, body, blen);
	return 12 + blen;
}

#define B(s) (s), (sizeof(s) - 1)
#define QEX "\x07" "example\x04test\x00\x00\x01\x00\x01" /* 18 bytes at 12 */

Test(dns, compression)
{
	uint8_t m[512];
	/* answer 1: www + pointer to example.test (offset 12); answer 2:
	 * pointer to answer 1's owner (offset 30), CNAME rdata pointer. */
	size_t n = msg(m, 0x8180, 1, 2, 0, 0,
		       B(QEX "\x03www\xc0\x0c\x00\x05\x00\x01\x00\x00\x0e\x10"
			     "\x00\x02\xc0\x0c"
			     "\xc0\x1e\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04"
			     "\x0a\x00\x00\x01"));

	parse_all_ways(m, n, 0, 0);
	cr_assert_eq(M.n_rrs, 2);
	cr_assert_str_eq(RRS[0].name, "www.example.test");
	cr_assert_eq(RRS[0].ttl, 3600);
	cr_assert_str_eq(RRS[0].text, "example.test");
	cr_assert_str_eq(RRS[1].name, "www.example.test");
	cr_assert_str_eq(RRS[1].text, "10.0.0.1");
	cr_assert_eq(dns_check_query(&M), RC_DNS_NOT_QUERY);
}

Test(dns, pointer_errors)
{
	uint8_t m[8192];
	size_t n;

	/* the question's name points at itself */
	n = msg(m, 0, 1, 0, 0, 0, B("\xc0\x0c\x00\x01\x00\x01"));
	parse_all_ways(m, n, RC_DNS_BAD_POINTER, 12);
	/* label, then a pointer back to that label: the classic loop */
	n = msg(m, 0, 1, 0, 0, 0, B("\x01" "a\xc0\x0c\x00\x01\x00\x01"));
	parse_all_ways(m, n, RC_DNS_BAD_POINTER, 14);
	/* forward pointer */
	n = msg(m, 0, 1, 0, 0, 0, B("\xc0\x12\x00\x01\x00\x01\x01" "a\x00"));
	parse_all_ways(m, n, RC_DNS_BAD_POINTER, 12);
	/* into the header */
	n = msg(m, 0, 1, 0, 0, 0, B("\xc0\x02\x00\x01\x00\x01"));
	parse_all_ways(m, n, RC_DNS_BAD_POINTER, 12);
	/* answer name: A -> B where B points back to A's segment (30 -> 32
	 * -> 30 is impossible; 32 -> 30 with 30 a label then 32: loop) */
	n = msg(m, 0x8000, 1, 1, 0, 0,
		B(QEX "\x01x\xc0\x1e\x00\x01\x00\x01\x00\x00\x00\x00\x00\x04"
		      "\x01\x02\x03\x04"));
	parse_all_ways(m, n, RC_DNS_BAD_POINTER, 32);
	/* pointer past the end / cut in half */
	n = msg(m, 0, 1, 0, 0, 0, B("\xc0"));
	parse_all_ways(m, n, RC_DNS_TRUNCATED, 12);

	/* Too many hops: question "." at 12; answer 1 (owner ".", unknown
	 * type, raw) carries in its RDATA a chain of 128 pointers, each to
	 * the one before, the first to 12; answer 2's owner points into the
	 * chain. */
	{
		const size_t c0 = 12 + 5 + 11; /* the chain's first pointer */
		size_t k, p, prev = 12;

		n = msg(m, 0x8000, 1, 2, 0, 0,
			B("\x00\x00\x01\x00\x01"
			  "\x00\xff\x00\x00\x01\x00\x00\x00\x00\x01\x00"));
		for (k = 0; k < 128; k++) {
			m[c0 + 2 * k] = (uint8_t)(0xc0 | prev >> 8);
			m[c0 + 2 * k + 1] = (uint8_t)prev;
			prev = c0 + 2 * k;
		}
		p = c0 + 256;
		memcpy(m + p + 2, "\x00\x01\x00\x01\x00\x00\x00\x00\x00\x04"
				  "\x01\x02\x03\x04", 14);
		n = p + 16;
		/* owner -> pointer 127: pointer k is hop 129 - k; hop 128
		 * (pointer 1) is one too many */
		m[p] = (uint8_t)(0xc0 | prev >> 8);
		m[p + 1] = (uint8_t)prev;
		parse_all_ways(m, n, RC_DNS_BAD_POINTER, c0 + 2);
		/* owner -> pointer 125: 127 hops, fine */
		m[p + 1] = (uint8_t)(c0 + 2 * 125);
		m[p] = (uint8_t)(0xc0 | (c0 + 2 * 125) >> 8);
		parse_all_ways(m, n, 0, 0);
		cr_assert_str_eq(RRS[1].name, ".");
		cr_assert_str_eq(RRS[1].text, "1.2.3.4");
	}
}

Test(dns, label_errors)
{
	uint8_t m[1024], body[600];
	size_t n, o, k;

	n = msg(m, 0, 1, 0, 0, 0, B("\x40" "a\x00\x00\x01\x00\x01"));
	parse_all_ways(m, n, RC_DNS_BAD_LABEL, 12);
	n = msg(m, 0, 1, 0, 0, 0, B("\x01" "a\x80\x00\x00\x01\x00\x01"));
	parse_all_ways(m, n, RC_DNS_BAD_LABEL, 14);

	/* 4 labels of 63: 256 bytes with the root: one too many */
	for (o = 0, k = 0; k < 4; k++) {
		body[o++] = 63;
		memset(body + o, 'a' + (int)k, 63);
		o += 63;
	}
	body[o++] = 0;
	memcpy(body + o, "\x00\x01\x00\x01", 4);
	n = msg(m, 0, 1, 0, 0, 0, body, o + 4);
	parse_all_ways(m, n, RC_DNS_NAME_TOO_LONG, 12 + 3 * 64);
	/* 3 x 63 + 1 x 61: 255 bytes: the longest name */
	body[3 * 64] = 61;
	memmove(body + 3 * 64 + 62, body + 4 * 64, 5);
	n = msg(m, 0, 1, 0, 0, 0, body, 3 * 64 + 62 + 5);
	parse_all_ways(m, n, 0, 0);
	cr_assert_eq(M.qname_len, 3 * 64 + 61);
}

Test(dns, escapes)
{
	uint8_t m[128], q[128];
	ssize_t w;
	size_t n = msg(m, 0x0100, 1, 0, 0, 0,
		       B("\x05" "a.b c\x03\\\"\xff\x00\x00\x10\x00\x01"));

	parse_all_ways(m, n, 0, 0);
	cr_assert_str_eq(M.qname, "a\\.b\\032c.\\\\\\\"\\255");
	cr_assert(M.qname_escaped);
	/* and back to the same wire form */
	w = dns_write_query(q, sizeof(q), 0xbeef, M.qname, DNS_TYPE_TXT, true);
	cr_assert_eq(w, (ssize_t)n);
	cr_assert_eq(memcmp(q, m, n), 0);
}

Test(dns, rdata_errors)
{
	uint8_t m[256];
	size_t n;

	/* A with 5 bytes */
	n = msg(m, 0x8000, 1, 1, 0, 0,
		B(QEX "\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x00\x00\x05"
		      "\x01\x02\x03\x04\x05"));
	parse_all_ways(m, n, RC_DNS_BAD_RDATA, 42);
	/* AAAA with 4 */
	n = msg(m, 0x8000, 1, 1, 0, 0,
		B(QEX "\xc0\x0c\x00\x1c\x00\x01\x00\x00\x00\x00\x00\x04"
		      "\x01\x02\x03\x04"));
	parse_all_ways(m, n, RC_DNS_BAD_RDATA, 42);
	/* rdlen past the end: truncated at the rdlength field */
	n = msg(m, 0x8000, 1, 1, 0, 0,
		B(QEX "\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x00\x00\x04"
		      "\x01\x02\x03"));
	parse_all_ways(m, n, RC_DNS_TRUNCATED, 40);
	/* fixed part cut */
	n = msg(m, 0x8000, 1, 1, 0, 0, B(QEX "\xc0\x0c\x00\x01\x00\x01\x00"));
	parse_all_ways(m, n, RC_DNS_TRUNCATED, 32);
	/* answer missing altogether */
	n = msg(m, 0x8000, 1, 1, 0, 0, B(QEX));
	parse_all_ways(m, n, RC_DNS_TRUNCATED, 30);
	/* CNAME whose name runs past its 3-byte rdata */
	n = msg(m, 0x8000, 1, 1, 0, 0,
		B(QEX "\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x00\x00\x03"
		      "\x03www\x00"));
	/* the bytes after the RDATA exist, so it is the RDATA's fault */
	parse_all_ways(m, n, RC_DNS_BAD_RDATA, 42);
	/* CNAME with a byte to spare after the name */
	n = msg(m, 0x8000, 1, 1, 0, 0,
		B(QEX "\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x00\x00\x04"
		      "\xc0\x0c\xff\xff"));
	parse_all_ways(m, n, RC_DNS_BAD_RDATA, 44);
	/* MX too short */
	n = msg(m, 0x8000, 1, 1, 0, 0,
		B(QEX "\xc0\x0c\x00\x0f\x00\x01\x00\x00\x00\x00\x00\x02"
		      "\x00\x0a"));
	parse_all_ways(m, n, RC_DNS_BAD_RDATA, 42);
	/* TXT string longer than the rdata */
	n = msg(m, 0x8000, 1, 1, 0, 0,
		B(QEX "\xc0\x0c\x00\x10\x00\x01\x00\x00\x00\x00\x00\x03"
		      "\x05" "ab"));
	parse_all_ways(m, n, RC_DNS_BAD_RDATA, 42);
	/* OPT not owned by the root */
	n = msg(m, 0, 1, 0, 0, 1,
		B(QEX "\xc0\x0c\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00"));
	parse_all_ways(m, n, RC_DNS_BAD_RDATA, 30);
	/* OPT option running past the rdata */
	n = msg(m, 0, 1, 0, 0, 1,
		B(QEX "\x00\x00\x29\x10\x00\x00\x00\x80\x00\x00\x05"
		      "\x00\x0a\x00\x08\x01"));
	parse_all_ways(m, n, RC_DNS_BAD_RDATA, 41);
	/* good OPT: DO bit, version 0, size 4096 */
	n = msg(m, 0, 1, 0, 0, 1,
		B(QEX "\x00\x00\x29\x10\x00\x00\x00\x80\x00\x00\x06"
		      "\x00\x0a\x00\x02\x01\x02"));
	parse_all_ways(m, n, 0, 0);
	cr_assert(M.has_edns);
	cr_assert(M.edns_do);
	cr_assert_eq(M.edns_udp_size, 4096);
	/* empty TXT and odd TXT bytes */
	n = msg(m, 0x8000, 1, 2, 0, 0,
		B(QEX "\xc0\x0c\x00\x10\x00\x01\x00\x00\x00\x00\x00\x00"
		      "\xc0\x0c\x00\x10\x00\x01\x00\x00\x00\x00\x00\x05"
		      "\x00\x03\x01\\\""));
	parse_all_ways(m, n, 0, 0);
	cr_assert_str_eq(RRS[0].text, "");
	cr_assert_str_eq(RRS[1].text, "\"\" \"\\001\\\\\\\"\"");
}

Test(dns, header_only_and_trailing)
{
	uint8_t m[64];
	size_t n = msg(m, 0x0100, 0, 0, 0, 0, "", 0);

	parse_all_ways(m, n, 0, 0);
	cr_assert_not(M.has_question);
	cr_assert_eq(dns_check_query(&M), RC_DNS_NOT_QUERY);
	parse_all_ways(m, 11, RC_DNS_TRUNCATED, 0);
	/* padding after the message is ignored */
	n = msg(m, 0x0100, 1, 0, 0, 0, B(QEX "\0\0\0"));
	parse_all_ways(m, n - 3, 0, 0);
	dns_msg_init(&M, RRS, 16, TEXT, sizeof(TEXT));
	cr_assert_eq(dns_parse(m, n, &M, NULL), 0);
	cr_assert_eq(M.msg_len, 30);
	cr_assert_eq(M.q_end, 30);
	cr_assert_eq(dns_check_query(&M), 0);
	/* opcode NOTIFY: not a query we answer */
	m[2] = 4 << 3;
	parse_all_ways(m, n - 3, 0, 0);
	cr_assert_eq(M.opcode, DNS_OPCODE_NOTIFY);
	cr_assert_eq(dns_check_query(&M), RC_DNS_NOT_QUERY);
}

Test(dns, small_caller_memory)
{
	uint8_t buf[512];
	size_t n = load("response-cname", buf, sizeof(buf));
	struct dns_rr one[1];
	char small[20];

	dns_msg_init(&M, one, 1, TEXT, sizeof(TEXT));
	cr_assert_eq(dns_parse(buf, n, &M, NULL), 0);
	cr_assert_eq(M.n_rrs, 1);
	cr_assert(M.rrs_more);
	cr_assert_not(M.text_short);

	/* qname (17 bytes with NUL) fits, the answer's name does not */
	dns_msg_init(&M, one, 1, small, sizeof(small));
	cr_assert_eq(dns_parse(buf, n, &M, NULL), 0);
	cr_assert_str_eq(M.qname, "www.example.test");
	cr_assert(M.text_short);
	cr_assert_null(one[0].name);
	cr_assert_eq(one[0].type, DNS_TYPE_CNAME);

	dns_msg_init(&M, NULL, 0, NULL, 0);
	cr_assert_eq(dns_parse(buf, n, &M, NULL), 0);
	cr_assert_null(M.qname);
	cr_assert(M.text_short);
	cr_assert_eq(M.n_rrs, 0);
	cr_assert(M.rrs_more);
	cr_assert_eq(M.qtype, DNS_TYPE_A);
}

/* ---- Writers ---- */

Test(dns, write_query)
{
	uint8_t out[512], ref[512];
	size_t rn = load("query-noedns", ref, sizeof(ref));
	ssize_t n;
	uint8_t big[300];

	/* dig +noedns sets AD as well: compare all but the flags */
	n = dns_write_query(out, sizeof(out), 0xe410, "example.test",
			    DNS_TYPE_A, true);
	cr_assert_eq(n, (ssize_t)rn);
	cr_assert_eq(memcmp(out, ref, 2), 0);
	cr_assert_eq(out[2], 0x01);
	cr_assert_eq(memcmp(out + 4, ref + 4, rn - 4), 0);
	cr_assert_eq(dns_write_query(out, sizeof(out), 1, "example.test.",
				     DNS_TYPE_A, false), n);
	cr_assert_eq(out[2], 0);
	cr_assert_eq(dns_write_query(out, (size_t)n - 1, 1, "example.test",
				     DNS_TYPE_A, false), -ENOSPC);
	cr_assert_eq(dns_write_query(out, sizeof(out), 1, "", DNS_TYPE_NS,
				     true), 17);
	cr_assert_eq(out[12], 0);
	cr_assert_eq(dns_write_query(out, sizeof(out), 1, ".", DNS_TYPE_NS,
				     true), 17);
	cr_assert_eq(dns_write_query(out, sizeof(out), 1, "a..b", 1, true),
		     RC_DNS_BAD_NAME);
	cr_assert_eq(dns_write_query(out, sizeof(out), 1, ".a", 1, true),
		     RC_DNS_BAD_NAME);
	cr_assert_eq(dns_write_query(out, sizeof(out), 1, "a\\", 1, true),
		     RC_DNS_BAD_NAME);
	cr_assert_eq(dns_write_query(out, sizeof(out), 1, "a\\25", 1, true),
		     RC_DNS_BAD_NAME);
	cr_assert_eq(dns_write_query(out, sizeof(out), 1, "a\\256", 1, true),
		     RC_DNS_BAD_NAME);
	memset(big, 'a', sizeof(big));
	big[64] = 0;
	cr_assert_eq(dns_write_query(out, sizeof(out), 1, (char *)big, 1,
				     true), RC_DNS_BAD_NAME);
	big[63] = 0;
	cr_assert_eq(dns_write_query(out, sizeof(out), 1, (char *)big, 1,
				     true), 12 + 65 + 4);
	/* 4 x 63 with dots: 256 wire bytes */
	memset(big, 'a', sizeof(big));
	big[63] = big[127] = big[191] = '.';
	big[255] = 0;
	cr_assert_eq(dns_write_query(out, sizeof(out), 1, (char *)big, 1,
				     true), RC_DNS_NAME_TOO_LONG);
	big[253] = 0;
	cr_assert_eq(dns_write_query(out, sizeof(out), 1, (char *)big, 1,
				     true), 12 + 255 + 4);
}

Test(dns, write_response)
{
	uint8_t q[512], out[512];
	size_t qn = load("query-mixedcase", q, sizeof(q));
	struct dns_rr rrs[16];
	char text[2048];
	struct dns_msg query, resp;
	static const uint8_t v4[4] = { 127, 0, 0, 9 };
	static const uint8_t v6[16] = { 0xfd, 0, [15] = 9 };
	struct dns_rr ans[3] = {
		{ .type = DNS_TYPE_CNAME, .ttl = 300, .text = "alias.example.test" },
		{ .name = "alias.example.test", .type = DNS_TYPE_A, .ttl = 60,
		  .rdata = v4, .rdlen = 4 },
		{ .name = "ALIAS.example.test.", .type = DNS_TYPE_AAAA,
		  .ttl = 60, .rdata = v6, .rdlen = 16 },
	};
	ssize_t n;

	dns_msg_init(&query, rrs, 16, text, sizeof(text));
	cr_assert_eq(dns_parse(q, qn, &query, NULL), 0);
	n = dns_write_response(out, sizeof(out), &query, DNS_RCODE_NOERROR,
			       ans, 3);
	cr_assert_gt(n, 0);
	dns_msg_init(&resp, RRS, 16, TEXT, sizeof(TEXT));
	cr_assert_eq(dns_parse(out, (size_t)n, &resp, NULL), 0);
	cr_assert_eq(resp.id, query.id);
	cr_assert(resp.qr);
	cr_assert(resp.rd);
	cr_assert(resp.ra);
	cr_assert_not(resp.tc);
	cr_assert_not(resp.aa);
	cr_assert_eq(resp.rcode, 0);
	cr_assert_eq(resp.qdcount, 1);
	cr_assert_eq(resp.arcount, 0);
	cr_assert_str_eq(resp.qname, "ExAmPlE.TeSt"); /* case kept */
	cr_assert_eq(resp.ancount, 3);
	cr_assert_str_eq(RRS[0].name, "ExAmPlE.TeSt");
	cr_assert_eq(RRS[0].type, DNS_TYPE_CNAME);
	cr_assert_eq(RRS[0].ttl, 300);
	cr_assert_str_eq(RRS[0].text, "alias.example.test");
	cr_assert_str_eq(RRS[1].text, "127.0.0.9");
	cr_assert_str_eq(RRS[2].name, "ALIAS.example.test");
	cr_assert_str_eq(RRS[2].text, "fd00::9");
	/* the CNAME's owner is a pointer to the question */
	cr_assert_eq(out[30], 0xc0);
	cr_assert_eq(out[31], 12);

	/* an owner equal to the question (case aside) is compressed too */
	ans[1].name = "example.test";
	n = dns_write_response(out, sizeof(out), &query, 0, ans + 1, 1);
	cr_assert_eq(n, 30 + 2 + 10 + 4);

	/* room for one answer only: TC, ancount 1 */
	n = dns_write_response(out, 30 + 2 + 10 + 20 + 10, &query, 0, ans, 3);
	cr_assert_gt(n, 0);
	dns_msg_init(&resp, RRS, 16, TEXT, sizeof(TEXT));
	cr_assert_eq(dns_parse(out, (size_t)n, &resp, NULL), 0);
	cr_assert(resp.tc);
	cr_assert_eq(resp.ancount, 1);
	cr_assert_eq(dns_write_response(out, 29, &query, 0, ans, 3), -ENOSPC);

	/* NXDOMAIN without answers */
	n = dns_write_response(out, sizeof(out), &query, DNS_RCODE_NXDOMAIN,
			       NULL, 0);
	cr_assert_eq(n, 30);
	cr_assert_eq(out[3] & 0xf, DNS_RCODE_NXDOMAIN);

	/* bad inputs */
	ans[1].rdlen = 5;
	cr_assert_eq(dns_write_response(out, sizeof(out), &query, 0, ans + 1,
					1), RC_DNS_BAD_RDATA);
	ans[0].text = "a..b";
	cr_assert_eq(dns_write_response(out, sizeof(out), &query, 0, ans, 1),
		     RC_DNS_BAD_NAME);
	dns_msg_init(&resp, NULL, 0, NULL, 0);
	cr_assert_eq(dns_write_response(out, sizeof(out), &resp, 0, NULL, 0),
		     -EINVAL);
}

Test(dns, write_response_ptr)
{
	uint8_t q[512], out[512];
	size_t qn = load("query-ptr", q, sizeof(q));
	struct dns_msg query, resp;
	struct dns_rr ans = { .type = DNS_TYPE_PTR, .ttl = 5,
			      .text = "host9.example.test" };
	ssize_t n;

	dns_msg_init(&query, NULL, 0, TEXT, sizeof(TEXT));
	cr_assert_eq(dns_parse(q, qn, &query, NULL), 0);
	n = dns_write_response(out, sizeof(out), &query, 0, &ans, 1);
	cr_assert_gt(n, 0);
	dns_msg_init(&resp, RRS, 16, TEXT + 1024, sizeof(TEXT) - 1024);
	cr_assert_eq(dns_parse(out, (size_t)n, &resp, NULL), 0);
	cr_assert_str_eq(RRS[0].name, "9.0.0.127.in-addr.arpa");
	cr_assert_str_eq(RRS[0].text, "host9.example.test");
}

Test(dns, write_error)
{
	uint8_t q[512], out[512];
	size_t qn = load("query-a", q, sizeof(q));
	struct dns_msg m;
	ssize_t n;

	/* whole query: question copied */
	n = dns_write_error(out, sizeof(out), q, qn, DNS_RCODE_SERVFAIL);
	cr_assert_eq(n, 12 + 18);
	dns_msg_init(&m, RRS, 16, TEXT, sizeof(TEXT));
	cr_assert_eq(dns_parse(out, (size_t)n, &m, NULL), 0);
	cr_assert_eq(m.id, 0xf4a7);
	cr_assert(m.qr);
	cr_assert(m.rd);
	cr_assert_eq(m.rcode, DNS_RCODE_SERVFAIL);
	cr_assert_str_eq(m.qname, "example.test");
	cr_assert_eq(m.arcount, 0);
	/* cut in the question: no question */
	n = dns_write_error(out, sizeof(out), q, 20, DNS_RCODE_FORMERR);
	cr_assert_eq(n, 12);
	cr_assert_eq(out[0], 0xf4);
	cr_assert_eq(out[1], 0xa7);
	cr_assert_eq(out[2], 0x81);
	cr_assert_eq(out[3], DNS_RCODE_FORMERR);
	cr_assert_eq(out[5], 0);
	/* just an id */
	n = dns_write_error(out, sizeof(out), q, 2, DNS_RCODE_FORMERR);
	cr_assert_eq(n, 12);
	cr_assert_eq(out[2], 0x80);
	cr_assert_eq(dns_write_error(out, sizeof(out), q, 1, 1), -EINVAL);
	cr_assert_eq(dns_write_error(out, 11, q, qn, 1), -ENOSPC);
	cr_assert_eq(dns_write_error(out, 29, q, qn, 1), -ENOSPC);
	/* never answer a response */
	q[2] |= 0x80;
	cr_assert_eq(dns_write_error(out, sizeof(out), q, qn, 1), -EINVAL);
	/* opcode kept (NOTIMP for NOTIFY) */
	q[2] = 4 << 3;
	n = dns_write_error(out, sizeof(out), q, qn, DNS_RCODE_NOTIMP);
	cr_assert_eq((out[2] >> 3) & 0xf, 4);
	cr_assert_eq(out[3], DNS_RCODE_NOTIMP);
}

/* ---- Reverse names ---- */

Test(dns, ptr_names)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	struct sockaddr_storage ss;
	char out[DNS_PTR_NAME_MAX];
	int n;

	inet_pton(AF_INET, "127.0.0.9", &sin.sin_addr);
	n = dns_ptr_name((struct sockaddr *)&sin, out, sizeof(out));
	cr_assert_str_eq(out, "9.0.0.127.in-addr.arpa");
	cr_assert_eq(n, 22);
	cr_assert_eq(dns_ptr_addr(out, (size_t)n, &ss), (int)sizeof(sin));
	cr_assert_eq(memcmp(&((struct sockaddr_in *)&ss)->sin_addr,
			    &sin.sin_addr, 4), 0);

	inet_pton(AF_INET6, "2001:db8::567:89ab", &sin6.sin6_addr);
	n = dns_ptr_name((struct sockaddr *)&sin6, out, sizeof(out));
	cr_assert_str_eq(out, "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0"
			      ".8.b.d.0.1.0.0.2.ip6.arpa");
	cr_assert_eq(n, DNS_PTR_NAME_MAX - 1);
	cr_assert_eq(dns_ptr_addr(out, (size_t)n, &ss), (int)sizeof(sin6));
	cr_assert_eq(ss.ss_family, AF_INET6);
	cr_assert_eq(memcmp(&((struct sockaddr_in6 *)&ss)->sin6_addr,
			    &sin6.sin6_addr, 16), 0);
	cr_assert_eq(dns_ptr_name((struct sockaddr *)&sin6, out, 72), -ENOSPC);

	cr_assert_eq(dns_ptr_name((struct sockaddr *)&sin, out, 22), -ENOSPC);
	sin.sin_family = AF_UNIX;
	cr_assert_eq(dns_ptr_name((struct sockaddr *)&sin, out, sizeof(out)),
		     -EAFNOSUPPORT);

	cr_assert_eq(dns_ptr_addr(B("1.2.0.10.IN-ADDR.ARPA."), &ss),
		     (int)sizeof(sin));
	cr_assert_eq(((struct sockaddr_in *)&ss)->sin_addr.s_addr,
		     htonl(0x0a000201));
	cr_assert_eq(dns_ptr_addr(B("2.0.10.in-addr.arpa"), &ss), -EINVAL);
	cr_assert_eq(dns_ptr_addr(B("1.1.2.0.10.in-addr.arpa"), &ss), -EINVAL);
	cr_assert_eq(dns_ptr_addr(B("256.2.0.10.in-addr.arpa"), &ss), -EINVAL);
	cr_assert_eq(dns_ptr_addr(B("1.2.0.1000.in-addr.arpa"), &ss), -EINVAL);
	cr_assert_eq(dns_ptr_addr(B("in-addr.arpa"), &ss), -EINVAL);
	cr_assert_eq(dns_ptr_addr(B("example.com"), &ss), -EINVAL);
	cr_assert_eq(dns_ptr_addr(B("1.0.ip6.arpa"), &ss), -EINVAL);
	cr_assert_eq(dns_ptr_addr(B("g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0"
				    ".0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa"),
				  &ss), -EINVAL);
}

/* ---- TCP framing ---- */

Test(dns, tcp_frame)
{
	uint8_t q[512], stream[1100];
	size_t qn = load("query-a", q, sizeof(q)), i, eo;
	const uint8_t *m;
	size_t ml;
	ssize_t n;

	cr_assert_eq(dns_tcp_prefix(stream, qn), 2);
	memcpy(stream + 2, q, qn);
	cr_assert_eq(dns_tcp_prefix(stream + 2 + qn, qn), 2);
	memcpy(stream + 4 + qn, q, qn);
	for (i = 0; i < 2 + qn; i++) {
		uint8_t *p = guard_put(&G, stream, i);

		cr_assert_eq(dns_tcp_frame(p, i, &m, &ml, &eo), 0);
	}
	n = dns_tcp_frame(guard_put(&G, stream, 2 + qn), 2 + qn, &m, &ml, &eo);
	cr_assert_eq(n, (ssize_t)(2 + qn));
	cr_assert_eq(ml, qn);
	cr_assert_eq(memcmp(m, q, qn), 0);
	n = dns_tcp_frame(stream, 4 + 2 * qn, &m, &ml, &eo);
	cr_assert_eq(n, (ssize_t)(2 + qn));
	n = dns_tcp_frame(stream + n, 2 + qn, &m, &ml, &eo);
	cr_assert_eq(n, (ssize_t)(2 + qn));

	eo = 99;
	cr_assert_eq(dns_tcp_frame((const uint8_t *)"\x00\x0b", 2, &m, &ml,
				   &eo), RC_DNS_BAD_FRAME);
	cr_assert_eq(eo, 0);
	cr_assert_eq(dns_tcp_frame((const uint8_t *)"\x00\x00", 2, &m, &ml,
				   NULL), RC_DNS_BAD_FRAME);
}

/* ---- Printers ---- */

Test(dns, strings)
{
	char b[16];

	cr_assert_str_eq(dns_type_str(DNS_TYPE_AAAA), "AAAA");
	cr_assert_str_eq(dns_type_str(DNS_TYPE_HTTPS), "HTTPS");
	cr_assert_str_eq(dns_type_str(0xff00), "UNKNOWN");
	cr_assert_str_eq(dns_type_name(0xff00, b), "TYPE65280");
	cr_assert_str_eq(dns_type_name(DNS_TYPE_MX, b), "MX");
	cr_assert_str_eq(dns_rcode_str(DNS_RCODE_NXDOMAIN), "NXDOMAIN");
	cr_assert_str_eq(dns_rcode_str(DNS_RCODE_REFUSED), "REFUSED");
	cr_assert_str_eq(dns_rcode_str(15), "RCODE?");
	cr_assert_str_eq(dns_class_str(DNS_CLASS_IN), "IN");
	cr_assert_str_eq(dns_opcode_str(DNS_OPCODE_UPDATE), "UPDATE");
	cr_assert_str_eq(dns_section_str(DNS_SEC_AUTHORITY), "authority");
	for (int i = 0; i < DNS_RCODE_COUNT; i++)
		cr_assert_neq(strcmp(dns_rcode_str((uint8_t)i), "RCODE?"), 0);
	cr_assert_str_eq(rc_errname(RC_DNS_BAD_POINTER), "DNS_BAD_POINTER");
}
