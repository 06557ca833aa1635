"""A latency proxy for the S3 benchmark: a fixed delay per request, and a log of what crossed it.

Run as its own process (``python bench/s3proxy.py UPSTREAM LOG [DELAY_MS]``; it prints its port
on the first line of stdout), so its work does not share an interpreter lock with the S3 server
or the client. Each request waits ``DELAY_MS`` (20 ms: a store in the same region), then goes to
``UPSTREAM`` on a kept connection; the log gets one JSON line per request: method, path (bucket
and key), query, Range, ``x-amz-copy-source``, status, bytes in (request body) and bytes out
(response body). A client's chunked upload is passed on with its length, as the store sees it.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

# hop-by-hop headers (RFC 9110 §7.6.1) and Expect (this proxy answers 100-continue) are its own;
# the length is set again from the body
_HOP = {"connection", "expect", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    query: str
    range: str | None
    copy_source: str | None
    status: int
    bytes_in: int
    bytes_out: int

    @property
    def kind(self) -> str:
        """LIST, GET (whole), GET range, HEAD, PUT, COPY (server-side), POST (multipart, batch delete)..."""
        params = urllib.parse.parse_qs(self.query, keep_blank_values=True)
        if self.method == "GET" and self.path.strip("/").count("/") == 0:
            return "LIST"  # path style: /bucket?list-type=2&prefix=...
        if self.method == "GET":
            return "GET range" if self.range else "GET"
        if self.method == "PUT" and self.copy_source:
            return "COPY part" if "partNumber" in params else "COPY"
        if self.method == "PUT" and "partNumber" in params:
            return "PUT part"
        return self.method


def read_log(log: Path, offset: int = 0) -> tuple[list[Logged], int]:
    """The requests logged from byte ``offset`` on, and the offset after them."""
    with open(log, "rb") as handle:
        handle.seek(offset)
        data = handle.read()
    end = data.rfind(b"\n") + 1  # a line still being written is left for the next read
    entries = [Logged(**json.loads(line)) for line in data[:end].splitlines() if line.strip()]
    return entries, offset + end


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients expect of a store
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailer fields
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(self) -> None:
        body = self._body()
        time.sleep(self.server.delay)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP and k.lower() != "content-length"}
        if body or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        upstream = self._upstream()
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            upstream.close()  # a stale kept connection: once more on a new one
            self.server.local.conn = None
            upstream = self._upstream()
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
        self.send_response_only(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() not in _HOP and not (key.lower() == "content-length" and self.command != "HEAD"):
                self.send_header(key, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        path, _, query = self.path.partition("?")
        self.server.record(
            Logged(
                self.command,
                urllib.parse.unquote(path),
                query,
                self.headers.get("Range"),
                self.headers.get("x-amz-copy-source"),
                response.status,
                len(body),
                len(data),
            )
        )

    def _upstream(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self.server.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.server.upstream_host, self.server.upstream_port, timeout=120)
            self.server.local.conn = conn
        return conn

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, log: TextIO, delay: float) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_host, self.upstream_port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.delay = delay
        self.local = threading.local()  # one kept upstream connection per handler thread
        self.log = log
        self.lock = threading.Lock()

    def record(self, entry: Logged) -> None:
        line = json.dumps(entry.__dict__)
        with self.lock:
            self.log.write(line + "\n")
            self.log.flush()


def main() -> None:
    upstream, log_path = sys.argv[1], sys.argv[2]
    delay_ms = float(sys.argv[3]) if len(sys.argv) > 3 else 20.0
    with open(log_path, "a", encoding="utf-8") as log:
        server = _ProxyServer(upstream, log, delay_ms / 1000)
        print(server.server_address[1], flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
