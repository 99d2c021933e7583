#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# End-to-end tests of the other proxy modes: transparent (nftables REDIRECT
# and TPROXY, spoofed source) in network namespaces this test builds itself
# (client ns -> router ns running ringcap -> server ns), socks5 (with and
# without auth, malformed input), reverse:tcp:// and reverse:tls:// raw
# relays, and several modes in one process. Real clients: curl, raw sockets,
# python ssl. See README.md ("Mode tests") and docs/transparent.md (the exact
# nftables / ip rule commands used here).
#
#   python3 tests/e2e/test_modes.py --bin BUILD/cli/ringcap [-k pattern] [-v] [--keep]
#
# Namespace tests need root, `ip` and `nft`; without them they are skipped
# with the reason printed. Every netns, nft table and process made here is
# removed at the end of its test (or class), also on failure.
import argparse
import base64
import json
import os
import re
import shutil
import signal
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
import backend  # noqa: E402  (payload())
import run  # noqa: E402  (read_json, accessors; its ARGS is set in main())

ARGS = None
ME = os.path.abspath(__file__)
TEST_TIMEOUT = 180          # seconds; every test is bounded by SIGALRM
ALL_PROCS = []              # every Popen we started (killed at exit)
ALL_NETNS = []              # every netns we made (deleted at exit)
CLIENT_ENV = {k: v for k, v in run.ENV.items()
              if k not in ("CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")}

# Addresses inside the namespaces (nothing here touches the host's network).
C_IP, R_C_IP = "10.77.1.2", "10.77.1.1"      # client <-> router
R_S_IP, S_IP = "10.77.2.1", "10.77.2.2"      # router <-> server
NS_PROXY_PORT = 8080     # ringcap in the router ns
NS_HTTP_PORT = 8000      # backend.py in the server ns
NS_TLS_PORT = 8443       # backend.py --tls-cert in the server ns
NS_ECHO_PORT = 7000      # raw TCP echo in the server ns
NFT_TABLE = "ringcap_e2e"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def sanitized():
    return os.environ.get("RINGCAP_SANITIZED", "") not in ("", "0")


def sh(cmd, timeout=30, check=True, input=None, env=None):
    r = subprocess.run(cmd, capture_output=True, timeout=timeout, input=input,
                       env=env or CLIENT_ENV)
    if check and r.returncode != 0:
        raise AssertionError("%s: rc=%d\n%s%s" % (
            " ".join(cmd), r.returncode, r.stdout.decode(errors="replace")[-2000:],
            r.stderr.decode(errors="replace")[-2000:]))
    return r


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    s = socket.socket(family)
    s.bind((host, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def listening(pid, port):
    """Is there a TCP socket listening on |port| in the network namespace of
    process |pid|? (/proc/PID/net/tcp{,6} is that namespace's table.)"""
    for name in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, name)) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local, st = parts[1], parts[3]
                    if st == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        return True
        except (OSError, StopIteration, ValueError, IndexError):
            pass
    return False


def wait_listening(proc, port, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        if listening(proc.pid, port):
            return True
        time.sleep(0.05)
    return False


def spawn(cmd, out, err, env=None):
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=open(out, "wb"),
                         stderr=open(err, "wb"), env=env or CLIENT_ENV)
    ALL_PROCS.append(p)
    return p


def kill_proc(p):
    if p.poll() is None:
        p.kill()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass


def tail(path, n=4000):
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode("utf-8", "replace")
    except OSError:
        return ""


# --------------------------------------------------------------------------
# Helpers that also run as subprocesses inside a namespace:
#   test_modes.py --helper echo  [--host H] [--port P] [--tls-cert C --tls-key K]
#       a TCP (or TLS) echo server; prints "ready PORT", then "peer ADDR:PORT"
#       for every connection it accepts.
#   test_modes.py --helper client --host H --port P [--tls-ca F --sni N] MSG_B64...
#       sends each message, waits for its echo; prints JSON {"echo": [b64...]}.

def echo_server_main(host, port, cert=None, key=None):
    ctx = None
    if cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(256)
    print("ready %d" % ls.getsockname()[1], flush=True)
    lock = threading.Lock()

    def serve(s, addr):
        try:
            s.settimeout(60)
            if ctx is not None:
                s = ctx.wrap_socket(s, server_side=True)
            while True:
                d = s.recv(65536)
                if not d:
                    break
                s.sendall(d)
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        except (OSError, ssl.SSLError):
            pass
        finally:
            s.close()

    while True:
        s, addr = ls.accept()
        with lock:
            print("peer %s:%d" % (addr[0], addr[1]), flush=True)
        threading.Thread(target=serve, args=(s, addr), daemon=True).start()


def recv_exact(s, n, timeout=10.0):
    s.settimeout(timeout)
    out = bytearray()
    while len(out) < n:
        d = s.recv(n - len(out))
        if not d:
            break
        out += d
    return bytes(out)


def tcp_exchange(host, port, msgs, tls_ca=None, sni=None, socks=None,
                 socks_atyp="domain", socks_auth=None, timeout=10.0,
                 pause=0.05):
    """Connect (optionally through a SOCKS5 proxy |socks| = (host, port),
    optionally TLS to the server side), send each message and read back as
    many bytes; returns the list of what came back, one entry per message."""
    if socks:
        s = socket.create_connection(socks, timeout=timeout)
        rep = socks5_handshake(s, host, port, atyp=socks_atyp, auth=socks_auth)
        if rep != 0:
            s.close()
            raise AssertionError("SOCKS5 CONNECT refused: REP=%d" % rep)
    else:
        s = socket.create_connection((host, port), timeout=timeout)
    s.settimeout(timeout)
    if tls_ca:
        ctx = ssl.create_default_context(cafile=tls_ca)
        s = ctx.wrap_socket(s, server_hostname=sni or host)
    out = []
    try:
        for i, m in enumerate(msgs):
            s.sendall(m)
            try:
                out.append(recv_exact(s, len(m), timeout))
            except socket.timeout:
                raise AssertionError("message %d (%r) not echoed within %.0fs "
                                     "(%s:%d%s)" % (i, m[:40], timeout, host, port,
                                                    " via SOCKS5" if socks else ""))
            time.sleep(pause)  # keep message boundaries apart
    finally:
        s.close()
    return out


