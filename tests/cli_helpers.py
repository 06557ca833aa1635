"""Run the real ``bundler`` console script in a subprocess."""

from __future__ import annotations

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


def run_cli(
    *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "GITHUB_ACTIONS", "SOURCE_DATE_EPOCH")}
    full_env["NO_COLOR"] = "1"
    full_env.update(env or {})
    return subprocess.run(
        [*BUNDLER, *map(str, args)], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=120, check=False
    )


def json_of(result: subprocess.CompletedProcess[str]) -> Any:
    """The one JSON document of a run, checked against its published schema (tests/schema_check.py)."""
    from tests.schema_check import check_cli_output

    document = json.loads(result.stdout)
    check_cli_output([str(a) for a in result.args], document)
    return document
