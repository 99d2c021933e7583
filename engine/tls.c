/* SPDX-License-Identifier: MIT */
/* TLS on a session side, in userspace: OpenSSL over memory BIOs, driven by
 * the shard's completions. Ciphertext arrives in provided buffers and goes
 * into the read BIO; plaintext is pulled only when the session asks for it
 * (sess_arm_recv), so a slow peer still holds back its sender; what SSL
 * writes is copied out of the write BIO and sent from the side's own
 * buffer, one send at a time. */
#include <errno.h>
#include <openssl/err.h>
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
			    !sd->hs_done)
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
