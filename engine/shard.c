/* SPDX-License-Identifier: MIT */
/* One shard: a thread with its own io_uring, listeners, provided-buffer
 * ring, session slab and timers. Completions are dispatched on user_data
 * (op | generation | slot); the HTTP logic lives in session.c. */
#include "engine/shard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/rc_time.h"
#include "crypto/leaf.h"

#define TICK_MS 100
#define TICK_FAST_MS 1

const char *op_str(enum op op)
{
	static const char *const names[OP_COUNT] = {
		"accept", "crecv", "csend", "urecv", "usend", "connect",
		"cancel", "tick", "wake", "poolpoll", "dnspoll", "dnsudp",
		"ignore",
	};
	return op < OP_COUNT ? names[op] : "?";
}

struct io_uring_sqe *shard_sqe(struct shard *s)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
	if (!sqe) {
		/* SQ full: push what we have and try again. */
		io_uring_submit(&s->ring);
		sqe = io_uring_get_sqe(&s->ring);
	}
	if (!sqe) {
		fprintf(stderr, "ringcap: shard %u: submission queue stuck\n",
			s->id);
		abort();
	}
	return sqe;
}

/* ---- sessions: slab and lifetime ---- */

static struct sess *sess_alloc(struct shard *s)
{
	uint32_t idx;
	if (s->nfree)
		idx = s->free_idx[--s->nfree];
	else if (s->nsess < s->max_sess)
		idx = s->nsess++;
	else
		return NULL;
	struct sess *x = &s->sess[idx];
	uint32_t gen = x->gen + 1;
	memset(x, 0, sizeof(*x));
	x->gen = gen & 0xffffff;
	x->c.fd = -1;
	x->u.fd = -1;
	x->u_ep_fd = -1;
	x->next = s->active;
	if (s->active)
		s->active->prev = x;
	s->active = x;
	return x;
}

static void sess_free(struct shard *s, struct sess *x)
{
	if (x->c.fd >= 0) {
		close(x->c.fd);
		atomic_fetch_sub_explicit(&s->st.conns_open, 1,
					  memory_order_relaxed);
	}
	if (x->u.fd >= 0)
		close(x->u.fd);
	for (int up = 0; up < 2; up++) {
		struct side *sd = up ? &x->u : &x->c;
		for (unsigned i = 0; i < sd->qn; i++)
			shard_return_buf(s, sd->q[(sd->qhead + i) % SIDE_QN].bid);
		sd->qn = 0;
	}
	tls_side_free(&x->c);
	tls_side_free(&x->u);
	if (x->v_due)
		h2_unready(s, x);
	h2conn_free(x->h2);
	h2up_free(x->h2u);
	free(x->h2u_out);
	free(x->h2_link);
	free(x->h2_out);
	free(x->c.in.p);
	free(x->u.in.p);
	free(x->obuf);
	session_free_capture(x);
	if (x->prev)
		x->prev->next = x->next;
	else
		s->active = x->next;
	if (x->next)
		x->next->prev = x->prev;
	uint32_t gen = x->gen;
	memset(x, 0, sizeof(*x));
	x->gen = gen;
	x->c.fd = x->u.fd = -1;
	s->free_idx[s->nfree++] = sess_idx(s, x);
}

struct sess *shard_sess_new(struct shard *s)
{
	return sess_alloc(s);
}

void sess_close(struct shard *s, struct sess *x)
{
	if (x->flags & SF_CLOSING)
		return;
	x->flags |= SF_CLOSING;
	if (x->h2)
		h2_conn_closing(s, x);
	if (sess_is_stream(x))
		h2_stream_closing(s, x);
	int fds[2] = {x->c.fd, x->u.fd};
	for (int i = 0; i < 2; i++) {
		if (fds[i] < 0)
			continue;
		/* Cancel whatever still waits on this socket; the slot is
		 * freed (and the fds closed) when the last completion is in. */
		shutdown(fds[i], SHUT_RDWR);
		if (x->inflight) {
			struct io_uring_sqe *sqe = shard_sqe(s);
			io_uring_prep_cancel_fd(sqe, fds[i],
						IORING_ASYNC_CANCEL_ALL);
			io_uring_sqe_set_data64(
				sqe, ud_make(OP_CANCEL, x->gen, sess_idx(s, x)));
			x->inflight++;
		}
	}
	if (x->inflight == 0)
		sess_free(s, x);
}

