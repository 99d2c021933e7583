#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# End to end for `ringcap export`: record a few flows (GET, POST, 404, an
# upstream that refuses, binary bodies both ways, a CONNECT tunnel), then
#  - export --har: check the HAR 1.2 structure and that headers and bodies
#    are what was sent and received;
#  - export --mitmproxy: run the real `mitmdump -nr` on it (its lines must
#    match `ringcap read`), and load it with mitmproxy's own FlowReader and
#    compare every field with `ringcap read --json`.
#
#   python3 tests/e2e/test_export.py --bin build/cli/ringcap
#
# Exit 0 when everything passed, 1 on a failure, 77 when mitmdump is not
# installed (apt-get install mitmproxy).
import argparse
import base64
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import backend  # noqa: E402  (the e2e origin server, payload())

FAILURES = []
CHECKS = [0]


def check(cond, what):
    CHECKS[0] += 1
    if not cond:
        FAILURES.append(what)
        print("FAIL: " + what, file=sys.stderr)
    return cond


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


# ---- recording ------------------------------------------------------------

POST_FORM = b"hello=world&name=caf%C3%A9+au+lait"
POST_BIN = bytes(range(256)) * 4  # not UTF-8
COOKIE = "a=1; b=two"


def record(bin_, tmp):
    """Runs the backend and ringcap, sends the requests, returns the log
    path and a description of what was sent."""
    srv = backend.Server(0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    bport = srv.port
    refused_port = free_port()  # nothing listens there
    port = free_port()
    log = os.path.join(tmp, "flows.rcap")
    err = open(os.path.join(tmp, "ringcap.stderr"), "wb")
    proc = subprocess.Popen([bin_, "-q", "--listen-host", "127.0.0.1",
                             "-p", str(port), "-w", log],
                            stdin=subprocess.DEVNULL, stderr=err)
    try:
        if not wait_port(port, proc):
            raise SystemExit("ringcap did not start: " + open(err.name).read())
        base = "http://127.0.0.1:%d" % bport
        proxy = "http://127.0.0.1:%d" % port
        binfile = os.path.join(tmp, "post.bin")
        with open(binfile, "wb") as f:
            f.write(POST_BIN)
        reqs = [
            ("GET", base + "/echo?a=1&b=x%20y", ["-H", "Cookie: " + COOKIE]),
            ("POST", base + "/echo", ["--data-binary", POST_FORM.decode(),
                                      "-H", "Content-Type: application/"
                                      "x-www-form-urlencoded"]),
            ("GET", base + "/nope", []),
            ("GET", "http://127.0.0.1:%d/" % refused_port, []),
            ("GET", base + "/bytes/300", []),
            ("POST", base + "/sink", ["--data-binary", "@" + binfile, "-H",
                                      "Content-Type: application/octet-stream"]),
        ]
        for method, url, extra in reqs:
            subprocess.run(["curl", "-sS", "--max-time", "10", "-o",
                            os.devnull, "-x", proxy] + extra + [url],
                           stderr=subprocess.DEVNULL)
        # A CONNECT tunnel carrying bytes that are not HTTP (HTTP inside a
        # tunnel would be parsed into http flows): relayed as a tcp flow.
        raw_tunnel(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(15)
        err.close()
    check(rc == 0, "ringcap exit code %s after SIGTERM" % rc)
    return log, {"bport": bport, "refused_port": refused_port}


def raw_tunnel(proxy_port):
    """CONNECT to a one-shot echo server and exchange a binary message."""
    import socket
    import threading
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)

    def echo():
        c, _ = ls.accept()
        with c:
            d = c.recv(65536)
            if d:
                c.sendall(d)
    t = threading.Thread(target=echo, daemon=True)
    t.start()
    ep = ls.getsockname()[1]
    s = socket.create_connection(("127.0.0.1", proxy_port), timeout=10)
    with s:
        s.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"
                  % (ep, ep))
        head = b""
        while b"\r\n\r\n" not in head:
            d = s.recv(1)
            if not d:
                break
            head += d
        check(head.startswith(b"HTTP/1.1 200"), "CONNECT answered %r" % head)
        s.sendall(b"\x00\x01tunnelled bytes\xff")
        got = s.recv(100)
        check(got == b"\x00\x01tunnelled bytes\xff", "tunnel echo %r" % got)
    t.join(5)
    ls.close()


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          **kw)


