/* SPDX-License-Identifier: MIT */
/* The CA: load mitmproxy's or ringcap's from the config dir, or create one
 * and write it (key 0600) with its exports for devices. Runs once at
 * start-up, before the shards; nothing here is on the hot path. */
#include "crypto/ca.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/util.h"

#define CA_DAYS_BACK 2
#define CA_DAYS_VALID 3650

/* Owner: the caller of ca_load_or_create(); everything below is owned by
 * the struct and freed by ca_free(). */
struct ca {
	X509 *cert;
	EVP_PKEY *key;
	bool mitmproxy; /* loaded from CA_MITMPROXY_FILE */
	int created;
	char dir[PATH_MAX];
	unsigned char *pem, *der, *p12; /* exports, OPENSSL_malloc'd */
	size_t pem_len, der_len, p12_len;
};

static int expand_home(const char *in, char *out, size_t cap)
{
	const char *home = NULL;
	int n;

	if (in[0] == '~' && (in[1] == '/' || in[1] == '\0')) {
		home = getenv("HOME");
		if (home == NULL || home[0] == '\0') {
			struct passwd *pw = getpwuid(geteuid());

			home = pw ? pw->pw_dir : NULL;
		}
		if (home == NULL)
			return -ENOENT;
		n = snprintf(out, cap, "%s%s", home, in + 1);
	} else {
		n = snprintf(out, cap, "%s", in);
	}
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	while (n > 1 && out[n - 1] == '/')
		out[--n] = '\0';
	return 0;
}

/* mkdir -p with |mode| for each directory it creates. */
static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int check_pair(struct ca *ca, const char *path, char *err,
		      size_t err_len)
{
	if (X509_check_private_key(ca->cert, ca->key) != 1) {
		crypto_err_ssl(err, err_len,
			       "the key and the certificate in %s do not "
			       "match; move the file away to create a new CA",
			       path);
		return -EINVAL;
	}
	if (X509_check_ca(ca->cert) != 1) {
		crypto_err(err, err_len,
			   "the certificate in %s is not a CA certificate "
			   "(basicConstraints CA:TRUE); clients would reject "
			   "every leaf it signs: move the file away to "
			   "create a new CA",
			   path);
		return -EINVAL;
	}
	return 0;
}

static int load_pair(struct ca *ca, const char *path, char *err,
		     size_t err_len)
{
	unsigned char *data = NULL;
	size_t len = 0;
	BIO *bio;
	int rc = crypto_read_secret(path, "CA key file", &data, &len, err,
				    err_len);

	if (rc != 0)
		return rc;
	bio = BIO_new_mem_buf(data, (int)len);
	ca->key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"")
		      : NULL;
	if (ca->key == NULL) {
		crypto_err_ssl(err, err_len,
			       "cannot read the private key in %s (a "
			       "passphrase-protected key is not supported); "
			       "move the file away to create a new CA",
			       path);
		rc = -EINVAL;
		goto out_free;
	}
	BIO_free(bio);
	bio = BIO_new_mem_buf(data, (int)len); /* from the start again */
	ca->cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	if (ca->cert == NULL) {
		crypto_err_ssl(err, err_len,
			       "no CA certificate in %s (expected the key "
			       "and the certificate, PEM)",
			       path);
		rc = -EINVAL;
		goto out_free;
	}
	rc = check_pair(ca, path, err, err_len);
out_free:
	BIO_free(bio);
	OPENSSL_clear_free(data, len);
	return rc;
}

static int make_ca_cert(X509 *x, EVP_PKEY *key)
{
	X509_NAME *name = X509_get_subject_name(x);
	X509V3_CTX v3;

	if (X509_set_version(x, X509_VERSION_3) != 1 ||
	    crypto_rand_serial(x) != 0 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				       (const unsigned char *)"ringcap", -1,
				       -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
				       (const unsigned char *)"ringcap", -1,
				       -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x),
			    -(long)CA_DAYS_BACK * 86400) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), CA_DAYS_VALID, 0, NULL) ==
		    NULL ||
	    X509_set_pubkey(x, key) != 1)
		return -ENOMEM;
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if (crypto_add_ext(x, &v3, NID_basic_constraints, "critical,CA:TRUE") ||
	    crypto_add_ext(x, &v3, NID_key_usage,
			   "critical,keyCertSign,cRLSign") ||
	    crypto_add_ext(x, &v3, NID_subject_key_identifier, "hash"))
		return -EINVAL;
	return X509_sign(x, key, EVP_sha256()) > 0 ? 0 : -EINVAL;
}

