#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# End-to-end tests of long recordings (FLOWLOG.md, "Segments"): rotation
# under parallel load loses and duplicates no flow, a zstd log cut by
# kill -9 still reads, and `ringcap read -f` shows flows while they are
# recorded, across rotations.
#
#   python3 tests/e2e/test_longrec.py --bin build/cli/ringcap [-k name] [-v] [--keep]
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ARGS = None
BACKEND = None  # (Popen, port)
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
SEGMENT = re.compile(r"\.(\d{6,})(\.part)?$")

# Clients must not pick up a proxy from the environment.
ENV = {k: v for k, v in os.environ.items()
       if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def start_backend():
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "backend.py"),
                          "--port", "0"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    line = p.stdout.readline().decode()
    if not line.startswith("ready "):
        p.kill()
        raise SystemExit("backend did not start: %r" % line)
    return p, int(line.split()[1])


def segments(prefix):
    """Segment files of a rotated set, in number order."""
    d, base = os.path.split(prefix)
    out = []
    for name in os.listdir(d):
        m = SEGMENT.search(name)
        if m and name[:m.start()] == base:
            out.append((int(m.group(1)), name))
    return [os.path.join(d, n) for _, n in sorted(out)]


class Recorder:
    """One ringcap recording to |log| with |sets|."""

    def __init__(self, tc, log, sets=()):
        self.tc = tc
        self.port = free_port()
        self.err = os.path.join(tc.tmp, "ringcap-%d.stderr" % self.port)
        self.cmd = [ARGS.bin, "-q", "--listen-host", "127.0.0.1",
                    "-p", str(self.port), "-w", log,
                    "--set", "confdir=" + os.path.join(tc.tmp, "conf")]
        for s in sets:
            self.cmd += ["--set", s]
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(self.err, "wb"))
        tc.procs.append(self.proc)
        if not wait_port(self.port, self.proc):
            tc.fail("ringcap did not start: %s\n%s" % (" ".join(self.cmd),
                                                        self.stderr()))

    def stderr(self):
        with open(self.err, "rb") as f:
            return f.read()[-3000:].decode("utf-8", "replace")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.tc.fail("ringcap did not exit after SIGTERM\n" + self.stderr())
        self.tc.assertEqual(rc, 0, self.stderr())

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


def curl_batch(tc, port, urls, name):
    """One curl process fetching |urls| through the proxy on one
    connection; returns the Popen."""
    cfg = os.path.join(tc.tmp, name + ".curl")
    with open(cfg, "w") as f:
        for u in urls:
            f.write('url = "%s"\noutput = "/dev/null"\n' % u)
    return subprocess.Popen(
        ["curl", "-sS", "--max-time", "120", "-x", "http://127.0.0.1:%d" % port,
         "-w", "%{http_code}\n", "-K", cfg], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=ENV)


def load(tc, port, paths, procs=4):
    """Fetch every path once with |procs| parallel curls; all must be 200."""
    origin = "http://127.0.0.1:%d" % BACKEND[1]
    batches = [paths[i::procs] for i in range(procs)]
    ps = [curl_batch(tc, port, [origin + p for p in b], "load%d" % i)
          for i, b in enumerate(batches)]
    for p in ps:
        out, err = p.communicate(timeout=300)
        codes = out.decode().split()
        tc.assertEqual(p.returncode, 0, err.decode()[-500:])
        tc.assertEqual(set(codes), {"200"}, codes[:20])


def read(tc, args, ok_cut=False):
    """`ringcap read --json ARGS`: the flows, after checking the exit code
    and that nothing but "cut short" (if allowed) was said on stderr."""
    r = subprocess.run([ARGS.bin, "read", "--json"] + list(args),
                       capture_output=True, timeout=120)
    err = r.stderr.decode()
    tc.assertEqual(r.returncode, 0, err[-2000:])
    for line in err.splitlines():
        tc.assertTrue(ok_cut and "cut short" in line, "stderr: %s" % line)
    flows = [json.loads(x) for x in r.stdout.decode().splitlines() if x.strip()]
    return flows, err


