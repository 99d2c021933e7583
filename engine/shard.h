/* SPDX-License-Identifier: MIT */
/* Engine internals shared by the shard loop (shard.c), the HTTP/1 session
 * machine (session.c) and the upstream side (upstream.c). Not public. */
#ifndef RC_ENGINE_SHARD_H
#define RC_ENGINE_SHARD_H

#include <ares.h>
#include <liburing.h>
#include <openssl/ssl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "engine/eng.h"
#include "engine/ktls.h"
#include "proto/h1.h"
#include "proto/h2.h"
#include "proto/h2up.h"
#include "sink/filter.h"

struct h2_link;

/* ---- user_data: op (8 bits) | generation (24 bits) | slot (32 bits) ---- */
enum op {
	OP_ACCEPT,     /* multishot accept; slot = listener index */
	OP_CRECV,      /* client recv (buffer select) */
	OP_CSEND,      /* client send */
	OP_URECV,      /* upstream recv (buffer select) */
	OP_USEND,      /* upstream send */
	OP_CONNECT,    /* upstream connect */
	OP_CANCEL,     /* cancel_fd issued while closing a session */
	OP_TICK,       /* the shard's periodic timer */
	OP_WAKE,       /* eventfd read: shutdown requested */
	OP_POOLPOLL,   /* POLLIN on an idle pooled upstream; slot = pool idx */
	OP_DNSPOLL,    /* poll on a c-ares socket; slot = dns watch idx */
	OP_DNSUDP,     /* recvmsg on a DNS mode's UDP socket; slot = its idx */
	OP_IGNORE,     /* completions nobody waits for */
	OP_COUNT
};
const char *op_str(enum op op);

static inline uint64_t ud_make(enum op op, uint32_t gen, uint32_t slot)
{
	return ((uint64_t)op << 56) | ((uint64_t)(gen & 0xffffff) << 32) | slot;
}
static inline enum op ud_op(uint64_t ud) { return (enum op)(ud >> 56); }
static inline uint32_t ud_gen(uint64_t ud) { return (uint32_t)(ud >> 32) & 0xffffff; }
static inline uint32_t ud_slot(uint64_t ud) { return (uint32_t)ud; }

/* ---- a growable byte buffer: unprocessed data is [rd, wr) ---- */
struct rbuf {
	char *p; /* owned; NULL until first use, freed when idle */
	uint32_t cap, rd, wr;
	bool small; /* starts at 4 KiB, not a provided buffer's size */
};

/* ---- request / response pumps ---- */
enum rq_state {
	RQ_IDLE,       /* waiting for the first byte of a request head */
	RQ_HEAD,       /* reading a request head */
	RQ_UPSTREAM,   /* head parsed, waiting for the upstream connection */
	RQ_BODY,       /* streaming the request body */
	RQ_DONE,       /* request fully sent */
	RQ_TUNNEL,     /* CONNECT: raw bytes client -> upstream */
	RQ_SNIFF,      /* after CONNECT / on a TLS-capable port: first bytes */
	RQ_TLS_SETUP,  /* intercepting: upstream then client TLS handshakes */
	RQ_SOCKS,      /* SOCKS5 negotiation */
	RQ_DNS,        /* DNS over TCP: length-prefixed queries */
	RQ_H2,         /* an HTTP/2 connection: its streams are sessions */
	RQ_STATE_COUNT
};
enum rs_state {
	RS_NONE,   /* no request in flight */
	RS_HEAD,   /* waiting for / reading a response head */
	RS_BODY,   /* streaming the response body */
	RS_DONE,   /* response fully sent */
	RS_TUNNEL, /* CONNECT: raw bytes upstream -> client */
	RS_STATE_COUNT
};
const char *rq_state_str(enum rq_state s);
const char *rs_state_str(enum rs_state s);

/* What is captured of the flow in progress. Owned by the session; every
 * pointer in |f| points into these buffers (or into string literals). */