def client_main(a):
    msgs = [base64.b64decode(m) for m in a.msgs]
    res = tcp_exchange(a.host, a.port, msgs, tls_ca=a.tls_ca, sni=a.sni)
    print(json.dumps({"echo": [base64.b64encode(r).decode() for r in res]}))


# --------------------------------------------------------------------------
# SOCKS5 (RFC 1928 / RFC 1929) client side, for raw tests.

def socks5_handshake(s, host, port, atyp="domain", auth=None):
    """Greeting (+ auth), CONNECT. Returns REP (0 = succeeded)."""
    methods = b"\x02" if auth else b"\x00"
    s.sendall(b"\x05" + bytes([len(methods)]) + methods)
    g = recv_exact(s, 2)
    if len(g) != 2 or g[0] != 5:
        raise AssertionError("bad SOCKS5 method reply %r" % g)
    if g[1] == 0xFF:
        return -1
    if g[1] == 2:
        u, p = auth
        s.sendall(b"\x01" + bytes([len(u)]) + u.encode() + bytes([len(p)]) + p.encode())
        a = recv_exact(s, 2)
        if len(a) != 2 or a[1] != 0:
            return -2
    if atyp == "ipv4":
        addr = b"\x01" + socket.inet_pton(socket.AF_INET, host)
    elif atyp == "ipv6":
        addr = b"\x04" + socket.inet_pton(socket.AF_INET6, host)
    else:
        addr = b"\x03" + bytes([len(host)]) + host.encode()
    s.sendall(b"\x05\x01\x00" + addr + struct.pack("!H", port))
    head = recv_exact(s, 4)
    if len(head) != 4 or head[0] != 5:
        raise AssertionError("bad SOCKS5 reply %r" % head)
    rep, at = head[1], head[3]
    alen = {1: 4, 4: 16}.get(at)
    if alen is None and at == 3:
        alen = recv_exact(s, 1)[0]
    if alen is None:
        raise AssertionError("bad ATYP %d in SOCKS5 reply" % at)
    recv_exact(s, alen + 2)
    return rep


def read_all(s, timeout=5.0):
    """Everything until EOF; (data, closed)."""
    s.settimeout(timeout)
    data = b""
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


# --------------------------------------------------------------------------
# Certificates: a test CA (trusted by ringcap via SSL_CERT_FILE) and one
# server certificate for localhost, 127.0.0.1 and the server ns address.

class Pki:
    def __init__(self, d):
        self.d = d
        self.empty_dir = os.path.join(d, "empty-certdir")
        os.makedirs(self.empty_dir, exist_ok=True)
        self.ca, self.ca_key = self.p("ca.pem"), self.p("ca.key")
        sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout", self.ca_key,
            "-out", self.ca, "-days", "30", "-subj", "/CN=ringcap modes e2e CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        self.cert, self.key = self.p("srv.pem"), self.p("srv.key")
        csr, ext = self.p("srv.csr"), self.p("srv.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1,IP:%s\n"
                    "extendedKeyUsage=serverAuth\n"
                    "basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\n" % S_IP)
        sh(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout", self.key, "-out", csr,
            "-subj", "/CN=localhost"])
        sh(["openssl", "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey",
            self.ca_key, "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
            "-days", "30", "-out", self.cert, "-extfile", ext])

    def p(self, name):
        return os.path.join(self.d, name)


PKI = None


def ringcap_env(tmp):
    env = dict(CLIENT_ENV)
    env["SSL_CERT_FILE"] = PKI.ca
    env["SSL_CERT_DIR"] = PKI.empty_dir
    env["HOME"] = tmp
    return env


# --------------------------------------------------------------------------
# Network namespaces.

def netns_reason():
    """None if namespace tests can run, else why not."""
    if os.geteuid() != 0:
        return "not root (network namespaces and nftables need root)"
    for tool in ("ip", "nft"):
        if not shutil.which(tool):
            return "`%s` not found (install %s)" % (
                tool, "iproute2" if tool == "ip" else "nftables")
    return None


