/* SPDX-License-Identifier: MIT */
/* TLS on a session side, in userspace: OpenSSL over memory BIOs, driven by
 * the shard's completions. Ciphertext arrives in provided buffers and goes
 * into the read BIO; plaintext is pulled only when the session asks for it
 * (sess_arm_recv), so a slow peer still holds back its sender; what SSL
 * writes is copied out of the write BIO and sent from the side's own
 * buffer, one send at a time.
 *
 * Kernel TLS: when a side's TLS 1.3 handshake is done and its last flight
 * has left, its keys go into the kernel (engine/ktls.c) and from then on
 * the side reads and writes plaintext on the socket like a plain one. The
 * record sequence numbers are known there: none of our application
 * records have been sent (our server side issues no session tickets), and
 * records that arrived after the handshake are decrypted here first and
 * counted. */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl3.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/shard.h"

#define TLS_OBUF 65536u
#define TLS_PULL 16384u

static bool want_recv_socket(struct side *sd)
{
	return !sd->recv_armed && !sd->eof && sd->fd >= 0;
}

/* Ask the socket for more ciphertext (the TLS layer's own recv). */
static void socket_recv(struct shard *s, struct sess *x, bool up)
{
	struct side *sd = up ? &x->u : &x->c;
	if (want_recv_socket(sd))
		sess_arm_socket_recv(s, x, up);
}

int tls_side_start(struct shard *s, struct sess *x, bool up, SSL *ssl)
{
	struct side *sd = up ? &x->u : &x->c;
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	sd->tls_obuf = malloc(TLS_OBUF);
	if (!rb || !wb || !sd->tls_obuf) {
		BIO_free(rb);
		BIO_free(wb);
		SSL_free(ssl);
		return -ENOMEM;
	}
	/* An empty read BIO means "retry later", not EOF. */
	BIO_set_mem_eof_return(rb, -1);
	SSL_set_bio(ssl, rb, wb);
	sd->ssl = ssl;
	sd->rbio = rb;
	sd->wbio = wb;
	sd->hs_done = false;
	/* Our application-data records must start at sequence 0 when the
	 * kernel takes over: no tickets from our server side. */
	if (SSL_is_server(ssl) && s->tls && s->tls->ktls.on)
		SSL_set_num_tickets(ssl, 0);
	/* Bytes the session already read (a ClientHello) are ciphertext. */
	uint32_t n = sd->in.wr - sd->in.rd;
	if (n) {
		BIO_write(rb, sd->in.p + sd->in.rd, (int)n);
		sd->in.rd = sd->in.wr = 0;
	}
	tls_handshake(s, x, up);
	return 0;
}

void tls_side_free(struct side *sd)
{
	if (sd->ssl)
		SSL_free(sd->ssl); /* frees the BIOs too */
	sd->ssl = NULL;
	sd->rbio = sd->wbio = NULL;
	free(sd->tls_obuf);
	sd->tls_obuf = NULL;
	free(sd->pre);
	sd->pre = NULL;
	sd->pre_len = sd->pre_off = 0;
	sd->ktls = sd->ktls_wait = false;
}

/* Send what SSL has written, if the socket is free. */
static void tls_flush(struct shard *s, struct sess *x, bool up)
{
	struct side *sd = up ? &x->u : &x->c;
	if (sd->sock_busy || !sd->wbio || sd->fd < 0)
		return;
	int n = BIO_read(sd->wbio, sd->tls_obuf, TLS_OBUF);
	if (n <= 0)
		return;
	sess_socket_send(s, x, up, sd->tls_obuf, (uint32_t)n);
}

static void tls_error_text(struct side *sd, int ret)
{
	unsigned long e = ERR_peek_last_error();
	int err = SSL_get_error(sd->ssl, ret);
	if (e)
		ERR_error_string_n(e, sd->tls_err, sizeof(sd->tls_err));
	else if (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN)
		snprintf(sd->tls_err, sizeof(sd->tls_err),
			 "connection closed during the TLS handshake");
	else
		snprintf(sd->tls_err, sizeof(sd->tls_err), "TLS error %d", err);
	ERR_clear_error();
}

/* ---- kernel TLS ---- */

static bool ktls_candidate(struct shard *s, struct side *sd)
{
	if (!s->tls || !s->tls->ktls.on)
		return false;
	enum ktls_suite k = ktls_ssl_suite(sd->ssl);
	return k != KTLS_SUITE_NONE && (s->tls->ktls.suites & (1u << k));
}

/* Whole TLS records of type application_data (the outer type of every
 * TLS 1.3 record after the handshake) in |p|? Their count, or -1. */