struct capture {
	struct flow f;
	char *req_head;              /* copy of the request head bytes */
	struct flow_header *req_hdrs;
	char *resp_head;
	struct flow_header *resp_hdrs;
	uint8_t *req_body, *resp_body; /* captured payload, up to the limit */
	uint32_t req_body_cap, resp_body_cap;
	char url_host[256];
	char *path_copy;             /* "/?q" for an absolute target "http://h?q" */
	char err_msg[200];
	char tcp_host[256];
	/* chunked trailer sections as they arrived ([0] request, [1]
	 * response), and the fields parsed out of them when the flow ends */
	struct rbuf trl_raw[2];
	char *trl_copy[2];
	struct flow_header *trl_hdrs[2];
};

/* A provided buffer held, unsent, on its way to the other side. */
struct chunk {
	uint16_t bid;
	uint32_t off;
	uint32_t len;
};
#define SIDE_QN 4

/* One side of a session: a socket and the bytes read from it. Body bytes
 * normally stay in the provided buffers they arrived in (|q|, sent from
 * there, zero-copy); head bytes and leftovers are copied into |in|. */
struct side {
	struct chunk q[SIDE_QN]; /* received here, to be sent to the other side */
	uint8_t qhead, qn;
	int fd;           /* -1 when closed */
	struct rbuf in;
	bool recv_armed;
	bool eof;         /* peer closed its sending side */
	bool nobuf;       /* recv found no provided buffer; re-arm soon */
	int err;          /* errno that ended the side, 0 for a clean EOF */
	bool shut_wr;     /* we sent FIN (tunnel direction finished) */
	/* TLS (engine/tls.c); ssl == NULL: plaintext */
	SSL *ssl;
	BIO *rbio, *wbio;    /* owned by ssl */
	char *tls_obuf;      /* ciphertext being sent */
	bool hs_done, hs_failed;
	bool want;           /* the session asked for plaintext */
	bool plain_pending;  /* a session send waits for its ciphertext */
	char tls_err[160];
	/* kernel TLS (engine/ktls.c): the record layer is in the kernel both
	 * ways; ssl stays for describe only, data goes through the socket */
	bool ktls;
	bool ktls_wait;      /* handshake done, last flight still leaving */
	char *pre;           /* plaintext decrypted before the offload, owned;
			      * delivered before anything else */
	uint32_t pre_len, pre_off;
	struct ktls_rx krx;  /* the recvmsg in flight on a kTLS side */
	bool send_armed;  /* the session has a send out (plaintext view) */
	bool sock_busy;   /* a socket send is in flight */
	const char *sendp; /* bytes in flight to this side's fd */
	uint32_t sendlen;
	uint32_t sent_from_in; /* bytes of |in| (from rd) being sent to the other side */
};

enum sess_flag {
	SF_CLOSING = 1u << 0,  /* tearing down; waiting for inflight == 0 */
	SF_CLIENT_CLOSE = 1u << 1, /* close the client after this response */
	SF_UP_REUSED = 1u << 2, /* upstream came from the pool / last request */
	SF_UP_NOREUSE = 1u << 3, /* upstream must not be kept alive */
	SF_PARKED = 1u << 4,   /* flow waits for ring space */
	SF_OWN_REPLY = 1u << 5, /* sending our own response (error, mitm.it), then close */
	SF_RETRIED = 1u << 6,
	SF_IN_DNS = 1u << 7,   /* a resolve callback is pending */
};

/* What a tunnel-like session is (how it started and what it may carry). */
enum tun_kind {
	TUN_NONE,        /* plain HTTP proxying */
	TUN_CONNECT,     /* regular/upstream mode CONNECT */
	TUN_DIRECT_TCP,  /* reverse:tcp:// — raw relay */
	TUN_DIRECT_TLS,  /* reverse:tls:// — TLS to the server, client TLS or not */
	TUN_TRANSPARENT, /* redirected connection, original destination */
	TUN_SOCKS5,      /* SOCKS5 CONNECT */
	TUN_KIND_COUNT
};
const char *tun_kind_str(enum tun_kind k);

