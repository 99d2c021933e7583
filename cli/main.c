/* SPDX-License-Identifier: MIT */
/* ringcap's entry point: `ringcap [options]` runs the proxy (engine +
 * flow log writer + status line), `ringcap read` prints a flow log. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/options.h"
#include "common/rc_time.h"
#include "crypto/leaf.h"
#include "engine/eng.h"
#include "sink/flowlog.h"

int cli_read_main(int argc, char **argv);
int cli_export_main(int argc, char **argv);

static void human(char *out, size_t n, double v)
{
	const char *u = "";
	if (v >= 1e9) {
		v /= 1e9;
		u = "G";
	} else if (v >= 1e6) {
		v /= 1e6;
		u = "M";
	} else if (v >= 1e3) {
		v /= 1e3;
		u = "k";
	}
	snprintf(out, n, v < 10 && *u ? "%.1f%s" : "%.0f%s", v, u);
}

static void print_status(struct eng *e, struct eng_stats *prev, double dt,
			 bool final, FILE *out)
{
	struct eng_stats st;
	eng_stats(e, &st);
	char fps[16], bin[16], bout[16];
	human(fps, sizeof(fps), dt > 0 ? (double)(st.flows - prev->flows) / dt : 0);
	human(bin, sizeof(bin), (double)st.bytes_in);
	human(bout, sizeof(bout), (double)st.bytes_out);
	if (final)
		fprintf(out,
			"ringcap: %llu flows (%llu with errors), %llu captured, "
			"%llu filtered out, %llu dropped, %llu ring waits; "
			"%llu connections, %llu "
			"refused; %sB in, %sB out; upstream %llu connects, %llu "
			"reused\n",
			(unsigned long long)st.flows,
			(unsigned long long)st.flow_errors,
			(unsigned long long)st.captured,
			(unsigned long long)st.filtered,
			(unsigned long long)st.dropped,
			(unsigned long long)st.ring_waits,
			(unsigned long long)st.conns_total,
			(unsigned long long)st.refused, bin, bout,
			(unsigned long long)st.upstream_connects,
			(unsigned long long)st.upstream_reused);
	else
		fprintf(out,
			"\r\033[Kringcap: %s flows/s  %llu open  %llu flows  "
			"%sB in  %sB out  %llu dropped",
			fps, (unsigned long long)st.conns_open,
			(unsigned long long)st.flows, bin, bout,
			(unsigned long long)st.dropped);
	fflush(out);
	*prev = st;
}

static void print_tls_summary(struct eng *e, FILE *out)
{
	struct eng_stats st;
	struct leaf_stats ls;
	if (!eng_ca(e))
		return;
	eng_stats(e, &st);
	eng_leaf_stats(e, &ls);
	fprintf(out,
		"ringcap: TLS: %llu intercepted, %llu clients refused our "
		"certificate; record layer: %llu userspace, %llu kernel (kTLS); "
		"leaf cache: %llu hits, %llu misses, %llu signed\n",
		(unsigned long long)st.tls_intercepted,
		(unsigned long long)st.tls_client_failed,
		(unsigned long long)st.tls_userspace,
		(unsigned long long)st.tls_ktls,
		(unsigned long long)ls.hits, (unsigned long long)ls.misses,
		(unsigned long long)ls.signatures);
}

static int run_proxy(int argc, char **argv)
{
	struct cli_opts o;
	int r = cli_parse_args(argc, argv, &o);
	if (r)
		return r == 1 ? 0 : 2;
	o.eng.capture = o.save_file || o.verbosity >= 0;

	/* Capture buffers (up to body_capture_limit each) come and go with
	 * every flow: keep them in the heap instead of fresh mmap()s, whose
	 * page faults cost more than the copy into them. */
	mallopt(M_MMAP_THRESHOLD, 64 << 20);
	mallopt(M_TRIM_THRESHOLD, 128 << 20);

	/* Signals are taken by sigwait() below, never by the shards. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	char what[512] = "";
	struct eng *e = NULL;
	r = eng_create(&e, &o.eng, what, sizeof(what));
	if (r < 0) {
		fprintf(stderr, "ringcap: %s\n", what[0] ? what : rc_strerror(r));
		return r == -EINVAL ? 2 : 1; /* a bad option value: usage error */
	}
	struct flowlog_writer *w = NULL;
	if (o.eng.capture) {
		unsigned nr;
		struct frq *const *rings = eng_rings(e, &nr);
		struct flowlog_writer_opts wo = {
			.path = o.save_file,
			.print = o.verbosity >= 0 ? stdout : NULL,
			.print_verbosity = o.verbosity,
			.rotate_size = o.flowlog_rotate_size,
			.rotate_interval_ms = o.flowlog_rotate_interval_ms,
			.compress = o.flowlog_compress,
			.compress_level = o.flowlog_compress_level,
		};
		r = flowlog_writer_start(&w, &wo, rings, nr);
		if (r < 0) {
			fprintf(stderr, "ringcap: cannot write %s: %s\n",
				o.save_file ? o.save_file : "flows",
				strerror(-r));
			eng_destroy(e);
			return 1;
		}
	}
	r = eng_run(e);
	if (r < 0) {
		fprintf(stderr, "ringcap: cannot start shards: %s\n",
			strerror(-r));
		eng_shutdown(e);
		eng_destroy(e);
		if (w)
			flowlog_writer_stop(w);
		return 1;
	}
	if (o.verbosity >= 0) {
		for (unsigned i = 0; i < o.eng.nmodes; i++) {
			const struct eng_mode *m = &o.eng.modes[i];
			fprintf(stderr, "ringcap: %s proxy listening at %s:%u\n",
				m->spec,
				o.eng.listen_host[0] ? o.eng.listen_host : "*",
				m->listen_port ? m->listen_port
					       : o.eng.listen_port);
		}
	}
	bool tty = o.verbosity >= 0 && isatty(STDERR_FILENO);
	struct eng_stats prev;
	memset(&prev, 0, sizeof(prev));
	uint64_t last = rc_mono_ms();
	int signals = 0;
	for (;;) {
		struct timespec ts = {.tv_sec = 1};
		int sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGINT || sig == SIGTERM) {
			if (tty)
				fputs("\r\033[K", stderr);
			eng_shutdown(e);
			if (++signals == 1)
				break;
		}
		uint64_t now = rc_mono_ms();
		if (tty && now - last >= 1000) {
			print_status(e, &prev, (double)(now - last) / 1000.0,
				     false, stderr);
			last = now;
		}
	}
	/* A second signal during the grace period cuts it short. */
	struct eng_stats st;
	for (;;) {
		struct timespec ts = {.tv_nsec = 100 * 1000000L};
		int sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGINT || sig == SIGTERM)
			eng_shutdown(e);
		eng_stats(e, &st);
		if (st.conns_open == 0)
			break;
	}
	eng_join(e);
	int rc = 0;
	if (w) {
		struct flowlog_stats fs;
		flowlog_writer_stats(w, &fs);
		if (flowlog_writer_stop(w) < 0) {
			fprintf(stderr, "ringcap: writing %s failed\n",
				o.save_file);
			rc = 1;
		}
	}
	if (o.verbosity >= 0) {
		memset(&prev, 0, sizeof(prev));
		print_status(e, &prev, 0, true, stderr);
		print_tls_summary(e, stderr);
	}
	eng_destroy(e);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "read"))
		return cli_read_main(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "export"))
		return cli_export_main(argc - 1, argv + 1);
	return run_proxy(argc, argv);
}
