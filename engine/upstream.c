/* SPDX-License-Identifier: MIT */
/* The upstream side of a shard: asynchronous name resolution (c-ares,
 * its sockets polled through the shard's io_uring, answers cached with
 * their TTL), non-blocking connects, and the keep-alive pool of idle
 * upstream connections. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/shard.h"

#define DNS_NEG_TTL_MS 1000u
#define DNS_MIN_TTL_MS 1000u
#define DNS_MAX_TTL_MS 300000u

/* ---- c-ares sockets ---- */

static void dns_arm(struct shard *s, uint32_t i)
{
	struct dns_watch *w = &s->dns[i];
	if (w->armed || w->fd < 0 || !(w->want_r || w->want_w))
		return;
	struct io_uring_sqe *sqe = shard_sqe(s);
	io_uring_prep_poll_add(sqe, w->fd,
			       (w->want_r ? POLLIN : 0) | (w->want_w ? POLLOUT : 0));
	io_uring_sqe_set_data64(sqe, ud_make(OP_DNSPOLL, w->gen, i));
	w->armed = true;
}

void dns_sock_state_cb(void *data, ares_socket_t fd, int readable,
		       int writable)
{
	struct shard *s = data;
	int free_i = -1;
	for (uint32_t i = 0; i < SHARD_DNS_WATCH; i++) {
		struct dns_watch *w = &s->dns[i];
		if (w->fd == fd) {
			if (!readable && !writable) {
				if (w->armed) {
					struct io_uring_sqe *sqe = shard_sqe(s);
					io_uring_prep_poll_remove(
						sqe, ud_make(OP_DNSPOLL, w->gen, i));
					io_uring_sqe_set_data64(
						sqe, ud_make(OP_IGNORE, 0, 0));
				}
				w->fd = -1;
				w->armed = false;
				w->gen = (w->gen + 1) & 0xffffff;
				return;
			}
			if (w->armed && (w->want_r != !!readable ||
					 w->want_w != !!writable)) {
				/* the interest changed (a TCP socket that now
				 * has a query to write): poll again for it */
				struct io_uring_sqe *sqe = shard_sqe(s);
				io_uring_prep_poll_remove(
					sqe, ud_make(OP_DNSPOLL, w->gen, i));
				io_uring_sqe_set_data64(sqe,
							ud_make(OP_IGNORE, 0, 0));
				w->armed = false;
				w->gen = (w->gen + 1) & 0xffffff;
			}
			w->want_r = readable;
			w->want_w = writable;
			dns_arm(s, i);
			return;
		}
		if (w->fd < 0 && free_i < 0)
			free_i = (int)i;
	}
	if ((!readable && !writable) || free_i < 0)
		return; /* no slot: c-ares's own timeouts still fire on tick */
	struct dns_watch *w = &s->dns[free_i];
	w->fd = fd;
	w->want_r = readable;
	w->want_w = writable;
	w->armed = false;
	dns_arm(s, (uint32_t)free_i);
}

int dns_init(struct shard *s)
{
	for (uint32_t i = 0; i < SHARD_DNS_WATCH; i++)
		s->dns[i].fd = -1;
	struct ares_options o;
	memset(&o, 0, sizeof(o));
	o.sock_state_cb = dns_sock_state_cb;
	o.sock_state_cb_data = s;
	o.timeout = 2000;
	o.tries = 2;
	int r = ares_init_options(&s->ares, &o,
				  ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS |
					  ARES_OPT_TRIES);
	return r == ARES_SUCCESS ? 0 : -ENOMEM;
}

void dns_destroy(struct shard *s)
{
	if (s->ares)
		ares_destroy(s->ares);
	s->ares = NULL;
}

