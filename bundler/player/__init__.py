"""The offline player: one self-contained ``index.html`` per bundle (docs/design.md §5).

``render_player`` fills ``player.html`` with the inline CSS and JS shipped as
package data and with the bundle manifest as a JSON data block. It is pure
and deterministic: the same manifest always gives byte-identical HTML, so a
bundle's checksums are stable across reruns.

Safety of the embedding:

* The manifest is JSON inside ``<script type="application/json">``. Every
  ``<``, ``>`` and ``&`` is written as ``\\u003c`` etc., so story text can never
  close the element or open a comment, and U+2028/U+2029 are escaped too so
  the text stays valid in any JavaScript context. Those characters only occur
  inside JSON strings, where the escapes mean the same thing to ``JSON.parse``.
* Substitution is a single regex pass with a function, so story text that
  looks like a placeholder (or contains ``$&``, ``\\1``...) is never re-scanned
  or interpreted.
* A Content-Security-Policy meta tag allows exactly the inline script and
  style by their SHA-256 hashes (computed here, at render time), and media
  and images from the bundle folder only; there is no network access at all.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Any

__all__ = ["content_security_policy", "embed_json", "render_player"]

_PLACEHOLDER = re.compile(r"@@([A-Z]+)@@")
_PLACEHOLDERS = frozenset({"CSP", "GENERATOR", "TITLE", "STYLE", "SCRIPT", "MANIFEST"})
_JSON_ESCAPES = str.maketrans(
    {
        "<": "\\u003c",
        ">": "\\u003e",
        "&": "\\u0026",
        "\u2028": "\\u2028",
        "\u2029": "\\u2029",
    }
)


class PlayerTemplateError(RuntimeError):
    """The packaged player files are broken (a bug in bundler, not in the story)."""


@cache
def _asset(name: str) -> str:
    # bytes -> str ourselves: no newline translation, so the hashes below match
    # exactly the text that ends up between the tags
    return files(__name__).joinpath(name).read_bytes().decode("utf-8")


def _sha256_source(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def content_security_policy(script: str, style: str) -> str:
    """The page's CSP: only the given inline script/style run; media from the bundle only.

    ``'self'`` covers a bundle served over HTTP; ``file:`` covers opening
    ``index.html`` straight from disk, where browsers disagree on what
    ``'self'`` means for file URLs. ``data:`` images are allowed for the page's
    empty inline icon only (without one, browsers ask a server for
    ``/favicon.ico``); scripts and styles stay locked to their hashes.
    """
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {_sha256_source(script)}",
            f"style-src {_sha256_source(style)}",
            "img-src 'self' file: data:",
            "media-src 'self' file:",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


def _plain(value: Any) -> Any:
    # read-only mappings (e.g. MappingProxyType) are fine as input; JSON needs a dict
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} cannot be embedded in the player")


def embed_json(value: Any) -> str:
    """JSON safe to place verbatim inside ``<script type="application/json">``.

    Keys are sorted so equal manifests give equal bytes whatever their key order.
    """
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False, default=_plain)
    return text.translate(_JSON_ESCAPES)


_EMBEDDED = re.compile(rb'<script id="story-manifest" type="application/json">(.*?)</script>', re.DOTALL)


def embedded_manifest(player: bytes) -> Any:
    """The manifest an ``index.html`` written by ``render_player`` carries, or None when none parses."""
    found = _EMBEDDED.search(player)
    if found is None:
        return None
    try:
        return json.loads(found.group(1).decode("utf-8"))
    except (ValueError, RecursionError):
        return None


def _title(manifest: Mapping[str, Any]) -> str:
    metadata = manifest.get("metadata")
    title = metadata.get("title") if isinstance(metadata, Mapping) else None
    return title.strip() if isinstance(title, str) and title.strip() else "Untitled story"


def _check_inline(name: str, text: str, closing: str) -> None:
    # our own code must not end its element early; story text is escaped, this is not
    if closing in text.lower() or "<!--" in text:
        raise PlayerTemplateError(f"{name} contains {closing!r} or '<!--' and cannot be inlined")


def render_player(manifest: Mapping[str, Any]) -> str:
    """The complete ``index.html`` for a bundle whose manifest is ``manifest``."""
    from bundler import __version__  # here, not at import: ``verify`` reads players but never renders one

    template = _asset("player.html")
    script = _asset("player.js")
    style = _asset("player.css")
    _check_inline("player.js", script, "</script")
    _check_inline("player.css", style, "</style")

    values = {
        # single quotes are the CSP's own syntax; the attribute is double-quoted
        "CSP": html.escape(content_security_policy(script, style), quote=False).replace('"', "&quot;"),
        "GENERATOR": html.escape(f"bundler {__version__}", quote=True),
        "TITLE": html.escape(_title(manifest), quote=True),
        "STYLE": style,
        "SCRIPT": script,
        "MANIFEST": embed_json(manifest),
    }
    found = _PLACEHOLDER.findall(template)
    if sorted(found) != sorted(_PLACEHOLDERS):
        raise PlayerTemplateError(f"player.html placeholders are {sorted(found)}")
    # one pass over the template only: replacement text is never scanned again
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)