void sess_arm_recv(struct shard *s, struct sess *x, bool upstream)
{
	struct side *sd = upstream ? &x->u : &x->c;
	if (!upstream && sess_is_stream(x)) {
		h2_stream_arm_recv(s, x);
		return;
	}
	if (upstream && x->u_virtual) {
		h2_stream_uarm_recv(s, x);
		return;
	}
	if (sd->ssl) {
		tls_want(s, x, upstream);
		return;
	}
	sess_arm_socket_recv(s, x, upstream);
}

void sess_arm_socket_recv(struct shard *s, struct sess *x, bool upstream)
{
	struct side *sd = upstream ? &x->u : &x->c;
	if (sd->recv_armed || sd->eof || sd->fd < 0 || (x->flags & SF_CLOSING))
		return;
	struct io_uring_sqe *sqe = shard_sqe(s);
	if (sd->ktls) { /* recvmsg: the record type comes as a cmsg */
		ktls_prep_recv(sqe, sd->fd, &sd->krx, SHARD_BUF_SIZE, SHARD_BGID);
	} else {
		io_uring_prep_recv(sqe, sd->fd, NULL, SHARD_BUF_SIZE, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = SHARD_BGID;
	}
	io_uring_sqe_set_data64(sqe, ud_make(upstream ? OP_URECV : OP_CRECV,
					     x->gen, sess_idx(s, x)));
	sd->recv_armed = true;
	x->inflight++;
}

static void submit_send(struct shard *s, struct sess *x, bool to_upstream)
{
	struct side *sd = to_upstream ? &x->u : &x->c;
	struct io_uring_sqe *sqe = shard_sqe(s);
	io_uring_prep_send(sqe, sd->fd, sd->sendp, sd->sendlen, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ud_make(to_upstream ? OP_USEND : OP_CSEND,
					     x->gen, sess_idx(s, x)));
	sd->sock_busy = true;
	if (!side_tls_userspace(sd))
		sd->send_armed = true;
	x->inflight++;
}

void sess_send(struct shard *s, struct sess *x, bool to_upstream,
	       const char *p, uint32_t len)
{
	struct side *sd = to_upstream ? &x->u : &x->c;
	if (!to_upstream && sess_is_stream(x)) {
		h2_stream_send(s, x, p, len);
		return;
	}
	if (to_upstream && x->u_virtual) {
		h2_stream_usend(s, x, p, len);
		return;
	}
	if (side_tls_userspace(sd)) {
		sd->send_armed = true; /* the session's send is out */
		tls_send(s, x, to_upstream, p, len);
		return;
	}
	sess_socket_send(s, x, to_upstream, p, len);
}

void sess_socket_send(struct shard *s, struct sess *x, bool to_upstream,
		      const char *p, uint32_t len)
{
	struct side *sd = to_upstream ? &x->u : &x->c;
	sd->sendp = p;
	sd->sendlen = len;
	submit_send(s, x, to_upstream);
}

/* ---- listeners ---- */

static int listen_on(const char *host, uint16_t port, bool transparent,
		     char *what, size_t what_len)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	int family;
	if (!host[0]) {
		family = AF_INET6;
		a6->sin6_family = AF_INET6;
		a6->sin6_addr = in6addr_any;
		a6->sin6_port = htons(port);
		sl = sizeof(*a6);
	} else if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		family = AF_INET;
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		sl = sizeof(*a4);
	} else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		family = AF_INET6;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		sl = sizeof(*a6);
	} else {
		snprintf(what, what_len,
			 "--listen-host %s: not a numeric IPv4/IPv6 address",
			 host);
		return -EINVAL;
	}
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 && !host[0]) { /* no IPv6: fall back to IPv4 any */
		family = AF_INET;
		memset(&ss, 0, sizeof(ss));
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		sl = sizeof(*a4);
		fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	}
	if (fd < 0)
		return -errno;
	int one = 1, zero = 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (family == AF_INET6 && !host[0])
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (transparent &&
	    setsockopt(fd, family == AF_INET6 ? SOL_IPV6 : SOL_IP,
		       family == AF_INET6 ? IPV6_TRANSPARENT : IP_TRANSPARENT,
		       &one, sizeof(one)) < 0) {
		int err = -errno;
		snprintf(what, what_len,
			 "transparent_method=tproxy needs IP_TRANSPARENT "
			 "(CAP_NET_ADMIN): %s", strerror(-err));
		close(fd);
		return err;
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 4096) < 0) {
		int err = -errno;
		snprintf(what, what_len, "cannot listen on %s:%u: %s",
			 host[0] ? host : "*", port, strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

static void arm_accept(struct shard *s, unsigned li)
{
	struct io_uring_sqe *sqe = shard_sqe(s);
	io_uring_prep_multishot_accept(sqe, s->listeners[li].fd, NULL, NULL,
				       SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, ud_make(OP_ACCEPT, 0, li));
	s->listeners[li].armed = true;
}

static bool addr_is_loopback(const struct sockaddr_storage *sa)
{
	if (sa->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return false;
}

/* Is |sa| an address block_global lets in (loopback, private, link-local)? */
static bool addr_is_local(const struct sockaddr_storage *sa)
{
	if (sa->ss_family == AF_INET6) {
		const struct in6_addr *a =
			&((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a)) {
			struct sockaddr_storage v4;
			memset(&v4, 0, sizeof(v4));
			v4.ss_family = AF_INET;
			memcpy(&((struct sockaddr_in *)&v4)->sin_addr,
			       &a->s6_addr[12], 4);
			return addr_is_local(&v4);
		}
		return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
		       (a->s6_addr[0] & 0xfe) == 0xfc;
	}
	if (sa->ss_family != AF_INET)
		return true; /* unix sockets and the like */
	uint32_t ip = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
	return (ip >> 24) == 127 || (ip >> 24) == 10 ||
	       (ip >> 20) == (172u << 4 | 1) || (ip >> 16) == (192u << 8 | 168) ||
	       (ip >> 16) == (169u << 8 | 254) || (ip >> 22) == (100u << 2 | 1) ||
	       ip == 0;
}

/* Transparent mode: where was the client going? REDIRECT keeps it in
 * conntrack (SO_ORIGINAL_DST); TPROXY leaves it as the socket's own local
 * address. A connection meant for ringcap itself is refused (a loop). */
static int original_dst(struct shard *s, unsigned li, int fd,
			struct sockaddr_storage *dst)
{
	socklen_t sl = sizeof(*dst);
	struct sockaddr_storage me;
	socklen_t ml = sizeof(me);
	int r;
	memset(dst, 0, sizeof(*dst));
	if (getsockname(fd, (struct sockaddr *)&me, &ml) < 0)
		return -errno;
	if (s->cfg->tproxy) {
		*dst = me;
		r = 0;
	} else if (me.ss_family == AF_INET6 &&
		   !IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&me)->sin6_addr)) {
		r = getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, dst, &sl);
	} else {
		struct sockaddr_in *d4 = (struct sockaddr_in *)dst;
		sl = sizeof(*d4);
		r = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, d4, &sl);
	}
	if (r < 0) {
		if (s->cfg->verbosity >= 0)
			fprintf(stderr,
				"ringcap: transparent mode: no original destination "
				"(%s); is the connection redirected (REDIRECT or "
				"TPROXY)?\n", strerror(errno));
		return -errno;
	}
	uint16_t dport = ntohs(dst->ss_family == AF_INET6
			       ? ((struct sockaddr_in6 *)dst)->sin6_port
			       : ((struct sockaddr_in *)dst)->sin_port);
	for (unsigned i = 0; i < s->nlisteners; i++) {
		if (dport != s->listeners[i].port)
			continue;
		bool same_addr = dst->ss_family == me.ss_family &&
			(dst->ss_family == AF_INET
				 ? ((struct sockaddr_in *)dst)->sin_addr.s_addr ==
					   ((struct sockaddr_in *)&me)->sin_addr.s_addr
				 : !memcmp(&((struct sockaddr_in6 *)dst)->sin6_addr,
					   &((struct sockaddr_in6 *)&me)->sin6_addr, 16));
		if (same_addr || addr_is_loopback(dst)) {
			if (s->cfg->verbosity >= 0)
				fprintf(stderr,
					"ringcap: transparent connection to ringcap's "
					"own listener (port %u) refused: it would loop\n",
					dport);
			return -ELOOP;
		}
	}
	(void)li;
	return 0;
}

