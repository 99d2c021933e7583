/* SPDX-License-Identifier: MIT */
/* The CA: created with the right files, modes and extensions; reloaded the
 * same; exports parse back; mitmproxy's CA (made by openssl here, and by a
 * real mitmdump when installed) is used as is; unsafe key files refused. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crypto/ca.h"

static char tmp[64];
static char err[512];
static char *paths[64]; /* path_in() strings, freed by teardown() */
static int npaths;

static void setup(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/rc-test-ca-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
	err[0] = '\0';
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	cr_assert_eq(system(cmd), 0);
	while (npaths)
		free(paths[--npaths]);
}

TestSuite(ca, .init = setup, .fini = teardown);

/* "dir/name" in a fresh heap string, freed at teardown (LeakSanitizer
 * checks every test process). */
static char *path_in(const char *dir, const char *name)
{
	char *p = NULL;

	cr_assert_geq(asprintf(&p, "%s/%s", dir, name), 0);
	cr_assert_lt(npaths, 64);
	paths[npaths++] = p;
	return p;
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
	return st.st_mode & 07777;
}

static X509 *read_pem_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	cr_assert_not_null(f, "%s", path);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	cr_assert_not_null(x, "%s holds no certificate", path);
	return x;
}

static struct ca *load(const char *dir)
{
	struct ca *ca = NULL;
	int rc = ca_load_or_create(&ca, dir, err, sizeof(err));

	cr_assert_eq(rc, 0, "ca_load_or_create(%s) = %d: %s", dir, rc, err);
	return ca;
}

Test(ca, created_with_files_modes_and_extensions)
{
	char *dir = path_in(tmp, "conf/sub");
	struct ca *ca;
	X509 *x;
	EVP_PKEY *pub;
	time_t nb, na, now = time(NULL);
	ASN1_TIME *t;
	int day, sec;

	umask(0); /* the key file must be 0600 whatever the umask */
	ca = load(dir);
	cr_assert(ca_created(ca));
	cr_assert_str_eq(ca_source(ca), CA_KEY_FILE);
	cr_assert_str_eq(ca_dir(ca), dir);
	cr_assert_eq(mode_of(dir), 0700);
	cr_assert_eq(mode_of(path_in(dir, CA_KEY_FILE)), 0600);
	cr_assert_eq(mode_of(path_in(dir, CA_CERT_PEM_FILE)) & 0600, 0600);
	cr_assert_eq(access(path_in(dir, CA_CERT_CER_FILE), R_OK), 0);
	cr_assert_eq(access(path_in(dir, CA_CERT_P12_FILE), R_OK), 0);

	x = ca_cert(ca);
	pub = X509_get0_pubkey(x);
	cr_assert(EVP_PKEY_is_a(pub, "RSA"));
	cr_assert_eq(EVP_PKEY_get_bits(pub), 2048);
	cr_assert_eq(X509_check_ca(x), 1);
	cr_assert(X509_get_extension_flags(x) & EXFLAG_CA);
	cr_assert(X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
	cr_assert(X509_get_key_usage(x) & KU_CRL_SIGN);
	cr_assert_not_null(X509_get0_subject_key_id(x));
	cr_assert_eq(X509_check_issued(x, x), X509_V_OK);
	cr_assert_eq(X509_verify(x, pub), 1);
	cr_assert_eq(X509_check_private_key(x, ca_key(ca)), 1);
	/* basicConstraints and keyUsage are critical */
	cr_assert_eq(X509_EXTENSION_get_critical(X509_get_ext(
			     x, X509_get_ext_by_NID(x, NID_basic_constraints,
						    -1))),
		     1);
	cr_assert_eq(X509_EXTENSION_get_critical(X509_get_ext(
			     x, X509_get_ext_by_NID(x, NID_key_usage, -1))),
		     1);
	char cn[64], o[64];
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
				  sizeof(cn));
	X509_NAME_get_text_by_NID(X509_get_subject_name(x),
				  NID_organizationName, o, sizeof(o));
	cr_assert_str_eq(cn, "ringcap");
	cr_assert_str_eq(o, "ringcap");
	/* 10 years, backdated a little */
	t = ASN1_TIME_new();
	ASN1_TIME_set(t, now);
	cr_assert_eq(ASN1_TIME_diff(&day, &sec, X509_get0_notBefore(x), t), 1);
	cr_assert(day >= 1 && day <= 3, "notBefore %d days back", day);
	cr_assert_eq(ASN1_TIME_diff(&day, &sec, t, X509_get0_notAfter(x)), 1);
	cr_assert(day >= 3640 && day <= 3660, "notAfter in %d days", day);
	ASN1_TIME_free(t);
	(void)nb;
	(void)na;

	/* the files hold this CA */
	X509 *disk = read_pem_cert(path_in(dir, CA_CERT_PEM_FILE));
	cr_assert_eq(X509_cmp(disk, x), 0);
	X509_free(disk);
	disk = read_pem_cert(path_in(dir, CA_KEY_FILE));
	cr_assert_eq(X509_cmp(disk, x), 0);
	X509_free(disk);
	ca_free(ca);
}

