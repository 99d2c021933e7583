/* SPDX-License-Identifier: MIT */
/* TLS ClientHello reader, sans-IO: tells TLS from plaintext in a
 * connection's first bytes, and parses the ClientHello (SNI, ALPN, versions,
 * key shares, ...) without copying, before crypto/ sees a byte of it. */
#ifndef RC_PROTO_TLS_HELLO_H
#define RC_PROTO_TLS_HELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/rc_err.h"

/* ---- Sniffing ---- */

enum tls_sniff {
	TLS_SNIFF_NEED_MORE, /* too few bytes to decide: read more */
	TLS_SNIFF_TLS,       /* a TLS handshake record with a ClientHello */
	TLS_SNIFF_TLS_OLD,   /* an SSLv2-format ClientHello (SSL 2/3 era) */
	TLS_SNIFF_PLAINTEXT, /* cannot be TLS: HTTP, h2 preface, SOCKS, SSH... */
	TLS_SNIFF_COUNT
};
const char *tls_sniff_str(enum tls_sniff s);

/* Classify the first |len| bytes of a connection, on any port. Decides as
 * early as it can: one byte settles most plaintext (ASCII, SOCKS); TLS needs
 * 6 bytes (record header and handshake type 0x01), SSLv2 needs 5. The answer
 * for a prefix is NEED_MORE or the answer for the longer buffer. TLS means
 * "looks like TLS": tls_parse_client_hello() still has the last word. */
enum tls_sniff tls_sniff(const uint8_t *buf, size_t len);

/* ---- The ClientHello ---- */

#define TLS_HELLO_MAX_MSG 65536 /* ClientHello body bytes we accept */
#define TLS_HELLO_MAX_RECORDS 4096 /* records one ClientHello may span */
#define TLS_HELLO_MAX_ALPN 16
#define TLS_HELLO_MAX_VERSIONS 16
#define TLS_HELLO_MAX_GROUPS 16
#define TLS_HELLO_MAX_EXT 64

/* Extension types the reader looks at (IANA TLS ExtensionType values). */
enum tls_ext_type {
	TLS_EXT_SERVER_NAME = 0,
	TLS_EXT_SUPPORTED_GROUPS = 10,
	TLS_EXT_EC_POINT_FORMATS = 11,
	TLS_EXT_SIGNATURE_ALGORITHMS = 13,
	TLS_EXT_ALPN = 16,
	TLS_EXT_PADDING = 21,
	TLS_EXT_EXTENDED_MASTER_SECRET = 23,
	TLS_EXT_PRE_SHARED_KEY = 41,
	TLS_EXT_SUPPORTED_VERSIONS = 43,
	TLS_EXT_PSK_KEY_EXCHANGE_MODES = 45,
	TLS_EXT_KEY_SHARE = 51,
	TLS_EXT_RENEGOTIATION_INFO = 0xff01,
	TLS_EXT_ECH = 0xfe0d,  /* encrypted_client_hello (draft-ietf-tls-esni) */
	TLS_EXT_ESNI = 0xffce, /* the older encrypted_server_name */
};

#define TLS_VERSION_1_3 0x0304

/* What kind of name the SNI carries. */
enum tls_sni_kind {
	TLS_SNI_NONE, /* no server_name extension (or no host_name in it) */
	TLS_SNI_DNS,  /* a plausible DNS name: LDH labels (and '_'), 1..63
		       * bytes each, at most 253 bytes, maybe one final dot */
	TLS_SNI_IP,   /* an IPv4 or IPv6 literal: invalid per RFC 6066, sent
		       * anyway by some clients; never use it as a DNS name */
	TLS_SNI_KIND_COUNT
};
const char *tls_sni_kind_str(enum tls_sni_kind kind);

/* A byte string inside the parsed input. */
struct tls_bytes {
	const uint8_t *p;
	size_t len;
};

/* A parsed ClientHello. Every pointer points into the caller's buffer (or,
 * for a hello split over several records, into the caller's scratch: see
 * |reassembled|); it stays valid as long as that memory does. Lists hold
 * the first TLS_HELLO_MAX_* entries; *_more says more were offered (the raw
 * extension, found with tls_hello_find_ext(), has them all). */
struct tls_client_hello {
	uint16_t record_version; /* of the first record: 0x0301 usually */
	uint16_t legacy_version; /* 0x0303 for TLS 1.2 and 1.3 */
	const uint8_t *random;   /* 32 bytes */
	const uint8_t *session_id;
	size_t session_id_len; /* 0..32 */
	const uint8_t *ciphers; /* n_ciphers big-endian 16-bit suites */
	size_t n_ciphers;       /* >= 1 */
	const uint8_t *compression;
	size_t n_compression; /* >= 1 */

