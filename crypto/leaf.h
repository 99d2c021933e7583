/* SPDX-License-Identifier: MIT */
/* Leaf certificates: forged on the fly for the names a client asked for
 * (SNI) and the upstream certificate carries, signed by the CA, all with
 * one key pair made at start-up, and kept ready as server SSL_CTXs in a
 * cache shared by every shard, fronted by a lock-free per-shard cache.
 * Used by the engine's TLS layer between the upstream handshake and the
 * client handshake. */
#ifndef RC_CRYPTO_LEAF_H
#define RC_CRYPTO_LEAF_H

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rc_err.h"
#include "crypto/ca.h"

/* The shared cache. Thread-safe: every function taking it may be called
 * from any thread at once, except leaf_cache_free(). */
struct leaf_cache;
/* A per-thread front of the cache: lock-free because it belongs to exactly
 * one thread (a shard); never share one between threads. */
struct leaf_l1;

/* The one key pair every leaf presents. */
enum leaf_key_type {
	LEAF_KEY_EC_P256, /* default: fast handshakes, small certificates */
	LEAF_KEY_RSA2048, /* for clients without ECDSA */
	LEAF_KEY_COUNT,
};
const char *leaf_key_type_name(enum leaf_key_type t); /* "ec" / "rsa" */
/* Parse the leaf_key_type option ("ec", "rsa"). 0 or -EINVAL. */
int leaf_key_type_parse(const char *s, enum leaf_key_type *out) NONNULL(1, 2);

/* Counters, summed since leaf_cache_new(). A lookup is counted once: a hit
 * (served from the cache), or a miss (this thread signed, or waited for
 * another thread's signature: then |waited| counts it too). The per-shard
 * front's hits are not included: see leaf_l1_counts(). */
struct leaf_stats {
	uint64_t hits;
	uint64_t misses;
	uint64_t signatures; /* leaf certificates signed by this process */
	uint64_t sign_errors;
	uint64_t evictions;  /* LRU evictions (and stale entries replaced) */
	uint64_t waited;     /* misses served by another thread's signature */
	uint64_t loaded;     /* leaves loaded from confdir/certs at start-up */
	uint64_t stored;     /* leaves written to confdir/certs */
	uint64_t store_errors;
	uint64_t entries;    /* entries in the cache now */
};

/* Called for every SSL_CTX the cache makes, once, before it is handed out
 * (install the ALPN select callback, options, session settings there). It
 * runs on whichever thread signs the leaf, without the cache lock held, so
 * it must be thread-safe; it must not call into the cache. */
typedef void (*leaf_ctx_setup_fn)(SSL_CTX *ctx, void *arg);

/* Create the cache over |ca| with room for |capacity| (>= 1) certificates
 * and an ECDSA P-256 leaf key. The leaf key is kept in
 * confdir/ringcap-leaf-key.pem (0600) and reused on the next start, so
 * that the leaves persisted in confdir/certs/ stay usable; if confdir is
 * not writable the cache still works, without persistence (see
 * leaf_cache_persisting()). |ctx_setup| may be NULL.
 * The cache takes its own references to the CA's cert and key: |ca| may be
 * freed before the cache. Returns 0 and sets *out, or a negative errno with
 * a message in |err|. */
int leaf_cache_new(struct leaf_cache **out, struct ca *ca, size_t capacity,
		   void (*ctx_setup)(SSL_CTX *ctx, void *arg), void *arg,
		   char *err, size_t err_len) WUNRES NONNULL(1, 2, 6);
/* Same with a chosen leaf key type. */
int leaf_cache_new_ex(struct leaf_cache **out, struct ca *ca, size_t capacity,
		      enum leaf_key_type key_type, leaf_ctx_setup_fn ctx_setup,
		      void *arg, char *err, size_t err_len) WUNRES
	NONNULL(1, 2, 7);

/* Free the cache and drop its references. Every leaf_l1 made from it must
 * be freed first. SSL_CTXs handed out stay valid (they are refcounted). */