Test(ca, reloaded_on_second_call)
{
	char *dir = path_in(tmp, "conf");
	struct ca *a = load(dir), *b;

	cr_assert(ca_created(a));
	b = load(dir);
	cr_assert_not(ca_created(b));
	cr_assert_str_eq(ca_source(b), CA_KEY_FILE);
	cr_assert_eq(X509_cmp(ca_cert(a), ca_cert(b)), 0);
	cr_assert_eq(EVP_PKEY_eq(ca_key(a), ca_key(b)), 1);
	ca_free(a);
	ca_free(b);
}

Test(ca, missing_exports_written_again)
{
	char *dir = path_in(tmp, "conf");
	struct ca *a = load(dir);

	ca_free(a);
	cr_assert_eq(unlink(path_in(dir, CA_CERT_P12_FILE)), 0);
	a = load(dir);
	cr_assert_eq(access(path_in(dir, CA_CERT_P12_FILE), R_OK), 0);
	ca_free(a);
}

Test(ca, tilde_is_home)
{
	char want[256];
	struct ca *ca;

	setenv("HOME", tmp, 1);
	ca = load("~/.ringcap/");
	snprintf(want, sizeof(want), "%s/.ringcap", tmp);
	cr_assert_str_eq(ca_dir(ca), want);
	cr_assert_eq(access(path_in(want, CA_KEY_FILE), R_OK), 0);
	ca_free(ca);
}

static void check_exports(struct ca *ca)
{
	const unsigned char *p, *data;
	size_t len;
	X509 *x;

	cr_assert_eq(ca_cert_file(ca, "pem", &data, &len), 0);
	BIO *bio = BIO_new_mem_buf(data, (int)len);
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	cr_assert_not_null(x);
	cr_assert_eq(X509_cmp(x, ca_cert(ca)), 0);
	X509_free(x);

	cr_assert_eq(ca_cert_file(ca, "cer", &data, &len), 0);
	p = data;
	x = d2i_X509(NULL, &p, (long)len);
	cr_assert_not_null(x, "cer is DER");
	cr_assert_eq(p, data + len);
	cr_assert_eq(X509_cmp(x, ca_cert(ca)), 0);
	X509_free(x);

	cr_assert_eq(ca_cert_file(ca, "p12", &data, &len), 0);
	p = data;
	PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
	EVP_PKEY *key = NULL;
	STACK_OF(X509) *more = NULL;
	cr_assert_not_null(p12);
	cr_assert_eq(PKCS12_verify_mac(p12, "", 0) == 1 ||
			     PKCS12_verify_mac(p12, NULL, 0) == 1,
		     1, "empty-password MAC");
	x = NULL;
	cr_assert_eq(PKCS12_parse(p12, "", &key, &x, &more), 1);
	cr_assert_null(key, "the p12 must not hold the CA key");
	if (x == NULL) /* no key: OpenSSL returns the certificate in |more| */
		x = sk_X509_shift(more);
	cr_assert_not_null(x);
	cr_assert_eq(X509_cmp(x, ca_cert(ca)), 0);
	X509_free(x);
	sk_X509_pop_free(more, X509_free);
	PKCS12_free(p12);

	cr_assert_eq(ca_cert_file(ca, "der", &data, &len), -EINVAL);
}

Test(ca, exports_parse_back)
{
	char *dir = path_in(tmp, "conf");
	struct ca *ca = load(dir);
	const unsigned char *data;
	size_t len;
	char cmd[512];

	check_exports(ca);
	/* the files on disk are the same bytes */
	static const char *const fmt[] = {"pem", "cer", "p12"};
	static const char *const file[] = {CA_CERT_PEM_FILE, CA_CERT_CER_FILE,
					   CA_CERT_P12_FILE};
	for (int i = 0; i < 3; i++) {
		unsigned char buf[8192];
		FILE *f = fopen(path_in(dir, file[i]), "rb");
		size_t n;

		cr_assert_not_null(f);
		n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		cr_assert_eq(ca_cert_file(ca, fmt[i], &data, &len), 0);
		cr_assert_eq(n, len, "%s", file[i]);
		cr_assert_eq(memcmp(buf, data, len), 0, "%s", file[i]);
	}
	/* and the openssl tool reads the p12 with an empty password */
	snprintf(cmd, sizeof(cmd),
		 "openssl pkcs12 -in '%s' -passin pass: -nokeys "
		 ">/dev/null 2>&1",
		 path_in(dir, CA_CERT_P12_FILE));
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	ca_free(ca);
}

Test(ca, group_readable_key_refused)
{
	char *dir = path_in(tmp, "conf");
	struct ca *ca = load(dir);

	ca_free(ca);
	cr_assert_eq(chmod(path_in(dir, CA_KEY_FILE), 0640), 0);
	ca = NULL;
	cr_assert_eq(ca_load_or_create(&ca, dir, err, sizeof(err)), -EACCES);
	cr_assert_null(ca);
	cr_assert_not_null(strstr(err, "chmod 600"), "%s", err);
	cr_assert_not_null(strstr(err, CA_KEY_FILE), "%s", err);
	cr_assert_eq(chmod(path_in(dir, CA_KEY_FILE), 0604), 0);
	cr_assert_eq(ca_load_or_create(&ca, dir, err, sizeof(err)), -EACCES);
}

