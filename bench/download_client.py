#!/usr/bin/env python3
"""HTTP download load client for bench/download.sh: the same client measures every server.

Raw sockets, HTTP/1.1 keep-alive, one connection per stream, bodies read with
recv_into into a reused 1 MiB buffer (and discarded), so the client costs the same
per byte whatever server it talks to. `--streams N` splits the file into N byte
ranges fetched at once with `Range`, each stream on its own connection and thread
(recv releases the GIL); the round is repeated until `--seconds` have passed.
Every response's status and Content-Length are checked. Prints one JSON object.
"""

import argparse
import json
import socket
import threading
import time
from urllib.parse import urlsplit

BUF = 1 << 20


class Conn:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray(BUF)
        self.view = memoryview(self.buf)
        self.pending = b""

    def _headers(self):
        data = self.pending
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed in the headers")
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers, rest

    def get(self, host, path, start=None, end=None):
        """Fetches path (optionally bytes start..=end); returns the body length read."""
        req = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n"
        if start is not None:
            req += f"Range: bytes={start}-{end}\r\n"
        self.sock.sendall((req + "\r\n").encode())
        status, headers, rest = self._headers()
        expected_status = 200 if start is None else 206
        if status != expected_status:
            raise RuntimeError(f"status {status}, expected {expected_status}")
        length = int(headers["content-length"])
        if start is not None and length != end - start + 1:
            raise RuntimeError(f"content-length {length} for a {end - start + 1}-byte range")
        got = min(len(rest), length)
        self.pending = rest[got:]
        while got < length:
            n = self.sock.recv_into(self.view, min(BUF, length - got))
            if n == 0:
                raise RuntimeError("connection closed in the body")
            got += n
        return got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--size", type=int, required=True, help="file size in bytes")
    ap.add_argument("--streams", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    parts = urlsplit(args.url)
    host, port, path = parts.hostname, parts.port or 80, parts.path
    conns = [Conn(host, port) for _ in range(args.streams)]
    if args.streams == 1:
        ranges = [(None, None)]
    else:
        step = -(-args.size // args.streams)
        ranges = [(s, min(s + step, args.size) - 1) for s in range(0, args.size, step)]
    total = 0
    rounds = 0
    errors = []
    started = time.perf_counter()
    while time.perf_counter() - started < args.seconds:
        got = [0] * len(ranges)

        def run(i):
            try:
                got[i] = conns[i].get(parts.netloc, path, *ranges[i])
            except Exception as exc:  # reported, then the run fails
                errors.append(str(exc))

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(ranges))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise SystemExit(f"download failed: {errors[0]}")
        if sum(got) != args.size:
            raise SystemExit(f"round read {sum(got)} bytes, expected {args.size}")
        total += sum(got)
        rounds += 1
    elapsed = time.perf_counter() - started
    print(json.dumps({"bytes": total, "seconds": elapsed, "rounds": rounds,
                      "mb_per_s": total / elapsed / 1e6}))


if __name__ == "__main__":
    main()