struct sess {
	uint32_t gen;
	uint32_t inflight;     /* SQEs submitted and not completed */
	uint32_t flags;
	uint8_t listener;      /* index into shard->listeners */
	enum rq_state rq;
	enum rs_state rs;
	struct side c, u;
	struct sockaddr_storage caddr;
	/* upstream identity: host:port we connected to */
	char up_host[256];
	uint16_t up_port;
	struct sockaddr_storage up_addr;
	socklen_t up_addrlen;
	/* request in progress */
	char *obuf;            /* our rewritten request head (or error reply) */
	uint32_t obuf_len;
	struct h1_body rqb, rsb; /* body decoders */
	enum h1_body_kind rs_kind;
	bool req_head_is_head; /* HEAD request: response has no body */
	bool req_is_connect;   /* CONNECT: a tunnel once connected */
	bool switching;        /* 101 forwarded: becomes a tunnel */
	uint8_t csend_what, usend_what; /* what the send in flight carries */
	double c_ts_start;     /* client accepted (wall clock) */
	struct flow_endpoint c_peer, c_local; /* looked up once */
	struct flow_endpoint u_peer, u_local; /* for upstream fd u_ep_fd */
	int u_ep_fd;
	bool has_flow;
	bool resp_started;     /* some response bytes went to the client */
	int err;               /* error that ends the flow */
	uint32_t head_scanned; /* bytes of an incomplete head already parsed */
	uint64_t deadline;     /* monotonic ms, 0 = none */
	uint64_t last_active;
	struct capture cap;
	struct sess *next, *prev; /* shard's active list */
	struct sess *park_next;
	/* TLS interception */
	bool tls_ready;          /* on shard->tls_ready */
	struct sess *tls_next;
	bool up_tls;             /* upstream speaks TLS (reverse https, CONNECT) */
	bool fixed_target;       /* requests go to tunnel_host:port (HTTP found
				  * inside a CONNECT, transparent or SOCKS
				  * connection, with or without TLS) */
	uint8_t tun;             /* enum tun_kind */
	uint8_t socks_stage;     /* 0 greeting, 1 auth, 2 request, 3 connected */
	uint8_t socks_out[22], socks_out_len;
	bool dns_busy;           /* a DNS-over-TCP query is being answered */
	struct sockaddr_storage orig_dst; /* transparent: where the client went */
	/* tcp flow capture: message i is tcp_data[tcp_off[i] .. +msgs[i].n] */
	struct flow_tcp_msg *tcp_msgs;
	uint32_t *tcp_off;
	uint32_t tcp_n, tcp_cap;
	uint8_t *tcp_data;
	uint32_t tcp_len, tcp_data_cap;
	char tunnel_host[256];   /* CONNECT target: where every request goes */
	uint16_t tunnel_port;
	/* upstream mode: x->u reaches up_host:up_port through a CONNECT
	 * tunnel of the next proxy's (such a connection is never pooled) */
	bool up_via_proxy;
	uint8_t up_proxy_stage;  /* 0 none, 1 CONNECT out, 2 tunnel up */
	uint16_t proxy_connect_len;
	char proxy_connect[640]; /* our CONNECT head for the next proxy */
	char sni[256];           /* from the ClientHello, "" if none */
	char up_sni[256];        /* SNI of the upstream TLS connection */
	char alpn_offer[64];     /* client's ALPN list, wire format */
	uint8_t alpn_offer_len;
	bool sniffed;            /* first bytes looked at (reverse ports) */
	int up_fail_code;        /* upstream TLS/cert failure to report */
	char up_fail_msg[600];
	double c_tls_ts, u_tls_ts;
	int up_verify_err;       /* upstream certificate check, 0 = ok */
	char up_verify_msg[160];
	char up_cert_sha[65];
	char up_cert_names[512];
	char tls_c_desc[400], tls_u_desc[400]; /* flow_tls strings */
	/* HTTP/2 (engine/h2.c). A connection that speaks it has |h2|; each of
	 * its streams is a session of its own (h2_sid > 0) whose client side
	 * is virtual: request bytes come from the connection, response bytes
	 * go to it, as HTTP/1.1. */
	struct h2conn *h2;
	struct h2_link *h2_link;  /* the connection's callback context */
	char *h2_out;             /* frames being sent to the client */
	uint32_t h2_parent, h2_parent_gen; /* a stream's connection */
	int32_t h2_sid;
	uint32_t h2_reset_code;   /* the client reset the stream with this */
	uint16_t v_due;           /* VD_* work queued on shard->vready */
	struct sess *v_next;
	struct flow_tls h2_ctls;  /* the connection's client TLS facts */
	/* HTTP/2 to the server: the connection's session owns one upstream
	 * HTTP/2 connection on its u side (h2u); a stream session with
	 * u_virtual sends its request over it as stream h2u_st. */
	struct h2up *h2u;
	char *h2u_out;
	uint8_t h2u_state;        /* enum h2u_state */
	uint64_t h2u_since;       /* when the upstream connection began */
	bool c_offers_h2;         /* the client's ClientHello lists h2 */
	bool u_virtual;
	bool h2u_waiting;         /* waits for the connection's upstream */
	uint32_t h2u_reset;       /* the server reset the stream (code | 1<<31) */
	struct h2up_stream *h2u_st;
	struct flow_tls h2_stls;  /* the upstream connection's TLS facts */
};