static long whole_records(const unsigned char *p, long n)
{
	long count = 0, off = 0;
	while (off < n) {
		if (n - off < 5 || p[off] != 23)
			return -1;
		long len = (long)p[off + 3] << 8 | p[off + 4];
		if (off + 5 + len > n)
			return -1;
		off += 5 + len;
		count++;
	}
	return count;
}

static void note_key_update(int write_p, int version, int content_type,
			    const void *buf, size_t len, SSL *ssl, void *arg)
{
	(void)write_p, (void)version, (void)ssl;
	if (content_type == SSL3_RT_HANDSHAKE && len > 0 &&
	    *(const unsigned char *)buf == SSL3_MT_KEY_UPDATE)
		*(bool *)arg = true;
}

/* Ciphertext that came after the handshake is still in the read BIO:
 * decrypt it into sd->pre (delivered before anything else) and count its
 * records, the kernel's first receive sequence number. 0 when the kernel
 * can take over, -EAGAIN when the side must stay in userspace (pre is
 * delivered first all the same). */
static int drain_rbio(struct side *sd, uint64_t *rx_seq)
{
	unsigned char *p = NULL;
	long n = BIO_get_mem_data(sd->rbio, &p);
	long recs = whole_records(p, n);
	if (recs < 0)
		return -EAGAIN; /* a record cut in two: the kernel needs it whole */
	sd->pre = malloc((size_t)n);
	if (!sd->pre)
		return -EAGAIN;
	bool key_update = false;
	SSL_set_msg_callback(sd->ssl, note_key_update);
	SSL_set_msg_callback_arg(sd->ssl, &key_update);
	ERR_clear_error();
	int r = 0;
	while (sd->pre_len < (uint32_t)n) {
		r = SSL_read(sd->ssl, sd->pre + sd->pre_len,
			     (int)((uint32_t)n - sd->pre_len));
		if (r <= 0)
			break;
		sd->pre_len += (uint32_t)r;
	}
	int e = r <= 0 ? SSL_get_error(sd->ssl, r) : SSL_ERROR_NONE;
	SSL_set_msg_callback(sd->ssl, NULL);
	if (!sd->pre_len) {
		free(sd->pre);
		sd->pre = NULL;
	}
	if (e != SSL_ERROR_WANT_READ || key_update ||
	    BIO_ctrl_pending(sd->rbio) || SSL_has_pending(sd->ssl) ||
	    BIO_ctrl_pending(sd->wbio))
		return -EAGAIN; /* SSL_read says the rest again later */
	*rx_seq = (uint64_t)recs;
	return 0;
}

/* 0: the side is on kTLS now; < 0: it stays in userspace; KTLS_BROKEN:
 * keys half installed, the connection is lost (reason in tls_err). */
static int try_offload(struct shard *s, struct sess *x, bool up)
{
	struct side *sd = up ? &x->u : &x->c;
	if (sd->recv_armed || sd->eof || sd->fd < 0 || sd->sock_busy ||
	    BIO_ctrl_pending(sd->wbio) || sd->pre)
		return -EAGAIN;
	uint64_t rx_seq = 0;
	if (BIO_ctrl_pending(sd->rbio) && drain_rbio(sd, &rx_seq) < 0)
		return -EAGAIN;
	char why[200];
	int r = ktls_install(sd->fd, sd->ssl, rx_seq, why, sizeof(why));
	if (r == 0) {
		sd->ktls = true;
	} else if (r == KTLS_BROKEN) {
		snprintf(sd->tls_err, sizeof(sd->tls_err), "kernel TLS: %.140s",
			 why);
	} else if (s->cfg->verbosity >= 0) {
		ktls_log_once(why);
	}
	return r;
}

/* The handshake of a kTLS candidate is done and its last flight sent. */
static void tls_hs_finish(struct shard *s, struct sess *x, bool up)
{
	struct side *sd = up ? &x->u : &x->c;
	sd->ktls_wait = false;
	int r = try_offload(s, x, up);
	atomic_fetch_add_explicit(r == 0 ? &s->st.tls_ktls
					 : &s->st.tls_userspace,
				  1, memory_order_relaxed);
	if (r == KTLS_BROKEN) {
		sd->hs_failed = true;
		session_on_tls_done(s, x, up, RC_ENG_UPSTREAM_TLS);
		return;
	}
	tls_flush(s, x, up); /* what draining may have written (userspace) */
	session_on_tls_done(s, x, up, 0);
}