static void on_accept(struct shard *s, struct io_uring_cqe *cqe)
{
	unsigned li = ud_slot(cqe->user_data);
	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		s->listeners[li].armed = false;
		if (!s->stopping && s->listeners[li].fd >= 0)
			arm_accept(s, li);
	}
	if (cqe->res < 0) {
		if (cqe->res != -ECANCELED && s->cfg->verbosity >= 1)
			fprintf(stderr, "ringcap: accept: %s\n",
				strerror(-cqe->res));
		return;
	}
	int fd = cqe->res;
	if (s->stopping) {
		close(fd);
		return;
	}
	struct sockaddr_storage peer;
	socklen_t pl = sizeof(peer);
	if (getpeername(fd, (struct sockaddr *)&peer, &pl) < 0) {
		close(fd);
		return;
	}
	if (s->cfg->block_global && !addr_is_local(&peer)) {
		atomic_fetch_add_explicit(&s->st.refused, 1,
					  memory_order_relaxed);
		if (s->cfg->verbosity >= 0) {
			char a[INET6_ADDRSTRLEN] = "?";
			const void *ap = peer.ss_family == AF_INET6
				? (const void *)&((struct sockaddr_in6 *)&peer)->sin6_addr
				: (const void *)&((struct sockaddr_in *)&peer)->sin_addr;
			inet_ntop(peer.ss_family, ap, a, sizeof(a));
			fprintf(stderr,
				"ringcap: refused client %s: public address "
				"(--set block_global=false to allow)\n", a);
		}
		close(fd);
		return;
	}
	struct sess *x = sess_alloc(s);
	if (!x) {
		close(fd);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (s->listeners[li].mode->kind == FLOW_MODE_TRANSPARENT &&
	    original_dst(s, li, fd, &x->orig_dst) < 0) {
		x->c.fd = fd;
		x->caddr = peer;
		atomic_fetch_add_explicit(&s->st.conns_open, 1,
					  memory_order_relaxed);
		sess_close(s, x);
		return;
	}
	x->c.fd = fd;
	x->caddr = peer;
	x->listener = (uint8_t)li;
	atomic_fetch_add_explicit(&s->st.conns_open, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->st.conns_total, 1, memory_order_relaxed);
	session_start(s, x);
}

