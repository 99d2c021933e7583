/* SPDX-License-Identifier: MIT */
/* Helpers shared inside crypto/: error messages, serials, extensions, file
 * writes that never expose a secret. */
#include "crypto/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_FILE_MAX (1 << 20)

void crypto_err(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (err_len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

void crypto_err_ssl(char *err, size_t err_len, const char *fmt, ...)
{
	unsigned long e = ERR_peek_last_error();
	char why[256] = "";
	va_list ap;
	size_t n;

	if (e != 0)
		ERR_error_string_n(e, why, sizeof(why));
	ERR_clear_error();
	if (err_len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
	n = strlen(err);
	if (why[0] != '\0' && n < err_len)
		snprintf(err + n, err_len - n, " (%s)", why);
}

/* A random positive 128-bit serial number. */
int crypto_rand_serial(X509 *x)
{
	unsigned char b[16];
	BIGNUM *bn;
	ASN1_INTEGER *ai;
	int ok;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -EIO;
	b[0] &= 0x7f;
	b[0] |= 0x40; /* positive, and never a short (leading-zero) value */
	bn = BN_bin2bn(b, sizeof(b), NULL);
	if (bn == NULL)
		return -ENOMEM;
	ai = BN_to_ASN1_INTEGER(bn, NULL);
	BN_free(bn);
	if (ai == NULL)
		return -ENOMEM;
	ok = X509_set_serialNumber(x, ai);
	ASN1_INTEGER_free(ai);
	return ok == 1 ? 0 : -ENOMEM;
}

int crypto_add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, v3, nid, value);
	int ok;

	if (ext == NULL)
		return -EINVAL;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -ENOMEM;
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Write |len| bytes to a fresh temporary file next to |path| (created with
 * O_EXCL and |mode|: a secret is never readable by others, not even
 * briefly). Fills |tmp| with its name. */
static int write_tmp(const char *path, char *tmp, size_t tmp_cap,
		     const unsigned char *data, size_t len, mode_t mode)
{
	unsigned int r = 0;
	int fd, rc;

	(void)RAND_bytes((unsigned char *)&r, sizeof(r));
	rc = snprintf(tmp, tmp_cap, "%s.tmp.%ld.%08x", path, (long)getpid(),
		      r);
	if (rc < 0 || (size_t)rc >= tmp_cap)
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  mode);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, data, len);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc != 0)
		unlink(tmp);
	return rc;
}

int crypto_write_file(const char *path, const unsigned char *data, size_t len,
		      mode_t mode, bool exclusive)
{
	char tmp[PATH_MAX + 32];
	int rc = write_tmp(path, tmp, sizeof(tmp), data, len, mode);

	if (rc != 0)
		return rc;
	/* link() fails if |path| exists: two processes starting at once never
	 * overwrite each other's CA; rename() replaces atomically. */
	if (exclusive)
		rc = link(tmp, path) == 0 ? 0 : -errno;
	else
		rc = rename(tmp, path) == 0 ? 0 : -errno;
	if (exclusive || rc != 0)
		unlink(tmp);
	return rc;
}


int crypto_read_fd(int fd, unsigned char **data, size_t *len, size_t max)
{
	size_t cap = 4096, n = 0;
	unsigned char *buf = OPENSSL_malloc(cap);

	if (buf == NULL)
		return -ENOMEM;
	for (;;) {
		ssize_t r;

		if (n == cap) {
			unsigned char *nb;

			if (cap >= max) {
				OPENSSL_clear_free(buf, cap);
				return -EFBIG;
			}
			nb = OPENSSL_clear_realloc(buf, cap, cap * 2);
			if (nb == NULL) {
				OPENSSL_clear_free(buf, cap);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int rc = -errno;

			OPENSSL_clear_free(buf, cap);
			return rc;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*data = buf;
	*len = n;
	return 0;
}

int crypto_read_secret(const char *path, const char *what,
		       unsigned char **data, size_t *len, char *err,
		       size_t err_len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0) {
		rc = -errno;
		crypto_err(err, err_len, "cannot open %s %s: %s", what, path,
			   strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > SECRET_FILE_MAX) {
		rc = -EINVAL;
		crypto_err(err, err_len,
			   "%s %s is not a regular file of at most %d bytes",
			   what, path, SECRET_FILE_MAX);
		goto out_close;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		rc = -EACCES;
		crypto_err(err, err_len,
			   "%s %s is accessible by group or others (mode "
			   "%04o); it holds a private key: run 'chmod 600 "
			   "%s' and start again",
			   what, path, (unsigned)(st.st_mode & 07777), path);
		goto out_close;
	}
	rc = crypto_read_fd(fd, data, len, SECRET_FILE_MAX);
	if (rc != 0)
		crypto_err(err, err_len, "cannot read %s %s: %s", what, path,
			   strerror(-rc));
out_close:
	close(fd);
	return rc;
}

time_t crypto_asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return (time_t)-1;
	return timegm(&tm);
}