Test(ca, mismatched_key_refused)
{
	char *dir = path_in(tmp, "conf"), *other = path_in(tmp, "other");
	struct ca *a = load(dir), *b = load(other);
	char *p = path_in(dir, CA_KEY_FILE);
	FILE *f;

	/* a's key with b's certificate */
	cr_assert_eq(unlink(p), 0);
	f = fopen(p, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fchmod(fileno(f), 0600), 0);
	PEM_write_PrivateKey(f, ca_key(a), NULL, NULL, 0, NULL, NULL);
	PEM_write_X509(f, ca_cert(b));
	fclose(f);
	ca_free(a);
	ca_free(b);
	a = NULL;
	cr_assert_eq(ca_load_or_create(&a, dir, err, sizeof(err)), -EINVAL);
	cr_assert_not_null(strstr(err, "do not match"), "%s", err);
}

Test(ca, unwritable_dir_says_what_to_do)
{
	struct ca *ca = NULL;

	if (geteuid() == 0) {
		teardown(); /* a skipped test does not run .fini */
		cr_skip_test("root ignores directory permissions");
	}
	cr_assert_eq(chmod(tmp, 0500), 0);
	cr_assert_lt(ca_load_or_create(&ca, path_in(tmp, "x"), err,
				       sizeof(err)),
		     0);
	cr_assert_not_null(strstr(err, "confdir"), "%s", err);
	chmod(tmp, 0700);
}

/* A mitmproxy-style CA: traditional RSA key then the certificate. */
static void write_mitm_ca(const char *dir, struct ca *src)
{
	char *p = path_in(dir, "mitmproxy-ca.pem");
	FILE *f;

	mkdir(dir, 0700);
	f = fopen(p, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fchmod(fileno(f), 0600), 0);
	BIO *bio = BIO_new_fp(f, BIO_NOCLOSE);
	cr_assert_eq(PEM_write_bio_PrivateKey_traditional(
			     bio, ca_key(src), NULL, NULL, 0, NULL, NULL),
		     1);
	cr_assert_eq(PEM_write_bio_X509(bio, ca_cert(src)), 1);
	BIO_free(bio);
	fclose(f);
}

Test(ca, mitmproxy_ca_used_first)
{
	char *src_dir = path_in(tmp, "src"), *dir = path_in(tmp, "mitm");
	struct ca *src = load(src_dir), *ca;

	write_mitm_ca(dir, src);
	ca = load(dir);
	cr_assert_str_eq(ca_source(ca), CA_MITMPROXY_FILE);
	cr_assert_not(ca_created(ca));
	cr_assert_eq(X509_cmp(ca_cert(ca), ca_cert(src)), 0);
	/* nothing of ours is written into mitmproxy's dir */
	cr_assert_neq(access(path_in(dir, CA_KEY_FILE), F_OK), 0);
	cr_assert_neq(access(path_in(dir, CA_CERT_PEM_FILE), F_OK), 0);
	check_exports(ca);
	ca_free(ca);
	ca_free(src);
}

/* Let a real mitmdump create its CA in |dir|. 0 if done, -1 if mitmdump
 * is not installed. */
static int run_mitmdump(const char *dir)
{
	char cert[256];
	pid_t pid;
	int status;

	if (system("command -v mitmdump >/dev/null 2>&1") != 0)
		return -1;
	snprintf(cert, sizeof(cert), "%s/mitmproxy-ca-cert.p12", dir);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char conf[300];
		int fd = open("/dev/null", O_RDWR);

		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		setenv("HOME", tmp, 1);
		snprintf(conf, sizeof(conf), "confdir=%s", dir);
		execlp("mitmdump", "mitmdump", "--set", conf, "--set",
		       "server=false", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 300 && access(cert, F_OK) != 0; i++)
		usleep(100 * 1000);
	usleep(200 * 1000); /* let it finish writing */
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	cr_assert_eq(access(cert, F_OK), 0, "mitmdump made no CA in %s", dir);
	return 0;
}

Test(ca, real_mitmdump_ca, .timeout = 60)
{
	char *dir = path_in(tmp, ".mitmproxy");
	struct ca *ca;
	X509 *theirs;

	if (run_mitmdump(dir) != 0)
		cr_skip_test("mitmdump is not installed");
	ca = load(dir);
	cr_assert_str_eq(ca_source(ca), CA_MITMPROXY_FILE);
	theirs = read_pem_cert(path_in(dir, "mitmproxy-ca-cert.pem"));
	cr_assert_eq(X509_cmp(ca_cert(ca), theirs), 0);
	X509_free(theirs);
	check_exports(ca);
	ca_free(ca);
}