void dns_on_poll(struct shard *s, uint32_t slot, uint32_t gen, int res)
{
	if (slot >= SHARD_DNS_WATCH)
		return;
	struct dns_watch *w = &s->dns[slot];
	if (w->gen != gen || w->fd < 0)
		return;
	w->armed = false;
	int fd = w->fd;
	ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;
	if (res < 0 || (res & (POLLIN | POLLERR | POLLHUP)))
		rfd = fd;
	if (res > 0 && (res & POLLOUT))
		wfd = fd;
	/* the socket is one channel's: the others find nothing to do */
	ares_process_fd(s->ares, rfd, wfd);
	for (unsigned i = 0; i < ENG_MAX_MODES; i++)
		if (s->dns_fwd[i])
			ares_process_fd(s->dns_fwd[i], rfd, wfd);
	if (w->gen == gen && w->fd == fd)
		dns_arm(s, slot);
}

void dns_tick(struct shard *s)
{
	ares_process_fd(s->ares, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	for (unsigned i = 0; i < ENG_MAX_MODES; i++)
		if (s->dns_fwd[i])
			ares_process_fd(s->dns_fwd[i], ARES_SOCKET_BAD,
					ARES_SOCKET_BAD);
}

/* ---- cache ---- */

static struct dns_cache_ent *cache_slot(struct shard *s, const char *host)
{
	uint32_t h = 2166136261u;
	for (const char *p = host; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return &s->dcache[h % SHARD_DNS_CACHE];
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

struct dns_req {
	struct shard *s;
	uint32_t idx, gen;
	uint16_t port;
	char host[256];
};

static void deliver(struct shard *s, uint32_t idx, uint32_t gen, int err,
		    struct sockaddr_storage *ss, socklen_t sl, uint16_t port)
{
	if (idx >= s->nsess)
		return;
	struct sess *x = &s->sess[idx];
	if (x->gen != gen || !(x->flags & SF_IN_DNS) || (x->flags & SF_CLOSING))
		return;
	if (!err)
		set_port(ss, port);
	session_on_resolved(s, x, err, (struct sockaddr *)ss, sl);
}

static void addrinfo_cb(void *arg, int status, int timeouts,
			struct ares_addrinfo *res)
{
	struct dns_req *rq = arg;
	struct shard *s = rq->s;
	struct dns_cache_ent *ce = cache_slot(s, rq->host);
	struct sockaddr_storage ss;
	socklen_t sl = 0;
	int err = -EHOSTUNREACH;
	(void)timeouts;
	if (status == ARES_SUCCESS && res && res->nodes) {
		const struct ares_addrinfo_node *n = res->nodes, *pick = NULL;
		int ttl = 0;
		for (; n; n = n->ai_next) {
			if (!pick || (pick->ai_family != AF_INET &&
				      n->ai_family == AF_INET))
				pick = n;
		}
		if (pick && pick->ai_addrlen <= sizeof(ss)) {
			memset(&ss, 0, sizeof(ss));
			memcpy(&ss, pick->ai_addr, pick->ai_addrlen);
			sl = pick->ai_addrlen;
			ttl = pick->ai_ttl;
			err = 0;
		}
		uint64_t ms = ttl > 0 ? (uint64_t)ttl * 1000u : DNS_MIN_TTL_MS;
		if (ms < DNS_MIN_TTL_MS)
			ms = DNS_MIN_TTL_MS;
		if (ms > DNS_MAX_TTL_MS)
			ms = DNS_MAX_TTL_MS;
		if (!err && status != ARES_EDESTRUCTION) {
			snprintf(ce->host, sizeof(ce->host), "%s", rq->host);
			ce->addr = ss;
			ce->addrlen = sl;
			ce->err = 0;
			ce->expires = s->now + ms;
		}
	} else if (status != ARES_EDESTRUCTION && status != ARES_ECANCELLED) {
		snprintf(ce->host, sizeof(ce->host), "%s", rq->host);
		ce->err = err;
		ce->expires = s->now + DNS_NEG_TTL_MS;
	}
	if (res)
		ares_freeaddrinfo(res);
	if (status != ARES_EDESTRUCTION)
		deliver(s, rq->idx, rq->gen, err, &ss, sl, rq->port);
	free(rq);
}

void dns_resolve(struct shard *s, struct sess *x, const char *host,
		 uint16_t port)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	uint32_t idx = sess_idx(s, x), gen = x->gen;
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		deliver(s, idx, gen, 0, &ss, sizeof(*a4), port);
		return;
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		deliver(s, idx, gen, 0, &ss, sizeof(*a6), port);
		return;
	}
	struct dns_cache_ent *ce = cache_slot(s, host);
	if (ce->expires > s->now && strcmp(ce->host, host) == 0) {
		ss = ce->addr;
		deliver(s, idx, gen, ce->err, &ss, ce->addrlen, port);
		return;
	}
	struct dns_req *rq = calloc(1, sizeof(*rq));
	if (!rq) {
		deliver(s, idx, gen, -ENOMEM, &ss, 0, port);
		return;
	}
	rq->s = s;
	rq->idx = idx;
	rq->gen = gen;
	rq->port = port;
	snprintf(rq->host, sizeof(rq->host), "%s", host);
	struct ares_addrinfo_hints hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	ares_getaddrinfo(s->ares, rq->host, NULL, &hints, addrinfo_cb, rq);
}

/* ---- connect ---- */

void upstream_connect(struct shard *s, struct sess *x,
		      const struct sockaddr *sa, socklen_t salen)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		session_on_connect(s, x, -errno);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (s->cfg->spoof_source && x->caddr.ss_family == sa->sa_family) {
		/* leave with the client's address (TPROXY routing brings the
		 * answers back to us): IP_TRANSPARENT, bind, then connect */
		struct sockaddr_storage src = x->caddr;
		if (src.ss_family == AF_INET)
			((struct sockaddr_in *)&src)->sin_port = 0;
		else
			((struct sockaddr_in6 *)&src)->sin6_port = 0;
		int lvl = sa->sa_family == AF_INET6 ? SOL_IPV6 : SOL_IP;
		int opt = sa->sa_family == AF_INET6 ? IPV6_TRANSPARENT : IP_TRANSPARENT;
		if (setsockopt(fd, lvl, opt, &one, sizeof(one)) < 0 ||
		    bind(fd, (struct sockaddr *)&src,
			 src.ss_family == AF_INET ? sizeof(struct sockaddr_in)
						  : sizeof(struct sockaddr_in6)) < 0) {
			int err = -errno;
			close(fd);
			session_on_connect(s, x, err);
			return;
		}
	}
	x->u.fd = fd;
	x->u_ep_fd = -1;
	if ((const void *)sa != (const void *)&x->up_addr)
		memcpy(&x->up_addr, sa, salen);
	x->up_addrlen = salen;
	struct io_uring_sqe *sqe = shard_sqe(s);
	io_uring_prep_connect(sqe, fd, (struct sockaddr *)&x->up_addr, salen);
	io_uring_sqe_set_data64(sqe, ud_make(OP_CONNECT, x->gen, sess_idx(s, x)));
	x->inflight++; /* up_addr lives in the session until the CQE */
}

