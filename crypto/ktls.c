/* SPDX-License-Identifier: MIT */
/* Kernel TLS key material: TLS 1.3 traffic secrets caught by the keylog
 * callback, HKDF-Expand-Label into record keys, and the crypto_info the
 * kernel takes. The sockets are engine/ktls.c's business. */
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "crypto/ktls.h"

const char *ktls_suite_str(enum ktls_suite s)
{
	static const char *const names[KTLS_SUITE_COUNT] = {
		"none", "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
		"TLS_CHACHA20_POLY1305_SHA256"};
	return (unsigned)s < KTLS_SUITE_COUNT ? names[s] : "?";
}

enum ktls_suite ktls_suite_from_id(uint16_t id)
{
	switch (id) {
	case 0x1301:
		return KTLS_AES_128_GCM;
	case 0x1302:
		return KTLS_AES_256_GCM;
	case 0x1303:
		return KTLS_CHACHA20_POLY1305;
	default:
		return KTLS_SUITE_NONE;
	}
}

size_t ktls_key_len(enum ktls_suite s)
{
	switch (s) {
	case KTLS_AES_128_GCM:
		return 16;
	case KTLS_AES_256_GCM:
	case KTLS_CHACHA20_POLY1305:
		return 32;
	default:
		return 0;
	}
}

static const char *suite_digest(enum ktls_suite s)
{
	return s == KTLS_AES_256_GCM ? "SHA384" : "SHA256";
}

int ktls_expand_label(enum ktls_suite s, const uint8_t *secret,
		      size_t secret_len, const char *label, uint8_t *out,
		      size_t out_len)
{
	/* HkdfLabel: uint16 length, opaque label<7..255> ("tls13 " label),
	 * opaque context<0..255> (empty here). */
	uint8_t info[2 + 1 + 255 + 1];
	size_t llen = strlen(label);
	if (!ktls_key_len(s) || llen > 255 - 6 || out_len > 255 || !secret_len)
		return -EINVAL;
	size_t n = 0;
	info[n++] = (uint8_t)(out_len >> 8);
	info[n++] = (uint8_t)out_len;
	info[n++] = (uint8_t)(6 + llen);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, llen);
	n += llen;
	info[n++] = 0;

	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	EVP_KDF_free(kdf);
	if (!kctx)
		return -EIO;
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						 (char *)suite_digest(s), 0),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
						  (void *)secret, secret_len),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n),
		OSSL_PARAM_construct_end(),
	};
	int ok = EVP_KDF_derive(kctx, out, out_len, params);
	EVP_KDF_CTX_free(kctx);
	return ok == 1 ? 0 : -EIO;
}

int ktls_traffic_keys(enum ktls_suite s, const uint8_t *secret,
		      size_t secret_len, uint8_t *key, uint8_t *iv)
{
	int r = ktls_expand_label(s, secret, secret_len, "key", key,
				  ktls_key_len(s));
	if (r == 0)
		r = ktls_expand_label(s, secret, secret_len, "iv", iv,
				      KTLS_IV_LEN);
	return r;
}

static void put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

int ktls_crypto_info(enum ktls_suite s, const uint8_t *key, const uint8_t *iv,
		     uint64_t seq, union ktls_crypto_info *ci)
{
	memset(ci, 0, sizeof(*ci));
	ci->info.version = TLS_1_3_VERSION;
	/* The 12-byte IV is salt || iv for the GCM structures; the kernel
	 * XORs the sequence number into it as RFC 8446 5.3 says. */
	switch (s) {
	case KTLS_AES_128_GCM:
		ci->info.cipher_type = TLS_CIPHER_AES_GCM_128;
		memcpy(ci->aes128.key, key, TLS_CIPHER_AES_GCM_128_KEY_SIZE);
		memcpy(ci->aes128.salt, iv, TLS_CIPHER_AES_GCM_128_SALT_SIZE);
		memcpy(ci->aes128.iv, iv + TLS_CIPHER_AES_GCM_128_SALT_SIZE,
		       TLS_CIPHER_AES_GCM_128_IV_SIZE);
		put_be64(ci->aes128.rec_seq, seq);
		return (int)sizeof(ci->aes128);
	case KTLS_AES_256_GCM:
		ci->info.cipher_type = TLS_CIPHER_AES_GCM_256;
		memcpy(ci->aes256.key, key, TLS_CIPHER_AES_GCM_256_KEY_SIZE);
		memcpy(ci->aes256.salt, iv, TLS_CIPHER_AES_GCM_256_SALT_SIZE);
		memcpy(ci->aes256.iv, iv + TLS_CIPHER_AES_GCM_256_SALT_SIZE,
		       TLS_CIPHER_AES_GCM_256_IV_SIZE);
		put_be64(ci->aes256.rec_seq, seq);
		return (int)sizeof(ci->aes256);
	case KTLS_CHACHA20_POLY1305:
		ci->info.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
		memcpy(ci->chacha.key, key,
		       TLS_CIPHER_CHACHA20_POLY1305_KEY_SIZE);
		memcpy(ci->chacha.iv, iv, TLS_CIPHER_CHACHA20_POLY1305_IV_SIZE);
		put_be64(ci->chacha.rec_seq, seq);
		return (int)sizeof(ci->chacha);
	default:
		return -EINVAL;
	}
}

