"""The embedded server survives the faults a kill leaves behind; `db status` and `db stop` (docs/design.md §4).

These tests use a private embedded server (never the session's shared one),
because they damage its files, kill it and stop it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bundler.db.embedded import HANDLE_FILE, data_dir, postmaster_pid, stop_server
from tests.cli_helpers import run_cli


@pytest.fixture(scope="module")
def private_dir() -> Iterator[Path]:
    # as root the data directory must sit under the system temp dir (docs/design.md §4)
    pgdata = Path(tempfile.mkdtemp(prefix="bundler-embedded-faults-")) / "pgdata"
    yield pgdata
    stop_server(pgdata)
    shutil.rmtree(pgdata.parent, ignore_errors=True)


def _bundler(pgdata: Path, *args: str) -> tuple[int, str, str]:
    env = {name: "" for name in os.environ if name.startswith("PG")}
    # a real process each time: the embedded server package keeps per-process state
    result = run_cli(*args, env={**env, "BUNDLER_EMBEDDED_DIR": str(pgdata)}, process=True)
    return result.returncode, result.stdout, result.stderr


def _document(stdout: str) -> dict[str, object]:
    """The JSON document without the keys every report carries (reportVersion, generator)."""
    document = json.loads(stdout)
    assert isinstance(document, dict) and document.pop("reportVersion") and document.pop("generator")
    return document


def _started(pgdata: Path) -> None:
    code, _, err = _bundler(pgdata, "db", "init")
    assert code == 0, err


@pytest.mark.parametrize("content", ["", "[12", '{"pids": 1}', "[999999999]", "\x00\x00"])
def test_damaged_handle_file_does_not_wedge_start_up(private_dir: Path, content: str) -> None:
    """A kill while the package rewrites its handle file left it empty: every later run failed."""
    _started(private_dir)
    (private_dir / HANDLE_FILE).write_text(content)
    code, out, err = _bundler(private_dir, "stories", "--json")
    assert code == 0, err
    assert _document(out) == {"ok": True, "stories": []}
    assert "Traceback" not in err and "Exception ignored" not in err
    assert (private_dir / HANDLE_FILE).read_text() == "[]"  # repaired, dead process ids dropped


def test_killed_postmaster_is_an_environment_error_or_recovers(private_dir: Path) -> None:
    _started(private_dir)
    pid = postmaster_pid(private_dir)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    code, _, err = _bundler(private_dir, "stories")
    assert code in (0, 3), err  # restarted, or one clear line; never an internal error
    assert len(err.strip().splitlines()) <= 1 and "Traceback" not in err, err
    code, _, err = _bundler(private_dir, "stories")
    assert code == 0, err


def test_status_and_stop(private_dir: Path) -> None:
    _started(private_dir)
    code, out, err = _bundler(private_dir, "db", "status", "--json")
    status = _document(out)
    assert code == 0, err
    assert (status["ok"], status["running"], status["initialized"], status["dataDir"]) == (
        True,
        True,
        True,
        str(private_dir),
    )
    assert status["uri"] == f"postgresql://postgres@/bundler?host={private_dir}"
    assert str(status["version"]).split(".")[0] == (private_dir / "PG_VERSION").read_text().strip()

    code, out, err = _bundler(private_dir, "db", "status")
    assert code == 0 and "running (pid" in out and str(private_dir) in out, err

    code, out, err = _bundler(private_dir, "db", "stop", "--json")
    assert code == 0 and _document(out) == {"ok": True, "stopped": True, "dataDir": str(private_dir)}, err
    assert postmaster_pid(private_dir) is None  # a clean shutdown removes the lock file
    code, out, err = _bundler(private_dir, "db", "stop")  # idempotent
    assert code == 0 and "not running" in err, err
    code, out, err = _bundler(private_dir, "db", "status", "--json")
    assert code == 0 and _document(out) == {
        "ok": True,
        "dataDir": str(private_dir),
        "initialized": True,
        "running": False,
        "pid": None,
        "uri": None,
        "version": (private_dir / "PG_VERSION").read_text().strip(),
    }
    _started(private_dir)  # the next command starts it again


def test_status_of_a_server_never_created(tmp_path: Path) -> None:
    code, out, err = _bundler(tmp_path / "nothing-here", "db", "status", "--json")
    assert code == 0, err
    assert _document(out) == {
        "ok": True,
        "dataDir": str(tmp_path / "nothing-here"),
        "initialized": False,
        "running": False,
        "pid": None,
        "uri": None,
        "version": None,
    }
    assert not (tmp_path / "nothing-here").exists()  # status never creates or starts anything


def test_per_user_data_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BUNDLER_EMBEDDED_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert data_dir() == tmp_path / "data" / "bundler" / "pgdata"
    # as root: under the system temp folder, never $HOME (the server package widens parent permissions)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert data_dir().parent == Path(tempfile.gettempdir())
    monkeypatch.setenv("BUNDLER_EMBEDDED_DIR", str(tmp_path / "mine"))
    assert data_dir() == tmp_path / "mine"
