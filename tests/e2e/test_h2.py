#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# End-to-end tests of HTTP/2 towards clients: the real ringcap binary on
# loopback between HTTP/2 clients (curl, h2load, nghttp, and a raw HTTP/2
# client below) and HTTP/1.1 backends (backend.py, plain and TLS). Each
# stream is one flow; the upstream side is HTTP/1.1. See README.md
# ("HTTP/2 tests") for what each test covers.
#
#   python3 tests/e2e/test_h2.py --bin BUILD/cli/ringcap [-k pattern] [-v] [--keep]
import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import backend  # noqa: E402
import run  # noqa: E402  (Proxy, read_json, accessors; its ARGS is set in main())
import test_tls  # noqa: E402  (Pki, start_backend, CLIENT_ENV; its ARGS/PKI set in main())

ARGS = None
PKI = None       # test_tls.Pki
BACKENDS = {}    # name -> (Popen, port): "a" (TLS, test CA), "plain" (HTTP)
NOALPN = None    # backend.Server in this process: TLS (cert a) without ALPN
MiB = 1 << 20
CLIENT_ENV = test_tls.CLIENT_ENV

# HTTP/2 frame types and flags (RFC 9113 section 6)
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
SETTINGS_ENABLE_PUSH, SETTINGS_INITIAL_WINDOW_SIZE = 0x2, 0x4
CANCEL, PROTOCOL_ERROR, FRAME_SIZE_ERROR = 0x8, 0x1, 0x6
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_WINDOW = (1 << 31) - 1


def big():
    """Size of the large transfers: smaller under ASan (RINGCAP_SANITIZED)."""
    return (50 * MiB, 100 * MiB) if not run.sanitized() else (20 * MiB, 40 * MiB)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            d = f.read(1 << 20)
            if not d:
                return h.hexdigest()
            h.update(d)


def start_noalpn_backend(pki):
    """backend.py's server over TLS with certificate a, choosing no ALPN
    (backend.py --tls-cert always chooses http/1.1), in a thread of ours."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.a, pki.a_key)

    def on_sni(sock, name, _ctx):
        sock.rc_sni = name
    ctx.sni_callback = on_sni
    srv = backend.Server(0, tls=ctx)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def start_resetting_h2_server(pki, code):
    """A TLS server (certificate a, ALPN h2) that speaks just enough
    HTTP/2 to answer every request HEADERS with RST_STREAM(|code|).
    Returns (listening socket, port); runs in a thread of ours."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.a, pki.a_key)
    ctx.set_alpn_protocols(["h2"])
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)

    def serve(c):
        try:
            c = ctx.wrap_socket(c, server_side=True)
            buf = b""
            while len(buf) < len(PREFACE):
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            buf = buf[len(PREFACE):]
            c.sendall(frame(SETTINGS, 0, 0))
            while True:
                while len(buf) >= 9:
                    n = int.from_bytes(buf[:3], "big")
                    if len(buf) < 9 + n:
                        break
                    ft, fl, sid = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
                    buf = buf[9 + n:]
                    if ft == SETTINGS and not fl & ACK:
                        c.sendall(frame(SETTINGS, ACK, 0))
                    elif ft == HEADERS:
                        c.sendall(frame(RST_STREAM, 0, sid, struct.pack(">I", code)))
                d = c.recv(65536)
                if not d:
                    return
                buf += d
        except OSError:
            pass
        finally:
            c.close()

    def accept():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()
    threading.Thread(target=accept, daemon=True).start()
    return ls, ls.getsockname()[1]


