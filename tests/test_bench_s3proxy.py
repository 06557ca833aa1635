"""The benchmark's latency proxy passes requests through unchanged and logs what crossed it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.s3_server import ACCESS_KEY, SECRET_KEY, S3Server

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

from s3proxy import read_log  # noqa: E402


@pytest.fixture
def proxy(s3_server: S3Server, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    log = tmp_path / "proxy.log"
    process = subprocess.Popen(
        [sys.executable, str(BENCH / "s3proxy.py"), s3_server.endpoint, str(log), "20"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield f"http://127.0.0.1:{int(process.stdout.readline())}", log
    finally:
        process.terminate()
        process.wait(10)


def test_proxy_delays_and_logs_every_request(s3_server: S3Server, proxy: tuple[str, Path]) -> None:
    import obstore
    from obstore.store import S3Store

    endpoint, log = proxy
    bucket = s3_server.new_bucket()
    store = S3Store(
        bucket,
        config={"endpoint": endpoint, "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY},
        client_options={"allow_http": True},
    )
    data = bytes(range(256)) * 40
    started = time.perf_counter()
    obstore.put(store, "media/a.png", data)
    assert bytes(obstore.get(store, "media/a.png").bytes()) == data
    assert bytes(obstore.get_range(store, "media/a.png", start=10, end=20)) == data[10:20]
    obstore.copy(store, "media/a.png", "media/b.png")
    assert [m["path"] for batch in obstore.list(store, "media/") for m in batch] == ["media/a.png", "media/b.png"]
    assert time.perf_counter() - started >= 5 * 0.020  # each request waited its 20 ms

    entries, _ = read_log(log)
    assert [e.kind for e in entries] == ["PUT", "GET", "GET range", "COPY", "LIST"]
    put, get, ranged, copy, _ = entries
    assert (put.path, put.bytes_in, get.bytes_out, ranged.bytes_out) == (f"/{bucket}/media/a.png", 10240, 10240, 10)
    assert ranged.range == "bytes=10-19"
    assert copy.copy_source is not None and copy.copy_source.endswith("media/a.png")
    assert s3_server.get(bucket, "media/b.png") == data  # what the server stored is what the client sent