class Topology:
    """client ns --veth-- router ns (ringcap) --veth-- server ns."""

    def __init__(self, tmp):
        self.tmp = tmp
        tag = "rcm%d" % os.getpid()
        self.C, self.R, self.S = tag + "-c", tag + "-r", tag + "-s"
        self.procs = []
        try:
            self._build()
        except BaseException:
            self.destroy()
            raise

    def _build(self):
        for ns in (self.C, self.R, self.S):
            sh(["ip", "netns", "add", ns])
            ALL_NETNS.append(ns)
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        sh(["ip", "link", "add", "c0", "netns", self.C, "type", "veth",
            "peer", "name", "r1", "netns", self.R])
        sh(["ip", "link", "add", "r2", "netns", self.R, "type", "veth",
            "peer", "name", "s0", "netns", self.S])
        for ns, dev, addr in ((self.C, "c0", C_IP), (self.R, "r1", R_C_IP),
                              (self.R, "r2", R_S_IP), (self.S, "s0", S_IP)):
            sh(["ip", "-n", ns, "addr", "add", addr + "/24", "dev", dev])
            sh(["ip", "-n", ns, "link", "set", dev, "up"])
        sh(["ip", "-n", self.C, "route", "add", "default", "via", R_C_IP])
        sh(["ip", "-n", self.S, "route", "add", "default", "via", R_S_IP])
        self.sysctl(self.R, "net.ipv4.ip_forward=1")
        for k in ("all", "default", "r1", "r2", "lo"):
            self.sysctl(self.R, "net.ipv4.conf.%s.rp_filter=0" % k)
        # Servers in the server ns.
        py = sys.executable
        self.http = self.start(self.S, "http", [py, os.path.join(HERE, "backend.py"),
                                                "--host", "0.0.0.0", "--port",
                                                str(NS_HTTP_PORT)], NS_HTTP_PORT)
        self.https = self.start(self.S, "https", [
            py, os.path.join(HERE, "backend.py"), "--host", "0.0.0.0",
            "--port", str(NS_TLS_PORT), "--tls-cert", PKI.cert, "--tls-key", PKI.key],
            NS_TLS_PORT)
        self.echo_out = os.path.join(self.tmp, "ns-echo.stdout")
        self.echo = self.start(self.S, "echo", [py, ME, "--helper", "echo", "--host",
                                                "0.0.0.0", "--port", str(NS_ECHO_PORT)],
                               NS_ECHO_PORT)

    def sysctl(self, ns, kv):
        sh(["ip", "netns", "exec", ns, "sysctl", "-qw", kv])

    def start(self, ns, name, cmd, port, env=None):
        out = os.path.join(self.tmp, "ns-%s.stdout" % name)
        err = os.path.join(self.tmp, "ns-%s.stderr" % name)
        p = spawn(["ip", "netns", "exec", ns] + cmd, out, err, env=env)
        self.procs.append(p)
        if not wait_listening(p, port):
            raise AssertionError("%s in %s did not listen on %d (rc=%s)\n%s" % (
                name, ns, port, p.poll(), tail(err)))
        return p

    def echo_peers(self):
        with open(self.echo_out) as f:
            return [l.split()[1] for l in f if l.startswith("peer ")]

    def run_in(self, ns, cmd, timeout=30):
        return subprocess.run(["ip", "netns", "exec", ns] + cmd, capture_output=True,
                              timeout=timeout, env=CLIENT_ENV)

    def curl(self, *args, timeout=20):
        cmd = ["curl", "-sS", "--noproxy", "*", "--max-time", str(timeout)] + \
            [str(a) for a in args]
        try:
            return self.run_in(self.C, cmd, timeout=timeout + 15)
        except subprocess.TimeoutExpired:
            raise AssertionError("curl hung: %s" % " ".join(cmd))

    def client_exchange(self, host, port, msgs, tls_ca=None, sni=None):
        cmd = [sys.executable, ME, "--helper", "client", "--host", host,
               "--port", str(port)]
        if tls_ca:
            cmd += ["--tls-ca", tls_ca, "--sni", sni or host]
        cmd += [base64.b64encode(m).decode() for m in msgs]
        r = self.run_in(self.C, cmd, timeout=60)
        if r.returncode != 0:
            raise AssertionError("tcp client in client ns failed: %s" %
                                 r.stderr.decode(errors="replace")[-2000:])
        return [base64.b64decode(x) for x in json.loads(r.stdout)["echo"]]

    def nft(self, ruleset):
        """Load |ruleset| (nft -f syntax) into the router ns."""
        return subprocess.run(["ip", "netns", "exec", self.R, "nft", "-f", "-"],
                              input=ruleset.encode(), capture_output=True,
                              timeout=30, env=CLIENT_ENV)

    def nft_flush(self):
        subprocess.run(["ip", "netns", "exec", self.R, "nft", "delete", "table",
                        "ip", NFT_TABLE], capture_output=True, timeout=30)

    def destroy(self):
        for p in self.procs:
            kill_proc(p)
        for ns in (self.C, self.R, self.S):
            if ns in ALL_NETNS:
                subprocess.run(["ip", "netns", "del", ns], capture_output=True,
                               timeout=30)
                ALL_NETNS.remove(ns)


# The rule sets the tests load (docs/transparent.md shows the same ones).

def redirect_rules(port):
    return """table ip %s {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        iifname "r1" meta l4proto tcp redirect to :%d
    }
}
""" % (NFT_TABLE, port)


def tproxy_rules(port):
    return """table ip %s {
    chain prerouting {
        type filter hook prerouting priority mangle; policy accept;
        meta l4proto tcp socket transparent 1 meta mark set 1 accept
        iifname "r1" meta l4proto tcp tproxy to :%d meta mark set 1 accept
    }
}
""" % (NFT_TABLE, port)


# --------------------------------------------------------------------------

