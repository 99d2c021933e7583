/* SPDX-License-Identifier: MIT */
/* TLS ClientHello reader: the sniffer that tells TLS from plaintext on a
 * new connection, and a zero-copy ClientHello parser that walks the record
 * layer (fragmented hellos included) and then the message. */
#include "proto/tls_hello.h"

#include <arpa/inet.h>
#include <string.h>

#define REC_HDR 5
#define HS_HDR 4
#define REC_MAX 16384 /* plaintext record payload limit (RFC 8446 5.1) */
#define CT_HANDSHAKE 0x16
#define HS_CLIENT_HELLO 0x01

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static ssize_t fail(size_t *err_off, size_t off, int code)
{
	if (err_off)
		*err_off = off;
	return code;
}

/* ---- Sniffing ---- */

const char *tls_sniff_str(enum tls_sniff s)
{
	static const char *const names[] = {
		[TLS_SNIFF_NEED_MORE] = "need-more",
		[TLS_SNIFF_TLS] = "tls",
		[TLS_SNIFF_TLS_OLD] = "tls-sslv2-hello",
		[TLS_SNIFF_PLAINTEXT] = "plaintext",
	};

	return (unsigned)s < TLS_SNIFF_COUNT ? names[s] : "?";
}

/* SSLv2 record: 2-byte header with the top bit set and a length of at least
 * the 9 fixed bytes, MSG-CLIENT-HELLO (1), then version 0x0002 or 0x03xx. */
static enum tls_sniff sniff_sslv2(const uint8_t *buf, size_t len)
{
	if (len >= 2 && ((buf[0] & 0x7f) << 8 | buf[1]) < 9)
		return TLS_SNIFF_PLAINTEXT;
	if (len >= 3 && buf[2] != 0x01)
		return TLS_SNIFF_PLAINTEXT;
	if (len >= 4 && buf[3] != 0x00 && buf[3] != 0x03)
		return TLS_SNIFF_PLAINTEXT;
	if (len < 5)
		return TLS_SNIFF_NEED_MORE;
	if (buf[3] == 0x00 ? buf[4] != 0x02 : buf[4] > 0x03)
		return TLS_SNIFF_PLAINTEXT;
	return TLS_SNIFF_TLS_OLD;
}

enum tls_sniff tls_sniff(const uint8_t *buf, size_t len)
{
	if (len == 0)
		return TLS_SNIFF_NEED_MORE;
	if (buf[0] & 0x80)
		return sniff_sslv2(buf, len);
	if (buf[0] != CT_HANDSHAKE)
		return TLS_SNIFF_PLAINTEXT;
	if (len >= 2 && buf[1] != 0x03)
		return TLS_SNIFF_PLAINTEXT;
	if (len >= 3 && buf[2] > 0x04)
		return TLS_SNIFF_PLAINTEXT;
	/* A zero-length record would put the next header's 0x16 at [5]. */
	if (len < 6)
		return TLS_SNIFF_NEED_MORE;
	return buf[5] == HS_CLIENT_HELLO ? TLS_SNIFF_TLS : TLS_SNIFF_PLAINTEXT;
}

/* ---- Record layer ---- */

/* Where the handshake message sits in the records. */
struct frame {
	size_t end;       /* bytes of the records carrying the message */
	size_t msg_len;   /* message body bytes (after the 4-byte header) */
	size_t n_records;
	uint16_t record_version;
};

/* Check a record header at buf[pos..], of which |avail| bytes are there.
 * Returns 0 when good so far, or an error (offset in *err_off). */
static ssize_t check_record_header(const uint8_t *buf, size_t pos,
				   size_t avail, bool first, size_t *err_off)
{
	size_t rlen;

	if (buf[pos] != CT_HANDSHAKE)
		return fail(err_off, pos,
			    first ? RC_TLS_NOT_TLS : RC_TLS_NOT_HANDSHAKE);
	if (avail > 1 && buf[pos + 1] != 0x03)
		return fail(err_off, pos + 1, RC_TLS_BAD_RECORD);
	if (avail > 2 && buf[pos + 2] > 0x04)
		return fail(err_off, pos + 2, RC_TLS_BAD_RECORD);
	if (avail < REC_HDR)
		return 0;
	rlen = be16(buf + pos + 3);
	if (rlen == 0 || rlen > REC_MAX)
		return fail(err_off, pos + 3, RC_TLS_BAD_RECORD);
	return 0;
}