enum h2u_state {
	H2U_NONE,    /* not tried: streams use their own connections */
	H2U_PENDING, /* connecting; streams wait for the outcome */
	H2U_READY,   /* HTTP/2 to the server: streams are multiplexed */
	H2U_OFF,     /* the server speaks HTTP/1.1, or the connection failed */
};

/* A stream of an HTTP/2 connection (h2_sid < 0 once the stream is gone). */
static inline bool sess_is_stream(const struct sess *x) { return x->h2_sid != 0; }

struct listener {
	int fd;
	const struct eng_mode *mode;
	uint16_t port;
	bool armed;
};

/* What a flow records of an upstream connection, kept with it in the pool
 * so a connection taken again costs no getpeername/getsockname or
 * certificate walk. */
struct up_facts {
	struct flow_endpoint peer, local;
	int verify_err;
	char cert_sha[65];
	char cert_names[512];
	char verify_msg[160];
};

/* An idle kept-alive upstream connection. */
struct pool_ent {
	uint32_t gen;
	int fd;              /* -1: free */
	bool polling;        /* POLL_ADD in flight */
	bool taken;          /* removed from pool, poll completion pending */
	char host[256];
	uint16_t port;
	uint64_t since;
	/* a TLS connection keeps its session (owned here while pooled) */
	SSL *ssl;
	char *tls_obuf;
	bool ktls;           /* the socket has the record layer in the kernel */
	char sni[256];
	struct up_facts facts;
	bool has_facts;
};

/* A c-ares socket we poll for. */
struct dns_watch {
	uint32_t gen;
	int fd;              /* -1: free */
	bool want_r, want_w;
	bool armed;
};

struct dns_cache_ent {
	char host[256];
	struct sockaddr_storage addr;
	socklen_t addrlen;
	uint64_t expires;    /* monotonic ms */
	int err;             /* negative cache */
};

/* A DNS mode's UDP socket and its one recvmsg in flight. */
struct dns_udp {
	int fd;
	unsigned mode_idx;
	struct msghdr msg;
	struct iovec iov;
	struct sockaddr_storage from, local;
	uint8_t *buf;
	bool armed;
};

