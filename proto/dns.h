/* SPDX-License-Identifier: MIT */
/* DNS messages (RFC 1035), sans-IO: a parser that fills caller-supplied
 * arrays (header, question, records decoded to text for the flow record),
 * writers for queries, answers and error answers, PTR names, and the
 * DNS-over-TCP length prefix. The engine's dns and reverse:dns modes use
 * it on each datagram / TCP message; nothing here allocates. */
#ifndef RC_PROTO_DNS_H
#define RC_PROTO_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "common/rc_err.h"

#define DNS_HEADER_LEN 12
#define DNS_MAX_NAME 255   /* wire bytes of a name, final 0 included */
#define DNS_MAX_LABEL 63
#define DNS_MAX_MSG 65535
#define DNS_UDP_MAX 512    /* payload without EDNS (RFC 1035 4.2.1) */
/* A name in text form, with escapes and the NUL: always enough. */
#define DNS_NAME_TEXT_MAX 1024
/* dns_ptr_name(): "f.e.d...ip6.arpa" + NUL. */
#define DNS_PTR_NAME_MAX 73

enum dns_type {
	DNS_TYPE_A = 1,
	DNS_TYPE_NS = 2,
	DNS_TYPE_CNAME = 5,
	DNS_TYPE_SOA = 6,
	DNS_TYPE_PTR = 12,
	DNS_TYPE_HINFO = 13,
	DNS_TYPE_MX = 15,
	DNS_TYPE_TXT = 16,
	DNS_TYPE_AAAA = 28,
	DNS_TYPE_SRV = 33,
	DNS_TYPE_OPT = 41,
	DNS_TYPE_DS = 43,
	DNS_TYPE_RRSIG = 46,
	DNS_TYPE_DNSKEY = 48,
	DNS_TYPE_SVCB = 64,
	DNS_TYPE_HTTPS = 65,
	DNS_TYPE_AXFR = 252,
	DNS_TYPE_ANY = 255,
	DNS_TYPE_CAA = 257,
};
/* "A", "AAAA", ... for the types above; "UNKNOWN" for others (use
 * dns_type_name() for RFC 3597's "TYPE123"). Never NULL. */
const char *dns_type_str(uint16_t type);
/* The type's mnemonic, or "TYPE<n>", into out (16 bytes suffice).
 * Returns out. */
const char *dns_type_name(uint16_t type, char out[16]) NONNULL(2);

enum dns_class {
	DNS_CLASS_IN = 1,
	DNS_CLASS_CH = 3,
	DNS_CLASS_HS = 4,
	DNS_CLASS_ANY = 255,
};
/* "IN", "CH", "HS", "ANY", or "UNKNOWN". */
const char *dns_class_str(uint16_t cls);

enum dns_rcode {
	DNS_RCODE_NOERROR = 0,
	DNS_RCODE_FORMERR = 1,
	DNS_RCODE_SERVFAIL = 2,
	DNS_RCODE_NXDOMAIN = 3,
	DNS_RCODE_NOTIMP = 4,
	DNS_RCODE_REFUSED = 5,
	DNS_RCODE_YXDOMAIN = 6,
	DNS_RCODE_YXRRSET = 7,
	DNS_RCODE_NXRRSET = 8,
	DNS_RCODE_NOTAUTH = 9,
	DNS_RCODE_NOTZONE = 10,
	DNS_RCODE_COUNT
};
/* "NOERROR", "NXDOMAIN", ...; "RCODE?" for 11..15. Never NULL. */
const char *dns_rcode_str(uint8_t rcode);

enum dns_opcode {
	DNS_OPCODE_QUERY = 0,
	DNS_OPCODE_IQUERY = 1,
	DNS_OPCODE_STATUS = 2,
	DNS_OPCODE_NOTIFY = 4,
	DNS_OPCODE_UPDATE = 5,
};
/* "QUERY", "IQUERY", "STATUS", "NOTIFY", "UPDATE", or "OPCODE?". */
const char *dns_opcode_str(uint8_t opcode);

enum dns_section {
	DNS_SEC_ANSWER,
	DNS_SEC_AUTHORITY,
	DNS_SEC_ADDITIONAL,
	DNS_SEC_COUNT
};
/* "answer", "authority", "additional". */
const char *dns_section_str(enum dns_section s);

/* A resource record.
 * Parsed (dns_parse()): every field is set; text pointers point into the
 * caller's text buffer (NUL-terminated) and are NULL when it was full
 * (dns_msg.text_short is then set); |rdata| points into the message.
 * Written (dns_write_response()): see there for the fields it reads. */