static int create_pair(struct ca *ca, char *err, size_t err_len)
{
	ca->key = EVP_RSA_gen(2048);
	ca->cert = X509_new();
	if (ca->key == NULL || ca->cert == NULL ||
	    make_ca_cert(ca->cert, ca->key) != 0) {
		crypto_err_ssl(err, err_len, "cannot create the CA");
		return -ENOMEM;
	}
	return 0;
}

static int bio_bytes(BIO *bio, unsigned char **data, size_t *len)
{
	char *p;
	long n = BIO_get_mem_data(bio, &p);

	if (n <= 0)
		return -ENOMEM;
	*data = OPENSSL_malloc((size_t)n);
	if (*data == NULL)
		return -ENOMEM;
	memcpy(*data, p, (size_t)n);
	*len = (size_t)n;
	return 0;
}

/* PKCS#12 holding the certificate only: no key, empty password, the
 * certificate bag unencrypted, SHA-256 MAC, as mitmproxy writes it. */
static int export_p12(struct ca *ca)
{
	PKCS12 *p12 = PKCS12_create(NULL, "ringcap", NULL, ca->cert, NULL, 0,
				    -1, 0, 2048, 0);
	BIO *bio;
	int rc = -ENOMEM;

	if (p12 == NULL)
		return -EINVAL;
	bio = BIO_new(BIO_s_mem());
	if (bio != NULL && i2d_PKCS12_bio(bio, p12) == 1)
		rc = bio_bytes(bio, &ca->p12, &ca->p12_len);
	BIO_free(bio);
	PKCS12_free(p12);
	return rc;
}

static int make_exports(struct ca *ca, char *err, size_t err_len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	unsigned char *der = NULL;
	int n, rc = -ENOMEM;

	if (bio == NULL || PEM_write_bio_X509(bio, ca->cert) != 1 ||
	    bio_bytes(bio, &ca->pem, &ca->pem_len) != 0)
		goto out;
	n = i2d_X509(ca->cert, &der);
	if (n <= 0)
		goto out;
	ca->der = der;
	ca->der_len = (size_t)n;
	rc = export_p12(ca);
out:
	BIO_free(bio);
	if (rc != 0)
		crypto_err_ssl(err, err_len,
			       "cannot export the CA certificate");
	return rc;
}

static int write_key_file(struct ca *ca, const char *path, char *err,
			  size_t err_len)
{
	BIO *bio = BIO_new(BIO_s_secmem());
	unsigned char *data = NULL;
	size_t len = 0;
	int rc = -ENOMEM;

	if (bio == NULL || PEM_write_bio_PrivateKey(bio, ca->key, NULL, NULL,
						    0, NULL, NULL) != 1 ||
	    PEM_write_bio_X509(bio, ca->cert) != 1 ||
	    bio_bytes(bio, &data, &len) != 0) {
		crypto_err_ssl(err, err_len, "cannot encode the CA key");
		goto out;
	}
	rc = crypto_write_file(path, data, len, 0600, true);
	if (rc != 0 && rc != -EEXIST)
		crypto_err(err, err_len,
			   "cannot write the CA key file %s: %s (is the "
			   "config dir writable? choose another with --set "
			   "confdir=DIR)",
			   path, strerror(-rc));
out:
	if (data != NULL)
		OPENSSL_clear_free(data, len);
	BIO_free(bio);
	return rc;
}

