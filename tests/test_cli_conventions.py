"""What users expect of a well-kept CLI: --version, -h, completion, env vars in --help, stdout vs stderr."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from bundler.db.connect import DatabaseTarget
from tests.cli_helpers import REPORT_META, json_of, run_cli
from tests.test_example import EXAMPLE, EXAMPLE_ID

WIDE = {"COLUMNS": "250"}  # one help line per option, so `[env var: …]` is never wrapped


def test_version_comes_from_the_installed_distribution() -> None:
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"bundler {version('story-bundler')}\n"


def test_short_help_is_help() -> None:
    short, long = run_cli("-h", env=WIDE), run_cli("--help", env=WIDE)
    assert short.returncode == 0 and short.stdout == long.stdout
    assert "--install-completion" in short.stdout and "--show-completion" in short.stdout


def test_shell_completion_script() -> None:
    result = run_cli("--show-completion", "bash")
    assert result.returncode == 0, result.stderr
    assert "_BUNDLER_COMPLETE=complete_bash" in result.stdout


@pytest.mark.parametrize(
    ("command", "variables"),
    [
        ("assemble", ["BUNDLER_ASSETS_ROOT", "BUNDLER_OUT", "BUNDLER_JOBS", "DATABASE_URL"]),
        ("check", ["BUNDLER_ASSETS_ROOT", "BUNDLER_JOBS", "DATABASE_URL"]),
        ("stories", ["DATABASE_URL"]),
    ],
)
def test_help_names_the_environment_variables(command: str, variables: list[str]) -> None:
    result = run_cli(command, "--help", env=WIDE)
    assert result.returncode == 0, result.stderr
    for name in variables:
        assert f"[env var: {name}]" in result.stdout


def test_help_shows_the_choices() -> None:
    result = run_cli("assemble", "--help", env=WIDE).stdout
    assert "[zip|tar.gz]" in result and "[text|github]" in result


@pytest.mark.parametrize(("option", "value"), [("--archive", "rar"), ("--format", "xml")])
def test_a_value_outside_the_choices_is_a_usage_error(option: str, value: str) -> None:
    result = run_cli("assemble", EXAMPLE_ID, option, value)
    assert result.returncode == 2
    assert value in result.stderr and "Invalid value" in result.stderr


def test_a_bad_environment_value_is_a_usage_error() -> None:
    result = run_cli("check", EXAMPLE_ID, env={"BUNDLER_JOBS": "lots"})
    assert result.returncode == 2 and "--jobs" in result.stderr


@pytest.fixture
def seeded(database: DatabaseTarget, tmp_path: Path) -> Path:
    assets = tmp_path / "assets"
    result = run_cli("db", "seed", EXAMPLE, "--database-url", database.conninfo, "--assets-root", assets)
    assert result.returncode == 0, result.stderr
    return assets


def test_environment_variables_configure_assemble(seeded: Path, database: DatabaseTarget, tmp_path: Path) -> None:
    env = {"DATABASE_URL": database.conninfo, "BUNDLER_ASSETS_ROOT": str(seeded), "BUNDLER_OUT": str(tmp_path / "o")}
    result = run_cli("assemble", EXAMPLE_ID, "--json", env={**env, "BUNDLER_JOBS": "1"})
    assert result.returncode == 0, result.stderr
    report = json_of(result)
    assert report["bundlePath"] == str(tmp_path / "o" / EXAMPLE_ID)
    assert (tmp_path / "o" / EXAMPLE_ID / "manifest.json").is_file()
    assert report["reportVersion"] == REPORT_META["reportVersion"]
    assert report["generator"] == REPORT_META["generator"]


def test_listing_goes_to_stdout_and_messages_to_stderr(seeded: Path, database: DatabaseTarget) -> None:
    listing = run_cli("stories", env={"DATABASE_URL": database.conninfo})
    assert listing.returncode == 0, listing.stderr
    assert EXAMPLE_ID in listing.stdout and EXAMPLE_ID not in listing.stderr
    checked = run_cli("check", EXAMPLE_ID, env={"DATABASE_URL": database.conninfo, "BUNDLER_ASSETS_ROOT": str(seeded)})
    assert checked.returncode == 0 and checked.stdout == ""
    assert "warning" in checked.stderr  # the example is work in progress: its problems go to stderr


def test_default_jobs_follows_the_cpus_the_process_may_use() -> None:
    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs CPU affinity and two CPUs")
    code = "from bundler.support.workers import default_jobs; print(default_jobs())"
    pinned = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}),
    )
    assert pinned.stdout.strip() == "1"


def test_quiet_and_verbose_shape_the_human_output(seeded: Path, database: DatabaseTarget, tmp_path: Path) -> None:
    env = {"DATABASE_URL": database.conninfo, "BUNDLER_ASSETS_ROOT": str(seeded), "BUNDLER_OUT": str(tmp_path / "o")}
    normal = run_cli("assemble", EXAMPLE_ID, env=env)
    quiet = run_cli("assemble", EXAMPLE_ID, "--overwrite", "-q", env=env)
    batch_quiet = run_cli("check", "--all", "--quiet", env=env)
    verbose = run_cli("check", EXAMPLE_ID, "-v", "--json", env=env)
    for result in (normal, quiet, batch_quiet, verbose):
        assert result.returncode == 0, result.stderr
    assert "phases:" not in normal.stderr and "phases:" not in quiet.stderr
    assert "warning" in quiet.stderr and f"assembled {EXAMPLE_ID}" in quiet.stderr  # problems and the summary
    # a quiet batch: problems and one summary line, no per-story lines and no table
    assert "Checked 1 stories: 1 ok, 0 failed" in batch_quiet.stderr
    assert f"checked {EXAMPLE_ID}" not in batch_quiet.stderr and "┃" not in batch_quiet.stderr
    phases = json_of(verbose)["stats"]["phases"]
    assert set(phases) == {"load", "plan", "probe"}
    assert re.search(r"phases: load \d+\.\d{3} s, plan \d+\.\d{3} s, probe \d+\.\d{3} s", verbose.stderr)


def test_quiet_and_verbose_together_is_a_usage_error() -> None:
    result = run_cli("check", EXAMPLE_ID, "-q", "-v")
    assert result.returncode == 2


def test_assemble_reports_every_phase(seeded: Path, database: DatabaseTarget, tmp_path: Path) -> None:
    env = {"DATABASE_URL": database.conninfo, "BUNDLER_ASSETS_ROOT": str(seeded), "BUNDLER_OUT": str(tmp_path / "o")}
    result = run_cli("assemble", EXAMPLE_ID, "--verbose", "--json", env=env)
    assert result.returncode == 0, result.stderr
    phases = json_of(result)["stats"]["phases"]
    assert list(phases) == ["load", "plan", "probe", "build", "publish"]
    assert sum(phases.values()) <= json_of(result)["stats"]["seconds"] + 0.01
    assert "phases: load" in result.stderr
