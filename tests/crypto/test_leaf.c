/* SPDX-License-Identifier: MIT */
/* Leaf certificates and their cache: the leaf verifies against the CA for
 * its names (DNS and IP), has the extensions and validity clients expect;
 * the cache hits, evicts, signs once for many threads, persists across a
 * restart and pre-signs from cert_warm; a real TLS handshake with the
 * SSL_CTX it hands out. Ends with two throughput numbers. */
#include <criterion/criterion.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto/ca.h"
#include "crypto/leaf.h"

static char tmp[64];
static char err[512];
static struct ca *ca;
static int setups;

static void setup_ctx(SSL_CTX *ctx, void *arg)
{
	(void)ctx;
	__atomic_fetch_add((int *)arg, 1, __ATOMIC_RELAXED);
}

static void setup(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/rc-test-leaf-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
	cr_assert_eq(ca_load_or_create(&ca, tmp, err, sizeof(err)), 0, "%s",
		     err);
	setups = 0;
}

static void teardown(void)
{
	char cmd[128];

	ca_free(ca);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(leaf, .init = setup, .fini = teardown);

static struct leaf_cache *new_cache(size_t cap)
{
	struct leaf_cache *c = NULL;
	int rc = leaf_cache_new(&c, ca, cap, setup_ctx, &setups, err,
				sizeof(err));

	cr_assert_eq(rc, 0, "leaf_cache_new: %d %s", rc, err);
	return c;
}

static SSL_CTX *get(struct leaf_cache *c, const char *a, const char *b)
{
	const char *names[2] = {a, b};
	SSL_CTX *ctx = leaf_get(c, names, b ? 2 : 1);

	cr_assert_not_null(ctx, "leaf_get(%s)", a);
	return ctx;
}

static X509 *leaf_of(SSL_CTX *ctx)
{
	X509 *x = SSL_CTX_get0_certificate(ctx);

	cr_assert_not_null(x);
	return x;
}

/* X509_verify_cert against the CA alone, for a host or an IP. */
static int verify(X509 *x, const char *host, const char *ip)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *sctx = X509_STORE_CTX_new();
	X509_VERIFY_PARAM *vp;
	int ok;

	X509_STORE_add_cert(store, ca_cert(ca));
	X509_STORE_CTX_init(sctx, store, x, NULL);
	vp = X509_STORE_CTX_get0_param(sctx);
	X509_VERIFY_PARAM_set_purpose(vp, X509_PURPOSE_SSL_SERVER);
	if (host)
		X509_VERIFY_PARAM_set1_host(vp, host, 0);
	if (ip)
		X509_VERIFY_PARAM_set1_ip_asc(vp, ip);
	ok = X509_verify_cert(sctx);
	if (ok != 1)
		cr_log_info("verify %s: %s", host ? host : ip,
			    X509_verify_cert_error_string(
				    X509_STORE_CTX_get_error(sctx)));
	X509_STORE_CTX_free(sctx);
	X509_STORE_free(store);
	return ok;
}

Test(leaf, verifies_for_its_names)
{
	struct leaf_cache *c = new_cache(16);
	SSL_CTX *ctx = get(c, "www.Example.com", "example.com");
	X509 *x = leaf_of(ctx);
	char cn[256];

	cr_assert_eq(verify(x, "www.example.com", NULL), 1);
	cr_assert_eq(verify(x, "example.com", NULL), 1);
	cr_assert_neq(verify(x, "other.example.com", NULL), 1);
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
				  sizeof(cn));
	cr_assert_str_eq(cn, "www.example.com", "CN is the first name");
	cr_assert_eq(setups, 1, "ctx_setup ran once");
	SSL_CTX_free(ctx);

	ctx = get(c, "10.1.1.1", NULL);
	cr_assert_eq(verify(leaf_of(ctx), NULL, "10.1.1.1"), 1);
	cr_assert_neq(verify(leaf_of(ctx), NULL, "10.1.1.2"), 1);
	SSL_CTX_free(ctx);
	ctx = get(c, "[::1]", "*.wild.example");
	cr_assert_eq(verify(leaf_of(ctx), NULL, "::1"), 1);
	cr_assert_eq(verify(leaf_of(ctx), "a.wild.example", NULL), 1);
	SSL_CTX_free(ctx);
	leaf_cache_free(c);
}

