"""Validation of what the suite produces against the published JSON Schemas (bundler/schemas).

``json_of`` (tests/cli_helpers.py) checks every --json report of assemble, check
and verify, the manifests those runs write and the YAML `export --json` carries;
the session fixture in conftest.py checks every manifest and story export written
in-process. So each test that produces one of these formats also tests its schema.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from bundler.schemas import load_schema

REPORT_COMMANDS = ("assemble", "check", "verify")
validated: Counter[str] = Counter()  # kind -> documents checked this session


@cache
def validator(name: str) -> Draft202012Validator:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_errors(name: str, document: Any) -> list[str]:
    errors = sorted(validator(name).iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors]


def assert_valid(name: str, document: Any) -> None:
    errors = schema_errors(name, document)
    assert not errors, f"not a valid {name} document:\n" + "\n".join(errors[:20])
    validated[name] += 1


def check_cli_output(args: list[str], document: Any) -> None:
    """Validate a --json document by the command that printed it (and what it points at)."""
    command = next((a for a in args if a in (*REPORT_COMMANDS, "export")), None)
    if command == "export" and isinstance(document.get("yaml"), str):
        assert_valid("story", yaml.safe_load(document["yaml"]))
    if command not in REPORT_COMMANDS:
        return
    assert_valid("report", document)
    if command == "assemble":
        for report in document.get("stories", [document]):
            bundle = report.get("bundlePath")
            manifest = Path(bundle) / "manifest.json" if report.get("ok") and bundle else None
            if manifest and manifest.is_file():
                assert_valid("manifest", json.loads(manifest.read_text(encoding="utf-8")))


@contextmanager
def validating_writers() -> Iterator[None]:
    """Wrap the manifest and story-YAML writers so every document written in-process is validated."""
    import bundler.pipeline.build
    import bundler.story_yaml.export

    write_manifest, write_story = bundler.pipeline.build.dump_bytes, bundler.story_yaml.export.dump_document

    def checked_manifest(document: dict[str, Any]) -> bytes:
        assert_valid("manifest", document)
        return write_manifest(document)

    def checked_story(document: dict[str, Any]) -> str:
        text = write_story(document)
        assert_valid("story", yaml.safe_load(text))
        return text

    bundler.pipeline.build.dump_bytes = checked_manifest  # type: ignore[assignment]
    bundler.story_yaml.export.dump_document = checked_story  # type: ignore[assignment]
    try:
        yield
    finally:
        bundler.pipeline.build.dump_bytes, bundler.story_yaml.export.dump_document = write_manifest, write_story  # type: ignore[assignment]
