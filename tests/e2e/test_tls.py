#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# End-to-end tests of TLS interception: the real ringcap binary on loopback
# between curl / openssl s_client / python ssl clients and TLS backends
# (backend.py --tls-cert) whose certificates come from a test CA made with
# the openssl CLI for this run. ringcap trusts that CA through SSL_CERT_FILE
# (OpenSSL default paths); every ringcap runs with its own temp confdir and
# HOME. See README.md ("TLS tests") for what each test covers.
#
#   python3 tests/e2e/test_tls.py --bin BUILD/cli/ringcap [-k pattern] [-v] [--keep]
import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import stat
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

ARGS = None
PKI = None       # Pki: test CA, other CA, server certificates
BACKENDS = {}    # name -> (Popen, port): "a", "b" (TLS), "plain" (HTTP)
MiB = 1 << 20
DAY = 86400.0

# Clients get no proxy and no CA bundle from the environment.
CLIENT_ENV = {k: v for k, v in run.ENV.items()
              if k not in ("CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")}


def sh(cmd, timeout=30, input=None, check=True):
    """Run a short helper command (openssl); returns CompletedProcess."""
    r = subprocess.run(cmd, capture_output=True, timeout=timeout, input=input,
                       env=CLIENT_ENV)
    if check and r.returncode != 0:
        raise AssertionError("%s: rc=%d\n%s" % (" ".join(cmd), r.returncode,
                                                r.stderr.decode(errors="replace")))
    return r


# --------------------------------------------------------------------------
# Certificates, made once per run with the openssl CLI.

class Pki:
    """A test CA (trusted by ringcap through SSL_CERT_FILE), another CA that
    nobody trusts, and the backends' certificates:
      a: CN=test.local, SAN test.local alt.test.local localhost IP:127.0.0.1
      b: no CN (O only), SAN sanonly.test localhost IP:127.0.0.1
      u: like a, signed by the other CA."""

    def __init__(self, d):
        self.d = d
        self.empty_dir = os.path.join(d, "empty-certdir")
        os.mkdir(self.empty_dir)
        self.ca, self.ca_key = self._ca("ca", "/CN=ringcap e2e test CA/O=e2e")
        self.other, self.other_key = self._ca("other", "/CN=untrusted e2e CA")
        san_a = "DNS:test.local,DNS:alt.test.local,DNS:localhost,IP:127.0.0.1"
        self.a, self.a_key = self._leaf("a", "/CN=test.local", san_a,
                                        self.ca, self.ca_key)
        self.b, self.b_key = self._leaf("b", "/O=ringcap e2e san only",
                                        "DNS:sanonly.test,DNS:localhost,IP:127.0.0.1",
                                        self.ca, self.ca_key)
        self.u, self.u_key = self._leaf("u", "/CN=test.local", san_a,
                                        self.other, self.other_key)

    def _p(self, name):
        return os.path.join(self.d, name)

    def _ca(self, name, subj):
        cert, key = self._p(name + ".pem"), self._p(name + ".key")
        sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
            "-days", "30", "-subj", subj,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        return cert, key

    def _leaf(self, name, subj, san, ca, ca_key):
        cert, key, csr = (self._p(name + ".pem"), self._p(name + ".key"),
                          self._p(name + ".csr"))
        ext = self._p(name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth\n"
                    "basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\n" % san)
        sh(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
            "-subj", subj])
        sh(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
            "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
            "-days", "30", "-out", cert, "-extfile", ext])
        return cert, key


def pem_to_der(pem_text):
    """DER of the first PEM certificate in |pem_text| (text around it, such
    as openssl pkcs12's bag attributes, is skipped)."""
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----",
                  pem_text, re.S)
    assert m, "no PEM certificate in %r" % pem_text[:300]
    return ssl.PEM_cert_to_DER_cert(m.group(0))


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def cert_file_sha256(path):
    with open(path) as f:
        return sha256_hex(pem_to_der(f.read()))


def x509_text(der):
    """`openssl x509 -text` of a DER certificate."""
    return sh(["openssl", "x509", "-inform", "DER", "-noout", "-text"],
              input=der).stdout.decode()


def x509_dates(der):
    out = sh(["openssl", "x509", "-inform", "DER", "-noout", "-dates"],
             input=der).stdout.decode()
    nb = re.search(r"notBefore=(.*)", out).group(1).strip()
    na = re.search(r"notAfter=(.*)", out).group(1).strip()
    return ssl.cert_time_to_seconds(nb), ssl.cert_time_to_seconds(na)


def x509_san(der):
    """The SAN entries as a set of strings: 'DNS:x', 'IP:1.2.3.4'."""
    t = x509_text(der)
    m = re.search(r"X509v3 Subject Alternative Name:.*?\n\s*(.*)\n", t)
    if not m:
        return set()
    out = set()
    for part in m.group(1).split(","):
        part = part.strip().replace("IP Address:", "IP:")
        out.add(part)
    return out


def x509_pubkey(der):
    return sh(["openssl", "x509", "-inform", "DER", "-noout", "-pubkey"],
              input=der).stdout


def http_flows(flows):
    """The http flows: helpers such as leaf_via_proxy() open intercepted
    connections without a request (see test_no_flow_for_connection_without_request)."""
    return [f for f in flows if f.get("type") == "http"]


def start_backend(*extra):
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "backend.py"),
                          "--port", "0"] + list(extra),
                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    line = p.stdout.readline().decode()
    m = re.match(r"ready (\d+)", line)
    if not m:
        p.kill()
        sys.exit("backend %s did not start: %r" % (extra, line))
    return p, int(m.group(1))


def summary_counts(text):
    """The TLS line of ringcap's exit summary (stderr, without -q):
    'ringcap: TLS: N intercepted, N clients refused our certificate; record
    layer: N userspace, N kernel (kTLS); leaf cache: N hits, N misses, N signed'
    as a dict, or None when no such line is printed."""
    m = None
    for m in re.finditer(
            r"TLS: (\d+) intercepted, (\d+) clients refused our certificate; "
            r"record layer: (\d+) userspace, (\d+) kernel \(kTLS\); "
            r"leaf cache: (\d+) hits, (\d+) misses, (\d+) signed", text):
        pass
    if not m:
        return None
    keys = ("intercepted", "client_failed", "userspace", "ktls", "hits",
            "misses", "signed")
    return dict(zip(keys, (int(g) for g in m.groups())))


# --------------------------------------------------------------------------

def case_setup(tc, prefix):
    """A test's temp dir, HOME and (not yet existing) confdir, and the
    processes it starts; shared with test_h2.py."""
    tc.tmp = tempfile.mkdtemp(prefix=prefix)
    tc.procs = []
    tc.home = os.path.join(tc.tmp, "home")
    os.mkdir(tc.home, 0o700)
    # the confdir does not exist yet: ringcap creates it (mode 0700)
    tc.confdir = os.path.join(tc.tmp, "conf")


def case_teardown(tc, keep):
    """Kill what the test started; remove its temp dir unless |keep|."""
    for p in tc.procs:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
    if keep:
        print("\n  kept %s" % tc.tmp, file=sys.stderr)
    else:
        shutil.rmtree(tc.tmp, ignore_errors=True)


