"""JSON Schemas (draft 2020-12) of the published formats, shipped as package data.

``manifest`` — manifest.json (formatVersion 1); ``report`` — the ``--json``
documents of assemble, check and verify (reportVersion 1); ``story`` — the
story YAML of ``db seed``/``export`` once parsed.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

NAMES = ("manifest", "report", "story")


def schema_text(name: str) -> str:
    if name not in NAMES:
        raise ValueError(f"unknown schema {name!r}; one of: {', '.join(NAMES)}")
    return files(__package__).joinpath(f"{name}.json").read_text(encoding="utf-8")


@cache
def load_schema(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(schema_text(name))
    return document
