#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Regenerates tests/fuzz/corpus/dns/: real queries from dig and the answers
# of a local dnsmasq (loopback only, no upstream), recorded by a UDP relay
# that sits between them and keeps each datagram. Needs dig and dnsmasq.
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "dns")
DNSMASQ_PORT = 5399

# name -> dig arguments
QUERIES = {
    "a": ["example.test", "A"],
    "aaaa": ["example.test", "AAAA"],
    "cname": ["www.example.test", "A"],
    "mx": ["example.test", "MX"],
    "txt": ["example.test", "TXT"],
    "ptr": ["-x", "127.0.0.9"],
    "ptr6": ["-x", "fd00::9"],
    "nxdomain": ["nope.invalid", "A"],
    "srv": ["_http._tcp.example.test", "SRV"],
    "noedns": ["+noedns", "example.test", "A"],
    "norec-cookie": ["+norecurse", "+cookie", "example.test", "A"],
    "mixedcase": ["ExAmPlE.TeSt", "A"],
}

DNSMASQ_ARGS = [
    "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
    "--listen-address=127.0.0.1", "--bind-interfaces",
    f"--port={DNSMASQ_PORT}",
    "--address=/example.test/127.0.0.9",
    "--address=/example.test/fd00::9",
    "--address=/invalid/",
    "--cname=www.example.test,example.test",
    "--mx-host=example.test,mail.example.test,10",
    "--txt-record=example.test,v=spf1 -all,second \"quoted\" string",
    "--ptr-record=9.0.0.127.in-addr.arpa,host9.example.test",
    "--ptr-record=9.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa,host9v6.example.test",
    "--srv-host=_http._tcp.example.test,example.test,80,0,5",
]


def relay(sock, stop, got):
    """Forward each datagram from dig to dnsmasq and back, keeping both."""
    up = ("127.0.0.1", DNSMASQ_PORT)
    sock.settimeout(0.2)
    client = None
    while not stop.is_set():
        try:
            data, addr = sock.recvfrom(65535)
        except socket.timeout:
            continue
        if addr == up:
            got.append(("response", data))
            if client:
                sock.sendto(data, client)
        else:
            client = addr
            got.append(("query", data))
            sock.sendto(data, up)


def main():
    for tool in ("dig", "dnsmasq"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            sys.exit(f"{tool} not found (apt-get install bind9-dnsutils dnsmasq-base)")
    os.makedirs(OUT, exist_ok=True)
    dnsmasq = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    pidfile = tempfile.mktemp()
    srv = subprocess.Popen([dnsmasq, f"--pid-file={pidfile}"] + DNSMASQ_ARGS,
                           stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        for name, args in QUERIES.items():
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            stop, got = threading.Event(), []
            t = threading.Thread(target=relay, args=(sock, stop, got))
            t.start()
            subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+tries=1",
                            "+time=2"] + args, stdout=subprocess.DEVNULL,
                           check=False)
            stop.set()
            t.join()
            sock.close()
            for kind, data in got[:2]:
                path = os.path.join(OUT, f"{kind}-{name}")
                with open(path, "wb") as f:
                    f.write(data)
                print(f"{path}: {len(data)} bytes")
    finally:
        srv.terminate()
        srv.wait()


if __name__ == "__main__":
    main()
