/* SPDX-License-Identifier: MIT */
/* The certificate authority: created on first start in the config dir (or
 * mitmproxy's, reused), loaded afterwards, exported for devices (mitm.it).
 * Every forged leaf certificate (crypto/leaf.h) is signed by it. */
#ifndef RC_CRYPTO_CA_H
#define RC_CRYPTO_CA_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>

#include "common/rc_err.h"

/* Read-only after ca_load_or_create(): safe to share between threads. */
struct ca;

/* File names inside the config dir. */
#define CA_MITMPROXY_FILE "mitmproxy-ca.pem" /* mitmproxy's key + cert */
#define CA_KEY_FILE "ringcap-ca.pem"         /* key + cert, mode 0600 */
#define CA_CERT_PEM_FILE "ringcap-ca-cert.pem"
#define CA_CERT_CER_FILE "ringcap-ca-cert.cer" /* DER */
#define CA_CERT_P12_FILE "ringcap-ca-cert.p12" /* cert only, no password */

/* Load or create the CA in |confdir| (a leading "~" is the home directory;
 * the directory is created with mode 0700 when missing). In order:
 *  1. confdir/mitmproxy-ca.pem (mitmproxy's CA: devices that trust it keep
 *     working; nothing is written next to it);
 *  2. confdir/ringcap-ca.pem (key + cert); missing export files are written
 *     again;
 *  3. otherwise a new CA: RSA 2048, CN=ringcap O=ringcap, valid 10 years,
 *     written as ringcap-ca.pem (0600, never readable by others, not even
 *     briefly) and the exports ringcap-ca-cert.{pem,cer,p12}.
 * A CA key file with any group/other permission bit is refused.
 * Returns 0 and sets *out (free with ca_free()), or a negative errno with a
 * message for the user in |err| (what failed, which file, what to do):
 * -EACCES (permissions), -EINVAL (unreadable/mismatched key or cert),
 * -ENOMEM, -EIO and the errno of a failed file operation. */
int ca_load_or_create(struct ca **out, const char *confdir, char *err,
		      size_t err_len) WUNRES NONNULL(1, 2, 3);

/* The CA certificate and key: borrowed, valid until ca_free(). Take your own
 * reference (X509_up_ref/EVP_PKEY_up_ref) to keep them longer. */
X509 *ca_cert(const struct ca *ca) NONNULL(1);
EVP_PKEY *ca_key(const struct ca *ca) NONNULL(1);

/* The config dir, "~" expanded, without a trailing slash. */
const char *ca_dir(const struct ca *ca) NONNULL(1);

/* Which file the CA came from: CA_MITMPROXY_FILE or CA_KEY_FILE, and whether
 * it was created by this call. */
const char *ca_source(const struct ca *ca) NONNULL(1);
int ca_created(const struct ca *ca) NONNULL(1);

/* The CA certificate exported for devices, in memory (the mitm.it page):
 * |fmt| "pem" (PEM), "cer" (DER) or "p12" (PKCS#12, certificate only, empty
 * password, unencrypted bag, as mitmproxy's). Sets *data (borrowed, valid
 * until ca_free()) and *len. Returns 0, or -EINVAL for an unknown |fmt|. */
int ca_cert_file(const struct ca *ca, const char *fmt,
		 const unsigned char **data, size_t *len) NONNULL(1, 2, 3, 4);

void ca_free(struct ca *ca);

#endif
