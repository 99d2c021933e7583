/* SPDX-License-Identifier: MIT */
/* Kernel TLS on sockets: probe the kernel once, install a side's TLS 1.3
 * keys after its handshake (engine/tls.c decides when), and read a kTLS
 * socket with recvmsg so that non-data records (tickets, alerts) arrive
 * with their type instead of failing the read with EIO. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine/ktls.h"

#ifndef TCP_ULP
#define TCP_ULP 31
#endif
#ifndef SOL_TLS
#define SOL_TLS 282
#endif

/* A connected loopback pair; returns 0 or -errno with the step in why. */
static int loop_pair(int fds[2], char *why, size_t why_len)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	const char *step = "socket";
	fds[0] = fds[1] = -1;
	if (l < 0)
		goto out_err;
	step = "listen on 127.0.0.1";
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &al) < 0)
		goto out_err;
	step = "connect to 127.0.0.1";
	fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&a, al) < 0)
		goto out_err;
	fds[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (fds[1] < 0)
		goto out_err;
	close(l);
	return 0;
out_err:;
	int e = errno;
	snprintf(why, why_len, "probe: %s: %s", step, strerror(e));
	if (l >= 0)
		close(l);
	if (fds[0] >= 0)
		close(fds[0]);
	fds[0] = -1;
	return -e;
}

/* Can one socket take the ULP and TLS 1.3 keys of |suite| both ways? */
static int probe_suite(enum ktls_suite suite, char *why, size_t why_len)
{
	int fds[2];
	int r = loop_pair(fds, why, why_len);
	if (r < 0)
		return r;
	static const uint8_t key[KTLS_MAX_KEY], iv[KTLS_IV_LEN];
	union ktls_crypto_info ci;
	int len = ktls_crypto_info(suite, key, iv, 0, &ci);
	r = 0;
	if (setsockopt(fds[0], SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0) {
		r = -errno;
		snprintf(why, why_len,
			 "the kernel has no tls ULP (setsockopt TCP_ULP: %s%s)",
			 strerror(errno),
			 errno == ENOENT ? "; modprobe tls" : "");
	} else if (setsockopt(fds[0], SOL_TLS, TLS_TX, &ci, (socklen_t)len) < 0 ||
		   setsockopt(fds[0], SOL_TLS, TLS_RX, &ci, (socklen_t)len) < 0) {
		r = -errno;
		snprintf(why, why_len, "the kernel refuses TLS 1.3 %s keys: %s",
			 ktls_suite_str(suite), strerror(errno));
	}
	close(fds[0]);
	close(fds[1]);
	return r;
}

void ktls_probe(struct ktls_caps *caps, bool enabled, const char *off_reason)
{
	memset(caps, 0, sizeof(*caps));
	if (!enabled) {
		snprintf(caps->why, sizeof(caps->why), "%s",
			 off_reason ? off_reason : "turned off");
		return;
	}
	char why[200] = "";
	for (int s = KTLS_AES_128_GCM; s < KTLS_SUITE_COUNT; s++) {
		int r = probe_suite((enum ktls_suite)s, why, sizeof(why));
		if (r == 0)
			caps->suites |= 1u << s;
		else if (s == KTLS_AES_128_GCM && r == -ENOENT)
			break; /* no ULP: the others fail the same way */
	}
	caps->on = caps->suites != 0;
	if (!caps->on)
		snprintf(caps->why, sizeof(caps->why), "%s", why);
}

static atomic_bool logged;

void ktls_log_once(const char *why)
{
	if (!atomic_exchange(&logged, true))
		fprintf(stderr, "ringcap: kernel TLS not used: %s (TLS records "
				"run in userspace)\n", why);
}

int ktls_install(int fd, SSL *ssl, uint64_t rx_seq, char *why, size_t why_len)
{
	union ktls_crypto_info tx, rx;
	int len = 0;
	int r = ktls_ssl_info(ssl, 0, rx_seq, &tx, &rx, &len, why, why_len);
	if (r < 0)
		return r;
	if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0) {
		r = -errno;
		snprintf(why, why_len, "setsockopt TCP_ULP tls: %s",
			 strerror(errno));
	} else if (setsockopt(fd, SOL_TLS, TLS_TX, &tx, (socklen_t)len) < 0) {
		/* The ULP without keys passes bytes through: still usable. */
		r = -errno;
		snprintf(why, why_len, "setsockopt TLS_TX: %s", strerror(errno));
	} else if (setsockopt(fd, SOL_TLS, TLS_RX, &rx, (socklen_t)len) < 0) {
		r = KTLS_BROKEN;
		snprintf(why, why_len,
			 "setsockopt TLS_RX: %s (after TLS_TX: connection lost)",
			 strerror(errno));
	}
	OPENSSL_cleanse(&tx, sizeof(tx));
	OPENSSL_cleanse(&rx, sizeof(rx));
	return r;
}

void ktls_prep_recv(struct io_uring_sqe *sqe, int fd, struct ktls_rx *k,
		    unsigned len, uint16_t bgid)
{
	memset(k, 0, sizeof(*k));
	k->iov.iov_len = len;
	k->msg.msg_iov = &k->iov;
	k->msg.msg_iovlen = 1;
	k->msg.msg_control = k->c.buf;
	k->msg.msg_controllen = sizeof(k->c.buf);
	io_uring_prep_recvmsg(sqe, fd, &k->msg, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = bgid;
}

int ktls_record_type(const struct ktls_rx *k)
{
	/* Read the control buffer itself (zeroed before the recvmsg): it is
	 * there whether or not msg_controllen was written back. */
	const struct cmsghdr *c = &k->c.align;
	if (c->cmsg_level == SOL_TLS && c->cmsg_type == TLS_GET_RECORD_TYPE &&
	    c->cmsg_len >= CMSG_LEN(sizeof(uint8_t)))
		return *(const uint8_t *)CMSG_DATA(c);
	return KTLS_RT_DATA;
}

int ktls_check_handshake(const uint8_t *p, size_t n, char *why,
			 size_t why_len)
{
	size_t off = 0;
	while (off + 4 <= n) {
		uint8_t type = p[off];
		size_t len = (size_t)p[off + 1] << 16 | (size_t)p[off + 2] << 8 |
			     p[off + 3];
		if (type != 4 /* new_session_ticket */) {
			if (type == 24)
				snprintf(why, why_len,
					 "the peer sent a TLS KeyUpdate, which "
					 "kernel TLS cannot follow here "
					 "(--set ktls=false avoids it)");
			else
				snprintf(why, why_len,
					 "unexpected TLS handshake message %u "
					 "after the handshake", type);
			return -EPROTO;
		}
		off += 4 + len;
	}
	return 0;
}