struct dns_rr {
	const char *name; /* owner name, text: "www.example.com" ("." root) */
	uint16_t type;
	uint16_t cls;
	uint32_t ttl;
	enum dns_section section;
	const uint8_t *rdata; /* raw RDATA as in the message */
	uint16_t rdlen;
	/* RDATA decoded to text (NULL for other types):
	 *   A, AAAA         "192.0.2.1", "2001:db8::1"
	 *   CNAME, PTR, NS  the target name, as |name|
	 *   MX              "10 mail.example.com" (preference in |pref|)
	 *   TXT             each character-string in double quotes, joined
	 *                   with spaces: "\"v=spf1 -all\" \"x\"" (", \ and
	 *                   bytes outside 0x20..0x7e escaped as \" \\ \DDD)
	 * Names in text form: labels joined with '.', no final dot except for
	 * the root "."; inside a label '.', '\\', '"', ';', '(', ')', '@', '$'
	 * and bytes outside 0x21..0x7e are escaped (\. or \DDD), as dig does. */
	const char *text;
	uint16_t pref; /* MX preference */
};

/* A parsed message. Set up with dns_msg_init() (which says where records
 * and text go), then filled by dns_parse(). */
struct dns_msg {
	/* Caller memory, set by dns_msg_init(), kept by dns_parse(): */
	struct dns_rr *rrs; /* the first max_rrs records, all sections, in
			     * message order (answers first) */
	size_t max_rrs;
	char *text; /* names and rdata as text go here */
	size_t text_cap;

	/* Header */
	uint16_t id;
	bool qr; /* response */
	uint8_t opcode;
	bool aa, tc, rd, ra, ad, cd;
	uint8_t rcode; /* the header's 4 bits (see edns_ext_rcode) */
	uint16_t qdcount, ancount, nscount, arcount;

	/* The first question, if qdcount > 0 (all questions are validated). */
	bool has_question;
	const char *qname; /* text (see struct dns_rr); NULL if no room */
	size_t qname_len;  /* strlen(qname) */
	bool qname_escaped; /* the name needed escapes: not a host name */
	uint16_t qtype;
	uint16_t qclass;
	/* Wire span of the whole question section, [DNS_HEADER_LEN, q_end):
	 * what a response copies. */
	size_t q_end;

	/* Records of all three sections, in order. */
	size_t n_rrs;  /* stored in rrs[] (<= max_rrs) */
	bool rrs_more; /* the message holds more than max_rrs records */
	bool text_short; /* some name or text did not fit: it is NULL */
	size_t text_used;

	/* EDNS(0) (RFC 6891): the first OPT record of the additional section. */
	bool has_edns;
	uint16_t edns_udp_size; /* requestor's UDP payload size (class) */
	uint8_t edns_version;
	uint8_t edns_ext_rcode; /* upper 8 bits of the extended RCODE */
	bool edns_do;          /* DNSSEC OK */

	const uint8_t *wire; /* the parsed message (the caller's bytes) */
	size_t msg_len; /* where the last section ended; bytes after it
			 * (some middleboxes pad) are ignored */
};

/* Prepare |m| for dns_parse(): zeroes it and records where the records
 * (|rrs|[|max_rrs|], may be NULL/0) and the text (|text|[|text_cap|], may
 * be NULL/0) go. The caller owns both; pointers in |m| point into them and
 * into the parsed message. A question name always fits in
 * DNS_NAME_TEXT_MAX bytes of text; each record needs at most
 * DNS_NAME_TEXT_MAX plus, for TXT, 4 * rdlen + 3 bytes. */
void dns_msg_init(struct dns_msg *m, struct dns_rr *rrs, size_t max_rrs,
		  char *text, size_t text_cap) NONNULL(1);

/* Parse the DNS message msg[0..len) into |out| (set up by dns_msg_init();
 * may be parsed into again: each call resets everything but the caller
 * memory). Every name (compression followed, loops refused), every record
 * of every section and the RDATA of A, AAAA, CNAME, PTR, NS, MX, TXT and
 * OPT are validated.
 * Returns 0, or a negative code with *err_off (if not NULL) at the
 * offending byte:
 *   RC_DNS_TRUNCATED    a count or length runs past the end (offset: the
 *                       start of the item that did not fit)
 *   RC_DNS_BAD_LABEL    a label type other than 0 or 3 (0x40/0x80 bits)
 *   RC_DNS_NAME_TOO_LONG  the name passes 255 bytes (offset: that label)
 *   RC_DNS_BAD_POINTER  a pointer that is not strictly before the name
 *                       segment it is in (loops, forward), into the
 *                       header (< 12), or more than 127 in one name
 *   RC_DNS_BAD_RDATA    RDATA of a known type with the wrong length
 *                       (offset: the RDATA), or a name in it that runs
 *                       past or stops short of the RDATA's end (offset:
 *                       the label that crosses it / the first byte left),
 *                       or an OPT record not owned by the root
 * On error |out| holds what was parsed before (the header at least when
 * len >= 12): a server answers with dns_write_error(). */
int dns_parse(const uint8_t *msg, size_t len, struct dns_msg *out,
	      size_t *err_off) NONNULL(1, 3) WUNRES;