class Proc:
    """One ringcap under test; |prefix| runs it in a namespace."""

    def __init__(self, tc, args, port, prefix=(), name="rc", quiet=True,
                 env=None):
        self.tc = tc
        self.port = port
        self.log = os.path.join(tc.tmp, name + ".rcap")
        self.conf = os.path.join(tc.tmp, "conf")
        self.out = os.path.join(tc.tmp, name + ".stdout")
        self.err = os.path.join(tc.tmp, name + ".stderr")
        self.cmd = list(prefix) + [ARGS.bin] + (["-q"] if quiet else []) + [
            "-w", self.log, "--set", "confdir=" + self.conf] + list(args)
        self.proc = spawn(self.cmd, self.out, self.err, env=env or ringcap_env(tc.tmp))
        tc.addCleanup(kill_proc, self.proc)
        self.ca = os.path.join(self.conf, "ringcap-ca-cert.pem")

    def wait(self, *ports):
        for port in ports or (self.port,):
            if not wait_listening(self.proc, port):
                self.tc.fail("ringcap did not listen on %d (rc=%s)\ncmd: %s\n%s" % (
                    port, self.proc.poll(), " ".join(self.cmd), self.stderr()))
        return self

    def alive(self):
        self.tc.assertIsNone(self.proc.poll(), "ringcap died\n%s" % self.stderr())

    def stderr(self):
        return tail(self.err)

    def stop(self, timeout=10.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_proc(self.proc)
            self.tc.fail("ringcap did not exit within %.0fs of SIGTERM\n%s" % (
                timeout, self.stderr()))
        self.tc.assertEqual(rc, 0, "ringcap exit code after SIGTERM\ncmd: %s\n%s" % (
            " ".join(self.cmd), self.stderr()))

    def flows(self):
        self.stop()
        return run.read_json(self.tc, self.log)


def tcp_msgs(f):
    return [(bool(m.get("from_client")), base64.b64decode(m.get("content") or ""),
             m.get("ts")) for m in (run.tcp_of(f).get("messages") or [])]


class Base(unittest.TestCase):
    maxDiff = 4000

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rc-modes-")
        self.addCleanup(self._rmtmp)

        def on_alarm(signum, frame):
            raise AssertionError("test took longer than %ds" % TEST_TIMEOUT)
        signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(TEST_TIMEOUT)
        self.addCleanup(signal.alarm, 0)

    def _rmtmp(self):
        if ARGS.keep:
            log("\n  kept %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def ringcap(self, *args, port=None, **kw):
        return Proc(self, list(args), port, **kw)

    def curl(self, *args, timeout=20):
        cmd = ["curl", "-sS", "--max-time", str(timeout)] + [str(a) for a in args]
        try:
            return subprocess.run(cmd, capture_output=True, timeout=timeout + 15,
                                  env=CLIENT_ENV)
        except subprocess.TimeoutExpired:
            self.fail("curl hung: %s" % " ".join(cmd))

    def curl_ok(self, *args, expect=None):
        r = self.curl("-w", "\n%{http_code}", *args)
        body, _, code = r.stdout.rpartition(b"\n")
        self.assertEqual(r.returncode, 0, "curl %s: rc=%d %s" % (
            " ".join(map(str, args)), r.returncode, r.stderr.decode(errors="replace")))
        self.assertEqual(code, b"200", body[:300])
        if expect is not None:
            self.assertEqual(len(body), len(expect))
            self.assertTrue(body == expect, "body differs from the served one")
        return body

    def assert_http_flow(self, f, path, host, port, mode, scheme="http", status=200):
        self.assertEqual(f.get("type"), "http", f)
        self.assertEqual(f.get("mode"), mode, f)
        rq = f.get("request") or {}
        self.assertEqual(rq.get("scheme"), scheme, rq)
        self.assertEqual(rq.get("host"), host, rq)
        self.assertEqual(rq.get("port"), port, rq)
        self.assertEqual(rq.get("path"), path, rq)
        self.assertEqual(run.status_of(f), status, f)
        self.assertFalse(run.error_of(f), "unexpected error in flow: %s" % run.error_of(f))

    def assert_tcp_flow(self, f, host, port, mode, msgs):
        """|msgs| were sent one at a time, each echoed before the next: the
        flow holds them as up, down, up, down, ... with the byte counts."""
        self.assertEqual(f.get("type"), "tcp", f)
        self.assertEqual(f.get("mode"), mode, f)
        t = run.tcp_of(f)
        self.assertEqual(t.get("host"), host, t)
        self.assertEqual(t.get("port"), port, t)
        total = sum(len(m) for m in msgs)
        self.assertEqual(t.get("bytes_up"), total, t)
        self.assertEqual(t.get("bytes_down"), total, t)
        self.assertFalse(t.get("truncated"), t)
        got = tcp_msgs(f)
        want = []
        for m in msgs:
            want += [(True, m), (False, m)]
        self.assertEqual([(a, b) for a, b, _ in got], want)
        ts = [x for _, _, x in got]
        self.assertTrue(all(isinstance(x, (int, float)) and x > 0 for x in ts), ts)
        self.assertEqual(ts, sorted(ts), "message timestamps out of order")

    def assert_one(self, flows, pred, what):
        hits = [f for f in flows if pred(f)]
        self.assertEqual(len(hits), 1, "%s: %d matching flows in %s" % (
            what, len(hits), json.dumps(flows)[:3000]))
        return hits[0]


# Raw TCP messages; the first is binary, so no sniffer can take it for HTTP.
MSGS = [bytes(range(256)), b"hello ringcap\n", b"second line, a bit longer " * 3 + b"\n",
        b"bye\n"]
# A text line protocol (the client speaks first, lines end in LF, no HTTP
# version anywhere): not HTTP, so a tcp flow. Short and long first lines.
TEXT_SHORT = [b"hello ringcap\n", b"bye\n"]
TEXT_LONG = [b"this is a line protocol, not HTTP\n", b"bye\n"]


# --------------------------------------------------------------------------
# Transparent mode in namespaces.

class NetnsBase(Base):
    topo = None
    reason = None

    @classmethod
    def setUpClass(cls):
        cls.reason = netns_reason()
        if cls.reason:
            log("SKIP %s: %s" % (cls.__name__, cls.reason))
            return
        cls.ctmp = tempfile.mkdtemp(prefix="rc-modes-ns-")
        cls.topo = Topology(cls.ctmp)

    @classmethod
    def tearDownClass(cls):
        if cls.topo:
            cls.topo.destroy()
            cls.topo = None
            if not ARGS.keep:
                shutil.rmtree(cls.ctmp, ignore_errors=True)

    def setUp(self):
        if self.reason:
            self.skipTest(self.reason)
        super().setUp()
        self.T = self.topo
        self.addCleanup(self.T.nft_flush)

    def load_rules(self, rules):
        r = self.T.nft(rules)
        self.assertEqual(r.returncode, 0, "nft -f failed:\n%s\n%s" % (
            rules, r.stderr.decode(errors="replace")))

    def router_ringcap(self, *args, quiet=True):
        return self.ringcap("--listen-host", "0.0.0.0", "-p", str(NS_PROXY_PORT),
                            "--set", "block_global=false", *args,
                            port=NS_PROXY_PORT, prefix=["ip", "netns", "exec", self.T.R],
                            quiet=quiet).wait()

    def ca_copy(self, p):
        """The ringcap CA where the client ns can read it (it can: same fs)."""
        self.assertTrue(os.path.exists(p.ca), "no %s" % p.ca)
        return p.ca


class TransparentTests(NetnsBase):

    def test_transparent_redirect_http(self):
        self.load_rules(redirect_rules(NS_PROXY_PORT))
        p = self.router_ringcap("--mode", "transparent")
        base = "http://%s:%d" % (S_IP, NS_HTTP_PORT)
        self.T_curl_ok(base + "/bytes/1000", backend.payload(1000))
        body = self.T_curl_ok(base + "/echo")
        echo = json.loads(body)
        # Without spoof_source_address the upstream leaves from the router.
        self.assertEqual(echo["client"].split(":")[0], R_S_IP, echo)
        hdrs = {h[0].lower(): h[1] for h in echo["headers"]}
        self.assertEqual(hdrs.get("host"), "%s:%d" % (S_IP, NS_HTTP_PORT))
        flows = p.flows()
        self.assertEqual(len(flows), 2, flows)
        self.assert_http_flow(flows[0], "/bytes/1000", S_IP, NS_HTTP_PORT, "transparent")
        self.assertTrue(run.msg_body(flows[0]["response"]) == backend.payload(1000))
        self.assert_http_flow(flows[1], "/echo", S_IP, NS_HTTP_PORT, "transparent")
        self.assertEqual(run.peer_of(flows[0]).split(":")[0], C_IP, flows[0].get("client"))

    def T_curl_ok(self, url, expect=None, *extra):
        r = self.T.curl("-w", "\n%{http_code}", *extra, url)
        body, _, code = r.stdout.rpartition(b"\n")
        self.assertEqual(r.returncode, 0, "curl %s (client ns): rc=%d %s" % (
            url, r.returncode, r.stderr.decode(errors="replace")))
        self.assertEqual(code, b"200", body[:300])
        if expect is not None:
            self.assertTrue(body == expect, "body differs (%d bytes, want %d)" % (
                len(body), len(expect)))
        return body

    def test_transparent_redirect_https(self):
        self.load_rules(redirect_rules(NS_PROXY_PORT))
        p = self.router_ringcap("--mode", "transparent")
        ca = self.ca_copy(p)
        url = "https://%s:%d/bytes/5000" % (S_IP, NS_TLS_PORT)
        self.T_curl_ok(url, backend.payload(5000), "--cacert", ca)
        # The client saw ringcap's certificate (not the server's own CA).
        r = self.T.curl("--cacert", PKI.ca, url)
        self.assertNotEqual(r.returncode, 0, "client trusted the backend CA: not intercepted?")
        flows = p.flows()
        ok = [f for f in flows if f.get("type") == "http"]
        self.assertEqual(len(ok), 1, flows)
        f = ok[0]
        self.assert_http_flow(f, "/bytes/5000", S_IP, NS_TLS_PORT, "transparent",
                              scheme="https")
        self.assertTrue(f.get("client_tls"), f)
        self.assertTrue(f.get("server_tls"), f)
        self.assertTrue(run.msg_body(f["response"]) == backend.payload(5000))

    def test_transparent_redirect_tcp_echo(self):
        self.load_rules(redirect_rules(NS_PROXY_PORT))
        p = self.router_ringcap("--mode", "transparent")
        got = self.T.client_exchange(S_IP, NS_ECHO_PORT, MSGS)
        self.assertEqual(got, MSGS)
        flows = p.flows()
        self.assertEqual(len(flows), 1, flows)
        self.assert_tcp_flow(flows[0], S_IP, NS_ECHO_PORT, "transparent", MSGS)

    def test_transparent_redirect_text_line_protocol(self):
        """Text lines (LF, no HTTP version) are not HTTP: relayed as tcp."""
        self.load_rules(redirect_rules(NS_PROXY_PORT))
        p = self.router_ringcap("--mode", "transparent")
        for msgs in (TEXT_SHORT, TEXT_LONG):
            got = self.T.client_exchange(S_IP, NS_ECHO_PORT, msgs)
            self.assertEqual(got, msgs)
        flows = p.flows()
        self.assertEqual(len(flows), 2, flows)
        for f, msgs in zip(flows, (TEXT_SHORT, TEXT_LONG)):
            self.assert_tcp_flow(f, S_IP, NS_ECHO_PORT, "transparent", msgs)

    def test_transparent_redirect_loop_refused(self):
        """A redirected connection whose original destination is ringcap's
        own listener is refused, with a log line; ringcap keeps serving."""
        self.load_rules(redirect_rules(NS_PROXY_PORT))
        p = self.router_ringcap("--mode", "transparent", quiet=False)
        for target in (R_C_IP, R_S_IP):
            t0 = time.monotonic()
            r = self.T.curl("-w", "\n%{http_code}", "--max-time", "10",
                            "http://%s:%d/loop" % (target, NS_PROXY_PORT), timeout=10)
            took = time.monotonic() - t0
            code = r.stdout.rpartition(b"\n")[2]
            self.assertNotEqual(code, b"200", "loop to %s served: %r" % (target, r.stdout))
            self.assertLess(took, 8, "loop to %s:%d not refused promptly (%.1fs, rc=%d)" % (
                target, NS_PROXY_PORT, took, r.returncode))
            p.alive()
        self.assertIn("would loop", p.stderr())
        self.T_curl_ok("http://%s:%d/bytes/10" % (S_IP, NS_HTTP_PORT), backend.payload(10))
        flows = p.flows()
        good = [f for f in flows if run.status_of(f) == 200]
        self.assertEqual(len(good), 1, flows)
        self.assertEqual(run.path_of(good[0]), "/bytes/10")


class TproxyTests(NetnsBase):

    def tproxy_setup(self):
        r = self.T.nft(tproxy_rules(NS_PROXY_PORT))
        if r.returncode != 0:
            self.skipTest("nftables tproxy/socket match unavailable: %s" %
                          r.stderr.decode(errors="replace").strip())
        R = self.T.R
        cmds = [["ip", "-n", R, "rule", "add", "fwmark", "1", "lookup", "100"],
                ["ip", "-n", R, "route", "add", "local", "0.0.0.0/0", "dev", "lo",
                 "table", "100"]]
        for c in cmds:
            sh(c)
        self.addCleanup(subprocess.run, ["ip", "-n", R, "rule", "del", "fwmark", "1",
                                         "lookup", "100"], capture_output=True, timeout=30)
        self.addCleanup(subprocess.run, ["ip", "-n", R, "route", "flush", "table", "100"],
                        capture_output=True, timeout=30)

    def T_curl_json(self, url):
        r = self.T.curl("-w", "\n%{http_code}", url)
        body, _, code = r.stdout.rpartition(b"\n")
        self.assertEqual(r.returncode, 0, "curl %s (client ns): rc=%d %s" % (
            url, r.returncode, r.stderr.decode(errors="replace")))
        self.assertEqual(code, b"200", body[:300])
        return json.loads(body)

    def tproxy_run(self, spoof):
        self.tproxy_setup()
        sets = ["--mode", "transparent", "--set", "transparent_method=tproxy"]
        if spoof:
            sets += ["--set", "spoof_source_address=true"]
        p = self.router_ringcap(*sets, quiet=False)
        echo = self.T_curl_json("http://%s:%d/echo" % (S_IP, NS_HTTP_PORT))
        want_src = C_IP if spoof else R_S_IP
        self.assertEqual(echo["client"].split(":")[0], want_src,
                         "server saw %s\nringcap stderr:\n%s" % (echo["client"], p.stderr()))
        n_before = len(self.T.echo_peers())
        got = self.T.client_exchange(S_IP, NS_ECHO_PORT, MSGS)
        self.assertEqual(got, MSGS)
        peers = self.T.echo_peers()[n_before:]
        self.assertEqual(len(peers), 1, peers)
        self.assertEqual(peers[0].split(":")[0], want_src, peers)
        flows = p.flows()
        self.assertEqual(len(flows), 2, flows)
        h = self.assert_one(flows, lambda f: f.get("type") == "http", "http flow")
        self.assert_http_flow(h, "/echo", S_IP, NS_HTTP_PORT, "transparent")
        self.assertEqual(run.peer_of(h).split(":")[0], C_IP)
        t = self.assert_one(flows, lambda f: f.get("type") == "tcp", "tcp flow")
        self.assert_tcp_flow(t, S_IP, NS_ECHO_PORT, "transparent", MSGS)

    def test_tproxy(self):
        self.tproxy_run(spoof=False)

    def test_tproxy_spoof_source(self):
        self.tproxy_run(spoof=True)


# --------------------------------------------------------------------------
# Loopback servers for socks5 / reverse tests (one set per run).

class Loopback:
    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []
        py = sys.executable
        self.http = self.start("http", [py, os.path.join(HERE, "backend.py"), "--port", "0"])
        self.https = self.start("https", [py, os.path.join(HERE, "backend.py"), "--port",
                                          "0", "--tls-cert", PKI.cert, "--tls-key", PKI.key])
        self.echo = self.start("echo", [py, ME, "--helper", "echo", "--port", "0"])
        self.echo6 = self.start("echo6", [py, ME, "--helper", "echo", "--host", "::1",
                                          "--port", "0"])
        self.tls_echo = self.start("tlsecho", [py, ME, "--helper", "echo", "--port", "0",
                                               "--tls-cert", PKI.cert, "--tls-key", PKI.key])

    def start(self, name, cmd):
        err = os.path.join(self.tmp, name + ".stderr")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=open(err, "wb"), env=CLIENT_ENV)
        ALL_PROCS.append(p)
        self.procs.append(p)
        line = b""
        ready = threading.Event()

        def rd():
            nonlocal line
            line = p.stdout.readline()
            ready.set()
        threading.Thread(target=rd, daemon=True).start()
        ready.wait(15)
        m = re.match(rb"ready (\d+)", line)
        if not m:
            raise AssertionError("%s did not start: %r %s" % (name, line, tail(err)))
        # Drain the rest (peer lines) so the pipe never fills.
        threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
        return int(m.group(1))

    def destroy(self):
        for p in self.procs:
            kill_proc(p)


LOOP = None


class LoopBase(Base):
    def setUp(self):
        super().setUp()
        self.L = LOOP
        self.P = free_port()


class Socks5Tests(LoopBase):

    def socks(self, *sets):
        args = ["--listen-host", "127.0.0.1", "--mode", "socks5", "-p", str(self.P)]
        for s in sets:
            args += ["--set", s]
        return self.ringcap(*args, port=self.P).wait()

    def test_socks5_hostname_http(self):
        p = self.socks()
        B = self.L.http
        self.curl_ok("--socks5-hostname", "127.0.0.1:%d" % self.P,
                     "http://127.0.0.1:%d/bytes/100" % B, expect=backend.payload(100))
        self.curl_ok("--socks5-hostname", "127.0.0.1:%d" % self.P,
                     "http://localhost:%d/bytes/200" % B, expect=backend.payload(200))
        flows = p.flows()
        self.assertEqual(len(flows), 2, flows)
        self.assert_http_flow(flows[0], "/bytes/100", "127.0.0.1", B, "socks5")
        self.assert_http_flow(flows[1], "/bytes/200", "localhost", B, "socks5")
        self.assertTrue(run.msg_body(flows[0]["response"]) == backend.payload(100))

    def test_socks5_ip_http(self):
        p = self.socks()
        B = self.L.http
        self.curl_ok("--socks5", "127.0.0.1:%d" % self.P,
                     "http://127.0.0.1:%d/bytes/100" % B, expect=backend.payload(100))
        flows = p.flows()
        self.assertEqual(len(flows), 1, flows)
        self.assert_http_flow(flows[0], "/bytes/100", "127.0.0.1", B, "socks5")

    def test_socks5_auth(self):
        p = self.socks("proxyauth=user:pass")
        B = self.L.http
        proxy = "127.0.0.1:%d" % self.P
        self.curl_ok("--socks5-hostname", proxy, "-U", "user:pass",
                     "http://127.0.0.1:%d/bytes/100" % B, expect=backend.payload(100))
        r = self.curl("--socks5-hostname", proxy, "-U", "user:wrong",
                      "http://127.0.0.1:%d/bytes/101" % B)
        self.assertNotEqual(r.returncode, 0, "wrong password accepted: %r" % r.stdout[:200])
        r = self.curl("--socks5-hostname", proxy, "http://127.0.0.1:%d/bytes/102" % B)
        self.assertNotEqual(r.returncode, 0, "no credentials accepted: %r" % r.stdout[:200])
        p.alive()
        self.curl_ok("--socks5-hostname", proxy, "-U", "user:pass",
                     "http://127.0.0.1:%d/bytes/103" % B, expect=backend.payload(103))
        flows = p.flows()
        ok = [f for f in flows if run.status_of(f) == 200]
        self.assertEqual([run.path_of(f) for f in ok], ["/bytes/100", "/bytes/103"], flows)
        for f in ok:
            self.assertEqual(f.get("mode"), "socks5")
        errs = [f for f in flows if run.error_of(f)]
        self.assertGreaterEqual(len(errs), 1, "no error flow for the wrong password: %s"
                                % json.dumps(flows)[:3000])
        for f in errs:
            self.assertEqual(f.get("mode"), "socks5", f)
            self.assertNotIn("/bytes/101", json.dumps(f), "request went through: %s" % f)

    def test_socks5_https(self):
        p = self.socks()
        H = self.L.https
        self.curl_ok("--socks5-hostname", "127.0.0.1:%d" % self.P, "--cacert", p.ca,
                     "https://localhost:%d/bytes/3000" % H, expect=backend.payload(3000))
        flows = p.flows()
        self.assertEqual(len(flows), 1, flows)
        f = flows[0]
        self.assert_http_flow(f, "/bytes/3000", "localhost", H, "socks5", scheme="https")
        self.assertTrue(f.get("client_tls"), f)
        self.assertTrue(f.get("server_tls"), f)

    def test_socks5_tcp_echo(self):
        p = self.socks()
        E = self.L.echo
        got = tcp_exchange("127.0.0.1", E, MSGS, socks=("127.0.0.1", self.P),
                           socks_atyp="ipv4")
        self.assertEqual(got, MSGS)
        got = tcp_exchange("::1", self.L.echo6, MSGS[:2], socks=("127.0.0.1", self.P),
                           socks_atyp="ipv6")
        self.assertEqual(got, MSGS[:2])
        flows = p.flows()
        self.assertEqual(len(flows), 2, flows)
        f4 = self.assert_one(flows, lambda f: run.tcp_of(f).get("port") == E, "ipv4 echo")
        self.assert_tcp_flow(f4, "127.0.0.1", E, "socks5", MSGS)
        f6 = self.assert_one(flows, lambda f: run.tcp_of(f).get("port") == self.L.echo6,
                             "ipv6 echo")
        self.assert_tcp_flow(f6, "::1", self.L.echo6, "socks5", MSGS[:2])

    def test_socks5_text_line_protocol(self):
        """Text lines (LF, no HTTP version) through SOCKS: a tcp flow."""
        p = self.socks()
        E = self.L.echo
        for msgs in (TEXT_SHORT, TEXT_LONG):
            got = tcp_exchange("127.0.0.1", E, msgs, socks=("127.0.0.1", self.P))
            self.assertEqual(got, msgs)
        flows = p.flows()
        self.assertEqual(len(flows), 2, flows)
        for f, msgs in zip(flows, (TEXT_SHORT, TEXT_LONG)):
            self.assert_tcp_flow(f, "127.0.0.1", E, "socks5", msgs)

    def test_socks5_malformed(self):
        """Malformed SOCKS5 input: ringcap answers with an error or closes;
        never crashes, never hangs, keeps serving."""
        p = self.socks("proxyauth=user:pass")
        E = self.L.echo
        connect_e = b"\x05\x01\x00\x01\x7f\x00\x00\x01" + struct.pack("!H", E)
        cases = [
            ("bad version (SOCKS4)", b"\x04\x01" + struct.pack("!H", E) + b"\x7f\x00\x00\x01u\x00", None),
            ("HTTP instead of SOCKS", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", None),
            ("NMETHODS 0", b"\x05\x00", {b"", b"\x05\xff"}),
            ("no acceptable method", b"\x05\x01\x00", {b"", b"\x05\xff"}),
            ("truncated greeting", b"\x05\x03\x00", None),
            ("bad auth version", b"\x05\x01\x02" + b"\x02\x04user\x04pass", None),
            ("truncated auth", b"\x05\x01\x02" + b"\x01\x04us", None),
            ("empty user", b"\x05\x01\x02" + b"\x01\x00\x00", None),
            ("bad ATYP", b"\x05\x01\x02" + b"\x01\x04user\x04pass" +
             b"\x05\x01\x00\x07\x7f\x00\x00\x01\x00\x50", None),
            ("CMD BIND", b"\x05\x01\x02" + b"\x01\x04user\x04pass" +
             b"\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50", None),
            ("bad request version", b"\x05\x01\x02" + b"\x01\x04user\x04pass" +
             b"\x04" + connect_e[1:], None),
            ("domain length 0", b"\x05\x01\x02" + b"\x01\x04user\x04pass" +
             b"\x05\x01\x00\x03\x00\x00\x50", None),
            ("truncated request", b"\x05\x01\x02" + b"\x01\x04user\x04pass" +
             b"\x05\x01\x00\x03\x20abc", None),
            ("garbage", os.urandom(64), None),
        ]
        for name, data, allowed in cases:
            s = socket.create_connection(("127.0.0.1", self.P), timeout=5)
            truncated = name.startswith("truncated")
            try:
                s.sendall(data)
                if truncated:
                    s.shutdown(socket.SHUT_WR)  # then close: EOF mid-message
                got, closed = read_all(s, timeout=5)
            finally:
                s.close()
            self.assertTrue(closed, "%s: connection left open (got %r)" % (name, got))
            if allowed is not None:
                self.assertIn(got, allowed, name)
            # Whatever came back is SOCKS replies only, never success.
            if got.startswith(b"\x05\x02\x01\x00"):   # method 2, auth ok
                got = got[4:]
            self.assertFalse(got[:2] == b"\x05\x00" and len(got) >= 10,
                             "%s: CONNECT succeeded: %r" % (name, got))
            if name in ("bad ATYP", "CMD BIND"):
                self.assertTrue(got[:2] in (b"", b"\x05\x08", b"\x05\x07"),
                                "%s: reply %r (RFC 1928: 07/08)" % (name, got))
            p.alive()
        got = tcp_exchange("127.0.0.1", E, [b"\x00still serving\n"],
                           socks=("127.0.0.1", self.P), socks_auth=("user", "pass"))
        self.assertEqual(got, [b"\x00still serving\n"])
        self.curl_ok("--socks5-hostname", "127.0.0.1:%d" % self.P, "-U", "user:pass",
                     "http://127.0.0.1:%d/bytes/10" % self.L.http, expect=backend.payload(10))
        flows = p.flows()
        self.assert_one(flows, lambda f: run.status_of(f) == 200, "the request afterwards")


class ReverseRawTests(LoopBase):

    def test_reverse_tcp(self):
        E = self.L.echo
        p = self.ringcap("--listen-host", "127.0.0.1", "--mode",
                         "reverse:tcp://127.0.0.1:%d" % E, "-p", str(self.P),
                         port=self.P).wait()
        got = tcp_exchange("127.0.0.1", self.P, MSGS)
        self.assertEqual(got, MSGS)
        flows = p.flows()
        self.assertEqual(len(flows), 1, flows)
        self.assert_tcp_flow(flows[0], "127.0.0.1", E, "reverse", MSGS)

    def test_reverse_tcp_capture_limit(self):
        E = self.L.echo
        p = self.ringcap("--listen-host", "127.0.0.1", "--mode",
                         "reverse:tcp://127.0.0.1:%d" % E, "-p", str(self.P),
                         "--set", "body_capture_limit=1k", port=self.P).wait()
        msgs = [os.urandom(700), os.urandom(3000), os.urandom(5000)]
        got = tcp_exchange("127.0.0.1", self.P, msgs)
        self.assertEqual(got, msgs)
        flows = p.flows()
        self.assertEqual(len(flows), 1, flows)
        t = run.tcp_of(flows[0])
        total = sum(map(len, msgs))
        self.assertEqual(t.get("bytes_up"), total, t)
        self.assertEqual(t.get("bytes_down"), total, t)
        self.assertTrue(t.get("truncated"), t)
        got = tcp_msgs(flows[0])
        up = b"".join(c for fc, c, _ in got if fc)
        down = b"".join(c for fc, c, _ in got if not fc)
        whole = b"".join(msgs)
        self.assertTrue(whole.startswith(up), "captured upstream bytes are not a prefix")
        self.assertTrue(whole.startswith(down), "captured downstream bytes are not a prefix")
        # The limit is one budget for the flow (body_capture_limit).
        self.assertEqual(len(up) + len(down), 1024, [(fc, len(c)) for fc, c, _ in got])
        self.assertEqual([(fc, len(c)) for fc, c, _ in got], [(True, 700), (False, 324)])

    def test_reverse_tls(self):
        TE = self.L.tls_echo
        p = self.ringcap("--listen-host", "127.0.0.1", "--mode",
                         "reverse:tls://localhost:%d" % TE, "-p", str(self.P),
                         port=self.P).wait()
        plain = [b"plain client\n", b"two\n"]
        got = tcp_exchange("127.0.0.1", self.P, plain)
        self.assertEqual(got, plain)
        tls = [b"tls client\n", b"\x16\x03\x01 looks like a record\n"]
        got = tcp_exchange("127.0.0.1", self.P, tls, tls_ca=p.ca, sni="localhost")
        self.assertEqual(got, tls)
        flows = p.flows()
        self.assertEqual(len(flows), 2, flows)
        fp = self.assert_one(flows, lambda f: not f.get("client_tls"), "plain client")
        ft = self.assert_one(flows, lambda f: f.get("client_tls"), "tls client")
        self.assert_tcp_flow(fp, "localhost", TE, "reverse", plain)
        self.assert_tcp_flow(ft, "localhost", TE, "reverse", tls)
        self.assertTrue(ft.get("server_tls"), ft)
        self.assertTrue(fp.get("server_tls"), fp)

    def test_reverse_tls_untrusted_upstream(self):
        """Without the test CA the upstream certificate is refused (secure
        default): the client gets nothing echoed; an error flow; still up."""
        TE = self.L.tls_echo
        env = ringcap_env(self.tmp)
        env["SSL_CERT_FILE"] = os.path.join(PKI.empty_dir, "none.pem")
        p = self.ringcap("--listen-host", "127.0.0.1", "--mode",
                         "reverse:tls://localhost:%d" % TE, "-p", str(self.P),
                         port=self.P, env=env).wait()
        s = socket.create_connection(("127.0.0.1", self.P), timeout=5)
        try:
            s.sendall(b"must not arrive\n")
            got, closed = read_all(s, timeout=8)
        finally:
            s.close()
        self.assertNotIn(b"must not arrive", got)
        self.assertTrue(closed, "connection left open")
        p.alive()
        flows = p.flows()
        self.assertEqual(len(flows), 1, flows)
        self.assertTrue(run.error_of(flows[0]), flows[0])


class SeveralModesTests(LoopBase):

    def test_socks5_and_reverse_tcp(self):
        P1, P2 = self.P, free_port()
        E = self.L.echo
        p = self.ringcap("--listen-host", "127.0.0.1", "--mode", "socks5@%d" % P1,
                         "--mode", "reverse:tcp://127.0.0.1:%d@%d" % (E, P2),
                         port=P1).wait(P1, P2)
        self.curl_ok("--socks5-hostname", "127.0.0.1:%d" % P1,
                     "http://127.0.0.1:%d/bytes/100" % self.L.http, expect=backend.payload(100))
        got = tcp_exchange("127.0.0.1", P2, MSGS[:2])
        self.assertEqual(got, MSGS[:2])
        flows = p.flows()
        self.assertEqual(len(flows), 2, flows)
        h = self.assert_one(flows, lambda f: f.get("type") == "http", "http flow")
        self.assert_http_flow(h, "/bytes/100", "127.0.0.1", self.L.http, "socks5")
        t = self.assert_one(flows, lambda f: f.get("type") == "tcp", "tcp flow")
        self.assert_tcp_flow(t, "127.0.0.1", E, "reverse", MSGS[:2])


# --------------------------------------------------------------------------

def cleanup_all():
    for p in ALL_PROCS:
        kill_proc(p)
    for ns in list(ALL_NETNS):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        ALL_NETNS.remove(ns)


def main():
    global ARGS, PKI, LOOP
    if len(sys.argv) > 2 and sys.argv[1] == "--helper":
        ap = argparse.ArgumentParser()
        ap.add_argument("--helper", choices=("echo", "client"))
        ap.add_argument("--host", default="127.0.0.1")
        ap.add_argument("--port", type=int, default=0)
        ap.add_argument("--tls-cert")
        ap.add_argument("--tls-key")
        ap.add_argument("--tls-ca")
        ap.add_argument("--sni")
        ap.add_argument("msgs", nargs="*")
        a = ap.parse_args()
        if a.helper == "echo":
            try:
                echo_server_main(a.host, a.port, a.tls_cert, a.tls_key)
            except KeyboardInterrupt:
                pass
        else:
            client_main(a)
        return
    ap = argparse.ArgumentParser(description="ringcap mode tests")
    ap.add_argument("--bin", default=os.path.join(HERE, "../../build/cli/ringcap"))
    ap.add_argument("-k", action="append", default=[], help="test name pattern")
    ap.add_argument("-v", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep temp dirs")
    ARGS = ap.parse_args()
    ARGS.bin = os.path.abspath(ARGS.bin)
    if not os.access(ARGS.bin, os.X_OK):
        sys.exit("no ringcap binary at %s (--bin)" % ARGS.bin)
    run.ARGS = argparse.Namespace(bin=ARGS.bin, peer="ringcap", keep=ARGS.keep)
    reason = netns_reason()
    if reason:
        log("SKIP (77) namespace tests: %s" % reason)

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    tmp = tempfile.mkdtemp(prefix="rc-modes-run-")
    ok = False
    try:
        PKI = Pki(os.path.join(tmp, "pki"))
        LOOP = Loopback(tmp)
        loader = unittest.TestLoader()
        if ARGS.k:
            loader.testNamePatterns = ["*%s*" % k if "*" not in k else k for k in ARGS.k]
        suite = unittest.TestSuite()
        for cls in (TransparentTests, TproxyTests, Socks5Tests, ReverseRawTests,
                    SeveralModesTests):
            suite.addTests(loader.loadTestsFromTestCase(cls))
        res = unittest.TextTestRunner(verbosity=2 if ARGS.v else 1,
                                      stream=sys.stderr).run(suite)
        ok = res.wasSuccessful() and res.testsRun > 0
        for t, why in res.skipped:
            log("skipped %s: %s" % (t.id().split(".", 1)[-1], why))
    finally:
        if LOOP:
            LOOP.destroy()
        cleanup_all()
        if not ARGS.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
