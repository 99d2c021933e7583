/* SPDX-License-Identifier: MIT */
/* Inside crypto/ (not a public header): name sets and leaf forging, the
 * pure part of the leaf cache. */
#ifndef RC_CRYPTO_FORGE_H
#define RC_CRYPTO_FORGE_H

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "crypto/leaf.h"

#define LEAF_DAYS_BACK 2      /* notBefore = now - 2 days: clock skew */
#define LEAF_DAYS_VALID 397   /* notAfter - notBefore: Apple's limit */
#define LEAF_STALE_SECS (7 * 86400) /* re-sign a week before expiry */

#define NS_SMALL 32
#define NS_BUF 4096

/* A normalized name set: the cache key. Lives on the caller's stack; large
 * sets spill to the heap (nameset_free()). */
struct nameset {
	size_t n;          /* distinct valid names */
	const char *first; /* the first valid name in the caller's order */
	char **v;          /* sorted, deduplicated */
	char *key;         /* v joined by ' ', NUL-terminated */
	size_t key_len;
	char *heap;        /* owned spill storage, or NULL */
	char **vheap;
	char *vsmall[NS_SMALL];
	char buf[NS_BUF];
};

/* Normalize names[0..n). 0, -EINVAL (no valid name), -ENOMEM. On success
 * nameset_free() must follow; on failure nothing is held. */
int nameset_build(struct nameset *s, const char *const *names, size_t n)
	WUNRES NONNULL(1);
void nameset_free(struct nameset *s) NONNULL(1);

/* Normalize one name into out[256]: length, or -1 if it is not a host name
 * or IP literal. */
int name_normalize(const char *in, char out[256]) NONNULL(1, 2);

/* Everything needed to sign leaves; read-only once made, shared by all
 * threads. Owns references to all its members. */
struct forge {
	X509 *ca_cert;
	EVP_PKEY *ca_key;
	EVP_PKEY *leaf_key;
	enum leaf_key_type key_type;
	time_t ca_not_after;
	X509_EXTENSION *ext[5]; /* constant for every leaf: made once */
	size_t next;
};

EVP_PKEY *forge_new_key(enum leaf_key_type t) WUNRES;
/* Which type |key| is, or -1 if neither. */
int forge_key_type(EVP_PKEY *key) NONNULL(1);
/* 0 or -ENOMEM/-EINVAL; forge_fini() in either case. */
int forge_init(struct forge *f, X509 *ca_cert, EVP_PKEY *ca_key,
	       EVP_PKEY *leaf_key) WUNRES NONNULL(1, 2, 3, 4);
void forge_fini(struct forge *f) NONNULL(1);
/* A new leaf for |s|, valid from now - 2 days; NULL with the reason in the
 * OpenSSL error queue. */
X509 *forge_leaf(const struct forge *f, const struct nameset *s, time_t now)
	WUNRES NONNULL(1, 2);
/* Whether |x| was made by this forge (CA signature, leaf key) and is valid
 * at |now| until at least |now| + LEAF_STALE_SECS. */
int forge_accepts(const struct forge *f, X509 *x, time_t now) NONNULL(1, 2);
/* The names in |x|'s SAN (DNS and IP), normalized, into a name set: used
 * to key certificates loaded from disk. 0, -EINVAL, -ENOMEM. */
int forge_cert_nameset(X509 *x, struct nameset *s) WUNRES NONNULL(1, 2);

#endif
