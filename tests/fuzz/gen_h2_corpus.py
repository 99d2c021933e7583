#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Regenerates tests/fuzz/corpus/h2/: seeds for fuzz_h2 (see the input
# shape at the top of fuzz_h2.c). Each seed is a client byte stream made
# of real HTTP/2 frames (HPACK with literal fields and static-table
# references, no Huffman) and a script of engine operations. Plain Python.
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "h2")

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
F_PREFACE, F_SMALL_RESP, F_SMALL_WINDOW, F_REFUSE, F_EAGER, F_FEW = (
    1, 2, 4, 8, 16, 32)
F_CLIENT = 64

DATA, HEADERS, PRIORITY, RST, SETTINGS, PUSH, PING, GOAWAY, WU, CONT = range(10)
END_STREAM, END_HEADERS, PADDED, PRIO, ACK = 0x1, 0x4, 0x8, 0x20, 0x1


def frame(ftype, flags, sid, payload=b""):
    return (struct.pack(">I", len(payload))[1:] + bytes([ftype, flags])
            + struct.pack(">I", sid) + payload)


def hint(v, prefix, first=0):
    """HPACK integer with an N-bit prefix."""
    mx = (1 << prefix) - 1
    if v < mx:
        return bytes([first | v])
    out = [first | mx]
    v -= mx
    while v >= 128:
        out.append(v % 128 + 128)
        v //= 128
    out.append(v)
    return bytes(out)


def hstr(s):
    return hint(len(s), 7) + s


def literal(name, value, index=False):
    # 0x40: with incremental indexing; 0x00: without indexing
    return bytes([0x40 if index else 0x00]) + hstr(name) + hstr(value)


def block(fields):
    out = b""
    for f in fields:
        if isinstance(f, int):  # static table index
            out += hint(f, 7, 0x80)
        else:
            out += literal(*f)
    return out


def settings(*pairs):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v)
                                          for k, v in pairs))


def req(sid, method=b"GET", path=b"/", extra=(), end=True, auth=b"h.test"):
    f = [(b":method", method), (b":scheme", b"https"), (b":path", path)]
    if auth:
        f.append((b":authority", auth))
    f += list(extra)
    return frame(HEADERS, END_HEADERS | (END_STREAM if end else 0), sid,
                 block(f))


def data(sid, payload, end=False):
    return frame(DATA, END_STREAM if end else 0, sid, payload)


def wu(sid, n):
    return frame(WU, 0, sid, struct.pack(">I", n))


HELLO = settings((3, 100), (4, 1 << 20)) + frame(SETTINGS, ACK, 0)


# ---- scripts ----

def feed_all():
    return bytes([(31 << 3) | 0])


def feed_small(n, times):
    return bytes([((n - 1) << 3) | 0]) * times


def respond(k, body):
    out = b""
    while body:
        piece, body = body[:255], body[255:]
        out += bytes([(k << 3) | 1, len(piece)]) + piece
    return out


def end(k, ok=True):
    return bytes([((k & 15) | (0 if ok else 16)) << 3 | 2])


def take(k, half=False):
    return bytes([((k & 15) | (16 if half else 0)) << 3 | 3])


def canned(k):
    return bytes([(k << 3) | 4])


def shutdown():
    return bytes([5])


def reset_all():
    return bytes([(1 << 3) | 5])


def seed(flags, client, script):
    return bytes([flags]) + struct.pack(">H", len(client)) + client + script


SEEDS = {}

