/* SPDX-License-Identifier: MIT */
/* DNS modes: `dns` answers A, AAAA and PTR through the system's resolver
 * (c-ares: hosts file, then resolv.conf) and forwards other types to the
 * system's servers; `reverse:dns://host[:port]` forwards every query to that
 * server. Queries arrive over UDP (a recvmsg on the shard's ring) or TCP (a
 * session in RQ_DNS); each one is a dns flow. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/rc_time.h"
#include "engine/shard.h"
#include "proto/dns.h"

#define DNS_UDP_BUF 65536u

struct dnsq {
	struct shard *s;
	unsigned mode_idx;
	int udp_fd;             /* answer with sendto() here; -1: TCP */
	uint32_t sess_idx, sess_gen;
	struct sockaddr_storage peer, local;
	socklen_t peerlen;
	uint16_t id;
	uint16_t udp_max;       /* 512, or the client's EDNS size */
	uint16_t qtype;
	double ts;
	char qname[DNS_NAME_TEXT_MAX];
	size_t qlen;
	uint8_t q[];            /* the query as received */
};

static const struct eng_mode *q_mode(const struct dnsq *q)
{
	return &q->s->cfg->modes[q->mode_idx];
}

static bool q_forward(const struct dnsq *q)
{
	return q_mode(q)->kind == FLOW_MODE_REVERSE;
}

/* "A 192.0.2.1, CNAME x" from an answer, for the flow record. */
static void summarize(const uint8_t *msg, size_t len, char *out, size_t cap,
		      int *rcode)
{
	static __thread struct dns_rr rrs[128];
	static __thread char text[16384];
	struct dns_msg m;
	size_t used = 0;
	out[0] = 0;
	*rcode = len >= 4 ? (msg[3] & 0x0f) : -1;
	dns_msg_init(&m, rrs, 128, text, sizeof(text));
	if (dns_parse(msg, len, &m, NULL) < 0)
		return;
	for (size_t i = 0; i < m.n_rrs && used + 1 < cap; i++) {
		const struct dns_rr *r = &m.rrs[i];
		char tn[16];
		if (r->section != DNS_SEC_ANSWER)
			continue;
		int n = snprintf(out + used, cap - used, "%s%s %s",
				 used ? ", " : "", dns_type_name(r->type, tn),
				 r->text ? r->text : "?");
		if (n < 0)
			break;
		used += (size_t)n < cap - used ? (size_t)n : cap - used - 1;
	}
}

/* |err|: why there is no answer when rlen == 0 (0: the server gave none). */
static void record(struct dnsq *q, const uint8_t *resp, size_t rlen, int err)
{
	struct shard *s = q->s;
	struct flow f;
	static __thread char answers[8192];
	int rcode = -1;
	memset(&f, 0, sizeof(f));
	if (rlen)
		summarize(resp, rlen, answers, sizeof(answers), &rcode);
	else
		answers[0] = 0;
	double now = rc_wall_now();
	shard_uuid(s, f.id);
	f.type = FLOW_DNS;
	f.mode = q_mode(q)->kind;
	f.term = rlen ? FLOW_TERM_OK : FLOW_TERM_UPSTREAM_ERROR;
	session_endpoint(&f.client.peer, &q->peer);
	session_endpoint(&f.client.local, &q->local);
	f.client.ts_start = q->ts;
	f.client.ts_end = now;
	f.has_dns = true;
	f.dns.query = (struct rc_str){(const char *)q->q, (uint32_t)q->qlen};
	f.dns.response = (struct rc_str){(const char *)resp, (uint32_t)rlen};
	f.dns.qname = (struct rc_str){q->qname, (uint32_t)strlen(q->qname)};
	f.dns.qtype = q->qtype;
	f.dns.rcode = (int16_t)rcode;
	f.dns.answers = (struct rc_str){answers, (uint32_t)strlen(answers)};
	f.dns.tcp = q->udp_fd < 0;
	f.dns.ts_query = q->ts;
	f.dns.ts_response = rlen ? now : 0;
	if (q_forward(q)) {
		f.has_server = true;
		snprintf(f.server.peer.addr, sizeof(f.server.peer.addr), "%s",
			 q_mode(q)->host);
		f.server.peer.port = q_mode(q)->port;
		f.server.ts_start = q->ts;
	}
	if (!rlen) {
		f.has_error = true;
		f.err.code = err ? err : RC_ENG_UPSTREAM_IO;
		f.err.msg = err ? (struct rc_str){rc_strerror(err),
						 (uint32_t)strlen(rc_strerror(err))}
				: RC_STR("no answer from the DNS server");
		f.err.ts = now;
		f.term = err ? FLOW_TERM_CLIENT_ERROR : FLOW_TERM_UPSTREAM_ERROR;
	}
	atomic_fetch_add_explicit(&s->st.flows, 1, memory_order_relaxed);
	if (f.has_error)
		atomic_fetch_add_explicit(&s->st.flow_errors, 1,
					  memory_order_relaxed);
	if (!s->frq || !shard_should_record(s, &f))
		return;
	size_t need = flow_encoded_size(&f);
	void *p = frq_reserve(s->frq, need);
	/* A query cannot wait for ring space the way a connection can: a
	 * full ring drops the record, counted. */
	if (!p || flow_encode(&f, p, need) < 0) {
		atomic_fetch_add_explicit(&s->st.dropped, 1, memory_order_relaxed);
		return;
	}
	frq_commit(s->frq, need);
	atomic_fetch_add_explicit(&s->st.captured, 1, memory_order_relaxed);
}

