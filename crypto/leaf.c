/* SPDX-License-Identifier: MIT */
/* The leaf cache: server SSL_CTXs by normalized name set, shared by every
 * shard (mutex; a miss signs once while the others wait on a condvar),
 * fronted by a lock-free per-shard LRU (struct leaf_l1), persisted in
 * confdir/certs/ so that a restart is warm. */
#include "crypto/leaf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/forge.h"
#include "crypto/util.h"

#define LEAF_KEY_FILE "ringcap-leaf-key.pem"
#define CERT_DIR "certs"
#define CERT_FILE_MAX (64 * 1024)
#define L1_DEFAULT 256

enum entry_state { ENTRY_PENDING, ENTRY_READY, ENTRY_FAILED };

/* One cache entry. Owned by the cache table while linked into it (one
 * reference), plus one reference per thread waiting for its signature;
 * freed when the last reference goes. */
struct entry {
	struct entry *hnext;       /* hash chain */
	struct entry *prev, *next; /* LRU (READY entries only), MRU first */
	uint64_t hash;
	char *key;
	size_t key_len;
	SSL_CTX *ctx;     /* the cache's reference, once READY */
	time_t stale_at;  /* re-sign from then on */
	enum entry_state state;
	unsigned refs;
	unsigned long err; /* why signing failed, for the waiters */
};

/* Owner: whoever called leaf_cache_new(). Everything below mu is guarded
 * by mu, except what is set before the cache is shared (forge, seed,
 * setup, dirs) and the atomics (stored, store_errors, persist). */
struct leaf_cache {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct entry **bucket;
	size_t mask;
	struct entry *mru, *lru;
	size_t count; /* entries in the table, any state */
	size_t capacity;
	struct leaf_stats st;
	uint64_t stored, store_errors; /* atomics */
	int persist;                   /* atomic */
	uint64_t seed[2];
	struct forge forge;
	leaf_ctx_setup_fn setup;
	void *setup_arg;
	char certdir[PATH_MAX];
};

/* ---- hashing: SipHash-1-3 with a per-process key (SNI is chosen by
 * clients; a keyed hash keeps them from building long chains) ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                               \
	do {                                                                   \
		v0 += v1;                                                      \
		v1 = ROTL(v1, 13);                                             \
		v1 ^= v0;                                                      \
		v0 = ROTL(v0, 32);                                             \
		v2 += v3;                                                      \
		v3 = ROTL(v3, 16);                                             \
		v3 ^= v2;                                                      \
		v0 += v3;                                                      \
		v3 = ROTL(v3, 21);                                             \
		v3 ^= v0;                                                      \
		v2 += v1;                                                      \
		v1 = ROTL(v1, 17);                                             \
		v1 ^= v2;                                                      \
		v2 = ROTL(v2, 32);                                             \
	} while (0)

static uint64_t siphash13(const uint64_t k[2], const char *p, size_t len)
{
	uint64_t v0 = k[0] ^ 0x736f6d6570736575ULL;
	uint64_t v1 = k[1] ^ 0x646f72616e646f6dULL;
	uint64_t v2 = k[0] ^ 0x6c7967656e657261ULL;
	uint64_t v3 = k[1] ^ 0x7465646279746573ULL;
	uint64_t b = (uint64_t)len << 56, m;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		memcpy(&m, p + i, 8);
		v3 ^= m;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t j = 0; i + j < len; j++)
		b |= (uint64_t)(unsigned char)p[i + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t key_hash(const struct leaf_cache *c, const struct nameset *s)
{
	return siphash13(c->seed, s->key, s->key_len);
}

/* ---- the table and the LRU (mu held) ---- */

static struct entry *table_find(struct leaf_cache *c, uint64_t h,
				const char *key, size_t key_len)
{
	for (struct entry *e = c->bucket[h & c->mask]; e; e = e->hnext)
		if (e->hash == h && e->key_len == key_len &&
		    memcmp(e->key, key, key_len) == 0)
			return e;
	return NULL;
}

static void table_insert(struct leaf_cache *c, struct entry *e)
{
	struct entry **b = &c->bucket[e->hash & c->mask];

	e->hnext = *b;
	*b = e;
	c->count++;
}

