/* SPDX-License-Identifier: MIT */
/* DNS messages (RFC 1035), sans-IO: parser into caller memory, writers for
 * queries and answers, PTR names and TCP framing. Used by the engine's dns
 * and reverse:dns modes for each query and answer they relay or record. */
#include "proto/dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DNS_MAX_HOPS 127 /* compression pointers followed in one name */

static int fail(size_t *err_off, size_t off, int code)
{
	if (err_off)
		*err_off = off;
	return code;
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	wr16(p, (uint16_t)(v >> 16));
	wr16(p + 2, (uint16_t)v);
}

/* ---- Names to strings ---- */

const char *dns_type_str(uint16_t type)
{
	switch (type) {
	case DNS_TYPE_A: return "A";
	case DNS_TYPE_NS: return "NS";
	case DNS_TYPE_CNAME: return "CNAME";
	case DNS_TYPE_SOA: return "SOA";
	case DNS_TYPE_PTR: return "PTR";
	case DNS_TYPE_HINFO: return "HINFO";
	case DNS_TYPE_MX: return "MX";
	case DNS_TYPE_TXT: return "TXT";
	case DNS_TYPE_AAAA: return "AAAA";
	case DNS_TYPE_SRV: return "SRV";
	case DNS_TYPE_OPT: return "OPT";
	case DNS_TYPE_DS: return "DS";
	case DNS_TYPE_RRSIG: return "RRSIG";
	case DNS_TYPE_DNSKEY: return "DNSKEY";
	case DNS_TYPE_SVCB: return "SVCB";
	case DNS_TYPE_HTTPS: return "HTTPS";
	case DNS_TYPE_AXFR: return "AXFR";
	case DNS_TYPE_ANY: return "ANY";
	case DNS_TYPE_CAA: return "CAA";
	default: return "UNKNOWN";
	}
}

const char *dns_type_name(uint16_t type, char out[16])
{
	const char *s = dns_type_str(type);

	if (strcmp(s, "UNKNOWN") == 0)
		snprintf(out, 16, "TYPE%u", (unsigned)type);
	else
		snprintf(out, 16, "%s", s);
	return out;
}

const char *dns_class_str(uint16_t cls)
{
	switch (cls) {
	case DNS_CLASS_IN: return "IN";
	case DNS_CLASS_CH: return "CH";
	case DNS_CLASS_HS: return "HS";
	case DNS_CLASS_ANY: return "ANY";
	default: return "UNKNOWN";
	}
}

const char *dns_rcode_str(uint8_t rcode)
{
	static const char *const names[DNS_RCODE_COUNT] = {
		[DNS_RCODE_NOERROR] = "NOERROR",   [DNS_RCODE_FORMERR] = "FORMERR",
		[DNS_RCODE_SERVFAIL] = "SERVFAIL", [DNS_RCODE_NXDOMAIN] = "NXDOMAIN",
		[DNS_RCODE_NOTIMP] = "NOTIMP",     [DNS_RCODE_REFUSED] = "REFUSED",
		[DNS_RCODE_YXDOMAIN] = "YXDOMAIN", [DNS_RCODE_YXRRSET] = "YXRRSET",
		[DNS_RCODE_NXRRSET] = "NXRRSET",   [DNS_RCODE_NOTAUTH] = "NOTAUTH",
		[DNS_RCODE_NOTZONE] = "NOTZONE",
	};
	return rcode < DNS_RCODE_COUNT ? names[rcode] : "RCODE?";
}

const char *dns_opcode_str(uint8_t opcode)
{
	switch (opcode) {
	case DNS_OPCODE_QUERY: return "QUERY";
	case DNS_OPCODE_IQUERY: return "IQUERY";
	case DNS_OPCODE_STATUS: return "STATUS";
	case DNS_OPCODE_NOTIFY: return "NOTIFY";
	case DNS_OPCODE_UPDATE: return "UPDATE";
	default: return "OPCODE?";
	}
}

const char *dns_section_str(enum dns_section s)
{
	switch (s) {
	case DNS_SEC_ANSWER: return "answer";
	case DNS_SEC_AUTHORITY: return "authority";
	case DNS_SEC_ADDITIONAL: return "additional";
	default: return "section?";
	}
}

/* ---- Text output into the caller's buffer ---- */

/* A bounded string being built; |over| once anything did not fit. */
struct sbuf {
	char *p;
	size_t len, cap;
	bool over;
};