bool tls_ktls_on_recv(struct shard *s, struct sess *x, bool up,
		      const char *data, int res, int bid)
{
	struct side *sd = up ? &x->u : &x->c;
	const uint8_t *p = (const uint8_t *)data;
	int type = ktls_record_type(&sd->krx);
	if (type == KTLS_RT_DATA)
		return session_on_recv(s, x, up, data, res, bid);
	if (type == KTLS_RT_HANDSHAKE &&
	    ktls_check_handshake(p, (size_t)res, sd->tls_err,
				 sizeof(sd->tls_err)) == 0) {
		sess_arm_socket_recv(s, x, up); /* a ticket: read on */
		return false;
	}
	if (type == KTLS_RT_ALERT && res >= 2 && p[1] == 0) {
		session_on_recv(s, x, up, NULL, 0, -1); /* close_notify */
		return false;
	}
	if (type == KTLS_RT_ALERT)
		snprintf(sd->tls_err, sizeof(sd->tls_err),
			 "the peer sent TLS alert %u", res >= 2 ? p[1] : 0);
	else if (type != KTLS_RT_HANDSHAKE)
		snprintf(sd->tls_err, sizeof(sd->tls_err),
			 "unexpected TLS record type %d", type);
	session_on_recv(s, x, up, NULL, -EPROTO, -1);
	return false;
}

/* Plaintext decrypted before the offload goes first, a piece at a time. */
static void deliver_pre(struct shard *s, struct sess *x, bool up)
{
	struct side *sd = up ? &x->u : &x->c;
	uint32_t n = sd->pre_len - sd->pre_off;
	if (n > TLS_PULL)
		n = TLS_PULL;
	memcpy(s->tls_scratch, sd->pre + sd->pre_off, n);
	sd->pre_off += n;
	if (sd->pre_off == sd->pre_len) {
		free(sd->pre);
		sd->pre = NULL;
		sd->pre_len = sd->pre_off = 0;
	}
	sd->want = false;
	session_on_recv(s, x, up, s->tls_scratch, (int)n, -1);
}

void tls_handshake(struct shard *s, struct sess *x, bool up)
{
	struct side *sd = up ? &x->u : &x->c;
	if (sd->hs_done)
		return;
	ERR_clear_error();
	int r = SSL_do_handshake(sd->ssl);
	tls_flush(s, x, up);
	if (r == 1) {
		sd->hs_done = true;
		if (ktls_candidate(s, sd)) {
			/* Offload once the last flight is out of the BIO and
			 * off the socket (tls_on_sent comes back here). */
			sd->ktls_wait = true;
			if (!sd->sock_busy && !BIO_ctrl_pending(sd->wbio))
				tls_hs_finish(s, x, up);
			return;
		}
		atomic_fetch_add_explicit(&s->st.tls_userspace, 1,
					  memory_order_relaxed);
		session_on_tls_done(s, x, up, 0);
		return;
	}
	int e = SSL_get_error(sd->ssl, r);
	if (e == SSL_ERROR_WANT_READ && !sd->eof) {
		socket_recv(s, x, up);
		return;
	}
	if (e == SSL_ERROR_WANT_WRITE)
		return; /* output is being flushed; on_sent continues */
	tls_error_text(sd, r);
	sd->hs_failed = true;
	session_on_tls_done(s, x, up, RC_ENG_UPSTREAM_TLS);
}

/* Give the session one chunk of plaintext (or EOF) if it asked for it.
 * Returns true if something was delivered. */
static bool tls_deliver(struct shard *s, struct sess *x, bool up)
{
	struct side *sd = up ? &x->u : &x->c;
	char *buf = s->tls_scratch;
	if (sd->pre) {
		deliver_pre(s, x, up);
		return true;
	}
	if (sd->ktls) { /* plaintext on the socket from now on */
		sd->want = false;
		sess_arm_socket_recv(s, x, up);
		return false;
	}
	ERR_clear_error();
	int n = SSL_read(sd->ssl, buf, TLS_PULL);
	if (n > 0) {
		sd->want = false;
		session_on_recv(s, x, up, buf, n, -1);
		return true;
	}
	int e = SSL_get_error(sd->ssl, n);
	tls_flush(s, x, up); /* a read may produce output (key updates) */
	if (e == SSL_ERROR_WANT_READ && !sd->eof) {
		socket_recv(s, x, up);
		return false;
	}
	/* close_notify, a closed socket, or a TLS error: the end. */
	sd->want = false;
	if (e != SSL_ERROR_ZERO_RETURN && e != SSL_ERROR_WANT_READ)
		tls_error_text(sd, n);
	session_on_recv(s, x, up, NULL, e == SSL_ERROR_ZERO_RETURN ||
					       e == SSL_ERROR_WANT_READ ? 0 : -EPROTO,
			-1);
	return true;
}

