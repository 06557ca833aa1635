"""JSON read from the database, guarded against values nested too deeply to parse (DESIGN §4).

psycopg parses ``json``/``jsonb`` with ``json.loads``, which raises ``RecursionError``
(an internal-error exit) on a few thousand nested arrays. PostgreSQL accepts such
values, so this is bad data, not a bug: a one-line story error instead.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg

from bundler.errors import InputError


class JsonTooDeepError(InputError):
    """A JSON value from the database (or a story file) nests too deeply to be read."""


TOO_DEEP = (
    "a JSON value in the database (content, audio_design_document or storyboard_payload) "
    "is nested too deeply to read (more than about 1,000 levels)"
)


def loads(data: str | bytes) -> Any:
    try:
        return json.loads(data)
    except RecursionError:
        raise JsonTooDeepError(TOO_DEEP[0].upper() + TOO_DEEP[1:] + ".") from None


def guard_json(conn: psycopg.Connection) -> None:
    """Parse this connection's json/jsonb with ``loads``."""
    from psycopg.types.json import set_json_loads

    set_json_loads(loads, conn)