/* Walk the records until they hold the whole ClientHello message. Returns
 * the bytes they take (> 0), 0 when more are needed, or an error. Errors
 * are found in buffer order, so a prefix gives 0 or the same error. */
static ssize_t walk_records(const uint8_t *buf, size_t len, struct frame *f,
			    size_t *err_off)
{
	uint8_t hdr[HS_HDR];
	size_t hdr_off[HS_HDR];
	size_t pos = 0, got = 0, need = 0; /* need: 0 until the header is in */
	ssize_t rc;

	memset(f, 0, sizeof(*f));
	for (;;) {
		size_t payload = pos + REC_HDR, rlen;

		if (pos == len)
			return 0;
		rc = check_record_header(buf, pos, len - pos, f->n_records == 0,
					 err_off);
		if (rc < 0 || len - pos < REC_HDR)
			return rc;
		if (f->n_records == TLS_HELLO_MAX_RECORDS)
			return fail(err_off, pos, RC_TLS_TOO_FRAGMENTED);
		rlen = be16(buf + pos + 3);
		if (f->n_records++ == 0)
			f->record_version = be16(buf + pos + 1);
		/* Handshake header bytes in this record. */
		for (size_t i = 0; got + i < HS_HDR && i < rlen; i++) {
			if (payload + i >= len)
				return 0;
			hdr[got + i] = buf[payload + i];
			hdr_off[got + i] = payload + i;
			if (got + i == 0 && hdr[0] != HS_CLIENT_HELLO)
				return fail(err_off, payload,
					    RC_TLS_NOT_CLIENT_HELLO);
		}
		if (need == 0 && got + rlen >= HS_HDR) {
			size_t body = (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 |
				      hdr[3];

			if (body > TLS_HELLO_MAX_MSG)
				return fail(err_off, hdr_off[1],
					    RC_TLS_HELLO_TOO_LARGE);
			need = HS_HDR + body;
			f->msg_len = body;
		}
		if (need != 0 && got + rlen > need)
			return fail(err_off, pos + 3, RC_TLS_TRAILING_DATA);
		if (len - payload < rlen)
			return 0;
		got += rlen;
		pos = payload + rlen;
		if (need != 0 && got == need) {
			f->end = pos;
			return (ssize_t)pos;
		}
	}
}

/* Buffer offset of message byte |off| (counting the 4-byte header). */
static size_t msg_to_buf(const uint8_t *buf, size_t off)
{
	size_t pos = 0;

	for (;;) {
		size_t rlen = be16(buf + pos + 3);

		if (off < rlen)
			return pos + REC_HDR + off;
		off -= rlen;
		pos += REC_HDR + rlen;
	}
}

/* Copy the message body out of the records into |dst|. */
static void reassemble(const uint8_t *buf, const struct frame *f,
		       uint8_t *dst)
{
	size_t pos = 0, skip = HS_HDR, out = 0;

	while (out < f->msg_len) {
		size_t rlen = be16(buf + pos + 3);
		const uint8_t *p = buf + pos + REC_HDR;
		size_t n = rlen;

		if (skip) {
			size_t s = skip < n ? skip : n;

			p += s;
			n -= s;
			skip -= s;
		}
		memcpy(dst + out, p, n);
		out += n;
		pos += REC_HDR + rlen;
	}
}

/* ---- The message: a bounded cursor ---- */

/* Offsets are message-body offsets; errors record where in |*eoff|. */
struct cur {
	const uint8_t *base; /* message body */
	size_t off, end;
	size_t *eoff;
};

static int bad(struct cur *c, size_t off, int code)
{
	*c->eoff = off;
	return code;
}

static size_t left(const struct cur *c)
{
	return c->end - c->off;
}

/* Fixed-size field of |n| bytes. */
static int take(struct cur *c, size_t n, const uint8_t **p)
{
	if (left(c) < n)
		return bad(c, c->off, RC_TLS_BAD_LENGTH);
	*p = c->base + c->off;
	c->off += n;
	return 0;
}

static int take_u16(struct cur *c, uint16_t *v)
{
	const uint8_t *p;
	int rc = take(c, 2, &p);

	if (rc == 0)
		*v = be16(p);
	return rc;
}

/* A vector with a |w|-byte (1 or 2) length prefix: the length must fit the
 * container, lie in [min, max], and be a multiple of |unit|. */
static int take_vec(struct cur *c, int w, size_t min, size_t max, size_t unit,
		    struct cur *sub)
{
	size_t at = c->off, n;
	const uint8_t *p;

	if (take(c, (size_t)w, &p) < 0)
		return bad(c, at, RC_TLS_BAD_LENGTH);
	n = w == 1 ? p[0] : be16(p);
	if (n > left(c) || n < min || n > max || n % unit != 0)
		return bad(c, at, RC_TLS_BAD_LENGTH);
	sub->base = c->base;
	sub->off = c->off;
	sub->end = c->off + n;
	sub->eoff = c->eoff;
	c->off += n;
	return 0;
}

/* The vector must fill the rest of its container exactly. */
static int take_vec_all(struct cur *c, int w, size_t min, size_t unit,
			struct cur *sub)
{
	size_t at = c->off;
	int rc = take_vec(c, w, min, SIZE_MAX, unit, sub);

	if (rc == 0 && left(c) != 0)
		return bad(c, at, RC_TLS_BAD_LENGTH);
	return rc;
}

static struct tls_bytes bytes_of(const struct cur *c)
{
	return (struct tls_bytes){ c->base + c->off, left(c) };
}

/* ---- Server names ---- */

const char *tls_sni_kind_str(enum tls_sni_kind kind)
{
	static const char *const names[] = {
		[TLS_SNI_NONE] = "none",
		[TLS_SNI_DNS] = "dns",
		[TLS_SNI_IP] = "ip",
	};

	return (unsigned)kind < TLS_SNI_KIND_COUNT ? names[kind] : "?";
}

static bool is_ip_literal(const uint8_t *p, size_t n)
{
	char s[64];
	unsigned char addr[16];

	if (n >= 2 && p[0] == '[' && p[n - 1] == ']') {
		p++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(s))
		return false;
	memcpy(s, p, n);
	s[n] = '\0';
	return inet_pton(AF_INET, s, addr) == 1 ||
	       inet_pton(AF_INET6, s, addr) == 1;
}

static bool ldh(uint8_t ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

/* A plausible DNS name: labels of LDH (and '_') bytes, 1..63 long, at most
 * 253 bytes without the one optional final dot, and a last label that is
 * not all digits (that would be a malformed IPv4 literal). */
static bool is_dns_name(const uint8_t *p, size_t n)
{
	size_t label = 0;
	bool digits = true;

	if (n > 0 && p[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '.') {
			if (label == 0)
				return false;
			label = 0;
			digits = true;
			continue;
		}
		if (!ldh(p[i]) || ++label > 63)
			return false;
		digits = digits && p[i] >= '0' && p[i] <= '9';
	}
	return label > 0 && !digits;
}

/* server_name (RFC 6066 section 3): one host_name entry at most. */
static int parse_sni(struct cur *e, struct tls_client_hello *h)
{
	struct cur list, name;
	int rc = take_vec_all(e, 2, 1, 1, &list);

	while (rc == 0 && left(&list) > 0) {
		const uint8_t *type;
		size_t at = list.off;

		if ((rc = take(&list, 1, &type)) < 0 ||
		    (rc = take_vec(&list, 2, 1, SIZE_MAX, 1, &name)) < 0)
			break;
		if (*type != 0)
			continue;
		if (h->sni_kind != TLS_SNI_NONE)
			return bad(e, at, RC_TLS_BAD_EXTENSION);
		if (is_ip_literal(name.base + name.off, left(&name)))
			h->sni_kind = TLS_SNI_IP;
		else if (is_dns_name(name.base + name.off, left(&name)))
			h->sni_kind = TLS_SNI_DNS;
		else
			return bad(e, name.off, RC_TLS_BAD_SNI);
		h->sni = (const char *)(name.base + name.off);
		h->sni_len = left(&name);
	}
	return rc;
}

/* ---- Other extensions ---- */

static int parse_alpn(struct cur *e, struct tls_client_hello *h)
{
	struct cur list, proto;
	int rc = take_vec_all(e, 2, 2, 1, &list);

	if (rc < 0)
		return rc;
	h->has_alpn = true;
	h->alpn_wire = bytes_of(&list);
	while (left(&list) > 0) {
		if ((rc = take_vec(&list, 1, 1, 255, 1, &proto)) < 0)
			return rc;
		if (h->n_alpn == TLS_HELLO_MAX_ALPN)
			h->alpn_more = true;
		else
			h->alpn[h->n_alpn++] = bytes_of(&proto);
	}
	return 0;
}

static int parse_versions(struct cur *e, struct tls_client_hello *h)
{
	struct cur list;
	uint16_t v = 0;
	int rc = take_vec_all(e, 1, 2, 2, &list);

	if (rc < 0)
		return rc;
	h->has_supported_versions = true;
	while (left(&list) > 0) {
		(void)take_u16(&list, &v);
		if (v == TLS_VERSION_1_3)
			h->offers_tls13 = true;
		if (h->n_versions == TLS_HELLO_MAX_VERSIONS)
			h->versions_more = true;
		else
			h->versions[h->n_versions++] = v;
	}
	return 0;
}

static int parse_key_share(struct cur *e, struct tls_client_hello *h)
{
	struct cur list, key;
	uint16_t group;
	int rc = take_vec_all(e, 2, 0, 1, &list);

	if (rc < 0)
		return rc;
	h->has_key_share = true;
	while (left(&list) > 0) {
		if ((rc = take_u16(&list, &group)) < 0 ||
		    (rc = take_vec(&list, 2, 1, SIZE_MAX, 1, &key)) < 0)
			return rc;
		if (h->n_key_shares == TLS_HELLO_MAX_GROUPS)
			h->key_shares_more = true;
		else
			h->key_share_groups[h->n_key_shares++] = group;
	}
	return 0;
}

/* Structure checks for the extensions whose shape is a single vector. */
static int parse_ext(uint16_t type, struct cur *e, struct tls_client_hello *h)
{
	struct cur v;

	switch (type) {
	case TLS_EXT_SERVER_NAME:
		return parse_sni(e, h);
	case TLS_EXT_ALPN:
		return parse_alpn(e, h);
	case TLS_EXT_SUPPORTED_VERSIONS:
		return parse_versions(e, h);
	case TLS_EXT_KEY_SHARE:
		return parse_key_share(e, h);
	case TLS_EXT_SIGNATURE_ALGORITHMS:
		h->has_sig_algs = true;
		return take_vec_all(e, 2, 2, 2, &v);
	case TLS_EXT_SUPPORTED_GROUPS:
		return take_vec_all(e, 2, 2, 2, &v);
	case TLS_EXT_EC_POINT_FORMATS:
	case TLS_EXT_PSK_KEY_EXCHANGE_MODES:
		return take_vec_all(e, 1, 1, 1, &v);
	case TLS_EXT_RENEGOTIATION_INFO:
		return take_vec_all(e, 1, 0, 1, &v);
	case TLS_EXT_EXTENDED_MASTER_SECRET:
		return left(e) == 0 ? 0 : bad(e, e->off, RC_TLS_BAD_EXTENSION);
	case TLS_EXT_ECH:
		h->has_ech = true;
		return 0;
	case TLS_EXT_ESNI:
		h->has_esni = true;
		return 0;
	default:
		return 0;
	}
}

/* Has the hello sent extension |type| before? A scan of ext_types while
 * they all fit there (always, in practice); past that, a bitmap of all 2^16
 * types, filled from ext_types the first time. */
static bool seen_before(const struct tls_client_hello *h, uint64_t *seen,
			uint16_t type)
{
	bool dup;

	if (h->n_ext < TLS_HELLO_MAX_EXT) {
		for (size_t i = 0; i < h->n_ext; i++)
			if (h->ext_types[i] == type)
				return true;
		return false;
	}
	if (h->n_ext == TLS_HELLO_MAX_EXT) {
		memset(seen, 0, 65536 / 8);
		for (size_t i = 0; i < TLS_HELLO_MAX_EXT; i++)
			seen[h->ext_types[i] / 64] |= 1ULL
						      << (h->ext_types[i] % 64);
	}
	dup = seen[type / 64] >> (type % 64) & 1;
	seen[type / 64] |= 1ULL << (type % 64);
	return dup;
}

/* The extensions block: it fills the rest of the message exactly. */
static int parse_exts(struct cur *c, struct tls_client_hello *h)
{
	uint64_t seen[65536 / 64]; /* see seen_before() */
	struct cur all, data;
	int rc = take_vec_all(c, 2, 0, 1, &all);

	if (rc < 0)
		return rc;
	h->exts = bytes_of(&all);
	while (left(&all) > 0) {
		size_t at = all.off;
		uint16_t type;

		if ((rc = take_u16(&all, &type)) < 0)
			return bad(c, at, RC_TLS_BAD_LENGTH);
		if ((rc = take_vec(&all, 2, 0, SIZE_MAX, 1, &data)) < 0)
			return rc;
		if (seen_before(h, seen, type))
			return bad(c, at, RC_TLS_DUP_EXTENSION);
		/* RFC 8446 4.2.11: pre_shared_key comes last. */
		if (type == TLS_EXT_PRE_SHARED_KEY && left(&all) > 0)
			return bad(c, at, RC_TLS_BAD_EXTENSION);
		if (h->n_ext < TLS_HELLO_MAX_EXT)
			h->ext_types[h->n_ext] = type;
		h->n_ext++;
		if ((rc = parse_ext(type, &data, h)) < 0)
			return rc;
	}
	return 0;
}

/* ClientHello body (RFC 8446 4.1.2; older versions may end before the
 * extensions). */
static int parse_body(struct cur *c, struct tls_client_hello *h)
{
	struct cur v;
	int rc;

	if ((rc = take_u16(c, &h->legacy_version)) < 0)
		return rc;
	if (h->legacy_version >> 8 != 0x03)
		return bad(c, 0, RC_TLS_BAD_VERSION);
	if ((rc = take(c, 32, &h->random)) < 0 ||
	    (rc = take_vec(c, 1, 0, 32, 1, &v)) < 0)
		return rc;
	h->session_id = v.base + v.off;
	h->session_id_len = left(&v);
	if ((rc = take_vec(c, 2, 2, SIZE_MAX, 2, &v)) < 0)
		return rc;
	h->ciphers = v.base + v.off;
	h->n_ciphers = left(&v) / 2;
	if ((rc = take_vec(c, 1, 1, SIZE_MAX, 1, &v)) < 0)
		return rc;
	h->compression = v.base + v.off;
	h->n_compression = left(&v);
	if (left(c) == 0)
		return 0;
	return parse_exts(c, h);
}

ssize_t tls_parse_client_hello(const uint8_t *buf, size_t len,
			       uint8_t *scratch, size_t scratch_len,
			       struct tls_client_hello *out, size_t *err_off)
{
	struct frame f;
	size_t eoff = 0;
	struct cur c;
	ssize_t end;
	int rc;

	memset(out, 0, sizeof(*out));
	if (len > 0 && (buf[0] & 0x80)) {
		switch (tls_sniff(buf, len)) {
		case TLS_SNIFF_NEED_MORE:
			return 0;
		case TLS_SNIFF_TLS_OLD:
			return fail(err_off, 0, RC_TLS_SSLV2);
		default:
			return fail(err_off, 0, RC_TLS_NOT_TLS);
		}
	}
	end = walk_records(buf, len, &f, err_off);
	if (end <= 0)
		return end;
	out->record_version = f.record_version;
	out->n_records = f.n_records;
	out->msg_len = f.msg_len;
	if (f.n_records == 1) {
		out->msg = buf + REC_HDR + HS_HDR;
	} else {
		if (!scratch || scratch_len < f.msg_len)
			return fail(err_off, 0, RC_TLS_NEED_SCRATCH);
		reassemble(buf, &f, scratch);
		out->msg = scratch;
		out->reassembled = true;
	}
	c = (struct cur){ out->msg, 0, f.msg_len, &eoff };
	rc = parse_body(&c, out);
	if (rc < 0) {
		/* Running off the end blames the last byte; an empty body, the
		 * handshake length. */
		size_t moff = f.msg_len == 0	    ? 1
			      : eoff >= f.msg_len ? HS_HDR + f.msg_len - 1
						  : HS_HDR + eoff;

		return fail(err_off, msg_to_buf(buf, moff), rc);
	}
	return end;
}

bool tls_hello_find_ext(const struct tls_client_hello *h, uint16_t type,
			struct tls_bytes *data)
{
	const uint8_t *p = h->exts.p, *end;

	if (!p)
		return false;
	for (end = p + h->exts.len; end - p >= 4;) {
		size_t n = be16(p + 2);

		if (be16(p) == type) {
			*data = (struct tls_bytes){ p + 4, n };
			return true;
		}
		p += 4 + n;
	}
	return false;
}