/* 0 if |m| is something a DNS server answers: a query (QR clear), opcode
 * QUERY, exactly one question. Else RC_DNS_NOT_QUERY; never answer a
 * message with QR set (two servers would ping-pong), answer the others with
 * dns_write_error(): NOTIMP for another opcode, FORMERR otherwise. */
int dns_check_query(const struct dns_msg *m) NONNULL(1);

/* ---- Writers: each returns the bytes written, or a negative code ---- */

/* A query for |name| (text, as dns_parse() writes it; a final dot is
 * allowed; "" or "." is the root) of type |qtype|, class IN, RD as given.
 * No EDNS. Returns the length, RC_DNS_BAD_NAME (empty label, label over 63
 * bytes, bad escape), RC_DNS_NAME_TOO_LONG, or -ENOSPC. */
ssize_t dns_write_query(uint8_t *out, size_t cap, uint16_t id,
			const char *name, uint16_t qtype, bool rd)
	NONNULL(1, 4) WUNRES;

/* A response to |query| (parsed from bytes that are still valid: the
 * question section is copied from them, byte for byte, case preserved):
 * same id, opcode and RD, QR and RA set, AA clear, |rcode|, then the
 * |n| |answers| in the answer section. For each answer it reads:
 *   name   owner name text; NULL means the question's name (written as a
 *          compression pointer to it)
 *   type, cls (0 means IN), ttl
 *   A, AAAA: rdata/rdlen, 4 or 16 bytes of address;
 *   CNAME, PTR, NS: text, the target name;
 *   any other type: rdata/rdlen copied as is (it must not hold
 *   compression pointers).
 * If the answers do not all fit in |cap| (pass 512, or the EDNS size, for
 * UDP) it writes as many whole answers as fit and sets TC. No EDNS OPT is
 * written. Returns the length, RC_DNS_BAD_NAME/RC_DNS_NAME_TOO_LONG for a
 * bad name in an answer, RC_DNS_BAD_RDATA for an A/AAAA rdlen other than
 * 4/16, -EINVAL if |query| has no question, or -ENOSPC if not even the
 * header and question fit. */
ssize_t dns_write_response(uint8_t *out, size_t cap,
			   const struct dns_msg *query, uint8_t rcode,
			   const struct dns_rr *answers, size_t n)
	NONNULL(1, 3) WUNRES;

/* An error answer (FORMERR, SERVFAIL, NXDOMAIN, REFUSED, NOTIMP...) to the
 * raw message query[0..qlen) that may parse only in part: the id (and
 * opcode and RD, with 3+ bytes) copied, QR set, |rcode|; the first question
 * copied if it parses, else no question. Returns the length (12.. ),
 * -EINVAL if qlen < 2 (nothing to answer: drop it) or the QR bit is set
 * (never answer a response), or -ENOSPC. */
ssize_t dns_write_error(uint8_t *out, size_t cap, const uint8_t *query,
			size_t qlen, uint8_t rcode) NONNULL(1, 3) WUNRES;

/* ---- Reverse names ---- */

/* The PTR name of an AF_INET/AF_INET6 address: "1.0.0.127.in-addr.arpa",
 * "b.a.9.8...ip6.arpa" (no final dot). Returns the length without the NUL,
 * -EAFNOSUPPORT, or -ENOSPC (DNS_PTR_NAME_MAX always suffices). */
int dns_ptr_name(const struct sockaddr *sa, char *out, size_t cap)
	NONNULL(1, 2);

/* The inverse: the address a PTR query name stands for (case-insensitive,
 * final dot allowed; exactly 4 decimal labels under in-addr.arpa or 32
 * nibbles under ip6.arpa). Fills |ss| (port 0) and returns its length, or
 * -EINVAL when |name| is no such name (answer NXDOMAIN). */
int dns_ptr_addr(const char *name, size_t len, struct sockaddr_storage *ss)
	NONNULL(1, 3);

/* ---- DNS over TCP (RFC 1035 4.2.2, RFC 7766): 2-byte length prefix ---- */

/* Find the first message in the stream buf[0..len). Returns the bytes it
 * takes with its prefix (> 0; the message is *msg[0..*msg_len)), 0 if
 * incomplete, or RC_DNS_BAD_FRAME (offset 0) when the prefix announces
 * fewer than 12 bytes: close the connection. */
ssize_t dns_tcp_frame(const uint8_t *buf, size_t len, const uint8_t **msg,
		      size_t *msg_len, size_t *err_off) NONNULL(1, 3, 4) WUNRES;

/* Write the length prefix for a message of |msg_len| (<= 65535) bytes.
 * Returns 2. Writers can leave 2 bytes in front: dns_write_*(out + 2, ...). */
size_t dns_tcp_prefix(uint8_t out[2], size_t msg_len) NONNULL(1);

#endif
