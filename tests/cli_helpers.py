"""Run the real ``bundler`` command line: in-process through ``bundler.cli.main(argv)`` (fast:
no interpreter start-up per call), or in a subprocess when the test needs a real process
(signals, start-up, import hooks through PYTHONPATH, a hang that must be cut off)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bundler import __version__

BUNDLER = [sys.executable, "-m", "bundler"]
# what every --json document carries besides its own keys
REPORT_META = {"reportVersion": 1, "generator": f"bundler {__version__}"}


def _environment(env: dict[str, str] | None) -> dict[str, str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "GITHUB_ACTIONS", "SOURCE_DATE_EPOCH")}
    full_env["NO_COLOR"] = "1"
    full_env.update(env or {})
    return full_env


def run_cli(
    *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None, process: bool = False
) -> subprocess.CompletedProcess[str]:
    """``bundler ARGS`` with ``env`` added to this process's environment; its exit code and output.

    In-process unless ``process`` is set or ``env`` sets PYTHONPATH (an import hook for a fresh
    interpreter); ``BUNDLER_TEST_CLI=process`` runs every call in a fresh interpreter (to compare)."""
    if process or "PYTHONPATH" in (env or {}) or os.environ.get("BUNDLER_TEST_CLI") == "process":
        return run_process(*args, env=env, cwd=cwd)
    return _run_in_process([str(a) for a in args], _environment(env), cwd)


def run_process(
    *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``bundler ARGS`` in a fresh interpreter."""
    return subprocess.run(
        [*BUNDLER, *map(str, args)],
        capture_output=True,
        text=True,
        env=_environment(env),
        cwd=cwd,
        timeout=120,
        check=False,
    )


def _run_in_process(args: list[str], env: dict[str, str], cwd: Path | None) -> subprocess.CompletedProcess[str]:
    from bundler.cli import main

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    stdout, stderr = io.StringIO(), io.StringIO()
    os.environ.clear()
    os.environ.update(env)
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(args)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess([*BUNDLER, *args], code, stdout.getvalue(), stderr.getvalue())


def json_of(result: subprocess.CompletedProcess[str]) -> Any:
    """The one JSON document of a run, checked against its published schema (tests/schema_check.py)."""
    from tests.schema_check import check_cli_output

    document = json.loads(result.stdout)
    check_cli_output([str(a) for a in result.args], document)
    return document
