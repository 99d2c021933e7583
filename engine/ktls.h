/* SPDX-License-Identifier: MIT */
/* Kernel TLS on the engine's sockets: the start-up probe, installing a
 * side's keys after its handshake, and the recvmsg a kTLS side reads with
 * (the record type comes in a control message). Key material is built by
 * crypto/ktls.c; engine/tls.c decides when a side moves into the kernel. */
#ifndef RC_ENGINE_KTLS_H
#define RC_ENGINE_KTLS_H

#include <liburing.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/rc_err.h"
#include "crypto/ktls.h"

/* TLS record content types (RFC 8446 5.1) as TLS_GET_RECORD_TYPE says. */
enum ktls_rt {
	KTLS_RT_ALERT = 21,
	KTLS_RT_HANDSHAKE = 22,
	KTLS_RT_DATA = 23,
};

/* What the kernel offers, found once per process before the shards run. */
struct ktls_caps {
	bool on;          /* offload after handshakes */
	unsigned suites;  /* bit (1u << enum ktls_suite) per suite it takes */
	char why[200];    /* !on: the reason, for the one log line */
};

/* Probe with throwaway loopback TCP pairs: the tls ULP, then TLS 1.3 TX
 * and RX keys of each suite. |enabled| false (ktls=false, RINGCAP_NO_KTLS)
 * skips the probe. Fills |caps|; never fails. */
void ktls_probe(struct ktls_caps *caps, bool enabled, const char *off_reason)
	NONNULL(1);

/* Move the record layer of |fd| into the kernel: TCP_ULP "tls", then
 * TLS_TX (next record sequence 0) and TLS_RX (next record |rx_seq|) with
 * |ssl|'s TLS 1.3 traffic keys. Returns 0; a negative errno when nothing
 * that matters changed (the socket still carries userspace TLS: no ULP,
 * keys refused); or KTLS_BROKEN when TX went in and RX did not (the
 * connection cannot continue). |why| says what failed. */
#define KTLS_BROKEN 1
int ktls_install(int fd, SSL *ssl, uint64_t rx_seq, char *why,
		 size_t why_len) WUNRES NONNULL(2, 4);

/* Log |why| once per process: the probe's verdict at start-up, or the
 * first failure on a connection after a good probe. */
void ktls_log_once(const char *why) NONNULL(1);

/* One recvmsg in flight on a kTLS side: the record type lands in |c|. */
struct ktls_rx {
	struct msghdr msg;
	struct iovec iov;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(uint8_t))];
	} c;
};

/* Prepare |sqe| as a recvmsg on |fd| into a provided buffer of group
 * |bgid| (at most |len| bytes), the control message into |k|, which must
 * stay put until the completion. */
void ktls_prep_recv(struct io_uring_sqe *sqe, int fd, struct ktls_rx *k,
		    unsigned len, uint16_t bgid) NONNULL(1, 3);

/* The record type of what the completed recvmsg read (KTLS_RT_DATA when
 * the kernel said nothing). */
int ktls_record_type(const struct ktls_rx *k) NONNULL(1);

/* Handshake messages read from a kTLS socket (|p|, |n| bytes): 0 when
 * they are all NewSessionTickets (ignored), else -EPROTO with the reason
 * in |why|. */
int ktls_check_handshake(const uint8_t *p, size_t n, char *why,
			 size_t why_len) WUNRES NONNULL(3);

#endif