static void table_remove(struct leaf_cache *c, struct entry *e)
{
	struct entry **pp = &c->bucket[e->hash & c->mask];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	c->count--;
}

static void lru_unlink(struct leaf_cache *c, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->mru = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->lru = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push_mru(struct leaf_cache *c, struct entry *e)
{
	e->prev = NULL;
	e->next = c->mru;
	if (c->mru)
		c->mru->prev = e;
	c->mru = e;
	if (c->lru == NULL)
		c->lru = e;
}

static void lru_push_lru(struct leaf_cache *c, struct entry *e)
{
	e->next = NULL;
	e->prev = c->lru;
	if (c->lru)
		c->lru->next = e;
	c->lru = e;
	if (c->mru == NULL)
		c->mru = e;
}

static struct entry *entry_new(const struct nameset *s, uint64_t h)
{
	struct entry *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return NULL;
	e->key = malloc(s->key_len + 1);
	if (e->key == NULL) {
		free(e);
		return NULL;
	}
	memcpy(e->key, s->key, s->key_len + 1);
	e->key_len = s->key_len;
	e->hash = h;
	e->refs = 1;
	return e;
}

/* Drop a reference; the last one queues the entry on |dead|, freed by
 * free_dead() once mu is released. */
static void entry_put(struct entry *e, struct entry **dead)
{
	if (--e->refs > 0)
		return;
	e->hnext = *dead;
	*dead = e;
}

static void free_dead(struct entry *dead)
{
	while (dead) {
		struct entry *next = dead->hnext;

		SSL_CTX_free(dead->ctx);
		free(dead->key);
		free(dead);
		dead = next;
	}
}

/* Take a READY entry out of the table (eviction or staleness). */
static void entry_drop(struct leaf_cache *c, struct entry *e,
		       struct entry **dead)
{
	lru_unlink(c, e);
	table_remove(c, e);
	c->st.evictions++;
	entry_put(e, dead);
}

static void evict_over_capacity(struct leaf_cache *c, struct entry **dead)
{
	while (c->count > c->capacity && c->lru != NULL)
		entry_drop(c, c->lru, dead);
}

/* ---- making a server context ---- */

static SSL_CTX *ctx_for(struct leaf_cache *c, X509 *leaf)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL)
		return NULL;
	if (SSL_CTX_use_certificate(ctx, leaf) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, c->forge.leaf_key) != 1 ||
	    SSL_CTX_add1_chain_cert(ctx, c->forge.ca_cert) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (c->setup)
		c->setup(ctx, c->setup_arg);
	return ctx;
}

static time_t stale_time(X509 *leaf)
{
	time_t na = crypto_asn1_time(X509_get0_notAfter(leaf));

	return na == (time_t)-1 ? 0 : na - LEAF_STALE_SECS;
}

/* ---- persistence ---- */

static int cert_path(const struct leaf_cache *c, const struct nameset *s,
		     char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[32];
	char name[33];

	if (EVP_Q_digest(NULL, "SHA256", NULL, s->key, s->key_len, md, NULL) !=
	    1)
		return -EINVAL;
	for (int i = 0; i < 16; i++) {
		name[2 * i] = hex[md[i] >> 4];
		name[2 * i + 1] = hex[md[i] & 15];
	}
	name[32] = '\0';
	if (snprintf(out, cap, "%s/%s.pem", c->certdir, name) >= (int)cap)
		return -ENAMETOOLONG;
	return 0;
}

static void store_leaf(struct leaf_cache *c, const struct nameset *s,
		       X509 *leaf)
{
	char path[PATH_MAX];
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int rc = -ENOMEM;

	ERR_set_mark();
	if (bio != NULL && PEM_write_bio_X509(bio, leaf) == 1 &&
	    (len = BIO_get_mem_data(bio, &data)) > 0) {
		rc = cert_path(c, s, path, sizeof(path));
		if (rc == 0)
			rc = crypto_write_file(path, (unsigned char *)data,
					       (size_t)len, 0600, false);
	}
	ERR_pop_to_mark();
	BIO_free(bio);
	__atomic_fetch_add(rc == 0 ? &c->stored : &c->store_errors, 1,
			   __ATOMIC_RELAXED);
}