static void sb_putc(struct sbuf *b, char c)
{
	if (b->len + 1 < b->cap)
		b->p[b->len++] = c;
	else
		b->over = true;
}

static void sb_puts(struct sbuf *b, const char *s)
{
	while (*s)
		sb_putc(b, *s++);
}

static void sb_esc(struct sbuf *b, uint8_t c)
{
	char tmp[5];

	snprintf(tmp, sizeof(tmp), "\\%03u", (unsigned)c);
	sb_puts(b, tmp);
}

/* Start a string at the free end of the message's text buffer. */
static struct sbuf text_begin(const struct dns_msg *m)
{
	struct sbuf b = { NULL, 0, 0, true };

	if (m->text) {
		b.p = m->text + m->text_used;
		b.cap = m->text_cap - m->text_used;
		b.over = false;
	}
	return b;
}

/* Finish it: the NUL-terminated string, or NULL (and text_short). */
static const char *text_end(struct dns_msg *m, struct sbuf *b)
{
	if (b->over || b->cap == 0) {
		m->text_short = true;
		return NULL;
	}
	b->p[b->len] = '\0';
	m->text_used += b->len + 1;
	return b->p;
}

/* ---- Reading names ---- */

static bool name_plain(uint8_t c)
{
	return c > 0x20 && c < 0x7f && c != '.' && c != '\\' && c != '"' &&
	       c != ';' && c != '(' && c != ')' && c != '@' && c != '$';
}

/* Read the name at msg[off..): follows pointers (each strictly before the
 * segment it sits in, never into the header, at most DNS_MAX_HOPS), checks
 * labels and the 255-byte limit. Its in-place part must end by |lim| (<=
 * len: the end of the RDATA it sits in), or it is |lim_err|; what pointers
 * lead to must end by |len|. *end gets the offset after the in-place part.
 * Text goes to |tb| if not NULL; *escaped (if not NULL) says whether it
 * needed escapes. 0 or a negative RC_DNS_* code. */
static int name_read(const uint8_t *msg, size_t len, size_t lim, int lim_err,
		     size_t off, size_t *end, struct sbuf *tb, bool *escaped,
		     size_t *err_off)
{
	size_t pos = off, seg = off, wire = 0, hops = 0, i, bound = lim;
	int short_err = lim_err;
	bool have_end = false, esc = false;

	for (;;) {
		uint8_t c;

		if (pos >= bound)
			return fail(err_off, pos, short_err);
		c = msg[pos];
		if ((c & 0xc0) == 0xc0) {
			size_t t;

			if (pos + 1 >= bound)
				return fail(err_off, pos, short_err);
			t = (size_t)(c & 0x3f) << 8 | msg[pos + 1];
			if (!have_end) {
				*end = pos + 2;
				have_end = true;
			}
			if (t >= seg || t < DNS_HEADER_LEN ||
			    ++hops > DNS_MAX_HOPS)
				return fail(err_off, pos, RC_DNS_BAD_POINTER);
			pos = seg = t;
			bound = len;
			short_err = RC_DNS_TRUNCATED;
			continue;
		}
		if (c & 0xc0)
			return fail(err_off, pos, RC_DNS_BAD_LABEL);
		if (c == 0)
			break;
		wire += 1u + c;
		if (wire + 1 > DNS_MAX_NAME)
			return fail(err_off, pos, RC_DNS_NAME_TOO_LONG);
		if (pos + 1 + c > bound)
			return fail(err_off, pos, short_err);
		if (tb && wire > 1u + c)
			sb_putc(tb, '.');
		for (i = pos + 1; i <= pos + c; i++) {
			if (name_plain(msg[i])) {
				if (tb)
					sb_putc(tb, (char)msg[i]);
				continue;
			}
			esc = true;
			if (!tb)
				continue;
			if (msg[i] > 0x20 && msg[i] < 0x7f) {
				sb_putc(tb, '\\');
				sb_putc(tb, (char)msg[i]);
			} else {
				sb_esc(tb, msg[i]);
			}
		}
		pos += 1u + c;
	}
	if (!have_end)
		*end = pos + 1;
	if (tb && wire == 0)
		sb_putc(tb, '.');
	if (escaped)
		*escaped = esc;
	return 0;
}

