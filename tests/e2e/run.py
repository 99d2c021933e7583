#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# End-to-end tests: the real ringcap binary on loopback between curl / raw
# sockets and our backend (backend.py), then the flow log read back with
# `ringcap read --json`. See README.md for what each test covers.
#
#   python3 tests/e2e/run.py --bin BUILD/cli/ringcap [-k pattern] [-v]
#   python3 tests/e2e/run.py --peer mitmdump      (proxy behaviour only, no log checks)
import argparse
import base64
import hashlib
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
sys.path.insert(0, HERE)
import backend  # noqa: E402  (payload(), parse_size(), Conn)

ARGS = None
BACKEND = None  # (Popen, port)
MiB = 1 << 20

# Clients must not pick up a proxy from the environment.
ENV = {k: v for k, v in os.environ.items()
       if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc=None, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def sanitized():
    """RINGCAP_SANITIZED=1: an ASan/UBSan build (scripts/test); its shadow
    memory makes RSS meaningless, so the RSS bounds are reported only."""
    return os.environ.get("RINGCAP_SANITIZED", "") not in ("", "0")


def is_mitm():
    return ARGS.peer == "mitmdump"


def ringcap_only(fn):
    """The test needs a ringcap-only feature (option, subcommand)."""
    def wrapper(self, *a, **kw):
        if is_mitm():
            raise unittest.SkipTest("needs ringcap")
        return fn(self, *a, **kw)
    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


# --------------------------------------------------------------------------
# The flow log as `ringcap read --json` prints it. The accessors below are the
# one place that knows the JSON schema (FLOWLOG.md).

def msg_body(m):
    if not m:
        return b""
    c = m.get("content")
    if c is None:
        return b""
    return base64.b64decode(c)


def headers_of(m):
    return [tuple(h) for h in (m or {}).get("headers") or []]


def header(m, name):
    for n, v in headers_of(m):
        if n.lower() == name.lower():
            return v
    return None


def peer_of(f):
    """client peer as 'addr:port'."""
    p = (f.get("client") or {}).get("peer")
    if isinstance(p, dict):
        return "%s:%s" % (p.get("addr") or p.get("host"), p.get("port"))
    if isinstance(p, (list, tuple)):
        return "%s:%s" % (p[0], p[1])
    return str(p)


def error_of(f):
    return f.get("error") or None


def tcp_of(f):
    t = f.get("tcp")
    if t:
        return t
    return {"host": f.get("tcp_host"), "port": f.get("tcp_port"),
            "bytes_up": f.get("bytes_up"), "bytes_down": f.get("bytes_down")}


def path_of(f):
    return (f.get("request") or {}).get("path")


def status_of(f):
    return (f.get("response") or {}).get("status")


# --------------------------------------------------------------------------

class Proxy:
    """One ringcap (or mitmdump) process under test."""

    def __init__(self, tc, modes=(), port=None, sets=(), extra=(), name="rc",
                 log=None, quiet=True):
        self.tc = tc
        self.name = name
        self.port = port if port is not None else free_port()
        self.log = log or os.path.join(tc.tmp, name + ".rcap")
        self.out = os.path.join(tc.tmp, name + ".stdout")
        self.err = os.path.join(tc.tmp, name + ".stderr")
        if is_mitm():
            cmd = ["mitmdump", "-q", "--listen-host", "127.0.0.1",
                   "-p", str(self.port), "-w", self.log]
            for m in modes:
                cmd += ["--mode", m]
            for s in sets:
                if s.split("=")[0] in ("keep_host_header", "stream_large_bodies"):
                    cmd += ["--set", s]
        else:
            # confdir: the CA and leaf cache live in the test's temp dir,
            # never in the user's ~/.ringcap.
            cmd = [ARGS.bin] + (["-q"] if quiet else []) + [
                "--listen-host", "127.0.0.1", "-w", self.log,
                "--set", "confdir=" + os.path.join(tc.tmp, "conf")]
            if not any("@" in m for m in modes) or len(modes) > 1:
                cmd += ["-p", str(self.port)]
            for m in modes:
                cmd += ["--mode", m]
            for s in sets:
                cmd += ["--set", s]
        cmd += list(extra)
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=open(self.out, "wb"),
                                     stderr=open(self.err, "wb"))
        tc.procs.append(self.proc)

    def wait(self, port=None):
        if not wait_port(port or self.port, self.proc):
            self.tc.fail("%s did not accept on port %d (rc=%s)\ncmd: %s\n%s" % (
                self.name, port or self.port, self.proc.poll(),
                " ".join(self.cmd), self.stderr()))
        return self

    def stderr(self):
        try:
            with open(self.err, "rb") as f:
                return f.read()[-4000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def hwm_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return None

    def stop(self, timeout=10.0):
        """SIGTERM; must exit 0 within |timeout|."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            self.tc.fail("%s did not exit within %.0fs of SIGTERM\n%s" % (
                self.name, timeout, self.stderr()))
        if is_mitm():
            return rc  # mitmdump dies by the signal when a flow is in flight
        self.tc.assertEqual(rc, 0, "%s exit code after SIGTERM\n%s" % (
            self.name, self.stderr()))
        return rc

    def flows(self):
        """Stop, then the flow log as a list of dicts (SkipTest under mitmdump:
        everything before the log check has passed by then)."""
        self.stop()
        if is_mitm():
            raise unittest.SkipTest("proxy behaviour ok; log checks need ringcap")
        return read_json(self.tc, self.log)


def read_json(tc, path):
    r = subprocess.run([ARGS.bin, "read", "--json", path], capture_output=True,
                       timeout=120)
    tc.assertEqual(r.returncode, 0, "ringcap read --json: %s" % r.stderr[-2000:])
    flows = []
    for i, line in enumerate(r.stdout.decode("utf-8").splitlines()):
        if not line.strip():
            continue
        try:
            flows.append(json.loads(line))
        except ValueError as e:
            tc.fail("read --json line %d is not JSON (%s): %r" % (i + 1, e, line[:300]))
    # Each shard has its own ring: records of flows that ended within a few
    # milliseconds of each other on different shards may be written in either
    # order (FLOWLOG.md). Order by when the request began, as a user would.
    def began(f):
        rq = f.get("request") or {}
        return rq.get("ts_start") or (f.get("client") or {}).get("ts_start") or 0
    flows.sort(key=began)
    return flows


class Resp:
    def __init__(self, status, reason, headers, body, version):
        self.status, self.reason = status, reason
        self.headers, self.body, self.version = headers, body, version

    def header(self, name):
        return backend.hdr(self.headers, name)


def read_response(c, method="GET"):
    """One HTTP/1 response from a backend.Conn (skips 1xx). None at EOF."""
    while True:
        line = c.readline()
        if line is None:
            return None
        m = re.match(rb"(HTTP/1\.[01]) (\d{3}) ?(.*)\r?\n$", line)
        if not m:
            raise AssertionError("bad status line %r" % line[:200])
        status = int(m.group(2))
        headers = []
        while True:
            h = c.readline()
            if h is None:
                raise AssertionError("EOF in response head")
            if h in (b"\r\n", b"\n"):
                break
            n, v = h.rstrip(b"\r\n").split(b":", 1)
            headers.append([n.decode("latin-1"), v.strip().decode("latin-1")])
        if 100 <= status < 200:
            continue
        break
    te = backend.hdr(headers, "transfer-encoding")
    cl = backend.hdr(headers, "content-length")
    if method == "HEAD" or status in (204, 304):
        body = b""
    elif te and te.lower() == "chunked":
        body = b"".join(backend.body_iter(c, headers))
    elif cl is not None:
        body = c.read_exact(int(cl))
    else:
        out = bytearray()
        while True:
            d = c.read_some(65536)
            if not d:
                break
            out += d
        body = bytes(out)
    return Resp(status, m.group(3).decode("latin-1"), headers, body,
                m.group(1).decode())


def raw_conn(port, timeout=10.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    return s, backend.Conn(s)


def start_echo():
    """A TCP echo server on a free loopback port (for non-HTTP tunnels)."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)

    def echo(c):
        with c:
            while True:
                try:
                    d = c.recv(65536)
                except OSError:
                    return
                if not d:
                    return
                c.sendall(d)

    def serve():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(c,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return ls


# Bytes that are neither HTTP nor a TLS ClientHello: relayed as a tcp flow.
NOT_HTTP = [b"\x00\x01binary-hello\xff", b"\x02second message\n"]


def connect_tunnel_echo(proxy_port, echo_port, chunks=NOT_HTTP, timeout=10.0):
    """CONNECT through the proxy to the echo server, exchange |chunks| one by
    one (each must come back unchanged), close."""
    s = socket.create_connection(("127.0.0.1", proxy_port), timeout=timeout)
    s.settimeout(timeout)
    with s:
        s.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"
                  % (echo_port, echo_port))
        head = b""
        while b"\r\n\r\n" not in head:
            d = s.recv(1)
            if not d:
                raise AssertionError("proxy closed during CONNECT: %r" % head)
            head += d
        if not head.startswith(b"HTTP/1.1 200"):
            raise AssertionError("CONNECT answered %r" % head)
        for ch in chunks:
            s.sendall(ch)
            got = b""
            while len(got) < len(ch):
                d = s.recv(65536)
                if not d:
                    raise AssertionError("tunnel closed early")
                got += d
            if got != ch:
                raise AssertionError("echo mismatch: %r != %r" % (got, ch))


def raw_exchange(port, data, nresp=1, methods=None, timeout=10.0):
    """Send |data| in one go, read |nresp| responses. Returns (responses, conn)."""
    s, c = raw_conn(port, timeout)
    s.sendall(data)
    out = []
    for i in range(nresp):
        r = read_response(c, (methods or ["GET"] * nresp)[i])
        if r is None:
            break
        out.append(r)
    return out, s, c


def read_until_close(s, c, timeout=5.0):
    s.settimeout(timeout)
    data = bytes(c.buf)
    c.buf.clear()
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return data, True
            data += d
    except socket.timeout:
        return data, False
    except OSError:
        return data, True


class E2E(unittest.TestCase):
    maxDiff = 4000

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rc-e2e-")
        self.procs = []
        self.B = BACKEND[1]
        self.origin = "http://127.0.0.1:%d" % self.B

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    pass
        if ARGS.keep:
            print("\n  kept %s" % self.tmp, file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- helpers -----------------------------------------------------------

    def proxy(self, *a, **kw):
        return Proxy(self, *a, **kw).wait()

    def curl(self, *args, timeout=30):
        cmd = ["curl", "-sS", "--max-time", str(timeout)] + [str(a) for a in args]
        try:
            return subprocess.run(cmd, capture_output=True, timeout=timeout + 15,
                                  env=ENV)
        except subprocess.TimeoutExpired:
            self.fail("curl hung: %s" % " ".join(cmd))

    def get(self, url, proxy=None, *extra, timeout=30):
        """(status, body) of one URL."""
        args = list(extra)
        if proxy:
            args += ["-x", "http://127.0.0.1:%d" % proxy]
        else:
            args += ["--noproxy", "*"]
        r = self.curl(*args, "-w", "\n%{http_code}", url, timeout=timeout)
        body, _, code = r.stdout.rpartition(b"\n")
        self.assertTrue(code.isdigit(), "curl %s: rc=%d %s" % (url, r.returncode, r.stderr))
        return int(code), body

    def assert_ok_body(self, url, proxy, expect, *extra):
        st, body = self.get(url, proxy, *extra)
        self.assertEqual(st, 200, body[:300])
        self.assertEqual(len(body), len(expect))
        self.assertTrue(body == expect, "body differs from the served one")

    def assert_flow(self, f, method, path, status, port=None, mode=None):
        self.assertEqual(f.get("type"), "http", f)
        rq = f.get("request") or {}
        self.assertEqual(rq.get("method"), method)
        self.assertEqual(rq.get("path"), path)
        self.assertEqual(rq.get("host"), "127.0.0.1")
        self.assertEqual(rq.get("port"), port or self.B)
        self.assertEqual(status_of(f), status)
        if mode:
            self.assertEqual(f.get("mode"), mode)
        if status and status < 400:
            self.assertFalse(error_of(f), "unexpected error in flow: %s" % error_of(f))

    def assert_msg_body(self, m, full, limit):
        """Captured body of a request/response |m| against the payload |full|
        and the capture limit."""
        self.assertEqual(m.get("content_length"), len(full))
        cap = msg_body(m)
        self.assertEqual(len(cap), min(len(full), limit))
        self.assertTrue(cap == full[:limit], "captured body differs from payload")
        self.assertEqual(bool(m.get("content_truncated")), len(full) > limit)

    def assert_serves(self, proxy):
        self.assert_ok_body(self.origin + "/bytes/10", proxy, backend.payload(10))

    # ---- basic modes -------------------------------------------------------

    def test_regular_bytes(self):
        p = self.proxy()
        self.assert_ok_body(self.origin + "/bytes/1024", p.port, backend.payload(1024))
        flows = p.flows()
        self.assertEqual(len(flows), 1, flows)
        f = flows[0]
        self.assert_flow(f, "GET", "/bytes/1024", 200, mode="regular")
        self.assertEqual(f["request"].get("scheme"), "http")
        self.assertEqual(f["request"].get("http_version"), "HTTP/1.1")
        self.assertEqual(header(f["request"], "Host"), "127.0.0.1:%d" % self.B)
        self.assertEqual(header(f["response"], "Content-Length"), "1024")
        self.assert_msg_body(f["response"], backend.payload(1024), MiB)
        self.assertEqual(f["request"].get("content_length"), 0)
        self.assertTrue(peer_of(f).startswith("127.0.0.1:"), peer_of(f))
        self.assertRegex(f.get("id", ""), r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-"
                         r"[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

    def _reverse(self, modes, port, sets=(), expect_host=None):
        p = self.proxy(modes=modes, port=port, sets=sets)
        st, body = self.get("http://127.0.0.1:%d/echo?x=1" % port)
        self.assertEqual(st, 200, body)
        doc = json.loads(body)
        self.assertEqual(doc["path"], "/echo?x=1")
        host = [v for n, v in doc["headers"] if n.lower() == "host"]
        self.assertEqual(host, [expect_host])
        flows = p.flows()
        self.assertEqual(len(flows), 1, flows)
        self.assert_flow(flows[0], "GET", "/echo?x=1", 200, mode="reverse")

    def test_reverse_port_flag(self):
        P = free_port()
        self._reverse(["reverse:" + self.origin], P,
                      expect_host="127.0.0.1:%d" % self.B)

    @ringcap_only
    def test_reverse_at_port(self):
        P = free_port()
        self._reverse(["reverse:%s@%d" % (self.origin, P)], P,
                      expect_host="127.0.0.1:%d" % self.B)

    def test_reverse_keep_host_header(self):
        P = free_port()
        self._reverse(["reverse:" + self.origin], P, sets=["keep_host_header=true"],
                      expect_host="127.0.0.1:%d" % P)

    @ringcap_only
    def test_several_modes(self):
        P1, P2 = free_port(), free_port()
        p = Proxy(self, modes=["regular", "reverse:%s@%d" % (self.origin, P2)],
                  port=P1)
        p.wait(P1)
        p.wait(P2)
        self.assert_ok_body(self.origin + "/bytes/11", P1, backend.payload(11))
        st, body = self.get("http://127.0.0.1:%d/bytes/22" % P2)
        self.assertEqual((st, body), (200, backend.payload(22)))
        flows = p.flows()
        self.assertEqual(len(flows), 2, flows)
        self.assert_flow(flows[0], "GET", "/bytes/11", 200, mode="regular")
        self.assert_flow(flows[1], "GET", "/bytes/22", 200, mode="reverse")

    def _upstream(self, at_form):
        b = self.proxy(name="second")
        PA = free_port()
        if at_form:
            a = self.proxy(modes=["upstream:http://127.0.0.1:%d@%d" % (b.port, PA)],
                           port=PA, name="first")
        else:
            a = self.proxy(modes=["upstream:http://127.0.0.1:%d" % b.port], port=PA,
                           name="first")
        self.assert_ok_body(self.origin + "/bytes/333", a.port, backend.payload(333))
        st, body = self.get(self.origin + "/echo", a.port)
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(body)["path"], "/echo")
        fa = a.flows()
        fb = b.flows()
        self.assertEqual(len(fa), 2, fa)
        self.assertEqual(len(fb), 2, fb)
        self.assert_flow(fa[0], "GET", "/bytes/333", 200, mode="upstream")
        self.assert_flow(fb[0], "GET", "/bytes/333", 200, mode="regular")
        self.assert_msg_body(fa[0]["response"], backend.payload(333), MiB)
        self.assert_msg_body(fb[0]["response"], backend.payload(333), MiB)
        self.assert_flow(fa[1], "GET", "/echo", 200, mode="upstream")
        self.assert_flow(fb[1], "GET", "/echo", 200, mode="regular")

    def test_upstream_chain(self):
        self._upstream(False)

    @ringcap_only
    def test_upstream_chain_at_port(self):
        self._upstream(True)

    # ---- connections -------------------------------------------------------

    def test_keepalive_curl(self):
        p = self.proxy()
        urls = [self.origin + "/bytes/%d" % n for n in (100, 200, 300)]
        r = self.curl("-x", "http://127.0.0.1:%d" % p.port,
                      "-w", "%{num_connects} %{http_code} %{size_download}\n",
                      "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null", *urls)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode().split("\n"),
                         ["1 200 100", "0 200 200", "0 200 300", ""])
        flows = p.flows()
        self.assertEqual([path_of(f) for f in flows],
                         ["/bytes/100", "/bytes/200", "/bytes/300"])
        self.assertEqual(len({peer_of(f) for f in flows}), 1,
                         "one client connection expected")
        for f, n in zip(flows, (100, 200, 300)):
            self.assert_msg_body(f["response"], backend.payload(n), MiB)

    def test_pipelining(self):
        p = self.proxy()
        o = "127.0.0.1:%d" % self.B
        reqs = (
            "GET http://%s/echo?n=1 HTTP/1.1\r\nHost: %s\r\n\r\n" % (o, o) +
            "POST http://%s/echo?n=2 HTTP/1.1\r\nHost: %s\r\nContent-Length: 5\r\n\r\nhello" % (o, o) +
            "GET http://%s/bytes/77 HTTP/1.1\r\nHost: %s\r\n\r\n" % (o, o) +
            "GET http://%s/echo?n=4 HTTP/1.1\r\nHost: %s\r\n\r\n" % (o, o)
        ).encode()
        rs, s, c = raw_exchange(p.port, reqs, 4)
        s.close()
        self.assertEqual([r.status for r in rs], [200, 200, 200, 200])
        self.assertEqual(json.loads(rs[0].body)["path"], "/echo?n=1")
        d2 = json.loads(rs[1].body)
        self.assertEqual((d2["path"], d2["method"], d2["body_length"]),
                         ("/echo?n=2", "POST", 5))
        self.assertEqual(rs[2].body, backend.payload(77))
        self.assertEqual(json.loads(rs[3].body)["path"], "/echo?n=4")
        flows = p.flows()
        self.assertEqual([path_of(f) for f in flows],
                         ["/echo?n=1", "/echo?n=2", "/bytes/77", "/echo?n=4"])
        self.assertEqual(len({peer_of(f) for f in flows}), 1)
        self.assertEqual(msg_body(flows[1]["request"]), b"hello")

    def test_response_framings(self):
        """chunked, close-delimited, HEAD, 204, 304 through the proxy."""
        p = self.proxy()
        # mitmdump 8 cannot relay trailers at all
        tr = "?trailer=0" if is_mitm() else ""
        self.assert_ok_body(self.origin + "/chunked/100000" + tr, p.port,
                            backend.payload(100000))
        self.assert_ok_body(self.origin + "/close/5000", p.port, backend.payload(5000))
        o = "127.0.0.1:%d" % self.B
        reqs = "".join("%s http://%s%s HTTP/1.1\r\nHost: %s\r\n\r\n" % (m, o, u, o)
                       for m, u in (("HEAD", "/head-ok"), ("GET", "/status/204"),
                                    ("GET", "/status/304"), ("GET", "/chunked/10" + tr),
                                    ("GET", "/bytes/5")))
        rs, s, c = raw_exchange(p.port, reqs.encode(), 5,
                                ["HEAD", "GET", "GET", "GET", "GET"])
        s.close()
        self.assertEqual([r.status for r in rs], [200, 204, 304, 200, 200])
        self.assertEqual(rs[0].header("Content-Length"), "1234")
        self.assertEqual(rs[3].body, backend.payload(10))
        self.assertEqual(rs[4].body, backend.payload(5))
        flows = p.flows()
        self.assertEqual([path_of(f) for f in flows],
                         ["/chunked/100000" + tr, "/close/5000", "/head-ok", "/status/204",
                          "/status/304", "/chunked/10" + tr, "/bytes/5"])
        self.assert_msg_body(flows[0]["response"], backend.payload(100000), MiB)
        self.assert_msg_body(flows[1]["response"], backend.payload(5000), MiB)
        self.assertEqual(flows[2]["request"]["method"], "HEAD")
        self.assertEqual(msg_body(flows[2]["response"]), b"")
        for f in flows:
            self.assertFalse(error_of(f), f)

    # ---- request bodies ----------------------------------------------------

    def _upload_file(self, n):
        data = os.urandom(n)
        path = os.path.join(self.tmp, "up.bin")
        with open(path, "wb") as f:
            f.write(data)
        return data, path

    def test_chunked_upload(self):
        p = self.proxy()
        small, spath = self._upload_file(10000)
        st, body = self.get(self.origin + "/echo", p.port, "-H",
                            "Transfer-Encoding: chunked", "--data-binary", "@" + spath)
        self.assertEqual(st, 200, body)
        doc = json.loads(body)
        self.assertEqual(doc["body_length"], len(small))
        self.assertEqual(doc["body_sha256"], hashlib.sha256(small).hexdigest())
        big, bpath = self._upload_file(3 * MiB + 17)
        st, body = self.get(self.origin + "/sink", p.port, "-H",
                            "Transfer-Encoding: chunked", "--data-binary", "@" + bpath)
        self.assertEqual(st, 200, body)
        doc = json.loads(body)
        self.assertEqual(doc["length"], len(big))
        self.assertEqual(doc["sha256"], hashlib.sha256(big).hexdigest())
        flows = p.flows()
        self.assertEqual(len(flows), 2)
        self.assert_flow(flows[0], "POST", "/echo", 200)
        self.assert_msg_body(flows[0]["request"], small, MiB)
        self.assert_flow(flows[1], "POST", "/sink", 200)
        self.assert_msg_body(flows[1]["request"], big, MiB)

    def test_expect_100_continue(self):
        p = self.proxy()
        data, path = self._upload_file(2 * MiB + 5)
        t0 = time.monotonic()
        r = self.curl("-v", "-x", "http://127.0.0.1:%d" % p.port, "-H",
                      "Expect: 100-continue", "--expect100-timeout", "20",
                      "--data-binary", "@" + path, self.origin + "/echo", timeout=40)
        el = time.monotonic() - t0
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertIn(b"< HTTP/1.1 100 Continue", r.stderr,
                      "client never got 100 Continue (waited %.1fs)" % el)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["body_length"], len(data))
        self.assertEqual(doc["body_sha256"], hashlib.sha256(data).hexdigest())
        self.assertLess(el, 15)
        flows = p.flows()
        self.assertEqual(len(flows), 1)
        self.assert_flow(flows[0], "POST", "/echo", 200)
        self.assert_msg_body(flows[0]["request"], data, MiB)

    # ---- capture limits and memory ----------------------------------------

    def test_large_download_bounded_rss(self):
        n = backend.parse_size(ARGS.large) if not is_mitm() else 64 * MiB
        p = self.proxy(sets=["body_capture_limit=1MiB", "stream_large_bodies=1m"])
        r = self.curl("-x", "http://127.0.0.1:%d" % p.port, "-o", "/dev/null", "-w",
                      "%{http_code} %{size_download}", self.origin + "/stream/%d" % n,
                      timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode(), "200 %d" % n)
        if not is_mitm():
            hwm = p.hwm_kib()
            if not sanitized():
                self.assertLess(hwm, 64 * 1024, "ringcap VmHWM %d KiB" % hwm)
            print("\n  download %d bytes: VmHWM %d KiB" % (n, hwm), file=sys.stderr)
        flows = p.flows()
        self.assertEqual(len(flows), 1)
        self.assert_flow(flows[0], "GET", "/stream/%d" % n, 200)
        resp = flows[0]["response"]
        self.assertEqual(resp.get("content_length"), n)
        self.assertTrue(resp.get("content_truncated"))
        self.assertTrue(msg_body(resp) == backend.payload(MiB))

    def test_large_upload_bounded_rss(self):
        n = backend.parse_size(ARGS.large_up) if not is_mitm() else 64 * MiB
        p = self.proxy(sets=["body_capture_limit=1MiB", "stream_large_bodies=1m"])
        o = "127.0.0.1:%d" % self.B
        s, c = raw_conn(p.port, timeout=60)
        s.sendall(("POST http://%s/sink HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n"
                   "Content-Type: application/octet-stream\r\n\r\n" % (o, o, n)).encode())
        h = hashlib.sha256()
        for piece in backend.payload_iter(n):
            s.sendall(piece)
            h.update(piece)
        r = read_response(c)
        s.close()
        self.assertEqual(r.status, 200, r.body)
        doc = json.loads(r.body)
        self.assertEqual(doc, {"length": n, "sha256": h.hexdigest()})
        if not is_mitm():
            hwm = p.hwm_kib()
            if not sanitized():
                self.assertLess(hwm, 64 * 1024, "ringcap VmHWM %d KiB" % hwm)
            print("\n  upload %d bytes: VmHWM %d KiB" % (n, hwm), file=sys.stderr)
        flows = p.flows()
        self.assertEqual(len(flows), 1)
        self.assert_flow(flows[0], "POST", "/sink", 200)
        rq = flows[0]["request"]
        self.assertEqual(rq.get("content_length"), n)
        self.assertTrue(rq.get("content_truncated"))
        self.assertTrue(msg_body(rq) == backend.payload(MiB))

    @ringcap_only
    def test_capture_limit_zero(self):
        p = self.proxy(sets=["body_capture_limit=0"])
        self.assert_ok_body(self.origin + "/bytes/1000", p.port, backend.payload(1000))
        st, body = self.get(self.origin + "/sink", p.port, "--data-binary", "abcdef")
        self.assertEqual(st, 200)
        flows = p.flows()
        self.assertEqual(len(flows), 2)
        self.assert_msg_body(flows[0]["response"], backend.payload(1000), 0)
        self.assert_msg_body(flows[1]["request"], b"abcdef", 0)

    @ringcap_only
    def test_capture_limit_small(self):
        p = self.proxy(sets=["body_capture_limit=100"])
        for n in (99, 100, 101, 5000):
            self.assert_ok_body(self.origin + "/bytes/%d" % n, p.port, backend.payload(n))
        self.assert_ok_body(self.origin + "/chunked/3000", p.port, backend.payload(3000))
        up = backend.payload(250)
        path = os.path.join(self.tmp, "u")
        with open(path, "wb") as fh:
            fh.write(up)
        st, body = self.get(self.origin + "/echo", p.port, "--data-binary", "@" + path)
        self.assertEqual(st, 200)
        flows = p.flows()
        self.assertEqual(len(flows), 6)
        for f, n in zip(flows, (99, 100, 101, 5000, 3000)):
            self.assert_msg_body(f["response"], backend.payload(n), 100)
        self.assert_msg_body(flows[5]["request"], up, 100)

    @ringcap_only
    def test_capture_limit_suffix(self):
        p = self.proxy(sets=["body_capture_limit=1k"])
        self.assert_ok_body(self.origin + "/bytes/2000", p.port, backend.payload(2000))
        flows = p.flows()
        self.assertEqual(len(flows), 1)
        self.assert_msg_body(flows[0]["response"], backend.payload(2000), 1024)

    # ---- errors ------------------------------------------------------------

    def _error_then_ok(self, p, status, code_re=None):
        """After an error exchange: a normal request still works, and the log
        has exactly one error flow then the normal one."""
        self.assert_serves(p.port)
        flows = p.flows()
        self.assertEqual(len(flows), 2, flows)
        e, ok = flows
        self.assertTrue(error_of(e), "error flow has no error: %s" % e)
        err = error_of(e)
        self.assertTrue(err.get("msg"), err)
        if code_re:
            self.assertRegex(str(err.get("name", "")) + " " + str(err.get("msg", "")),
                             code_re)
        if e.get("response"):
            self.assertEqual(status_of(e), status)
        self.assertNotEqual(e.get("term"), "ok")
        self.assertFalse(error_of(ok), ok)
        self.assertEqual(path_of(ok), "/bytes/10")
        self.assertEqual(status_of(ok), 200)
        return e

    def _raw_error(self, p, data, status):
        rs, s, c = raw_exchange(p.port, data, 1)
        self.assertEqual(len(rs), 1, "no response")
        self.assertEqual(rs[0].status, status, rs[0].body[:300])
        rest, closed = read_until_close(s, c, 5)
        s.close()
        return rs[0]

    def test_error_400_malformed(self):
        p = self.proxy()
        self._raw_error(p, b"BLAH\r\n\r\n", 400)
        e = self._error_then_ok(p, 400)
        self.assertIn(e.get("term"), ("client_error", None))

    def test_error_400_bad_header(self):
        p = self.proxy()
        o = "127.0.0.1:%d" % self.B
        self._raw_error(p, ("GET http://%s/x HTTP/1.1\r\nHost: %s\r\nno colon here\r\n\r\n"
                            % (o, o)).encode(), 400)
        self._error_then_ok(p, 400)

    @ringcap_only
    def test_error_431_header_too_large(self):
        p = self.proxy(sets=["max_header_size=4k"])
        o = "127.0.0.1:%d" % self.B
        # fits:
        st, _ = self.get(self.origin + "/bytes/3", p.port, "-H", "X-Big: " + "a" * 2000)
        self.assertEqual(st, 200)
        self._raw_error(p, ("GET http://%s/x HTTP/1.1\r\nHost: %s\r\nX-Big: %s\r\n\r\n"
                            % (o, o, "a" * 8000)).encode(), 431)
        self.assert_serves(p.port)
        flows = p.flows()
        self.assertEqual(len(flows), 3, flows)
        self.assertFalse(error_of(flows[0]))
        self.assertTrue(error_of(flows[1]))
        self.assertFalse(error_of(flows[2]))

    def test_error_431_default_limit(self):
        p = self.proxy()
        o = "127.0.0.1:%d" % self.B
        hs = "".join("X-H%d: %s\r\n" % (i, "b" * 1000) for i in range(70))
        data = ("GET http://%s/x HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (o, o, hs)).encode()
        s, c = raw_conn(p.port)
        try:
            s.sendall(data)
        except OSError:
            pass  # the proxy may answer and close before reading all of it
        r = read_response(c)
        s.close()
        self.assertIsNotNone(r)
        self.assertEqual(r.status, 431 if not is_mitm() else r.status)
        if is_mitm():
            raise unittest.SkipTest("mitmdump has no header limit")
        self._error_then_ok(p, 431)

    @ringcap_only
    def test_error_501_unknown_transfer_encoding(self):
        p = self.proxy()
        o = "127.0.0.1:%d" % self.B
        self._raw_error(p, ("POST http://%s/echo HTTP/1.1\r\nHost: %s\r\n"
                            "Transfer-Encoding: gzip\r\n\r\nxxxx" % (o, o)).encode(), 501)
        self._error_then_ok(p, 501)

    def test_error_502_refused(self):
        p = self.proxy()
        dead = free_port()
        st, body = self.get("http://127.0.0.1:%d/nothing" % dead, p.port)
        self.assertEqual(st, 502, body)
        self.assertTrue(body.strip(), "502 without a body")
        self.assertTrue(all(32 <= ch < 127 or ch in b"\r\n\t" for ch in body),
                        "502 body not readable text: %r" % body[:200])
        self.assert_serves(p.port)
        flows = p.flows()
        self.assertEqual(len(flows), 2, flows)
        e = flows[0]
        self.assertEqual((e["request"]["host"], e["request"]["port"]), ("127.0.0.1", dead))
        self.assertTrue(error_of(e))
        self.assertEqual(e.get("term"), "upstream_error")
        self.assertFalse(error_of(flows[1]))

    @ringcap_only
    def test_error_504_response_timeout(self):
        p = self.proxy(sets=["response_timeout=1s"])
        t0 = time.monotonic()
        st, body = self.get(self.origin + "/hang", p.port, timeout=20)
        el = time.monotonic() - t0
        self.assertEqual(st, 504, body)
        self.assertGreater(el, 0.8)
        self.assertLess(el, 5, "504 took %.1fs with response_timeout=1s" % el)
        e = self._error_then_ok(p, 504)
        self.assertEqual(e.get("term"), "upstream_timeout")

    @ringcap_only
    def test_error_504_connect_timeout(self):
        # A listener whose accept queue is full: further SYNs are dropped, so a
        # connect hangs (loopback only).
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(0)
        port = ls.getsockname()[1]
        fillers = []
        for _ in range(8):
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(("127.0.0.1", port))
            fillers.append(f)
        time.sleep(0.2)
        probe = socket.socket()
        probe.settimeout(0.7)
        try:
            probe.connect(("127.0.0.1", port))
            hangs = False
        except socket.timeout:
            hangs = True
        except OSError:
            hangs = False
        probe.close()
        try:
            if not hangs:
                raise unittest.SkipTest("cannot make a blackholed port here")
            p = self.proxy(sets=["connect_timeout=1s"])
            t0 = time.monotonic()
            st, body = self.get("http://127.0.0.1:%d/x" % port, p.port, timeout=20)
            el = time.monotonic() - t0
            self.assertEqual(st, 504, body)
            self.assertLess(el, 5, "connect timeout took %.1fs" % el)
            e = self._error_then_ok(p, 504)
            self.assertEqual(e.get("term"), "upstream_timeout")
        finally:
            for f in fillers:
                f.close()
            ls.close()

    # ---- upstream misbehaviour --------------------------------------------

    def test_upstream_cut_mid_body(self):
        p = self.proxy()
        r = self.curl("-x", "http://127.0.0.1:%d" % p.port, "-o", "/dev/null", "-w",
                      "%{http_code} %{size_download}", self.origin + "/cut/200000")
        self.assertNotEqual(r.returncode, 0, "client was not told the body was cut")
        self.assert_serves(p.port)
        flows = p.flows()
        self.assertEqual(len(flows), 2, flows)
        e = flows[0]
        self.assertEqual(path_of(e), "/cut/200000")
        self.assertTrue(error_of(e), "cut response recorded without an error: %s" % e)
        self.assertEqual(e.get("term"), "upstream_closed")
        self.assertLessEqual((e.get("response") or {}).get("content_length", 0), 100000)
        self.assertFalse(error_of(flows[1]))

    @ringcap_only
    def test_upstream_response_head_too_large(self):
        p = self.proxy(sets=["max_header_size=4k"])
        st, body = self.get(self.origin + "/bigheader/8000", p.port)
        self.assertEqual(st, 502, body[:200])
        self.assert_serves(p.port)
        flows = p.flows()
        self.assertEqual(len(flows), 2, flows)
        self.assertTrue(error_of(flows[0]))
        self.assertFalse(error_of(flows[1]))

    def test_upstream_closes_after_response(self):
        """Client keep-alive survives an upstream that closes (close-delimited,
        then a keep-alive looking response whose server goes away)."""
        p = self.proxy()
        urls = [self.origin + u for u in
                ("/close/100", "/bytes/10", "/then-close/20", "/bytes/30")]
        r = self.curl("-x", "http://127.0.0.1:%d" % p.port, "-w",
                      "%{http_code} %{size_download}\n",
                      *sum((["-o", "/dev/null", u] for u in urls), []))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode().split("\n"),
                         ["200 100", "200 10", "200 20", "200 30", ""])
        flows = p.flows()
        self.assertEqual([status_of(f) for f in flows], [200] * 4)

    def test_upstream_pool_stale_connection(self):
        """A pooled upstream connection that the server closed while idle must
        not turn the next GET into an error."""
        p = self.proxy(sets=["shards=1"])
        self.assert_ok_body(self.origin + "/then-close/10", p.port, backend.payload(10))
        time.sleep(0.5)
        for i in range(3):
            self.assert_ok_body(self.origin + "/bytes/10", p.port, backend.payload(10))
        flows = p.flows()
        self.assertEqual(len(flows), 4, flows)
        for f in flows:
            self.assertFalse(error_of(f), f)

    @ringcap_only
    def test_upstream_pool_reuse(self):
        """Sequential client connections reuse one upstream connection."""
        p = self.proxy(sets=["shards=1"])
        seen = set()
        for i in range(5):
            st, body = self.get(self.origin + "/echo?i=%d" % i, p.port)
            self.assertEqual(st, 200)
            seen.add(json.loads(body)["client"])
        self.assertEqual(len(seen), 1, "upstream connections: %s" % sorted(seen))
        p.stop()

    # ---- client behaviour ---------------------------------------------------

    def test_client_abort_mid_download(self):
        p = self.proxy()
        r = self.curl("-x", "http://127.0.0.1:%d" % p.port, "-o", "/dev/null",
                      "--limit-rate", "2M", self.origin + "/stream/1GiB", timeout=2)
        self.assertEqual(r.returncode, 28, r.stderr)  # curl: timeout
        self.assert_serves(p.port)
        t_abort = time.time()
        flows = p.flows()
        self.assertEqual(len(flows), 2, flows)
        e = [f for f in flows if path_of(f) == "/stream/1GiB"][0]
        ok = [f for f in flows if f is not e][0]
        self.assertEqual(e.get("term"), "client_closed",
                         "client went away at %.3f; flow ended %s (%s)" % (
                             t_abort, (e.get("client") or {}).get("ts_end"), error_of(e)))
        self.assertTrue(error_of(e), e)
        self.assertEqual(status_of(e), 200)
        self.assertLess(e["response"].get("content_length", 0), 1 << 30)
        self.assertFalse(error_of(ok))

    def test_request_byte_by_byte(self):
        p = self.proxy()
        o = "127.0.0.1:%d" % self.B
        data = ("POST http://%s/echo?slow=1 HTTP/1.1\r\nHost: %s\r\nX-A: b\r\n"
                "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n"
                "X-T: 1\r\n\r\n" % (o, o)).encode()
        s, c = raw_conn(p.port)
        for i in range(len(data)):
            s.sendall(data[i:i + 1])
            time.sleep(0.002)
        r = read_response(c)
        s.close()
        self.assertEqual(r.status, 200)
        doc = json.loads(r.body)
        self.assertEqual(doc["body_length"], 5)
        self.assertEqual(doc["body_sha256"], hashlib.sha256(b"abcde").hexdigest())
        self.assertIn(["X-A", "b"], doc["headers"])
        flows = p.flows()
        self.assertEqual(len(flows), 1)
        self.assertEqual(msg_body(flows[0]["request"]), b"abcde")
        self.assertEqual(flows[0]["request"]["content_length"], 5)

    def test_many_pipelined(self):
        p = self.proxy()
        o = "127.0.0.1:%d" % self.B
        n = 60
        data = b"".join(("GET http://%s/bytes/%d HTTP/1.1\r\nHost: %s\r\n\r\n"
                         % (o, i + 1, o)).encode() for i in range(n))
        rs, s, c = raw_exchange(p.port, data, n, timeout=20)
        s.close()
        self.assertEqual(len(rs), n)
        for i, r in enumerate(rs):
            self.assertEqual((r.status, r.body), (200, backend.payload(i + 1)))
        flows = p.flows()
        self.assertEqual([path_of(f) for f in flows],
                         ["/bytes/%d" % (i + 1) for i in range(n)])

    def test_http10_client(self):
        p = self.proxy()
        o = "127.0.0.1:%d" % self.B
        rs, s, c = raw_exchange(p.port, ("GET http://%s/bytes/50 HTTP/1.0\r\n\r\n"
                                         % o).encode(), 1)
        self.assertEqual(len(rs), 1)
        self.assertEqual((rs[0].status, rs[0].body), (200, backend.payload(50)))
        rest, closed = read_until_close(s, c, 5)
        s.close()
        self.assertTrue(closed, "HTTP/1.0 connection left open")
        self.assertEqual(rest, b"")
        flows = p.flows()
        self.assertEqual(len(flows), 1)
        self.assertEqual(flows[0]["request"]["http_version"], "HTTP/1.0")

    def test_connection_close_honoured(self):
        p = self.proxy()
        o = "127.0.0.1:%d" % self.B
        rs, s, c = raw_exchange(p.port, (
            "GET http://%s/bytes/5 HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
            "GET http://%s/bytes/6 HTTP/1.1\r\nHost: %s\r\n\r\n" % (o, o, o, o)).encode(), 1)
        self.assertEqual((rs[0].status, rs[0].body), (200, backend.payload(5)))
        # the client is told its connection ends, whatever the (kept-alive)
        # upstream connection's response said
        self.assertEqual((rs[0].header("Connection") or "").lower(), "close")
        rest, closed = read_until_close(s, c, 5)
        s.close()
        self.assertTrue(closed, "connection not closed after Connection: close")
        self.assertEqual(rest, b"", "answered a request after Connection: close")
        flows = p.flows()
        self.assertEqual([path_of(f) for f in flows], ["/bytes/5"])

    @ringcap_only
    def test_header_timeout(self):
        p = self.proxy(sets=["header_timeout=1s"])
        s, c = raw_conn(p.port)
        s.sendall(b"GET http://127.0.0.1:%d/bytes/5 HTTP/1.1\r\nHost: x\r\n" % self.B)
        t0 = time.monotonic()
        rest, closed = read_until_close(s, c, 6)
        el = time.monotonic() - t0
        s.close()
        self.assertTrue(closed, "slow head not cut after header_timeout=1s")
        self.assertLess(el, 4)
        if rest:
            self.assertRegex(rest, rb"^HTTP/1\.[01] 408 ")
        self.assert_serves(p.port)
        flows = p.flows()
        self.assertGreaterEqual(len(flows), 1)
        self.assertEqual(path_of(flows[-1]), "/bytes/10")
        for f in flows[:-1]:
            self.assertEqual(f.get("term"), "client_timeout", f)

    @ringcap_only
    def test_idle_timeout(self):
        p = self.proxy(sets=["idle_timeout=1s"])
        o = "127.0.0.1:%d" % self.B
        rs, s, c = raw_exchange(p.port, ("GET http://%s/bytes/5 HTTP/1.1\r\nHost: %s\r\n\r\n"
                                         % (o, o)).encode(), 1)
        self.assertEqual(rs[0].status, 200)
        t0 = time.monotonic()
        rest, closed = read_until_close(s, c, 6)
        el = time.monotonic() - t0
        s.close()
        self.assertTrue(closed, "idle keep-alive connection not closed")
        self.assertLess(el, 4)
        self.assertEqual(rest, b"")
        flows = p.flows()
        self.assertEqual(len(flows), 1, flows)
        self.assertFalse(error_of(flows[0]))

    def test_many_connections(self):
        """1000 concurrent client connections, one request each."""
        p = self.proxy()
        o = "127.0.0.1:%d" % self.B
        n = 1000 if not is_mitm() else 200
        socks = []
        for i in range(n):
            s, c = raw_conn(p.port, timeout=30)
            socks.append((s, c))
        for i, (s, c) in enumerate(socks):
            s.sendall(("GET http://%s/bytes/%d?c=%d HTTP/1.1\r\nHost: %s\r\n\r\n"
                       % (o, 100 + i % 7, i, o)).encode())
        for i, (s, c) in enumerate(socks):
            r = read_response(c)
            self.assertEqual((r.status, r.body), (200, backend.payload(100 + i % 7)))
        if not is_mitm():
            hwm = p.hwm_kib()
            print("\n  %d connections: VmHWM %d KiB" % (n, hwm), file=sys.stderr)
            if not sanitized():
                self.assertLess(hwm, 64 * 1024)
        for s, c in socks:
            s.close()
        flows = p.flows()
        self.assertEqual(len(flows), n)
        self.assertEqual(sorted(path_of(f) for f in flows),
                         sorted("/bytes/%d?c=%d" % (100 + i % 7, i) for i in range(n)))

    # ---- request smuggling guards -----------------------------------------

    def test_duplicate_content_length(self):
        p = self.proxy()
        o = "127.0.0.1:%d" % self.B
        self._raw_error(p, ("POST http://%s/echo HTTP/1.1\r\nHost: %s\r\nContent-Length: 3"
                            "\r\nContent-Length: 30\r\n\r\nabc" % (o, o)).encode(), 400)
        if is_mitm():
            raise unittest.SkipTest("log checks need ringcap")
        self._error_then_ok(p, 400)

    def test_content_length_and_chunked(self):
        """CL + TE: either refused (400), or framed as chunked with the
        Content-Length not forwarded (RFC 9112 6.3)."""
        p = self.proxy()
        o = "127.0.0.1:%d" % self.B
        rs, s, c = raw_exchange(p.port, (
            "POST http://%s/echo HTTP/1.1\r\nHost: %s\r\nContent-Length: 3\r\n"
            "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" % (o, o)).encode(), 1)
        s.close()
        self.assertEqual(len(rs), 1)
        if rs[0].status != 400:
            self.assertEqual(rs[0].status, 200)
            doc = json.loads(rs[0].body)
            self.assertEqual(doc["body_length"], 5)
            names = [n.lower() for n, v in doc["headers"]]
            self.assertFalse("content-length" in names and "transfer-encoding" in names,
                             "both framings forwarded upstream: %s" % doc["headers"])
        p.stop()

    # ---- capture ring -----------------------------------------------------

    @ringcap_only
    def test_record_larger_than_ring(self):
        """A record bigger than the capture ring must not wedge the shard."""
        p = self.proxy(sets=["capture_ring_size=256k", "body_capture_limit=1m"])
        self.assert_ok_body(self.origin + "/bytes/2m", p.port, backend.payload(2 * MiB))
        self.assert_ok_body(self.origin + "/bytes/10", p.port, backend.payload(10))
        flows = p.flows()
        self.assertIn(len(flows), (1, 2))
        self.assertEqual(path_of(flows[-1]), "/bytes/10")
        print("\n  record > ring: %d of 2 flows in the log" % len(flows), file=sys.stderr)

    # ---- headers and records ----------------------------------------------

    def test_header_order_and_case(self):
        p = self.proxy()
        hs = [("x-lower", "a"), ("X-UPPER", "b"), ("X-Dup", "1"), ("X-Mixed-Case", "c"),
              ("X-Dup", "2"), ("x-dup", "3"), ("X-Empty", "")]
        args = sum((["-H", "%s: %s" % h if h[1] else "%s;" % h[0]] for h in hs), [])
        st, body = self.get(self.origin + "/echo?q=%41%2f&x=%20y", p.port, *args)
        self.assertEqual(st, 200, body)
        doc = json.loads(body)
        self.assertEqual(doc["path"], "/echo?q=%41%2f&x=%20y")
        seen = [tuple(h) for h in doc["headers"] if h[0].lower().startswith("x-")]
        self.assertEqual(seen, hs, "headers forwarded out of order or recased")
        flows = p.flows()
        self.assertEqual(len(flows), 1)
        f = flows[0]
        self.assertEqual(path_of(f), "/echo?q=%41%2f&x=%20y")
        logged = [h for h in headers_of(f["request"]) if h[0].lower().startswith("x-")]
        self.assertEqual(logged, hs)
        self.assertEqual([h[0] for h in headers_of(f["response"])],
                         ["Content-Type", "Content-Length"])

    def test_many_headers(self):
        p = self.proxy()
        hs = [("X-H%03d" % i, "v%d" % i) for i in range(150)]
        args = sum((["-H", "%s: %s" % h] for h in hs), [])
        st, body = self.get(self.origin + "/echo", p.port, *args)
        self.assertEqual(st, 200, body[:300])
        doc = json.loads(body)
        self.assertEqual([tuple(h) for h in doc["headers"] if h[0].startswith("X-H")], hs)
        flows = p.flows()
        self.assertEqual(len(flows), 1)
        self.assertEqual(len([h for h in headers_of(flows[0]["request"])
                              if h[0].startswith("X-H")]), 150)

    @ringcap_only
    def test_flow_timestamps(self):
        p = self.proxy()
        t0 = time.time()
        st, body = self.get(self.origin + "/slow/200", p.port)
        t1 = time.time()
        self.assertEqual(st, 200)
        flows = p.flows()
        f = flows[0]
        c, s, rq, rs = f["client"], f["server"], f["request"], f["response"]
        seq = [("client.ts_start", c["ts_start"]), ("request.ts_start", rq["ts_start"]),
               ("server.ts_start", s["ts_start"]), ("server.ts_setup", s["ts_setup"]),
               ("request.ts_end", rq["ts_end"]), ("response.ts_start", rs["ts_start"]),
               ("response.ts_end", rs["ts_end"])]
        for name, v in seq:
            self.assertTrue(t0 - 0.5 <= v <= t1 + 0.5, "%s=%s outside [%s, %s]" % (
                name, v, t0, t1))
        self.assertLessEqual(c["ts_start"], rq["ts_start"])
        self.assertLessEqual(rq["ts_start"], rq["ts_end"])
        self.assertLessEqual(s["ts_start"], s["ts_setup"])
        self.assertLessEqual(rq["ts_end"], rs["ts_start"])
        self.assertLessEqual(rs["ts_start"], rs["ts_end"])
        self.assertGreaterEqual(rs["ts_start"] - rq["ts_end"], 0.18, "the backend slept 200ms")
        self.assertEqual(s["peer"], ["127.0.0.1", self.B])

    def test_client_abort_mid_upload(self):
        p = self.proxy()
        o = "127.0.0.1:%d" % self.B
        s, c = raw_conn(p.port)
        s.sendall(("POST http://%s/sink HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n"
                   % (o, o, 100 * MiB)).encode())
        s.sendall(backend.payload(3 * MiB))
        time.sleep(0.3)
        s.close()
        time.sleep(0.5)
        self.assert_serves(p.port)
        flows = p.flows()
        self.assertEqual(len(flows), 2, flows)
        e = [f for f in flows if path_of(f) == "/sink"][0]
        self.assertEqual(e.get("term"), "client_closed", error_of(e))
        self.assertTrue(error_of(e))
        self.assertLessEqual(e["request"].get("content_length"), 3 * MiB)

    # ---- CONNECT errors and chains -----------------------------------------

    def test_connect_refused(self):
        p = self.proxy()
        dead = free_port()
        r = self.curl("-p", "-x", "http://127.0.0.1:%d" % p.port, "-o", "/dev/null",
                      "-w", "%{http_connect}", "http://127.0.0.1:%d/x" % dead)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.stdout, b"502", r.stderr)
        self.assert_serves(p.port)
        flows = p.flows()
        self.assertEqual(len(flows), 2)
        f = flows[0]
        self.assertEqual(f.get("type"), "tcp")
        self.assertEqual(tcp_of(f).get("port"), dead)
        self.assertTrue(error_of(f))
        self.assertEqual(f.get("term"), "upstream_error")

    def test_connect_via_upstream(self):
        b = self.proxy(name="second")
        a = self.proxy(modes=["upstream:http://127.0.0.1:%d" % b.port], name="first")
        self.assert_ok_body(self.origin + "/bytes/100", a.port, backend.payload(100), "-p")
        fa, fb = a.flows(), b.flows()
        # the first proxy sends a CONNECT of its own to the second, then
        # reads HTTP inside the client's tunnel and records the request; so
        # does the second, inside the first one's tunnel
        self.assertEqual([f.get("type") for f in fa], ["http"])
        self.assertEqual((fa[0]["request"]["host"], fa[0]["request"]["port"]),
                         ("127.0.0.1", self.B))
        self.assertEqual(path_of(fa[0]), "/bytes/100")
        self.assertEqual([f.get("type") for f in fb], ["http"])
        self.assertEqual(path_of(fb[0]), "/bytes/100")

    # ---- more command line --------------------------------------------------

    @ringcap_only
    def test_sigint_exits_zero(self):
        p = self.proxy()
        self.assert_serves(p.port)
        p.proc.send_signal(signal.SIGINT)
        rc = p.proc.wait(10)
        self.assertEqual(rc, 0, p.stderr())
        self.assertEqual(len(read_json(self, p.log)), 1)

    @ringcap_only
    def test_cli_version(self):
        r = subprocess.run([ARGS.bin, "--version"], capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 0)
        self.assertRegex((r.stdout + r.stderr).decode(), r"ringcap")

    @ringcap_only
    def test_read_bad_file(self):
        bad = os.path.join(self.tmp, "bad.rcap")
        with open(bad, "wb") as f:
            f.write(b"this is not a flow log at all, not even close\n" * 10)
        for args in (["read", bad], ["read", "--json", bad],
                     ["read", os.path.join(self.tmp, "missing.rcap")]):
            r = subprocess.run([ARGS.bin] + args, capture_output=True, timeout=10)
            self.assertNotEqual(r.returncode, 0, args)
            self.assertEqual(r.stdout, b"")
            self.assertTrue(r.stderr.strip())

    @ringcap_only
    def test_read_several_files(self):
        p1 = self.proxy(name="one")
        self.assert_ok_body(self.origin + "/bytes/1", p1.port, backend.payload(1))
        p1.stop()
        p2 = self.proxy(name="two")
        self.assert_ok_body(self.origin + "/bytes/2", p2.port, backend.payload(2))
        self.assert_ok_body(self.origin + "/bytes/3", p2.port, backend.payload(3))
        p2.stop()
        r = subprocess.run([ARGS.bin, "read", p1.log, p2.log], capture_output=True,
                           timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.decode().splitlines()
        self.assertEqual(len(lines), 3)
        for line, n in zip(lines, (1, 2, 3)):
            self.assertIn("/bytes/%d " % n, line)

    def _stalled_log(self, policy):
        """ringcap writing its log into a FIFO nobody reads for a while."""
        fifo = os.path.join(self.tmp, "log.fifo")
        os.mkfifo(fifo)
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, fd)
        p = self.proxy(log=fifo, quiet=False, sets=[
            "capture_overflow=" + policy, "body_capture_limit=64k", "shards=1"])
        n = 300
        paths = ["/bytes/64k?i=%d" % i for i in range(n)]
        args = ["curl", "-sS", "--max-time", "60", "-x", "http://127.0.0.1:%d" % p.port,
                "-w", "%{http_code}\n"]
        for u in paths:
            args += ["-o", "/dev/null", self.origin + u]
        cp = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
        if policy == "block":
            # Nothing may be lost: the proxy pauses until the log drains.
            time.sleep(2)
            self.assertIsNone(cp.poll(), "300 flows of 64k went through a stalled "
                              "log without waiting")
        data = bytearray()

        def drain(until_eof):
            end = time.monotonic() + 30
            while time.monotonic() < end:
                try:
                    d = os.read(fd, 1 << 20)
                except BlockingIOError:
                    if not until_eof:
                        return
                    time.sleep(0.02)
                    continue
                if not d:
                    if until_eof and p.proc.poll() is None:
                        time.sleep(0.02)
                        continue
                    return
                data.extend(d)
        if policy == "block":
            t = threading.Thread(target=drain, args=(True,), daemon=True)
            t.start()
        out, err = cp.communicate(timeout=90)
        self.assertEqual(cp.returncode, 0, err)
        self.assertEqual(out.split(), [b"200"] * n)
        p.proc.send_signal(signal.SIGTERM)
        if policy != "block":
            t = threading.Thread(target=drain, args=(True,), daemon=True)
            t.start()
        t.join(40)
        p.stop()
        path = os.path.join(self.tmp, "drained.rcap")
        with open(path, "wb") as f:
            f.write(data)
        flows = read_json(self, path)
        m = re.search(r"(\d+) flows \((\d+) with errors\), (\d+) captured, "
                      r"(\d+) filtered out, (\d+) dropped", p.stderr())
        self.assertTrue(m, "no exit summary on stderr:\n" + p.stderr())
        total, _, captured, filtered, dropped = (int(x) for x in m.groups())
        self.assertEqual(filtered, 0)
        self.assertEqual(total, n)
        self.assertEqual(captured, len(flows))
        self.assertEqual(captured + dropped, n)
        got = [path_of(f) for f in flows]
        self.assertEqual(len(set(got)), len(got))
        self.assertTrue(set(got) <= set(paths))
        return dropped

    @ringcap_only
    def test_capture_overflow_drop(self):
        dropped = self._stalled_log("drop")
        self.assertGreater(dropped, 0, "a stalled log dropped nothing")

    @ringcap_only
    def test_capture_overflow_block(self):
        dropped = self._stalled_log("block")
        self.assertEqual(dropped, 0)

    # ---- CONNECT -----------------------------------------------------------

    def test_connect_tunnel(self):
        """A CONNECT tunnel carrying something that is not HTTP (or TLS) is
        relayed and recorded as a tcp flow, with the bytes each way."""
        echo = start_echo()
        try:
            p = self.proxy()
            ep = echo.getsockname()[1]
            connect_tunnel_echo(p.port, ep)
            flows = p.flows()
        finally:
            echo.close()
        self.assertEqual(len(flows), 1, flows)
        f = flows[0]
        self.assertEqual(f.get("type"), "tcp")
        t = tcp_of(f)
        self.assertEqual((t.get("host"), t.get("port")), ("127.0.0.1", ep))
        n = sum(len(c) for c in NOT_HTTP)
        self.assertEqual((t.get("bytes_up"), t.get("bytes_down")), (n, n))
        msgs = t.get("messages") or []
        up = b"".join(base64.b64decode(m["content"]) for m in msgs if m["from_client"])
        down = b"".join(base64.b64decode(m["content"]) for m in msgs if not m["from_client"])
        self.assertEqual((up, down), (b"".join(NOT_HTTP), b"".join(NOT_HTTP)))
        self.assertFalse(t.get("truncated"))

    @ringcap_only
    def test_save_stream_filter(self):
        """--set save_stream_filter records only the flows that match (the
        others are served and counted), with mitmproxy's filter syntax."""
        p = self.proxy(sets=["save_stream_filter=~u keep= & !~c 404"], quiet=False)
        for path in ("/bytes/10?keep=1", "/bytes/11?skip=1", "/status/404?keep=2",
                     "/bytes/12?keep=3"):
            st, _ = self.get(self.origin + path, p.port)
            self.assertIn(st, (200, 404))
        flows = p.flows()
        self.assertEqual(sorted(path_of(f) for f in flows),
                         ["/bytes/10?keep=1", "/bytes/12?keep=3"])
        self.assertRegex(p.stderr(), r"4 flows .* 2 captured, 2 filtered out")

    @ringcap_only
    def test_save_stream_filter_malformed(self):
        r = subprocess.run([ARGS.bin, "--set", "save_stream_filter=~c", "-p",
                            str(free_port())], capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"save_stream_filter", r.stderr)

    def test_connect_server_speaks_first(self):
        """A tunnel to a server that talks first (an SMTP-like banner):
        ringcap watches both sides, so the banner is relayed at once."""
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)

        def serve():
            try:
                c, _ = ls.accept()
            except OSError:
                return
            with c:
                c.sendall(b"220 banner ready\r\n")
                d = c.recv(100)
                c.sendall(b"250 got " + d)
        t = threading.Thread(target=serve, daemon=True)
        t.start()
        try:
            p = self.proxy()
            bp = ls.getsockname()[1]
            s = socket.create_connection(("127.0.0.1", p.port), timeout=10)
            with s:
                s.settimeout(10)
                s.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\n\r\n" % bp)
                head = b""
                while b"\r\n\r\n" not in head:
                    head += s.recv(1)
                self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
                t0 = time.time()
                self.assertEqual(s.recv(100), b"220 banner ready\r\n")
                self.assertLess(time.time() - t0, 0.5)
                s.sendall(b"HELO x\r\n")
                self.assertEqual(s.recv(100), b"250 got HELO x\r\n")
            flows = p.flows()
        finally:
            ls.close()
        self.assertEqual(len(flows), 1, flows)
        self.assertEqual(flows[0].get("type"), "tcp")
        self.assertFalse(error_of(flows[0]), flows[0])

    def test_connect_http_inside(self):
        """HTTP inside a CONNECT tunnel is parsed: each request is an http
        flow (as mitmproxy does), the tunnel itself is none."""
        p = self.proxy()
        self.assert_ok_body(self.origin + "/bytes/100", p.port, backend.payload(100), "-p")
        flows = p.flows()
        self.assertEqual(len(flows), 1, flows)
        self.assert_flow(flows[0], "GET", "/bytes/100", 200, mode="regular")

    # ---- exactness ---------------------------------------------------------

    def test_log_exact_flows(self):
        p = self.proxy()
        expect = []
        for i in range(200):
            path = "/bytes/%d?seq=%d" % (i % 50 + 1, i)
            st, body = self.get(self.origin + path, p.port)
            self.assertEqual((st, body), (200, backend.payload(i % 50 + 1)))
            expect.append(path)
        procs = []
        for j in range(4):
            urls = [self.origin + "/echo?par=%d-%d" % (j, i) for i in range(50)]
            expect += ["/echo?par=%d-%d" % (j, i) for i in range(50)]
            args = ["curl", "-sS", "--max-time", "60", "-x",
                    "http://127.0.0.1:%d" % p.port, "-w", "%{http_code}\n"]
            for u in urls:
                args += ["-o", "/dev/null", u]
            procs.append(subprocess.Popen(args, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, env=ENV))
        for pr in procs:
            out, err = pr.communicate(timeout=90)
            self.assertEqual(pr.returncode, 0, err)
            self.assertEqual(out.decode().split(), ["200"] * 50)
        flows = p.flows()
        self.assertEqual(len(flows), 400)
        self.assertEqual(sorted(path_of(f) for f in flows), sorted(expect))
        self.assertEqual([path_of(f) for f in flows[:200]], expect[:200],
                         "sequential flows out of order")
        self.assertEqual(len({f.get("id") for f in flows}), 400, "ids not unique")
        for f in flows:
            self.assertEqual(status_of(f), 200)
            self.assertFalse(error_of(f))
            if path_of(f).startswith("/bytes/"):
                n = int(path_of(f).split("/")[2].split("?")[0])
                self.assertTrue(msg_body(f["response"]) == backend.payload(n))

    # ---- shutdown and crashes ---------------------------------------------

    def test_sigterm_during_slow_request(self):
        p = self.proxy()
        cp = subprocess.Popen(["curl", "-sS", "--max-time", "30", "-x",
                               "http://127.0.0.1:%d" % p.port, "-w", "\n%{http_code}",
                               self.origin + "/slow/3000"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
        time.sleep(1.0)
        t0 = time.monotonic()
        p.proc.send_signal(signal.SIGTERM)
        out, err = cp.communicate(timeout=30)
        p.stop()
        el = time.monotonic() - t0
        completed = out.endswith(b"\n200")
        print("\n  slow flow %s; exit after %.1fs" % (
            "completed" if completed else "cut: %r" % err, el), file=sys.stderr)
        if is_mitm():
            raise unittest.SkipTest("log checks need ringcap")
        flows = read_json(self, p.log)
        self.assertEqual(len(flows), 1, flows)
        f = flows[0]
        self.assertEqual(path_of(f), "/slow/3000")
        if completed:
            self.assertEqual(status_of(f), 200)
            self.assertEqual(msg_body(f["response"]), b"slow 3000\n")
        else:
            self.assertTrue(error_of(f), "cut flow recorded without an error")

    @ringcap_only
    def test_sigterm_stops_accepting(self):
        p = self.proxy()
        cp = subprocess.Popen(["curl", "-sS", "--max-time", "30", "-x",
                               "http://127.0.0.1:%d" % p.port, self.origin + "/slow/3000"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
        time.sleep(1.0)
        p.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        try:
            st, body = self.get(self.origin + "/bytes/10", p.port, timeout=5)
        except AssertionError:
            st = None
        self.assertNotEqual(st, 200, "new request served during shutdown")
        cp.communicate(timeout=30)
        p.stop()

    @ringcap_only
    def test_kill9_under_load(self):
        p = self.proxy()
        stop = threading.Event()
        done = [0]

        def load():
            o = "127.0.0.1:%d" % self.B
            req = ("GET http://%s/bytes/4096 HTTP/1.1\r\nHost: %s\r\n\r\n" % (o, o)).encode()
            while not stop.is_set():
                try:
                    s, c = raw_conn(p.port, 5)
                    for _ in range(100):
                        if stop.is_set():
                            break
                        s.sendall(req)
                        r = read_response(c)
                        if r is None:
                            break
                        done[0] += 1
                    s.close()
                except (OSError, AssertionError, backend.BadRequest):
                    if stop.is_set():
                        return
                    time.sleep(0.05)

        ts = [threading.Thread(target=load, daemon=True) for _ in range(3)]
        for t in ts:
            t.start()
        end = time.monotonic() + 10
        while time.monotonic() < end and (done[0] < 3000 or
                                          os.path.getsize(p.log) < 256 * 1024):
            time.sleep(0.1)
        p.proc.kill()
        p.proc.wait(5)
        stop.set()
        for t in ts:
            t.join(10)
        size = os.path.getsize(p.log)
        self.assertGreater(size, 0, "nothing written after %d requests" % done[0])
        r = subprocess.run([ARGS.bin, "read", p.log], capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.decode().splitlines()
        self.assertGreater(len(lines), 0, "no flows read from %d bytes" % size)
        self.assertLessEqual(len(lines), done[0] + 3)
        for line in lines:
            self.assertIn("GET http://127.0.0.1:%d/bytes/4096" % self.B, line)
        flows = read_json(self, p.log)
        self.assertEqual(len(flows), len(lines))
        print("\n  %d requests, %d bytes, %d flows read; stderr: %s" % (
            done[0], size, len(lines), r.stderr.decode().strip()), file=sys.stderr)
        if r.stderr.strip():
            self.assertRegex(r.stderr.decode(), r"cut short \(%d flows read\)" % len(lines))

    @ringcap_only
    def test_read_truncated_file(self):
        p = self.proxy()
        for n in (10, 20, 30):
            self.assert_ok_body(self.origin + "/bytes/%d" % n, p.port, backend.payload(n))
        p.stop()
        with open(p.log, "rb") as f:
            data = f.read()
        cut = os.path.join(self.tmp, "cut.rcap")
        with open(cut, "wb") as f:
            f.write(data[:-3])
        r = subprocess.run([ARGS.bin, "read", cut], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.decode().splitlines()
        self.assertEqual(len(lines), 2, lines)
        self.assertIn("/bytes/10", lines[0])
        self.assertIn("/bytes/20", lines[1])
        self.assertIn("ringcap: warning: %s: last record cut short (2 flows read)" % cut,
                      r.stderr.decode())
        # the whole file reads without a warning
        r = subprocess.run([ARGS.bin, "read", p.log], capture_output=True, timeout=60)
        self.assertEqual((r.returncode, r.stderr), (0, b""))
        self.assertEqual(len(r.stdout.decode().splitlines()), 3)

    # ---- read and the command line ----------------------------------------

    @ringcap_only
    def test_read_text(self):
        p = self.proxy()
        self.assert_ok_body(self.origin + "/bytes/612", p.port, backend.payload(612))
        dead = free_port()
        st, _ = self.get("http://127.0.0.1:%d/x" % dead, p.port)
        self.assertEqual(st, 502)
        echo = start_echo()
        try:
            ep = echo.getsockname()[1]
            connect_tunnel_echo(p.port, ep)
        finally:
            echo.close()
        flows = p.flows()
        r = subprocess.run([ARGS.bin, "read", p.log], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.decode().splitlines()
        self.assertEqual(len(lines), 3, lines)
        # `read` prints in log order; flows of different shards that end
        # within a few ms may be logged either way round (FLOWLOG.md), and
        # flows[] is sorted by request start: pair each line with its flow.
        by_peer = {l.split(": ", 1)[0]: l for l in lines}
        self.assertEqual(len(by_peer), 3, lines)
        lines = [by_peer.get(peer_of(f), "") for f in flows]
        self.assertRegex(lines[0], r"^%s: GET http://127\.0\.0\.1:%d/bytes/612 HTTP/1\.1 "
                         r"<< 200 OK application/octet-stream 612b \d+ms$"
                         % (re.escape(peer_of(flows[0])), self.B))
        self.assertRegex(lines[1], r"^%s: GET http://127\.0\.0\.1:%d/x HTTP/1\.1 << error: "
                         % (re.escape(peer_of(flows[1])), dead))
        self.assertRegex(lines[2], r"^%s: CONNECT 127\.0\.0\.1:%d tcp up \S+ down \S+ "
                         % (re.escape(peer_of(flows[2])), ep))

    @ringcap_only
    def test_cli_help(self):
        r = subprocess.run([ARGS.bin, "--help"], capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = (r.stdout + r.stderr).decode()
        for word in ("--mode", "-w", "--set", "-p", "--listen-host", "read"):
            self.assertIn(word, out)

    @ringcap_only
    def test_cli_bad_arguments(self):
        for args in (["--mode", "foo:bar"], ["--set", "no_such_option=1"],
                     ["--set", "body_capture_limit=lots"], ["--mode", "reverse:"],
                     ["-p", "notaport"], ["--bogus-flag"]):
            r = subprocess.run([ARGS.bin, "-p", str(free_port())] + args,
                               capture_output=True, timeout=10)
            self.assertEqual(r.returncode, 2, "%s: rc=%s %s" % (args, r.returncode,
                                                                r.stderr))
            self.assertTrue(r.stderr.strip(), "%s: no message" % args)


def start_backend():
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "backend.py"), "--port", "0"],
                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    line = p.stdout.readline().decode()
    m = re.match(r"ready (\d+)", line)
    if not m:
        p.kill()
        sys.exit("backend did not start: %r" % line)
    return p, int(m.group(1))


def main():
    global ARGS, BACKEND
    ap = argparse.ArgumentParser(description="ringcap end-to-end tests")
    ap.add_argument("--bin", default=os.path.join(HERE, "../../build/cli/ringcap"))
    ap.add_argument("--peer", choices=("ringcap", "mitmdump"), default="ringcap")
    ap.add_argument("-k", action="append", default=[], help="test name pattern")
    ap.add_argument("-v", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep temp dirs")
    ap.add_argument("--large", default=None,
                    help="size of the big download (1GiB; 256MiB sanitized)")
    ap.add_argument("--large-up", default=None,
                    help="size of the big upload (512MiB; 128MiB sanitized)")
    ARGS = ap.parse_args()
    if ARGS.large is None:
        ARGS.large = "256MiB" if sanitized() else "1GiB"
    if ARGS.large_up is None:
        ARGS.large_up = "128MiB" if sanitized() else "512MiB"
    if ARGS.peer == "ringcap":
        ARGS.bin = os.path.abspath(ARGS.bin)
        if not os.access(ARGS.bin, os.X_OK):
            sys.exit("no ringcap binary at %s (--bin)" % ARGS.bin)
    BACKEND = start_backend()
    try:
        loader = unittest.TestLoader()
        if ARGS.k:
            loader.testNamePatterns = ["*%s*" % k if "*" not in k else k for k in ARGS.k]
        suite = loader.loadTestsFromTestCase(E2E)
        res = unittest.TextTestRunner(verbosity=2 if ARGS.v else 1,
                                      stream=sys.stderr).run(suite)
    finally:
        BACKEND[0].kill()
        BACKEND[0].wait(5)
    sys.exit(0 if res.wasSuccessful() and res.testsRun > 0 else 1)


if __name__ == "__main__":
    main()