/* ---- keep-alive pool ---- */

static void pool_arm(struct shard *s, uint32_t i)
{
	struct pool_ent *e = &s->pool[i];
	struct io_uring_sqe *sqe = shard_sqe(s);
	io_uring_prep_poll_add(sqe, e->fd, POLLIN | POLLRDHUP);
	io_uring_sqe_set_data64(sqe, ud_make(OP_POOLPOLL, e->gen, i));
	e->polling = true;
}

static void pool_ent_drop_tls(struct pool_ent *e)
{
	SSL_free(e->ssl);
	free(e->tls_obuf);
	e->ssl = NULL;
	e->tls_obuf = NULL;
	e->ktls = false;
}

int pool_take(struct shard *s, const char *host, uint16_t port, bool want_tls,
	      const char *sni, struct side *side, struct up_facts *facts,
	      bool *has_facts)
{
	for (uint32_t i = 0; i < s->npool; i++) {
		struct pool_ent *e = &s->pool[i];
		if (e->fd < 0 || e->taken || e->port != port ||
		    (e->ssl != NULL) != want_tls || strcmp(e->host, host) != 0 ||
		    (want_tls && strcmp(e->sni, sni) != 0))
			continue;
		int fd = e->fd;
		e->fd = -1;
		*has_facts = e->has_facts;
		if (e->has_facts)
			*facts = e->facts;
		if (e->ssl) { /* the TLS session goes with the socket */
			side->ssl = e->ssl;
			side->rbio = SSL_get_rbio(e->ssl);
			side->wbio = SSL_get_wbio(e->ssl);
			side->tls_obuf = e->tls_obuf;
			side->hs_done = true;
			side->hs_failed = side->want = side->plain_pending = false;
			side->ktls = e->ktls;
			e->ssl = NULL;
			e->tls_obuf = NULL;
		}
		if (e->polling) {
			e->taken = true;
			struct io_uring_sqe *sqe = shard_sqe(s);
			io_uring_prep_poll_remove(sqe,
						  ud_make(OP_POOLPOLL, e->gen, i));
			io_uring_sqe_set_data64(sqe, ud_make(OP_IGNORE, 0, 0));
		}
		return fd;
	}
	return -1;
}