/* Read a name into the text buffer; *text NULL if it did not fit. */
static int name_text(struct dns_msg *m, size_t off, size_t *end,
		     const char **text, size_t *text_len, bool *escaped,
		     size_t *err_off)
{
	struct sbuf b = text_begin(m);
	int rc = name_read(m->wire, m->msg_len, m->msg_len, RC_DNS_TRUNCATED,
			   off, end, &b, escaped, err_off);

	if (rc < 0)
		return rc;
	*text = text_end(m, &b);
	if (text_len)
		*text_len = *text ? b.len : 0;
	return 0;
}

/* ---- Records ---- */

/* TXT: validate the character-strings; text if |b| is not NULL. */
static bool txt_read(const uint8_t *p, size_t n, struct sbuf *b)
{
	size_t i = 0, j;

	while (i < n) {
		size_t sl = p[i];

		if (i + 1 + sl > n)
			return false;
		if (b) {
			if (i)
				sb_putc(b, ' ');
			sb_putc(b, '"');
			for (j = i + 1; j <= i + sl; j++) {
				if (p[j] == '"' || p[j] == '\\') {
					sb_putc(b, '\\');
					sb_putc(b, (char)p[j]);
				} else if (p[j] >= 0x20 && p[j] < 0x7f) {
					sb_putc(b, (char)p[j]);
				} else {
					sb_esc(b, p[j]);
				}
			}
			sb_putc(b, '"');
		}
		i += 1 + sl;
	}
	return true;
}

/* A name inside RDATA [rd, rd_end) must end exactly at rd_end. */
static int rdata_name(const struct dns_msg *m, size_t rd, size_t rd_end,
		      struct sbuf *b, size_t *err_off)
{
	size_t end;
	int rc = name_read(m->wire, m->msg_len, rd_end, RC_DNS_BAD_RDATA, rd,
			   &end, b, NULL, err_off);

	if (rc < 0)
		return rc;
	if (end != rd_end)
		return fail(err_off, end, RC_DNS_BAD_RDATA);
	return 0;
}

static int opt_read(struct dns_msg *m, const struct dns_rr *rr,
		    size_t name_off, size_t rd, size_t *err_off)
{
	size_t i = 0;

	if (m->wire[name_off] != 0) /* owner must be the root */
		return fail(err_off, name_off, RC_DNS_BAD_RDATA);
	while (i < rr->rdlen) {
		if (i + 4 > rr->rdlen ||
		    i + 4 + rd16(rr->rdata + i + 2) > rr->rdlen)
			return fail(err_off, rd + i, RC_DNS_BAD_RDATA);
		i += 4u + rd16(rr->rdata + i + 2);
	}
	if (!m->has_edns) {
		m->has_edns = true;
		m->edns_udp_size = rr->cls;
		m->edns_ext_rcode = (uint8_t)(rr->ttl >> 24);
		m->edns_version = (uint8_t)(rr->ttl >> 16);
		m->edns_do = (rr->ttl >> 15) & 1;
	}
	return 0;
}

/* Validate (and decode, if |store|) the RDATA of |rr| at msg[rd..). */
static int rdata_read(struct dns_msg *m, struct dns_rr *rr, size_t rd,
		      bool store, size_t *err_off)
{
	size_t rd_end = rd + rr->rdlen;
	struct sbuf b = text_begin(m), *bp = store ? &b : NULL;
	char addr[INET6_ADDRSTRLEN];
	int rc;

	switch (rr->type) {
	case DNS_TYPE_A:
	case DNS_TYPE_AAAA:
		if (rr->rdlen != (rr->type == DNS_TYPE_A ? 4 : 16))
			return fail(err_off, rd, RC_DNS_BAD_RDATA);
		inet_ntop(rr->type == DNS_TYPE_A ? AF_INET : AF_INET6,
			  rr->rdata, addr, sizeof(addr));
		sb_puts(&b, addr);
		break;
	case DNS_TYPE_CNAME:
	case DNS_TYPE_PTR:
	case DNS_TYPE_NS:
		rc = rdata_name(m, rd, rd_end, bp, err_off);
		if (rc < 0)
			return rc;
		break;
	case DNS_TYPE_MX:
		if (rr->rdlen < 3)
			return fail(err_off, rd, RC_DNS_BAD_RDATA);
		rr->pref = rd16(rr->rdata);
		snprintf(addr, sizeof(addr), "%u ", (unsigned)rr->pref);
		sb_puts(&b, addr);
		rc = rdata_name(m, rd + 2, rd_end, bp, err_off);
		if (rc < 0)
			return rc;
		break;
	case DNS_TYPE_TXT:
		if (!txt_read(rr->rdata, rr->rdlen, bp))
			return fail(err_off, rd, RC_DNS_BAD_RDATA);
		break;
	default:
		return 0;
	}
	if (store)
		rr->text = text_end(m, &b);
	return 0;
}