/* ---- lookups ---- */

/* Wait for another thread's signature of |e| (mu held). */
static SSL_CTX *wait_for(struct leaf_cache *c, struct entry *e,
			 time_t *stale_at, struct entry **dead)
{
	SSL_CTX *ctx = NULL;

	c->st.misses++;
	c->st.waited++;
	e->refs++;
	while (e->state == ENTRY_PENDING)
		pthread_cond_wait(&c->cv, &c->mu);
	if (e->state == ENTRY_READY && SSL_CTX_up_ref(e->ctx) == 1) {
		ctx = e->ctx;
		*stale_at = e->stale_at;
	}
	if (ctx == NULL) {
		const char *why = ERR_reason_error_string(e->err);

		ERR_raise_data(ERR_LIB_USER, ERR_R_OPERATION_FAIL,
			       "forging the leaf certificate for %s failed "
			       "in another thread: %s",
			       e->key, why ? why : "unknown reason");
	}
	entry_put(e, dead);
	return ctx;
}

/* Sign the leaf for |e| (mu not held), then publish it. Returns a new
 * reference for the caller, or NULL. */
static SSL_CTX *sign_and_publish(struct leaf_cache *c, struct entry *e,
				 const struct nameset *s, time_t now,
				 time_t *stale_at)
{
	struct entry *dead = NULL;
	X509 *leaf = forge_leaf(&c->forge, s, now);
	SSL_CTX *ctx = leaf ? ctx_for(c, leaf) : NULL;

	pthread_mutex_lock(&c->mu);
	if (ctx != NULL) {
		c->st.signatures++;
		e->ctx = ctx;
		e->stale_at = *stale_at = stale_time(leaf);
		e->state = ENTRY_READY;
		lru_push_mru(c, e);
		SSL_CTX_up_ref(ctx);
		evict_over_capacity(c, &dead);
	} else {
		c->st.sign_errors++;
		e->state = ENTRY_FAILED;
		e->err = ERR_peek_last_error();
		table_remove(c, e);
		entry_put(e, &dead);
	}
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	free_dead(dead);
	if (ctx != NULL && __atomic_load_n(&c->persist, __ATOMIC_RELAXED))
		store_leaf(c, s, leaf);
	X509_free(leaf);
	return ctx;
}

/* The lookup behind leaf_get() and leaf_l1_get(). */
static SSL_CTX *cache_get(struct leaf_cache *c, const struct nameset *s,
			  uint64_t h, time_t now, time_t *stale_at)
{
	struct entry *dead = NULL;
	struct entry *e;
	SSL_CTX *ctx = NULL;

	pthread_mutex_lock(&c->mu);
	e = table_find(c, h, s->key, s->key_len);
	if (e != NULL && e->state == ENTRY_READY && now >= e->stale_at) {
		entry_drop(c, e, &dead);
		e = NULL;
	}
	if (e != NULL && e->state == ENTRY_READY) {
		c->st.hits++;
		lru_unlink(c, e);
		lru_push_mru(c, e);
		if (SSL_CTX_up_ref(e->ctx) == 1) {
			ctx = e->ctx;
			*stale_at = e->stale_at;
		}
		goto out_unlock;
	}
	if (e != NULL) {
		ctx = wait_for(c, e, stale_at, &dead);
		goto out_unlock;
	}
	c->st.misses++;
	e = entry_new(s, h);
	if (e == NULL) {
		ERR_raise(ERR_LIB_USER, ERR_R_MALLOC_FAILURE);
		goto out_unlock;
	}
	table_insert(c, e);
	pthread_mutex_unlock(&c->mu);
	free_dead(dead);
	return sign_and_publish(c, e, s, now, stale_at);
out_unlock:
	pthread_mutex_unlock(&c->mu);
	free_dead(dead);
	return ctx;
}

static int build_key(struct nameset *s, const char *const *names, size_t n)
{
	int rc = nameset_build(s, names, n);

	if (rc == -EINVAL)
		ERR_raise_data(ERR_LIB_USER, ERR_R_PASSED_INVALID_ARGUMENT,
			       "no valid host name or IP address among the "
			       "%zu name(s) to forge a leaf certificate for",
			       n);
	else if (rc != 0)
		ERR_raise(ERR_LIB_USER, ERR_R_MALLOC_FAILURE);
	return rc;
}