# ---- HAR 1.2 structure ------------------------------------------------------

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$")


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def want(obj, key, typ, where, optional=False):
    """obj[key] exists (unless optional) and has type |typ|. True when it
    is there and well typed."""
    if key not in obj:
        check(optional, "%s: missing %r" % (where, key))
        return False
    ok = {"str": lambda v: isinstance(v, str), "num": is_num, "int": is_int,
          "bool": lambda v: isinstance(v, bool),
          "list": lambda v: isinstance(v, list),
          "dict": lambda v: isinstance(v, dict)}[typ](obj[key])
    return check(ok, "%s.%s: %r is not %s" % (where, key, obj[key], typ))


def check_pairs(lst, where, extra=()):
    for i, p in enumerate(lst):
        w = "%s[%d]" % (where, i)
        if check(isinstance(p, dict), w + " is not an object"):
            want(p, "name", "str", w)
            want(p, "value", "str", w)
            for k, t in extra:
                want(p, k, t, w, optional=True)


COOKIE_EXTRA = (("path", "str"), ("domain", "str"), ("expires", "str"),
                ("httpOnly", "bool"), ("secure", "bool"), ("comment", "str"))


def check_har_structure(har):
    """Required fields and types of HAR 1.2 (softwareishard.com spec)."""
    if not want(har, "log", "dict", ""):
        return
    log = har["log"]
    check(log.get("version") == "1.2", "log.version %r" % log.get("version"))
    if want(log, "creator", "dict", "log"):
        want(log["creator"], "name", "str", "log.creator")
        want(log["creator"], "version", "str", "log.creator")
        check(log["creator"].get("name") == "ringcap", "creator.name")
    want(log, "pages", "list", "log", optional=True)
    if not want(log, "entries", "list", "log"):
        return
    for i, e in enumerate(log["entries"]):
        w = "entries[%d]" % i
        want(e, "pageref", "str", w, optional=True)
        if want(e, "startedDateTime", "str", w):
            check(ISO.match(e["startedDateTime"]),
                  "%s.startedDateTime %r" % (w, e["startedDateTime"]))
        want(e, "time", "num", w)
        want(e, "cache", "dict", w)
        want(e, "serverIPAddress", "str", w, optional=True)
        want(e, "connection", "str", w, optional=True)
        want(e, "comment", "str", w, optional=True)
        if want(e, "request", "dict", w):
            rq, wr = e["request"], w + ".request"
            for k, t in (("method", "str"), ("url", "str"),
                         ("httpVersion", "str"), ("cookies", "list"),
                         ("headers", "list"), ("queryString", "list"),
                         ("headersSize", "int"), ("bodySize", "int")):
                want(rq, k, t, wr)
            check_pairs(rq.get("cookies", []), wr + ".cookies", COOKIE_EXTRA)
            check_pairs(rq.get("headers", []), wr + ".headers")
            check_pairs(rq.get("queryString", []), wr + ".queryString")
            if want(rq, "postData", "dict", wr, optional=True):
                pd = rq["postData"]
                want(pd, "mimeType", "str", wr + ".postData")
                want(pd, "text", "str", wr + ".postData", optional=True)
                if want(pd, "params", "list", wr + ".postData",
                        optional=True):
                    check_pairs(pd["params"], wr + ".postData.params",
                                (("fileName", "str"),
                                 ("contentType", "str")))
        if want(e, "response", "dict", w):
            rs, wr = e["response"], w + ".response"
            for k, t in (("status", "int"), ("statusText", "str"),
                         ("httpVersion", "str"), ("cookies", "list"),
                         ("headers", "list"), ("content", "dict"),
                         ("redirectURL", "str"), ("headersSize", "int"),
                         ("bodySize", "int")):
                want(rs, k, t, wr)
            check_pairs(rs.get("cookies", []), wr + ".cookies", COOKIE_EXTRA)
            check_pairs(rs.get("headers", []), wr + ".headers")
            c = rs.get("content", {})
            want(c, "size", "int", wr + ".content")
            want(c, "mimeType", "str", wr + ".content")
            want(c, "compression", "int", wr + ".content", optional=True)
            want(c, "text", "str", wr + ".content", optional=True)
            if want(c, "encoding", "str", wr + ".content", optional=True):
                check(c["encoding"] == "base64", wr + ".content.encoding")
        if want(e, "timings", "dict", w):
            t, wt = e["timings"], w + ".timings"
            total = 0.0
            for k in ("send", "wait", "receive"):
                if want(t, k, "num", wt):
                    check(t[k] >= 0, "%s.%s = %r" % (wt, k, t[k]))
                    total += t[k]
            for k in ("blocked", "dns", "connect", "ssl"):
                if want(t, k, "num", wt, optional=True):
                    check(t[k] == -1 or t[k] >= 0, "%s.%s = %r" % (wt, k, t[k]))
                    if k != "ssl" and t[k] > 0:
                        total += t[k]
            if is_num(e.get("time")):
                check(abs(e["time"] - total) < 0.01,
                      "%s.time %r != sum of timings %r" % (w, e["time"], total))