/* One resource record at msg[*off..): validated, stored if there is room. */
static int rr_read(struct dns_msg *m, enum dns_section sec, size_t *off,
		   size_t *err_off)
{
	struct dns_rr tmp, *rr = &tmp;
	bool store = m->n_rrs < m->max_rrs && m->rrs;
	size_t name_off = *off, p;
	int rc;

	memset(rr, 0, sizeof(*rr));
	if (store)
		rc = name_text(m, name_off, &p, &rr->name, NULL, NULL,
			       err_off);
	else
		rc = name_read(m->wire, m->msg_len, m->msg_len,
			       RC_DNS_TRUNCATED, name_off, &p, NULL, NULL,
			       err_off);
	if (rc < 0)
		return rc;
	if (p + 10 > m->msg_len)
		return fail(err_off, p, RC_DNS_TRUNCATED);
	rr->section = sec;
	rr->type = rd16(m->wire + p);
	rr->cls = rd16(m->wire + p + 2);
	rr->ttl = rd32(m->wire + p + 4);
	rr->rdlen = rd16(m->wire + p + 8);
	if (p + 10 + rr->rdlen > m->msg_len)
		return fail(err_off, p + 8, RC_DNS_TRUNCATED);
	rr->rdata = m->wire + p + 10;
	if (rr->type == DNS_TYPE_OPT && sec == DNS_SEC_ADDITIONAL)
		rc = opt_read(m, rr, name_off, p + 10, err_off);
	else
		rc = rdata_read(m, rr, p + 10, store, err_off);
	if (rc < 0)
		return rc;
	*off = p + 10 + rr->rdlen;
	if (store)
		m->rrs[m->n_rrs++] = tmp;
	else
		m->rrs_more = true;
	return 0;
}

void dns_msg_init(struct dns_msg *m, struct dns_rr *rrs, size_t max_rrs,
		  char *text, size_t text_cap)
{
	memset(m, 0, sizeof(*m));
	m->rrs = rrs;
	m->max_rrs = rrs ? max_rrs : 0;
	m->text = text;
	m->text_cap = text ? text_cap : 0;
}

static void header_read(struct dns_msg *m, const uint8_t *h)
{
	m->id = rd16(h);
	m->qr = h[2] >> 7;
	m->opcode = (h[2] >> 3) & 0xf;
	m->aa = (h[2] >> 2) & 1;
	m->tc = (h[2] >> 1) & 1;
	m->rd = h[2] & 1;
	m->ra = h[3] >> 7;
	m->ad = (h[3] >> 5) & 1;
	m->cd = (h[3] >> 4) & 1;
	m->rcode = h[3] & 0xf;
	m->qdcount = rd16(h + 4);
	m->ancount = rd16(h + 6);
	m->nscount = rd16(h + 8);
	m->arcount = rd16(h + 10);
}

static int questions_read(struct dns_msg *m, size_t *off, size_t *err_off)
{
	size_t i, p;
	int rc;

	for (i = 0; i < m->qdcount; i++) {
		if (i == 0)
			rc = name_text(m, *off, &p, &m->qname, &m->qname_len,
				       &m->qname_escaped, err_off);
		else
			rc = name_read(m->wire, m->msg_len, m->msg_len,
				       RC_DNS_TRUNCATED, *off, &p, NULL, NULL,
				       err_off);
		if (rc < 0)
			return rc;
		if (p + 4 > m->msg_len)
			return fail(err_off, p, RC_DNS_TRUNCATED);
		if (i == 0) {
			m->has_question = true;
			m->qtype = rd16(m->wire + p);
			m->qclass = rd16(m->wire + p + 2);
		}
		*off = p + 4;
	}
	m->q_end = *off;
	return 0;
}