void leaf_cache_free(struct leaf_cache *c);

/* Whether signed leaves are written to confdir/certs/ (1) or not (0). */
int leaf_cache_persisting(const struct leaf_cache *c) NONNULL(1);
/* Turn persistence off (tests, read-only setups). */
void leaf_cache_set_persist(struct leaf_cache *c, int on) NONNULL(1);

/* The server SSL_CTX presenting a leaf for the names |names[0..n)|: host
 * names (case-insensitive, a trailing dot ignored, wildcards "*.a.b"
 * allowed) or IP literals (IPv6 with or without brackets). Invalid names
 * are skipped; the cache key is the normalized set (lowercase, canonical
 * IPs, deduplicated, sorted): the same set in any order is the same entry.
 * The certificate's CN is names[0] (the first valid name: pass the SNI
 * first), its SAN all names.
 * A miss signs the leaf (about a millisecond with an RSA CA) while other
 * threads missing the same set wait for that one signature; then the leaf
 * is written to confdir/certs/ by this thread (small synchronous write).
 * Returns a new reference: the caller SSL_CTX_free()s it (SSL_new() takes
 * its own, so freeing right after SSL_new() is fine). NULL on failure (no
 * valid name, out of memory, signing failed) with the reason in the
 * OpenSSL error queue of this thread. */
SSL_CTX *leaf_get(struct leaf_cache *c, const char *const *names, size_t n)
	WUNRES NONNULL(1);

void leaf_cache_stats(struct leaf_cache *c, struct leaf_stats *out)
	NONNULL(1, 2);

/* Load leaves persisted in confdir/certs/ by an earlier run, newest first,
 * up to the capacity. Files that are expired (or expire within a week),
 * not signed by this CA, not for this leaf key or unreadable are deleted.
 * Returns the number loaded, or a negative errno (the directory cannot be
 * read). Call once at start-up, before the shards run. */
int leaf_cache_load_disk(struct leaf_cache *c) NONNULL(1);

/* Pre-sign leaves for the hosts in the file |path| (--set cert_warm=FILE):
 * one certificate per line, the line's names separated by spaces or commas
 * (the first is the CN), '#' starts a comment. Already-cached sets cost
 * nothing. Returns the number of lines that gave a certificate, or a
 * negative errno (-ENOENT etc. for the file, -EINVAL if a line had no valid
 * name, -ENOMEM, -EIO if signing failed). */
int leaf_cache_warm(struct leaf_cache *c, const char *path) NONNULL(1, 2);

/* A per-thread front cache of up to |capacity| SSL_CTX references (0: 256).
 * NULL on allocation failure. */
struct leaf_l1 *leaf_l1_new(struct leaf_cache *c, size_t capacity) WUNRES
	NONNULL(1);
/* As leaf_get(), without any lock or shared write on a hit; a miss falls
 * through to leaf_get() and remembers the result. Returns a new reference
 * (SSL_CTX_free() it), or NULL as leaf_get(). */
SSL_CTX *leaf_l1_get(struct leaf_l1 *l1, const char *const *names, size_t n)
	WUNRES NONNULL(1);
void leaf_l1_counts(const struct leaf_l1 *l1, uint64_t *hits,
		    uint64_t *misses) NONNULL(1, 2, 3);
void leaf_l1_free(struct leaf_l1 *l1);

/* The names to forge a leaf from, out of an upstream server certificate:
 * the subject CN first (if any), then the DNS and IP SANs, deduplicated,
 * at most |max|, each NUL-terminated (IPs as text). Names that do not fit
 * 255 bytes or hold bytes outside printable ASCII are skipped. Returns the
 * count (0 if none). */
int leaf_names_from_cert(X509 *upstream, char names[][256], size_t max)
	NONNULL(1);

/* SHA-256 of the certificate's DER, lowercase hex, NUL-terminated. */
void tls_cert_fingerprint(X509 *cert, char out[65]) NONNULL(1, 2);

#endif
