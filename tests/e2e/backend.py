#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The origin server of the end-to-end suite: a threaded HTTP/1.1 server on raw
# sockets (stdlib only) with keep-alive, pipelining, chunked bodies both ways,
# Expect: 100-continue, and endpoints that misbehave on purpose (see README.md).
#
#   python3 tests/e2e/backend.py --port N      prints "ready PORT" when listening
#   ... --tls-cert FILE --tls-key FILE          the same over TLS (ALPN http/1.1)
#
# Also imported by run.py for payload() and the size parser.
import argparse
import hashlib
import json
import re
import socket
import ssl
import sys
import threading
import time

# Deterministic body content: a 65521-byte block (a prime, so off-by-a-power-
# of-two errors do not line up) repeated. payload(n)[:k] == payload(k).
_BLOCK_LEN = 65521
_BLOCK = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest()
                  for i in range(_BLOCK_LEN // 32 + 1))[:_BLOCK_LEN]
_BLOCK2 = _BLOCK * 2


def payload_slice(offset, n):
    """Bytes [offset, offset+n) of the infinite pattern, n <= _BLOCK_LEN."""
    o = offset % _BLOCK_LEN
    return _BLOCK2[o:o + n]


def payload_iter(total, chunk=_BLOCK_LEN):
    off = 0
    while off < total:
        n = min(chunk, total - off, _BLOCK_LEN)
        yield payload_slice(off, n)
        off += n


def payload(n):
    return b"".join(payload_iter(n))


def payload_sha256(n):
    h = hashlib.sha256()
    for c in payload_iter(n):
        h.update(c)
    return h.hexdigest()


def parse_size(s):
    """'1024', '1k', '512MiB', '1GiB', '2g' -> bytes."""
    m = re.fullmatch(r"(\d+)\s*([kmg]?)(?:i?b)?", s.strip().lower())
    if not m:
        raise ValueError("bad size %r" % s)
    return int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20,
                              "g": 1 << 30}[m.group(2)]


class BadRequest(Exception):
    pass