/* Send |resp| to the client (truncated for UDP if it must be), record the
 * flow and free |q|. */
static void deliver(struct dnsq *q, const uint8_t *resp, size_t rlen)
{
	struct shard *s = q->s;
	uint8_t tmp[512];
	if (q->udp_fd >= 0) {
		const uint8_t *out = resp;
		size_t olen = rlen;
		if (rlen > q->udp_max) {
			/* too big for UDP: header and question with TC set,
			 * the client asks again over TCP */
			struct dns_msg m;
			ssize_t n = -1;
			dns_msg_init(&m, NULL, 0, NULL, 0);
			if (dns_parse(q->q, q->qlen, &m, NULL) == 0)
				n = dns_write_response(tmp, sizeof(tmp), &m,
						       resp[3] & 0x0f, NULL, 0);
			if (n > 3) {
				tmp[2] |= 0x02;
				out = tmp;
				olen = (size_t)n;
			}
		}
		if (sendto(q->udp_fd, out, olen, MSG_DONTWAIT,
			   (struct sockaddr *)&q->peer, q->peerlen) > 0)
			atomic_fetch_add_explicit(&s->st.bytes_out, olen,
						  memory_order_relaxed);
	} else if (q->sess_idx < s->nsess) {
		struct sess *x = &s->sess[q->sess_idx];
		if (x->gen == q->sess_gen && !(x->flags & SF_CLOSING))
			session_dns_answer(s, x, resp, rlen);
	}
	record(q, resp, rlen, 0);
	free(q);
}

static void answer_rcode(struct dnsq *q, uint8_t rcode)
{
	uint8_t out[600];
	ssize_t n = dns_write_error(out, sizeof(out), q->q, q->qlen, rcode);
	if (n <= 0) { /* too short to answer (no id): record, send nothing */
		record(q, NULL, 0, RC_DNS_TRUNCATED);
		free(q);
		return;
	}
	deliver(q, out, (size_t)n);
}

static void send_cb(void *arg, int status, int timeouts, unsigned char *abuf,
		    int alen)
{
	struct dnsq *q = arg;
	(void)timeouts;
	if (status == ARES_EDESTRUCTION) {
		free(q);
		return;
	}
	/* NOCHECKRESP: an answer with any rcode (REFUSED, SERVFAIL...)
	 * reaches us as it is and goes to the client unchanged */
	if (!abuf || alen < 12) {
		answer_rcode(q, DNS_RCODE_SERVFAIL);
		return;
	}
	/* c-ares asked with its own id: the client gets its own back */
	abuf[0] = (uint8_t)(q->id >> 8);
	abuf[1] = (uint8_t)q->id;
	deliver(q, abuf, (size_t)alen);
}

