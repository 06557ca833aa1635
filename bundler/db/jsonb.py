"""JSON read from the database, guarded against values nested too deeply to parse (docs/design.md §4).

psycopg parses ``json``/``jsonb`` with ``json.loads``, which raises ``RecursionError``
(an internal-error exit) on a few thousand nested arrays. PostgreSQL accepts such
values, so this is bad data, not a bug: a story problem (``json-too-deep``, exit 1).

The loader cannot tell which row or column it is parsing, so the reader that knows
the column (``located``) looks the values up again as text, on this error path
only, and names the scenelet and shot of each one too deep to read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from bundler.errors import InputError
from bundler.problems import Problem, error

if TYPE_CHECKING:
    import psycopg

TOO_DEEP = "is nested too deeply to read (more than about 1,000 levels)"
Column = Literal["audio_design_document", "content", "storyboard_payload"]

# each column as text (never parsed by the server or psycopg) with what names its row:
# scenelet UUID, its label as the shots store it, and the shot index
_AS_TEXT: dict[Column, str] = {
    "audio_design_document": "select null, null, null, audio_design_document::text from stories where id = %s",
    "content": (
        "select id::text, (select min(scenelet_id) from shots where scenelet_ref = scenelets.id), null, "
        "content::text from scenelets where story_id = %s order by created_at, id"
    ),
    "storyboard_payload": (
        "select scenelet_ref::text, scenelet_id, shot_index, storyboard_payload::text from shots "
        "where story_id = %s order by scenelet_sequence, scenelet_ref::text, shot_index"
    ),
}


class JsonTooDeepError(InputError):
    """JSON values from the database that nest too deeply to be read.

    ``problems`` name each value (story, scenelet, shot, column) where that is known.
    """

    def __init__(self, message: str, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (too_deep_problem(message),)


def too_deep_problem(message: str, **where: Any) -> Problem:
    return error("json-too-deep", message, **where)


def loads(data: str | bytes) -> Any:
    try:
        return json.loads(data)
    except RecursionError:
        raise JsonTooDeepError(
            f"A JSON value in the database (content, audio_design_document or storyboard_payload) {TOO_DEEP}."
        ) from None


def guard_json(conn: psycopg.Connection) -> None:
    """Parse this connection's json/jsonb with ``loads``."""
    from psycopg.types.json import set_json_loads

    set_json_loads(loads, conn)


@contextmanager
def located(conn: psycopg.Connection, story_id: str, column: Column) -> Iterator[None]:
    """Turn a too-deep value met while reading ``column`` of the story into problems naming each one."""
    try:
        yield
    except JsonTooDeepError:
        problems = _too_deep(conn, story_id, column)
        raise JsonTooDeepError(" ".join(p.message for p in problems), problems) from None


def _too_deep(conn: psycopg.Connection, story_id: str, column: Column) -> tuple[Problem, ...]:
    problems = []
    with conn.cursor() as cur:
        for scenelet_ref, label, shot_index, text in cur.execute(_AS_TEXT[column], (story_id,)):
            if text is None or _readable(text):
                continue
            where = "" if scenelet_ref is None else f" of scenelet {label or '?'} ({scenelet_ref})"
            if shot_index is not None:
                where = f" of shot {shot_index}{where}"
            message = f"Story {story_id}: the {column}{where} {TOO_DEEP}."
            problems.append(
                too_deep_problem(message, scenelet_ref=scenelet_ref, scenelet_label=label, shot_index=shot_index)
            )
    # changed since it was read: name the column at least
    return tuple(problems) or (too_deep_problem(f"Story {story_id}: a value of {column} {TOO_DEEP}."),)


def _readable(text: str) -> bool:
    try:
        json.loads(text)
    except RecursionError:
        return False
    except ValueError:
        return True  # not ours to judge here: the server stored it as JSON
    return True