class TLS(unittest.TestCase):
    maxDiff = 4000

    def setUp(self):
        case_setup(self, "rc-tls-")
        self.A = BACKENDS["a"][1]
        self.B = BACKENDS["b"][1]
        self.U = BACKENDS["u"][1]
        self.PLAIN = BACKENDS["plain"][1]

    def tearDown(self):
        case_teardown(self, ARGS.keep)

    # ---- helpers -----------------------------------------------------------

    @property
    def rc_ca(self):
        """ringcap's CA certificate as its clients install it."""
        return os.path.join(self.confdir, "ringcap-ca-cert.pem")

    def proxy(self, sets=(), trust=None, confdir=None, quiet=True, wait=True,
              **kw):
        """A ringcap with its own confdir and HOME; |trust| is the CA file
        ringcap's OpenSSL trusts upstream (SSL_CERT_FILE, default: the test
        CA; SSL_CERT_DIR is an empty dir so nothing else is trusted)."""
        env = {"SSL_CERT_FILE": trust or PKI.ca, "SSL_CERT_DIR": PKI.empty_dir,
               "HOME": self.home}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            p = run.Proxy(self, sets=["confdir=" + (confdir or self.confdir)] +
                          list(sets), quiet=quiet, **kw)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return p.wait() if wait else p

    def curl(self, *args, timeout=30):
        cmd = ["curl", "-sS", "--max-time", str(timeout)] + [str(a) for a in args]
        try:
            return subprocess.run(cmd, capture_output=True, timeout=timeout + 15,
                                  env=CLIENT_ENV)
        except subprocess.TimeoutExpired:
            self.fail("curl hung: %s" % " ".join(cmd))

    def get(self, url, proxy, *extra, cacert=None, timeout=30):
        """(status, body, curl result) of one URL through |proxy| (a port)
        trusting |cacert| (default: ringcap's CA)."""
        args = list(extra) + ["--cacert", cacert or self.rc_ca]
        if proxy:
            args += ["-x", "http://127.0.0.1:%d" % proxy]
        else:
            args += ["--noproxy", "*"]
        r = self.curl(*args, "-w", "\n%{http_code}", url, timeout=timeout)
        body, _, code = r.stdout.rpartition(b"\n")
        return (int(code) if code.isdigit() else None), body, r

    def assert_get(self, url, proxy, expect, *extra, cacert=None):
        st, body, r = self.get(url, proxy, *extra, cacert=cacert)
        self.assertEqual((r.returncode, st), (0, 200),
                         "curl %s: %s %r" % (url, r.stderr.decode(errors="replace"),
                                             body[:300]))
        if isinstance(expect, bytes):
            self.assertEqual(len(body), len(expect))
            self.assertTrue(body == expect, "body differs from the served one")
        return body

    def echo(self, url, proxy, *extra, cacert=None):
        body = self.assert_get(url, proxy, None, *extra, cacert=cacert)
        return json.loads(body)

    def leaf_via_proxy(self, proxy, host, port, sni, cafile=None, check=True):
        """CONNECT host:port through |proxy|, TLS with |sni| (None: no SNI),
        trusting |cafile| (default: ringcap's CA). Returns (der, version,
        alpn) of what the client was shown."""
        s = socket.create_connection(("127.0.0.1", proxy), timeout=15)
        try:
            s.sendall(("CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n"
                       % (host, port, host, port)).encode())
            head = b""
            while b"\r\n\r\n" not in head:
                d = s.recv(4096)
                if not d:
                    break
                head += d
            self.assertRegex(head, rb"^HTTP/1\.[01] 200", head)
            ctx = ssl.create_default_context(cafile=cafile or self.rc_ca)
            ctx.check_hostname = check and sni is not None
            if not check:
                ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["http/1.1"])
            t = ctx.wrap_socket(s, server_hostname=sni)
            der = t.getpeercert(binary_form=True)
            ver, alpn = t.version(), t.selected_alpn_protocol()
            t.close()
            return der, ver, alpn
        finally:
            s.close()

    def s_client_cert(self, proxy, host, port, sni):
        """The certificate openssl s_client sees through `-proxy` (DER)."""
        cmd = ["openssl", "s_client", "-proxy", "127.0.0.1:%d" % proxy,
               "-connect", "%s:%d" % (host, port), "-showcerts"]
        if sni:
            cmd += ["-servername", sni]
        r = subprocess.run(cmd, capture_output=True, timeout=30, input=b"",
                           env=CLIENT_ENV)
        out = r.stdout.decode(errors="replace")
        m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----",
                      out, re.S)
        self.assertTrue(m, "openssl s_client showed no certificate: rc=%d %s" % (
            r.returncode, r.stderr.decode(errors="replace")[-1500:]))
        return pem_to_der(m.group(0))

    def one_flow(self, flows, type_="http"):
        self.assertEqual(len(flows), 1, json.dumps(flows, indent=1)[:3000])
        self.assertEqual(flows[0].get("type"), type_, flows[0])
        return flows[0]

    def assert_https_flow(self, f, host, port, path, status=200, sni=None):
        self.assertEqual(f.get("type"), "http", f)
        rq = f.get("request") or {}
        self.assertEqual(rq.get("scheme"), "https", rq)
        self.assertEqual(rq.get("host"), host, rq)
        self.assertEqual(rq.get("port"), port, rq)
        self.assertEqual(rq.get("path"), path, rq)
        self.assertEqual(run.status_of(f), status, f.get("response"))
        self.assertFalse(run.error_of(f), f)
        ct, st = f.get("client_tls"), f.get("server_tls")
        self.assertTrue(ct, "no client_tls in %s" % f)
        self.assertTrue(st, "no server_tls in %s" % f)
        self.assertEqual(ct.get("sni") or None, sni, ct)
        self.assertEqual(st.get("sni") or None, sni, st)
        for t in (ct, st):
            self.assertEqual(t.get("alpn"), "http/1.1", t)
            self.assertIn(t.get("version"), ("TLSv1.2", "TLSv1.3"), t)
            self.assertTrue(t.get("cipher"), t)
        now = time.time()
        self.assertTrue(now - 600 < (ct.get("ts_setup") or 0) <= now + 1, ct)
        cts = (f.get("client") or {}).get("ts_start")
        if cts:
            self.assertGreaterEqual(ct["ts_setup"] + 0.001, cts)
        self.assertEqual(st.get("verify"), "ok", st)
        return ct, st

    def assert_error_flow(self, f, name, msg_re):
        e = run.error_of(f)
        self.assertTrue(e, "no error in %s" % f)
        self.assertEqual(e.get("name"), name, e)
        self.assertRegex(e.get("msg") or "", msg_re)

    def stop_summary(self, p):
        """Stop a proxy started with quiet=False; its exit summary's TLS line."""
        p.stop()
        with open(p.err, "rb") as f:
            err = f.read().decode(errors="replace")
        c = summary_counts(err)
        if c is None:
            self.fail("GAP: the exit summary prints no TLS / leaf cache counters "
                      "(stderr tail):\n%s" % err[-2000:])
        return c, err

    # ---- the CA ------------------------------------------------------------

    def test_ca_created(self):
        self.assertFalse(os.path.exists(self.confdir))
        p = self.proxy()
        p.stop()
        d = self.confdir
        self.assertEqual(stat.S_IMODE(os.stat(d).st_mode) & 0o077, 0,
                         "confdir is accessible to others: %o" % os.stat(d).st_mode)
        key = os.path.join(d, "ringcap-ca.pem")
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600,
                         "CA key file mode %o" % os.stat(key).st_mode)
        fp = cert_file_sha256(os.path.join(d, "ringcap-ca-cert.pem"))
        self.assertEqual(cert_file_sha256(key), fp, "key file holds another cert")
        with open(os.path.join(d, "ringcap-ca-cert.cer"), "rb") as f:
            self.assertEqual(sha256_hex(f.read()), fp, ".cer is not the CA (DER)")
        p12 = os.path.join(d, "ringcap-ca-cert.p12")
        r = sh(["openssl", "pkcs12", "-in", p12, "-nokeys", "-passin", "pass:"])
        self.assertEqual(sha256_hex(pem_to_der(r.stdout.decode())), fp)
        r = sh(["openssl", "pkcs12", "-in", p12, "-nocerts", "-nodes", "-passin",
                "pass:"], check=False)
        self.assertNotIn(b"PRIVATE KEY", r.stdout, "the .p12 export holds a private key")
        for f in ("ringcap-ca-cert.pem", "ringcap-ca-cert.cer", "ringcap-ca-cert.p12"):
            self.assertNotIn(b"PRIVATE KEY", open(os.path.join(d, f), "rb").read(), f)
        # the key in ringcap-ca.pem belongs to the certificate
        pub_cert = sh(["openssl", "x509", "-in", key, "-noout", "-pubkey"]).stdout
        pub_key = sh(["openssl", "pkey", "-in", key, "-pubout"]).stdout
        self.assertEqual(pub_cert, pub_key, "CA key and certificate do not match")
        t = sh(["openssl", "x509", "-in", key, "-noout", "-text"]).stdout.decode()
        self.assertRegex(t, r"CA:TRUE")
        self.assertRegex(t, r"Certificate Sign")
        # a restart loads the same CA and rewrites nothing
        mtime = os.stat(key).st_mtime_ns
        p2 = self.proxy(name="rc2")
        p2.stop()
        self.assertEqual(os.stat(key).st_mtime_ns, mtime)
        self.assertEqual(cert_file_sha256(os.path.join(d, "ringcap-ca-cert.pem")), fp)
        # an export file that went missing is written again
        os.unlink(os.path.join(d, "ringcap-ca-cert.cer"))
        p3 = self.proxy(name="rc3")
        p3.stop()
        with open(os.path.join(d, "ringcap-ca-cert.cer"), "rb") as f:
            self.assertEqual(sha256_hex(f.read()), fp)

    def test_ca_key_readable_by_others_refused(self):
        p = self.proxy()
        p.stop()
        key = os.path.join(self.confdir, "ringcap-ca.pem")
        os.chmod(key, 0o644)
        p = self.proxy(name="rc2", wait=False)
        try:
            rc = p.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.fail("ringcap started with a CA key readable by others (0644)")
        self.assertNotEqual(rc, 0)
        err = p.stderr()
        self.assertIn("ringcap-ca.pem", err)

    def test_mitmproxy_ca(self):
        """confdir holding mitmproxy-ca.pem: that CA signs the leaves."""
        mdir = os.path.join(self.tmp, "m")
        made_by = self._make_mitmproxy_ca(mdir)
        mca = os.path.join(mdir, "mitmproxy-ca-cert.pem")
        before = set(os.listdir(mdir))
        p = self.proxy(confdir=mdir)
        doc = self.echo("https://localhost:%d/echo" % self.A, p.port, cacert=mca)
        self.assertEqual(doc["path"], "/echo")
        der, _, _ = self.leaf_via_proxy(p.port, "localhost", self.A, "localhost",
                                        cafile=mca)
        self.assertIn("DNS:localhost", x509_san(der))
        st, body, r = self.get("http://mitm.it/cert/pem", p.port)
        self.assertEqual(st, 200, r.stderr)
        self.assertEqual(sha256_hex(pem_to_der(body.decode())), cert_file_sha256(mca))
        flows = p.flows()
        self.assertTrue(flows)
        made = set(os.listdir(mdir)) - before
        self.assertFalse({f for f in made if f.startswith("ringcap-ca")},
                         "ringcap wrote its own CA next to mitmproxy's (%s): %s"
                         % (made_by, made))

    def _make_mitmproxy_ca(self, mdir):
        if shutil.which("mitmdump"):
            port = run.free_port()
            home = os.path.join(self.tmp, "mhome")
            os.mkdir(home)
            env = dict(CLIENT_ENV, HOME=home)
            mp = subprocess.Popen(["mitmdump", "-q", "--listen-host", "127.0.0.1",
                                   "-p", str(port), "--set", "confdir=" + mdir],
                                  env=env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.procs.append(mp)
            run.wait_port(port, mp, timeout=30)
            mp.terminate()
            try:
                mp.wait(10)
            except subprocess.TimeoutExpired:
                mp.kill()
                mp.wait(5)
            if os.path.exists(os.path.join(mdir, "mitmproxy-ca.pem")):
                return "mitmdump"
        # openssl: mitmproxy's layout (key + cert in mitmproxy-ca.pem)
        os.makedirs(mdir, exist_ok=True)
        key, cert = os.path.join(mdir, "k.pem"), os.path.join(mdir, "c.pem")
        sh(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
            key, "-out", cert, "-days", "30", "-subj", "/CN=mitmproxy/O=mitmproxy",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        with open(os.path.join(mdir, "mitmproxy-ca.pem"), "wb") as f:
            f.write(open(key, "rb").read() + open(cert, "rb").read())
        shutil.copy(cert, os.path.join(mdir, "mitmproxy-ca-cert.pem"))
        os.unlink(key)
        os.unlink(cert)
        os.chmod(os.path.join(mdir, "mitmproxy-ca.pem"), 0o600)
        return "openssl"

    # ---- interception ------------------------------------------------------

    def test_intercept_regular(self):
        p = self.proxy()
        self.assert_get("https://localhost:%d/bytes/1000" % self.A, p.port,
                        backend.payload(1000))
        flows = p.flows()
        f = self.one_flow(flows)  # the CONNECT is not a flow
        ct, st = self.assert_https_flow(f, "localhost", self.A, "/bytes/1000",
                                        sni="localhost")
        self.assertEqual(f.get("mode"), "regular")
        run.E2E.assert_msg_body(self, f["response"], backend.payload(1000), MiB)
        self.assertEqual(st.get("cert_sha256"), cert_file_sha256(PKI.a))
        names = set((st.get("cert_names") or "").split(","))
        self.assertTrue({"test.local", "alt.test.local", "localhost",
                         "127.0.0.1"} <= names, st)
        self.assertEqual(run.header(f["request"], "Host"), "localhost:%d" % self.A)

    def test_upstream_sees_sni_and_alpn(self):
        p = self.proxy()
        doc = self.echo("https://localhost:%d/echo?q=1" % self.A, p.port)
        self.assertEqual(doc["path"], "/echo?q=1")
        self.assertEqual(doc["tls"], {"sni": "localhost", "alpn": "http/1.1",
                                      "version": doc["tls"]["version"]})
        hosts = [v for n, v in doc["headers"] if n.lower() == "host"]
        self.assertEqual(hosts, ["localhost:%d" % self.A])
        p.flows()

    def test_several_sni_names(self):
        """CONNECT 127.0.0.1:A (curl --connect-to) with SNI test.local and
        alt.test.local, and CONNECT localhost:A: each name is passed upstream,
        verified there, and on the forged leaf."""
        p = self.proxy()
        for name in ("test.local", "alt.test.local"):
            doc = self.echo("https://%s:%d/echo" % (name, self.A), p.port,
                            "--connect-to", "%s:%d:127.0.0.1:%d" % (name, self.A, self.A))
            self.assertEqual(doc["tls"]["sni"], name)
            hosts = [v for n, v in doc["headers"] if n.lower() == "host"]
            self.assertEqual(hosts, ["%s:%d" % (name, self.A)])
            der, _, _ = self.leaf_via_proxy(p.port, "127.0.0.1", self.A, name)
            self.assertIn("DNS:" + name, x509_san(der))
        doc = self.echo("https://localhost:%d/echo" % self.A, p.port)
        self.assertEqual(doc["tls"]["sni"], "localhost")
        flows = http_flows(p.flows())  # leaf_via_proxy made no request
        self.assertEqual(len(flows), 3, flows)
        self.assertEqual([f["client_tls"].get("sni") for f in flows],
                         ["test.local", "alt.test.local", "localhost"])
        for f in flows:
            self.assertEqual(f["server_tls"].get("sni"), f["client_tls"].get("sni"))
            self.assertEqual(f["request"].get("scheme"), "https")
            self.assertEqual(f["request"].get("port"), self.A)
            self.assertEqual(run.status_of(f), 200)
            self.assertEqual(f["server_tls"].get("verify"), "ok")

    def test_connect_to_ip(self):
        """No SNI: the leaf's names come from the upstream certificate."""
        p = self.proxy()
        self.assert_get("https://127.0.0.1:%d/bytes/10" % self.A, p.port,
                        backend.payload(10))
        der, _, _ = self.leaf_via_proxy(p.port, "127.0.0.1", self.A, None)
        san = x509_san(der)
        self.assertTrue({"IP:127.0.0.1", "DNS:test.local", "DNS:localhost"} <= san, san)
        flows = http_flows(p.flows())
        self.assertEqual(len(flows), 1, flows)
        f = flows[0]
        self.assert_https_flow(f, "127.0.0.1", self.A, "/bytes/10", sni=None)

    def test_san_only_server_cert(self):
        p = self.proxy()
        self.assert_get("https://localhost:%d/bytes/20" % self.B, p.port,
                        backend.payload(20))
        doc = self.echo("https://sanonly.test:%d/echo" % self.B, p.port,
                        "--connect-to", "sanonly.test:%d:127.0.0.1:%d" % (self.B, self.B))
        self.assertEqual(doc["tls"]["sni"], "sanonly.test")
        self.assert_get("https://127.0.0.1:%d/bytes/30" % self.B, p.port,
                        backend.payload(30))
        der, _, _ = self.leaf_via_proxy(p.port, "127.0.0.1", self.B, None)
        san = x509_san(der)
        self.assertTrue({"DNS:sanonly.test", "DNS:localhost", "IP:127.0.0.1"} <= san, san)
        flows = http_flows(p.flows())
        self.assertEqual(len(flows), 3, flows)
        for f in flows:
            st = f["server_tls"]
            self.assertEqual(st.get("cert_sha256"), cert_file_sha256(PKI.b))
            names = set((st.get("cert_names") or "").split(","))
            self.assertTrue({"sanonly.test", "localhost", "127.0.0.1"} <= names, st)
            self.assertEqual(st.get("verify"), "ok")

    def test_leaf_certificate(self):
        p = self.proxy()
        der, ver, alpn = self.leaf_via_proxy(p.port, "localhost", self.A, "localhost")
        self.assertEqual(alpn, "http/1.1")
        der2 = self.s_client_cert(p.port, "127.0.0.1", self.B, None)
        p.flows()
        leaf = os.path.join(self.tmp, "leaf.pem")
        with open(leaf, "w") as f:
            f.write(ssl.DER_cert_to_PEM_cert(der))
        r = sh(["openssl", "verify", "-CAfile", self.rc_ca, "-purpose", "sslserver",
                leaf], check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        now = time.time()
        nb, na = x509_dates(der)
        self.assertLessEqual(nb, now - 60, "leaf not backdated (notBefore %s)" % nb)
        self.assertGreater(na, now + DAY, "leaf expires within a day")
        self.assertLessEqual(na - nb, 397 * DAY,
                             "leaf valid %.1f days (> 397)" % ((na - nb) / DAY))
        t = x509_text(der)
        self.assertRegex(t, r"X509v3 Extended Key Usage:.*\n\s*.*TLS Web Server "
                         r"Authentication")
        self.assertRegex(t, r"X509v3 Subject Alternative Name:")
        self.assertNotRegex(t, r"CA:TRUE")
        self.assertRegex(t, r"X509v3 Authority Key Identifier:")
        self.assertRegex(t, r"X509v3 Subject Key Identifier:")
        ca_t = sh(["openssl", "x509", "-in", self.rc_ca, "-noout", "-text"]).stdout.decode()
        ca_ski = re.search(r"X509v3 Subject Key Identifier:\s*\n\s*(\S+)", ca_t)
        aki = re.search(r"X509v3 Authority Key Identifier:\s*\n\s*(?:keyid:)?(\S+)", t)
        if ca_ski:
            self.assertEqual(aki.group(1), ca_ski.group(1), "AKI is not the CA's SKI")
        self.assertIn("DNS:localhost", x509_san(der))
        # ECDSA P-256 leaf key (DESIGN.md), one key for every leaf
        self.assertRegex(t, r"Public Key Algorithm: id-ecPublicKey")
        self.assertRegex(t, r"prime256v1|P-256")
        self.assertEqual(x509_pubkey(der), x509_pubkey(der2),
                         "leaves do not share the start-up key pair")
        ser1 = re.search(r"Serial Number:\s*\n?\s*([0-9a-f:]+)", t).group(1)
        ser2 = re.search(r"Serial Number:\s*\n?\s*([0-9a-f:]+)", x509_text(der2)).group(1)
        self.assertNotEqual(ser1, ser2)
        self.assertGreaterEqual(len(ser1.replace(":", "")), 16,
                                "serial shorter than 64 bits: %s" % ser1)

    def test_no_flow_for_connection_without_request(self):
        """An intercepted connection that ends after the handshakes, before
        any request, is not a flow (the CONNECT is never one when
        intercepted, as in mitmproxy); above all it must not look like a
        passthrough tcp flow."""
        p = self.proxy()
        self.leaf_via_proxy(p.port, "localhost", self.A, "localhost")
        self.assert_get("https://localhost:%d/bytes/3" % self.A, p.port,
                        backend.payload(3))
        flows = p.flows()
        self.assertEqual([(f.get("type"), run.path_of(f)) for f in flows],
                         [("http", "/bytes/3")],
                         "intercepted connection without a request recorded:\n%s"
                         % json.dumps([f for f in flows if f.get("type") != "http"],
                                      indent=1)[:2500])

    def test_client_tls_versions_and_alpn(self):
        p = self.proxy()
        self.assert_get("https://localhost:%d/bytes/5" % self.A, p.port,
                        backend.payload(5), "--tlsv1.2", "--tls-max", "1.2")
        self.assert_get("https://localhost:%d/bytes/6" % self.A, p.port,
                        backend.payload(6), "--tlsv1.3")
        # a client offering h2 first still gets HTTP/1.1 (the engine's protocol)
        r = self.curl("--cacert", self.rc_ca, "-x", "http://127.0.0.1:%d" % p.port,
                      "--http2", "-w", "%{http_version} %{http_code}", "-o", "/dev/null",
                      "https://localhost:%d/bytes/7" % self.A)
        self.assertEqual((r.returncode, r.stdout), (0, b"1.1 200"), r.stderr)
        flows = p.flows()
        self.assertEqual(len(flows), 3, flows)
        self.assertEqual(flows[0]["client_tls"].get("version"), "TLSv1.2")
        self.assertEqual(flows[1]["client_tls"].get("version"), "TLSv1.3")
        for f in flows:
            self.assertEqual(f["client_tls"].get("alpn"), "http/1.1", f["client_tls"])
            self.assertEqual(run.status_of(f), 200)

    def test_keepalive_several_requests(self):
        p = self.proxy()
        urls = ["https://localhost:%d/bytes/%d" % (self.A, n) for n in (100, 200, 300)]
        r = self.curl("--cacert", self.rc_ca, "-x", "http://127.0.0.1:%d" % p.port,
                      "-w", "%{num_connects} %{http_code} %{size_download}\n",
                      "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null", *urls)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode().split("\n"),
                         ["1 200 100", "0 200 200", "0 200 300", ""])
        flows = p.flows()
        self.assertEqual([run.path_of(f) for f in flows],
                         ["/bytes/100", "/bytes/200", "/bytes/300"])
        self.assertEqual(len({run.peer_of(f) for f in flows}), 1,
                         "one client connection expected")
        for f, n in zip(flows, (100, 200, 300)):
            self.assert_https_flow(f, "localhost", self.A, "/bytes/%d" % n,
                                   sni="localhost")
            run.E2E.assert_msg_body(self, f["response"], backend.payload(n), MiB)

    def test_large_download_and_upload(self):
        n = 50 * MiB
        p = self.proxy()
        out = os.path.join(self.tmp, "down.bin")
        r = self.curl("--cacert", self.rc_ca, "-x", "http://127.0.0.1:%d" % p.port,
                      "-o", out, "-w", "%{http_code}",
                      "https://localhost:%d/stream/%d" % (self.A, n), timeout=300)
        self.assertEqual((r.returncode, r.stdout), (0, b"200"), r.stderr)
        self.assertEqual(os.path.getsize(out), n)
        h = hashlib.sha256()
        with open(out, "rb") as f:
            for chunk in iter(lambda: f.read(MiB), b""):
                h.update(chunk)
        self.assertEqual(h.hexdigest(), backend.payload_sha256(n),
                         "50 MiB through TLS interception arrived altered")
        up_n = 16 * MiB
        up = os.path.join(self.tmp, "up.bin")
        with open(up, "wb") as f:
            for c in backend.payload_iter(up_n):
                f.write(c)
        r = self.curl("--cacert", self.rc_ca, "-x", "http://127.0.0.1:%d" % p.port,
                      "--data-binary", "@" + up, "-H", "Content-Type: application/x",
                      "https://localhost:%d/sink" % self.A, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"length": up_n,
                                                "sha256": backend.payload_sha256(up_n)})
        flows = p.flows()
        self.assertEqual(len(flows), 2, [run.path_of(f) for f in flows])
        self.assertEqual(flows[0]["response"].get("content_length"), n)
        self.assertEqual(flows[1]["request"].get("content_length"), up_n)
        for f in flows:
            self.assertFalse(run.error_of(f), f.get("error"))

    def tls_via_proxy(self, proxy, host, port, sni):
        """An intercepted TLS connection through |proxy| (CONNECT host:port,
        SNI |sni|, trusting ringcap's CA): (ssl socket, backend.Conn)."""
        s = socket.create_connection(("127.0.0.1", proxy), timeout=15)
        s.sendall(("CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n"
                   % (host, port, host, port)).encode())
        c = backend.Conn(s)
        line = c.readline()
        self.assertRegex(line or b"", rb"^HTTP/1\.[01] 200", line)
        while c.readline() not in (b"\r\n", b"\n", None):
            pass
        ctx = ssl.create_default_context(cafile=self.rc_ca)
        t = ctx.wrap_socket(s, server_hostname=sni)
        t.settimeout(15)
        return t, backend.Conn(t)

    def test_upstream_closes_between_requests(self):
        """Keep-alive client, the upstream closes after a response: the next
        request on the same intercepted connection goes upstream over TLS
        again, with the client's SNI, verified (plain HTTP survives the same
        in run.py's upstream_closes_after_response)."""
        p = self.proxy()
        t, c = self.tls_via_proxy(p.port, "127.0.0.1", self.A, "test.local")
        host = "Host: test.local:%d\r\n" % self.A
        t.sendall(("GET /then-close/10 HTTP/1.1\r\n%s\r\n" % host).encode())
        r1 = run.read_response(c)
        self.assertEqual((r1.status, r1.body), (200, backend.payload(10)))
        time.sleep(0.5)  # the upstream has closed by now
        t.sendall(("GET /echo HTTP/1.1\r\n%s\r\n" % host).encode())
        r2 = run.read_response(c)
        self.assertIsNotNone(r2, "client connection closed instead of a response")
        self.assertEqual(r2.status, 200, "2nd request after the upstream closed "
                         "(idle): %r" % r2.body[:300])
        self.assertEqual(json.loads(r2.body).get("tls", {}).get("sni"), "test.local")
        t.close()
        # the same with curl, back to back (as run.py's plain HTTP test)
        url = "https://test.local:%d" % self.A
        r = self.curl("--cacert", self.rc_ca, "-x", "http://127.0.0.1:%d" % p.port,
                      "--connect-to", "test.local:%d:127.0.0.1:%d" % (self.A, self.A),
                      "-w", "%{http_code} %{size_download}\n",
                      "-o", "/dev/null", url + "/then-close/20",
                      "-o", "/dev/null", url + "/bytes/30")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode().split("\n"), ["200 20", "200 30", ""])
        flows = p.flows()
        self.assertEqual([run.path_of(f) for f in flows],
                         ["/then-close/10", "/echo", "/then-close/20", "/bytes/30"])
        for f in flows:
            self.assertEqual((f.get("server_tls") or {}).get("verify"), "ok", f)
            self.assertEqual((f.get("server_tls") or {}).get("sni"), "test.local", f)

    def test_pool_keeps_tls_and_plain_apart(self):
        """After an intercepted connection to localhost:A ends (its upstream
        TLS connection may be pooled), a plain http:// request to the same
        host:port must not ride that TLS connection: backend a speaks only
        TLS, so the plain request fails (502), as it does on a fresh proxy."""
        p = self.proxy(sets=["shards=1"])
        self.assert_get("https://localhost:%d/bytes/1" % self.A, p.port,
                        backend.payload(1))
        time.sleep(0.2)
        st, body, r = self.get("http://localhost:%d/echo" % self.A, p.port)
        self.assertNotEqual(st, 200, "plain http:// request answered over a pooled "
                            "TLS upstream connection: %r" % body[:400])
        p.flows()

    def test_read_text_https(self):
        p = self.proxy()
        self.assert_get("https://localhost:%d/bytes/612" % self.A, p.port,
                        backend.payload(612))
        p.stop()
        r = subprocess.run([ARGS.bin, "read", p.log], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.decode().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(lines[0], r": GET https://localhost:%d/bytes/612 HTTP/1\.1 "
                         r"<< 200 OK application/octet-stream 612b" % self.A)

    # ---- upstream certificate verification ---------------------------------

    def _bad_upstream(self, url, extra, verify_re, insecure_ok=True, trust=None,
                      port=None):
        p = self.proxy(trust=trust)
        st, body, r = self.get(url, p.port, *extra)
        self.assertEqual(st, 502, "bad upstream certificate: curl rc=%d %s %r" % (
            r.returncode, r.stderr.decode(errors="replace"), body[:300]))
        text = body.decode("utf-8", "replace")
        self.assertTrue(all(32 <= ord(ch) < 127 or ch in "\r\n\t" for ch in text),
                        "502 body not readable text: %r" % body[:300])
        self.assertRegex(text, r"(?i)certificate")
        self.assertRegex(text, verify_re)
        # still serving
        self.assert_get("http://127.0.0.1:%d/bytes/10" % self.PLAIN, p.port,
                        backend.payload(10))
        flows = p.flows()
        self.assertEqual(len(flows), 2, flows)
        e = flows[0]
        self.assert_error_flow(e, "ENG_UPSTREAM_CERT", r"(?i)certificate")
        self.assertRegex(run.error_of(e)["msg"], verify_re)
        self.assertFalse(run.error_of(flows[1]))
        if e.get("server_tls"):
            self.assertNotEqual(e["server_tls"].get("verify"), "ok")
        # --set ssl_insecure=true accepts it
        p2 = self.proxy(sets=["ssl_insecure=true"], trust=trust, name="insecure")
        body = self.assert_get(url.replace("/echo", "/bytes/33"), p2.port, None, *extra)
        self.assertEqual(body, backend.payload(33))
        flows = p2.flows()
        f = self.one_flow(flows)
        self.assertFalse(run.error_of(f), f)
        self.assertEqual(run.status_of(f), 200)
        self.assertNotEqual((f.get("server_tls") or {}).get("verify"), "ok",
                            "an unverifiable certificate recorded as verify=ok")

    def test_upstream_untrusted_cert(self):
        """SSL_CERT_FILE is another CA: the backend's certificate is untrusted."""
        self._bad_upstream("https://localhost:%d/echo" % self.A, (),
                           r"(?i)verify|issuer|unable to get", trust=PKI.other)

    def test_upstream_cert_from_unknown_ca(self):
        """The backend's certificate chains to a CA nobody trusts."""
        self._bad_upstream("https://localhost:%d/echo" % self.U, (),
                           r"(?i)verify|issuer|unable to get")

    def test_upstream_name_mismatch(self):
        """A trusted certificate that does not name the host asked for."""
        self._bad_upstream(
            "https://nomatch.test:%d/echo" % self.A,
            ("--connect-to", "nomatch.test:%d:127.0.0.1:%d" % (self.A, self.A)),
            r"(?i)hostname|mismatch|name")

    def test_upstream_not_tls(self):
        """CONNECT to a plain HTTP server, client speaks TLS: 502, error flow."""
        p = self.proxy()
        st, body, r = self.get("https://localhost:%d/x" % self.PLAIN, p.port)
        self.assertEqual(st, 502, "TLS to a plain HTTP upstream: curl rc=%d %s %r" % (
            r.returncode, r.stderr.decode(errors="replace"), body[:300]))
        self.assertRegex(body.decode("utf-8", "replace"), r"(?i)TLS")
        self.assert_get("http://127.0.0.1:%d/bytes/10" % self.PLAIN, p.port,
                        backend.payload(10))
        flows = p.flows()
        self.assertEqual(len(flows), 2, flows)
        self.assertIn(run.error_of(flows[0]).get("name"),
                      ("ENG_UPSTREAM_TLS", "ENG_UPSTREAM_IO"), flows[0])
        self.assertFalse(run.error_of(flows[1]))

    # ---- the client side ---------------------------------------------------

    def test_client_rejects_our_cert(self):
        p = self.proxy()
        # curl with only the backend's CA: ringcap's leaf is not trusted
        st, body, r = self.get("https://localhost:%d/bytes/10" % self.A, p.port,
                               cacert=PKI.ca)
        self.assertNotEqual(r.returncode, 0, "curl accepted ringcap's certificate "
                            "without trusting its CA")
        self.assertIn(r.returncode, (35, 51, 58, 60), r.stderr)
        # the proxy keeps serving, TLS and plain
        self.assert_get("https://localhost:%d/bytes/11" % self.A, p.port,
                        backend.payload(11))
        self.assert_get("http://127.0.0.1:%d/bytes/12" % self.PLAIN, p.port,
                        backend.payload(12))
        flows = p.flows()
        errs = [f for f in flows if run.error_of(f)]
        oks = [f for f in flows if not run.error_of(f)]
        self.assertEqual([run.path_of(f) for f in oks], ["/bytes/11", "/bytes/12"])
        self.assertGreaterEqual(len(errs), 1, flows)
        e = errs[0]
        self.assert_error_flow(e, "ENG_CLIENT_TLS",
                               r"^client TLS handshake failed \(does the client "
                               r"trust the ringcap CA\?\)")
        host = (e.get("request") or {}).get("host") or run.tcp_of(e).get("host")
        port = (e.get("request") or {}).get("port") or run.tcp_of(e).get("port")
        self.assertEqual((host, port), ("localhost", self.A), e)
        self.assertEqual((e.get("client_tls") or {}).get("sni"), "localhost", e)

    def test_client_gone_during_handshakes(self):
        """Clients that vanish at each step of the setup do not hurt."""
        p = self.proxy()
        hello = None
        for step in range(4):
            s = socket.create_connection(("127.0.0.1", p.port), timeout=10)
            s.settimeout(10)
            s.sendall(b"CONNECT localhost:%d HTTP/1.1\r\nHost: x\r\n\r\n" % self.A)
            if step >= 1:
                s.recv(4096)
            if step >= 2:
                ctx = ssl.create_default_context(cafile=self.rc_ca)
                ino, outo = ssl.MemoryBIO(), ssl.MemoryBIO()
                obj = ctx.wrap_bio(ino, outo, server_hostname="localhost")
                try:
                    obj.do_handshake()
                except ssl.SSLWantReadError:
                    pass
                hello = outo.read()
                s.sendall(hello if step == 3 else hello[:len(hello) // 2])
                if step == 3:
                    time.sleep(0.3)  # upstream handshake under way or done
            s.close()
        for i in range(3):
            self.assert_get("https://localhost:%d/bytes/%d" % (self.A, 40 + i), p.port,
                            backend.payload(40 + i))
        flows = p.flows()
        ok = [run.path_of(f) for f in flows if not run.error_of(f) and run.path_of(f)]
        self.assertEqual(ok, ["/bytes/40", "/bytes/41", "/bytes/42"])

    # ---- passthrough -------------------------------------------------------

    def _passthrough_ok(self, p, host, port):
        """A client trusting only the backend's CA gets through and sees the
        backend's own certificate."""
        body = self.assert_get("https://%s:%d/bytes/100" % (host, port), p.port,
                               backend.payload(100), cacert=PKI.ca)
        der = self.s_client_cert(p.port, host, port, host)
        self.assertEqual(sha256_hex(der), cert_file_sha256(PKI.a),
                         "passthrough: the client did not see the server's certificate")
        return body

    def _intercepted_ok(self, p, host, port):
        der, _, _ = self.leaf_via_proxy(p.port, host, port,
                                        None if host[0].isdigit() else host)
        self.assertNotEqual(sha256_hex(der), cert_file_sha256(PKI.a))
        self.assert_get("https://%s:%d/bytes/50" % (host, port), p.port,
                        backend.payload(50))

    def _check_passthrough_flows(self, flows, host, port):
        tcp = [f for f in flows if f.get("type") == "tcp"
               and run.tcp_of(f).get("host") == host]
        http = [f for f in flows if f.get("type") == "http"]
        self.assertEqual(len(tcp), 2, flows)   # curl + s_client
        for f in tcp:
            t = run.tcp_of(f)
            self.assertEqual((t.get("host"), t.get("port")), (host, port), f)
            self.assertEqual((f.get("client_tls") or {}).get("sni"), host, f)
            self.assertFalse(f.get("server_tls"), "passthrough flow with server_tls")
            self.assertGreater(t.get("bytes_down") or 0, 100)
        self.assertFalse([f for f in http if f["request"]["host"] == host
                          and f["request"]["port"] == port], http)
        self.assertTrue(http, "the other host was not intercepted")
        for f in http:
            self.assertEqual(f["request"].get("scheme"), "https")

    def test_ignore_hosts(self):
        p = self.proxy(sets=[r"ignore_hosts=^localhost:%d$" % self.A])
        self._passthrough_ok(p, "localhost", self.A)
        self._intercepted_ok(p, "127.0.0.1", self.A)
        self._check_passthrough_flows(p.flows(), "localhost", self.A)

    def test_ignore_hosts_other_port_intercepted(self):
        p = self.proxy(sets=[r"ignore_hosts=^localhost:1$"])
        self._intercepted_ok(p, "localhost", self.A)
        flows = p.flows()
        self.assertEqual([f.get("type") for f in http_flows(flows)], ["http"], flows)
        self.assertEqual(http_flows(flows)[0]["client_tls"].get("sni"), "localhost")

    def test_allow_hosts(self):
        p = self.proxy(sets=[r"allow_hosts=^127\.0\.0\.1:"])
        self._passthrough_ok(p, "localhost", self.A)
        self._intercepted_ok(p, "127.0.0.1", self.A)
        self._check_passthrough_flows(p.flows(), "localhost", self.A)

    def test_bad_host_regex_refused(self):
        r = subprocess.run([ARGS.bin, "-p", str(run.free_port()), "--set",
                            "confdir=" + self.confdir, "--set", "ignore_hosts=(["],
                           capture_output=True, timeout=15, env=dict(CLIENT_ENV, HOME=self.home))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"ignore_hosts", r.stderr)

    # ---- upstream mode -----------------------------------------------------

    def chain(self, *sets, next_sets=("tls_intercept=false",)):
        """ringcap A in upstream mode in front of ringcap B (regular mode,
        by default without interception: a plain CONNECT proxy). (A, B)."""
        b = self.proxy(sets=list(next_sets), name="next")
        a = self.proxy(modes=["upstream:http://127.0.0.1:%d" % b.port],
                       sets=list(sets), name="first")
        return a, b

    def test_upstream_mode_intercepts_connect(self):
        """CONNECT in upstream mode goes to the next proxy as a CONNECT; once
        it says 200, the connection is intercepted as in regular mode: the
        requests inside are https flows sent through the tunnel in origin
        form, with the client's SNI, the server certificate verified."""
        a, b = self.chain()
        self.assert_get("https://localhost:%d/bytes/1000" % self.A, a.port,
                        backend.payload(1000))
        doc = self.echo("https://localhost:%d/echo?q=1" % self.A, a.port)
        self.assertEqual(doc["path"], "/echo?q=1")  # origin form, not absolute
        self.assertEqual(doc["tls"]["sni"], "localhost")
        hosts = [v for n, v in doc["headers"] if n.lower() == "host"]
        self.assertEqual(hosts, ["localhost:%d" % self.A])
        # keep-alive: two requests on one client connection, one tunnel
        url = "https://localhost:%d" % self.A
        r = self.curl("--cacert", self.rc_ca, "-x", "http://127.0.0.1:%d" % a.port,
                      "-w", "%{http_code} %{size_download}\n",
                      "-o", "/dev/null", url + "/bytes/20",
                      "-o", "/dev/null", url + "/bytes/30")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode().split("\n"), ["200 20", "200 30", ""])
        fa, fb = a.flows(), b.flows()
        self.assertEqual([run.path_of(f) for f in fa],
                         ["/bytes/1000", "/echo?q=1", "/bytes/20", "/bytes/30"], fa)
        for f in fa:
            self.assertEqual(f.get("mode"), "upstream")
            ct, st = self.assert_https_flow(f, "localhost", self.A, run.path_of(f),
                                            sni="localhost")
            self.assertEqual(st.get("cert_sha256"), cert_file_sha256(PKI.a))
        run.E2E.assert_msg_body(self, fa[0]["response"], backend.payload(1000), MiB)
        # the next proxy relayed three CONNECT tunnels, TLS it could not read
        self.assertEqual([f.get("type") for f in fb], ["tcp"] * 3, fb)
        for f in fb:
            self.assertEqual((run.tcp_of(f)["host"], run.tcp_of(f)["port"]),
                             ("localhost", self.A))
            self.assertFalse(run.error_of(f), f)

    def test_upstream_mode_upload_and_redial(self):
        """A large upload arrives intact through the tunnel; the server closes
        between two requests of one intercepted connection: the next one goes
        through the next proxy again (a new CONNECT), not straight to the
        server."""
        a, b = self.chain()
        up_n = 3 * MiB + 7
        data = os.path.join(self.tmp, "up.bin")
        with open(data, "wb") as f:
            f.write(backend.payload(up_n))
        r = self.curl("--cacert", self.rc_ca, "-x", "http://127.0.0.1:%d" % a.port,
                      "--data-binary", "@" + data,
                      "https://localhost:%d/sink" % self.A, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"length": up_n,
                                                "sha256": backend.payload_sha256(up_n)})
        t, c = self.tls_via_proxy(a.port, "localhost", self.A, "localhost")
        host = "Host: localhost:%d\r\n" % self.A
        t.sendall(("GET /then-close/10 HTTP/1.1\r\n%s\r\n" % host).encode())
        r1 = run.read_response(c)
        self.assertEqual((r1.status, r1.body), (200, backend.payload(10)))
        time.sleep(0.5)  # the server, and so the tunnel, has closed by now
        t.sendall(("GET /echo HTTP/1.1\r\n%s\r\n" % host).encode())
        r2 = run.read_response(c)
        self.assertIsNotNone(r2, "client connection closed instead of a response")
        self.assertEqual(r2.status, 200, r2.body[:300])
        self.assertEqual(json.loads(r2.body).get("tls", {}).get("sni"), "localhost")
        t.close()
        fa, fb = a.flows(), b.flows()
        self.assertEqual([run.path_of(f) for f in fa],
                         ["/sink", "/then-close/10", "/echo"], fa)
        self.assertEqual(fa[0]["request"].get("content_length"), up_n)
        for f in fa:
            self.assertFalse(run.error_of(f), f)
        self.assertEqual([f.get("type") for f in fb], ["tcp"] * 3, fb)

    def test_upstream_mode_connect_refused(self):
        """The next proxy refuses the CONNECT (502: nothing listens there;
        403 from a proxy that says no): the client gets a 502 that says so,
        the log an error flow for the CONNECT."""
        dead = run.free_port()
        a, b = self.chain()
        st, body, r = self.get("https://localhost:%d/x" % dead, a.port)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"502", r.stderr, r.stderr)
        # a raw CONNECT shows the body of our 502
        s = socket.create_connection(("127.0.0.1", a.port), timeout=15)
        s.sendall(b"CONNECT localhost:%d HTTP/1.1\r\nHost: localhost:%d\r\n\r\n"
                  % (dead, dead))
        resp = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            resp += d
        s.close()
        self.assertRegex(resp, rb"^HTTP/1\.1 502")
        self.assertIn(b"answered CONNECT localhost:%d with 502" % dead, resp)
        # a proxy that answers 403 to every CONNECT
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        heads = []

        def refuse():
            while True:
                try:
                    cs, _ = srv.accept()
                except OSError:
                    return
                with cs:
                    h = b""
                    while b"\r\n\r\n" not in h:
                        d = cs.recv(4096)
                        if not d:
                            break
                        h += d
                    heads.append(h)
                    cs.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n"
                               b"Connection: close\r\n\r\nnope")
        th = threading.Thread(target=refuse, daemon=True)
        th.start()
        c = self.proxy(modes=["upstream:http://127.0.0.1:%d" % srv.getsockname()[1]],
                       name="third")
        st, body, r = self.get("https://localhost:%d/x" % self.A, c.port,
                               "--proxy-user", "u:p")
        self.assertNotEqual(r.returncode, 0)
        srv.close()
        self.assertEqual(len(heads), 1, heads)
        self.assertRegex(heads[0], rb"^CONNECT localhost:%d HTTP/1\.1\r\n" % self.A)
        self.assertIn(b"\r\nProxy-Authorization: Basic dTpw\r\n", heads[0])
        fa, fc = a.flows(), c.flows()
        self.assertEqual(len(fa), 2, fa)
        for f in fa:
            self.assertEqual(f.get("type"), "tcp", f)
            self.assertEqual(run.tcp_of(f).get("port"), dead)
            self.assertEqual(f.get("term"), "upstream_error")
            self.assert_error_flow(f, "ENG_UPSTREAM_REFUSED",
                                   r"upstream proxy 127\.0\.0\.1:%d answered CONNECT "
                                   r"localhost:%d with 502" % (b.port, dead))
        f = self.one_flow(fc, "tcp")
        self.assert_error_flow(f, "ENG_UPSTREAM_REFUSED", r"with 403 Forbidden")

    def test_upstream_mode_ignore_hosts(self):
        """ignore_hosts in upstream mode: the TLS passes through the next
        proxy's tunnel untouched; the client sees the server's certificate."""
        a, b = self.chain(r"ignore_hosts=^localhost:%d$" % self.A)
        self._passthrough_ok(a, "localhost", self.A)
        self._intercepted_ok(a, "127.0.0.1", self.A)
        self._check_passthrough_flows(a.flows(), "localhost", self.A)
        self.assertTrue(all(f.get("type") == "tcp" for f in b.flows()))

    def test_upstream_mode_plain_http(self):
        """Plain http:// in upstream mode still goes to the next proxy in
        absolute form (and its connection is pooled, never mixed with a
        tunnel's); plain HTTP inside a CONNECT (curl -p) is parsed into a
        flow and sent through the tunnel in origin form."""
        a, b = self.chain("shards=1", next_sets=("shards=1", "tls_intercept=false"))
        plain = "http://127.0.0.1:%d" % self.PLAIN
        self.assert_get(plain + "/bytes/10", a.port, backend.payload(10))
        self.assert_get("https://localhost:%d/bytes/11" % self.A, a.port,
                        backend.payload(11))
        time.sleep(0.2)
        # had the tunnel gone to the pool as a connection to the next proxy,
        # this request would reach the TLS server and fail
        self.assert_get(plain + "/bytes/12", a.port, backend.payload(12))
        self.assert_get(plain + "/bytes/13", a.port, backend.payload(13), "-p")
        fa, fb = a.flows(), b.flows()
        self.assertEqual([(f.get("type"), run.path_of(f)) for f in fa],
                         [("http", "/bytes/10"), ("http", "/bytes/11"),
                          ("http", "/bytes/12"), ("http", "/bytes/13")], fa)
        for f in fa:
            self.assertEqual(f.get("mode"), "upstream")
            self.assertFalse(run.error_of(f), f)
        self.assertEqual([f["request"].get("scheme") for f in fa],
                         ["http", "https", "http", "http"])
        self.assertEqual((fa[3]["request"]["host"], fa[3]["request"]["port"]),
                         ("127.0.0.1", self.PLAIN))
        # B: the plain requests, and two tunnels (https, curl -p)
        self.assertEqual([run.path_of(f) for f in http_flows(fb)],
                         ["/bytes/10", "/bytes/12"], fb)
        self.assertEqual(sorted(f.get("type") for f in fb),
                         ["http", "http", "tcp", "tcp"], fb)

    # ---- reverse mode ------------------------------------------------------

    def test_reverse_https(self):
        P = run.free_port()
        p = self.proxy(modes=["reverse:https://localhost:%d" % self.A], port=P)
        doc = self.echo("http://127.0.0.1:%d/echo?plain=1" % P, None)
        self.assertEqual(doc["tls"]["sni"], "localhost")
        self.assertEqual(doc["path"], "/echo?plain=1")
        doc = self.echo("https://localhost:%d/echo?tls=1" % P, None)
        self.assertEqual(doc["tls"]["sni"], "localhost")
        self.assertEqual(doc["path"], "/echo?tls=1")
        # the client's TLS leaf for localhost, signed by ringcap's CA
        r = self.curl("--noproxy", "*", "--cacert", self.rc_ca, "-o", "/dev/null",
                      "-w", "%{http_code}", "https://localhost:%d/bytes/3" % P)
        self.assertEqual((r.returncode, r.stdout), (0, b"200"), r.stderr)
        flows = p.flows()
        self.assertEqual([run.path_of(f) for f in flows],
                         ["/echo?plain=1", "/echo?tls=1", "/bytes/3"])
        for f in flows:
            self.assertEqual(f.get("mode"), "reverse")
            self.assertEqual((f["request"].get("host"), f["request"].get("port")),
                             ("localhost", self.A))
            self.assertEqual(run.status_of(f), 200)
            self.assertEqual((f.get("server_tls") or {}).get("verify"), "ok", f)
        self.assertFalse(flows[0].get("client_tls"), "plain client has client_tls")
        self.assertEqual((flows[1].get("client_tls") or {}).get("sni"), "localhost")

    # ---- mitm.it -----------------------------------------------------------

    def test_mitm_it(self):
        p = self.proxy()
        fp = cert_file_sha256(self.rc_ca)
        st, pem, r = self.get("http://mitm.it/cert/pem", p.port)
        self.assertEqual(st, 200, r.stderr)
        der = sh(["openssl", "x509", "-outform", "DER"], input=pem).stdout
        self.assertEqual(sha256_hex(der), fp)
        st, cer, r = self.get("http://mitm.it/cert/cer", p.port)
        self.assertEqual(st, 200, r.stderr)
        der = sh(["openssl", "x509", "-inform", "DER", "-outform", "DER"],
                 input=cer).stdout
        self.assertEqual(sha256_hex(der), fp)
        st, p12, r = self.get("http://mitm.it/cert/p12", p.port)
        self.assertEqual(st, 200, r.stderr)
        p12f = os.path.join(self.tmp, "x.p12")
        with open(p12f, "wb") as f:
            f.write(p12)
        out = sh(["openssl", "pkcs12", "-in", p12f, "-nokeys", "-passin", "pass:"]).stdout
        self.assertEqual(sha256_hex(pem_to_der(out.decode())), fp)
        out = sh(["openssl", "pkcs12", "-in", p12f, "-nocerts", "-nodes", "-passin",
                  "pass:"], check=False).stdout
        self.assertNotIn(b"PRIVATE KEY", out, "mitm.it serves the CA key")
        for blob in (pem, cer, p12):
            self.assertNotIn(b"PRIVATE KEY", blob)
        st, page, r = self.get("http://mitm.it/", p.port)
        self.assertEqual(st, 200, r.stderr)
        html = page.decode("utf-8", "replace")
        self.assertRegex(html, r"(?i)<html")
        for link in ("/cert/pem", "/cert/cer", "/cert/p12"):
            self.assertIn('href="%s"' % link, html)
        r = self.curl("-x", "http://127.0.0.1:%d" % p.port, "-D", "-", "-o", "/dev/null",
                      "http://mitm.it/cert/pem")
        self.assertRegex(r.stdout.decode(), r"(?i)content-type: application/x-x509-ca-cert")
        p.flows()

    # ---- the leaf cache ----------------------------------------------------

    def test_leaf_cache_hit_second_connection(self):
        p = self.proxy(quiet=False)
        for i in range(2):
            self.assert_get("https://localhost:%d/bytes/%d" % (self.A, 10 + i), p.port,
                            backend.payload(10 + i))
        c, err = self.stop_summary(p)
        self.assertEqual(c["signed"], 1, err[-1500:])
        self.assertEqual(c["misses"], 1, err[-1500:])
        self.assertGreaterEqual(c["hits"], 1, err[-1500:])
        self.assertEqual(c["intercepted"], 2, err[-1500:])
        self.assertEqual(c["client_failed"], 0, err[-1500:])
        self.assertGreaterEqual(c["userspace"] + c["ktls"], 2, err[-1500:])

    def test_leaf_cache_same_names_any_sni(self):
        """The cache key is the set of names: SNI localhost, SNI test.local and
        no SNI all map to the names of backend a's certificate."""
        p = self.proxy(quiet=False)
        self.assert_get("https://localhost:%d/bytes/1" % self.A, p.port,
                        backend.payload(1))
        self.assert_get("https://test.local:%d/bytes/2" % self.A, p.port,
                        backend.payload(2), "--connect-to",
                        "test.local:%d:127.0.0.1:%d" % (self.A, self.A))
        self.assert_get("https://127.0.0.1:%d/bytes/3" % self.A, p.port,
                        backend.payload(3))
        c, err = self.stop_summary(p)
        self.assertEqual(c["signed"], 1, err[-1500:])
        self.assertGreaterEqual(c["hits"], 2, err[-1500:])

    def test_leaf_cache_concurrent_misses_sign_once(self):
        p = self.proxy(sets=["shards=2"], quiet=False)
        results = []

        def one(i):
            results.append(self.get("https://localhost:%d/bytes/%d" % (self.A, i),
                                    p.port))
        ts = [threading.Thread(target=one, args=(100 + i,)) for i in range(12)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual(sorted(st for st, _, _ in results), [200] * 12,
                         [r.stderr for _, _, r in results])
        c, err = self.stop_summary(p)
        self.assertEqual(c["signed"], 1, "12 concurrent misses for one host: " + err[-1500:])
        self.assertEqual(c["intercepted"], 12)

    def test_leaf_cache_persists_across_restart(self):
        p = self.proxy(quiet=False)
        self.assert_get("https://localhost:%d/bytes/1" % self.A, p.port,
                        backend.payload(1))
        c, err = self.stop_summary(p)
        self.assertEqual(c["signed"], 1, err[-1500:])
        p = self.proxy(quiet=False, name="rc2")
        self.assert_get("https://localhost:%d/bytes/2" % self.A, p.port,
                        backend.payload(2))
        c, err = self.stop_summary(p)
        self.assertEqual(c["signed"], 0, "restart not warm: " + err[-1500:])
        self.assertGreaterEqual(c["hits"], 1, err[-1500:])

    def test_cert_warm(self):
        warm = os.path.join(self.tmp, "warm.txt")
        with open(warm, "w") as f:
            f.write("# backend a's names\ntest.local alt.test.local,localhost 127.0.0.1\n")
        p = self.proxy(sets=["cert_warm=" + warm], quiet=False)
        self.assert_get("https://localhost:%d/bytes/1" % self.A, p.port,
                        backend.payload(1))
        c, err = self.stop_summary(p)
        # one signature, at start-up (the warm-up's lookup counts as the
        # miss); the connection is served from the cache
        self.assertEqual(c["signed"], 1, err[-1500:])
        self.assertGreaterEqual(c["hits"], 1, "pre-signed leaf missed: " + err[-1500:])

    def test_summary_counts_refused_clients(self):
        p = self.proxy(quiet=False)
        st, body, r = self.get("https://localhost:%d/bytes/1" % self.A, p.port,
                               cacert=PKI.ca)
        self.assertNotEqual(r.returncode, 0)
        self.assert_get("https://localhost:%d/bytes/2" % self.A, p.port,
                        backend.payload(2))
        c, err = self.stop_summary(p)
        self.assertEqual((c["client_failed"], c["intercepted"]), (1, 1), err[-1500:])
        self.assertIn("client TLS handshake failed (does the client trust the "
                      "ringcap CA?)", err)

    # ---- shutdown ----------------------------------------------------------

    def test_sigterm_with_idle_tls_connection(self):
        p = self.proxy()
        s = socket.create_connection(("127.0.0.1", p.port), timeout=10)
        s.sendall(b"CONNECT localhost:%d HTTP/1.1\r\nHost: x\r\n\r\n" % self.A)
        s.recv(4096)
        ctx = ssl.create_default_context(cafile=self.rc_ca)
        t = ctx.wrap_socket(s, server_hostname="localhost")
        t.sendall(b"GET /bytes/5 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        r = run.read_response(backend.Conn(t))
        self.assertEqual((r.status, r.body), (200, backend.payload(5)))
        t0 = time.monotonic()
        flows = p.flows()  # SIGTERM, exit 0 within 10 s
        self.assertLess(time.monotonic() - t0, 10)
        t.close()
        self.assertEqual([run.path_of(f) for f in flows], ["/bytes/5"])


def main():
    global ARGS, PKI
    ap = argparse.ArgumentParser(description="ringcap TLS end-to-end tests")
    ap.add_argument("--bin", default=os.path.join(HERE, "../../build/cli/ringcap"))
    ap.add_argument("-k", action="append", default=[], help="test name pattern")
    ap.add_argument("-v", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep temp dirs")
    ARGS = ap.parse_args()
    ARGS.bin = os.path.abspath(ARGS.bin)
    if not os.access(ARGS.bin, os.X_OK):
        sys.exit("no ringcap binary at %s (--bin)" % ARGS.bin)
    for tool in ("curl", "openssl"):
        if not shutil.which(tool):
            sys.exit("%s is needed" % tool)
    # run.py's helpers (Proxy, read_json) read its ARGS
    run.ARGS = argparse.Namespace(bin=ARGS.bin, peer="ringcap", keep=ARGS.keep,
                                  v=ARGS.v, k=ARGS.k, large=None, large_up=None)
    pki_dir = tempfile.mkdtemp(prefix="rc-tls-pki-")
    res = None
    try:
        PKI = Pki(pki_dir)
        BACKENDS["a"] = start_backend("--tls-cert", PKI.a, "--tls-key", PKI.a_key)
        BACKENDS["b"] = start_backend("--tls-cert", PKI.b, "--tls-key", PKI.b_key)
        BACKENDS["u"] = start_backend("--tls-cert", PKI.u, "--tls-key", PKI.u_key)
        BACKENDS["plain"] = start_backend()
        loader = unittest.TestLoader()
        if ARGS.k:
            loader.testNamePatterns = ["*%s*" % k if "*" not in k else k for k in ARGS.k]
        suite = loader.loadTestsFromTestCase(TLS)
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
    sys.exit(0 if res is not None and res.wasSuccessful() and res.testsRun > 0 else 1)


if __name__ == "__main__":
    main()