int dns_parse(const uint8_t *msg, size_t len, struct dns_msg *out,
	      size_t *err_off)
{
	const uint16_t *counts[DNS_SEC_COUNT];
	size_t off = DNS_HEADER_LEN, i;
	int s, rc;

	dns_msg_init(out, out->rrs, out->max_rrs, out->text, out->text_cap);
	out->wire = msg;
	out->msg_len = len;
	if (len < DNS_HEADER_LEN)
		return fail(err_off, 0, RC_DNS_TRUNCATED);
	header_read(out, msg);
	rc = questions_read(out, &off, err_off);
	if (rc < 0)
		return rc;
	counts[DNS_SEC_ANSWER] = &out->ancount;
	counts[DNS_SEC_AUTHORITY] = &out->nscount;
	counts[DNS_SEC_ADDITIONAL] = &out->arcount;
	for (s = 0; s < DNS_SEC_COUNT; s++) {
		for (i = 0; i < *counts[s]; i++) {
			rc = rr_read(out, (enum dns_section)s, &off, err_off);
			if (rc < 0)
				return rc;
		}
	}
	out->msg_len = off;
	return 0;
}

int dns_check_query(const struct dns_msg *m)
{
	if (m->qr || m->opcode != DNS_OPCODE_QUERY || m->qdcount != 1 ||
	    !m->has_question)
		return RC_DNS_NOT_QUERY;
	return 0;
}

/* ---- Writing names ---- */

/* Text name to wire form in out[0..DNS_MAX_NAME). Returns its length. */
static int name_encode(const char *s, uint8_t out[DNS_MAX_NAME])
{
	size_t lab = 0; /* offset of the current label's length byte */
	size_t n = 0;   /* bytes in the current label */

	if (s[0] == '.' && s[1] == '\0')
		s++;
	for (; *s; s++) {
		unsigned c = (unsigned char)*s;

		if (c == '.') {
			if (n == 0)
				return RC_DNS_BAD_NAME;
			out[lab] = (uint8_t)n;
			lab += 1 + n;
			n = 0;
			if (s[1] == '\0')
				break; /* final dot */
			continue;
		}
		if (c == '\\') {
			if (s[1] >= '0' && s[1] <= '9') {
				if (!(s[2] >= '0' && s[2] <= '9' &&
				      s[3] >= '0' && s[3] <= '9'))
					return RC_DNS_BAD_NAME;
				c = (unsigned)(s[1] - '0') * 100 +
				    (unsigned)(s[2] - '0') * 10 +
				    (unsigned)(s[3] - '0');
				if (c > 255)
					return RC_DNS_BAD_NAME;
				s += 3;
			} else if (s[1] != '\0') {
				c = (unsigned char)*++s;
			} else {
				return RC_DNS_BAD_NAME;
			}
		}
		if (++n > DNS_MAX_LABEL)
			return RC_DNS_BAD_NAME;
		if (lab + 1 + n + 1 > DNS_MAX_NAME)
			return RC_DNS_NAME_TOO_LONG;
		out[lab + n] = (uint8_t)c;
	}
	if (n) {
		out[lab] = (uint8_t)n;
		lab += 1 + n;
	}
	out[lab] = 0;
	return (int)(lab + 1);
}

static void header_write(uint8_t *out, uint16_t id, uint8_t f1, uint8_t f2,
			 uint16_t qd, uint16_t an)
{
	wr16(out, id);
	out[2] = f1;
	out[3] = f2;
	wr16(out + 4, qd);
	wr16(out + 6, an);
	wr16(out + 8, 0);
	wr16(out + 10, 0);
}

ssize_t dns_write_query(uint8_t *out, size_t cap, uint16_t id,
			const char *name, uint16_t qtype, bool rd)
{
	uint8_t wire[DNS_MAX_NAME];
	int n = name_encode(name, wire);
	size_t total;

	if (n < 0)
		return n;
	total = DNS_HEADER_LEN + (size_t)n + 4;
	if (total > cap)
		return -ENOSPC;
	header_write(out, id, rd ? 0x01 : 0x00, 0, 1, 0);
	memcpy(out + DNS_HEADER_LEN, wire, (size_t)n);
	wr16(out + DNS_HEADER_LEN + n, qtype);
	wr16(out + DNS_HEADER_LEN + n + 2, DNS_CLASS_IN);
	return (ssize_t)total;
}

static bool wire_name_eq(const uint8_t *a, size_t alen, const uint8_t *b,
			 size_t blen)
{
	size_t i;

	if (alen != blen)
		return false;
	for (i = 0; i < alen; i++) {
		uint8_t x = a[i], y = b[i];

		if (x >= 'A' && x <= 'Z')
			x = (uint8_t)(x + 32);
		if (y >= 'A' && y <= 'Z')
			y = (uint8_t)(y + 32);
		if (x != y)
			return false;
	}
	return true;
}