	/* Extensions, in order: types of the first TLS_HELLO_MAX_EXT, the
	 * count of all, and the raw block (validated: it walks cleanly). */
	uint16_t ext_types[TLS_HELLO_MAX_EXT];
	size_t n_ext;
	struct tls_bytes exts; /* empty when the hello has no extensions */

	/* server_name: the host_name entry, not NUL-terminated. */
	enum tls_sni_kind sni_kind;
	const char *sni; /* NULL with TLS_SNI_NONE */
	size_t sni_len;

	/* ALPN: the offered protocols in order, and the extension's
	 * ProtocolNameList as sent (length-prefixed entries, without the outer
	 * 16-bit length): the wire format SSL_set_alpn_protos() takes. */
	bool has_alpn;
	struct tls_bytes alpn[TLS_HELLO_MAX_ALPN];
	size_t n_alpn;
	bool alpn_more;
	struct tls_bytes alpn_wire;

	/* supported_versions, in order (GREASE values included). */
	bool has_supported_versions;
	uint16_t versions[TLS_HELLO_MAX_VERSIONS];
	size_t n_versions;
	bool versions_more;
	bool offers_tls13; /* 0x0304 is among supported_versions */

	/* key_share: the groups of the offered shares, in order. */
	bool has_key_share;
	uint16_t key_share_groups[TLS_HELLO_MAX_GROUPS];
	size_t n_key_shares;
	bool key_shares_more;

	bool has_sig_algs; /* signature_algorithms */
	bool has_ech;      /* encrypted_client_hello: SNI is the outer name */
	bool has_esni;     /* encrypted_server_name (obsolete drafts) */

	/* Framing: the handshake message body (after its 4-byte header), how
	 * many records carried it, and whether it had to be reassembled into
	 * the scratch buffer (then every pointer above points there). */
	const uint8_t *msg;
	size_t msg_len;
	size_t n_records;
	bool reassembled;
};

/* Parse the ClientHello at the start of a connection, buf[0..len): TLS
 * records of type handshake (22) carrying one ClientHello message, possibly
 * split over several records.
 *
 * |scratch|/|scratch_len|: caller memory where a hello split over several
 * records is reassembled; may be NULL/0. A hello in one record (what nearly
 * every client sends) never touches it. TLS_HELLO_MAX_MSG bytes always
 * suffice. Its contents are the caller's; pointers in |out| may point into it.
 *
 * Returns:
 *  > 0  the number of bytes of the records that carry the hello; |out| is
 *       filled. Bytes after that are the client's next records.
 *    0  incomplete: read more and call again with the grown buffer (the
 *       whole of it; nothing is remembered between calls, and a call
 *       costs one step per record plus, once complete, one pass over the
 *       hello). A hello that we accept never needs more than
 *       TLS_HELLO_MAX_MSG + 4 + 5 * TLS_HELLO_MAX_RECORDS bytes.
 *  < 0  a negative RC_TLS_* code: not a valid ClientHello; *err_off (if not
 *       NULL) holds the offset in buf of the offending byte or length
 *       field. A prefix of the input gives 0 or this same error and offset.
 *       RC_TLS_NEED_SCRATCH is the exception: the hello is complete but was
 *       split over records and scratch_len < out->msg_len; call again with
 *       at least that much scratch.
 * |out| is only meaningful after a return > 0. */
ssize_t tls_parse_client_hello(const uint8_t *buf, size_t len,
			       uint8_t *scratch, size_t scratch_len,
			       struct tls_client_hello *out, size_t *err_off)
	NONNULL(1, 5) WUNRES;

/* The data of the first extension of |type| in a parsed hello; false if it
 * has none. */
bool tls_hello_find_ext(const struct tls_client_hello *h, uint16_t type,
			struct tls_bytes *data) NONNULL(1, 3);

/* Cipher suite |i| (< h->n_ciphers). */
static inline uint16_t tls_hello_cipher(const struct tls_client_hello *h,
					size_t i)
{
	return (uint16_t)(h->ciphers[2 * i] << 8 | h->ciphers[2 * i + 1]);
}

/* True for the GREASE values of RFC 8701 (0x0a0a, 0x1a1a, ... 0xfafa). */
static inline bool tls_is_grease(uint16_t v)
{
	return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

#endif