# ---- HAR content ------------------------------------------------------------

def har_body(content):
    text = content.get("text", "")
    if content.get("encoding") == "base64":
        return base64.b64decode(text)
    return text.encode("utf-8")


def pairs(lst):
    return [(p["name"], p["value"]) for p in lst]


def check_har_content(har, flows, sent, stderr):
    entries = har["log"]["entries"]
    http = [f for f in flows if f["type"] == "http" and "request" in f]
    tcp = [f for f in flows if f["type"] == "tcp"]
    check(len(entries) == len(http),
          "HAR has %d entries for %d http flows" % (len(entries), len(http)))
    check(len(tcp) == 1, "one tcp flow recorded (got %d)" % len(tcp))
    check("skipped 1 tcp flows" in stderr,
          "export --har says it skipped the tcp flow: %r" % stderr)
    by_id = {e["_ringcap"]["id"]: e for e in entries}
    bport = sent["bport"]
    seen = set()
    for f in http:
        e = by_id.get(f["id"])
        if not check(e is not None, "flow %s not in the HAR" % f["id"]):
            continue
        rq, rs = e["request"], e["response"]
        w = "%s %s" % (rq["method"], rq["url"])
        check(rq["method"] == f["request"]["method"], w + ": method")
        check(pairs(rq["headers"]) == [tuple(h) for h in
                                       f["request"]["headers"]],
              w + ": request headers differ from the log")
        check(rq["bodySize"] == f["request"]["content_length"], w + ": bodySize")
        if "response" in f:
            check(rs["status"] == f["response"]["status"], w + ": status")
            check(rs["statusText"] == f["response"]["reason"], w + ": reason")
            check(pairs(rs["headers"]) == [tuple(h) for h in
                                           f["response"]["headers"]],
                  w + ": response headers differ from the log")
            check(har_body(rs["content"]) ==
                  base64.b64decode(f["response"]["content"]),
                  w + ": response body differs from the log")
            check(rs["content"]["size"] == f["response"]["content_length"],
                  w + ": content.size")
        path = rq["url"].split("%d" % bport, 1)[-1]
        if path == "/echo?a=1&b=x%20y":
            seen.add("get")
            check(pairs(rq["cookies"]) == [("a", "1"), ("b", "two")],
                  w + ": cookies %r" % rq["cookies"])
            check(pairs(rq["queryString"]) == [("a", "1"), ("b", "x y")],
                  w + ": queryString %r" % rq["queryString"])
            doc = json.loads(rs["content"]["text"])
            check(doc["method"] == "GET" and doc["path"].endswith(path),
                  w + ": backend saw %r" % doc)
            check(rs["content"]["mimeType"] == "application/json",
                  w + ": mimeType")
            check(e.get("serverIPAddress") == "127.0.0.1", w + ": server IP")
            check(e["timings"]["connect"] >= 0, w + ": connect timing")
        elif path == "/echo" and rq["method"] == "POST":
            seen.add("post")
            pd = rq["postData"]
            check(pd["text"] == POST_FORM.decode(), w + ": postData.text")
            check(pairs(pd["params"]) == [("hello", "world"),
                                          ("name", "caf\u00e9 au lait")],
                  w + ": postData.params %r" % pd["params"])
            doc = json.loads(rs["content"]["text"])
            check(doc["body_length"] == len(POST_FORM), w + ": backend body")
        elif path == "/nope":
            seen.add("404")
            check(rs["status"] == 404 and
                  rs["content"]["text"] == "not found\n", w + ": 404 body")
        elif path == "/bytes/300":
            seen.add("binary response")
            check(rs["content"].get("encoding") == "base64",
                  w + ": binary body not base64")
            check(har_body(rs["content"]) == backend.payload(300),
                  w + ": binary body differs from what the backend sent")
        elif path == "/sink":
            seen.add("binary request")
            pd = rq["postData"]
            check(pd.get("encoding") == "base64" and
                  base64.b64decode(pd["text"]) == POST_BIN,
                  w + ": binary request body")
        elif ":%d/" % sent["refused_port"] in rq["url"]:
            seen.add("refused")
            check(rs["status"] == 0, w + ": status of an error flow")
            check("refused" in rs.get("_error", ""), w + ": _error %r" %
                  rs.get("_error"))
            check("serverIPAddress" not in e, w + ": server IP of a refused flow")
    check(seen == {"get", "post", "404", "binary response", "binary request",
                   "refused"}, "HAR cases seen: %r" % sorted(seen))