/* Encode answer |a| into out[0..cap) (owner |qname| -> pointer to 12).
 * Returns its length, -ENOSPC if it does not fit, or a bad-input code. */
static ssize_t answer_write(uint8_t *out, size_t cap, const struct dns_rr *a,
			    const uint8_t *qname, size_t qname_len)
{
	uint8_t owner[DNS_MAX_NAME], target[DNS_MAX_NAME];
	const uint8_t *rdata = a->rdata;
	size_t olen = 2, rdlen = a->rdlen, total;
	int n;

	if (a->name) {
		n = name_encode(a->name, owner);
		if (n < 0)
			return n;
		olen = (size_t)n;
		if (wire_name_eq(owner, olen, qname, qname_len))
			olen = 2;
	}
	if (olen == 2)
		wr16(owner, 0xc000 | DNS_HEADER_LEN);
	switch (a->type) {
	case DNS_TYPE_A:
	case DNS_TYPE_AAAA:
		if (rdlen != (a->type == DNS_TYPE_A ? 4u : 16u) || !rdata)
			return RC_DNS_BAD_RDATA;
		break;
	case DNS_TYPE_CNAME:
	case DNS_TYPE_PTR:
	case DNS_TYPE_NS:
		if (!a->text)
			return RC_DNS_BAD_NAME;
		n = name_encode(a->text, target);
		if (n < 0)
			return n;
		rdata = target;
		rdlen = (size_t)n;
		break;
	default:
		if (rdlen && !rdata)
			return RC_DNS_BAD_RDATA;
		break;
	}
	total = olen + 10 + rdlen;
	if (total > cap)
		return -ENOSPC;
	memcpy(out, owner, olen);
	wr16(out + olen, a->type);
	wr16(out + olen + 2, a->cls ? a->cls : DNS_CLASS_IN);
	wr32(out + olen + 4, a->ttl);
	wr16(out + olen + 8, (uint16_t)rdlen);
	if (rdlen)
		memcpy(out + olen + 10, rdata, rdlen);
	return (ssize_t)total;
}

ssize_t dns_write_response(uint8_t *out, size_t cap,
			   const struct dns_msg *query, uint8_t rcode,
			   const struct dns_rr *answers, size_t n)
{
	const uint8_t *q = query->wire;
	size_t qlen, off, qname_len, i, an = 0;
	bool tc = false;

	if (!query->has_question || !q || query->q_end <= DNS_HEADER_LEN)
		return -EINVAL;
	/* The first question: its name is in place (no pointer can precede
	 * it), so its wire length is where the first 0 byte ends it. */
	for (qname_len = 0; q[DNS_HEADER_LEN + qname_len];
	     qname_len += 1u + q[DNS_HEADER_LEN + qname_len])
		;
	qname_len++;
	qlen = qname_len + 4;
	off = DNS_HEADER_LEN + qlen;
	if (off > cap)
		return -ENOSPC;
	memcpy(out + DNS_HEADER_LEN, q + DNS_HEADER_LEN, qlen);
	for (i = 0; i < n && an < UINT16_MAX; i++) {
		ssize_t w = answer_write(out + off, cap - off, &answers[i],
					 q + DNS_HEADER_LEN, qname_len);

		if (w == -ENOSPC) {
			tc = true;
			break;
		}
		if (w < 0)
			return w;
		off += (size_t)w;
		an++;
	}
	header_write(out, query->id,
		     (uint8_t)(0x80 | (query->opcode & 0xf) << 3 |
			       (tc ? 0x02 : 0) | (query->rd ? 1 : 0)),
		     (uint8_t)(0x80 | (rcode & 0xf)), 1, (uint16_t)an);
	return (ssize_t)off;
}

ssize_t dns_write_error(uint8_t *out, size_t cap, const uint8_t *query,
			size_t qlen, uint8_t rcode)
{
	uint8_t f1 = 0x80;
	size_t qend = DNS_HEADER_LEN, end;
	uint16_t qd = 0;

	if (qlen < 2 || (qlen >= 3 && (query[2] & 0x80)))
		return -EINVAL;
	if (qlen >= 3)
		f1 |= query[2] & 0x79; /* opcode, RD */
	if (qlen >= DNS_HEADER_LEN && rd16(query + 4) > 0 &&
	    name_read(query, qlen, qlen, RC_DNS_TRUNCATED, DNS_HEADER_LEN, &end,
		      NULL, NULL, NULL) == 0 &&
	    end + 4 <= qlen) {
		qend = end + 4;
		qd = 1;
	}
	if (qend > cap)
		return -ENOSPC;
	header_write(out, rd16(query), f1, rcode & 0xf, qd, 0);
	memcpy(out + DNS_HEADER_LEN, query + DNS_HEADER_LEN,
	       qend - DNS_HEADER_LEN);
	return (ssize_t)qend;
}