def vm_kib(pid, field):
    """VmRSS / VmHWM of a process in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


# --------------------------------------------------------------------------
# A tiny HTTP/2 client: frames on a raw socket, requests encoded as HPACK
# literals without indexing (no Huffman), responses not decoded (frame
# types, flags and stream ids are what the tests look at).

def hpack_int(n, prefix_bits, first=0):
    top = (1 << prefix_bits) - 1
    if n < top:
        return bytes([first | n])
    out = [first | top]
    n -= top
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def hpack_literal(name, value):
    """Literal header field without indexing, new name, no Huffman."""
    name, value = name.encode(), value.encode()
    return (b"\x00" + hpack_int(len(name), 7) + name +
            hpack_int(len(value), 7) + value)


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid & 0x7FFFFFFF) + payload


class H2Stream:
    def __init__(self):
        self.headers = 0      # HEADERS frames received (response head, trailers)
        self.data = 0         # DATA payload bytes received
        self.ended = False    # END_STREAM seen
        self.rst = None       # RST_STREAM error code received


class H2Raw:
    """One HTTP/2 client connection. |window|: SETTINGS_INITIAL_WINDOW_SIZE
    sent in our SETTINGS; |auto_window|: give back every DATA byte with
    WINDOW_UPDATEs (connection and stream) so flow control never stalls."""

    def __init__(self, port, window=MAX_WINDOW, auto_window=True, timeout=15.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s.settimeout(timeout)
        self.buf = bytearray()
        self.streams = {}
        self.goaway = None    # (last stream id, error code)
        self.eof = False
        self.auto_window = auto_window
        self.reset_sent = set()
        self.frames = []      # (type, flags, sid, length) of everything received
        self.data_total = 0
        settings = struct.pack(">HI", SETTINGS_ENABLE_PUSH, 0) + \
            struct.pack(">HI", SETTINGS_INITIAL_WINDOW_SIZE, window)
        out = PREFACE + frame(SETTINGS, 0, 0, settings)
        if auto_window:
            out += frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", MAX_WINDOW - 65535))
        self.s.sendall(out)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def send(self, data):
        self.s.sendall(data)

    def request(self, sid, path, authority="example.test", method="GET"):
        block = b"".join(hpack_literal(n, v) for n, v in (
            (":method", method), (":scheme", "http"), (":path", path),
            (":authority", authority), ("user-agent", "ringcap-e2e-h2raw")))
        self.streams[sid] = H2Stream()
        self.send(frame(HEADERS, END_HEADERS | END_STREAM, sid, block))

    def rst(self, sid, code=CANCEL):
        self.reset_sent.add(sid)
        self.send(frame(RST_STREAM, 0, sid, struct.pack(">I", code)))

    def _read_frame(self, deadline):
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no frame before the deadline")
            self.s.settimeout(left)
            try:
                d = self.s.recv(1 << 18)
            except ConnectionResetError:
                d = b""
            if not d:
                self.eof = True
                return None
            self.buf += d
        n = int.from_bytes(self.buf[:3], "big")
        ftype, flags = self.buf[3], self.buf[4]
        sid = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
        payload = bytes(self.buf[9:9 + n])
        del self.buf[:9 + n]
        return ftype, flags, sid, payload

    def _handle(self, ftype, flags, sid, payload):
        self.frames.append((ftype, flags, sid, len(payload)))
        st = self.streams.get(sid)
        if ftype == SETTINGS and not flags & ACK:
            self.send(frame(SETTINGS, ACK, 0))
        elif ftype == PING and not flags & ACK:
            self.send(frame(PING, ACK, 0, payload))
        elif ftype == GOAWAY:
            last, code = struct.unpack(">II", payload[:8])
            self.goaway = (last & 0x7FFFFFFF, code)
        elif ftype == DATA:
            self.data_total += len(payload)
            if st:
                st.data += len(payload)
                st.ended |= bool(flags & END_STREAM)
            if self.auto_window and payload:
                inc = struct.pack(">I", len(payload))
                out = frame(WINDOW_UPDATE, 0, 0, inc)
                if st and not st.ended and sid not in self.reset_sent:
                    out += frame(WINDOW_UPDATE, 0, sid, inc)
                self.send(out)
        elif ftype in (HEADERS, CONTINUATION):
            if st:
                st.headers += ftype == HEADERS
                st.ended |= bool(flags & END_STREAM)
        elif ftype == RST_STREAM and st:
            st.rst = struct.unpack(">I", payload[:4])[0]

    def pump(self, until, timeout=15.0):
        """Read and handle frames until |until()| is true (returns True), the
        peer closes (returns False) or |timeout| passes (socket.timeout)."""
        deadline = time.monotonic() + timeout
        while not until():
            f = self._read_frame(deadline)
            if f is None:
                return until()
            self._handle(*f)
        return True

    def read_for(self, seconds):
        """Handle whatever arrives for |seconds| (or until EOF)."""
        try:
            self.pump(lambda: self.eof, timeout=seconds)
        except socket.timeout:
            pass

    def frame_names(self):
        names = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS",
                 "PUSH_PROMISE", "PING", "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"]
        return ["%s(sid=%d,flags=%#x,len=%d)" % (
            names[t] if t < len(names) else "type%d" % t, s, fl, n)
            for t, fl, s, n in self.frames[-30:]]


# --------------------------------------------------------------------------

class H2(unittest.TestCase):
    maxDiff = 4000

    # ringcap with its own confdir and HOME, trusting the test CA upstream,
    # curl without proxy/CA from the environment, ringcap's CA file:
    # the same helpers as the TLS suite.
    proxy = test_tls.TLS.proxy
    curl = test_tls.TLS.curl
    rc_ca = test_tls.TLS.rc_ca

    def setUp(self):
        test_tls.case_setup(self, "rc-h2-")
        self.A = BACKENDS["a"][1]
        self.PLAIN = BACKENDS["plain"][1]

    def tearDown(self):
        test_tls.case_teardown(self, ARGS.keep)

    # ---- helpers -----------------------------------------------------------

    def reverse(self, sets=()):
        """ringcap in reverse mode in front of the plain backend."""
        return self.proxy(modes=["reverse:http://127.0.0.1:%d" % self.PLAIN],
                          sets=sets)

    def h2c(self, port, path, *extra, timeout=60):
        """curl --http2-prior-knowledge to a reverse port: (result, body,
        http_code, http_version) with the body on stdout."""
        r = self.curl("--http2-prior-knowledge", "--noproxy", "*", *extra,
                      "-w", "\n%{http_code} %{http_version}",
                      "http://127.0.0.1:%d%s" % (port, path), timeout=timeout)
        body, _, tail = r.stdout.rpartition(b"\n")
        code, _, ver = tail.decode(errors="replace").partition(" ")
        return r, body, code, ver

    def assert_h2c_ok(self, port, path, *extra, timeout=60):
        r, body, code, ver = self.h2c(port, path, *extra, timeout=timeout)
        self.assertEqual((r.returncode, code, ver), (0, "200", "2"),
                         "%s: %s %r" % (path, r.stderr.decode(errors="replace"), body[:300]))
        return body

    def assert_flow_h2(self, f, method, path, status=200):
        self.assertEqual(f.get("type"), "http", f)
        rq = f.get("request") or {}
        self.assertEqual((rq.get("method"), rq.get("path")), (method, path), rq)
        self.assertEqual(rq.get("http_version"), "HTTP/2.0", rq)
        self.assertEqual(run.status_of(f), status, f.get("response"))
        self.assertEqual((f.get("response") or {}).get("http_version"), "HTTP/1.1")
        self.assertFalse(run.error_of(f), f)
        names = [n.lower() for n, _ in run.headers_of(rq)]
        self.assertFalse([n for n in names if n.startswith(":")],
                         "pseudo-headers in the flow: %s" % names)
        self.assertNotIn("host", names, "the Host ringcap adds for HTTP/1.1 is in the flow")
        self.assertNotIn("transfer-encoding", names, names)

    def flows_by_path(self, flows):
        out = {}
        for f in flows:
            out.setdefault(run.path_of(f), []).append(f)
        return out

    def backend_hosts(self, doc):
        return [v for n, v in doc["headers"] if n.lower() == "host"]

    # ---- reverse mode, h2c with prior knowledge ----------------------------

    def test_reverse_h2c_echo(self):
        p = self.reverse()
        doc = json.loads(self.assert_h2c_ok(p.port, "/echo?a=1", "-H", "X-Test: one",
                                            "-H", "Cookie: a=1", "-H", "Cookie: b=2"))
        self.assertEqual((doc["method"], doc["path"], doc["http_version"]),
                         ("GET", "/echo?a=1", "HTTP/1.1"))
        self.assertEqual(self.backend_hosts(doc), ["127.0.0.1:%d" % self.PLAIN])
        hd = {n.lower(): v for n, v in doc["headers"]}
        self.assertEqual(hd.get("x-test"), "one")
        self.assertEqual(hd.get("cookie"), "a=1; b=2")
        self.assertFalse([n for n in hd if n.startswith(":")], doc["headers"])
        # an HTTP/1.1 client on the same port
        r = self.curl("--http1.1", "--noproxy", "*", "-w", "\n%{http_version}",
                      "http://127.0.0.1:%d/echo?h1=1" % p.port)
        body, _, ver = r.stdout.rpartition(b"\n")
        self.assertEqual((r.returncode, ver), (0, b"1.1"), r.stderr)
        self.assertEqual(json.loads(body)["path"], "/echo?h1=1")
        flows = p.flows()
        self.assertEqual([run.path_of(f) for f in flows], ["/echo?a=1", "/echo?h1=1"], flows)
        f = flows[0]
        self.assert_flow_h2(f, "GET", "/echo?a=1")
        self.assertEqual(f.get("mode"), "reverse")
        self.assertEqual((f["request"].get("scheme"), f["request"].get("host"),
                          f["request"].get("port")), ("http", "127.0.0.1", self.PLAIN))
        self.assertEqual(run.header(f["request"], "x-test"), "one")
        self.assertEqual(run.header(f["request"], "cookie"), "a=1; b=2")
        self.assertEqual(json.loads(run.msg_body(f["response"]))["path"], "/echo?a=1")
        self.assertEqual(flows[1]["request"].get("http_version"), "HTTP/1.1")
        self.assertEqual(run.status_of(flows[1]), 200)

    def test_reverse_h2c_upload(self):
        p = self.reverse()
        n = 3 * MiB + 17
        data = backend.payload(n)
        fn = os.path.join(self.tmp, "up.bin")
        with open(fn, "wb") as f:
            f.write(data)
        doc = json.loads(self.assert_h2c_ok(p.port, "/sink", "--data-binary", "@" + fn))
        self.assertEqual(doc, {"length": n, "sha256": hashlib.sha256(data).hexdigest()})
        flows = p.flows()
        f = self.one(flows)
        self.assert_flow_h2(f, "POST", "/sink")
        self.assertIn(run.header(f["request"], "content-length"), (None, str(n)))
        run.E2E.assert_msg_body(self, f["request"], data, MiB)

    def test_expect_100_continue_is_answered(self):
        """Expect: 100-continue over HTTP/2: the server's 100 reaches the
        client as an informational HEADERS, so curl uploads at once rather
        than after its own 1 s wait."""
        p = self.reverse()
        data = backend.payload(2 * MiB)
        fn = os.path.join(self.tmp, "up.bin")
        with open(fn, "wb") as f:
            f.write(data)
        r = self.curl("--http2-prior-knowledge", "--noproxy", "*",
                      "-H", "Expect: 100-continue", "--data-binary", "@" + fn,
                      "-w", "\n%{http_code} %{time_total}",
                      "http://127.0.0.1:%d/echo" % p.port)
        body, _, tail = r.stdout.rpartition(b"\n")
        code, t = tail.decode().split()
        self.assertEqual((r.returncode, code), (0, "200"), r.stderr)
        doc = json.loads(body)
        self.assertTrue(doc["sent_100"], doc)
        self.assertEqual(doc["body_sha256"], hashlib.sha256(data).hexdigest())
        self.assertLess(float(t), 0.9, "curl waited for its own 100-continue timer")

    def test_reverse_h2c_upload_stdin_chunked(self):
        """-T - : no content-length; the backend gets the body chunked."""
        p = self.reverse()
        n = 2 * MiB + 5
        data = backend.payload(n)
        r = subprocess.run(["curl", "-sS", "--max-time", "60", "--http2-prior-knowledge",
                            "--noproxy", "*", "-T", "-", "-w", "\n%{http_version}",
                            "http://127.0.0.1:%d/echo?up=stdin" % p.port],
                           input=data, capture_output=True, timeout=75, env=CLIENT_ENV)
        body, _, ver = r.stdout.rpartition(b"\n")
        self.assertEqual((r.returncode, ver), (0, b"2"), r.stderr)
        doc = json.loads(body)
        self.assertEqual((doc["method"], doc["http_version"]), ("PUT", "HTTP/1.1"))
        self.assertEqual((doc["body_length"], doc["body_sha256"]),
                         (n, hashlib.sha256(data).hexdigest()))
        hd = {k.lower(): v for k, v in doc["headers"]}
        self.assertEqual(hd.get("transfer-encoding", "").lower(), "chunked", doc["headers"])
        self.assertNotIn("content-length", hd)
        f = self.one(p.flows())
        self.assert_flow_h2(f, "PUT", "/echo?up=stdin")
        names = [k.lower() for k, _ in run.headers_of(f["request"])]
        self.assertNotIn("content-length", names)
        run.E2E.assert_msg_body(self, f["request"], data, MiB)

    def test_reverse_h2c_download(self):
        n = big()[0]
        p = self.reverse()
        out = os.path.join(self.tmp, "down.bin")
        for i in range(2):
            self.assert_h2c_ok(p.port, "/stream/%d" % n, "-o", out)
            self.assertEqual(os.path.getsize(out), n, "download %d" % (i + 1))
            self.assertEqual(sha256_file(out), backend.payload_sha256(n))
        flows = p.flows()
        self.assertEqual(len(flows), 2, flows)
        for f in flows:
            self.assert_flow_h2(f, "GET", "/stream/%d" % n)
            run.E2E.assert_msg_body(self, f["response"], backend.payload(n), MiB)

    def one(self, flows):
        self.assertEqual(len(flows), 1, json.dumps(flows, indent=1)[:3000])
        return flows[0]

    # ---- TLS: interception and reverse:https -------------------------------

    def _intercept(self, p, port):
        """curl --http2 through |p| to https://localhost:|port|/echo?i=1 and
        ?i=2 on one connection: (curl's http_versions, backend docs, flows)."""
        url = "https://localhost:%d/echo?i=" % port
        r = self.curl("--http2", "--cacert", self.rc_ca, "-x", "http://127.0.0.1:%d" % p.port,
                      "-w", "\n%{http_version} %{num_connects}\n", url + "1", url + "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        parts = r.stdout.split(b"\n")
        docs = [json.loads(parts[0]), json.loads(parts[2])]
        vers = [parts[1].split(b" ")[0].decode(), parts[3].split(b" ")[0].decode()]
        self.assertEqual(parts[3].split(b" ")[1], b"0", "second request on a new connection")
        for i, doc in enumerate(docs):
            self.assertEqual(doc["path"], "/echo?i=%d" % (i + 1))
            self.assertEqual(doc["http_version"], "HTTP/1.1")
            self.assertEqual(doc["tls"]["sni"], "localhost")
            self.assertEqual(self.backend_hosts(doc), ["localhost:%d" % port])
        flows = test_tls.http_flows(p.flows())
        self.assertEqual([run.path_of(f) for f in flows], ["/echo?i=1", "/echo?i=2"])
        for f in flows:
            self.assertEqual(f.get("mode"), "regular")
            rq = f["request"]
            self.assertEqual((rq.get("scheme"), rq.get("host"), rq.get("port")),
                             ("https", "localhost", port))
            self.assertEqual((f.get("server_tls") or {}).get("verify"), "ok")
            self.assertEqual((f.get("response") or {}).get("http_version"), "HTTP/1.1")
        return vers, docs, flows

    def test_intercept_regular_h2(self):
        """An HTTPS server speaking h2 (nghttpd, certificate a): curl --http2
        through ringcap gets h2 from ringcap, ringcap h2 from the server."""
        www = os.path.join(self.tmp, "www")
        os.mkdir(www)
        data = backend.payload(300000)
        with open(os.path.join(www, "f.bin"), "wb") as f:
            f.write(data)
        port = run.free_port()
        nd = subprocess.Popen(["nghttpd", "-a", "127.0.0.1", "-d", www, str(port),
                               PKI.a_key, PKI.a], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(nd)
        self.assertTrue(run.wait_port(port, nd), "nghttpd did not start")
        p = self.proxy()
        fn = os.path.join(self.tmp, "got.bin")
        r = self.curl("--http2", "--cacert", self.rc_ca, "-x", "http://127.0.0.1:%d" % p.port,
                      "-o", fn, "-w", "%{http_code} %{http_version}",
                      "https://localhost:%d/f.bin" % port)
        self.assertEqual((r.returncode, r.stdout), (0, b"200 2"), r.stderr)
        with open(fn, "rb") as f:
            self.assertTrue(f.read() == data, "body differs")
        f = self.one(test_tls.http_flows(p.flows()))
        rq = f["request"]
        self.assertEqual((rq.get("scheme"), rq.get("host"), rq.get("port"), rq.get("path"),
                          rq.get("http_version")), ("https", "localhost", port, "/f.bin",
                                                    "HTTP/2.0"))
        self.assertEqual(run.status_of(f), 200)
        self.assertFalse(run.error_of(f), f)
        self.assertEqual((f.get("client_tls") or {}).get("alpn"), "h2", f.get("client_tls"))
        self.assertEqual((f.get("server_tls") or {}).get("alpn"), "h2", f.get("server_tls"))
        run.E2E.assert_msg_body(self, f["response"], data, MiB)

    def start_nghttpd(self, *extra):
        """An h2-only TLS server (certificate a) serving www/f.bin; returns
        (port, data)."""
        www = os.path.join(self.tmp, "www")
        os.makedirs(www, exist_ok=True)
        data = backend.payload(200000)
        with open(os.path.join(www, "f.bin"), "wb") as f:
            f.write(data)
        port = run.free_port()
        nd = subprocess.Popen(["nghttpd", "-a", "127.0.0.1", "-d", www] + list(extra) +
                              [str(port), PKI.a_key, PKI.a], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(nd)
        self.assertTrue(run.wait_port(port, nd), "nghttpd did not start")
        return port, data

    def test_reverse_https_multiplexes_to_h2_server(self):
        """reverse:https to a server that offers h2: the streams of one client
        connection share one HTTP/2 connection upstream; the server's
        trailers reach the client and the flow."""
        port, data = self.start_nghttpd("--trailer=x-grpc-status: 0")
        p = self.proxy(modes=["reverse:https://localhost:%d" % port])
        r = subprocess.run(["h2load", "-n", "200", "-c", "1", "-m", "20",
                            "https://127.0.0.1:%d/f.bin" % p.port],
                           capture_output=True, timeout=120, env=CLIENT_ENV)
        out = r.stdout.decode(errors="replace")
        self.assertIn("200 succeeded", out, out + r.stderr.decode(errors="replace"))
        r = subprocess.run(["nghttp", "-v", "https://127.0.0.1:%d/f.bin" % p.port],
                           capture_output=True, timeout=60, env=CLIENT_ENV)
        out = r.stdout.decode(errors="replace")
        self.assertEqual(r.returncode, 0, out[-2000:])
        self.assertRegex(out, r"recv \(stream_id=\d+\) x-grpc-status: 0",
                         "the trailer did not reach the client")
        flows = test_tls.http_flows(p.flows())
        self.assertEqual(len(flows), 201)
        ups = set()
        for f in flows:
            self.assertEqual(run.status_of(f), 200, f.get("error"))
            self.assertEqual(f["request"]["http_version"], "HTTP/2.0")
            self.assertEqual(f["response"]["http_version"], "HTTP/2.0")
            self.assertEqual((f.get("server_tls") or {}).get("alpn"), "h2")
            self.assertEqual(f["response"].get("trailers"), [["x-grpc-status", "0"]])
            run.E2E.assert_msg_body(self, f["response"], data, MiB)
            ups.add(tuple(f["server"]["local"]))
        # h2load's one connection, then nghttp's: one upstream each
        self.assertEqual(len(ups), 2, ups)

    def test_server_resets_stream(self):
        """An HTTP/2 server that resets the stream (REFUSED_STREAM, 7): the
        client gets a 502 that says so, the flow an error naming the
        reset, and the connection serves the next stream the same way."""
        ls, port = start_resetting_h2_server(PKI, 7)
        try:
            p = self.proxy(modes=["reverse:https://localhost:%d" % port])
            r = subprocess.run(["nghttp", "-v", "https://127.0.0.1:%d/a" % p.port,
                                "https://127.0.0.1:%d/b" % p.port],
                               capture_output=True, timeout=60, env=CLIENT_ENV)
            out = r.stdout.decode(errors="replace")
            self.assertEqual(len(re.findall(r"recv \(stream_id=\d+\) :status: 502", out)),
                             2, out[-3000:])
            flows = test_tls.http_flows(p.flows())
        finally:
            ls.close()
        self.assertEqual(sorted(run.path_of(f) for f in flows), ["/a", "/b"])
        for f in flows:
            msg = (run.error_of(f) or {}).get("msg", "")
            self.assertIn("HTTP/2 stream reset by the server (error code 7)", msg, f)

    def test_intercept_server_no_alpn(self):
        """A server that chooses no ALPN: mirrored to the client (no h2, as
        mitmproxy); the server gets HTTP/1.1."""
        p = self.proxy()
        vers, docs, flows = self._intercept(p, NOALPN.port)
        self.assertEqual(vers, ["1.1", "1.1"])
        for doc in docs:
            self.assertIsNone(doc["tls"]["alpn"], doc["tls"])
        for f in flows:
            self.assertEqual(f["request"].get("http_version"), "HTTP/1.1")
            self.assertNotEqual((f.get("client_tls") or {}).get("alpn"), "h2")
            self.assertFalse((f.get("server_tls") or {}).get("alpn"), f.get("server_tls"))

    def test_intercept_server_chose_http11(self):
        """A server that chooses http/1.1 from the client's offer (h2,
        http/1.1): the client is offered only http/1.1, as mitmproxy does."""
        p = self.proxy()
        vers, docs, flows = self._intercept(p, self.A)
        self.assertEqual(vers, ["1.1", "1.1"])
        for doc in docs:
            self.assertEqual(doc["tls"]["alpn"], "http/1.1", doc["tls"])
        for f in flows:
            self.assertEqual(f["request"].get("http_version"), "HTTP/1.1")
            self.assertEqual((f.get("client_tls") or {}).get("alpn"), "http/1.1")
            self.assertEqual((f.get("server_tls") or {}).get("alpn"), "http/1.1")

    def test_h2c_in_connect_tunnel(self):
        """curl -p: CONNECT, then h2c prior knowledge inside the tunnel."""
        p = self.proxy()
        r = self.curl("--http2-prior-knowledge", "-p", "-x", "http://127.0.0.1:%d" % p.port,
                      "-w", "\n%{http_version}", "http://127.0.0.1:%d/echo?t=1" % self.PLAIN)
        body, _, ver = r.stdout.rpartition(b"\n")
        self.assertEqual((r.returncode, ver), (0, b"2"), r.stderr)
        self.assertEqual(json.loads(body)["path"], "/echo?t=1")
        flows = [f for f in p.flows() if f.get("type") == "http"]
        self.assertEqual(len(flows), 1, flows)
        self.assert_flow_h2(flows[0], "GET", "/echo?t=1")

    def test_reverse_https_alpn_h2(self):
        P = run.free_port()
        p = self.proxy(modes=["reverse:https://localhost:%d" % self.A], port=P)
        r = self.curl("--http2", "--noproxy", "*", "--cacert", self.rc_ca,
                      "-w", "\n%{http_version}", "https://localhost:%d/echo?r=1" % P)
        body, _, ver = r.stdout.rpartition(b"\n")
        self.assertEqual((r.returncode, ver), (0, b"2"), r.stderr)
        doc = json.loads(body)
        self.assertEqual((doc["path"], doc["http_version"], doc["tls"]["alpn"]),
                         ("/echo?r=1", "HTTP/1.1", "http/1.1"))
        h = subprocess.run(["h2load", "-n", "200", "-c", "2", "-m", "20",
                            "https://localhost:%d/bytes/1k" % P],
                           capture_output=True, timeout=120, env=CLIENT_ENV)
        out = h.stdout.decode(errors="replace")
        self.assertEqual(h.returncode, 0, out[-2000:] + h.stderr.decode(errors="replace"))
        self.assertRegex(out, r"Application protocol: h2\b")
        self.assertIn("200 succeeded, 0 failed, 0 errored", out)
        flows = p.flows()
        self.assertEqual(len(flows), 201, "flows: %d" % len(flows))
        for f in flows:
            self.assert_flow_h2(f, "GET", run.path_of(f))
            self.assertEqual(f.get("mode"), "reverse")
            self.assertEqual((f.get("client_tls") or {}).get("alpn"), "h2")
            self.assertEqual(f["request"].get("scheme"), "https")
        self.assertEqual(sorted(set(run.path_of(f) for f in flows)),
                         ["/bytes/1k", "/echo?r=1"])

    # ---- http2=false -------------------------------------------------------

    def test_http2_off_intercept(self):
        p = self.proxy(sets=["http2=false"])
        r = self.curl("--http2", "--cacert", self.rc_ca, "-x", "http://127.0.0.1:%d" % p.port,
                      "-w", "\n%{http_version}", "https://localhost:%d/echo" % self.A)
        body, _, ver = r.stdout.rpartition(b"\n")
        self.assertEqual((r.returncode, ver), (0, b"1.1"), r.stderr)
        f = self.one(test_tls.http_flows(p.flows()))
        self.assertEqual(f["request"].get("http_version"), "HTTP/1.1")
        self.assertEqual((f.get("client_tls") or {}).get("alpn"), "http/1.1")

    def test_upstream_down_gets_502_on_the_stream(self):
        """ringcap's own answer (502: nothing listens upstream) reaches an
        HTTP/2 client whole on its stream, the next stream on the same
        connection too; each is an error flow."""
        dead = run.free_port()
        p = self.proxy(modes=["reverse:http://127.0.0.1:%d" % dead])
        r = subprocess.run(["nghttp", "-v", "http://127.0.0.1:%d/a" % p.port,
                            "http://127.0.0.1:%d/b" % p.port],
                           capture_output=True, timeout=60, env=CLIENT_ENV)
        out = r.stdout.decode(errors="replace")
        self.assertEqual(len(re.findall(r"recv \(stream_id=\d+\) :status: 502", out)), 2, out[-3000:])
        self.assertNotIn("RST_STREAM", out)
        flows = p.flows()
        self.assertEqual(sorted(run.path_of(f) for f in flows), ["/a", "/b"])
        for f in flows:  # as for HTTP/1: an error, no response from a server
            self.assertIsNone(run.status_of(f), f)
            self.assertEqual(f["request"]["http_version"], "HTTP/2.0")
            self.assertIn("refused", (run.error_of(f) or {}).get("msg", ""), f)

    def test_http2_off_reverse_prior_knowledge(self):
        p = self.reverse(sets=["http2=false"])
        c = H2Raw(p.port)
        c.request(1, "/echo")
        got = bytearray()
        c.s.settimeout(5)
        try:
            while True:
                d = c.s.recv(65536)
                if not d:
                    break
                got += d
                if b"\r\n\r\n" in got and not got.startswith(b"HTTP/"):
                    break
        except (socket.timeout, ConnectionResetError):
            pass
        c.close()
        if got:
            # not an HTTP/2 server: an HTTP/1 error, never a SETTINGS frame
            self.assertRegex(bytes(got[:20]), rb"^HTTP/1\.[01] [45]\d\d ", bytes(got[:300]))
        r = self.curl("--http2-prior-knowledge", "--noproxy", "*",
                      "http://127.0.0.1:%d/bytes/10" % p.port, timeout=10)
        self.assertNotEqual(r.returncode, 0, "h2c prior knowledge served with http2=false")
        st, body = self.h1_get(p.port, "/bytes/100")
        self.assertEqual((st, body), (200, backend.payload(100)))
        flows = p.flows()
        good = [f for f in flows if not run.error_of(f)]
        self.assertEqual([run.path_of(f) for f in good], ["/bytes/100"], flows)
        self.assertEqual(good[0]["request"].get("http_version"), "HTTP/1.1")
        bad = [f for f in flows if run.error_of(f)]
        if got:  # answered with an HTTP/1 error: recorded as an error flow
            self.assertTrue(bad, "an HTTP/1 error was answered but no error flow logged")
        for f in bad:
            self.assertNotEqual(run.status_of(f), 200, f)

    def h1_get(self, port, path):
        r = self.curl("--http1.1", "--noproxy", "*", "-w", "\n%{http_code}",
                      "http://127.0.0.1:%d%s" % (port, path))
        body, _, code = r.stdout.rpartition(b"\n")
        return (int(code) if code.isdigit() else None), body

    # ---- many streams on one connection -------------------------------------

    def test_h2load_one_connection_100_streams(self):
        p = self.reverse()
        h = subprocess.run(["h2load", "-n", "500", "-c", "1", "-m", "100",
                            "http://127.0.0.1:%d/bytes/1k" % p.port],
                           capture_output=True, timeout=120, env=CLIENT_ENV)
        out = h.stdout.decode(errors="replace")
        self.assertEqual(h.returncode, 0, out[-2000:])
        self.assertIn("500 succeeded, 0 failed, 0 errored", out, out[-2000:])
        self.assertRegex(out, r"status codes: 500 2xx")
        flows = p.flows()
        self.assertEqual(len(flows), 500, "flows in the log: %d" % len(flows))
        ids = set()
        for f in flows:
            self.assert_flow_h2(f, "GET", "/bytes/1k")
            run.E2E.assert_msg_body(self, f["response"], backend.payload(1024), MiB)
            ids.add(f.get("id"))
        self.assertEqual(len(ids), 500, "flow ids are not unique")
        self.assertEqual(len(set(run.peer_of(f) for f in flows)), 1,
                         "500 streams of one connection from several client peers")

    def test_large_stream_does_not_block_others(self):
        """One connection (nghttp: every URI of one authority on one
        connection; curl 7.88's -Z with --http2-prior-knowledge fails its
        own later streams with "Error in the HTTP2 framing layer", against
        nghttpd too): a big download and 20 small requests at once."""
        n = big()[1]
        p = self.reverse()
        base = "http://127.0.0.1:%d" % p.port
        d = os.path.join(self.tmp, "dl")
        os.mkdir(d)
        small = ["/bytes/%d" % (1000 + i) for i in range(20)]
        # nghttp's -O ("not implemented yet" in 1.52) saves nothing: the
        # bodies are checked in the flow log (the big one's bytes by
        # test_reverse_h2c_download), the statistics say each completed
        r = subprocess.run(["nghttp", "-n", "-s", "-w", "20", "-W", "24",
                            base + "/stream/%d" % n] + [base + u for u in small],
                           capture_output=True, timeout=150, env=CLIENT_ENV, cwd=d)
        out = r.stdout.decode(errors="replace")
        self.assertEqual(r.returncode, 0, out[-3000:] + r.stderr.decode(errors="replace"))
        done = re.findall(r"(?m)^\s*\d+\s+\+\S+\s+\+\S+\s+\S+\s+(\d+)\s+\S+\s+(/\S+)$", out)
        self.assertEqual(sorted(done), sorted([("200", "/stream/%d" % n)] +
                                              [("200", u) for u in small]),
                         "nghttp: %s\n%s" % (out[out.find("***** Statistics"):],
                                              r.stderr.decode(errors="replace")))
        flows = p.flows()
        byp = self.flows_by_path(flows)
        self.assertEqual(len(flows), 21, list(byp))
        self.assertEqual(len(set(run.peer_of(f) for f in flows)), 1,
                         "the streams came from several connections")
        bigf = byp["/stream/%d" % n][0]
        self.assert_flow_h2(bigf, "GET", "/stream/%d" % n)
        self.assertEqual(bigf["response"].get("content_length"), n)
        big_end = bigf["response"]["ts_end"]
        for u in small:
            f = byp[u][0]
            self.assert_flow_h2(f, "GET", u)
            run.E2E.assert_msg_body(self, f["response"],
                                    backend.payload(int(u.split("/")[2])), MiB)
            self.assertLess(f["response"]["ts_end"], big_end,
                            "%s ended after the big download" % u)

    # ---- trailers ----------------------------------------------------------

    def test_trailers(self):
        p = self.reverse()
        r = subprocess.run(["nghttp", "-v", "-n", "http://127.0.0.1:%d/chunked/1000" % p.port],
                           capture_output=True, timeout=30, env=CLIENT_ENV)
        out = r.stdout.decode("latin-1")
        self.assertEqual(r.returncode, 0, out[-2000:] + r.stderr.decode(errors="replace"))
        m = re.search(r"recv \(stream_id=(\d+)\) :status: 200", out)
        self.assertTrue(m, out[-3000:])
        sid = m.group(1)
        # the trailer arrives after the body, in a HEADERS frame ending the stream
        m = re.search(r"recv \(stream_id=%s\) x-trailer: done\n.*recv HEADERS frame "
                      r"<length=\d+, flags=0x05, stream_id=%s>" % (sid, sid), out, re.S)
        self.assertTrue(m, "no x-trailer trailer in:\n" + out[-3000:])
        self.assertGreater(m.start(), out.index("recv DATA frame"), "trailer before DATA")
        # the body, with curl (which shows the trailer too)
        fn = os.path.join(self.tmp, "t.bin")
        r2, _, code, ver = self.h2c(p.port, "/chunked/100000", "-o", fn, "-D", "-", "-v")
        self.assertEqual((r2.returncode, code, ver), (0, "200", "2"), r2.stderr)
        with open(fn, "rb") as f:
            self.assertTrue(f.read() == backend.payload(100000), "chunked body differs")
        self.assertRegex(r2.stderr.decode(errors="replace"), r"(?i)< x-trailer: done")
        flows = p.flows()
        self.assertEqual([run.path_of(f) for f in flows], ["/chunked/1000", "/chunked/100000"])
        for f, n in zip(flows, (1000, 100000)):
            self.assert_flow_h2(f, "GET", "/chunked/%d" % n)
            run.E2E.assert_msg_body(self, f["response"], backend.payload(n), MiB)
            self.assertEqual([tuple(t) for t in f["response"].get("trailers") or []],
                             [("X-Trailer", "done")], "response trailers in the flow")

    # ---- raw clients: reset, garbage, flow control ---------------------------

    def test_client_resets_stream_mid_body(self):
        p = self.reverse()
        c = H2Raw(p.port)
        try:
            c.request(1, "/stream/50m")
            s1 = c.streams[1]
            c.pump(lambda: s1.data >= 256 * 1024 or s1.ended or s1.rst is not None)
            self.assertFalse(s1.ended or s1.rst is not None,
                             "stream 1 ended before the reset: %s" % c.frame_names())
            c.rst(1, CANCEL)
            c.request(3, "/echo?after=reset")
            s3 = c.streams[3]
            ok = c.pump(lambda: s3.ended or s3.rst is not None or c.goaway, timeout=20)
            self.assertTrue(ok and s3.ended, "stream 3 did not complete: %s" % c.frame_names())
            self.assertIsNone(s3.rst)
            self.assertGreaterEqual(s3.headers, 1)
            self.assertGreater(s3.data, 0)
            self.assertIsNone(c.goaway, "GOAWAY after a stream reset")
            # and once more, on the same connection
            c.request(5, "/bytes/1000")
            s5 = c.streams[5]
            c.pump(lambda: s5.ended or s5.rst is not None or c.goaway, timeout=20)
            self.assertTrue(s5.ended and s5.data == 1000, c.frame_names())
        finally:
            c.close()
        flows = p.flows()
        byp = self.flows_by_path(flows)
        self.assertEqual(sorted(byp), ["/bytes/1000", "/echo?after=reset", "/stream/50m"], flows)
        f = byp["/stream/50m"][0]
        e = run.error_of(f)
        self.assertTrue(e, "no error in the reset stream's flow: %s" % f)
        self.assertRegex(e.get("msg") or "", r"HTTP/2 stream reset by the client \(error code 8\)")
        self.assertEqual(f["request"].get("http_version"), "HTTP/2.0")
        self.assert_flow_h2(byp["/echo?after=reset"][0], "GET", "/echo?after=reset")
        self.assert_flow_h2(byp["/bytes/1000"][0], "GET", "/bytes/1000")

    GARBAGE = {
        # a client may not open an even-numbered stream
        "headers_on_stream_2": frame(HEADERS, END_HEADERS | END_STREAM, 2,
                                     hpack_literal(":method", "GET") +
                                     hpack_literal(":path", "/")),
        # SETTINGS payloads are a multiple of 6 bytes
        "settings_bad_length": frame(SETTINGS, 0, 0, b"\x00\x04\x00"),
        # a zero window increment on the connection
        "window_update_zero": frame(WINDOW_UPDATE, 0, 0, b"\x00\x00\x00\x00"),
        # DATA on stream 0
        "data_on_stream_0": frame(DATA, 0, 0, b"hello"),
    }

    def test_garbage_gets_goaway(self):
        n = big()[0] // 2
        p = self.reverse()
        # a well-behaved client downloading all along (rate limited: ~2 s)
        fn = os.path.join(self.tmp, "good.bin")
        good = subprocess.Popen(["curl", "-sS", "--max-time", "60", "--noproxy", "*",
                                 "--http2-prior-knowledge", "--limit-rate", str(n // 2),
                                 "-o", fn, "-w", "%{http_code} %{http_version}",
                                 "http://127.0.0.1:%d/stream/%d" % (p.port, n)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=CLIENT_ENV)
        self.procs.append(good)
        time.sleep(0.3)
        for name, junk in self.GARBAGE.items():
            with self.subTest(garbage=name):
                c = H2Raw(p.port)
                try:
                    c.pump(lambda: any(t == SETTINGS and not fl & ACK
                                       for t, fl, _, _ in c.frames), timeout=10)
                    c.send(junk)
                    try:
                        c.pump(lambda: c.eof, timeout=10)
                    except socket.timeout:
                        self.fail("%s: connection still open after 10 s: %s"
                                  % (name, c.frame_names()))
                    self.assertTrue(c.goaway, "%s: closed without GOAWAY: %s"
                                    % (name, c.frame_names()))
                    self.assertNotEqual(c.goaway[1], 0, "%s: GOAWAY NO_ERROR" % name)
                finally:
                    c.close()
                self.assert_h2c_ok(p.port, "/bytes/%d" % (200 + len(name)))
        self.assertIsNone(good.poll(), "the good download ended before the garbage was sent")
        out, err = good.communicate(timeout=90)
        self.assertEqual((good.returncode, out), (0, b"200 2"), err)
        self.assertEqual(os.path.getsize(fn), n)
        self.assertEqual(sha256_file(fn), backend.payload_sha256(n))
        flows = p.flows()
        good_paths = sorted(run.path_of(f) for f in flows if not run.error_of(f))
        want = sorted(["/stream/%d" % n] + ["/bytes/%d" % (200 + len(k)) for k in self.GARBAGE])
        self.assertEqual(good_paths, want, flows)

    def test_slow_client_bounded_buffering(self):
        p = self.reverse()
        # warm up: one h2 stream, so that lazily made buffers exist
        self.assert_h2c_ok(p.port, "/stream/1m", "-o", "/dev/null")
        time.sleep(0.2)
        base = vm_kib(p.proc.pid, "VmRSS")
        c = H2Raw(p.port, window=65535, auto_window=False)
        try:
            c.request(1, "/stream/200m")
            c.read_for(2.0)
            rss = vm_kib(p.proc.pid, "VmRSS")
            self.assertFalse(c.eof or c.goaway, c.frame_names())
            s1 = c.streams[1]
            self.assertGreaterEqual(s1.headers, 1, c.frame_names())
            self.assertGreater(s1.data, 0, "no DATA at all")
            self.assertLessEqual(c.data_total, 65535,
                                 "more DATA than the flow-control window allows")
        finally:
            c.close()
        grew = (rss - base) / 1024.0
        if ARGS.v or run.sanitized():
            print("\n  slow h2 client: VmRSS %d KiB -> %d KiB (+%.1f MiB)"
                  % (base, rss, grew), file=sys.stderr)
        if not run.sanitized():
            self.assertLess(grew, 64, "ringcap buffered %.1f MiB for a stalled stream" % grew)
        self.assert_h2c_ok(p.port, "/bytes/10")
        flows = p.flows()
        byp = self.flows_by_path(flows)
        self.assertEqual(sorted(byp), ["/bytes/10", "/stream/1m", "/stream/200m"], flows)
        f = byp["/stream/200m"][0]
        self.assertTrue(run.error_of(f), "the abandoned stream's flow has no error: %s" % f)
        self.assertEqual(f["request"].get("http_version"), "HTTP/2.0")


def main():
    global ARGS, PKI, NOALPN
    ap = argparse.ArgumentParser(description="ringcap HTTP/2 end-to-end tests")
    ap.add_argument("--bin", default=os.path.join(HERE, "../../build/cli/ringcap"))
    ap.add_argument("-k", action="append", default=[], help="test name pattern")
    ap.add_argument("-v", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep temp dirs")
    ARGS = ap.parse_args()
    ARGS.bin = os.path.abspath(ARGS.bin)
    if not os.access(ARGS.bin, os.X_OK):
        sys.exit("no ringcap binary at %s (--bin)" % ARGS.bin)
    for tool in ("curl", "openssl", "h2load", "nghttp", "nghttpd"):
        if not shutil.which(tool):
            print("skipped: %s is needed (Debian: curl, openssl, nghttp2-client, "
                  "nghttp2-server)" % tool, file=sys.stderr)
            sys.exit(77)
    v = subprocess.run(["curl", "-V"], capture_output=True, timeout=10).stdout.decode()
    if not re.search(r"(?m)^Features:.*\bHTTP2\b", v):
        print("skipped: this curl has no HTTP2 feature (curl -V)", file=sys.stderr)
        sys.exit(77)
    run.ARGS = argparse.Namespace(bin=ARGS.bin, peer="ringcap", keep=ARGS.keep,
                                  v=ARGS.v, k=ARGS.k, large=None, large_up=None)
    test_tls.ARGS = ARGS
    pki_dir = tempfile.mkdtemp(prefix="rc-h2-pki-")
    res = None
    t0 = time.monotonic()
    try:
        PKI = test_tls.PKI = test_tls.Pki(pki_dir)
        BACKENDS["a"] = test_tls.start_backend("--tls-cert", PKI.a, "--tls-key", PKI.a_key)
        BACKENDS["plain"] = test_tls.start_backend()
        NOALPN = start_noalpn_backend(PKI)
        loader = unittest.TestLoader()
        if ARGS.k:
            loader.testNamePatterns = ["*%s*" % k if "*" not in k else k for k in ARGS.k]
        suite = loader.loadTestsFromTestCase(H2)
        res = unittest.TextTestRunner(verbosity=2 if ARGS.v else 1,
                                      stream=sys.stderr).run(suite)
    finally:
        for p, _ in BACKENDS.values():
            p.kill()
            p.wait(5)
        if ARGS.keep:
            print("kept %s" % pki_dir, file=sys.stderr)
        else:
            shutil.rmtree(pki_dir, ignore_errors=True)
    if ARGS.v:
        print("test_h2: %.1f s" % (time.monotonic() - t0), file=sys.stderr)
    sys.exit(0 if res is not None and res.wasSuccessful() and res.testsRun > 0 else 1)


if __name__ == "__main__":
    main()
