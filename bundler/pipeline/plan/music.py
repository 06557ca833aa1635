"""Music cues from ``stories.audio_design_document`` (docs/design.md §1, §3), read leniently."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bundler.problems import Problem, warning


@dataclass(frozen=True)
class RawCue:
    cue_name: str
    scenelet_refs: tuple[str, ...]  # labels ("scenelet-N") as stored in the document


def parse_cues(document: Any) -> tuple[tuple[RawCue, ...], tuple[Problem, ...]]:
    """Cues in document order, plus warnings for entries that cannot be used."""
    problems: list[Problem] = []
    if document is None:
        return (), ()
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError as exc:
            return (), (warning("invalid-audio-design", f"Audio design document is not valid JSON: {exc}."),)
        except RecursionError:
            return (), (warning("invalid-audio-design", "Audio design document is nested too deeply to read."),)
    if not isinstance(document, dict):
        return (), (warning("invalid-audio-design", "Audio design document is not a JSON object."),)
    inner = document.get("audio_design_document", document.get("audioDesignDocument", document))
    if isinstance(inner, str):
        return parse_cues({"audio_design_document": _loads_or_none(inner)})
    if not isinstance(inner, dict):
        return (), (warning("invalid-audio-design", "Audio design document is not a JSON object."),)
    entries = inner.get("music_and_ambience_cues", inner.get("musicAndAmbienceCues"))
    if entries is None:
        return (), ()
    if not isinstance(entries, list):
        return (), (warning("invalid-audio-design", "Music cues are not a list."),)
    cues: list[RawCue] = []
    for position, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            problems.append(warning("invalid-music-cue", f"Music cue #{position} is not an object."))
            continue
        name = entry.get("cue_name", entry.get("cueName"))
        if not isinstance(name, str) or not name.strip():
            problems.append(warning("invalid-music-cue", f"Music cue #{position} has no cue_name."))
            continue
        ids = entry.get("associated_scenelet_ids", entry.get("associatedSceneletIds"))
        refs = tuple(i.strip() for i in ids if isinstance(i, str) and i.strip()) if isinstance(ids, list) else ()
        if not refs:
            problems.append(warning("invalid-music-cue", f"Music cue {name.strip()!r} names no scenelets."))
            continue
        cues.append(RawCue(name.strip(), tuple(dict.fromkeys(refs))))
    return tuple(cues), tuple(problems)


def _loads_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text  # reported by the caller as "not an object"


# docs/design.md §3; `#` and `%` too, so every bundle path stays a plain URL segment once percent-encoded
_FORBIDDEN = re.compile(r'[\\/:*?"<>|#%\x00-\x1f\x7f-\x9f]')


MAX_CUE_NAME_BYTES = 100  # then "-" + 8 hex: with "-NN" and ".m4a" far below the 255-byte file name limit


def sanitize_cue_file_name(cue_name: str) -> str:
    """``\\ / : * ? " < > | # %``, control and format characters (bidi controls, zero-width) become
    ``-``, whitespace runs collapse, ends trimmed; a name over 100 bytes is cut at a character
    boundary and gets ``-`` and 8 hex digits of the cue name's SHA-256 (DESIGN §3)."""
    replaced = "".join("-" if unicodedata.category(ch) in ("Cf", "Cs", "Co") else ch for ch in cue_name)
    cleaned = " ".join(_FORBIDDEN.sub("-", replaced).split()) or "music-cue"
    if len(cleaned.encode("utf-8")) <= MAX_CUE_NAME_BYTES:
        return cleaned
    cut = cleaned.encode("utf-8")[:MAX_CUE_NAME_BYTES].decode("utf-8", errors="ignore").rstrip()
    digest = hashlib.sha256(cue_name.encode("utf-8", errors="surrogatepass")).hexdigest()[:8]
    return f"{cut}-{digest}"


def unique_file_names(cue_names: Iterable[str]) -> list[str]:
    """Sanitized names, with ``-2``, ``-3``… for later cues that collide (in cue order)."""
    taken: set[str] = set()
    result: list[str] = []
    for name in cue_names:
        base = sanitize_cue_file_name(name)
        candidate, n = base, 1
        while candidate.casefold() in taken:  # case-insensitive file systems collide too
            n += 1
            candidate = f"{base}-{n}"
        taken.add(candidate.casefold())
        result.append(candidate)
    return result