/* ---- completions ---- */

void shard_uuid(struct shard *s, uint8_t id[16])
{
	/* xorshift128+ seeded from getrandom(), one state per shard thread:
	 * flow ids need to be unique, not secret. */
	static __thread uint64_t st[2];
	if (!st[0] && !st[1]) {
		if (getrandom(st, sizeof(st), 0) != sizeof(st))
			st[0] = rc_mono_ms() ^ (uint64_t)(uintptr_t)s,
			st[1] = 0x9e3779b97f4a7c15ull;
	}
	for (int i = 0; i < 2; i++) {
		uint64_t s1 = st[0], s0 = st[1];
		uint64_t r = s0 + s1;
		st[0] = s0;
		s1 ^= s1 << 23;
		st[1] = s1 ^ s0 ^ (s1 >> 18) ^ (s0 >> 5);
		memcpy(id + 8 * i, &r, 8);
	}
	id[6] = (id[6] & 0x0f) | 0x40;
	id[8] = (id[8] & 0x3f) | 0x80;
}

bool shard_should_record(struct shard *s, const struct flow *f)
{
	if (!s->save_filter || filter_match(s->save_filter, f, s->fscr))
		return true;
	atomic_fetch_add_explicit(&s->st.filtered, 1, memory_order_relaxed);
	return false;
}

