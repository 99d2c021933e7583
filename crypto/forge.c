/* SPDX-License-Identifier: MIT */
/* Leaf forging: normalized name sets (the cache key), the leaf key, and
 * the certificate itself. No locks and no shared writes: the leaf cache
 * (leaf.c) calls this from whichever thread missed. */
#include "crypto/forge.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/util.h"

#define CN_MAX 64 /* ub-common-name */
#define FORGE_MAX_NAMES 1024

/* ---- names ---- */

static int ip_normalize(const char *in, size_t len, char out[256])
{
	unsigned char addr[16];
	char tmp[64];

	if (len >= sizeof(tmp) || len == 0)
		return -1;
	if (memchr(in, ':', len) == NULL && strspn(in, "0123456789.") < len)
		return -1; /* neither IPv6 nor dotted IPv4: a host name */
	memcpy(tmp, in, len);
	tmp[len] = '\0';
	if (inet_pton(AF_INET, tmp, addr) == 1)
		return inet_ntop(AF_INET, addr, out, 256) ? (int)strlen(out)
							  : -1;
	if (inet_pton(AF_INET6, tmp, addr) == 1)
		return inet_ntop(AF_INET6, addr, out, 256) ? (int)strlen(out)
							   : -1;
	return -1;
}

static bool dns_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '.' || c == '_' || c == '*';
}

int name_normalize(const char *in, char out[256])
{
	size_t len = strnlen(in, 256);
	int r;

	if (len == 0 || len > 254)
		return -1;
	if (in[0] == '[')
		return in[len - 1] == ']' ? ip_normalize(in + 1, len - 2, out)
					  : -1;
	r = ip_normalize(in, len, out);
	if (r > 0)
		return r;
	if (in[len - 1] == '.')
		len--;
	if (len == 0 || len > 253 || in[0] == '.')
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!dns_char(c) || (c == '.' && i > 0 && in[i - 1] == '.'))
			return -1;
		out[i] = c;
	}
	out[len] = '\0';
	return (int)len;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Storage for the normalized names and the key: a normalized name is never
 * longer than its input, except an IP written shorter than its canonical
 * form (at most 45 bytes). */
static size_t nameset_bound(const char *const *names, size_t n)
{
	size_t sum = 0;

	for (size_t i = 0; i < n; i++) {
		size_t l = names[i] ? strnlen(names[i], 256) : 0;

		sum += (l < 46 ? 46 : l) + 1;
	}
	return 2 * sum;
}

static int nameset_storage(struct nameset *s, const char *const *names,
			   size_t n, char **mem)
{
	size_t need = nameset_bound(names, n);

	if (n <= NS_SMALL) {
		s->v = s->vsmall;
	} else {
		s->vheap = malloc(n * sizeof(*s->vheap));
		if (s->vheap == NULL)
			return -ENOMEM;
		s->v = s->vheap;
	}
	if (need <= sizeof(s->buf)) {
		*mem = s->buf;
		return 0;
	}
	s->heap = malloc(need);
	if (s->heap == NULL) {
		free(s->vheap);
		s->vheap = NULL;
		return -ENOMEM;
	}
	*mem = s->heap;
	return 0;
}

int nameset_build(struct nameset *s, const char *const *names, size_t n)
{
	char *p;
	size_t k = 0, d = 0;

	s->n = 0;
	s->first = NULL;
	s->heap = NULL;
	s->vheap = NULL;
	if (n == 0 || names == NULL || n > FORGE_MAX_NAMES)
		return -EINVAL;
	if (nameset_storage(s, names, n, &p) != 0)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int len = names[i] ? name_normalize(names[i], p) : -1;

		if (len < 0)
			continue;
		s->v[k++] = p;
		p += len + 1;
	}
	if (k == 0) {
		nameset_free(s);
		return -EINVAL;
	}
	s->first = s->v[0];
	qsort(s->v, k, sizeof(*s->v), cmp_str);
	for (size_t i = 0; i < k; i++)
		if (d == 0 || strcmp(s->v[d - 1], s->v[i]) != 0)
			s->v[d++] = s->v[i];
	s->n = d;
	s->key = p;
	for (size_t i = 0; i < d; i++) {
		size_t l = strlen(s->v[i]);

		if (i > 0)
			*p++ = ' ';
		memcpy(p, s->v[i], l);
		p += l;
	}
	*p = '\0';
	s->key_len = (size_t)(p - s->key);
	return 0;
}

void nameset_free(struct nameset *s)
{
	free(s->heap);
	free(s->vheap);
	s->heap = NULL;
	s->vheap = NULL;
}

/* ---- names out of a certificate ---- */

static bool printable(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] <= 0x20 || p[i] >= 0x7f)
			return false;
	return true;
}

static void add_name(char names[][256], size_t *n, size_t max,
		     const unsigned char *p, size_t len)
{
	if (*n >= max || len == 0 || len > 255 || !printable(p, len))
		return;
	for (size_t i = 0; i < *n; i++)
		if (strncasecmp(names[i], (const char *)p, len) == 0 &&
		    names[i][len] == '\0')
			return;
	memcpy(names[*n], p, len);
	names[*n][len] = '\0';
	(*n)++;
}

