"""docs/problems.md lists exactly the problem codes the code emits, and `check --explain` prints them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from bundler.problem_catalogue import CATALOGUE, markdown
from tests.cli_helpers import run_cli

PACKAGE = Path(__file__).parent.parent / "bundler"
DOCS = Path(__file__).parent.parent / "docs" / "problems.md"
KEBAB = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)+")
# a call that makes a problem: error(...), warning(...), self.problem(...), MediaProblem(...), _Bad(...)
EMITTER = re.compile(r"(?i).*(error|warning|problem|bad)$")
SEVERITY_OF = {"error": "error", "warning": "warning"}


def emitted_codes() -> dict[str, set[str]]:
    """code -> the severities its emitters state (empty when the call does not say), by reading the source."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if not EMITTER.fullmatch(name):
                continue
            candidates = [*node.args[:2], *(k.value for k in node.keywords if k.arg == "code")]
            for arg in candidates:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and KEBAB.fullmatch(arg.value):
                    severities = found.setdefault(arg.value, set())
                    if name in SEVERITY_OF:
                        severities.add(SEVERITY_OF[name])
    return found


def test_the_scan_finds_the_known_emitters() -> None:
    codes = emitted_codes()
    # one from each kind of emitter: planner, tree, music, verify, media probing, bundle reading
    assert {"root-not-playable", "multiple-roots", "invalid-music-cue", "checksum-mismatch"} <= set(codes)
    assert {"missing-media", "not-a-regular-file", "duplicate-entry"} <= set(codes)


def test_every_emitted_code_is_in_the_catalogue() -> None:
    missing = sorted(set(emitted_codes()) - set(CATALOGUE))
    assert not missing, f"add these codes to bundler/problem_catalogue.py (and regenerate docs/problems.md): {missing}"


def test_every_catalogued_code_is_emitted() -> None:
    stale = sorted(set(CATALOGUE) - set(emitted_codes()))
    assert not stale, f"bundler/problem_catalogue.py lists codes nothing emits: {stale}"


def test_catalogued_severities_match_the_emitters() -> None:
    for code, severities in emitted_codes().items():
        for severity in severities:
            assert severity in CATALOGUE[code].severity, f"{code} is emitted as {severity}"


def test_docs_problems_md_is_generated_from_the_catalogue() -> None:
    assert DOCS.read_text(encoding="utf-8") == markdown(), "run: python -m bundler.problem_catalogue > docs/problems.md"


@pytest.mark.parametrize("code", ["root-not-playable", "MISSING-MEDIA", "json-too-deep"])
def test_check_explain_prints_the_entry(code: str) -> None:
    result = run_cli("check", "--explain", code)
    entry = CATALOGUE[code.lower()]
    assert result.returncode == 0, result.stderr
    assert result.stdout == entry.text()
    assert entry.fix in result.stdout and entry.severity in result.stdout


def test_check_explain_of_an_unknown_code_is_a_usage_error() -> None:
    result = run_cli("check", "--explain", "no-such-code")
    assert result.returncode == 2
    assert "unknown problem code" in result.stderr