SEEDS["get"] = seed(F_PREFACE, HELLO + req(1), feed_all() + take(0) + respond(
    0, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello") + end(0))

SEEDS["get-static"] = seed(F_PREFACE, HELLO + frame(
    HEADERS, END_HEADERS | END_STREAM, 1, block([2, 7, 4, (b":authority", b"x")])),
    feed_all() + canned(0) + end(0))

SEEDS["get-bytewise"] = seed(
    F_PREFACE, HELLO + req(1, extra=[(b"cookie", b"a=1"), (b"cookie", b"b=2")]),
    feed_small(1, 120) + feed_all() + take(0) + respond(
        0, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    + end(0))

SEEDS["post-cl"] = seed(
    F_PREFACE, HELLO + req(1, b"POST", b"/up", [(b"content-length", b"11")],
                           end=False) + data(1, b"hello world", end=True),
    feed_all() + take(0) + respond(
        0, b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n") + end(0))

SEEDS["post-chunked-trailers"] = seed(
    F_PREFACE, HELLO + req(1, b"POST", b"/c", end=False)
    + data(1, b"a" * 50) + data(1, b"b" * 30)
    + frame(HEADERS, END_HEADERS | END_STREAM, 1,
            block([(b"x-sum", b"80"), (b"x-more", b"yes")])),
    feed_small(7, 40) + feed_all() + take(0, half=True) + take(0)
    + respond(0, b"HTTP/1.1 200 OK\r\n\r\nclose-delimited") + end(0))

SEEDS["post-end-on-headers"] = seed(
    F_PREFACE, HELLO + req(1, b"POST") + req(3, b"PUT") + req(5, b"DELETE"),
    feed_all() + take(0) + take(1) + take(2) + canned(0) + canned(1)
    + respond(2, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
    + end(0) + end(0) + end(0, ok=False))

SEEDS["connect"] = seed(
    F_PREFACE, HELLO + frame(HEADERS, END_HEADERS, 1, block(
        [(b":method", b"CONNECT"), (b":authority", b"h.test:443")]))
    + req(3), feed_all() + canned(0) + end(0))

_fc1 = (HELLO + req(1, b"POST", b"/w", [(b"content-length", b"150")], end=False)
        + data(1, b"x" * 50) + data(1, b"y" * 50))
_fc2 = wu(0, 1 << 20) + wu(1, 1000) + data(1, b"z" * 50, end=True)
SEEDS["flow-control"] = seed(
    F_PREFACE | F_SMALL_RESP | F_SMALL_WINDOW, _fc1 + _fc2,
    feed_small(16, len(_fc1) // 16) + feed_small(1, len(_fc1) % 16)
    + take(0) + feed_all() + take(0)
    + respond(0, b"HTTP/1.1 200 OK\r\nContent-Length: 600\r\n\r\n" + b"q" * 600)
    + end(0))

SEEDS["client-reset"] = seed(
    F_PREFACE, HELLO + req(1, b"POST", end=False) + data(1, b"part")
    + frame(RST, 0, 1, struct.pack(">I", 8)) + req(3),
    feed_all() + canned(0) + end(0))

SEEDS["many"] = seed(
    F_PREFACE | F_FEW,
    HELLO + b"".join(req(i, path=b"/%d" % i) for i in range(1, 40, 2)),
    feed_small(16, 16) + canned(0) + end(0) + feed_all()
    + b"".join(canned(i) for i in range(5)) + end(1) + end(2, ok=False)
    + shutdown())

SEEDS["refuse-eager"] = seed(
    F_PREFACE | F_REFUSE | F_EAGER,
    HELLO + b"".join(req(i) for i in range(1, 12, 2)),
    feed_all() + end(0) + end(1) + reset_all())

SEEDS["ping-priority-goaway"] = seed(
    F_PREFACE, HELLO + frame(PING, 0, 0, b"12345678")
    + frame(PRIORITY, 0, 1, struct.pack(">IB", 0, 15)) + req(1)
    + frame(GOAWAY, 0, 0, struct.pack(">II", 1, 0)),
    feed_all() + canned(0) + end(0))

SEEDS["continuation-padded"] = seed(
    F_PREFACE, HELLO
    + frame(HEADERS, PADDED | PRIO, 1, bytes([3]) + struct.pack(">IB", 0, 15)
            + block([(b":method", b"GET"), (b":scheme", b"http")]) + b"\0\0\0")
    + frame(CONT, END_HEADERS, 1, block(
        [(b":path", b"/p"), (b"host", b"h.test"), (b"x-i", b"v", True)]))
    + frame(HEADERS, END_HEADERS | END_STREAM, 3, block(
        [2, 6, 4, (b"host", b"h.test"), 62])),
    feed_all() + canned(0) + canned(1) + end(0) + end(0))

SEEDS["garbage-after-preface"] = seed(
    F_PREFACE, data(0, b"xyz") + HELLO, feed_all())

SEEDS["bad-preface"] = seed(0, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", feed_all())

SEEDS["hop-by-hop"] = seed(
    F_PREFACE, HELLO + req(1, b"HEAD"),
    feed_all() + respond(0, b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n"
                         b"Keep-Alive: 5\r\nUpgrade: x\r\nTransfer-Encoding: chunked\r\n"
                         b"X-Mixed: V\r\n\r\n") + end(0))

SEEDS["switching"] = seed(
    F_PREFACE, HELLO + req(1),
    feed_all() + respond(0, b"HTTP/1.1 101 Switching Protocols\r\n"
                         b"Upgrade: websocket\r\n\r\n") + end(0, ok=False))


# ---- F_CLIENT seeds: the client stream is operations of a real client ----
# (see client_op() in fuzz_h2.c)
METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"]


def c_req(method, path=0, body=None, hold=False, cl=False, cookies=False):
    op = (METHODS.index(method) << 2) | (path << 5) | (1 if body is not None else 0)
    if cookies:
        op |= 0xc0
    out = bytes([op & 0xff])
    if body is not None:
        arg = (body // 37) & ~3 | (1 if hold else 0) | (2 if cl else 0)
        out += bytes([arg & 0xff])
    return out


def c_reset(k):
    return bytes([2, k])


def c_finish():
    return bytes([3])


SEEDS["client-get"] = seed(F_CLIENT, c_req("GET"), feed_all() + take(0)
                           + canned(0) + end(0))

SEEDS["client-post-trailers"] = seed(
    F_CLIENT, c_req("POST", body=37 * 8, cl=True),
    feed_all() + take(0) + respond(
        0, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-t\r\n\r\n"
           b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n") + end(0))

SEEDS["client-upload-early-response"] = seed(
    F_CLIENT | F_SMALL_WINDOW, c_req("PUT", body=37 * 40, hold=True) + c_finish(),
    feed_small(20, 10) + take(0)
    + respond(0, b"HTTP/1.1 413 Too Large\r\nContent-Length: 3\r\n\r\nbig")
    + end(0) + feed_all())

SEEDS["client-reset-upload"] = seed(
    F_CLIENT, c_req("POST", body=37 * 4, hold=True) + c_reset(0) + c_req("GET"),
    feed_small(31, 8) + feed_all() + canned(0) + end(0))

SEEDS["client-framings"] = seed(
    F_CLIENT | F_SMALL_RESP,
    c_req("GET", 1, cookies=True) + c_req("HEAD") + c_req("GET", 2)
    + c_req("DELETE") + c_req("OPTIONS", 3) + c_req("GET", 4),
    feed_all()
    + respond(0, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n"
              b"Connection: x-a\r\nX-A: 1\r\nTE: gzip\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    + respond(1, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    + respond(2, b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n")
    + respond(3, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\n" + b"c" * 300)
    + respond(4, b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n")
    + respond(5, b"HTTP/1.1 200 OK\r\nContent-Length: 600\r\n\r\n" + b"d" * 200)
    + end(0) + end(0) + end(0) + end(0) + end(0) + end(0, ok=False))


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, blob in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(blob)
    print("%d seeds in %s" % (len(SEEDS), OUT))


if __name__ == "__main__":
    main()