Test(leaf, extensions_and_validity)
{
	struct leaf_cache *c = new_cache(16);
	SSL_CTX *ctx = get(c, "ext.example", "192.0.2.7");
	X509 *x = leaf_of(ctx);
	ASN1_TIME *now = ASN1_TIME_new();
	int day, sec;

	cr_assert(X509_get_extension_flags(x) & EXFLAG_XKUSAGE);
	cr_assert(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
	cr_assert(X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE);
	cr_assert_not(X509_get_key_usage(x) & KU_KEY_ENCIPHERMENT,
		      "ECDSA leaf: no keyEncipherment");
	cr_assert_eq(X509_check_ca(x), 0, "CA:FALSE");
	cr_assert(X509_get_extension_flags(x) & EXFLAG_BCONS);
	cr_assert_not_null(X509_get0_subject_key_id(x));
	cr_assert_not_null(X509_get0_authority_key_id(x));
	cr_assert_eq(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x),
					   X509_get0_subject_key_id(
						   ca_cert(ca))),
		     0, "AKI = CA's SKI");
	cr_assert(EVP_PKEY_is_a(X509_get0_pubkey(x), "EC"));
	cr_assert_eq(X509_get_signature_nid(x), NID_sha256WithRSAEncryption);
	cr_assert_eq(X509_get_version(x), X509_VERSION_3);

	ASN1_TIME_set(now, time(NULL));
	cr_assert_eq(ASN1_TIME_diff(&day, &sec, X509_get0_notBefore(x), now),
		     1);
	cr_assert(day == 2 || (day == 1 && sec > 86000), "backdated 2 days");
	cr_assert_eq(ASN1_TIME_diff(&day, &sec, X509_get0_notBefore(x),
				    X509_get0_notAfter(x)),
		     1);
	cr_assert(day < 397 || (day == 397 && sec == 0),
		  "validity %d days %d s <= 397 days (Apple)", day, sec);
	cr_assert_geq(day, 390);
	ASN1_TIME_free(now);

	/* serials: positive, about 128 bits, unique */
	const ASN1_INTEGER *serials[40];
	SSL_CTX *ctxs[40];
	for (int i = 0; i < 40; i++) {
		char name[64];

		snprintf(name, sizeof(name), "s%d.example", i);
		ctxs[i] = get(c, name, NULL);
		serials[i] = X509_get0_serialNumber(leaf_of(ctxs[i]));
		BIGNUM *bn = ASN1_INTEGER_to_BN(serials[i], NULL);
		cr_assert_not(BN_is_negative(bn));
		cr_assert_geq(BN_num_bits(bn), 120);
		BN_free(bn);
		for (int j = 0; j < i; j++)
			cr_assert_neq(ASN1_INTEGER_cmp(serials[i], serials[j]),
				      0);
	}
	for (int i = 0; i < 40; i++)
		SSL_CTX_free(ctxs[i]);
	SSL_CTX_free(ctx);
	leaf_cache_free(c);
}

Test(leaf, rsa_leaf_key)
{
	struct leaf_cache *c = NULL;
	enum leaf_key_type t;
	SSL_CTX *ctx;
	X509 *x;

	cr_assert_eq(leaf_key_type_parse("rsa", &t), 0);
	cr_assert_eq(t, LEAF_KEY_RSA2048);
	cr_assert_eq(leaf_key_type_parse("dsa", &t), -EINVAL);
	cr_assert_eq(leaf_cache_new_ex(&c, ca, 8, t, NULL, NULL, err,
				       sizeof(err)),
		     0, "%s", err);
	ctx = get(c, "rsa.example", NULL);
	x = leaf_of(ctx);
	cr_assert(EVP_PKEY_is_a(X509_get0_pubkey(x), "RSA"));
	cr_assert(X509_get_key_usage(x) & KU_KEY_ENCIPHERMENT);
	cr_assert_eq(verify(x, "rsa.example", NULL), 1);
	SSL_CTX_free(ctx);
	leaf_cache_free(c);
}