void tls_want(struct shard *s, struct sess *x, bool up)
{
	struct side *sd = up ? &x->u : &x->c;
	if (sd->want || (x->flags & SF_CLOSING))
		return;
	if (sd->ktls && !sd->pre) {
		sess_arm_socket_recv(s, x, up);
		return;
	}
	sd->want = true;
	if (!sd->hs_done)
		return;
	/* Deliver from the ring's completion loop, not from inside the
	 * session's own call: queue it. */
	if (!x->tls_ready) {
		x->tls_ready = true;
		x->tls_next = s->tls_ready;
		s->tls_ready = x;
	}
}

void tls_run_ready(struct shard *s)
{
	while (s->tls_ready) {
		struct sess *x = s->tls_ready;
		s->tls_ready = x->tls_next;
		x->tls_next = NULL;
		x->tls_ready = false;
		for (int up = 0; up < 2; up++) {
			struct side *sd = up ? &x->u : &x->c;
			if ((x->flags & SF_CLOSING) || !sd->ssl || !sd->want ||
			    !sd->hs_done || sd->ktls_wait)
				continue;
			tls_deliver(s, x, up);
		}
	}
}

void tls_on_cipher(struct shard *s, struct sess *x, bool up, const char *data,
		   int res)
{
	struct side *sd = up ? &x->u : &x->c;
	if (res > 0)
		BIO_write(sd->rbio, data, res);
	else
		sd->eof = true;
	if (!sd->hs_done) {
		if (res <= 0 && !sd->hs_failed) {
			snprintf(sd->tls_err, sizeof(sd->tls_err),
				 "peer closed the connection during the TLS "
				 "handshake");
			sd->hs_failed = true;
			session_on_tls_done(s, x, up, RC_ENG_UPSTREAM_TLS);
			return;
		}
		tls_handshake(s, x, up);
		return;
	}
	if (sd->want)
		tls_deliver(s, x, up);
}

void tls_send(struct shard *s, struct sess *x, bool up, const char *p,
	      uint32_t len)
{
	struct side *sd = up ? &x->u : &x->c;
	ERR_clear_error();
	while (len) {
		int n = SSL_write(sd->ssl, p, (int)len);
		if (n <= 0) {
			tls_error_text(sd, n);
			sd->send_armed = false;
			session_on_send_error(s, x, up, -EPROTO);
			return;
		}
		p += n;
		len -= (uint32_t)n;
	}
	sd->plain_pending = true;
	tls_flush(s, x, up);
}

/* A socket send of ciphertext completed. */
void tls_on_sent(struct shard *s, struct sess *x, bool up)
{
	struct side *sd = up ? &x->u : &x->c;
	if (BIO_ctrl_pending(sd->wbio)) {
		tls_flush(s, x, up);
		return;
	}
	if (sd->ktls_wait) {
		tls_hs_finish(s, x, up);
		return;
	}
	if (!sd->hs_done && !sd->hs_failed) {
		tls_handshake(s, x, up);
		return;
	}
	if (sd->plain_pending) {
		sd->plain_pending = false;
		sd->send_armed = false;
		session_on_sent(s, x, up);
	}
}

void tls_describe(const struct side *sd, struct flow_tls *t, char *buf,
		  size_t buf_len)
{
	const SSL *ssl = sd->ssl;
	memset(t, 0, sizeof(*t));
	if (!ssl)
		return;
	t->present = true;
	t->ktls = sd->ktls;
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	const unsigned char *alpn = NULL;
	unsigned alpn_len = 0;
	SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
	const char *ver = SSL_get_version(ssl);
	const char *cipher = SSL_get_cipher_name(ssl);
	int n = snprintf(buf, buf_len, "%s%c%.*s%c%s%c%s", sni ? sni : "", 0,
			 (int)alpn_len, alpn ? (const char *)alpn : "", 0,
			 ver ? ver : "", 0, cipher ? cipher : "");
	if (n < 0 || (size_t)n >= buf_len)
		return;
	const char *p = buf;
	t->sni = (struct rc_str){p, (uint32_t)strlen(p)};
	p += t->sni.n + 1;
	t->alpn = (struct rc_str){p, (uint32_t)strlen(p)};
	p += t->alpn.n + 1;
	t->version = (struct rc_str){p, (uint32_t)strlen(p)};
	p += t->version.n + 1;
	t->cipher = (struct rc_str){p, (uint32_t)strlen(p)};
}