class Conn:
    """One client connection: a buffered reader over the socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    def _fill(self):
        if self.eof:
            return False
        data = self.sock.recv(262144)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def readline(self, limit=1 << 20):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            if len(self.buf) > limit:
                raise BadRequest("line too long")
            if not self._fill():
                if self.buf:
                    raise BadRequest("eof in line")
                return None

    def read_some(self, maxn):
        """Up to maxn bytes (at least 1), or b'' at EOF."""
        if not self.buf:
            if not self._fill():
                return b""
        n = min(maxn, len(self.buf))
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_exact(self, n):
        out = bytearray()
        while len(out) < n:
            d = self.read_some(n - len(out))
            if not d:
                raise BadRequest("eof in body")
            out += d
        return bytes(out)

    def send(self, data):
        self.sock.sendall(data)


def hdr(headers, name):
    name = name.lower()
    for n, v in headers:
        if n.lower() == name:
            return v
    return None


def read_request(c):
    """Returns (method, target, version, headers) or None at a clean EOF."""
    line = c.readline()
    while line in (b"\r\n", b"\n"):
        line = c.readline()
    if line is None:
        return None
    parts = line.rstrip(b"\r\n").split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise BadRequest("bad request line %r" % line[:80])
    method, target, version = (p.decode("latin-1") for p in parts)
    headers = []
    total = 0
    while True:
        line = c.readline()
        if line is None:
            raise BadRequest("eof in head")
        total += len(line)
        if total > 1 << 20:
            raise BadRequest("head too large")
        if line in (b"\r\n", b"\n"):
            break
        if b":" not in line:
            raise BadRequest("bad header line")
        n, v = line.rstrip(b"\r\n").split(b":", 1)
        headers.append([n.decode("latin-1"), v.strip().decode("latin-1")])
    return method, target, version, headers


def body_iter(c, headers):
    """Yields the decoded request body in pieces (chunked or Content-Length)."""
    te = hdr(headers, "transfer-encoding")
    if te is not None:
        if te.lower() != "chunked":
            raise BadRequest("unsupported transfer-encoding")
        while True:
            line = c.readline()
            if line is None:
                raise BadRequest("eof in chunk size")
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:  # trailers
                    t = c.readline()
                    if t is None or t in (b"\r\n", b"\n"):
                        return
            left = size
            while left:
                d = c.read_some(min(left, 262144))
                if not d:
                    raise BadRequest("eof in chunk")
                left -= len(d)
                yield d
            if c.readline() not in (b"\r\n", b"\n"):
                raise BadRequest("bad chunk end")
        return
    cl = hdr(headers, "content-length")
    if cl is None:
        return
    left = int(cl)
    while left:
        d = c.read_some(min(left, 262144))
        if not d:
            raise BadRequest("eof in body")
        left -= len(d)
        yield d


def has_body(headers):
    te = hdr(headers, "transfer-encoding")
    cl = hdr(headers, "content-length")
    return te is not None or (cl is not None and int(cl) > 0)


REASONS = {100: "Continue", 200: "OK", 201: "Created", 204: "No Content",
           301: "Moved Permanently", 302: "Found", 304: "Not Modified",
           400: "Bad Request", 404: "Not Found", 418: "I'm a teapot",
           500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable"}


class Handler:
    def __init__(self, sock, addr, server):
        self.c = Conn(sock)
        self.addr = addr
        self.server = server

    def head(self, status, headers, close):
        lines = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Status"))]
        for n, v in headers:
            lines.append("%s: %s" % (n, v))
        if close:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def respond(self, method, status, body, ctype="application/octet-stream",
                close=False, extra=()):
        hs = [("Content-Type", ctype), ("Content-Length", str(len(body)))]
        hs += list(extra)
        data = self.head(status, hs, close)
        if method != "HEAD":
            data += body
        self.c.send(data)

    def run(self):
        try:
            while True:
                req = read_request(self.c)
                if req is None:
                    return
                method, target, version, headers = req
                self.server.count += 1
                conn_h = (hdr(headers, "connection") or "").lower()
                close = ("close" in conn_h or
                         (version == "HTTP/1.0" and "keep-alive" not in conn_h))
                if (hdr(headers, "expect") or "").lower() == "100-continue" \
                        and has_body(headers):
                    self.c.send(b"HTTP/1.1 100 Continue\r\n\r\n")
                    self.sent_100 = True
                else:
                    self.sent_100 = False
                keep = self.dispatch(method, target, version, headers, close)
                if close or not keep:
                    return
        except BadRequest as e:
            try:
                msg = str(e).encode()
                self.c.send(self.head(400, [("Content-Length", str(len(msg)))],
                                      True) + msg)
            except OSError:
                pass
        except (OSError, ValueError):
            pass
        finally:
            try:
                self.c.sock.close()
            except OSError:
                pass

    def dispatch(self, method, target, version, headers, close):
        """Serves one request. Returns False when the connection must end."""
        path = target
        if "://" in path:  # absolute-form (we are not a proxy, but be lenient)
            path = "/" + path.split("://", 1)[1].split("/", 1)[-1]
        route = path.split("?", 1)[0]
        parts = route.strip("/").split("/")
        name, arg = parts[0], (parts[1] if len(parts) > 1 else "")

        if name == "echo":
            h = hashlib.sha256()
            n = 0
            for d in body_iter(self.c, headers):
                h.update(d)
                n += len(d)
            doc = {"method": method, "path": target, "http_version": version,
                   "headers": headers, "body_length": n,
                   "body_sha256": h.hexdigest(), "sent_100": self.sent_100,
                   "client": "%s:%d" % self.addr}
            if isinstance(self.c.sock, ssl.SSLSocket):  # --tls-cert
                doc["tls"] = {"sni": getattr(self.c.sock, "rc_sni", None),
                              "alpn": self.c.sock.selected_alpn_protocol(),
                              "version": self.c.sock.version()}
            self.respond(method, 200, json.dumps(doc).encode(),
                         "application/json", close)
            return True
        if name == "sink":
            h = hashlib.sha256()
            n = 0
            for d in body_iter(self.c, headers):
                h.update(d)
                n += len(d)
            doc = {"length": n, "sha256": h.hexdigest()}
            self.respond(method, 200, json.dumps(doc).encode(),
                         "application/json", close)
            return True

        # Every other endpoint ignores the request body.
        for _ in body_iter(self.c, headers):
            pass

        if name == "bytes":
            self.respond(method, 200, payload(parse_size(arg)), close=close)
            return True
        if name == "stream":
            n = parse_size(arg)
            self.c.send(self.head(200, [("Content-Type", "application/octet-stream"),
                                        ("Content-Length", str(n))], close))
            if method != "HEAD":
                for piece in payload_iter(n):
                    self.c.send(piece)
            return True
        if name == "chunked":
            n = parse_size(arg)
            self.c.send(self.head(200, [("Content-Type", "application/octet-stream"),
                                        ("Transfer-Encoding", "chunked"),
                                        ("Trailer", "X-Trailer")], close))
            if method == "HEAD":
                return True
            # several chunks of uneven sizes
            off, sizes, i = 0, [1, 7, 100, 4096, 65521], 0
            out = bytearray()
            while off < n:
                k = min(sizes[i % len(sizes)], n - off)
                out += b"%x\r\n" % k + payload_slice(off, k) + b"\r\n"
                off += k
                i += 1
                if len(out) > 65536:
                    self.c.send(bytes(out))
                    out.clear()
            if "trailer=0" in target:
                out += b"0\r\n\r\n"
            else:
                out += b"0\r\nX-Trailer: done\r\n\r\n"
            self.c.send(bytes(out))
            return True
        if name == "close":
            n = parse_size(arg)
            self.c.send(self.head(200, [("Content-Type", "application/octet-stream")],
                                  True))
            if method != "HEAD":
                for piece in payload_iter(n):
                    self.c.send(piece)
            return False
        if name == "status":
            st = int(arg)
            if st in (204, 304) or 100 <= st < 200:
                self.c.send(self.head(st, [], close))
            else:
                self.respond(method, st, b"status %d\n" % st, "text/plain", close)
            return True
        if name == "slow":
            time.sleep(int(arg) / 1000.0)
            self.respond(method, 200, b"slow %s\n" % arg.encode(), "text/plain",
                         close)
            return True
        if name == "head-ok":
            self.respond(method, 200, payload(1234), close=close)
            return True
        if name == "hang":
            # Never answer; wait for the peer to go away.
            while self.c.read_some(65536):
                pass
            return False
        if name == "then-close":
            # Looks keep-alive, then the server goes away (idle-timeout race).
            self.respond(method, 200, payload(parse_size(arg)), close=False)
            time.sleep(0.05)
            return False
        if name == "cut":
            # Announces N bytes, sends half, closes.
            n = parse_size(arg)
            self.c.send(self.head(200, [("Content-Type", "application/octet-stream"),
                                        ("Content-Length", str(n))], False))
            self.c.send(payload(n // 2))
            time.sleep(0.05)
            return False
        if name == "bigheader":
            n = parse_size(arg)
            self.c.send(self.head(200, [("X-Big", "h" * n), ("Content-Length", "2")],
                                  close) + b"ok")
            return True
        if name == "count":
            self.respond(method, 200, b"%d\n" % self.server.count, "text/plain",
                         close)
            return True
        self.respond(method, 404, b"not found\n", "text/plain", close)
        return True


def tls_context(cert, key):
    """Server side TLS for --tls-cert/--tls-key: ALPN http/1.1, the client's
    SNI kept on the socket (rc_sni) for /echo."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])

    def on_sni(sock, name, _ctx):
        sock.rc_sni = name
    ctx.sni_callback = on_sni
    return ctx


class Server:
    def __init__(self, port, host="127.0.0.1", tls=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(4096)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self.tls = tls  # an ssl.SSLContext: accepted connections speak TLS

    def handle(self, s, addr):
        """TLS handshake (in the connection's thread), then HTTP."""
        try:
            s.settimeout(30)
            s = self.tls.wrap_socket(s, server_side=True)
            s.settimeout(None)
        except (OSError, ValueError):
            s.close()
            return
        Handler(s, addr, self).run()

    def serve_forever(self):
        while True:
            try:
                s, addr = self.sock.accept()
            except OSError:
                return
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                t = threading.Thread(target=self.handle, args=(s, addr), daemon=True)
            else:
                t = threading.Thread(target=Handler(s, addr, self).run, daemon=True)
            t.start()


def main():
    ap = argparse.ArgumentParser(description="e2e test backend")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--tls-cert", help="PEM certificate (chain): serve TLS")
    ap.add_argument("--tls-key", help="PEM private key for --tls-cert")
    a = ap.parse_args()
    if bool(a.tls_cert) != bool(a.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    tls = tls_context(a.tls_cert, a.tls_key) if a.tls_cert else None
    srv = Server(a.port, a.host, tls)
    print("ready %d" % srv.port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