struct shard_stats {
	_Atomic uint64_t flows, flow_errors, captured, dropped, ring_waits,
		filtered;
	_Atomic uint64_t conns_open, conns_total, refused, bytes_in, bytes_out;
	_Atomic uint64_t upstream_reused, upstream_connects;
	_Atomic uint64_t tls_intercepted, tls_client_failed, tls_userspace,
		tls_ktls;
};

#define SHARD_BUF_SIZE 65536u
#define SHARD_NBUFS 256u
#define SHARD_BGID 1
#define SHARD_MAX_HEADERS 1024
#define SHARD_DNS_WATCH 16
#define SHARD_DNS_CACHE 256

struct shard {
	unsigned id;
	const struct eng_config *cfg;
	struct io_uring ring;
	pthread_t thread;
	int wake_fd;            /* eventfd: shutdown */
	uint64_t wake_val;
	struct listener listeners[ENG_MAX_MODES];
	unsigned nlisteners;
	/* provided buffers for recv */
	struct io_uring_buf_ring *br;
	char *bufs;
	/* session slab */
	struct sess *sess;
	uint32_t nsess, max_sess, *free_idx, nfree;
	struct sess *active;    /* list of live sessions (timers, shutdown) */
	struct sess *parked;    /* flows waiting for ring space */
	struct sess *nobuf;     /* recv got ENOBUFS; re-arm after the batch */
	/* upstream pool */
	struct pool_ent *pool;
	uint32_t npool;
	/* dns */
	ares_channel ares;
	struct dns_watch dns[SHARD_DNS_WATCH];
	struct dns_cache_ent dcache[SHARD_DNS_CACHE];
	ares_channel dns_fwd[ENG_MAX_MODES]; /* reverse:dns, by mode index */
	struct dns_udp udp[ENG_MAX_MODES];
	unsigned nudp;
	/* capture */
	struct frq *frq;
	struct h1_header hdrs[SHARD_MAX_HEADERS]; /* parse scratch */
	/* shutdown */
	atomic_bool stop_req;
	bool stopping;
	uint64_t grace_deadline;
	uint64_t now;           /* monotonic ms, refreshed per batch */
	bool tick_fast;
	bool exited;
	uint32_t bufs_returned; /* this batch: lets ENOBUFS waiters retry */            /* shard thread is gone: no more SQEs */
	bool defer_taskrun;     /* ring has SINGLE_ISSUER|DEFER_TASKRUN */
	struct shard_stats st;
	/* TLS */
	struct sess *tls_ready;  /* sessions whose plaintext is due */
	char tls_scratch[16384];
	const struct eng_tls *tls; /* NULL: no interception (plain tunnels) */
	const struct filter *save_filter; /* shared, read-only; NULL: all */
	struct filter_scratch *fscr;      /* this shard's matching memory */
	struct leaf_l1 *leaf_l1; /* this shard's lock-free front of the cache */
	struct sess *vready;     /* HTTP/2 streams with work due (engine/h2.c) */
};

/* eng.c: TLS state shared by every shard (read-only after start-up, but
 * for the leaf cache, which locks inside). */
struct eng_tls {
	struct ca *ca;
	struct leaf_cache *leaves;
	SSL_CTX *up_ctx;       /* upstream connections (client role) */
	bool insecure;         /* ssl_insecure: no upstream verification */
	void *ignore_re, *allow_re; /* pcre2 patterns on "host:port" */
	struct ktls_caps ktls;  /* kernel TLS offload, probed at start-up */
	bool http2;             /* offer clients h2 (cfg->http2) */
};
/* App data of a client-side SSL whose client may only get http/1.1. */
#define ALPN_H1_ONLY ((void *)1)

/* Pass this TLS connection through untouched (ignore_hosts/allow_hosts)? */
bool eng_tls_passthrough(const struct eng_tls *t, const char *host_port)
	NONNULL(1, 2);

