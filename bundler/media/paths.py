"""Stored media paths: what the database holds, made safe and relative (docs/design.md §3).

Pure: no file system and no backend; the local folder and the bucket apply the same rules.
"""

from __future__ import annotations

SKIPPED_PLACEHOLDER = "N/A"


def is_skipped(stored: str | None) -> bool:
    """True when no media is stored: NULL, blank or the ``N/A`` placeholder (trimmed, any case)."""
    if stored is None:
        return True
    text = stored.strip()
    return not text or text.upper() == SKIPPED_PLACEHOLDER


class UnsafePath(ValueError):
    """A stored path that could leave the assets root."""


def normalize_stored_path(stored: str) -> str:
    """Relative POSIX path under the assets root for a usable stored path.

    Strips a leading ``./``, then one leading ``/generated/`` or ``generated/``
    (and otherwise a leading ``/``). Raises ``UnsafePath`` for what remains
    absolute, contains ``..``, backslashes, NUL bytes or is empty. Empty and
    ``.`` segments are dropped (``a//./b`` is ``a/b``), as POSIX resolves them.
    """
    text = stored.strip()
    if "\x00" in text or "\\" in text:
        raise UnsafePath("contains a backslash or NUL byte")
    if text.startswith("./"):
        text = text[2:]
    for prefix in ("/generated/", "generated/"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    else:
        if text.startswith("/") and not text.startswith("//"):
            text = text[1:]
    if text.startswith("/"):
        raise UnsafePath("is an absolute path")
    parts = [part for part in text.split("/") if part and part != "."]
    if ".." in parts:
        raise UnsafePath("contains a '..' segment")
    if not parts:
        raise UnsafePath("names no file")
    return "/".join(parts)