# ---- mitmproxy ------------------------------------------------------------

def mitm_python():
    """The interpreter mitmdump runs on (Debian's /usr/bin/python3; the
    python3 on PATH may be another one without mitmproxy)."""
    path = shutil.which("mitmdump")
    with open(path, "rb") as f:
        first = f.readline().decode().strip()
    argv = first[2:].split() if first.startswith("#!") else []
    if not argv or os.path.basename(argv[0]) == "env":
        return argv[1] if len(argv) > 1 else "python3"
    return argv[0]


LOADER = r"""
import base64, json, sys
from mitmproxy import io, http, tcp
out = []
def b64(b):
    return None if b is None else base64.b64encode(b).decode()
def hdrs(h):
    return [[k.decode("latin-1"), v.decode("latin-1")] for k, v in h.fields]
with open(sys.argv[1], "rb") as fo:
    for f in io.FlowReader(fo).stream():
        d = {"class": type(f).__name__, "id": f.id, "type": f.type,
             "client": list(f.client_conn.peername or ()),
             "client_ts_start": f.client_conn.timestamp_start,
             "server_address": list(f.server_conn.address or ()),
             "server_ip": list(f.server_conn.peername or ()),
             "error": f.error.msg if f.error else None,
             "metadata": f.metadata}
        if isinstance(f, http.HTTPFlow):
            r = f.request
            d["request"] = {"method": r.method, "url": r.url,
                            "host": r.host, "port": r.port, "path": r.path,
                            "http_version": r.http_version,
                            "headers": hdrs(r.headers), "content": b64(r.raw_content),
                            "ts_start": r.timestamp_start, "ts_end": r.timestamp_end}
            if f.response:
                s = f.response
                d["response"] = {"status": s.status_code, "reason": s.reason,
                                 "headers": hdrs(s.headers), "content": b64(s.raw_content),
                                 "ts_start": s.timestamp_start, "ts_end": s.timestamp_end}
        else:
            d["messages"] = len(f.messages)
        out.append(d)
json.dump(out, sys.stdout)
"""