Test(leaf, key_is_the_normalized_set)
{
	struct leaf_cache *c = new_cache(16);
	struct leaf_stats st;
	SSL_CTX *a = get(c, "A.example", "b.example");
	SSL_CTX *b = get(c, "b.example.", "a.example");
	const char *dup[] = {"a.example", "B.EXAMPLE", "a.example"};
	SSL_CTX *d = leaf_get(c, dup, 3);
	const char *bad[] = {"", "bad name", "x..y", NULL, "caf\xc3\xa9.fr"};

	cr_assert_eq(a, b, "same set in another order and case");
	cr_assert_eq(a, d, "duplicates do not count");
	ERR_clear_error();
	cr_assert_null(leaf_get(c, bad, 5));
	cr_assert_neq(ERR_peek_error(), 0, "reason in the error queue");
	ERR_clear_error();
	cr_assert_null(leaf_get(c, bad, 0));
	leaf_cache_stats(c, &st);
	cr_assert_eq(st.signatures, 1);
	cr_assert_eq(st.hits, 2);
	SSL_CTX_free(a);
	SSL_CTX_free(b);
	SSL_CTX_free(d);
	leaf_cache_free(c);
}

Test(leaf, second_get_is_a_hit)
{
	struct leaf_cache *c = new_cache(16);
	struct leaf_stats st;
	SSL_CTX *a = get(c, "hit.example", NULL);
	SSL_CTX *b = get(c, "hit.example", NULL);

	cr_assert_eq(a, b);
	leaf_cache_stats(c, &st);
	cr_assert_eq(st.misses, 1);
	cr_assert_eq(st.hits, 1);
	cr_assert_eq(st.signatures, 1);
	cr_assert_eq(st.entries, 1);
	SSL_CTX_free(a);
	SSL_CTX_free(b);
	leaf_cache_free(c);
}

Test(leaf, lru_eviction)
{
	struct leaf_cache *c = new_cache(2);
	struct leaf_stats st;

	SSL_CTX_free(get(c, "a.example", NULL));
	SSL_CTX_free(get(c, "b.example", NULL));
	SSL_CTX_free(get(c, "a.example", NULL)); /* a is now the most recent */
	SSL_CTX_free(get(c, "c.example", NULL)); /* evicts b */
	leaf_cache_stats(c, &st);
	cr_assert_eq(st.evictions, 1);
	cr_assert_eq(st.entries, 2);
	SSL_CTX_free(get(c, "a.example", NULL));
	leaf_cache_stats(c, &st);
	cr_assert_eq(st.signatures, 3, "a still cached");
	SSL_CTX_free(get(c, "b.example", NULL));
	leaf_cache_stats(c, &st);
	cr_assert_eq(st.signatures, 4, "b was evicted");
	cr_assert_eq(st.evictions, 2);
	leaf_cache_free(c);
}

Test(leaf, l1_front)
{
	struct leaf_cache *c = new_cache(16);
	struct leaf_l1 *l1 = leaf_l1_new(c, 2);
	const char *n1[] = {"one.example"}, *n2[] = {"two.example"},
		   *n3[] = {"three.example"};
	struct leaf_stats st;
	uint64_t hits, misses;
	SSL_CTX *a, *b;

	cr_assert_not_null(l1);
	a = leaf_l1_get(l1, n1, 1);
	b = leaf_l1_get(l1, n1, 1);
	cr_assert_not_null(a);
	cr_assert_eq(a, b);
	SSL_CTX_free(a);
	SSL_CTX_free(b);
	leaf_l1_counts(l1, &hits, &misses);
	cr_assert_eq(hits, 1);
	cr_assert_eq(misses, 1);
	leaf_cache_stats(c, &st);
	cr_assert_eq(st.misses + st.hits, 1, "the hit never reached the cache");

	/* l1 holds 2: a third name pushes "one" out of l1 (not the cache) */
	SSL_CTX_free(leaf_l1_get(l1, n2, 1));
	SSL_CTX_free(leaf_l1_get(l1, n3, 1));
	a = leaf_l1_get(l1, n1, 1);
	SSL_CTX_free(a);
	leaf_cache_stats(c, &st);
	cr_assert_eq(st.hits, 1, "one: l1 miss, shared cache hit");
	cr_assert_eq(st.signatures, 3);
	leaf_l1_counts(l1, &hits, &misses);
	cr_assert_eq(misses, 4);
	leaf_l1_free(l1);
	leaf_cache_free(c);
}