/* ---- secrets from the keylog callback ---- */

struct secrets {
	uint8_t c[KTLS_MAX_SECRET], s[KTLS_MAX_SECRET];
	uint8_t clen, slen;
};

static int ex_idx = -1;
static pthread_once_t ex_once = PTHREAD_ONCE_INIT;

static void secrets_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad,
			 int idx, long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	OPENSSL_clear_free(ptr, sizeof(struct secrets));
}

static void ex_alloc(void)
{
	ex_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, secrets_free);
}

int ktls_init(void)
{
	pthread_once(&ex_once, ex_alloc);
	return ex_idx < 0 ? -ENOMEM : 0;
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

/* "LABEL <client random hex> <secret hex>": the secret into |out|. */
static int parse_secret(const char *p, uint8_t *out)
{
	p = strchr(p, ' ');
	p = p ? strchr(p + 1, ' ') : NULL;
	if (!p)
		return -1;
	p++;
	int n = 0;
	while (p[0] && p[1] && n < KTLS_MAX_SECRET) {
		int hi = hexval(p[0]), lo = hexval(p[1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[n++] = (uint8_t)(hi << 4 | lo);
		p += 2;
	}
	return *p ? -1 : n;
}

void ktls_keylog_cb(const SSL *ssl_c, const char *line)
{
	static const char cl[] = "CLIENT_TRAFFIC_SECRET_0 ";
	static const char sl[] = "SERVER_TRAFFIC_SECRET_0 ";
	bool is_c = !strncmp(line, cl, sizeof(cl) - 1);
	if (ex_idx < 0 || (!is_c && strncmp(line, sl, sizeof(sl) - 1)))
		return;
	SSL *ssl = (SSL *)ssl_c; /* ex_data is ours to set */
	struct secrets *sec = SSL_get_ex_data(ssl, ex_idx);
	if (!sec) {
		sec = OPENSSL_zalloc(sizeof(*sec));
		if (!sec || !SSL_set_ex_data(ssl, ex_idx, sec)) {
			OPENSSL_free(sec);
			return;
		}
	}
	uint8_t buf[KTLS_MAX_SECRET];
	int n = parse_secret(line, buf);
	if (n <= 0)
		return;
	memcpy(is_c ? sec->c : sec->s, buf, (size_t)n);
	*(is_c ? &sec->clen : &sec->slen) = (uint8_t)n;
	OPENSSL_cleanse(buf, sizeof(buf));
}

enum ktls_suite ktls_ssl_suite(const SSL *ssl)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	if (SSL_version(ssl) != TLS1_3_VERSION || !c)
		return KTLS_SUITE_NONE;
	return ktls_suite_from_id(SSL_CIPHER_get_protocol_id(c));
}

static int one_dir(enum ktls_suite s, const uint8_t *secret, size_t len,
		   uint64_t seq, union ktls_crypto_info *ci)
{
	uint8_t key[KTLS_MAX_KEY], iv[KTLS_IV_LEN];
	int r = ktls_traffic_keys(s, secret, len, key, iv);
	if (r == 0)
		r = ktls_crypto_info(s, key, iv, seq, ci);
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(iv, sizeof(iv));
	return r;
}

int ktls_ssl_info(SSL *ssl, uint64_t tx_seq, uint64_t rx_seq,
		  union ktls_crypto_info *tx, union ktls_crypto_info *rx,
		  int *len, char *why, size_t why_len)
{
	enum ktls_suite s = ktls_ssl_suite(ssl);
	if (s == KTLS_SUITE_NONE) {
		if (why_len)
			snprintf(why, why_len, "%s with %s is not offloaded",
				 SSL_get_version(ssl), SSL_get_cipher_name(ssl));
		return -ENOTSUP;
	}
	const struct secrets *sec =
		ex_idx < 0 ? NULL : SSL_get_ex_data(ssl, ex_idx);
	if (!sec || !sec->clen || !sec->slen) {
		if (why_len)
			snprintf(why, why_len, "traffic secrets not captured");
		return -ENOKEY;
	}
	bool server = SSL_is_server(ssl);
	const uint8_t *txs = server ? sec->s : sec->c;
	const uint8_t *rxs = server ? sec->c : sec->s;
	size_t txl = server ? sec->slen : sec->clen;
	size_t rxl = server ? sec->clen : sec->slen;
	int a = one_dir(s, txs, txl, tx_seq, tx);
	int b = a < 0 ? a : one_dir(s, rxs, rxl, rx_seq, rx);
	if (a < 0 || b < 0) {
		if (why_len)
			snprintf(why, why_len, "key derivation failed");
		return -EIO;
	}
	*len = a;
	return 0;
}
