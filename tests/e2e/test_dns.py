#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# End-to-end tests of the DNS modes: `reverse:dns://127.0.0.1:P` in front of
# a loopback dnsmasq, and `dns` (the system resolver) run inside a network
# namespace this test builds, whose /etc/hosts and /etc/resolv.conf
# (/etc/netns/NAME/, bind-mounted by `ip netns exec`) point at a dnsmasq in
# the same namespace. Clients: dig, and raw Python sockets for the exact
# bytes (query ids, truncation, malformed messages, TCP framing). Every
# query is checked against the flow log (`ringcap read --json` and the text
# lines of `ringcap read`).
#
#   python3 tests/e2e/test_dns.py --bin BUILD/cli/ringcap [-k pattern] [-v] [--keep]
#
# Exit 77 (with the reason) only when dig or dnsmasq is missing
# (scripts/deps installs bind9-dnsutils and dnsmasq-base). Without root the
# namespace is not made: dns mode is then checked with `localhost` from the
# real /etc/hosts, and the forwarded-type checks are skipped (reason
# printed). Every process, namespace and /etc/netns/NAME made here is
# removed at the end, also on failure.
import argparse
import base64
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

ARGS = None
TEST_TIMEOUT = 120          # seconds; every test is bounded by SIGALRM
ALL_PROCS = []              # every Popen we started (killed at exit)
ALL_NETNS = []              # every netns we made (deleted at exit)
ENV = {k: v for k, v in os.environ.items()
       if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}

# rcodes and types
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
RCODE_NAME = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN",
              4: "NOTIMP", 5: "REFUSED"}
T_A, T_CNAME, T_PTR, T_TXT, T_AAAA, T_OPT = 1, 5, 12, 16, 28, 41
TYPE_NAME = {1: "A", 5: "CNAME", 12: "PTR", 16: "TXT", 28: "AAAA", 41: "OPT"}