def token():
    """64 random hex digits: request ids, as real URLs carry, so the log
    does not compress to nothing (every backend body is the same)."""
    return os.urandom(32).hex()


def paths_of(flows):
    return [f["request"]["path"] for f in flows if "request" in f]


class LongRec(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rc_longrec_")
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        if ARGS.keep:
            print("\n  kept", self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def rotation_under_load(self, extra, n, size, min_segs):
        log = os.path.join(self.tmp, "rot.rcap")
        rc = Recorder(self, log, ["flowlog_rotate_size=%dk" % size] + extra)
        want = ["/bytes/3k?i=%d&r=%s" % (i, token()) for i in range(n)]
        load(self, rc.port, want, procs=4)
        rc.stop()
        segs = segments(log)
        self.assertFalse(os.path.exists(log), "the bare name is not written")
        self.assertGreaterEqual(len(segs), min_segs, segs)
        self.assertFalse([s for s in segs if s.endswith(".part")],
                         "a .part left after a clean stop")
        # every segment is a complete log on its own
        total = []
        for s in segs:
            flows, _ = read(self, [s])
            self.assertGreater(len(flows), 0, s)
            total += paths_of(flows)
        # the -w name reads the whole set, so does the directory
        whole = paths_of(read(self, [log])[0])
        self.assertEqual(whole, total)
        self.assertEqual(paths_of(read(self, [self.tmp])[0]), total)
        self.assertEqual(len(total), n, "flows lost or duplicated")
        self.assertEqual(sorted(total), sorted(want))
        return segs

    def test_rotation_under_load_plain(self):
        segs = self.rotation_under_load([], 1200, 128, 5)
        for s in segs:
            self.assertLessEqual(os.path.getsize(s), 128 << 10, s)

    def test_rotation_under_load_zstd(self):
        segs = self.rotation_under_load(["flowlog_compress=zstd"], 3000, 64, 3)
        for s in segs:
            with open(s, "rb") as f:
                self.assertEqual(f.read(4), ZSTD_MAGIC, s)

    def test_kill9_mid_write_zstd(self):
        log = os.path.join(self.tmp, "k.rcap")
        rc = Recorder(self, log, ["flowlog_compress=zstd"])
        origin = "http://127.0.0.1:%d" % BACKEND[1]
        stop = threading.Event()

        def hammer(k):
            i = 0
            while not stop.is_set():
                urls = [origin + "/bytes/2k?t=%d&i=%d" % (k, i + j)
                        for j in range(50)]
                i += 50
                p = curl_batch(self, rc.port, urls, "k9-%d" % k)
                p.communicate(timeout=60)

        ts = [threading.Thread(target=hammer, args=(k,), daemon=True)
              for k in range(3)]
        for t in ts:
            t.start()
        time.sleep(3.0)  # past a zstd frame end (every 2 s)
        rc.kill9()
        stop.set()
        for t in ts:
            t.join(60)
        with open(log, "rb") as f:
            self.assertEqual(f.read(4), ZSTD_MAGIC)
        flows, err = read(self, [log], ok_cut=True)
        self.assertGreater(len(flows), 50, err)
        self.assertEqual(len(set(paths_of(flows))), len(flows))
        # the text form too
        r = subprocess.run([ARGS.bin, "read", log], capture_output=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(r.stdout.decode().splitlines()), len(flows))
        print("\n  kill -9: %d flows read back from %d bytes; %s" % (
            len(flows), os.path.getsize(log), err.strip() or "clean end"))

    def test_kill9_with_rotation_reads_directory(self):
        log = os.path.join(self.tmp, "kr.rcap")
        rc = Recorder(self, log, ["flowlog_compress=zstd",
                                  "flowlog_rotate_size=64k"])
        origin = "http://127.0.0.1:%d" % BACKEND[1]
        n = 1500
        p = curl_batch(self, rc.port, [origin + "/bytes/4k?i=%d&r=%s" % (
            i, token()) for i in range(n)], "kr")
        p.communicate(timeout=120)
        time.sleep(0.5)  # the writer has synced the live segment
        rc.kill9()
        segs = segments(log)
        self.assertGreaterEqual(len(segs), 2, segs)
        self.assertTrue(segs[-1].endswith(".part"), segs)
        flows, err = read(self, [self.tmp], ok_cut=True)
        got = paths_of(flows)
        self.assertEqual(len(set(got)), len(got))
        self.assertEqual(len(got), n, err)

    def test_follow_sees_flows_as_they_come_plain(self):
        self.follow([], (3, 40, 200))

    def test_follow_sees_flows_as_they_come_zstd(self):
        self.follow(["flowlog_compress=zstd"], (3, 40, 1500))

    def follow(self, extra, batches):
        log = os.path.join(self.tmp, "f.rcap")
        # the follower starts first: it waits for the log to appear
        fol = subprocess.Popen([ARGS.bin, "read", "-f", log],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.procs.append(fol)
        lines = []
        cond = threading.Condition()

        def pump():
            for line in fol.stdout:
                with cond:
                    lines.append(line.decode())
                    cond.notify_all()

        threading.Thread(target=pump, daemon=True).start()

        def wait_for(pred, what, timeout=15.0):
            end = time.monotonic() + timeout
            with cond:
                while not pred():
                    left = end - time.monotonic()
                    if left <= 0:
                        self.fail("read -f did not show %s; %d lines, last %r" % (
                            what, len(lines), lines[-3:]))
                    cond.wait(left)

        rc = Recorder(self, log, ["flowlog_rotate_size=64k"] + extra)
        origin = "http://127.0.0.1:%d" % BACKEND[1]
        seen = lambda tag: sum(1 for l in lines if "tag=%s&" % tag in l)
        for k, n in enumerate(batches):
            p = curl_batch(self, rc.port, [origin + "/bytes/2k?tag=%d&i=%d&r=%s" % (
                k, i, token()) for i in range(n)], "f%d" % k)
            p.communicate(timeout=60)
            t0 = time.monotonic()
            wait_for(lambda: seen(k) >= n, "batch %d" % k)
            print("\n  batch %d: %d flows shown %.2fs after the last response" % (
                k, n, time.monotonic() - t0), end="")
        self.assertGreaterEqual(len(segments(log)), 2, "no rotation happened")
        rc.stop()
        time.sleep(0.5)
        self.assertIsNone(fol.poll(), "read -f must keep following")
        fol.send_signal(signal.SIGINT)
        fol.wait(10)
        got = [re.search(r"tag=\d+&i=\d+", l).group(0) for l in lines]
        self.assertEqual(len(got), len(set(got)), "a flow shown twice")
        self.assertEqual(len(got), sum(batches))
        err = fol.stderr.read().decode()
        self.assertNotIn("corrupt", err)


def main():
    global ARGS, BACKEND
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bin", default="build/cli/ringcap")
    ap.add_argument("-k", action="append", default=[], help="run tests matching")
    ap.add_argument("-v", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep temp dirs")
    ARGS = ap.parse_args()
    ARGS.bin = os.path.abspath(ARGS.bin)
    if not os.access(ARGS.bin, os.X_OK):
        raise SystemExit("no ringcap binary at %s" % ARGS.bin)
    BACKEND = start_backend()
    try:
        loader = unittest.TestLoader()
        if ARGS.k:
            loader.testNamePatterns = ["*%s*" % k for k in ARGS.k]
        suite = loader.loadTestsFromTestCase(LongRec)
        res = unittest.TextTestRunner(verbosity=2 if ARGS.v else 1).run(suite)
    finally:
        BACKEND[0].kill()
        BACKEND[0].wait(5)
    sys.exit(0 if res.wasSuccessful() and res.testsRun else 1)


if __name__ == "__main__":
    main()
