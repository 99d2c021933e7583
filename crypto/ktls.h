/* SPDX-License-Identifier: MIT */
/* Kernel TLS, the pure part: TLS 1.3 traffic keys from the traffic secrets
 * (captured with the keylog callback), and the crypto_info structures that
 * setsockopt(SOL_TLS, TLS_TX/TLS_RX) takes. No sockets here; engine/ktls.c
 * installs what this builds. Only TLS 1.3 is offloaded: its keys follow
 * from one secret per direction and its sequence numbers restart at 0
 * after the handshake. */
#ifndef RC_CRYPTO_KTLS_H
#define RC_CRYPTO_KTLS_H

#include <linux/tls.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc_err.h"

/* The TLS 1.3 cipher suites the kernel can run. */
enum ktls_suite {
	KTLS_SUITE_NONE,
	KTLS_AES_128_GCM,       /* TLS_AES_128_GCM_SHA256 */
	KTLS_AES_256_GCM,       /* TLS_AES_256_GCM_SHA384 */
	KTLS_CHACHA20_POLY1305, /* TLS_CHACHA20_POLY1305_SHA256 */
	KTLS_SUITE_COUNT
};
const char *ktls_suite_str(enum ktls_suite s);
/* From the IANA id (0x1301, 0x1302, 0x1303); KTLS_SUITE_NONE otherwise. */
enum ktls_suite ktls_suite_from_id(uint16_t id);
/* Key length of |s| (16 or 32), 0 for none. The IV is always 12 bytes. */
size_t ktls_key_len(enum ktls_suite s);
#define KTLS_IV_LEN 12
#define KTLS_MAX_KEY 32
#define KTLS_MAX_SECRET 48

/* HKDF-Expand-Label(secret, label, "", out_len) of RFC 8446 7.1 with the
 * suite's hash. 0, or -EINVAL (bad suite/lengths), -EIO (OpenSSL). */
int ktls_expand_label(enum ktls_suite s, const uint8_t *secret,
		      size_t secret_len, const char *label, uint8_t *out,
		      size_t out_len) WUNRES NONNULL(2, 4, 5);

/* The record key and IV of one direction from its traffic secret
 * ("key" and "iv" labels, RFC 8446 7.3). |key| has room for
 * KTLS_MAX_KEY bytes, |iv| for KTLS_IV_LEN. 0 or as ktls_expand_label. */
int ktls_traffic_keys(enum ktls_suite s, const uint8_t *secret,
		      size_t secret_len, uint8_t *key, uint8_t *iv)
	WUNRES NONNULL(2, 4, 5);

/* What setsockopt(SOL_TLS, TLS_TX or TLS_RX) takes, for any suite. */
union ktls_crypto_info {
	struct tls_crypto_info info;
	struct tls12_crypto_info_aes_gcm_128 aes128;
	struct tls12_crypto_info_aes_gcm_256 aes256;
	struct tls12_crypto_info_chacha20_poly1305 chacha;
};

/* Fill |ci| for TLS 1.3 from the record |key| and 12-byte |iv|, with the
 * next record's sequence number |seq|. Returns the size to pass to
 * setsockopt, or -EINVAL for an unknown suite. */
int ktls_crypto_info(enum ktls_suite s, const uint8_t *key, const uint8_t *iv,
		     uint64_t seq, union ktls_crypto_info *ci)
	WUNRES NONNULL(2, 3, 5);

/* ---- traffic secrets of a live SSL ---- */

/* Call once before any SSL exists (allocates the ex_data slot). 0 or
 * -ENOMEM. */
int ktls_init(void) WUNRES;
/* SSL_CTX_set_keylog_callback() target: keeps CLIENT_TRAFFIC_SECRET_0 and
 * SERVER_TRAFFIC_SECRET_0 with the SSL (freed with it). */
void ktls_keylog_cb(const SSL *ssl, const char *line) NONNULL(1, 2);

/* Both directions' crypto_info for |ssl| after its TLS 1.3 handshake: TX
 * with |tx_seq|, RX with |rx_seq|; sizes in *len. 0, or -ENOTSUP (not
 * TLS 1.3, or a suite the kernel does not run; the reason in |why|),
 * -ENOKEY (secrets not captured), -EIO. The keys are wiped by the caller
 * with OPENSSL_cleanse once installed. */
int ktls_ssl_info(SSL *ssl, uint64_t tx_seq, uint64_t rx_seq,
		  union ktls_crypto_info *tx, union ktls_crypto_info *rx,
		  int *len, char *why, size_t why_len)
	WUNRES NONNULL(1, 4, 5, 6);
/* The suite of |ssl| if it is TLS 1.3 and one the kernel runs, else
 * KTLS_SUITE_NONE. */
enum ktls_suite ktls_ssl_suite(const SSL *ssl) NONNULL(1);

#endif
