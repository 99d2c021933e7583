/* SPDX-License-Identifier: MIT */
/* Kernel TLS key material: TLS 1.3 record keys from traffic secrets against
 * RFC 8448's simple 1-RTT handshake, the crypto_info layout the kernel
 * reads, and secrets captured from a real handshake over memory BIOs. */
#include <criterion/criterion.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <string.h>

#include "crypto/ktls.h"

static size_t unhex(const char *h, uint8_t *out)
{
	size_t n = 0;
	for (; h[0] && h[1]; h += 2) {
		unsigned v;
		sscanf(h, "%2x", &v);
		out[n++] = (uint8_t)v;
	}
	return n;
}

static void check_keys(const char *secret_hex, const char *key_hex,
		       const char *iv_hex)
{
	uint8_t secret[48], key[32], iv[12], want_key[32], want_iv[12];
	size_t sl = unhex(secret_hex, secret);
	size_t kl = unhex(key_hex, want_key);
	unhex(iv_hex, want_iv);
	cr_assert_eq(ktls_traffic_keys(KTLS_AES_128_GCM, secret, sl, key, iv), 0);
	cr_assert_eq(kl, 16);
	cr_assert_arr_eq(key, want_key, 16);
	cr_assert_arr_eq(iv, want_iv, 12);
}

/* RFC 8448 section 3: {server} and {client} "derive write traffic keys for
 * application data" (TLS_AES_128_GCM_SHA256). */
Test(ktls, rfc8448_server_application_keys)
{
	check_keys("a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643",
		   "9f02283b6c9c07efc26bb9f2ac92e356", "cf782b88dd83549aadf1e984");
}

Test(ktls, rfc8448_client_application_keys)
{
	check_keys("9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5",
		   "17422dda596ed5d9acd890e3c63f5051", "5b78923dee08579033e523d9");
}

/* RFC 8448 section 3: the handshake keys come out of the same label
 * function ("tls13 key" of the server handshake traffic secret). */
Test(ktls, rfc8448_server_handshake_keys)
{
	check_keys("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38",
		   "3fce516009c21727d0f2e4e86ee403bc", "5d313eb2671276ee13000b30");
}

Test(ktls, expand_label_rejects_bad_input)
{
	uint8_t s[32] = {0}, out[32];
	cr_assert_eq(ktls_expand_label(KTLS_SUITE_NONE, s, 32, "key", out, 16),
		     -EINVAL);
	cr_assert_eq(ktls_expand_label(KTLS_AES_128_GCM, s, 0, "key", out, 16),
		     -EINVAL);
}

Test(ktls, suites)
{
	cr_assert_eq(ktls_suite_from_id(0x1301), KTLS_AES_128_GCM);
	cr_assert_eq(ktls_suite_from_id(0x1302), KTLS_AES_256_GCM);
	cr_assert_eq(ktls_suite_from_id(0x1303), KTLS_CHACHA20_POLY1305);
	cr_assert_eq(ktls_suite_from_id(0x1304), KTLS_SUITE_NONE); /* CCM */
	cr_assert_eq(ktls_key_len(KTLS_AES_256_GCM), 32);
	cr_assert_str_eq(ktls_suite_str(KTLS_CHACHA20_POLY1305),
			 "TLS_CHACHA20_POLY1305_SHA256");
}

static const uint8_t key32[32] = {
	0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
	16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
static const uint8_t iv12[12] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5,
				 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab};
static const uint8_t seq_be[8] = {0, 0, 0, 0, 0x01, 0x02, 0x03, 0x04};

Test(ktls, crypto_info_aes128)
{
	union ktls_crypto_info ci;
	int n = ktls_crypto_info(KTLS_AES_128_GCM, key32, iv12, 0x01020304, &ci);
	cr_assert_eq(n, (int)sizeof(struct tls12_crypto_info_aes_gcm_128));
	cr_assert_eq(n, 40);
	cr_assert_eq(ci.info.version, TLS_1_3_VERSION);
	cr_assert_eq(ci.info.cipher_type, TLS_CIPHER_AES_GCM_128);
	cr_assert_arr_eq(ci.aes128.key, key32, 16);
	cr_assert_arr_eq(ci.aes128.salt, iv12, 4);     /* first 4 bytes */
	cr_assert_arr_eq(ci.aes128.iv, iv12 + 4, 8);   /* the other 8 */
	cr_assert_arr_eq(ci.aes128.rec_seq, seq_be, 8); /* big-endian */
}