/* ---- Reverse names ---- */

int dns_ptr_name(const struct sockaddr *sa, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	int n;

	if (sa->sa_family == AF_INET) {
		const uint8_t *a = (const uint8_t *)&(
			(const struct sockaddr_in *)(const void *)sa)->sin_addr;

		n = snprintf(out, cap, "%u.%u.%u.%u.in-addr.arpa",
			     (unsigned)a[3], (unsigned)a[2], (unsigned)a[1],
			     (unsigned)a[0]);
		return n >= 0 && (size_t)n < cap ? n : -ENOSPC;
	}
	if (sa->sa_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)(const void *)sa)
					   ->sin6_addr.s6_addr;
		size_t o = 0;
		int i;

		if (cap < DNS_PTR_NAME_MAX)
			return -ENOSPC;
		for (i = 15; i >= 0; i--) {
			out[o++] = hex[a[i] & 0xf];
			out[o++] = '.';
			out[o++] = hex[a[i] >> 4];
			out[o++] = '.';
		}
		memcpy(out + o, "ip6.arpa", 9);
		return (int)(o + 8);
	}
	return -EAFNOSUPPORT;
}

static bool suffix_ci(const char *s, size_t len, const char *suf, size_t *pre)
{
	size_t sl = strlen(suf);

	if (len < sl || strncasecmp(s + len - sl, suf, sl) != 0)
		return false;
	*pre = len - sl;
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int ptr_v4(const char *s, size_t n, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	uint8_t *a = (uint8_t *)&sin->sin_addr;
	size_t i = 0;
	int k;

	for (k = 3; k >= 0; k--) {
		unsigned v = 0, digits = 0;

		while (i < n && s[i] >= '0' && s[i] <= '9' && digits < 3) {
			v = v * 10 + (unsigned)(s[i++] - '0');
			digits++;
		}
		if (digits == 0 || v > 255 || i >= n || s[i++] != '.')
			return -EINVAL;
		a[k] = (uint8_t)v;
	}
	if (i != n)
		return -EINVAL;
	sin->sin_family = AF_INET;
	return (int)sizeof(*sin);
}

static int ptr_v6(const char *s, size_t n, struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	uint8_t *a = sin6->sin6_addr.s6_addr;
	int k;

	if (n != 64)
		return -EINVAL;
	for (k = 0; k < 32; k++) {
		int v = hexval(s[2 * k]);

		if (v < 0 || s[2 * k + 1] != '.')
			return -EINVAL;
		/* nibble k counts from the least significant one */
		if (k & 1)
			a[15 - k / 2] |= (uint8_t)(v << 4);
		else
			a[15 - k / 2] = (uint8_t)v;
	}
	sin6->sin6_family = AF_INET6;
	return (int)sizeof(*sin6);
}

int dns_ptr_addr(const char *name, size_t len, struct sockaddr_storage *ss)
{
	size_t pre;

	memset(ss, 0, sizeof(*ss));
	if (len && name[len - 1] == '.')
		len--;
	if (suffix_ci(name, len, "in-addr.arpa", &pre))
		return ptr_v4(name, pre, ss);
	if (suffix_ci(name, len, "ip6.arpa", &pre))
		return ptr_v6(name, pre, ss);
	return -EINVAL;
}

/* ---- TCP framing ---- */

ssize_t dns_tcp_frame(const uint8_t *buf, size_t len, const uint8_t **msg,
		      size_t *msg_len, size_t *err_off)
{
	size_t n;

	if (len < 2)
		return 0;
	n = rd16(buf);
	if (n < DNS_HEADER_LEN)
		return fail(err_off, 0, RC_DNS_BAD_FRAME);
	if (len < 2 + n)
		return 0;
	*msg = buf + 2;
	*msg_len = n;
	return (ssize_t)(2 + n);
}

size_t dns_tcp_prefix(uint8_t out[2], size_t msg_len)
{
	wr16(out, (uint16_t)msg_len);
	return 2;
}
