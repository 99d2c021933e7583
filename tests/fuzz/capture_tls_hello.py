#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Regenerates tests/fuzz/corpus/tls_hello/: real ClientHellos from openssl
# s_client, curl, wget and python's ssl module, recorded on loopback by a
# socket that keeps the first records of each connection and hangs up.
import os
import socket
import ssl
import subprocess
import sys
import threading

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "tls_hello")


def hello_done(b):
    """True once b holds whole handshake records covering one message."""
    pos, msg = 0, b""
    while len(b) - pos >= 5:
        rlen = int.from_bytes(b[pos + 3:pos + 5], "big")
        if len(b) - pos - 5 < rlen:
            return False
        msg += b[pos + 5:pos + 5 + rlen]
        pos += 5 + rlen
        if len(msg) >= 4 and len(msg) >= 4 + int.from_bytes(msg[1:4], "big"):
            return True
    return False


def record(client):
    """Run |client| (a function of the port) and return its first bytes."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    port = ls.getsockname()[1]
    got = {}

    def serve():
        c, _ = ls.accept()
        c.settimeout(5)
        b = b""
        while not hello_done(b):
            d = c.recv(65536)
            if not d:
                break
            b += d
        got["b"] = b
        c.close()

    t = threading.Thread(target=serve)
    t.start()
    client(port)
    t.join(10)
    ls.close()
    return got["b"]


def run(*argv):
    def go(port):
        argv2 = [a.replace("PORT", str(port)) for a in argv]
        subprocess.run(argv2, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=10)
    return go


def py(server_hostname, alpn):
    def go(port):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if alpn:
            ctx.set_alpn_protocols(alpn)
        with socket.create_connection(("127.0.0.1", port)) as s:
            try:
                ctx.wrap_socket(s, server_hostname=server_hostname)
            except (ssl.SSLError, OSError):
                pass
    return go


SC = ["openssl", "s_client", "-connect", "127.0.0.1:PORT"]
LONG_ALPN = ",".join(["h2", "http/1.1"] + ["proto-%02d-padding-padding" % i for i in range(14)])
CLIENTS = {
    "openssl-tls13-sni-alpn": run(*SC, "-tls1_3", "-servername", "example.com",
                                  "-alpn", "h2,http/1.1"),
    "openssl-tls12-sni-alpn": run(*SC, "-tls1_2", "-servername", "example.com",
                                  "-alpn", "h2,http/1.1"),
    "openssl-default-nosni": run(*SC, "-noservername"),
    "openssl-ip-sni": run(*SC, "-servername", "127.0.0.1", "-alpn", "http/1.1"),
    "openssl-tls10": run(*SC, "-tls1", "-cipher", "DEFAULT@SECLEVEL=0",
                         "-servername", "old.example"),
    "openssl-frag512": run(*SC, "-max_send_frag", "512", "-servername",
                           "fragmented.example.com", "-alpn", LONG_ALPN),
    "curl": run("curl", "-sk", "--max-time", "3", "--resolve",
                "www.example.org:PORT:127.0.0.1", "https://www.example.org:PORT/"),
    "curl-http11": run("curl", "-sk", "--http1.1", "--max-time", "3", "--resolve",
                       "api.example.net:PORT:127.0.0.1", "https://api.example.net:PORT/"),
    "wget-gnutls": run("wget", "-q", "-t", "1", "-T", "3", "--no-check-certificate",
                       "-O", "/dev/null", "https://localhost:PORT/"),
    "python-sni-alpn": py("example.com", ["h2", "http/1.1"]),
    "python-nosni": py(None, None),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    names = sys.argv[1:] or list(CLIENTS)
    for name in names:
        b = record(CLIENTS[name])
        if not hello_done(b):
            print(f"{name}: no complete ClientHello ({len(b)} bytes)", file=sys.stderr)
            continue
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(b)
        print(f"{name}: {len(b)} bytes")


if __name__ == "__main__":
    main()
