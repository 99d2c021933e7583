#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Regenerates tests/fuzz/corpus/h2up/: seeds for fuzz_h2up (see the input
# shape at the top of fuzz_h2up.c). Raw seeds carry a server byte stream
# of real HTTP/2 frames (SETTINGS first, HPACK with literal fields and
# static-table references, no Huffman) for the streams the script opens
# (ids 1, 3, 5, ...); F_SERVER seeds carry server-session operations.
# Plain Python.
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "h2up")

F_SETTINGS, F_SMALL_WINDOW, F_SMALL_REQBUF, F_END_IN_CB, F_SERVER = (
    1, 2, 4, 8, 16)

DATA, HEADERS, PRIORITY, RST, SETTINGS, PUSH, PING, GOAWAY, WU, CONT = range(10)
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def frame(ftype, flags, sid, payload=b""):
    return (struct.pack(">I", len(payload))[1:] + bytes([ftype, flags])
            + struct.pack(">I", sid) + payload)


def hint(v, prefix, first=0):
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


def block(fields):
    out = b""
    for f in fields:
        if isinstance(f, int):
            out += hint(f, 7, 0x80)  # static table index
        else:
            out += b"\x00" + hstr(f[0]) + hstr(f[1])
    return out


STATUS = {b"200": 8, b"204": 9, b"206": 10, b"304": 11, b"400": 12,
          b"404": 13, b"500": 14}


def resp(sid, status=b"200", fields=(), end=False):
    f = [STATUS[status]] if status in STATUS else [(b":status", status)]
    return frame(HEADERS, END_HEADERS | (END_STREAM if end else 0), sid,
                 block(f + list(fields)))


def data(sid, payload, end=False):
    return frame(DATA, END_STREAM if end else 0, sid, payload)


SRV_SETTINGS = frame(SETTINGS, 0, 0) + frame(SETTINGS, ACK, 0)

# script operations (see the switch in fuzz_h2up.c)
def op_open(k):
    return bytes([k << 3 | 0])


def op_send_all(i=0):
    return bytes([(16 | i) << 3 | 1])


def op_send(i, n):
    return bytes([i << 3 | 1, n - 1])


def op_take_all(i=0):
    return bytes([(16 | i) << 3 | 2])


def op_take_half(i=0):
    return bytes([i << 3 | 2])


def op_end(i=0):
    return bytes([i << 3 | 3])


def op_feed(n):  # n in 1..31; 32: all
    return bytes([(n - 1) << 3 | 4])


FEED_ALL = op_feed(32)


def op_drain(arg=31):
    return bytes([arg << 3 | 5])


def op_feed_big(k):
    return bytes([6, k])


RESET_ALL = bytes([7])
CHECK_COUNT = bytes([1 << 3 | 7])


def seed(name, flags, server, script):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes([flags]) + struct.pack(">H", len(server)) + server
                + script)


def raw(name, server, script, flags=0):
    seed(name, flags, SRV_SETTINGS + server, script)