SSL_CTX *leaf_get(struct leaf_cache *c, const char *const *names, size_t n)
{
	struct nameset s;
	time_t stale_at;
	SSL_CTX *ctx;

	if (build_key(&s, names, n) != 0)
		return NULL;
	ctx = cache_get(c, &s, key_hash(c, &s), time(NULL), &stale_at);
	nameset_free(&s);
	return ctx;
}

void leaf_cache_stats(struct leaf_cache *c, struct leaf_stats *out)
{
	pthread_mutex_lock(&c->mu);
	*out = c->st;
	out->entries = c->count;
	pthread_mutex_unlock(&c->mu);
	out->stored = __atomic_load_n(&c->stored, __ATOMIC_RELAXED);
	out->store_errors = __atomic_load_n(&c->store_errors, __ATOMIC_RELAXED);
}

/* ---- creation ---- */

const char *leaf_key_type_name(enum leaf_key_type t)
{
	switch (t) {
	case LEAF_KEY_EC_P256:
		return "ec";
	case LEAF_KEY_RSA2048:
		return "rsa";
	case LEAF_KEY_COUNT:
		break;
	}
	return "?";
}

int leaf_key_type_parse(const char *s, enum leaf_key_type *out)
{
	for (int t = 0; t < LEAF_KEY_COUNT; t++) {
		if (strcmp(s, leaf_key_type_name((enum leaf_key_type)t)) == 0) {
			*out = (enum leaf_key_type)t;
			return 0;
		}
	}
	return -EINVAL;
}

static EVP_PKEY *read_leaf_key(const char *path, enum leaf_key_type type,
			       int *rc, char *err, size_t err_len)
{
	unsigned char *data = NULL;
	size_t len = 0;
	EVP_PKEY *key = NULL;
	BIO *bio;

	*rc = crypto_read_secret(path, "leaf key file", &data, &len, err,
				 err_len);
	if (*rc != 0)
		return NULL;
	bio = BIO_new_mem_buf(data, (int)len);
	ERR_set_mark();
	if (bio != NULL)
		key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
	ERR_pop_to_mark();
	BIO_free(bio);
	OPENSSL_clear_free(data, len);
	if (key != NULL && forge_key_type(key) != (int)type) {
		EVP_PKEY_free(key); /* another type asked for: replace it */
		key = NULL;
	}
	return key;
}

static int write_leaf_key(const char *path, EVP_PKEY *key, bool exclusive)
{
	BIO *bio = BIO_new(BIO_s_secmem());
	char *data;
	long len;
	int rc = -ENOMEM;

	if (bio != NULL &&
	    PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) ==
		    1 &&
	    (len = BIO_get_mem_data(bio, &data)) > 0)
		rc = crypto_write_file(path, (unsigned char *)data,
				       (size_t)len, 0600, exclusive);
	BIO_free(bio);
	return rc;
}

/* The leaf key: confdir/ringcap-leaf-key.pem if it is there and of |type|,
 * else a new one, stored there if possible (*persist = 0 if not). */
static EVP_PKEY *leaf_key(const char *dir, enum leaf_key_type type,
			  int *persist, char *err, size_t err_len)
{
	char path[PATH_MAX];
	EVP_PKEY *key;
	int rc, exists;

	*persist = 0;
	if (snprintf(path, sizeof(path), "%s/%s", dir, LEAF_KEY_FILE) >=
	    (int)sizeof(path))
		return forge_new_key(type);
	exists = access(path, F_OK) == 0;
	if (exists) {
		key = read_leaf_key(path, type, &rc, err, err_len);
		if (rc == -EACCES)
			return NULL;
		if (key != NULL) {
			*persist = 1;
			return key;
		}
	}
	key = forge_new_key(type);
	if (key == NULL)
		return NULL;
	rc = write_leaf_key(path, key, !exists);
	if (rc == -EEXIST) { /* another process just made one: use it */
		EVP_PKEY_free(key);
		key = read_leaf_key(path, type, &rc, err, err_len);
	}
	*persist = rc == 0;
	return key;
}

