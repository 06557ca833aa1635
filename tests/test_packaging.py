"""The distribution: a wheel builds and carries everything the commands need at run time."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (built,) = out.glob("*.whl")
    assert built.name.startswith(f"story_bundler-{version('story-bundler')}-py3-none-any")
    return zipfile.ZipFile(built)


def test_the_wheel_carries_player_schemas_and_sql(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    expected = {
        "bundler/py.typed",
        "bundler/db/schema.sql",
        "bundler/player/player.html",
        "bundler/player/player.js",
        "bundler/player/player.css",
        "bundler/schemas/manifest.json",
        "bundler/schemas/report.json",
        "bundler/schemas/story.json",
    }
    assert expected <= names
    shipped = {name for name in names if name.startswith("bundler/") and not name.endswith(".py")}
    in_tree = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "bundler").rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    }
    assert in_tree <= shipped, f"files of the package missing from the wheel: {sorted(in_tree - shipped)}"
    assert not any(name.startswith(("tests/", "bench/", "examples/")) for name in names)


def test_the_wheel_metadata(wheel: zipfile.ZipFile) -> None:
    info = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    metadata = Parser().parsestr(wheel.read(info).decode("utf-8"))
    assert metadata["Name"] == "story-bundler"
    assert metadata["Version"] == version("story-bundler")
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Requires-Python"] == ">=3.11"
    assert any("Programming Language :: Python :: 3.11" in c for c in metadata.get_all("Classifier"))
    assert "embedded" in metadata.get_all("Provides-Extra")
    entry_points = wheel.read(info.replace("METADATA", "entry_points.txt")).decode("utf-8")
    assert "bundler = bundler.cli:main" in entry_points
    assert "story-bundler = bundler.cli:main" in entry_points
    licence = next(n for n in wheel.namelist() if n.endswith("licenses/LICENSE"))
    assert "MIT License" in wheel.read(licence).decode("utf-8")


def test_the_alias_command_runs() -> None:
    alias = Path(sys.executable).parent / "story-bundler"
    if not alias.exists():
        pytest.skip("the package is not installed with its console scripts")
    result = subprocess.run([str(alias), "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and result.stdout == f"bundler {version('story-bundler')}\n"
