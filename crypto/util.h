/* SPDX-License-Identifier: MIT */
/* Helpers shared inside crypto/ (not a public header): error messages with
 * the OpenSSL reason, serial numbers, extensions, safe file writes. */
#ifndef RC_CRYPTO_UTIL_H
#define RC_CRYPTO_UTIL_H

#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "common/rc_err.h"

/* Format a message into |err| (never overflows; err_len may be 0). */
void crypto_err(char *err, size_t err_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Same, then ": <OpenSSL reason>" from the error queue, which is cleared. */
void crypto_err_ssl(char *err, size_t err_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Set a random positive 128-bit serial. 0, -EIO (no randomness), -ENOMEM. */
int crypto_rand_serial(X509 *x) WUNRES NONNULL(1);
/* Add extension |nid| from its config-string |value|. 0 or -EINVAL/-ENOMEM. */
int crypto_add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
	WUNRES NONNULL(1, 2, 4);

/* Write |data| to |path| through a temporary file created with O_EXCL and
 * |mode| (so a secret is never readable by others), fsync'd; then rename()
 * over |path|, or with |exclusive| link() it (-EEXIST if |path| exists).
 * Returns 0 or a negative errno. */
int crypto_write_file(const char *path, const unsigned char *data, size_t len,
		      mode_t mode, bool exclusive) WUNRES NONNULL(1, 2);
/* Read all of |fd| (at most |max| bytes) into *data (OPENSSL_malloc'd; free
 * with OPENSSL_clear_free(*data, *len)). 0, -EFBIG, -ENOMEM or -errno. */
int crypto_read_fd(int fd, unsigned char **data, size_t *len, size_t max)
	WUNRES NONNULL(2, 3);

/* Read a private key file of at most 1 MiB into *data (as crypto_read_fd)
 * after checking that it is a regular file only its owner can access
 * (-EACCES otherwise). |what| names the file in the message in |err|
 * ("CA key file"). 0 or a negative errno. */
int crypto_read_secret(const char *path, const char *what,
		       unsigned char **data, size_t *len, char *err,
		       size_t err_len) WUNRES NONNULL(1, 2, 3, 4);

/* ASN1_TIME as seconds since the epoch; -1 if it cannot be read. */
time_t crypto_asn1_time(const ASN1_TIME *t) NONNULL(1);

#endif