static int cache_alloc(struct leaf_cache *c, size_t capacity)
{
	size_t nb = 16;

	while (nb < capacity * 2)
		nb *= 2;
	c->bucket = calloc(nb, sizeof(*c->bucket));
	if (c->bucket == NULL)
		return -ENOMEM;
	c->mask = nb - 1;
	c->capacity = capacity;
	if (RAND_bytes((unsigned char *)c->seed, sizeof(c->seed)) != 1)
		return -EIO;
	if (pthread_mutex_init(&c->mu, NULL) != 0)
		return -ENOMEM;
	if (pthread_cond_init(&c->cv, NULL) != 0) {
		pthread_mutex_destroy(&c->mu);
		return -ENOMEM;
	}
	return 0;
}

static int cache_setup(struct leaf_cache *c, struct ca *ca,
		       enum leaf_key_type key_type, char *err, size_t err_len)
{
	int persist = 0, rc;
	EVP_PKEY *key = leaf_key(ca_dir(ca), key_type, &persist, err,
				 err_len);

	if (key == NULL) {
		if (err_len > 0 && err[0] == '\0')
			crypto_err_ssl(err, err_len,
				       "cannot make the leaf key (%s)",
				       leaf_key_type_name(key_type));
		return -EACCES;
	}
	rc = forge_init(&c->forge, ca_cert(ca), ca_key(ca), key);
	EVP_PKEY_free(key);
	if (rc != 0) {
		crypto_err_ssl(err, err_len,
			       "cannot prepare leaf certificates for the CA "
			       "in %s",
			       ca_dir(ca));
		return rc;
	}
	if (snprintf(c->certdir, sizeof(c->certdir), "%s/%s", ca_dir(ca),
		     CERT_DIR) >= (int)sizeof(c->certdir))
		persist = 0;
	if (persist && mkdir(c->certdir, 0700) != 0 && errno != EEXIST)
		persist = 0;
	c->persist = persist;
	return 0;
}