# What the upstream dnsmasq knows (both the loopback and the namespace one).
BIG_TXT = ["record-%02d-%s" % (i, "x" * 60) for i in range(25)]   # ~2.1 KB answer
SMALL_TXT = "hello from dnsmasq"
# Inside the namespace: its /etc/hosts.
NS_HOST, NS_HOST_V4, NS_HOST_V6 = "host1.ns.test", "127.0.0.42", "fd00:42::42"
NS_MANY = "many.ns.test"
NS_MANY_ADDRS = ["10.9.%d.%d" % (i // 200, i % 200 + 1) for i in range(32)]  # > 512 bytes


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def sanitized():
    return os.environ.get("RINGCAP_SANITIZED", "") not in ("", "0")


def free_port():
    """A port free for both TCP and UDP on 127.0.0.1."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            t.bind(("127.0.0.1", 0))
            p = t.getsockname()[1]
            try:
                u.bind(("127.0.0.1", p))
            except OSError:
                continue
            return p
        finally:
            t.close()
            u.close()
    raise AssertionError("no free port")


def proc_table_has(pid, proto, port, state=None):
    """Is there a |proto| (tcp/udp) socket bound to |port| in the network
    namespace of process |pid|? (/proc/PID/net/* is that namespace's.)"""
    for name in (proto, proto + "6"):
        try:
            with open("/proc/%d/net/%s" % (pid, name)) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local, st = parts[1], parts[3]
                    if int(local.rsplit(":", 1)[1], 16) == port and \
                            (state is None or st == state):
                        return True
        except (OSError, StopIteration, ValueError, IndexError):
            pass
    return False


def wait_bound(proc, port, tcp=True, udp=True, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        if (not tcp or proc_table_has(proc.pid, "tcp", port, "0A")) and \
                (not udp or proc_table_has(proc.pid, "udp", port)):
            return True
        time.sleep(0.05)
    return False


def spawn(cmd, out, err):
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=open(out, "wb"),
                         stderr=open(err, "wb"), env=ENV)
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
# DNS wire format (just what the tests need).

def wire_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def build_query(qid, name, qtype, edns=None, flags=0x0100, qdcount=1):
    h = struct.pack("!HHHHHH", qid, flags, qdcount, 0, 0, 1 if edns else 0)
    q = wire_name(name) + struct.pack("!HH", qtype, 1)
    opt = b"\0" + struct.pack("!HHIH", T_OPT, edns, 0, 0) if edns else b""
    return h + q + opt


def skip_name(b, off):
    while True:
        if off >= len(b):
            raise ValueError("name runs past the end")
        n = b[off]
        if n & 0xC0 == 0xC0:
            return off + 2
        if n == 0:
            return off + 1
        off += 1 + n


def read_name(b, off, depth=0):
    labels = []
    while True:
        n = b[off]
        if n & 0xC0 == 0xC0:
            if depth > 20:
                raise ValueError("compression loop")
            ptr = struct.unpack("!H", b[off:off + 2])[0] & 0x3FFF
            labels.append(read_name(b, ptr, depth + 1)[0])
            return ".".join(l for l in labels if l), off + 2
        if n == 0:
            return ".".join(labels), off + 1
        labels.append(b[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n


def parse_msg(b):
    """Header fields and the answer section: {'id','qr','opcode','tc','rcode',
    'qd','an','ns','ar','answers': [(type, text)]}."""
    if len(b) < 12:
        raise ValueError("short message (%d bytes)" % len(b))
    qid, fl, qd, an, ns, ar = struct.unpack("!HHHHHH", b[:12])
    m = {"id": qid, "qr": bool(fl & 0x8000), "opcode": (fl >> 11) & 0xF,
         "tc": bool(fl & 0x0200), "rcode": fl & 0xF, "qd": qd, "an": an,
         "ns": ns, "ar": ar, "answers": [], "qname": None, "qtype": None}
    off = 12
    for i in range(qd):
        nm, off2 = read_name(b, off)
        if i == 0:
            m["qname"] = nm
            m["qtype"] = struct.unpack("!H", b[off2:off2 + 2])[0]
        off = off2 + 4
    for _ in range(an):
        off = skip_name(b, off)
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", b[off:off + 10])
        off += 10
        rd = b[off:off + rdlen]
        if rtype == T_A:
            text = socket.inet_ntop(socket.AF_INET, rd)
        elif rtype == T_AAAA:
            text = socket.inet_ntop(socket.AF_INET6, rd)
        elif rtype in (T_CNAME, T_PTR):
            text = read_name(b, off)[0]
        elif rtype == T_TXT:
            parts, i = [], 0
            while i < len(rd):
                parts.append('"%s"' % rd[i + 1:i + 1 + rd[i]].decode("ascii", "replace"))
                i += 1 + rd[i]
            text = " ".join(parts)
        else:
            text = rd.hex()
        m["answers"].append((rtype, text))
        off += rdlen
    if off > len(b):
        raise ValueError("answer section runs past the end")
    return m


def summary(answers):
    """The flow record's "answers" text for a list of (type, text)."""
    return ", ".join("%s %s" % (TYPE_NAME.get(t, "TYPE%d" % t), x) for t, x in answers)


def recv_exact(s, n, timeout=5.0):
    s.settimeout(timeout)
    out = bytearray()
    while len(out) < n:
        d = s.recv(n - len(out))
        if not d:
            break
        out += d
    return bytes(out)


def udp_ask(port, msg, timeout=5.0, host="127.0.0.1"):
    """Send one datagram; the answer, or None if nothing came in |timeout|."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(msg, (host, port))
        try:
            return s.recvfrom(65536)[0]
        except socket.timeout:
            return None
    finally:
        s.close()


def tcp_read_msg(s, timeout=5.0):
    """One length-prefixed message, or None at EOF."""
    h = recv_exact(s, 2, timeout)
    if len(h) < 2:
        return None
    n = struct.unpack("!H", h)[0]
    body = recv_exact(s, n, timeout)
    if len(body) < n:
        raise AssertionError("TCP answer cut short: %d of %d bytes" % (len(body), n))
    return body


def tcp_ask(port, msgs, timeout=5.0, host="127.0.0.1"):
    """Send every message (length-prefixed) in one write; read as many
    answers."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(b"".join(struct.pack("!H", len(m)) + m for m in msgs))
        return [tcp_read_msg(s, timeout) for _ in msgs]
    finally:
        s.close()


def closed_within(s, timeout):
    """True if the peer closes (EOF or reset) within |timeout|; the bytes
    received meanwhile are returned too."""
    s.settimeout(timeout)
    data = b""
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            d = s.recv(65536)
            if not d:
                return True, data
            data += d
    except socket.timeout:
        return False, data
    except OSError:
        return True, data
    return False, data


# --------------------------------------------------------------------------
# dig

class Dig:
    def __init__(self, r, cmd):
        self.cmd = " ".join(cmd)
        self.rc = r.returncode
        self.out = r.stdout.decode("utf-8", "replace")
        self.err = r.stderr.decode("utf-8", "replace")
        m = re.search(r"opcode: (\w+), status: (\w+), id: (\d+)", self.out)
        self.status = m.group(2) if m else None
        self.id = int(m.group(3)) if m else None
        m = re.search(r";; flags:([^;]*);", self.out)
        self.flags = m.group(1).split() if m else []
        m = re.search(r";; SERVER: .*\((UDP|TCP)\)", self.out)
        self.proto = m.group(1) if m else None
        self.retried_tcp = "Truncated, retrying in TCP mode" in self.out
        self.answers = []
        sect = None
        for line in self.out.splitlines():
            if line.startswith(";; ") and line.endswith("SECTION:"):
                sect = line[3:-len(" SECTION:")]
                continue
            if not line.strip():
                sect = None
                continue
            if sect == "ANSWER" and not line.startswith(";"):
                parts = line.split(None, 4)
                if len(parts) == 5:
                    self.answers.append((parts[3], parts[4]))

    def __repr__(self):
        return "%s\nrc=%d\n%s%s" % (self.cmd, self.rc, self.out[-3000:], self.err[-1000:])


def dig(port, *args, prefix=(), timeout=20):
    # +tries=1: one datagram per query (a retry would be a second flow)
    cmd = list(prefix) + ["dig", "@127.0.0.1", "-p", str(port), "+tries=1",
                          "+time=5"] + [str(a) for a in args]
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=timeout, env=ENV)
    except subprocess.TimeoutExpired:
        raise AssertionError("dig hung: %s" % " ".join(cmd))
    return Dig(r, cmd)


# --------------------------------------------------------------------------
# dnsmasq

def dnsmasq_cmd(port, tmp, name):
    cmd = ["dnsmasq", "--no-daemon", "--port=%d" % port, "--listen-address=127.0.0.1",
           "--bind-interfaces", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
           "--pid-file=%s" % os.path.join(tmp, name + ".pid"), "--user=root",
           "--cache-size=0",
           "--address=/example.test/127.0.0.9", "--address=/nx.test/",
           "--cname=alias.example.test,www.example.test",
           "--host-record=www.example.test,127.0.0.10",
           "--txt-record=small.example.test,%s" % SMALL_TXT]
    cmd += ["--txt-record=big.example.test,%s" % t for t in BIG_TXT]
    return cmd


def start_dnsmasq(port, tmp, name, prefix=()):
    out = os.path.join(tmp, name + ".stdout")
    err = os.path.join(tmp, name + ".stderr")
    p = spawn(list(prefix) + dnsmasq_cmd(port, tmp, name), out, err)
    if not wait_bound(p, port):
        kill_proc(p)
        raise AssertionError("dnsmasq did not listen on %d (rc=%s)\n%s" % (
            port, p.poll(), tail(err)))
    return p


# --------------------------------------------------------------------------
# The network namespace for dns mode.

def netns_reason():
    if os.geteuid() != 0:
        return "not root (network namespaces need root)"
    if not shutil.which("ip"):
        return "`ip` not found (install iproute2)"
    if ARGS.no_netns:
        return "--no-netns given"
    return None


class Netns:
    """A namespace with lo up and its own /etc/hosts and /etc/resolv.conf
    (resolv.conf: dnsmasq on 127.0.0.1:53 inside it)."""

    def __init__(self, tmp):
        self.name = "rcdns%d" % os.getpid()
        self.etc = "/etc/netns/" + self.name
        self.made_netns_dir = not os.path.isdir("/etc/netns")
        self.procs = []
        try:
            self._build(tmp)
        except BaseException:
            self.destroy()
            raise

    def _build(self, tmp):
        os.makedirs(self.etc)
        with open(os.path.join(self.etc, "hosts"), "w") as f:
            f.write("127.0.0.1 localhost\n::1 localhost\n")
            f.write("%s %s\n%s %s\n" % (NS_HOST_V4, NS_HOST, NS_HOST_V6, NS_HOST))
            for a in NS_MANY_ADDRS:
                f.write("%s %s\n" % (a, NS_MANY))
        with open(os.path.join(self.etc, "resolv.conf"), "w") as f:
            f.write("nameserver 127.0.0.1\noptions timeout:2 attempts:1\n")
        r = subprocess.run(["ip", "netns", "add", self.name], capture_output=True,
                           timeout=30)
        if r.returncode != 0:
            raise AssertionError("ip netns add: %s" % r.stderr.decode(errors="replace"))
        ALL_NETNS.append(self)
        subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"],
                       check=True, capture_output=True, timeout=30)
        self.prefix = ("ip", "netns", "exec", self.name)
        self.procs.append(start_dnsmasq(53, tmp, "ns-dnsmasq", prefix=self.prefix))

    def destroy(self):
        for p in self.procs:
            kill_proc(p)
        self.procs = []
        if self in ALL_NETNS:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True,
                           timeout=30)
            ALL_NETNS.remove(self)
        shutil.rmtree(self.etc, ignore_errors=True)
        if self.made_netns_dir:
            try:
                os.rmdir("/etc/netns")
            except OSError:
                pass


# --------------------------------------------------------------------------

class Ringcap:
    def __init__(self, tc, mode, port, prefix=()):
        self.tc = tc
        self.port = port
        tc.n_rc += 1
        name = "rc%d" % tc.n_rc
        self.log = os.path.join(tc.tmp, name + ".rcap")
        self.err = os.path.join(tc.tmp, name + ".stderr")
        self.cmd = list(prefix) + [ARGS.bin, "--mode", mode, "--listen-host", "127.0.0.1",
                                   "-w", self.log, "--set",
                                   "confdir=" + os.path.join(tc.tmp, "conf"), "-q"]
        self.proc = spawn(self.cmd, os.path.join(tc.tmp, name + ".stdout"), self.err)
        tc.addCleanup(kill_proc, self.proc)
        if not wait_bound(self.proc, port):
            tc.fail("ringcap did not listen on %d (rc=%s)\ncmd: %s\n%s" % (
                port, self.proc.poll(), " ".join(self.cmd), tail(self.err)))

    def alive(self):
        self.tc.assertIsNone(self.proc.poll(), "ringcap died\n%s" % tail(self.err))

    def stop(self, timeout=10.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_proc(self.proc)
            self.tc.fail("ringcap did not exit within %.0fs of SIGTERM\n%s" % (
                timeout, tail(self.err)))
        self.tc.assertEqual(rc, 0, "ringcap exit code after SIGTERM (%.1fs)\ncmd: %s\n%s" % (
            time.monotonic() - t0, " ".join(self.cmd), tail(self.err)))
        err = tail(self.err, 20000)
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            self.tc.assertNotIn(bad, err, "sanitizer report:\n%s" % err)

    def flows(self):
        """Stop, then the flows in file order, and the `ringcap read` text
        lines (checked against the JSON one by one)."""
        self.stop()
        r = subprocess.run([ARGS.bin, "read", "--json", self.log], capture_output=True,
                           timeout=60)
        self.tc.assertEqual(r.returncode, 0, "ringcap read --json: %s" % r.stderr[-2000:])
        flows = [json.loads(l) for l in r.stdout.decode().splitlines() if l.strip()]
        t = subprocess.run([ARGS.bin, "read", self.log], capture_output=True, timeout=60)
        self.tc.assertEqual(t.returncode, 0, "ringcap read: %s" % t.stderr[-2000:])
        lines = [l for l in t.stdout.decode().splitlines() if l.strip()]
        self.tc.assertEqual(len(lines), len(flows), "read text vs json:\n%s" % "\n".join(lines))
        for f, line in zip(flows, lines):
            self.tc.check_text_line(f, line)
        # Each shard has its own ring: flows of different shards may be
        # written in either order. Order by when the query arrived.
        flows.sort(key=lambda f: (f.get("dns") or {}).get("ts_query") or 0)
        return flows


TEXT_RE = re.compile(r"^(?P<peer>\S+):(?P<port>\d+): DNS(?P<tcp>/TCP)? (?P<qtype>\S+) "
                     r"(?P<qname>\S*) << (?P<rest>.*?)(?: (?P<dur>\d+(\.\d+)?(ms|s)))?$")


class Base(unittest.TestCase):
    maxDiff = 6000

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rc-dns-")
        self.n_rc = 0
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

    # ---- checks ----

    def check_text_line(self, f, line):
        m = TEXT_RE.match(line)
        self.assertTrue(m, "ringcap read line not as documented: %r" % line)
        d = f.get("dns") or {}
        peer = (f.get("client") or {}).get("peer") or ["", 0]
        self.assertEqual(m.group("peer"), peer[0], line)
        self.assertEqual(int(m.group("port")), peer[1], line)
        self.assertEqual(bool(m.group("tcp")), bool(d.get("tcp")), line)
        self.assertEqual(m.group("qtype"), TYPE_NAME.get(d.get("qtype"), m.group("qtype")), line)
        if d.get("qname"):
            self.assertEqual(m.group("qname"), d["qname"], line)
        if f.get("error"):
            self.assertTrue(m.group("rest").startswith("error: "), line)
            return
        self.assertTrue(m.group("dur"), "no duration: %r" % line)
        rc = d.get("rcode")
        if rc is not None and rc >= 0 and d.get("response"):
            rest = RCODE_NAME.get(rc, "")
            if d.get("answers"):
                rest += " " + d["answers"]
            self.assertTrue(m.group("rest").startswith(rest), "%r vs %r" % (line, rest))

    def assert_dns_flow(self, f, qname, qtype, rcode, answers=None, tcp=False,
                        mode=None, query_id=None, truncated_summary=False):
        """One dns flow: question, rcode, answers (list of (type, text),
        checked against both the "answers" text and the recorded response),
        transport, timestamps, and query/response bytes that parse."""
        self.assertEqual(f.get("type"), "dns", f)
        if mode:
            self.assertEqual(f.get("mode"), mode, f)
        d = f.get("dns") or {}
        self.assertEqual(d.get("qname"), qname, d)
        self.assertEqual(d.get("qtype"), qtype, d)
        self.assertEqual(d.get("rcode"), rcode, d)
        self.assertEqual(bool(d.get("tcp")), tcp, d)
        self.assertFalse(f.get("error"), "unexpected error in flow: %s" % f.get("error"))
        q = base64.b64decode(d.get("query") or "")
        r = base64.b64decode(d.get("response") or "")
        qm, rm = parse_msg(q), parse_msg(r)
        self.assertFalse(qm["qr"], qm)
        self.assertEqual((qm["qname"], qm["qtype"]), (qname, qtype), qm)
        self.assertTrue(rm["qr"], rm)
        self.assertEqual(rm["id"], qm["id"], "recorded response id differs from the query's")
        if query_id is not None:
            self.assertEqual(qm["id"], query_id, "recorded query is not the client's")
        self.assertEqual(rm["rcode"], rcode, rm)
        self.assertFalse(rm["tc"], "the recorded response is the truncated one: %s" % rm)
        if answers is not None:
            self.assertEqual(sorted(rm["answers"]), sorted(answers),
                             "recorded response's answer section")
            full = summary(rm["answers"])
            got = d.get("answers") or ""
            if truncated_summary and len(full) > 500:
                self.assertTrue(len(got) > 300 and full.startswith(got),
                                "answers text %r is not a prefix of %r" % (got, full))
            else:
                self.assertEqual(got, full, d)
        tq, tr = d.get("ts_query"), d.get("ts_response")
        self.assertTrue(isinstance(tq, (int, float)) and tq > 1e9, d)
        self.assertTrue(isinstance(tr, (int, float)) and tr >= tq, d)
        self.assertLess(tr - tq, 10, d)
        return rm

    def assert_dig(self, res, status, answers=None, proto="UDP", flags_has=(),
                   flags_not=()):
        self.assertEqual(res.rc, 0, res)
        self.assertEqual(res.status, status, res)
        self.assertEqual(res.proto, proto, res)
        for fl in flags_has:
            self.assertIn(fl, res.flags, res)
        for fl in flags_not:
            self.assertNotIn(fl, res.flags, res)
        # dig warns about a reply that does not match its query
        for w in ("ID mismatch", "reply from unexpected source", "Warning: query response"):
            self.assertNotIn(w, res.out + res.err, res)
        if answers is not None:
            self.assertEqual(sorted(res.answers), sorted(answers), res)

    def assert_flows(self, flows, n):
        self.assertEqual(len(flows), n, "flows:\n%s" % "\n".join(
            json.dumps(f.get("dns")) for f in flows))


def hosts_has(addr, name):
    try:
        with open("/etc/hosts") as f:
            for line in f:
                w = line.split("#", 1)[0].split()
                if len(w) > 1 and w[0] == addr and name in w[1:]:
                    return True
    except OSError:
        pass
    return False


def big_answers():
    return [(T_TXT, '"%s"' % t) for t in BIG_TXT]


# --------------------------------------------------------------------------

class ReverseDnsTests(Base):
    """--mode reverse:dns://127.0.0.1:UP@P in front of a loopback dnsmasq."""

    @classmethod
    def setUpClass(cls):
        cls.ctmp = tempfile.mkdtemp(prefix="rc-dns-up-")
        cls.up = free_port()
        cls.dm = start_dnsmasq(cls.up, cls.ctmp, "dnsmasq")

    @classmethod
    def tearDownClass(cls):
        kill_proc(cls.dm)
        shutil.rmtree(cls.ctmp, ignore_errors=True)

    def setUp(self):
        super().setUp()
        self.P = free_port()

    def rc(self):
        return Ringcap(self, "reverse:dns://127.0.0.1:%d@%d" % (self.up, self.P), self.P)

    def upstream_says(self, *args):
        return dig(self.up, *args)

    def test_a_cname_txt(self):
        p = self.rc()
        self.assert_dig(dig(self.P, "example.test", "A"), "NOERROR",
                        [("A", "127.0.0.9")], flags_has=("qr", "aa"))
        self.assert_dig(dig(self.P, "alias.example.test", "CNAME"), "NOERROR",
                        [("CNAME", "www.example.test.")])
        self.assert_dig(dig(self.P, "small.example.test", "TXT"), "NOERROR",
                        [("TXT", '"%s"' % SMALL_TXT)])
        self.assert_dig(dig(self.P, "www.example.test", "A"), "NOERROR",
                        [("A", "127.0.0.10")])
        flows = p.flows()
        self.assert_flows(flows, 4)
        s = self.P
        self.assert_dns_flow(flows[0], "example.test", T_A, NOERROR,
                             [(T_A, "127.0.0.9")], mode="reverse")
        self.assert_dns_flow(flows[1], "alias.example.test", T_CNAME, NOERROR,
                             [(T_CNAME, "www.example.test")], mode="reverse")
        self.assert_dns_flow(flows[2], "small.example.test", T_TXT, NOERROR,
                             [(T_TXT, '"%s"' % SMALL_TXT)], mode="reverse")
        self.assert_dns_flow(flows[3], "www.example.test", T_A, NOERROR,
                             [(T_A, "127.0.0.10")], mode="reverse")
        for f in flows:
            self.assertEqual((f.get("client") or {}).get("local"), ["127.0.0.1", s], f)
            self.assertEqual((f.get("server") or {}).get("peer"), ["127.0.0.1", self.up], f)

    def test_nxdomain(self):
        up = self.upstream_says("foo.nx.test", "A")
        self.assertEqual(up.status, "NXDOMAIN", up)
        p = self.rc()
        self.assert_dig(dig(self.P, "foo.nx.test", "A"), "NXDOMAIN", [])
        flows = p.flows()
        self.assert_flows(flows, 1)
        self.assert_dns_flow(flows[0], "foo.nx.test", T_A, NXDOMAIN, [])

    def test_unknown_name_rcode_passed_through(self):
        """With --no-resolv dnsmasq answers a name it does not know with
        REFUSED; a forwarder passes the upstream's rcode through as is."""
        up = self.upstream_says("nothere.invalid", "A")
        self.assertIn(up.status, ("REFUSED", "NXDOMAIN"), up)
        p = self.rc()
        res = dig(self.P, "nothere.invalid", "A")
        self.assert_dig(res, up.status, [])
        flows = p.flows()
        self.assert_flows(flows, 1)
        self.assert_dns_flow(flows[0], "nothere.invalid", T_A,
                             REFUSED if up.status == "REFUSED" else NXDOMAIN, [])

    def test_big_answer_udp_truncated(self):
        """2.1 KB of TXT over UDP (dig's EDNS size 1232): TC set, no
        answers; +ignore keeps dig from retrying."""
        p = self.rc()
        res = dig(self.P, "big.example.test", "TXT", "+ignore")
        self.assert_dig(res, "NOERROR", [], flags_has=("tc",))
        # the same without EDNS (512 bytes), raw: the client's id, TC, the question
        raw = udp_ask(self.P, build_query(0x5A5A, "big.example.test", T_TXT))
        self.assertIsNotNone(raw, "no UDP answer")
        self.assertLessEqual(len(raw), 512)
        m = parse_msg(raw)
        self.assertEqual((m["id"], m["qr"], m["tc"], m["rcode"]), (0x5A5A, True, True, NOERROR), m)
        self.assertEqual((m["qname"], m["qtype"]), ("big.example.test", T_TXT), m)
        flows = p.flows()
        self.assert_flows(flows, 2)
        for f in flows:
            self.assert_dns_flow(f, "big.example.test", T_TXT, NOERROR, big_answers(),
                                 tcp=False, truncated_summary=True)

    def test_big_answer_retry_over_tcp(self):
        p = self.rc()
        res = dig(self.P, "big.example.test", "TXT")
        self.assertTrue(res.retried_tcp, res)
        self.assert_dig(res, "NOERROR", [("TXT", '"%s"' % t) for t in BIG_TXT], proto="TCP")
        flows = p.flows()
        self.assert_flows(flows, 2)
        self.assertEqual([bool(f["dns"].get("tcp")) for f in flows], [False, True])
        for f in flows:
            self.assert_dns_flow(f, "big.example.test", T_TXT, NOERROR, big_answers(),
                                 tcp=bool(f["dns"].get("tcp")), truncated_summary=True)

    def test_tcp_directly(self):
        p = self.rc()
        self.assert_dig(dig(self.P, "+tcp", "example.test", "A"), "NOERROR",
                        [("A", "127.0.0.9")], proto="TCP")
        self.assert_dig(dig(self.P, "+tcp", "big.example.test", "TXT"), "NOERROR",
                        [("TXT", '"%s"' % t) for t in BIG_TXT], proto="TCP")
        flows = p.flows()
        self.assert_flows(flows, 2)
        self.assert_dns_flow(flows[0], "example.test", T_A, NOERROR, [(T_A, "127.0.0.9")],
                             tcp=True)
        self.assert_dns_flow(flows[1], "big.example.test", T_TXT, NOERROR, big_answers(),
                             tcp=True, truncated_summary=True)

    def test_query_id_preserved(self):
        """The client's id comes back (the forwarder asks with its own),
        over UDP and TCP, and the recorded query is the client's."""
        p = self.rc()
        ids = [0x0000, 0xBEEF, 0xFFFF]
        for qid in ids:
            r = udp_ask(self.P, build_query(qid, "example.test", T_A))
            self.assertIsNotNone(r, "no answer to id %#x" % qid)
            m = parse_msg(r)
            self.assertEqual(m["id"], qid, m)
            self.assertEqual(m["answers"], [(T_A, "127.0.0.9")], m)
        r = tcp_ask(self.P, [build_query(0x1234, "example.test", T_A, edns=1232)])[0]
        self.assertIsNotNone(r, "no TCP answer")
        self.assertEqual(parse_msg(r)["id"], 0x1234)
        flows = p.flows()
        self.assert_flows(flows, 4)
        for f, qid in zip(flows, ids + [0x1234]):
            self.assert_dns_flow(f, "example.test", T_A, NOERROR, [(T_A, "127.0.0.9")],
                                 tcp=qid == 0x1234, query_id=qid)

    def test_tcp_pipelined_pair(self):
        p = self.rc()
        a = build_query(0x0A01, "example.test", T_A)
        b = build_query(0x0A02, "alias.example.test", T_CNAME)
        got = tcp_ask(self.P, [a, b])
        self.assertTrue(all(got), "a pipelined query was not answered: %r" % got)
        ms = [parse_msg(x) for x in got]
        self.assertEqual([m["id"] for m in ms], [0x0A01, 0x0A02], "answers out of order")
        self.assertEqual(ms[0]["answers"], [(T_A, "127.0.0.9")])
        self.assertEqual(ms[1]["answers"], [(T_CNAME, "www.example.test")])
        flows = p.flows()
        self.assert_flows(flows, 2)
        byname = {f["dns"]["qname"]: f for f in flows}
        self.assert_dns_flow(byname["example.test"], "example.test", T_A, NOERROR,
                             [(T_A, "127.0.0.9")], tcp=True, query_id=0x0A01)
        self.assert_dns_flow(byname["alias.example.test"], "alias.example.test", T_CNAME,
                             NOERROR, [(T_CNAME, "www.example.test")], tcp=True,
                             query_id=0x0A02)

    def test_malformed_udp(self):
        malformed_udp(self, self.rc(), "example.test", (T_A, "127.0.0.9"))

    def test_malformed_tcp(self):
        malformed_tcp(self, self.rc(), "example.test", (T_A, "127.0.0.9"))

    def test_sigterm_exits_zero(self):
        p = self.rc()
        self.assert_dig(dig(self.P, "example.test", "A"), "NOERROR", [("A", "127.0.0.9")])
        # an open, idle TCP client must not hold up the exit
        s = socket.create_connection(("127.0.0.1", self.P), timeout=5)
        try:
            t0 = time.monotonic()
            p.stop(timeout=10)
            self.assertLess(time.monotonic() - t0, 10)
        finally:
            s.close()


def malformed_udp(tc, p, good_name, good_answer):
    """Bad datagrams: answered with FORMERR/NOTIMP where a query can be
    answered (the client's id, QR set), a response never answered; then a
    normal query is still served and the process is alive."""
    P = p.port
    rnd = random.Random(6)
    cases = []   # (what, bytes, expect: None = no answer, else set of rcodes)
    junk = bytearray(rnd.getrandbits(8) for _ in range(60))
    junk[0:4] = b"\x77\x01\x01\x00"   # id 0x7701, QR=0 opcode=0: a "query"
    junk[4:6] = b"\x00\x01"           # QDCOUNT 1, the question is garbage
    junk[12] = 0x3F                    # a label running past the end
    cases.append(("random bytes", bytes(junk), {FORMERR}))
    # id and flags but no counts: ignoring it or FORMERR with the id are both fine
    cases.append(("5-byte message", b"\x12\x34\x01\x00\x00", {FORMERR, None}))
    cases.append(("2-byte message", b"\x12\x35", {FORMERR, None}))
    cases.append(("1-byte message", b"\x12", None))
    two = build_query(0x7702, "example.test", T_A, qdcount=2)
    two = two + wire_name("alias.example.test") + struct.pack("!HH", T_A, 1)
    cases.append(("QDCOUNT 2", two, {FORMERR, NOTIMP}))
    resp = bytearray(build_query(0x7703, "example.test", T_A))
    resp[2] |= 0x80
    cases.append(("a response (QR set)", bytes(resp), None))
    loop = struct.pack("!HHHHHH", 0x7704, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c" + \
        struct.pack("!HH", T_A, 1)
    cases.append(("compression loop", loop, {FORMERR}))
    loop2 = struct.pack("!HHHHHH", 0x7705, 0x0100, 1, 0, 0, 0) + b"\x01a\xc0\x0c" + \
        struct.pack("!HH", T_A, 1)
    cases.append(("compression loop via a label", loop2, {FORMERR}))
    status = bytearray(build_query(0x7706, "example.test", T_A))
    status[2] = (status[2] & 0x87) | (2 << 3)          # opcode STATUS
    cases.append(("opcode STATUS", bytes(status), {NOTIMP}))
    cases.append(("header only, QDCOUNT 0", struct.pack("!HHHHHH", 0x7707, 0x0100, 0, 0, 0, 0),
                  {FORMERR}))
    cases.append(("empty datagram", b"", None))
    problems = []   # every case runs; the problems are reported together
    for what, msg, expect in cases:
        r = udp_ask(P, msg, timeout=1.5 if expect is None or None in expect else 5.0)
        if r == b"":
            problems.append("%s (%r): answered with an empty datagram" % (what, msg))
        elif r is None:
            if expect is not None and None not in expect:
                problems.append("%s: no answer" % what)
        elif expect is None:
            problems.append("%s: something was answered: %r" % (what, r))
        else:
            try:
                m = parse_msg(r)
            except ValueError as e:
                problems.append("%s: answer does not parse (%s): %r" % (what, e, r))
                continue
            qid = struct.unpack("!H", msg[:2])[0]
            if m["id"] != qid or not m["qr"] or m["rcode"] not in expect or m["an"]:
                problems.append("%s: want id %#x, QR, rcode in %s, no answers; got %r" % (
                    what, qid, sorted(x for x in expect if x is not None), m))
        p.alive()
    # fuzz: 200 random datagrams from one socket; whatever comes back must be
    # a response (header, QR set) with the id of something we sent
    rnd_ids = set()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _ in range(200):
            msg = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 80)))
            if len(msg) >= 2:
                rnd_ids.add(msg[:2])
            s.sendto(msg, ("127.0.0.1", P))
        s.settimeout(1.0)
        while True:
            try:
                r = s.recvfrom(65536)[0]
            except socket.timeout:
                break
            if len(r) < 12 or not r[2] & 0x80 or r[:2] not in rnd_ids:
                problems.append("fuzz: bad answer %r" % r[:40])
    finally:
        s.close()
    p.alive()
    tc.assertFalse(problems, "malformed UDP input:\n  " + "\n  ".join(problems))
    time.sleep(0.5)
    p.alive()
    r = udp_ask(P, build_query(0x7799, good_name, good_answer[0]))
    tc.assertIsNotNone(r, "no answer to a normal query after the malformed ones")
    m = parse_msg(r)
    tc.assertEqual((m["id"], m["rcode"], m["answers"]), (0x7799, NOERROR, [good_answer]), m)
    flows = p.flows()
    good = [f for f in flows if (f.get("dns") or {}).get("query") and
            parse_msg_or_none(base64.b64decode(f["dns"]["query"]), 0x7799)]
    tc.assertEqual(len(good), 1, "the normal query's flow")
    tc.assert_dns_flow(good[0], good_name, good_answer[0], NOERROR, [good_answer],
                       query_id=0x7799)


def parse_msg_or_none(b, qid):
    return len(b) >= 2 and struct.unpack("!H", b[:2])[0] == qid


def malformed_tcp(tc, p, good_name, good_answer):
    P = p.port
    # a length prefix of 3: not even a header; the connection is closed
    s = socket.create_connection(("127.0.0.1", P), timeout=5)
    try:
        s.sendall(b"\x00\x03abc")
        closed, data = closed_within(s, 5)
        tc.assertTrue(closed, "connection left open after a 3-byte message (got %r)" % data)
    finally:
        s.close()
    # a length prefix of 0
    s = socket.create_connection(("127.0.0.1", P), timeout=5)
    try:
        s.sendall(b"\x00\x00")
        closed, data = closed_within(s, 5)
        tc.assertTrue(closed, "connection left open after a 0-byte message (got %r)" % data)
    finally:
        s.close()
    # a length prefix, then the client goes away mid-message
    s = socket.create_connection(("127.0.0.1", P), timeout=5)
    s.sendall(b"\x01\x00" + b"\x00" * 20)
    s.close()
    # one byte of the prefix only
    s = socket.create_connection(("127.0.0.1", P), timeout=5)
    s.sendall(b"\x00")
    s.close()
    # a compression loop over TCP: FORMERR with the id, connection still usable
    loop = struct.pack("!HHHHHH", 0x7801, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c" + \
        struct.pack("!HH", T_A, 1)
    good = build_query(0x7802, good_name, good_answer[0])
    got = tcp_ask(P, [loop, good])
    tc.assertTrue(all(got), "no answer on TCP: %r" % got)
    m0, m1 = parse_msg(got[0]), parse_msg(got[1])
    tc.assertEqual((m0["id"], m0["rcode"]), (0x7801, FORMERR), m0)
    tc.assertEqual((m1["id"], m1["rcode"], m1["answers"]), (0x7802, NOERROR, [good_answer]), m1)
    p.alive()
    r = udp_ask(P, build_query(0x7803, good_name, good_answer[0]))
    tc.assertIsNotNone(r, "no UDP answer after the malformed TCP input")
    tc.assertEqual(parse_msg(r)["answers"], [good_answer])
    flows = p.flows()
    for qid, tcp in ((0x7802, True), (0x7803, False)):
        fl = [f for f in flows if (f.get("dns") or {}).get("query") and
              parse_msg_or_none(base64.b64decode(f["dns"]["query"]), qid)]
        tc.assertEqual(len(fl), 1, "flow of query %#x" % qid)
        tc.assert_dns_flow(fl[0], good_name, good_answer[0], NOERROR, [good_answer],
                           tcp=tcp, query_id=qid)


# --------------------------------------------------------------------------

class DnsModeTests(Base):
    """--mode dns@P: A/AAAA/PTR through the system resolver (hosts file,
    then resolv.conf), the rest forwarded. In a namespace of our own when
    we can; else localhost from the real /etc/hosts."""

    @classmethod
    def setUpClass(cls):
        cls.ns = None
        cls.ctmp = tempfile.mkdtemp(prefix="rc-dns-ns-")
        cls.reason = netns_reason()
        if cls.reason is None:
            cls.ns = Netns(cls.ctmp)
        else:
            log("dns mode without a namespace (%s): localhost from /etc/hosts only"
                % cls.reason)

    @classmethod
    def tearDownClass(cls):
        if cls.ns:
            cls.ns.destroy()
        shutil.rmtree(cls.ctmp, ignore_errors=True)

    def setUp(self):
        super().setUp()
        self.P = free_port()

    def need_ns(self):
        if not self.ns:
            self.skipTest("forwarded types need the namespace: %s" % self.reason)

    def rc(self, in_ns=True):
        prefix = self.ns.prefix if (self.ns and in_ns) else ()
        return Ringcap(self, "dns@%d" % self.P, self.P, prefix=prefix)

    def dig(self, *args):
        return dig(self.P, *args, prefix=self.ns.prefix if self.ns else ())

    def test_hosts_a_aaaa_ptr(self):
        p = self.rc()
        if self.ns:
            name, v4, v6 = NS_HOST, NS_HOST_V4, NS_HOST_V6
        else:
            name, v4, v6 = "localhost", "127.0.0.1", "::1"
        # the real /etc/hosts may lack "::1 localhost" (the resolver still
        # knows localhost's AAAA, but not the reverse of ::1)
        ptr6 = self.ns is not None or hosts_has("::1", "localhost")
        if not ptr6:
            log("dns mode: no \"::1 localhost\" in /etc/hosts: PTR of ::1 not checked")
        self.assert_dig(self.dig(name, "A"), "NOERROR", [("A", v4)])
        self.assert_dig(self.dig(name, "AAAA"), "NOERROR", [("AAAA", v6)])
        self.assert_dig(self.dig("-x", v4), "NOERROR", [("PTR", name + ".")])
        if ptr6:
            self.assert_dig(self.dig("-x", v6), "NOERROR", [("PTR", name + ".")])
        flows = p.flows()
        self.assert_flows(flows, 4 if ptr6 else 3)
        self.assert_dns_flow(flows[0], name, T_A, NOERROR, [(T_A, v4)], mode="dns")
        self.assert_dns_flow(flows[1], name, T_AAAA, NOERROR, [(T_AAAA, v6)], mode="dns")
        rev4 = ".".join(reversed(v4.split("."))) + ".in-addr.arpa"
        nib = socket.inet_pton(socket.AF_INET6, v6).hex()
        rev6 = ".".join(reversed(nib)) + ".ip6.arpa"
        self.assert_dns_flow(flows[2], rev4, T_PTR, NOERROR, [(T_PTR, name)])
        if ptr6:
            self.assert_dns_flow(flows[3], rev6, T_PTR, NOERROR, [(T_PTR, name)])

    def test_resolv_conf_server_a(self):
        """A name not in the hosts file comes from resolv.conf's server."""
        self.need_ns()
        p = self.rc()
        self.assert_dig(self.dig("www.example.test", "A"), "NOERROR", [("A", "127.0.0.10")])
        flows = p.flows()
        self.assert_flows(flows, 1)
        self.assert_dns_flow(flows[0], "www.example.test", T_A, NOERROR, [(T_A, "127.0.0.10")])

    def test_forwarded_cname_txt(self):
        self.need_ns()
        p = self.rc()
        self.assert_dig(self.dig("alias.example.test", "CNAME"), "NOERROR",
                        [("CNAME", "www.example.test.")])
        self.assert_dig(self.dig("small.example.test", "TXT"), "NOERROR",
                        [("TXT", '"%s"' % SMALL_TXT)])
        flows = p.flows()
        self.assert_flows(flows, 2)
        self.assert_dns_flow(flows[0], "alias.example.test", T_CNAME, NOERROR,
                             [(T_CNAME, "www.example.test")], mode="dns")
        self.assert_dns_flow(flows[1], "small.example.test", T_TXT, NOERROR,
                             [(T_TXT, '"%s"' % SMALL_TXT)], mode="dns")

    def test_nxdomain(self):
        self.need_ns()
        p = self.rc()
        self.assert_dig(self.dig("foo.nx.test", "A"), "NXDOMAIN", [])
        self.assert_dig(self.dig("foo.nx.test", "AAAA"), "NXDOMAIN", [])
        self.assert_dig(self.dig("-x", "127.0.0.77"), "NXDOMAIN", [])
        flows = p.flows()
        self.assert_flows(flows, 3)
        self.assert_dns_flow(flows[0], "foo.nx.test", T_A, NXDOMAIN, [])
        self.assert_dns_flow(flows[1], "foo.nx.test", T_AAAA, NXDOMAIN, [])
        self.assert_dns_flow(flows[2], "77.0.0.127.in-addr.arpa", T_PTR, NXDOMAIN, [])

    def test_many_addresses_truncated_then_tcp(self):
        """32 addresses from the hosts file: > 512 bytes without EDNS, so
        UDP gets TC and dig's TCP retry gets all of them."""
        self.need_ns()
        p = self.rc()
        want = [("A", a) for a in NS_MANY_ADDRS]
        res = self.dig("+noedns", "+ignore", NS_MANY, "A")
        self.assert_dig(res, "NOERROR", [], flags_has=("tc",))
        res = self.dig("+noedns", NS_MANY, "A")
        self.assertTrue(res.retried_tcp, res)
        self.assert_dig(res, "NOERROR", want, proto="TCP")
        res = self.dig(NS_MANY, "A")   # EDNS 1232: fits in UDP
        self.assert_dig(res, "NOERROR", want, flags_not=("tc",))
        flows = p.flows()
        self.assert_flows(flows, 4)
        self.assertEqual([bool(f["dns"].get("tcp")) for f in flows],
                         [False, False, True, False])
        for f in flows:
            self.assert_dns_flow(f, NS_MANY, T_A, NOERROR, [(T_A, a) for a in NS_MANY_ADDRS],
                                 tcp=bool(f["dns"].get("tcp")), truncated_summary=True)

    def test_tcp_directly(self):
        p = self.rc()
        name, v4 = (NS_HOST, NS_HOST_V4) if self.ns else ("localhost", "127.0.0.1")
        self.assert_dig(self.dig("+tcp", name, "A"), "NOERROR", [("A", v4)], proto="TCP")
        flows = p.flows()
        self.assert_flows(flows, 1)
        self.assert_dns_flow(flows[0], name, T_A, NOERROR, [(T_A, v4)], tcp=True)

    def test_malformed_udp(self):
        # on the host's loopback: malformed queries never reach a resolver,
        # and localhost is in every /etc/hosts
        malformed_udp(self, self.rc(in_ns=False), "localhost", (T_A, "127.0.0.1"))

    def test_malformed_tcp(self):
        malformed_tcp(self, self.rc(in_ns=False), "localhost", (T_A, "127.0.0.1"))

    def test_sigterm_exits_zero(self):
        p = self.rc()
        name, v4 = (NS_HOST, NS_HOST_V4) if self.ns else ("localhost", "127.0.0.1")
        self.assert_dig(self.dig(name, "A"), "NOERROR", [("A", v4)])
        p.stop(timeout=10)


# --------------------------------------------------------------------------

def cleanup_all():
    for p in ALL_PROCS:
        kill_proc(p)
    for ns in list(ALL_NETNS):
        ns.destroy()


def main():
    global ARGS
    ap = argparse.ArgumentParser(description="ringcap DNS mode tests")
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "../../build/cli/ringcap"))
    ap.add_argument("-k", action="append", default=[], help="test name pattern")
    ap.add_argument("-v", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep temp dirs")
    ap.add_argument("--no-netns", action="store_true",
                    help="test dns mode without a namespace (as when not root)")
    ARGS = ap.parse_args()
    ARGS.bin = os.path.abspath(ARGS.bin)
    if not os.access(ARGS.bin, os.X_OK):
        sys.exit("no ringcap binary at %s (--bin)" % ARGS.bin)
    for tool, pkg in (("dig", "bind9-dnsutils"), ("dnsmasq", "dnsmasq-base")):
        if not shutil.which(tool) and not os.access("/usr/sbin/" + tool, os.X_OK):
            print("SKIP (77): `%s` not found (install %s; scripts/deps does)" % (tool, pkg))
            sys.exit(77)
    if not shutil.which("dnsmasq"):
        os.environ["PATH"] += ":/usr/sbin"
        ENV["PATH"] = os.environ["PATH"]

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    ok = False
    try:
        loader = unittest.TestLoader()
        if ARGS.k:
            loader.testNamePatterns = ["*%s*" % k if "*" not in k else k for k in ARGS.k]
        suite = unittest.TestSuite()
        for cls in (ReverseDnsTests, DnsModeTests):
            suite.addTests(loader.loadTestsFromTestCase(cls))
        res = unittest.TextTestRunner(verbosity=2 if ARGS.v else 1,
                                      stream=sys.stderr).run(suite)
        ok = res.wasSuccessful() and res.testsRun > 0
        for t, why in res.skipped:
            log("skipped %s: %s" % (t.id().split(".", 1)[-1], why))
    finally:
        cleanup_all()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