/* shard.c */
struct io_uring_sqe *shard_sqe(struct shard *s) NONNULL(1);
void sess_arm_recv(struct shard *s, struct sess *x, bool upstream) NONNULL(1, 2);
void sess_send(struct shard *s, struct sess *x, bool to_upstream,
	       const char *p, uint32_t len) NONNULL(1, 2, 4);
void sess_close(struct shard *s, struct sess *x) NONNULL(1, 2);
void shard_return_buf(struct shard *s, unsigned bid) NONNULL(1);
static inline char *shard_buf(struct shard *s, unsigned bid)
{
	return s->bufs + (size_t)bid * SHARD_BUF_SIZE;
}
static inline uint32_t sess_idx(const struct shard *s, const struct sess *x)
{
	return (uint32_t)(x - s->sess);
}

/* Raw socket I/O (what sess_arm_recv/sess_send do for plaintext sides). */
void sess_arm_socket_recv(struct shard *s, struct sess *x, bool upstream)
	NONNULL(1, 2);
void sess_socket_send(struct shard *s, struct sess *x, bool to_upstream,
		      const char *p, uint32_t len) NONNULL(1, 2, 4);

/* Does this side run TLS records through OpenSSL's memory BIOs? (A kTLS
 * side keeps its SSL but reads and writes plaintext on the socket.) */
static inline bool side_tls_userspace(const struct side *sd)
{
	return sd->ssl && !sd->ktls;
}

/* tls.c: userspace TLS over memory BIOs */
/* Put |ssl| (configured, state set) on a side; bytes already in the side's
 * buffer are fed to it as ciphertext. Takes ownership of |ssl|. */
int tls_side_start(struct shard *s, struct sess *x, bool up, SSL *ssl)
	NONNULL(1, 2, 4);
void tls_side_free(struct side *sd) NONNULL(1);
void tls_handshake(struct shard *s, struct sess *x, bool up) NONNULL(1, 2);
void tls_want(struct shard *s, struct sess *x, bool up) NONNULL(1, 2);
void tls_run_ready(struct shard *s) NONNULL(1);
void tls_on_cipher(struct shard *s, struct sess *x, bool up, const char *data,
		   int res) NONNULL(1, 2);
void tls_send(struct shard *s, struct sess *x, bool up, const char *p,
	      uint32_t len) NONNULL(1, 2, 4);
void tls_on_sent(struct shard *s, struct sess *x, bool up) NONNULL(1, 2);
/* A recvmsg on a kTLS side completed with |res| > 0 bytes in provided
 * buffer |bid|: data goes to the session (true: it kept the buffer);
 * tickets are skipped, alerts end the side. */
bool tls_ktls_on_recv(struct shard *s, struct sess *x, bool up,
		      const char *data, int res, int bid) NONNULL(1, 2, 4);
/* Fill |t| from the side's SSL; strings live in buf. */
void tls_describe(const struct side *sd, struct flow_tls *t, char *buf,
		  size_t buf_len) NONNULL(1, 2, 3);

/* session.c: the HTTP/1 proxy state machine */
/* A side's TLS handshake finished: err 0, or RC_ENG_UPSTREAM_TLS with the
 * reason in the side's tls_err. */
void session_on_tls_done(struct shard *s, struct sess *x, bool up, int err)
	NONNULL(1, 2);
void session_start(struct shard *s, struct sess *x) NONNULL(1, 2);
/* Bytes (res > 0) in provided buffer |bid|, or EOF/error (res <= 0,
 * bid < 0). Returns true when the session keeps the buffer (queued for
 * sending; it gives it back with shard_return_buf()). */
bool session_on_recv(struct shard *s, struct sess *x, bool upstream,
		     const char *data, int res, int bid) NONNULL(1, 2);
void session_on_sent(struct shard *s, struct sess *x, bool upstream)
	NONNULL(1, 2);
