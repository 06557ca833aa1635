"""Bundles over HTTP from a sub-path, with a log of every request and when it arrived."""

from __future__ import annotations

import functools
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PREFIX = "/stories/published/"


@dataclass
class Served:
    base: str  # URL of the served folder, ending in "/"
    requests: list[tuple[float, str]] = field(default_factory=list)  # (epoch ms on arrival, decoded path)

    def url(self, bundle_path: Path, speed: float) -> str:
        return f"{self.base}{urllib.parse.quote(bundle_path.name)}/index.html?speed={speed}"

    def first_request(self, suffix: str) -> float | None:
        return next((at for at, path in self.requests if path.endswith(suffix)), None)


class _Handler(SimpleHTTPRequestHandler):
    served: Served

    def __init__(self, *args: Any, served: Served, **kwargs: Any) -> None:
        self.served = served
        super().__init__(*args, **kwargs)

    def translate_path(self, path: str) -> str:
        clean = urllib.parse.unquote(urllib.parse.urlsplit(path).path)
        self.served.requests.append((time.time() * 1000, clean))
        if not clean.startswith(PREFIX):
            return str(Path(self.directory) / "no-such-file")  # a 404, like a site without it
        return super().translate_path("/" + path.split("?")[0][len(PREFIX) :])

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet test output


@contextmanager
def serve(folder: Path) -> Iterator[Served]:
    """Serves ``folder`` at ``http://127.0.0.1:<port>/stories/published/`` until the block ends."""
    served = Served("")
    handler = functools.partial(_Handler, directory=str(folder), served=served)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    served.base = f"http://127.0.0.1:{server.server_port}{PREFIX}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