def main():
    os.makedirs(OUT, exist_ok=True)
    get = op_open(0) + op_send_all() + op_drain()
    cl = [(b"content-length", b"5")]
    raw("get-content-length", resp(1, fields=cl) + data(1, b"hello", True),
        get + FEED_ALL + op_take_all() + op_end())
    raw("get-chunked", resp(1, b"404", [(b"x-a", b"b")]) + data(1, b"hel")
        + data(1, b"lo", True),
        get + op_feed(9) + op_feed(20) + op_take_half() + FEED_ALL
        + op_take_all())
    raw("end-on-headers", resp(1, end=True), get + FEED_ALL + op_take_all())
    raw("head", resp(1, fields=[(b"content-length", b"42")], end=True),
        op_open(1) + op_send_all() + op_drain() + FEED_ALL + op_take_all())
    raw("trailers", resp(1, fields=[(b"trailer", b"x-t")] + cl)
        + data(1, b"hello") + frame(HEADERS, END_HEADERS | END_STREAM, 1,
                                    block([(b"x-t", b"1")])),
        get + FEED_ALL + op_take_all())
    raw("grpc", resp(1, fields=[(b"content-type", b"application/grpc")])
        + data(1, b"\x00\x00\x00\x00\x01x")
        + frame(HEADERS, END_HEADERS | END_STREAM, 1,
                block([(b"grpc-status", b"0")])),
        get + FEED_ALL + op_take_all())
    raw("continue", resp(1, b"100") + resp(1, b"103", [(b"link", b"</a>")])
        + resp(1, b"201", cl) + data(1, b"hello", True),
        op_open(5) + op_send(0, 40) + op_drain() + op_feed(18)
        + op_take_all() + op_send_all() + FEED_ALL + op_take_all(),
        F_END_IN_CB)
    raw("reset-mid-body", resp(1) + data(1, b"part")
        + frame(RST, 0, 1, struct.pack(">I", 2)),
        get + FEED_ALL + op_take_all() + op_end())
    raw("goaway", resp(1, fields=cl) + frame(GOAWAY, 0, 0,
                                             struct.pack(">II", 1, 0))
        + data(1, b"hello", True),
        get + op_open(0) + op_open(2) + op_send_all(1) + op_send_all(2)
        + op_drain() + FEED_ALL + op_take_all() + CHECK_COUNT, F_END_IN_CB)
    raw("window", frame(WU, 0, 0, struct.pack(">I", 1000))
        + frame(WU, 0, 1, struct.pack(">I", 1000)) + resp(1)
        + data(1, b"x" * 300, True),
        op_open(5) + op_send_all() + op_drain() + FEED_ALL + op_take_half()
        + op_drain() + op_take_all(), F_SMALL_WINDOW | F_SMALL_REQBUF)
    raw("many-streams", b"".join(resp(s, fields=cl) + data(s, b"hello", True)
                                 for s in (1, 3, 5, 7)),
        op_open(0) + op_open(3) + op_open(4) + op_open(6)
        + b"".join(op_send_all(i) for i in range(4)) + op_drain()
        + op_feed_big(10) + op_take_all(1) + op_end(2) + FEED_ALL
        + op_take_all(0) + op_take_all(1) + CHECK_COUNT)
    raw("ping-settings", frame(PING, 0, 0, b"12345678")
        + frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 10)) + resp(1, end=True),
        get + FEED_ALL + RESET_ALL)
    raw("big-fields", resp(1, fields=[(b"x-big", b"v" * 3000)] * 3
                           + cl) + data(1, b"hello", True),
        get + FEED_ALL + op_take_all())
    seed("garbage", 0, b"HTTP/1.1 200 OK\r\n\r\n", get + FEED_ALL)
    seed("settings-flag", F_SETTINGS, resp(1, end=True),
         get + FEED_ALL + op_take_all())
    # a real server session: window byte, then (op, a1, a2) triples
    seed("server-basic", F_SERVER, bytes([255, 0, 0, 0x40, 1, 1, 0x21]),
         op_open(0) + op_open(2) + op_open(3) + op_send_all(0)
         + op_send_all(1) + op_send_all(2) + op_feed(32) + op_take_all(0)
         + op_take_all(1) + op_take_all(2))
    seed("server-interim-trailers", F_SERVER | F_END_IN_CB,
         bytes([255, 1, 0, 0x87, 2, 1, 0xC5]),
         op_open(5) + op_send_all() + op_open(3) + op_send_all(1)
         + op_feed(32) + op_take_all(0) + op_take_all(1))
    seed("server-resets", F_SERVER, bytes([4, 3, 0, 8, 4, 1, 0, 0, 1, 0,
                                           5, 0, 3, 7, 3, 9]),
         op_open(0) + op_open(1) + op_open(6) + op_send_all(0)
         + op_send_all(1) + op_send_all(2) + op_feed(32))
    seed("server-small-window", F_SERVER | F_SMALL_WINDOW | F_SMALL_REQBUF,
         bytes([1, 0, 0, 0x40, 5, 1, 200, 5, 0, 0]),
         op_open(2) + op_open(5) + op_send(0, 30) + op_send_all(1)
         + op_feed(32) + op_take_half(0) + op_take_all(1))


if __name__ == "__main__":
    main()