struct racer {
	struct leaf_cache *c;
	pthread_barrier_t *go;
	SSL_CTX *got;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	const char *names[] = {"race.example", "www.race.example"};

	pthread_barrier_wait(r->go);
	r->got = leaf_get(r->c, names, 2);
	return NULL;
}

Test(leaf, eight_threads_one_signature)
{
	struct leaf_cache *c = new_cache(16);
	pthread_barrier_t go;
	pthread_t th[8];
	struct racer r[8];
	struct leaf_stats st;

	pthread_barrier_init(&go, NULL, 8);
	for (int i = 0; i < 8; i++) {
		r[i] = (struct racer){.c = c, .go = &go};
		cr_assert_eq(pthread_create(&th[i], NULL, race, &r[i]), 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	leaf_cache_stats(c, &st);
	cr_assert_eq(st.signatures, 1, "signed %llu times",
		     (unsigned long long)st.signatures);
	cr_assert_eq(st.hits + st.misses, 8);
	cr_assert_eq(st.misses - st.waited, 1, "one signer");
	cr_log_info("8 racers: %llu waited, %llu hits",
		    (unsigned long long)st.waited,
		    (unsigned long long)st.hits);
	for (int i = 0; i < 8; i++) {
		cr_assert_not_null(r[i].got);
		cr_assert_eq(r[i].got, r[0].got);
		SSL_CTX_free(r[i].got);
	}
	pthread_barrier_destroy(&go);
	leaf_cache_free(c);
}

static int count_files(const char *dir)
{
	char cmd[256];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls '%s' | grep -c '\\.pem$'", dir);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	if (fscanf(p, "%d", &n) != 1)
		n = -1;
	pclose(p);
	return n;
}

Test(leaf, persisted_and_loaded_warm)
{
	char certs[128], key[128];
	struct leaf_cache *c = new_cache(16);
	struct leaf_stats st;
	X509 *first;
	SSL_CTX *ctx;
	struct stat sb;

	cr_assert(leaf_cache_persisting(c));
	ctx = get(c, "persist.example", "10.9.9.9");
	first = X509_dup(leaf_of(ctx));
	SSL_CTX_free(ctx);
	leaf_cache_free(c);

	snprintf(certs, sizeof(certs), "%s/certs", tmp);
	snprintf(key, sizeof(key), "%s/ringcap-leaf-key.pem", tmp);
	cr_assert_eq(stat(key, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600);
	cr_assert_eq(stat(certs, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0700);
	cr_assert_eq(count_files(certs), 1);

	/* a certificate by another CA is not loaded, and is removed */
	char other[128], bogus[160];
	struct ca *ca2;
	snprintf(other, sizeof(other), "%s/other", tmp);
	cr_assert_eq(ca_load_or_create(&ca2, other, err, sizeof(err)), 0);
	snprintf(bogus, sizeof(bogus), "%s/0123456789abcdef.pem", certs);
	FILE *f = fopen(bogus, "w");
	PEM_write_X509(f, ca_cert(ca2));
	fclose(f);
	ca_free(ca2);

	c = new_cache(16);
	cr_assert_eq(leaf_cache_load_disk(c), 1);
	cr_assert_eq(count_files(certs), 1, "the foreign file was removed");
	ctx = get(c, "10.9.9.9", "persist.example");
	cr_assert_eq(X509_cmp(leaf_of(ctx), first), 0, "same certificate");
	cr_assert_eq(verify(leaf_of(ctx), "persist.example", NULL), 1);
	SSL_CTX_free(ctx);
	leaf_cache_stats(c, &st);
	cr_assert_eq(st.signatures, 0, "warm restart signs nothing");
	cr_assert_eq(st.loaded, 1);
	cr_assert_eq(st.hits, 1);
	X509_free(first);
	leaf_cache_free(c);
}

Test(leaf, cert_warm)
{
	char path[128];
	struct leaf_cache *c = new_cache(16);
	struct leaf_stats st;
	FILE *f;

	snprintf(path, sizeof(path), "%s/warm.txt", tmp);
	f = fopen(path, "w");
	fputs("# hosts to pre-sign\nwarm1.example\n\n  warm2.example "
	      "www.warm2.example  # two names\nwarm1.example\n",
	      f);
	fclose(f);
	cr_assert_eq(leaf_cache_warm(c, path), 3);
	leaf_cache_stats(c, &st);
	cr_assert_eq(st.signatures, 2);
	SSL_CTX_free(get(c, "warm1.example", NULL));
	SSL_CTX_free(get(c, "www.warm2.example", "warm2.example"));
	leaf_cache_stats(c, &st);
	cr_assert_eq(st.signatures, 2);
	cr_assert_eq(st.hits, 3);

	f = fopen(path, "w");
	fputs("ok.example\nbad..name !!\n", f);
	fclose(f);
	cr_assert_eq(leaf_cache_warm(c, path), -EINVAL);
	cr_assert_eq(leaf_cache_warm(c, "/nonexistent/warm"), -ENOENT);
	leaf_cache_free(c);
}

Test(leaf, names_from_upstream_and_fingerprint)
{
	struct leaf_cache *c = new_cache(16);
	const char *in[] = {"up.example", "*.up.example", "192.0.2.1",
			    "2001:db8::1"};
	SSL_CTX *ctx = leaf_get(c, in, 4);
	char names[8][256], fp[65], want[65];
	unsigned char md[32];
	unsigned int len;
	int n;

	cr_assert_not_null(ctx);
	n = leaf_names_from_cert(leaf_of(ctx), names, 8);
	cr_assert_eq(n, 4, "CN + SANs, deduplicated: %d", n);
	cr_assert_str_eq(names[0], "up.example");
	for (int i = 1; i < 4; i++) {
		int found = 0;

		for (int j = 1; j < 4; j++)
			found |= strcmp(names[i], in[j]) == 0;
		cr_assert(found, "%s", names[i]);
	}
	cr_assert_eq(leaf_names_from_cert(leaf_of(ctx), names, 2), 2);

	tls_cert_fingerprint(leaf_of(ctx), fp);
	X509_digest(leaf_of(ctx), EVP_sha256(), md, &len);
	for (unsigned i = 0; i < 32; i++)
		sprintf(want + 2 * i, "%02x", md[i]);
	cr_assert_str_eq(fp, want);
	SSL_CTX_free(ctx);
	leaf_cache_free(c);
}

/* Drive a client and a server SSL over a BIO pair until both are done. */
static int handshake(SSL *cl, SSL *sv)
{
	for (int i = 0; i < 100; i++) {
		int a = SSL_do_handshake(cl), b = SSL_do_handshake(sv);

		if (a == 1 && b == 1)
			return 1;
		if ((a <= 0 && SSL_get_error(cl, a) != SSL_ERROR_WANT_READ) ||
		    (b <= 0 && SSL_get_error(sv, b) != SSL_ERROR_WANT_READ))
			return 0;
	}
	return 0;
}

Test(leaf, real_handshake_verifies)
{
	struct leaf_cache *c = new_cache(16);
	struct leaf_l1 *l1 = leaf_l1_new(c, 0);
	const char *names[] = {"hs.example"};
	SSL_CTX *sctx = leaf_l1_get(l1, names, 1);
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	X509_STORE *store = SSL_CTX_get_cert_store(cctx);
	BIO *cb, *sb;
	SSL *cl, *sv;

	cr_assert_not_null(sctx);
	X509_STORE_add_cert(store, ca_cert(ca));
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
	cl = SSL_new(cctx);
	sv = SSL_new(sctx);
	SSL_CTX_free(sctx); /* the SSL holds its own reference */
	SSL_set_tlsext_host_name(cl, "hs.example");
	SSL_set1_host(cl, "hs.example");
	BIO_new_bio_pair(&cb, 0, &sb, 0);
	SSL_set_bio(cl, cb, cb);
	SSL_set_bio(sv, sb, sb);
	SSL_set_connect_state(cl);
	SSL_set_accept_state(sv);
	cr_assert_eq(handshake(cl, sv), 1, "handshake: %s",
		     ERR_error_string(ERR_get_error(), NULL));
	cr_assert_eq(SSL_get_verify_result(cl), X509_V_OK);
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(cl);
	cr_assert_eq(sk_X509_num(chain), 2, "leaf + CA in the chain");
	SSL_free(cl);
	SSL_free(sv);
	SSL_CTX_free(cctx);
	leaf_l1_free(l1);
	leaf_cache_free(c);
}

static double since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) +
	       (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

struct looper {
	struct leaf_cache *c;
	int l1;
	int n;
};

static void *loop(void *arg)
{
	struct looper *lp = arg;
	const char *names[] = {"bench.example", "www.bench.example"};
	struct leaf_l1 *l1 = lp->l1 ? leaf_l1_new(lp->c, 256) : NULL;

	for (int i = 0; i < lp->n; i++)
		SSL_CTX_free(l1 ? leaf_l1_get(l1, names, 2)
				: leaf_get(lp->c, names, 2));
	leaf_l1_free(l1);
	return NULL;
}

Test(leaf, throughput, .timeout = 120)
{
	struct leaf_cache *c = new_cache(4096);
	struct leaf_l1 *l1 = leaf_l1_new(c, 256);
	const char *names[] = {"bench.example", "www.bench.example"};
	struct timespec t0;
	int nsign = 200, nlook = 2000000;
	double s;

	leaf_cache_set_persist(c, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < nsign; i++) {
		char name[64];
		const char *n1[] = {name};

		snprintf(name, sizeof(name), "sign%d.example", i);
		SSL_CTX_free(leaf_get(c, n1, 1));
	}
	s = since(&t0);
	fprintf(stderr,
		"leaf throughput: %.0f signatures/s (leaf + SSL_CTX, RSA-2048 "
		"CA, P-256 leaf key, one thread)\n",
		nsign / s);

	SSL_CTX_free(leaf_l1_get(l1, names, 2));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < nlook; i++)
		SSL_CTX_free(leaf_l1_get(l1, names, 2));
	s = since(&t0);
	fprintf(stderr,
		"leaf throughput: %.2f M l1-hit lookups/s (2 names, "
		"incl. up_ref + free)\n",
		nlook / s / 1e6);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < nlook / 4; i++)
		SSL_CTX_free(leaf_get(c, names, 2));
	s = since(&t0);
	fprintf(stderr,
		"leaf throughput: %.2f M shared-cache hit lookups/s (mutex, "
		"uncontended)\n",
		nlook / 4 / s / 1e6);
	leaf_l1_free(l1);

	/* two threads at once (a shard each): shared cache vs front */
	for (int mode = 0; mode < 2; mode++) {
		struct looper lp[2] = {{c, mode, nlook / 4}, {c, mode, nlook / 4}};
		pthread_t th[2];

		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (int i = 0; i < 2; i++)
			pthread_create(&th[i], NULL, loop, &lp[i]);
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		s = since(&t0);
		fprintf(stderr,
			"leaf throughput: %.2f M %s hit lookups/s, 2 threads "
			"in total\n",
			nlook / 2 / s / 1e6, mode ? "l1" : "shared-cache");
	}
	leaf_cache_free(c);
}

Test(leaf, many_names)
{
	struct leaf_cache *c = new_cache(4);
	char buf[60][80];
	const char *fwd[60], *rev[60];
	SSL_CTX *a, *b;

	for (int i = 0; i < 60; i++) {
		snprintf(buf[i], sizeof(buf[i]),
			 "host-%02d.a-rather-long-subdomain.example.com", i);
		fwd[i] = buf[i];
		rev[59 - i] = buf[i];
	}
	a = leaf_get(c, fwd, 60);
	b = leaf_get(c, rev, 60);
	cr_assert_not_null(a);
	cr_assert_eq(a, b, "same set, other order: one entry");
	cr_assert_eq(verify(leaf_of(a), buf[59], NULL), 1);
	SSL_CTX_free(a);
	SSL_CTX_free(b);
	leaf_cache_free(c);
}