static int write_export(const struct ca *ca, const char *name,
			const unsigned char *data, size_t len, bool only_missing,
			char *err, size_t err_len)
{
	char path[PATH_MAX];
	int rc;

	if (snprintf(path, sizeof(path), "%s/%s", ca->dir, name) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	if (only_missing && access(path, F_OK) == 0)
		return 0;
	rc = crypto_write_file(path, data, len, 0644, false);
	if (rc != 0)
		crypto_err(err, err_len,
			   "cannot write the CA certificate %s: %s (check "
			   "that the config dir %s is writable)",
			   path, strerror(-rc), ca->dir);
	return rc;
}

static int write_exports(const struct ca *ca, bool only_missing, char *err,
			 size_t err_len)
{
	int rc;

	rc = write_export(ca, CA_CERT_PEM_FILE, ca->pem, ca->pem_len,
			  only_missing, err, err_len);
	if (rc == 0)
		rc = write_export(ca, CA_CERT_CER_FILE, ca->der, ca->der_len,
				  only_missing, err, err_len);
	if (rc == 0)
		rc = write_export(ca, CA_CERT_P12_FILE, ca->p12, ca->p12_len,
				  only_missing, err, err_len);
	return rc;
}

static void drop_pair(struct ca *ca)
{
	EVP_PKEY_free(ca->key);
	X509_free(ca->cert);
	ca->key = NULL;
	ca->cert = NULL;
}

/* Create a new CA and commit it with an exclusive link(); if another
 * process won the race, load theirs. */
static int create_and_store(struct ca *ca, const char *path, char *err,
			    size_t err_len)
{
	int rc = create_pair(ca, err, err_len);

	if (rc == 0)
		rc = write_key_file(ca, path, err, err_len);
	if (rc == -EEXIST) {
		drop_pair(ca);
		return load_pair(ca, path, err, err_len);
	}
	if (rc == 0)
		ca->created = 1;
	return rc;
}

static int find_and_load(struct ca *ca, char *err, size_t err_len)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/%s", ca->dir,
		     CA_MITMPROXY_FILE) >= (int)sizeof(path))
		goto too_long;
	if (access(path, F_OK) == 0) {
		ca->mitmproxy = true;
		return load_pair(ca, path, err, err_len);
	}
	if (snprintf(path, sizeof(path), "%s/%s", ca->dir, CA_KEY_FILE) >=
	    (int)sizeof(path))
		goto too_long;
	if (access(path, F_OK) == 0)
		return load_pair(ca, path, err, err_len);
	return create_and_store(ca, path, err, err_len);
too_long:
	crypto_err(err, err_len, "config dir path too long: %s", ca->dir);
	return -ENAMETOOLONG;
}

int ca_load_or_create(struct ca **out, const char *confdir, char *err,
		      size_t err_len)
{
	struct ca *ca = calloc(1, sizeof(*ca));
	int rc;

	*out = NULL;
	if (err_len > 0)
		err[0] = '\0';
	if (ca == NULL)
		return -ENOMEM;
	rc = expand_home(confdir, ca->dir, sizeof(ca->dir));
	if (rc != 0) {
		crypto_err(err, err_len, "cannot use config dir %s: %s",
			   confdir, strerror(-rc));
		goto out_free;
	}
	rc = mkdir_p(ca->dir, 0700);
	if (rc != 0) {
		crypto_err(err, err_len,
			   "cannot create config dir %s: %s (choose another "
			   "with --set confdir=DIR)",
			   ca->dir, strerror(-rc));
		goto out_free;
	}
	rc = find_and_load(ca, err, err_len);
	if (rc == 0)
		rc = make_exports(ca, err, err_len);
	/* Exports go next to ringcap's own key, never into mitmproxy's dir
	 * (mitmproxy wrote its own there). */
	if (rc == 0 && !ca->mitmproxy)
		rc = write_exports(ca, !ca->created, err, err_len);
	if (rc == 0) {
		*out = ca;
		return 0;
	}
out_free:
	ca_free(ca);
	return rc;
}

X509 *ca_cert(const struct ca *ca)
{
	return ca->cert;
}

EVP_PKEY *ca_key(const struct ca *ca)
{
	return ca->key;
}

const char *ca_dir(const struct ca *ca)
{
	return ca->dir;
}

const char *ca_source(const struct ca *ca)
{
	return ca->mitmproxy ? CA_MITMPROXY_FILE : CA_KEY_FILE;
}

int ca_created(const struct ca *ca)
{
	return ca->created;
}

int ca_cert_file(const struct ca *ca, const char *fmt,
		 const unsigned char **data, size_t *len)
{
	if (strcmp(fmt, "pem") == 0) {
		*data = ca->pem;
		*len = ca->pem_len;
	} else if (strcmp(fmt, "cer") == 0) {
		*data = ca->der;
		*len = ca->der_len;
	} else if (strcmp(fmt, "p12") == 0) {
		*data = ca->p12;
		*len = ca->p12_len;
	} else {
		return -EINVAL;
	}
	return 0;
}

void ca_free(struct ca *ca)
{
	if (ca == NULL)
		return;
	drop_pair(ca);
	OPENSSL_free(ca->pem);
	OPENSSL_free(ca->der);
	OPENSSL_free(ca->p12);
	free(ca);
}