void shard_return_buf(struct shard *s, unsigned bid)
{
	s->bufs_returned++;
	io_uring_buf_ring_add(s->br, s->bufs + (size_t)bid * SHARD_BUF_SIZE,
			      SHARD_BUF_SIZE, (unsigned short)bid,
			      io_uring_buf_ring_mask(SHARD_NBUFS), 0);
	io_uring_buf_ring_advance(s->br, 1);
}

static void on_recv(struct shard *s, struct sess *x, bool upstream,
		    struct io_uring_cqe *cqe)
{
	struct side *sd = upstream ? &x->u : &x->c;
	sd->recv_armed = false;
	if (cqe->flags & IORING_CQE_F_BUFFER) {
		unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		bool kept = false;
		if (!(x->flags & SF_CLOSING) && cqe->res > 0) {
			atomic_fetch_add_explicit(&s->st.bytes_in, cqe->res,
						  memory_order_relaxed);
			if (side_tls_userspace(sd))
				tls_on_cipher(s, x, upstream, shard_buf(s, bid),
					      cqe->res);
			else if (sd->ktls)
				kept = tls_ktls_on_recv(s, x, upstream,
							shard_buf(s, bid),
							cqe->res, (int)bid);
			else
				kept = session_on_recv(s, x, upstream,
						       shard_buf(s, bid),
						       cqe->res, (int)bid);
		}
		if (!kept)
			shard_return_buf(s, bid);
		return;
	}
	if (x->flags & SF_CLOSING)
		return;
	if (cqe->res == -ENOBUFS) {
		/* Every buffer is taken this instant: retry after the batch. */
		if (!x->c.nobuf && !x->u.nobuf) {
			x->park_next = s->nobuf;
			s->nobuf = x;
		}
		sd->nobuf = true;
		sd->recv_armed = true; /* keeps others from arming twice */
		return;
	}
	if (side_tls_userspace(sd))
		tls_on_cipher(s, x, upstream, NULL, cqe->res);
	else
		session_on_recv(s, x, upstream, NULL, cqe->res, -1);
}

static void on_send(struct shard *s, struct sess *x, bool upstream,
		    struct io_uring_cqe *cqe)
{
	struct side *sd = upstream ? &x->u : &x->c;
	sd->sock_busy = false;
	if (!side_tls_userspace(sd))
		sd->send_armed = false;
	if (x->flags & SF_CLOSING)
		return;
	int res = cqe->res;
	if (res > 0) {
		atomic_fetch_add_explicit(&s->st.bytes_out, res,
					  memory_order_relaxed);
		if ((uint32_t)res < sd->sendlen) {
			sd->sendp += res;
			sd->sendlen -= (uint32_t)res;
			submit_send(s, x, upstream);
			return;
		}
		sd->sendlen = 0;
		if (side_tls_userspace(sd))
			tls_on_sent(s, x, upstream);
		else
			session_on_sent(s, x, upstream);
		return;
	}
	/* The peer is gone (EPIPE, ECONNRESET). */
	sd->send_armed = false;
	session_on_send_error(s, x, upstream, res == 0 ? -EPIPE : res);
}

static void arm_tick(struct shard *s)
{
	static struct __kernel_timespec slow = {.tv_nsec = TICK_MS * 1000000L};
	static struct __kernel_timespec fast = {.tv_nsec = TICK_FAST_MS * 1000000L};
	struct io_uring_sqe *sqe = shard_sqe(s);
	s->tick_fast = s->parked != NULL;
	io_uring_prep_timeout(sqe, s->tick_fast ? &fast : &slow, 0, 0);
	io_uring_sqe_set_data64(sqe, ud_make(OP_TICK, 0, 0));
}

static void arm_wake(struct shard *s)
{
	struct io_uring_sqe *sqe = shard_sqe(s);
	io_uring_prep_read(sqe, s->wake_fd, &s->wake_val, sizeof(s->wake_val),
			   0);
	io_uring_sqe_set_data64(sqe, ud_make(OP_WAKE, 0, 0));
}