int leaf_cache_new_ex(struct leaf_cache **out, struct ca *ca, size_t capacity,
		      enum leaf_key_type key_type, leaf_ctx_setup_fn ctx_setup,
		      void *arg, char *err, size_t err_len)
{
	struct leaf_cache *c;
	int rc;

	*out = NULL;
	if (err_len > 0)
		err[0] = '\0';
	if (capacity == 0 || capacity > (SIZE_MAX >> 4) ||
	    (unsigned)key_type >= LEAF_KEY_COUNT) {
		crypto_err(err, err_len,
			   "invalid leaf cache capacity or key type");
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	rc = cache_alloc(c, capacity);
	if (rc != 0) {
		free(c->bucket);
		free(c);
		crypto_err(err, err_len, "cannot create the leaf cache: %s",
			   strerror(-rc));
		return rc;
	}
	c->setup = ctx_setup;
	c->setup_arg = arg;
	rc = cache_setup(c, ca, key_type, err, err_len);
	if (rc != 0) {
		leaf_cache_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int leaf_cache_new(struct leaf_cache **out, struct ca *ca, size_t capacity,
		   void (*ctx_setup)(SSL_CTX *ctx, void *arg), void *arg,
		   char *err, size_t err_len)
{
	return leaf_cache_new_ex(out, ca, capacity, LEAF_KEY_EC_P256,
				 ctx_setup, arg, err, err_len);
}

void leaf_cache_free(struct leaf_cache *c)
{
	struct entry *dead = NULL;

	if (c == NULL)
		return;
	for (size_t i = 0; i <= c->mask; i++) {
		for (struct entry *e = c->bucket[i], *next; e; e = next) {
			next = e->hnext;
			e->hnext = dead;
			dead = e;
		}
	}
	free_dead(dead);
	free(c->bucket);
	forge_fini(&c->forge);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

int leaf_cache_persisting(const struct leaf_cache *c)
{
	return __atomic_load_n(&c->persist, __ATOMIC_RELAXED);
}

void leaf_cache_set_persist(struct leaf_cache *c, int on)
{
	__atomic_store_n(&c->persist, on ? 1 : 0, __ATOMIC_RELAXED);
}

/* ---- loading from disk ---- */

struct disk_file {
	char name[NAME_MAX + 1];
	time_t mtime;
};

static int by_mtime_desc(const void *a, const void *b)
{
	const struct disk_file *x = a, *y = b;

	return (x->mtime < y->mtime) - (x->mtime > y->mtime);
}

static bool is_cert_name(const char *name)
{
	size_t len = strlen(name);

	return len > 4 && strcmp(name + len - 4, ".pem") == 0 &&
	       name[0] != '.';
}

/* The .pem files in |dir|, newest first. */
static int list_certs(const char *dir, struct disk_file **out, size_t *n)
{
	DIR *d = opendir(dir);
	struct disk_file *v = NULL;
	size_t cap = 0;
	struct dirent *de;
	struct stat st;

	*n = 0;
	if (d == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		if (!is_cert_name(de->d_name) ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
		    !S_ISREG(st.st_mode))
			continue;
		if (*n == cap) {
			struct disk_file *nv;

			cap = cap ? cap * 2 : 64;
			nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
		}
		snprintf(v[*n].name, sizeof(v[*n].name), "%s", de->d_name);
		v[(*n)++].mtime = st.st_mtime;
	}
	closedir(d);
	if (*n > 1)
		qsort(v, *n, sizeof(*v), by_mtime_desc);
	*out = v;
	return 0;
}

static X509 *read_cert_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	unsigned char *data = NULL;
	size_t len = 0;
	X509 *x = NULL;
	BIO *bio;

	if (fd < 0)
		return NULL;
	if (crypto_read_fd(fd, &data, &len, CERT_FILE_MAX) == 0) {
		bio = BIO_new_mem_buf(data, (int)len);
		if (bio != NULL)
			x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		BIO_free(bio);
		OPENSSL_free(data);
	}
	close(fd);
	return x;
}

/* Add a READY entry for |leaf| behind the others (mu held by caller).
 * 1 added, 0 already there or full, negative on error. */
static int add_loaded(struct leaf_cache *c, const struct nameset *s,
		      X509 *leaf)
{
	uint64_t h = key_hash(c, s);
	struct entry *e;
	SSL_CTX *ctx;

	if (c->count >= c->capacity || table_find(c, h, s->key, s->key_len))
		return 0;
	ctx = ctx_for(c, leaf);
	e = ctx ? entry_new(s, h) : NULL;
	if (e == NULL) {
		SSL_CTX_free(ctx);
		return -ENOMEM;
	}
	e->ctx = ctx;
	e->stale_at = stale_time(leaf);
	e->state = ENTRY_READY;
	table_insert(c, e);
	lru_push_lru(c, e);
	c->st.loaded++;
	return 1;
}

/* Load one file: 1 loaded, 0 skipped (and deleted), negative on error. */
static int load_one(struct leaf_cache *c, const char *name, time_t now)
{
	char path[PATH_MAX], want[PATH_MAX];
	struct nameset s;
	X509 *x;
	int rc = 0;

	if (snprintf(path, sizeof(path), "%s/%s", c->certdir, name) >=
	    (int)sizeof(path))
		return 0;
	ERR_set_mark();
	x = read_cert_file(path);
	if (x != NULL && forge_accepts(&c->forge, x, now) &&
	    forge_cert_nameset(x, &s) == 0) {
		/* the file name must be the hash of the names it holds */
		if (cert_path(c, &s, want, sizeof(want)) == 0 &&
		    strcmp(want, path) == 0) {
			pthread_mutex_lock(&c->mu);
			rc = add_loaded(c, &s, x);
			pthread_mutex_unlock(&c->mu);
		}
		nameset_free(&s);
	}
	ERR_pop_to_mark();
	X509_free(x);
	if (rc == 0)
		unlink(path); /* expired, foreign, full or a duplicate */
	return rc;
}

int leaf_cache_load_disk(struct leaf_cache *c)
{
	struct disk_file *files = NULL;
	size_t n = 0;
	time_t now = time(NULL);
	int rc, loaded = 0;

	if (!leaf_cache_persisting(c))
		return 0;
	rc = list_certs(c->certdir, &files, &n);
	if (rc != 0)
		return rc == -ENOENT ? 0 : rc;
	for (size_t i = 0; i < n; i++) {
		rc = load_one(c, files[i].name, now);
		if (rc < 0)
			break;
		loaded += rc;
	}
	free(files);
	return rc < 0 ? rc : loaded;
}

/* ---- cert_warm ---- */

/* Split |line| into names (spaces, tabs, commas); '#' ends it. */
static size_t split_names(char *line, const char **names, size_t max)
{
	size_t n = 0;
	char *save = NULL;

	line[strcspn(line, "#\r\n")] = '\0';
	for (char *t = strtok_r(line, " \t,", &save); t && n < max;
	     t = strtok_r(NULL, " \t,", &save))
		names[n++] = t;
	return n;
}

int leaf_cache_warm(struct leaf_cache *c, const char *path)
{
	FILE *f = fopen(path, "re");
	const char *names[64];
	char *line = NULL;
	size_t cap = 0;
	int count = 0, rc = 0, lineno = 0;

	if (f == NULL)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		size_t n = split_names(line, names, 64);
		struct nameset s;
		SSL_CTX *ctx;

		lineno++;
		if (n == 0)
			continue;
		if (nameset_build(&s, names, n) != 0) {
			ERR_raise_data(ERR_LIB_USER,
				       ERR_R_PASSED_INVALID_ARGUMENT,
				       "%s:%d: no valid host name or IP address",
				       path, lineno);
			rc = -EINVAL;
			break;
		}
		nameset_free(&s);
		ctx = leaf_get(c, names, n);
		if (ctx == NULL) {
			rc = -EIO;
			break;
		}
		SSL_CTX_free(ctx);
		count++;
	}
	free(line);
	fclose(f);
	return rc < 0 ? rc : count;
}

/* ---- the per-thread front ---- */

/* Owner: the one thread that made it. Holds one SSL_CTX reference per
 * entry. Entries are linked by index; -1 ends a list. */
struct l1_entry {
	char *key;
	size_t key_len;
	uint64_t hash;
	SSL_CTX *ctx;
	time_t stale_at;
	int32_t hnext, prev, next;
};

struct leaf_l1 {
	struct leaf_cache *c;
	struct l1_entry *e;
	int32_t *bucket;
	uint32_t mask;
	uint32_t cap, used;
	int32_t mru, lru;
	int32_t free_slot; /* slots emptied by staleness, chained by hnext */
	uint64_t hits, misses;
};

struct leaf_l1 *leaf_l1_new(struct leaf_cache *c, size_t capacity)
{
	struct leaf_l1 *l1 = calloc(1, sizeof(*l1));
	uint32_t nb = 16;

	if (capacity == 0)
		capacity = L1_DEFAULT;
	if (l1 == NULL || capacity > (1u << 24))
		goto out_free;
	while (nb < capacity * 2)
		nb *= 2;
	l1->e = calloc(capacity, sizeof(*l1->e));
	l1->bucket = malloc(nb * sizeof(*l1->bucket));
	if (l1->e == NULL || l1->bucket == NULL)
		goto out_free;
	memset(l1->bucket, 0xff, nb * sizeof(*l1->bucket));
	l1->c = c;
	l1->mask = nb - 1;
	l1->cap = (uint32_t)capacity;
	l1->mru = l1->lru = l1->free_slot = -1;
	return l1;
out_free:
	if (l1 != NULL) {
		free(l1->e);
		free(l1->bucket);
	}
	free(l1);
	return NULL;
}

static int32_t l1_find(const struct leaf_l1 *l1, uint64_t h,
		       const struct nameset *s)
{
	for (int32_t i = l1->bucket[h & l1->mask]; i >= 0;
	     i = l1->e[i].hnext) {
		const struct l1_entry *e = &l1->e[i];

		if (e->hash == h && e->key_len == s->key_len &&
		    memcmp(e->key, s->key, s->key_len) == 0)
			return i;
	}
	return -1;
}

static void l1_unlink(struct leaf_l1 *l1, int32_t i)
{
	struct l1_entry *e = &l1->e[i];

	if (e->prev >= 0)
		l1->e[e->prev].next = e->next;
	else
		l1->mru = e->next;
	if (e->next >= 0)
		l1->e[e->next].prev = e->prev;
	else
		l1->lru = e->prev;
}

static void l1_push_mru(struct leaf_l1 *l1, int32_t i)
{
	struct l1_entry *e = &l1->e[i];

	e->prev = -1;
	e->next = l1->mru;
	if (l1->mru >= 0)
		l1->e[l1->mru].prev = i;
	l1->mru = i;
	if (l1->lru < 0)
		l1->lru = i;
}

/* Empty slot |i|: out of the hash chain and the LRU, reference dropped. */
static void l1_clear(struct leaf_l1 *l1, int32_t i)
{
	struct l1_entry *e = &l1->e[i];
	int32_t *pp = &l1->bucket[e->hash & l1->mask];

	while (*pp != i)
		pp = &l1->e[*pp].hnext;
	*pp = e->hnext;
	l1_unlink(l1, i);
	SSL_CTX_free(e->ctx);
	free(e->key);
	e->ctx = NULL;
	e->key = NULL;
}

static void l1_insert(struct leaf_l1 *l1, const struct nameset *s,
		      uint64_t h, SSL_CTX *ctx, time_t stale_at)
{
	char *key = malloc(s->key_len + 1);
	struct l1_entry *e;
	int32_t i;

	if (key == NULL || SSL_CTX_up_ref(ctx) != 1) {
		free(key);
		return;
	}
	memcpy(key, s->key, s->key_len + 1);
	if (l1->free_slot >= 0) {
		i = l1->free_slot;
		l1->free_slot = l1->e[i].hnext;
	} else if (l1->used < l1->cap) {
		i = (int32_t)l1->used++;
	} else {
		i = l1->lru;
		l1_clear(l1, i);
	}
	e = &l1->e[i];
	e->key = key;
	e->key_len = s->key_len;
	e->hash = h;
	e->ctx = ctx;
	e->stale_at = stale_at;
	e->hnext = l1->bucket[h & l1->mask];
	l1->bucket[h & l1->mask] = i;
	l1_push_mru(l1, i);
}

static SSL_CTX *l1_miss(struct leaf_l1 *l1, const struct nameset *s,
			uint64_t h, time_t now)
{
	time_t stale_at = 0;
	SSL_CTX *ctx = cache_get(l1->c, s, h, now, &stale_at);

	l1->misses++;
	if (ctx != NULL)
		l1_insert(l1, s, h, ctx, stale_at);
	return ctx;
}

SSL_CTX *leaf_l1_get(struct leaf_l1 *l1, const char *const *names, size_t n)
{
	struct nameset s;
	time_t now = time(NULL);
	SSL_CTX *ctx = NULL;
	uint64_t h;
	int32_t i;

	if (build_key(&s, names, n) != 0)
		return NULL;
	h = key_hash(l1->c, &s);
	i = l1_find(l1, h, &s);
	if (i >= 0 && now >= l1->e[i].stale_at) {
		l1_clear(l1, i);
		l1->e[i].hnext = l1->free_slot;
		l1->free_slot = i;
		i = -1;
	}
	if (i >= 0 && SSL_CTX_up_ref(l1->e[i].ctx) == 1) {
		l1->hits++;
		ctx = l1->e[i].ctx;
		if (l1->mru != i) {
			l1_unlink(l1, i);
			l1_push_mru(l1, i);
		}
	} else {
		ctx = l1_miss(l1, &s, h, now);
	}
	nameset_free(&s);
	return ctx;
}

void leaf_l1_counts(const struct leaf_l1 *l1, uint64_t *hits,
		    uint64_t *misses)
{
	*hits = l1->hits;
	*misses = l1->misses;
}

void leaf_l1_free(struct leaf_l1 *l1)
{
	if (l1 == NULL)
		return;
	for (uint32_t i = 0; i < l1->used; i++) {
		SSL_CTX_free(l1->e[i].ctx);
		free(l1->e[i].key);
	}
	free(l1->e);
	free(l1->bucket);
	free(l1);
}