/* An answer built from resolved addresses or names. */
static void answer_records(struct dnsq *q, uint8_t rcode,
			   const struct dns_rr *rrs, size_t n)
{
	struct dns_msg m;
	uint8_t out[4096];
	dns_msg_init(&m, NULL, 0, NULL, 0);
	ssize_t len = -1;
	if (dns_parse(q->q, q->qlen, &m, NULL) == 0)
		len = dns_write_response(out, sizeof(out), &m, rcode, rrs, n);
	if (len < 0) {
		answer_rcode(q, DNS_RCODE_SERVFAIL);
		return;
	}
	deliver(q, out, (size_t)len);
}

static uint8_t rcode_for(int status)
{
	return status == ARES_ENOTFOUND ? DNS_RCODE_NXDOMAIN
	       : status == ARES_ENODATA ? DNS_RCODE_NOERROR
					 : DNS_RCODE_SERVFAIL;
}

static void addrinfo_cb(void *arg, int status, int timeouts,
			struct ares_addrinfo *res)
{
	struct dnsq *q = arg;
	struct dns_rr rrs[32];
	size_t n = 0;
	(void)timeouts;
	if (status == ARES_EDESTRUCTION) {
		if (res)
			ares_freeaddrinfo(res);
		free(q);
		return;
	}
	if (status == ARES_SUCCESS && res) {
		int want = q->qtype == DNS_TYPE_AAAA ? AF_INET6 : AF_INET;
		for (struct ares_addrinfo_node *a = res->nodes; a && n < 32;
		     a = a->ai_next) {
			if (a->ai_family != want)
				continue;
			struct dns_rr *r = &rrs[n++];
			memset(r, 0, sizeof(*r));
			r->type = q->qtype;
			r->ttl = a->ai_ttl > 0 ? (uint32_t)a->ai_ttl : 60;
			if (want == AF_INET) {
				r->rdata = (const uint8_t *)&((struct sockaddr_in *)
							      a->ai_addr)->sin_addr;
				r->rdlen = 4;
			} else {
				r->rdata = (const uint8_t *)&((struct sockaddr_in6 *)
							      a->ai_addr)->sin6_addr;
				r->rdlen = 16;
			}
		}
	}
	answer_records(q, status == ARES_SUCCESS ? DNS_RCODE_NOERROR
						 : rcode_for(status),
		       n ? rrs : NULL, n);
	if (res)
		ares_freeaddrinfo(res);
}

static void hostbyaddr_cb(void *arg, int status, int timeouts,
			  struct hostent *h)
{
	struct dnsq *q = arg;
	(void)timeouts;
	if (status == ARES_EDESTRUCTION) {
		free(q);
		return;
	}
	if (status != ARES_SUCCESS || !h || !h->h_name) {
		answer_records(q, rcode_for(status), NULL, 0);
		return;
	}
	struct dns_rr r;
	memset(&r, 0, sizeof(r));
	r.type = DNS_TYPE_PTR;
	r.ttl = 60;
	r.text = h->h_name;
	answer_records(q, DNS_RCODE_NOERROR, &r, 1);
}