static void add_cn(X509 *x, char names[][256], size_t *n, size_t max)
{
	X509_NAME *sub = X509_get_subject_name(x);
	int idx = X509_NAME_get_index_by_NID(sub, NID_commonName, -1);
	unsigned char *u = NULL;
	int len;

	if (idx < 0)
		return;
	len = ASN1_STRING_to_UTF8(
		&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(sub, idx)));
	if (len > 0)
		add_name(names, n, max, u, (size_t)len);
	OPENSSL_free(u);
}

static void add_gen(const GENERAL_NAME *g, char names[][256], size_t *n,
		    size_t max)
{
	char ip[INET6_ADDRSTRLEN];
	int type;
	const ASN1_STRING *s = GENERAL_NAME_get0_value(g, &type);
	int len = ASN1_STRING_length(s);
	const unsigned char *p = ASN1_STRING_get0_data(s);

	if (type == GEN_DNS) {
		add_name(names, n, max, p, (size_t)len);
	} else if (type == GEN_IPADD && (len == 4 || len == 16)) {
		if (inet_ntop(len == 4 ? AF_INET : AF_INET6, p, ip, sizeof(ip)))
			add_name(names, n, max, (const unsigned char *)ip,
				 strlen(ip));
	}
}

int leaf_names_from_cert(X509 *upstream, char names[][256], size_t max)
{
	GENERAL_NAMES *gens;
	size_t n = 0;

	add_cn(upstream, names, &n, max);
	gens = X509_get_ext_d2i(upstream, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++)
		add_gen(sk_GENERAL_NAME_value(gens, i), names, &n, max);
	GENERAL_NAMES_free(gens);
	return (int)n;
}

void tls_cert_fingerprint(X509 *cert, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	out[0] = '\0';
	if (X509_digest(cert, EVP_sha256(), md, &len) != 1 || len != 32)
		return;
	for (unsigned int i = 0; i < len; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

int forge_cert_nameset(X509 *x, struct nameset *s)
{
	char(*names)[256] = malloc(FORGE_MAX_NAMES * sizeof(*names));
	const char **ptrs = malloc(FORGE_MAX_NAMES * sizeof(*ptrs));
	int n, rc = -ENOMEM;

	if (names != NULL && ptrs != NULL) {
		n = leaf_names_from_cert(x, names, FORGE_MAX_NAMES);
		for (int i = 0; i < n; i++)
			ptrs[i] = names[i];
		rc = nameset_build(s, ptrs, (size_t)n);
	}
	free(names);
	free(ptrs);
	return rc;
}

/* ---- keys ---- */

EVP_PKEY *forge_new_key(enum leaf_key_type t)
{
	switch (t) {
	case LEAF_KEY_EC_P256:
		return EVP_EC_gen("P-256");
	case LEAF_KEY_RSA2048:
		return EVP_RSA_gen(2048);
	case LEAF_KEY_COUNT:
		break;
	}
	return NULL;
}

int forge_key_type(EVP_PKEY *key)
{
	char group[32];
	size_t len = 0;

	if (EVP_PKEY_is_a(key, "RSA"))
		return LEAF_KEY_RSA2048;
	if (EVP_PKEY_is_a(key, "EC") &&
	    EVP_PKEY_get_group_name(key, group, sizeof(group), &len) == 1 &&
	    (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0))
		return LEAF_KEY_EC_P256;
	return -1;
}

/* ---- forging ---- */

static int const_ext(struct forge *f, X509V3_CTX *v3, int nid,
		     const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, v3, nid, value);

	if (ext == NULL)
		return -EINVAL;
	f->ext[f->next++] = ext;
	return 0;
}

int forge_init(struct forge *f, X509 *ca_cert, EVP_PKEY *ca_key,
	       EVP_PKEY *leaf_key)
{
	X509 *tmpl = X509_new();
	X509V3_CTX v3;
	int rc = -EINVAL;
	int type = forge_key_type(leaf_key);

	memset(f, 0, sizeof(*f));
	if (tmpl == NULL || type < 0 || X509_set_pubkey(tmpl, leaf_key) != 1)
		goto out;
	X509_up_ref(ca_cert);
	EVP_PKEY_up_ref(ca_key);
	EVP_PKEY_up_ref(leaf_key);
	f->ca_cert = ca_cert;
	f->ca_key = ca_key;
	f->leaf_key = leaf_key;
	f->key_type = (enum leaf_key_type)type;
	f->ca_not_after = crypto_asn1_time(X509_get0_notAfter(ca_cert));
	X509V3_set_ctx(&v3, ca_cert, tmpl, NULL, NULL, 0);
	if (const_ext(f, &v3, NID_basic_constraints, "critical,CA:FALSE") ||
	    const_ext(f, &v3, NID_key_usage,
		      type == LEAF_KEY_RSA2048
			      ? "critical,digitalSignature,keyEncipherment"
			      : "critical,digitalSignature") ||
	    const_ext(f, &v3, NID_ext_key_usage, "serverAuth") ||
	    const_ext(f, &v3, NID_subject_key_identifier, "hash") ||
	    const_ext(f, &v3, NID_authority_key_identifier, "keyid:always"))
		goto out;
	rc = 0;
out:
	X509_free(tmpl);
	return rc;
}

void forge_fini(struct forge *f)
{
	for (size_t i = 0; i < f->next; i++)
		X509_EXTENSION_free(f->ext[i]);
	X509_free(f->ca_cert);
	EVP_PKEY_free(f->ca_key);
	EVP_PKEY_free(f->leaf_key);
	memset(f, 0, sizeof(*f));
}

static bool is_ip(const char *name)
{
	unsigned char addr[16];

	return inet_pton(AF_INET, name, addr) == 1 ||
	       inet_pton(AF_INET6, name, addr) == 1;
}

static GENERAL_NAME *make_gen(const char *name)
{
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_OCTET_STRING *ip;
	ASN1_IA5STRING *dns;

	if (g == NULL)
		return NULL;
	if (is_ip(name)) {
		ip = a2i_IPADDRESS(name);
		if (ip == NULL) {
			GENERAL_NAME_free(g);
			return NULL;
		}
		GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
		return g;
	}
	dns = ASN1_IA5STRING_new();
	if (dns == NULL || ASN1_STRING_set(dns, name, -1) != 1) {
		ASN1_IA5STRING_free(dns);
		GENERAL_NAME_free(g);
		return NULL;
	}
	GENERAL_NAME_set0_value(g, GEN_DNS, dns);
	return g;
}

/* SAN: the first name, then the others in key order. */
static int add_san(X509 *x, const struct nameset *s, bool critical)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	int rc = -ENOMEM;

	if (gens == NULL)
		return -ENOMEM;
	for (size_t i = 0; i <= s->n; i++) {
		const char *name = i == 0 ? s->first : s->v[i - 1];
		GENERAL_NAME *g;

		if (i > 0 && strcmp(name, s->first) == 0)
			continue;
		g = make_gen(name);
		if (g == NULL || sk_GENERAL_NAME_push(gens, g) <= 0) {
			GENERAL_NAME_free(g);
			goto out;
		}
	}
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, critical,
			      X509V3_ADD_DEFAULT) == 1)
		rc = 0;