static void begin_stop(struct shard *s)
{
	if (!s->stopping) {
		s->stopping = true;
		s->grace_deadline = s->now + s->cfg->shutdown_grace_ms;
		for (unsigned i = 0; i < s->nlisteners; i++) {
			if (s->listeners[i].fd < 0)
				continue;
			struct io_uring_sqe *sqe = shard_sqe(s);
			io_uring_prep_cancel64(sqe, ud_make(OP_ACCEPT, 0, i), 0);
			io_uring_sqe_set_data64(sqe, ud_make(OP_IGNORE, 0, 0));
			close(s->listeners[i].fd);
			s->listeners[i].fd = -1;
		}
		pool_close_all(s);
		dns_mode_stop(s);
	} else {
		s->grace_deadline = s->now; /* second signal: no more grace */
	}
	for (struct sess *x = s->active, *n; x; x = n) {
		n = x->next;
		if (!(x->flags & SF_CLOSING))
			session_on_shutdown(s, x, s->now >= s->grace_deadline);
	}
}

static void rearm_nobuf(struct shard *s);

static void on_tick(struct shard *s)
{
	if (s->parked) {
		struct sess *list = s->parked;
		s->parked = NULL;
		for (struct sess *x = list, *n; x; x = n) {
			n = x->park_next;
			x->park_next = NULL;
			x->flags &= ~SF_PARKED;
			if (!(x->flags & SF_CLOSING))
				session_retry_parked(s, x);
		}
	}
	for (struct sess *x = s->active, *n; x; x = n) {
		n = x->next;
		if (!(x->flags & SF_CLOSING) && x->deadline &&
		    s->now >= x->deadline)
			session_on_timeout(s, x);
	}
	dns_tick(s);
	pool_tick(s);
	if (s->nobuf)
		rearm_nobuf(s);
	if (s->stopping && s->now >= s->grace_deadline)
		begin_stop(s);
	arm_tick(s);
}

static void dispatch(struct shard *s, struct io_uring_cqe *cqe)
{
	uint64_t ud = cqe->user_data;
	enum op op = ud_op(ud);
	switch (op) {
	case OP_ACCEPT:
		on_accept(s, cqe);
		return;
	case OP_TICK:
		on_tick(s);
		return;
	case OP_WAKE:
		begin_stop(s);
		if (cqe->res > 0)
			arm_wake(s);
		return;
	case OP_POOLPOLL:
		pool_on_poll(s, ud_slot(ud), ud_gen(ud), cqe->res);
		return;
	case OP_DNSPOLL:
		dns_on_poll(s, ud_slot(ud), ud_gen(ud), cqe->res);
		return;
	case OP_DNSUDP:
		dns_udp_on_recv(s, ud_slot(ud), cqe->res);
		return;
	case OP_IGNORE:
	case OP_COUNT:
		return;
	default:
		break;
	}
	uint32_t slot = ud_slot(ud);
	if (slot >= s->nsess || s->sess[slot].gen != ud_gen(ud)) {
		if (cqe->flags & IORING_CQE_F_BUFFER)
			shard_return_buf(s, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
		return; /* a completion for a slot that was reused */
	}
	struct sess *x = &s->sess[slot];
	x->inflight--;
	switch (op) {
	case OP_CRECV:
		on_recv(s, x, false, cqe);
		break;
	case OP_URECV:
		on_recv(s, x, true, cqe);
		break;
	case OP_CSEND:
		on_send(s, x, false, cqe);
		break;
	case OP_USEND:
		on_send(s, x, true, cqe);
		break;
	case OP_CONNECT:
		if (!(x->flags & SF_CLOSING))
			session_on_connect(s, x, cqe->res);
		break;
	default:
		break;
	}
	if ((x->flags & SF_CLOSING) && x->inflight == 0)
		sess_free(s, x);
}

static void rearm_nobuf(struct shard *s)
{
	struct sess *list = s->nobuf;
	s->nobuf = NULL;
	for (struct sess *x = list, *n; x; x = n) {
		n = x->park_next;
		x->park_next = NULL;
		if (x->flags & SF_CLOSING)
			continue;
		for (int up = 0; up < 2; up++) {
			struct side *sd = up ? &x->u : &x->c;
			if (sd->nobuf) {
				sd->nobuf = false;
				sd->recv_armed = false;
				sess_arm_socket_recv(s, x, up);
			}
		}
	}
}

static void *shard_main(void *arg)
{
	struct shard *s = arg;
	/* liburing 2.3 declares io_uring_enable_rings() but does not export
	 * it: register directly. */
	int er = (int)syscall(__NR_io_uring_register, s->ring.ring_fd,
			      IORING_REGISTER_ENABLE_RINGS, NULL, 0);
	if (er < 0)
		er = -errno;
	if (er < 0) {
		fprintf(stderr, "ringcap: shard %u: enabling io_uring: %s\n",
			s->id, strerror(-er));
		return NULL;
	}
	s->now = rc_mono_ms();
	for (unsigned i = 0; i < s->nlisteners; i++)
		arm_accept(s, i);
	dns_udp_start(s);
	arm_tick(s);
	arm_wake(s);
	for (;;) {
		if (s->stopping && !s->active)
			break;
		/* queued HTTP/2 stream work must not wait for a completion */
		int r = io_uring_submit_and_wait(&s->ring, s->vready ? 0 : 1);
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			fprintf(stderr, "ringcap: shard %u: io_uring: %s\n",
				s->id, strerror(-r));
			break;
		}
		s->now = rc_mono_ms();
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		io_uring_for_each_cqe(&s->ring, head, cqe)
		{
			dispatch(s, cqe);
			n++;
		}
		io_uring_cq_advance(&s->ring, n);
		if (s->vready)
			h2_run_ready(s);
		if (s->tls_ready)
			tls_run_ready(s);
		/* ENOBUFS waiters retry once buffers came back (or on tick). */
		if (s->nobuf && s->bufs_returned)
			rearm_nobuf(s);
		s->bufs_returned = 0;
	}
	return NULL;
}