def ts_eq(a, b):
    if not b:  # 0 / None in the log: not happened
        return a is None
    return a is not None and abs(a - b) < 2e-6


def check_mitm_loaded(mflows, flows):
    by_id = {m["id"]: m for m in mflows}
    expect = [f for f in flows if f["type"] == "tcp" or "request" in f]
    check(len(mflows) == len(expect),
          "mitmproxy loaded %d flows, ringcap has %d" % (len(mflows), len(expect)))
    for f in expect:
        m = by_id.get(f["id"])
        if not check(m is not None, "flow %s not loaded by mitmproxy" % f["id"]):
            continue
        w = "mitmproxy flow %s" % f["id"][:8]
        check(m["client"] == f["client"]["peer"], w + ": client address %r"
              % m["client"])
        check(ts_eq(m["client_ts_start"], f["client"]["ts_start"]),
              w + ": client timestamp_start")
        if f["type"] == "tcp":
            check(m["class"] == "TCPFlow" and m["messages"] == 0, w + ": TCPFlow")
            check(m["server_address"] == [f["tcp"]["host"], f["tcp"]["port"]],
                  w + ": tunnel target %r" % m["server_address"])
            check(m["metadata"]["ringcap"]["bytes_up"] == f["tcp"]["bytes_up"]
                  and m["metadata"]["ringcap"]["bytes_down"] ==
                  f["tcp"]["bytes_down"], w + ": byte counts in metadata")
            continue
        check(m["class"] == "HTTPFlow", w + ": class " + m["class"])
        rq, mr = f["request"], m["request"]
        check(mr["method"] == rq["method"], w + ": method")
        check(mr["host"] == rq["host"] and mr["port"] == rq["port"] and
              mr["path"] == rq["path"], w + ": host/port/path")
        check(mr["headers"] == rq["headers"], w + ": request headers")
        check(mr["content"] == rq["content"], w + ": request content")
        check(ts_eq(mr["ts_start"], rq["ts_start"]), w + ": request ts_start")
        check(ts_eq(mr["ts_end"], rq["ts_end"]), w + ": request ts_end")
        if "server" in f:
            check(m["server_ip"] == f["server"]["peer"], w + ": server ip")
        if "response" in f:
            rs, ms = f["response"], m.get("response")
            if check(ms is not None, w + ": response missing"):
                check(ms["status"] == rs["status"], w + ": status")
                check(ms["reason"] == rs["reason"], w + ": reason")
                check(ms["headers"] == rs["headers"], w + ": response headers")
                check(ms["content"] == rs["content"], w + ": response content")
                check(ts_eq(ms["ts_start"], rs["ts_start"]), w + ": response ts_start")
                check(ts_eq(ms["ts_end"], rs["ts_end"]), w + ": response ts_end")
        else:
            check("response" not in m, w + ": unexpected response")
        if "error" in f:
            check(m["error"] == f["error"]["msg"], w + ": error %r" % m["error"])
            check(m["metadata"]["ringcap"]["error_name"] == f["error"]["name"],
                  w + ": error name in metadata")
        else:
            check(m["error"] is None, w + ": unexpected error")


READ_LINE = re.compile(r"^(\S+): (\S+) (\S+) HTTP/\S+ << (.*)$")


def ringcap_lines(text):
    """(client, method, url, outcome) from `ringcap read`, http flows."""
    out = []
    for line in text.splitlines():
        m = READ_LINE.match(line)
        if not m:
            continue  # tcp flows: "... CONNECT host:port tcp ..."
        rest = m.group(4)
        if rest.startswith("error: "):
            outcome = ("error", re.sub(r" \([A-Z0-9_]+\)$", "", rest[7:]))
        else:
            outcome = ("status", int(rest.split()[0]))
        out.append((m.group(1), m.group(2), m.group(3), outcome))
    return sorted(out)