Test(ktls, crypto_info_aes256)
{
	union ktls_crypto_info ci;
	int n = ktls_crypto_info(KTLS_AES_256_GCM, key32, iv12, 0x01020304, &ci);
	cr_assert_eq(n, 56);
	cr_assert_eq(ci.info.cipher_type, TLS_CIPHER_AES_GCM_256);
	cr_assert_arr_eq(ci.aes256.key, key32, 32);
	cr_assert_arr_eq(ci.aes256.salt, iv12, 4);
	cr_assert_arr_eq(ci.aes256.iv, iv12 + 4, 8);
	cr_assert_arr_eq(ci.aes256.rec_seq, seq_be, 8);
}

Test(ktls, crypto_info_chacha)
{
	union ktls_crypto_info ci;
	int n = ktls_crypto_info(KTLS_CHACHA20_POLY1305, key32, iv12, 0x01020304,
				 &ci);
	cr_assert_eq(n, 56);
	cr_assert_eq(ci.info.version, TLS_1_3_VERSION);
	cr_assert_eq(ci.info.cipher_type, TLS_CIPHER_CHACHA20_POLY1305);
	cr_assert_arr_eq(ci.chacha.key, key32, 32);
	cr_assert_arr_eq(ci.chacha.iv, iv12, 12); /* no salt: the whole IV */
	cr_assert_arr_eq(ci.chacha.rec_seq, seq_be, 8);
	cr_assert_eq(ktls_crypto_info(KTLS_SUITE_NONE, key32, iv12, 0, &ci),
		     -EINVAL);
}

/* ---- a real handshake over memory BIOs: both ends agree ---- */

static SSL_CTX *server_ctx(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"t", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_sign(x, k, EVP_sha256());
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX_use_certificate(ctx, x);
	SSL_CTX_use_PrivateKey(ctx, k);
	X509_free(x);
	EVP_PKEY_free(k);
	return ctx;
}

static void pump(SSL *from, SSL *to)
{
	char buf[16384];
	int n;
	while ((n = BIO_read(SSL_get_wbio(from), buf, sizeof(buf))) > 0)
		BIO_write(SSL_get_rbio(to), buf, n);
}

static void handshake_with(const char *suite, enum ktls_suite want)
{
	cr_assert_eq(ktls_init(), 0);
	SSL_CTX *sctx = server_ctx(), *cctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_keylog_callback(sctx, ktls_keylog_cb);
	SSL_CTX_set_keylog_callback(cctx, ktls_keylog_cb);
	SSL_CTX_set_ciphersuites(cctx, suite);
	SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
	SSL_set_bio(s, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
	SSL_set_bio(c, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	for (int i = 0; i < 10; i++) {
		SSL_do_handshake(c);
		pump(c, s);
		SSL_do_handshake(s);
		pump(s, c);
	}
	cr_assert(SSL_is_init_finished(s) && SSL_is_init_finished(c));
	cr_assert_eq(ktls_ssl_suite(s), want);
	union ktls_crypto_info stx, srx, ctx_, crx;
	int sl = 0, cl = 0;
	char why[100];
	cr_assert_eq(ktls_ssl_info(s, 0, 5, &stx, &srx, &sl, why, sizeof(why)), 0,
		     "%s", why);
	cr_assert_eq(ktls_ssl_info(c, 5, 0, &ctx_, &crx, &cl, why, sizeof(why)), 0,
		     "%s", why);
	cr_assert_eq(sl, cl);
	/* The server's TX is the client's RX, byte for byte (seq 0 both). */
	cr_assert_arr_eq(&stx, &crx, (size_t)sl);
	cr_assert_arr_eq(&srx, &ctx_, (size_t)sl);
	SSL_free(s);
	SSL_free(c);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

Test(ktls, real_handshake_aes128)
{
	handshake_with("TLS_AES_128_GCM_SHA256", KTLS_AES_128_GCM);
}

Test(ktls, real_handshake_aes256)
{
	handshake_with("TLS_AES_256_GCM_SHA384", KTLS_AES_256_GCM);
}

Test(ktls, real_handshake_chacha)
{
	handshake_with("TLS_CHACHA20_POLY1305_SHA256", KTLS_CHACHA20_POLY1305);
}

Test(ktls, tls12_is_not_offloaded)
{
	cr_assert_eq(ktls_init(), 0);
	SSL_CTX *sctx = server_ctx(), *cctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION);
	SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
	SSL_set_bio(s, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
	SSL_set_bio(c, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	for (int i = 0; i < 10; i++) {
		SSL_do_handshake(c);
		pump(c, s);
		SSL_do_handshake(s);
		pump(s, c);
	}
	cr_assert(SSL_is_init_finished(s));
	union ktls_crypto_info a, b;
	int l;
	char why[100];
	cr_assert_eq(ktls_ssl_info(s, 0, 0, &a, &b, &l, why, sizeof(why)),
		     -ENOTSUP);
	cr_assert(strstr(why, "TLSv1.2"), "%s", why);
	SSL_free(s);
	SSL_free(c);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}