/* A send to the client (upstream == false) or upstream failed. */
void session_on_send_error(struct shard *s, struct sess *x, bool upstream,
			   int res) NONNULL(1, 2);
void session_on_connect(struct shard *s, struct sess *x, int res)
	NONNULL(1, 2);
void session_on_resolved(struct shard *s, struct sess *x, int err,
			 const struct sockaddr *sa, socklen_t salen)
	NONNULL(1, 2);
void session_on_timeout(struct shard *s, struct sess *x) NONNULL(1, 2);
void session_on_shutdown(struct shard *s, struct sess *x, bool hard)
	NONNULL(1, 2);
void session_retry_parked(struct shard *s, struct sess *x) NONNULL(1, 2);
void session_free_capture(struct sess *x) NONNULL(1);

/* h2.c: HTTP/2 client connections, their streams as sessions */
/* The client connection |x| speaks HTTP/2 from here on (ALPN h2 or the
 * h2c preface); bytes already in x->c.in are its first. */
void h2_conn_start(struct shard *s, struct sess *x) NONNULL(1, 2);
/* Client bytes arrived / a send to the client finished on connection |x|. */
void h2_conn_process(struct shard *s, struct sess *x) NONNULL(1, 2);
/* Connection |x| is closing: reset the streams it still has. */
void h2_conn_closing(struct shard *s, struct sess *x) NONNULL(1, 2);
void h2_conn_timeout(struct shard *s, struct sess *x) NONNULL(1, 2);
void h2_conn_shutdown(struct shard *s, struct sess *x) NONNULL(1, 2);
/* A stream session's virtual client side (sess_arm_recv/sess_send). */
void h2_stream_arm_recv(struct shard *s, struct sess *x) NONNULL(1, 2);
void h2_stream_send(struct shard *s, struct sess *x, const char *p,
		    uint32_t len) NONNULL(1, 2, 3);
/* Stream session |x| is closing: end its stream on the connection. */
void h2_stream_closing(struct shard *s, struct sess *x) NONNULL(1, 2);
/* Run what is due on streams (after each completion batch). */
void h2_run_ready(struct shard *s) NONNULL(1);
/* Take |x| off shard->vready (its slot is being freed). */
void h2_unready(struct shard *s, struct sess *x) NONNULL(1, 2);
/* Upstream HTTP/2 (h2.c). Stream session |x| needs an upstream to
 * host:port: 1 = attached to its connection's HTTP/2 upstream (send the
 * request), 2 = wait (h2_up_state_changed() resumes it), 0 = use an own
 * connection. */
int h2_stream_upstream(struct shard *s, struct sess *x, const char *host,
		       uint16_t port) NONNULL(1, 2, 3);
/* The virtual upstream side of an attached stream session. */
void h2_stream_uarm_recv(struct shard *s, struct sess *x) NONNULL(1, 2);
void h2_stream_usend(struct shard *s, struct sess *x, const char *p,
		     uint32_t len) NONNULL(1, 2, 3);
/* Connection |x|'s upstream: its TLS connection speaks h2 (adopt it), or
 * it could not be had (OFF); either way waiting streams resume. */
void h2_up_ready(struct shard *s, struct sess *x) NONNULL(1, 2);
void h2_up_off(struct shard *s, struct sess *x) NONNULL(1, 2);
/* Bytes / a finished send / an error on connection |x|'s upstream side. */
void h2_up_process(struct shard *s, struct sess *x) NONNULL(1, 2);
void h2_up_dead(struct shard *s, struct sess *x) NONNULL(1, 2);
/* session.c: resume a stream session that waited for its connection's
 * upstream; start connection |x|'s own upstream (reverse https). */