MITM_REQ = re.compile(r"^(\S+): (\S+) (\S+)( HTTP/\S+)?$")


def mitmdump_lines(text):
    out, cur = [], None
    for line in text.splitlines():
        m = MITM_REQ.match(line)
        if m:
            cur = (m.group(1), m.group(2), m.group(3))
            continue
        s = line.strip()
        if s.startswith("<< ") and cur:
            rest = s[3:]
            first = rest.split()[0]
            if first.isdigit():
                outcome = ("status", int(first))
            else:
                outcome = ("error", rest)
            out.append(cur + (outcome,))
            cur = None
        elif s:
            out.append(("unexpected line", s, "", ("", 0)))
    return sorted(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bin", default="build/cli/ringcap")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    a = ap.parse_args()
    bin_ = os.path.abspath(a.bin)
    if not shutil.which("mitmdump"):
        print("SKIP: mitmdump not installed (apt-get install mitmproxy)")
        return 77
    if not shutil.which("curl"):
        print("SKIP: curl not installed")
        return 77
    tmp = tempfile.mkdtemp(prefix="rc-export-")
    try:
        log, sent = record(bin_, tmp)
        cp = run([bin_, "read", "--json", log])
        check(cp.returncode == 0, "ringcap read --json: %s" % cp.stderr)
        flows = [json.loads(x) for x in cp.stdout.decode().splitlines()]
        read_text = run([bin_, "read", log]).stdout.decode()

        # HAR
        cp = run([bin_, "export", "--har", log])
        check(cp.returncode == 0, "export --har exit %d: %s" %
              (cp.returncode, cp.stderr))
        try:
            har = json.loads(cp.stdout)
        except ValueError as e:
            check(False, "HAR is not JSON: %s" % e)
            har = None
        if har is not None:
            check_har_structure(har)
            if not FAILURES:
                check_har_content(har, flows, sent, cp.stderr.decode())

        # mitmproxy flow file
        out = os.path.join(tmp, "out.flow")
        with open(out, "wb") as fo:
            cp = subprocess.run([bin_, "export", "--mitmproxy", log],
                                stdout=fo, stderr=subprocess.PIPE)
        check(cp.returncode == 0, "export --mitmproxy exit %d: %s" %
              (cp.returncode, cp.stderr))
        home = os.path.join(tmp, "home")
        os.mkdir(home)
        env = dict(os.environ, HOME=home, COLUMNS="250", TERM="dumb")
        cp = run(["mitmdump", "-nr", out], env=env, timeout=120)
        mtext = cp.stdout.decode("utf-8", "replace")
        print("mitmdump -nr out.flow printed:\n" + mtext, end="")
        check(cp.returncode == 0, "mitmdump exit %d: %s" %
              (cp.returncode, cp.stderr.decode("utf-8", "replace")))
        want_lines = ringcap_lines(read_text)
        got_lines = mitmdump_lines(mtext)
        check(len(want_lines) == len(flows) - 1,
              "ringcap read printed %d http lines" % len(want_lines))
        check(got_lines == want_lines,
              "mitmdump lines differ from ringcap read:\n  mitmdump: %r\n"
              "  ringcap:  %r" % (got_lines, want_lines))

        cp = run([mitm_python(), "-c", LOADER, out], env=env, timeout=120)
        if check(cp.returncode == 0, "mitmproxy FlowReader failed: %s" %
                 cp.stderr.decode("utf-8", "replace")):
            check_mitm_loaded(json.loads(cp.stdout), flows)
    finally:
        if a.keep:
            print("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        print("%d check(s) failed" % len(FAILURES))
        return 1
    print("ok: export --har and --mitmproxy, %d checks" % CHECKS[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