/* ---- set-up ---- */

static int setup_ring(struct shard *s)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	/* Created disabled: SINGLE_ISSUER binds the ring to the thread that
	 * enables it, which is the shard's own (shard_main). */
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
		  IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
		  IORING_SETUP_R_DISABLED;
	int r = getenv("RINGCAP_NO_DEFER_TASKRUN")
		? -EINVAL
		: io_uring_queue_init_params(4096, &s->ring, &p);
	if (r == -EINVAL) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_R_DISABLED;
		r = io_uring_queue_init_params(4096, &s->ring, &p);
	}
	s->defer_taskrun = r == 0 && (p.flags & IORING_SETUP_DEFER_TASKRUN);
	return r;
}

static int setup_bufs(struct shard *s)
{
	size_t brsz = SHARD_NBUFS * sizeof(struct io_uring_buf);
	void *br = mmap(NULL, brsz, PROT_READ | PROT_WRITE,
			MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (br == MAP_FAILED)
		return -errno;
	s->br = br;
	io_uring_buf_ring_init(s->br);
	struct io_uring_buf_reg reg = {
		.ring_addr = (unsigned long)br,
		.ring_entries = SHARD_NBUFS,
		.bgid = SHARD_BGID,
	};
	int r = io_uring_register_buf_ring(&s->ring, &reg, 0);
	if (r)
		return r;
	/* Untouched pages cost no RSS: buffers are faulted in on use. */
	s->bufs = mmap(NULL, (size_t)SHARD_NBUFS * SHARD_BUF_SIZE,
		       PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1,
		       0);
	if (s->bufs == MAP_FAILED)
		return -errno;
	/* Hand out the low buffers first so the same few stay hot. */
	for (unsigned i = 0; i < SHARD_NBUFS; i++)
		io_uring_buf_ring_add(s->br, s->bufs + (size_t)i * SHARD_BUF_SIZE,
				      SHARD_BUF_SIZE, (unsigned short)i,
				      io_uring_buf_ring_mask(SHARD_NBUFS), (int)i);
	io_uring_buf_ring_advance(s->br, SHARD_NBUFS);
	return 0;
}

int shard_init(struct shard *s, unsigned id, const struct eng_config *cfg,
	       char *what, size_t what_len);
int shard_init(struct shard *s, unsigned id, const struct eng_config *cfg,
	       char *what, size_t what_len)
{
	s->id = id;
	s->cfg = cfg;
	s->wake_fd = -1;
	for (unsigned i = 0; i < ENG_MAX_MODES; i++)
		s->listeners[i].fd = -1;
	int r = setup_ring(s);
	if (r < 0) {
		snprintf(what, what_len, "io_uring setup failed: %s",
			 strerror(-r));
		return r;
	}
	r = setup_bufs(s);
	if (r < 0) {
		snprintf(what, what_len,
			 "io_uring provided buffers failed: %s", strerror(-r));
		return r;
	}
	s->max_sess = 65536;
	s->sess = mmap(NULL, sizeof(struct sess) * s->max_sess,
		       PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1,
		       0);
	s->free_idx = calloc(s->max_sess, sizeof(uint32_t));
	s->npool = cfg->upstream_pool_size;
	s->pool = calloc(s->npool ? s->npool : 1, sizeof(struct pool_ent));
	if (s->sess == MAP_FAILED || !s->free_idx || !s->pool) {
		snprintf(what, what_len, "out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < s->npool; i++)
		s->pool[i].fd = -1;
	s->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (s->wake_fd < 0)
		return -errno;
	if (cfg->capture) {
		s->frq = frq_create(cfg->capture_ring_size);
		if (!s->frq) {
			snprintf(what, what_len, "capture ring: out of memory");
			return -ENOMEM;
		}
	}
	r = dns_init(s);
	if (r < 0) {
		snprintf(what, what_len, "c-ares init failed");
		return r;
	}
	if (s->save_filter && !(s->fscr = filter_scratch_new(s->save_filter))) {
		snprintf(what, what_len, "out of memory");
		return -ENOMEM;
	}
	if (s->tls) {
		s->leaf_l1 = leaf_l1_new(s->tls->leaves, 256);
		if (!s->leaf_l1) {
			snprintf(what, what_len, "out of memory");
			return -ENOMEM;
		}
	}
	for (unsigned i = 0; i < cfg->nmodes; i++) {
		const struct eng_mode *m = &cfg->modes[i];
		uint16_t port = m->listen_port ? m->listen_port : cfg->listen_port;
		int fd = listen_on(cfg->listen_host, port,
				   m->kind == FLOW_MODE_TRANSPARENT && cfg->tproxy,
				   what, what_len);
		if (fd < 0)
			return fd;
		s->listeners[i].fd = fd;
		s->listeners[i].mode = m;
		s->listeners[i].port = port;
	}
	s->nlisteners = cfg->nmodes;
	for (unsigned i = 0; i < ENG_MAX_MODES; i++)
		s->udp[i].fd = -1;
	return dns_mode_init(s, what, what_len);
}

void shard_cleanup(struct shard *s);
void shard_cleanup(struct shard *s)
{
	for (unsigned i = 0; i < s->nlisteners; i++)
		if (s->listeners[i].fd >= 0)
			close(s->listeners[i].fd);
	if (s->sess && s->sess != MAP_FAILED) {
		while (s->active) {
			struct sess *x = s->active;
			x->inflight = 0;
			sess_free(s, x);
		}
		munmap(s->sess, sizeof(struct sess) * s->max_sess);
	}
	pool_close_all(s);
	dns_mode_destroy(s);
	dns_destroy(s);
	if (s->leaf_l1)
		leaf_l1_free(s->leaf_l1);
	filter_scratch_free(s->fscr);
	if (s->ring.ring_fd > 0)
		io_uring_queue_exit(&s->ring);
	if (s->bufs && s->bufs != MAP_FAILED)
		munmap(s->bufs, (size_t)SHARD_NBUFS * SHARD_BUF_SIZE);
	if (s->br)
		munmap(s->br, SHARD_NBUFS * sizeof(struct io_uring_buf));
	free(s->free_idx);
	free(s->pool);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	frq_destroy(s->frq);
}

int shard_start(struct shard *s);
int shard_start(struct shard *s)
{
	/* SINGLE_ISSUER: the ring belongs to the thread that submits first;
	 * nothing was submitted during set-up. */
	return -pthread_create(&s->thread, NULL, shard_main, s);
}

void shard_wake(struct shard *s);
void shard_wake(struct shard *s)
{
	uint64_t one = 1;
	if (write(s->wake_fd, &one, sizeof(one)) < 0)
		perror("ringcap: eventfd");
}