void session_upstream_resume(struct shard *s, struct sess *x) NONNULL(1, 2);
void session_h2_upstream_begin(struct shard *s, struct sess *x) NONNULL(1, 2);
/* A new session in the slab (for a stream), or NULL when it is full. */
struct sess *shard_sess_new(struct shard *s) NONNULL(1);
/* session.c: start a stream session's first request. */
void session_stream_start(struct shard *s, struct sess *x) NONNULL(1, 2);
void session_stream_abort(struct shard *s, struct sess *x, int code,
			  const char *detail) NONNULL(1, 2);

/* dns_mode.c: the dns and reverse:dns modes */
int dns_mode_init(struct shard *s, char *what, size_t what_len) NONNULL(1, 2);
void dns_mode_destroy(struct shard *s) NONNULL(1);
void dns_mode_stop(struct shard *s) NONNULL(1);
void dns_udp_start(struct shard *s) NONNULL(1);
void dns_udp_on_recv(struct shard *s, unsigned i, int res) NONNULL(1);
/* A query that arrived on a DNS-over-TCP session; the answer comes back
 * through session_dns_answer(). */
void dns_tcp_query(struct shard *s, struct sess *x, const uint8_t *msg,
		   size_t len) NONNULL(1, 2, 3);
void session_dns_answer(struct shard *s, struct sess *x, const uint8_t *msg,
			size_t len) NONNULL(1, 2);
/* A fresh UUID v4 for a flow. */
void shard_uuid(struct shard *s, uint8_t id[16]) NONNULL(1, 2);

/* Should |f| go into the log (save_stream_filter)? Counts the others. */
bool shard_should_record(struct shard *s, const struct flow *f) NONNULL(1, 2);

/* Numeric address and port of |ss| (v4-mapped shown as IPv4). */
void session_endpoint(struct flow_endpoint *e,
		      const struct sockaddr_storage *ss) NONNULL(1, 2);

/* upstream.c: resolve, connect, keep-alive pool */
void dns_sock_state_cb(void *data, ares_socket_t fd, int readable,
		       int writable);
int dns_init(struct shard *s) NONNULL(1);
void dns_destroy(struct shard *s) NONNULL(1);
void dns_on_poll(struct shard *s, uint32_t slot, uint32_t gen, int res)
	NONNULL(1);
void dns_tick(struct shard *s) NONNULL(1);
/* Resolve |host| for |x|; calls session_on_resolved() later or right
 * away (cache hit, IP literal). */
void dns_resolve(struct shard *s, struct sess *x, const char *host,
		 uint16_t port) NONNULL(1, 2, 3);
/* Start a non-blocking connect of x->u to |sa|. */
void upstream_connect(struct shard *s, struct sess *x,
		      const struct sockaddr *sa, socklen_t salen)
	NONNULL(1, 2, 3);
/* Take an idle connection to host:port from the pool; returns fd or -1. */
/* |side|: for a TLS pool (side->ssl wanted: pass want_tls) the SSL and its
 * buffer move into |side| too. */
/* |facts| gets what pool_put() was given; returns -1 with *has_facts
 * untouched when nothing is pooled. */
int pool_take(struct shard *s, const char *host, uint16_t port, bool want_tls,
	      const char *sni, struct side *side, struct up_facts *facts,
	      bool *has_facts) NONNULL(1, 2, 5, 6, 7, 8);
/* Give |fd| (idle, response fully read) to the pool or close it. */
/* Takes |side|'s TLS state too, if it has one; |facts| (may be NULL) is
 * kept with it. */
void pool_put(struct shard *s, int fd, const char *host, uint16_t port,
	      const char *sni, struct side *side, const struct up_facts *facts)
	NONNULL(1, 3, 5, 6);
void pool_on_poll(struct shard *s, uint32_t slot, uint32_t gen, int res)
	NONNULL(1);
/* Watch idle pooled connections for the server closing them (tick). */
#define POOL_WATCH_AFTER_MS 50
void pool_tick(struct shard *s) NONNULL(1);
void pool_close_all(struct shard *s) NONNULL(1);

#endif