/* Answer |q| (parsed already): resolve or forward. Takes ownership. */
static void dnsq_run(struct dnsq *q)
{
	struct shard *s = q->s;
	if (q_forward(q)) {
		ares_send(s->dns_fwd[q->mode_idx], q->q, (int)q->qlen, send_cb, q);
		return;
	}
	if (q->qtype == DNS_TYPE_A || q->qtype == DNS_TYPE_AAAA) {
		struct ares_addrinfo_hints hints;
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = q->qtype == DNS_TYPE_A ? AF_INET : AF_INET6;
		ares_getaddrinfo(s->ares, q->qname, NULL, &hints, addrinfo_cb, q);
		return;
	}
	if (q->qtype == DNS_TYPE_PTR) {
		struct sockaddr_storage ss;
		if (dns_ptr_addr(q->qname, strlen(q->qname), &ss) < 0) {
			answer_records(q, DNS_RCODE_NXDOMAIN, NULL, 0);
			return;
		}
		const void *a = ss.ss_family == AF_INET
			? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
			: (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
		ares_gethostbyaddr(s->ares, a, ss.ss_family == AF_INET ? 4 : 16,
				   ss.ss_family, hostbyaddr_cb, q);
		return;
	}
	/* CNAME and the rest: ask the system's servers as is */
	ares_send(s->ares, q->q, (int)q->qlen, send_cb, q);
}

/* A query from a client. Answers malformed ones itself. */
static void dnsq_new(struct shard *s, unsigned mode_idx, int udp_fd,
		     struct sess *x, const uint8_t *msg, size_t len,
		     const struct sockaddr_storage *peer, socklen_t peerlen,
		     const struct sockaddr_storage *local)
{
	struct dnsq *q = calloc(1, sizeof(*q) + len);
	if (!q)
		return;
	q->s = s;
	q->mode_idx = mode_idx;
	q->udp_fd = udp_fd;
	if (x) {
		q->sess_idx = sess_idx(s, x);
		q->sess_gen = x->gen;
	}
	q->peer = *peer;
	q->peerlen = peerlen;
	if (local)
		q->local = *local;
	q->ts = rc_wall_now();
	q->qlen = len;
	memcpy(q->q, msg, len);
	q->id = len >= 2 ? (uint16_t)(msg[0] << 8 | msg[1]) : 0;
	q->udp_max = 512;

	struct dns_msg m;
	struct dns_rr rrs[8];
	char text[DNS_NAME_TEXT_MAX * 2];
	dns_msg_init(&m, rrs, 8, text, sizeof(text));
	int r = dns_parse(q->q, len, &m, NULL);
	if (r == 0)
		r = dns_check_query(&m);
	if (m.has_question && m.qname)
		snprintf(q->qname, sizeof(q->qname), "%s", m.qname);
	q->qtype = m.qtype;
	if (r < 0) {
		if (len >= 3 && (msg[2] & 0x80)) { /* a response: never answer */
			record(q, NULL, 0, RC_DNS_NOT_QUERY);
			free(q);
			return;
		}
		answer_rcode(q, r == RC_DNS_NOT_QUERY && m.opcode
					? DNS_RCODE_NOTIMP
					: DNS_RCODE_FORMERR);
		return;
	}
	if (m.has_edns && m.edns_udp_size > 512)
		q->udp_max = m.edns_udp_size > 4096 ? 4096 : m.edns_udp_size;
	dnsq_run(q);
}

void dns_tcp_query(struct shard *s, struct sess *x, const uint8_t *msg,
		   size_t len)
{
	struct sockaddr_storage local;
	socklen_t ll = sizeof(local);
	memset(&local, 0, sizeof(local));
	getsockname(x->c.fd, (struct sockaddr *)&local, &ll);
	const struct eng_mode *m = s->listeners[x->listener].mode;
	dnsq_new(s, (unsigned)(m - s->cfg->modes), -1, x, msg, len, &x->caddr,
		 sizeof(x->caddr), &local);
}

/* ---- UDP listeners ---- */

static void udp_arm(struct shard *s, unsigned i)
{
	struct dns_udp *u = &s->udp[i];
	memset(&u->msg, 0, sizeof(u->msg));
	u->iov.iov_base = u->buf;
	u->iov.iov_len = DNS_UDP_BUF;
	u->msg.msg_name = &u->from;
	u->msg.msg_namelen = sizeof(u->from);
	u->msg.msg_iov = &u->iov;
	u->msg.msg_iovlen = 1;
	struct io_uring_sqe *sqe = shard_sqe(s);
	io_uring_prep_recvmsg(sqe, u->fd, &u->msg, 0);
	io_uring_sqe_set_data64(sqe, ud_make(OP_DNSUDP, 0, i));
	u->armed = true;
}

void dns_udp_start(struct shard *s)
{
	for (unsigned i = 0; i < s->nudp; i++)
		udp_arm(s, i);
}

void dns_udp_on_recv(struct shard *s, unsigned i, int res)
{
	struct dns_udp *u = &s->udp[i];
	u->armed = false;
	if (u->fd < 0 || s->stopping)
		return;
	if (res > 0) {
		atomic_fetch_add_explicit(&s->st.bytes_in, res,
					  memory_order_relaxed);
		dnsq_new(s, u->mode_idx, u->fd, NULL, u->buf, (size_t)res,
			 &u->from, u->msg.msg_namelen, &u->local);
	}
	udp_arm(s, i);
}

static int udp_bind(const char *host, uint16_t port, struct sockaddr_storage *ss,
		    char *what, size_t what_len)
{
	socklen_t sl;
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	if (host[0] && inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		sl = sizeof(*a4);
	} else {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		if (host[0] && inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
			return -EINVAL;
		sl = sizeof(*a6);
	}
	int fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1, zero = 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (ss->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, (struct sockaddr *)ss, sl) < 0) {
		int err = -errno;
		snprintf(what, what_len, "cannot listen on UDP %s:%u: %s",
			 host[0] ? host : "*", port, strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

int dns_mode_init(struct shard *s, char *what, size_t what_len)
{
	const struct eng_config *cfg = s->cfg;
	for (unsigned i = 0; i < cfg->nmodes; i++) {
		const struct eng_mode *m = &cfg->modes[i];
		if (strcmp(m->scheme, "dns"))
			continue;
		if (m->kind == FLOW_MODE_REVERSE) {
			/* this mode's own channel, asking only its server */
			struct ares_options o;
			memset(&o, 0, sizeof(o));
			o.sock_state_cb = dns_sock_state_cb;
			o.sock_state_cb_data = s;
			o.timeout = 2000;
			o.tries = 2;
			o.flags = ARES_FLAG_NOCHECKRESP;
			if (ares_init_options(&s->dns_fwd[i], &o,
					      ARES_OPT_SOCK_STATE_CB |
						      ARES_OPT_TIMEOUTMS |
						      ARES_OPT_TRIES |
						      ARES_OPT_FLAGS) != ARES_SUCCESS) {
				snprintf(what, what_len, "c-ares init failed");
				return -ENOMEM;
			}
			char csv[300];
			snprintf(csv, sizeof(csv),
				 strchr(m->host, ':') ? "[%s]:%u" : "%s:%u",
				 m->host, m->port);
			if (ares_set_servers_ports_csv(s->dns_fwd[i], csv) !=
			    ARES_SUCCESS) {
				snprintf(what, what_len,
					 "--mode %s: not a DNS server address "
					 "(give an IP address)", m->spec);
				return -EINVAL;
			}
		}
		struct dns_udp *u = &s->udp[s->nudp];
		u->buf = malloc(DNS_UDP_BUF);
		if (!u->buf)
			return -ENOMEM;
		uint16_t port = m->listen_port ? m->listen_port : cfg->listen_port;
		int fd = udp_bind(cfg->listen_host, port, &u->local, what, what_len);
		if (fd < 0) {
			free(u->buf);
			u->buf = NULL;
			return fd;
		}
		u->fd = fd;
		u->mode_idx = i;
		s->nudp++;
	}
	return 0;
}

void dns_mode_destroy(struct shard *s)
{
	for (unsigned i = 0; i < ENG_MAX_MODES; i++) {
		if (s->dns_fwd[i])
			ares_destroy(s->dns_fwd[i]);
		s->dns_fwd[i] = NULL;
	}
	for (unsigned i = 0; i < s->nudp; i++) {
		if (s->udp[i].fd >= 0)
			close(s->udp[i].fd);
		free(s->udp[i].buf);
	}
	s->nudp = 0;
}

void dns_mode_stop(struct shard *s)
{
	for (unsigned i = 0; i < s->nudp; i++) {
		struct dns_udp *u = &s->udp[i];
		if (u->fd < 0)
			continue;
		struct io_uring_sqe *sqe = shard_sqe(s);
		io_uring_prep_cancel64(sqe, ud_make(OP_DNSUDP, 0, i), 0);
		io_uring_sqe_set_data64(sqe, ud_make(OP_IGNORE, 0, 0));
	}
}