out:
	GENERAL_NAMES_free(gens);
	return rc;
}

static int set_validity(X509 *x, const struct forge *f, time_t now)
{
	time_t nb = now - (time_t)LEAF_DAYS_BACK * 86400;
	time_t na = nb + (time_t)LEAF_DAYS_VALID * 86400;

	if (f->ca_not_after > 0 && na > f->ca_not_after)
		na = f->ca_not_after;
	if (ASN1_TIME_set(X509_getm_notBefore(x), nb) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), na) == NULL)
		return -ENOMEM;
	return 0;
}

X509 *forge_leaf(const struct forge *f, const struct nameset *s, time_t now)
{
	X509 *x = X509_new();
	bool cn = strlen(s->first) <= CN_MAX;

	if (x == NULL || X509_set_version(x, X509_VERSION_3) != 1 ||
	    crypto_rand_serial(x) != 0)
		goto out_free;
	if (cn && X509_NAME_add_entry_by_NID(
			  X509_get_subject_name(x), NID_commonName,
			  MBSTRING_ASC, (const unsigned char *)s->first, -1,
			  -1, 0) != 1)
		goto out_free;
	if (X509_set_issuer_name(x, X509_get_subject_name(f->ca_cert)) != 1 ||
	    set_validity(x, f, now) != 0 ||
	    X509_set_pubkey(x, f->leaf_key) != 1)
		goto out_free;
	for (size_t i = 0; i < f->next; i++)
		if (X509_add_ext(x, f->ext[i], -1) != 1)
			goto out_free;
	/* RFC 5280 4.2.1.6: SAN is critical when the subject is empty. */
	if (add_san(x, s, !cn) != 0 ||
	    X509_sign(x, f->ca_key, EVP_sha256()) <= 0)
		goto out_free;
	return x;
out_free:
	ERR_raise_data(ERR_LIB_USER, ERR_R_OPERATION_FAIL,
		       "forging a leaf certificate for %s failed", s->first);
	X509_free(x);
	return NULL;
}

int forge_accepts(const struct forge *f, X509 *x, time_t now)
{
	EVP_PKEY *pub = X509_get0_pubkey(x);
	time_t nb = crypto_asn1_time(X509_get0_notBefore(x));
	time_t na = crypto_asn1_time(X509_get0_notAfter(x));
	int ok;

	ERR_set_mark();
	ok = pub != NULL && EVP_PKEY_eq(pub, f->leaf_key) == 1 &&
	     X509_check_issued(f->ca_cert, x) == X509_V_OK &&
	     X509_verify(x, X509_get0_pubkey(f->ca_cert)) == 1;
	ERR_pop_to_mark();
	return ok && nb != (time_t)-1 && na != (time_t)-1 && nb <= now &&
	       na - now >= LEAF_STALE_SECS;
}
