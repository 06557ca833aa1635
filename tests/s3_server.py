"""A real S3 server on loopback for tests and the benchmark: moto's server, with a
request log so tests can count what the client really sent (no mock anywhere)."""

from __future__ import annotations

import itertools
import os
import threading
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key-do-not-print"
_buckets = itertools.count(1)


@dataclass
class Request:
    method: str
    path: str  # /bucket/key, percent-decoded
    query: str
    range: str | None
    copy_source: str | None = None  # x-amz-copy-source: a server-side copy
    if_match: str | None = None
    if_none_match: str | None = None
    received: int = 0  # request body bytes (what the client uploaded)
    sent: int = 0  # response body bytes (what the client downloaded), counted as they leave
    status: int = 0


class _QuietHandler(MotoRequestHandler):  # type: ignore[misc]
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class S3Server(ThreadedMotoServer):  # type: ignore[misc]
    """moto's S3 on 127.0.0.1 and a free port; ``requests`` lists every request answered."""

    def __init__(self) -> None:
        super().__init__("127.0.0.1", 0, verbose=False)
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        # transient faults, each used once: whole GETs of these paths ("/bucket/key") fail
        self.unavailable_once: set[str] = set()  # answered 503 Slow Down
        self.cut_once: set[str] = set()  # the connection drops halfway through the body
        # a store that stops answering: while ``stall`` is set, requests wait (up to 30 s) for ``resume``
        self.stall = threading.Event()
        self.resume = threading.Event()

    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)

        def logged(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            request = Request(
                environ["REQUEST_METHOD"],
                environ.get("PATH_INFO", ""),
                environ.get("QUERY_STRING", ""),
                environ.get("HTTP_RANGE"),
                environ.get("HTTP_X_AMZ_COPY_SOURCE"),
                environ.get("HTTP_IF_MATCH"),
                environ.get("HTTP_IF_NONE_MATCH"),
                int(environ.get("CONTENT_LENGTH") or 0),
            )
            with self.lock:
                self.requests.append(request)
                whole_get = request.method == "GET" and not request.range and not request.query
                unavailable = whole_get and _take(self.unavailable_once, request.path)
                cut = whole_get and _take(self.cut_once, request.path)
            if self.stall.is_set():
                self.resume.wait(30)
            if unavailable:
                start_response("503 Slow Down", [("Content-Length", "0")])
                request.status = 503
                return [b""]

            def respond(status: str, headers: Any, *rest: Any) -> Any:
                request.status = int(status.split()[0])
                return start_response(status, headers, *rest)

            body = app(environ, respond)
            return _counted(request, _cut_halfway(body) if cut else body)

        self._server = make_server(self._ip_address, self._port, logged, True, request_handler=_QuietHandler)
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def endpoint(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"

    def env(self) -> dict[str, str]:
        """The standard AWS variables that point a client at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
        }

    def new_bucket(self) -> str:
        name = f"bucket-{os.getpid()}-{next(_buckets)}"
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/{name}", method="PUT"), timeout=10).close()
        return name

    def store(self, bucket: str) -> Any:
        """A signed client for test set-up and inspection (anonymous requests are refused)."""
        from obstore.store import S3Store

        return S3Store(
            bucket,
            config={
                "endpoint": self.endpoint,
                "access_key_id": ACCESS_KEY,
                "secret_access_key": SECRET_KEY,
                "region": "us-east-1",
            },
            client_options={"allow_http": True},
        )

    def put(self, bucket: str, key: str, data: bytes) -> None:
        import obstore

        obstore.put(self.store(bucket), key, data)

    def get(self, bucket: str, key: str) -> bytes | None:
        import obstore

        try:
            return bytes(obstore.get(self.store(bucket), key).bytes())
        except FileNotFoundError:
            return None

    def etag(self, bucket: str, key: str) -> str:
        import obstore

        return str(obstore.head(self.store(bucket), key)["e_tag"])

    def upload_tree(self, folder: Path, bucket: str, prefix: str) -> None:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                self.put(bucket, f"{prefix}/{path.relative_to(folder).as_posix()}", path.read_bytes())

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        import obstore

        return sorted(str(meta["path"]) for batch in obstore.list(self.store(bucket), prefix or None) for meta in batch)

    def since(self, mark: int) -> list[Request]:
        with self.lock:
            return list(self.requests[mark:])

    def mark(self) -> int:
        with self.lock:
            return len(self.requests)


def _take(paths: set[str], path: str) -> bool:
    if path in paths:
        paths.discard(path)
        return True
    return False


def _counted(request: Request, body: Iterable[bytes]) -> Iterator[bytes]:
    for chunk in body:
        request.sent += len(chunk)
        yield chunk


def _cut_halfway(body: Iterable[bytes]) -> Iterator[bytes]:
    """Send half of the body, then fail: the server drops the connection mid-response."""
    data = b"".join(body)
    yield data[: len(data) // 2]
    raise ConnectionAbortedError("fault injected by the test server: connection cut mid-body")
