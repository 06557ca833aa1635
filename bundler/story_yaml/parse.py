"""Reading story YAML: strict (typo protection, one-line errors naming file, line and
field), alias bombs refused, the file read with a size cap as a regular file."""

from __future__ import annotations

import difflib
import math
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bundler.story_yaml.format import (
    CONTENT_FIELDS,
    FORMAT,
    ROLES,
    SCENELET_KEYS,
    SHOT_KEYS,
    STORY_KEYS,
    TOP_KEYS,
    SceneletDoc,
    ShotDoc,
    StoryDoc,
    StoryFileError,
)
from bundler.support.documents import DocumentError, read_text_file

# --------------------------------------------------------------------------- reading


class _LineDict(dict[Any, Any]):
    """A YAML mapping that remembers the line of each key, for error messages."""

    line: int
    key_lines: dict[Any, int]


# libyaml's parser is ~10x faster on big stories; the constructor (and so every check) is the same
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
    result = _LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in result
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "found an unhashable key", key_node.start_mark
            ) from None
        if duplicate:  # PyYAML would silently keep the last one: a typo trap
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Reader:
    """Field-by-field validation; every error names the file, the line and the field path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, line: int | None, problem: str) -> StoryFileError:
        position = f"{self.source}:{line}" if line else self.source
        return StoryFileError(f"{position}: {where}: {problem}")

    def mapping(self, value: Any, where: str, line: int | None, keys: Mapping[str, bool]) -> _LineDict:
        if not isinstance(value, _LineDict):
            raise self.fail(where or "document", line, f"must be a mapping, not {_kind(value)}")
        for key in value:
            if key not in keys:
                close = difflib.get_close_matches(str(key), list(keys), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(keys)})"
                raise self.fail(_join(where, key), value.key_lines[key], f"unknown key{hint}")
        for key, required in keys.items():
            if required and key not in value:
                raise self.fail(_join(where, key), value.line, "missing required field")
        return value

    def text(self, m: _LineDict, key: str, where: str, *, nullable: bool = False, non_blank: bool = False) -> Any:
        value = m.get(key)
        line = m.key_lines.get(key, m.line)
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            raise self.fail(_join(where, key), line, f"must be a string, not {_kind(value)}")
        if non_blank and not value.strip():
            raise self.fail(_join(where, key), line, "must not be blank")
        if "\x00" in value:
            raise self.fail(_join(where, key), line, "contains a NUL character")
        return value

    def flag(self, m: _LineDict, key: str, where: str) -> bool:
        value = m.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(
                _join(where, key), m.key_lines.get(key, m.line), f"must be true or false, not {_kind(value)}"
            )
        return value

    def uuid(self, m: _LineDict, key: str, where: str, *, nullable: bool = False) -> str | None:
        value = m.get(key)
        line = m.key_lines.get(key, m.line)
        if value is None and nullable:
            return None
        if not isinstance(value, str) or len(value.strip()) != 36:
            raise self.fail(
                _join(where, key), line, f"must be a UUID like 7d3f5a2e-4b1c-4e8a-9f60-2c5d8e1a0b11, not {value!r}"
            )
        try:
            return str(uuid.UUID(value.strip()))
        except ValueError:
            raise self.fail(_join(where, key), line, f"{value!r} is not a UUID") from None

    def timestamp(self, m: _LineDict, key: str, where: str) -> datetime | None:
        value = m.get(key)
        line = m.key_lines.get(key, m.line)
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.strip())
            except ValueError:
                raise self.fail(_join(where, key), line, f"{value!r} is not an ISO 8601 timestamp") from None
        if not isinstance(value, datetime):
            raise self.fail(_join(where, key), line, f"must be an ISO 8601 timestamp, not {_kind(value)}")
        if value.tzinfo is None:
            raise self.fail(_join(where, key), line, "needs a time zone (for example 2024-03-01T09:00:00Z)")
        return value.astimezone(UTC)

    def json(self, value: Any, where: str, line: int | None) -> Any:
        """Reject what YAML can hold but a JSONB column cannot (iteratively: payloads can nest deeply)."""
        stack: list[tuple[Any, str]] = [(value, where)]
        seen: set[int] = set()  # YAML aliases share objects: visit each once (no "billion laughs")
        while stack:
            item, path = stack.pop()
            if isinstance(item, (dict, list)):
                if id(item) in seen:
                    continue
                seen.add(id(item))
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str):
                        raise self.fail(path, line, f"has a non-string key {key!r}; quote it")
                    stack.append((child, _join(path, key)))
            elif isinstance(item, list):
                stack.extend((child, f"{path}[{i}]") for i, child in enumerate(item))
            elif isinstance(item, float) and not math.isfinite(item):
                raise self.fail(path, line, "is not a finite number")
            elif isinstance(item, str) and "\x00" in item:
                raise self.fail(path, line, "contains a NUL character")
            elif isinstance(item, date):
                raise self.fail(path, line, "is a YAML timestamp; quote it to keep it a string")
            elif item is not None and not isinstance(item, (str, bool, int, float)):
                raise self.fail(path, line, f"is not JSON ({_kind(item)})")
        return value


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _kind(value: Any) -> str:
    names = {type(None): "null", bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return names.get(type(value), type(value).__name__)


# Aliases may add this many nodes beyond those written in the file; a "billion laughs" file
# (aliases of aliases) would add billions, and every later step would walk them all.
ALIAS_EXPANSION_BUDGET = 100_000


def _load_yaml(text: str, source: str) -> Any:
    loader = _Loader(text)  # a SafeLoader: no arbitrary objects
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_alias_expansion(node, source)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_alias_expansion(root: yaml.Node, source: str) -> None:
    """Refuse a document whose aliases expand past ``ALIAS_EXPANSION_BUDGET`` nodes (or loop)."""
    sizes: dict[int, int] = {}  # node id -> nodes once every alias in it is expanded
    entered: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if not children_done:
            if id(node) in entered:  # its subtree is still open below us: the alias loops
                raise StoryFileError(f"{source}: a YAML alias refers to itself (recursive anchor); not a story file")
            entered.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
        if sizes[id(node)] - len(sizes) > ALIAS_EXPANSION_BUDGET:
            raise StoryFileError(
                f"{source}: YAML aliases expand to more than {ALIAS_EXPANSION_BUDGET:,} extra values "
                "(an alias bomb?); refusing it"
            )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def parse_story(text: str, source: str) -> StoryDoc:
    """Parse and validate one document's fields (the tree is checked by ``seed.plan_scenelets``)."""
    try:
        data = _load_yaml(text, source)
    except RecursionError:
        raise StoryFileError(f"{source}: nested too deeply (thousands of levels); not a story file") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise StoryFileError(f"{source}: malformed YAML at {where}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise StoryFileError(f"{source}: malformed YAML: {exc}") from None
    r = _Reader(source)
    top = r.mapping(data, "", 1, TOP_KEYS)
    if top["format"] != FORMAT:
        raise r.fail("format", top.key_lines["format"], f"unsupported format {top['format']!r} (expected {FORMAT!r})")
    media = r.text(top, "media", "", nullable=True, non_blank=True)
    story = r.mapping(top["story"], "story", top.key_lines["story"], STORY_KEYS)
    created_at = r.timestamp(story, "created_at", "story")
    if created_at is None:
        raise r.fail("story.created_at", story.key_lines["created_at"], "must be an ISO 8601 timestamp, not null")
    audio_doc = r.json(story.get("audio_design_document"), "story.audio_design_document", story.line)
    items = top["scenelets"]
    if not isinstance(items, list) or not items:
        raise r.fail("scenelets", top.key_lines["scenelets"], "must be a non-empty list of scenelets")
    return StoryDoc(
        id=str(r.uuid(story, "id", "story")),
        title=r.text(story, "title", "story", non_blank=True),
        initial_prompt=r.text(story, "initial_prompt", "story"),
        created_at=created_at,
        audio_design_document=audio_doc,
        media=media,
        scenelets=tuple(_parse_scenelet(r, item, i, top.line) for i, item in enumerate(items)),
    )


def _parse_scenelet(r: _Reader, item: Any, position: int, line: int) -> SceneletDoc:
    where = f"scenelets[{position}]"
    m = r.mapping(item, where, getattr(item, "line", line), SCENELET_KEYS)
    label = r.text(m, "label", where, nullable=True)
    role = r.text(m, "role", where, nullable=True)
    if role is not None and role not in ROLES:
        raise r.fail(f"{where}.role", m.key_lines["role"], f"must be one of {', '.join(ROLES)}, not {role!r}")
    content: dict[str, Any] = {"description": r.text(m, "description", where)}
    if "dialogue" in m:
        content["dialogue"] = _dialogue(r, m, where)
    if "shot_suggestions" in m:
        suggestions = m["shot_suggestions"]
        if not isinstance(suggestions, list) or not all(isinstance(s, str) for s in suggestions):
            raise r.fail(f"{where}.shot_suggestions", m.key_lines["shot_suggestions"], "must be a list of strings")
        content["shot_suggestions"] = r.json(suggestions, f"{where}.shot_suggestions", m.key_lines["shot_suggestions"])
    extra = m.get("content_extra") or {}
    extra_line = m.key_lines.get("content_extra", m.line)
    if not isinstance(extra, dict):
        raise r.fail(f"{where}.content_extra", extra_line, f"must be a mapping, not {_kind(extra)}")
    for key in extra:
        if key in CONTENT_FIELDS:
            raise r.fail(f"{where}.content_extra.{key}", extra_line, f"use the scenelet field {key!r} instead")
    content.update(r.json(dict(extra), f"{where}.content_extra", extra_line))
    shots = m.get("shots") or []
    if not isinstance(shots, list):
        raise r.fail(f"{where}.shots", m.key_lines["shots"], f"must be a list, not {_kind(shots)}")
    return SceneletDoc(
        id=str(r.uuid(m, "id", where)),
        parent=r.uuid(m, "parent", where, nullable=True),
        label=label,
        role=role,
        branch_point=r.flag(m, "branch_point", where),
        terminal=r.flag(m, "terminal", where),
        choice_label=r.text(m, "choice_label", where, nullable=True),
        choice_prompt=r.text(m, "choice_prompt", where, nullable=True),
        created_at=r.timestamp(m, "created_at", where),
        content=content,
        branch_audio=r.text(m, "branch_audio", where, nullable=True),
        shots=tuple(_parse_shot(r, shot, f"{where}.shots[{i}]", m.line) for i, shot in enumerate(shots)),
        where=where,
        line=m.line,
        key_lines=dict(m.key_lines),
    )


def _dialogue(r: _Reader, m: _LineDict, where: str) -> list[dict[str, Any]]:
    entries = m["dialogue"]
    line = m.key_lines["dialogue"]
    if not isinstance(entries, list):
        raise r.fail(f"{where}.dialogue", line, "must be a list of {character, line} entries")
    result = []
    for i, entry in enumerate(entries):
        path = f"{where}.dialogue[{i}]"
        if not isinstance(entry, _LineDict):
            raise r.fail(path, line, "must be a mapping with character and line")
        for key in ("character", "line"):
            if not isinstance(entry.get(key), str):
                raise r.fail(f"{path}.{key}", entry.line, "must be a string")
        result.append(r.json(dict(entry), path, entry.line))
    return result


def _parse_shot(r: _Reader, item: Any, where: str, line: int) -> ShotDoc:
    m = r.mapping(item, where, getattr(item, "line", line), SHOT_KEYS)
    index = m["index"]
    if not isinstance(index, int) or isinstance(index, bool) or index < 1:
        raise r.fail(f"{where}.index", m.key_lines["index"], f"must be a positive integer, not {index!r}")
    sequence = m.get("stored_sequence")
    if sequence is not None and (not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 1):
        raise r.fail(f"{where}.stored_sequence", m.key_lines["stored_sequence"], "must be a positive integer")
    if m["storyboard"] is None:
        raise r.fail(f"{where}.storyboard", m.key_lines["storyboard"], "must not be null")
    return ShotDoc(
        index=index,
        storyboard=r.json(m["storyboard"], f"{where}.storyboard", m.key_lines["storyboard"]),
        key_frame=r.text(m, "key_frame", where, nullable=True),
        audio=r.text(m, "audio", where, nullable=True),
        video=r.text(m, "video", where, nullable=True),
        stored_label=r.text(m, "stored_label", where, nullable=True, non_blank=True),
        stored_sequence=sequence,
        line=m.line,
        key_lines=dict(m.key_lines),
    )


MAX_STORY_FILE_BYTES = 64 * 1024 * 1024  # a 100,000-shot story is far smaller


def load_story_file(path: Path) -> StoryDoc:
    try:  # capped, and a regular file: /dev/zero or a FIFO is refused at once
        text = read_text_file(path, MAX_STORY_FILE_BYTES)
    except DocumentError as exc:
        raise StoryFileError(f"{path}: {exc}") from None
    return parse_story(text, str(path))


def derive_created_at(doc: StoryDoc) -> dict[str, datetime]:
    """Timestamps that make the recomputed pre-order equal the file order.

    Replays the generator: parents are created before their children, and the
    children of a branch last-first, so the first-listed sibling is the newest.
    One second apart, after the story's own ``created_at``.
    """
    children: dict[str | None, list[str]] = {}
    for scenelet in doc.scenelets:
        children.setdefault(scenelet.parent, []).append(scenelet.id)
    stamps: dict[str, datetime] = {}
    stack = list(children.get(None, []))
    while stack:
        node = stack.pop()
        if node in stamps:  # parent cycles are reported by the tree check
            continue
        stamps[node] = doc.created_at + timedelta(seconds=len(stamps) + 1)
        stack.extend(children.get(node, []))
    return stamps