void pool_put(struct shard *s, int fd, const char *host, uint16_t port,
	      const char *sni, struct side *side, const struct up_facts *facts)
{
	/* plaintext decrypted before a kTLS offload and never read */
	for (uint32_t i = 0; i < s->npool && !side->pre; i++) {
		struct pool_ent *e = &s->pool[i];
		if (e->fd >= 0 || e->polling)
			continue;
		e->gen = (e->gen + 1) & 0xffffff;
		e->fd = fd;
		e->taken = false;
		e->port = port;
		e->since = s->now;
		snprintf(e->host, sizeof(e->host), "%s", host);
		snprintf(e->sni, sizeof(e->sni), "%s", sni);
		e->has_facts = facts != NULL;
		if (facts)
			e->facts = *facts;
		e->ssl = side->ssl;
		e->tls_obuf = side->tls_obuf;
		e->ktls = side->ktls;
		side->ssl = NULL;
		side->rbio = side->wbio = NULL;
		side->tls_obuf = NULL;
		side->ktls = false;
		/* Watched for the server closing it only once it has been
		 * idle a while (pool_tick): a connection taken again within
		 * milliseconds (HTTP/2 streams, busy pools) costs no poll
		 * add/remove; a stale one is caught by the one retry. */
		return;
	}
	close(fd); /* pool full */
	tls_side_free(side);
}

void pool_tick(struct shard *s)
{
	for (uint32_t i = 0; i < s->npool; i++) {
		struct pool_ent *e = &s->pool[i];
		if (e->fd >= 0 && !e->polling && !e->taken &&
		    s->now - e->since >= POOL_WATCH_AFTER_MS)
			pool_arm(s, i);
	}
}

void pool_on_poll(struct shard *s, uint32_t slot, uint32_t gen, int res)
{
	if (slot >= s->npool)
		return;
	struct pool_ent *e = &s->pool[slot];
	if (e->gen != gen)
		return;
	e->polling = false;
	if (e->taken) { /* the fd went to a session */
		e->taken = false;
		return;
	}
	if (e->fd >= 0) {
		/* The server closed its idle connection (or spoke out of
		 * turn): drop it. */
		close(e->fd);
		e->fd = -1;
		pool_ent_drop_tls(e);
	}
}

void pool_close_all(struct shard *s)
{
	for (uint32_t i = 0; s->pool && i < s->npool; i++) {
		struct pool_ent *e = &s->pool[i];
		if (e->fd < 0)
			continue;
		if (e->polling && !s->exited) {
			struct io_uring_sqe *sqe = shard_sqe(s);
			io_uring_prep_poll_remove(sqe,
						  ud_make(OP_POOLPOLL, e->gen, i));
			io_uring_sqe_set_data64(sqe, ud_make(OP_IGNORE, 0, 0));
		}
		close(e->fd);
		e->fd = -1;
		pool_ent_drop_tls(e);
		e->gen = (e->gen + 1) & 0xffffff;
		e->polling = false;
	}
}
