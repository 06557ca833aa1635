"""Whatever a user types or stores: one line and the documented code, never 70, a traceback,
a Rust panic or a hang (DESIGN §4, issue 19 §3)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from bundler import api
from bundler.api import StoryReport
from bundler.db.connect import DatabaseTarget
from bundler.errors import UsageError
from bundler.support.cancel import Cancellation
from bundler.support.shard import Shard
from tests.builders import ShotSpec, StoryBuilder
from tests.cli_helpers import BUNDLER, json_of, run_cli
from tests.s3_server import S3Server

STORY_ID = "7d3f5a2e-4b1c-4e8a-9f60-2c5d8e1a0b11"
REFUSED_DB = "postgresql://u@127.0.0.1:9/db"


def _one_line(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr and "panicked" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["check", STORY_ID, "--assets-root", "s3://media/root", "--json", "--database-url", REFUSED_DB],
        ["assemble", STORY_ID, "--out", "s3://media/out", "--json", "--database-url", REFUSED_DB],
        ["verify", "s3://media/out/x", "--json"],
    ],
    ids=["check", "assemble", "verify"],
)
def test_an_endpoint_with_a_space_is_one_line(args: list[str]) -> None:
    env = {"AWS_ENDPOINT_URL": "http://local host:9000", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    result = run_cli(*args, env=env)
    assert result.returncode == 3, result.stderr
    _one_line(result)
    assert "AWS_ENDPOINT_URL" in result.stderr
    assert json_of(result)["error"]["exitCode"] == 3


def test_a_huge_stored_path_under_an_s3_root_is_a_problem_not_a_panic(
    conn: psycopg.Connection, database: DatabaseTarget, s3_server: S3Server, s3_bucket: str
) -> None:
    story = StoryBuilder()
    story.scenelet(shots=[ShotSpec(1, image="x" * 100_000, audio=None)], terminal=True)
    story.insert(conn)
    s3_server.put(s3_bucket, "media/placeholder", b"x")
    result = run_cli("check", story.story_id, "--database-url", database.conninfo, "--json",
                     "--assets-root", f"s3://{s3_bucket}/media")  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "panicked" not in result.stderr and "Traceback" not in result.stderr
    codes = {p["code"] for p in json_of(result)["problems"]}
    assert codes & {"missing-media", "unsafe-asset-path"}, codes


@pytest.mark.parametrize("pointer", [b"[" * 100_000 + b"]" * 100_000, b"{" * 50_000, b" " * 200_000])
def test_a_deeply_nested_or_huge_pointer_is_one_line(pointer: bytes, s3_server: S3Server, s3_bucket: str) -> None:
    story = "0b0e8a8c-6d84-4d62-9a3e-3f4f6a0c1d2e"
    s3_server.put(s3_bucket, f"out/{story}/current.json", pointer)
    result = run_cli("verify", f"s3://{s3_bucket}/out/{story}", "--json")
    assert result.returncode == 3, result.stderr
    _one_line(result)
    assert "current.json" in result.stderr


@pytest.mark.parametrize("text", ["¹/2", "1/²", "٣/4", "\uff11/2"])
def test_unicode_digits_in_shard_are_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError):
        Shard.parse(text)


@pytest.mark.parametrize("index", ["¹", "٣", "\uff10"])
def test_unicode_digits_in_the_job_index_are_a_usage_error(index: str) -> None:
    with pytest.raises(UsageError):
        Shard.parse("auto/4", {"JOB_COMPLETION_INDEX": index})
    result = run_cli("check", "--all", "--shard", "auto/4", env={"JOB_COMPLETION_INDEX": index})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [["db", "status"], ["db", "status", "--json"], ["stories", "--json"]])
def test_a_pipe_closed_early_ends_quietly(args: list[str], database: DatabaseTarget) -> None:
    read, write = os.pipe()
    os.close(read)  # like `| head -1` having exited already: every write fails with EPIPE
    try:
        env = {**os.environ, "NO_COLOR": "1", "DATABASE_URL": database.conninfo}
        result = subprocess.run(
            [*BUNDLER, *args], stdout=write, stderr=subprocess.PIPE, text=True, timeout=60, env=env, check=False
        )
    finally:
        os.close(write)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr


@pytest.mark.parametrize("source", ["/dev/zero", "fifo", "folder"])
def test_seed_refuses_what_is_not_a_regular_file_at_once(source: str, tmp_path: Path, database: DatabaseTarget) -> None:
    path = Path(source)
    if source == "fifo":
        path = tmp_path / "story.yaml"
        os.mkfifo(path)  # no writer ever comes: reading it would wait forever
    elif source == "folder":
        path = tmp_path
    started = time.monotonic()
    result = run_cli("db", "seed", path, "--database-url", database.conninfo)
    assert time.monotonic() - started < 30
    assert result.returncode == 1, result.stderr
    _one_line(result)
    assert "regular file" in result.stderr


def test_seed_refuses_a_file_over_the_size_cap(tmp_path: Path, database: DatabaseTarget) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(3 * 1024**3)  # sparse: 3 GB that take no disk
    result = run_cli("db", "seed", path, "--database-url", database.conninfo)
    assert result.returncode == 1, result.stderr
    _one_line(result)
    assert "too large" in result.stderr


def test_verify_of_a_huge_manifest_is_exit_3_without_reading_it(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    with (bundle / "manifest.json").open("wb") as handle:
        handle.truncate(3 * 1024**3)
    started = time.monotonic()
    result = run_cli("verify", bundle, "--json")
    assert time.monotonic() - started < 20
    assert result.returncode == 3, result.stderr
    _one_line(result)
    assert "256 MiB" in result.stderr


def test_a_huge_manifest_in_an_archive_is_capped(tmp_path: Path) -> None:
    from bundler.bundle.reader import digest_stream
    from bundler.errors import BundleUnreadableError

    chunks = (bytes(1 << 20) for _ in range(300))  # 300 MiB kept whole would pass the cap
    with pytest.raises(BundleUnreadableError, match="256 MiB"):
        digest_stream(chunks, True, None)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("delay", [0.0, 0.1, 0.3])
def test_a_signal_before_the_run_handlers_gives_its_code_and_one_document(
    signum: int, code: int, delay: float, database: DatabaseTarget, assets_root: Path
) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    process = subprocess.Popen(
        [*BUNDLER, "check", STORY_ID, "--json", "--database-url", database.conninfo, "--assets-root", assets_root],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    _wait_for_python_handlers(process.pid)  # before them the default action is all a program can have
    time.sleep(delay)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    if process.returncode == 1 and "story-not-found" in stdout:
        return  # finished before the signal came: nothing to interrupt
    assert process.returncode == code, (process.returncode, stderr)
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    document = json.loads(stdout)  # exactly one document
    assert document["ok"] is False


_STARTUP = """
import os, signal, sys
sys.argv = ["bundler", *sys.argv[1:]]
from bundler.support.signals import install
install()
os.kill(os.getpid(), signal.SIG{name})  # delivered during the imports, long before the run's handlers
from bundler.cli import main
raise SystemExit(main())
"""


@pytest.mark.parametrize(("name", "code"), [("INT", 130), ("TERM", 143)])
@pytest.mark.parametrize("json_flag", [["--json"], []])
def test_a_signal_during_start_up_gives_its_code_one_line_and_one_document(
    name: str, code: int, json_flag: list[str], database: DatabaseTarget, assets_root: Path
) -> None:
    import sys

    args = ["check", STORY_ID, *json_flag, "--database-url", database.conninfo, "--assets-root", str(assets_root)]
    result = subprocess.run(
        [sys.executable, "-c", _STARTUP.format(name=name), *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == code, result.stderr
    _one_line(result)
    assert "interrupted" in result.stderr
    if json_flag:
        assert json_of(result)["error"]["exitCode"] == code
    else:
        assert result.stdout == ""


def _wait_for_python_handlers(pid: int) -> None:
    """Until the process catches SIGTERM (its first Python statements ran), per /proc/PID/status."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status").read_text()
        caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
        if caught & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.002)
    raise AssertionError("the process never set a SIGTERM handler")


def test_a_signal_after_every_story_finished_reports_what_was_done(capsys: pytest.CaptureFixture[str]) -> None:
    from bundler.cli.batch import finish
    from bundler.cli.common import Output

    cancel = Cancellation()
    cancel.cancel(signal.SIGTERM)  # came in after the bundle was published
    done = StoryReport(STORY_ID, True, (), {"files": 3, "bytes": 10}, Path("/tmp/out") / STORY_ID)
    finish([done], Output.from_options(True, False, None), "assembled", "Assembled", batch=False, cancel=cancel)
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True and document["bundlePath"]


def test_api_is_unchanged_for_a_story_that_is_missing(database: DatabaseTarget, assets_root: Path) -> None:
    report = api.check(STORY_ID, database=database, assets_root=assets_root)
    assert report.exit_code == 1
