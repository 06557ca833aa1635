"""Read a bundle back and report every way it breaks the contract (docs/design.md §3).

A bundle folder or a ``.zip``/``.tar.gz`` archive of one is read in a single
streaming pass: each file is hashed while it is read and only ``manifest.json``
and ``SHA256SUMS`` are kept in memory; nothing is unpacked to disk. Every check
after that pass works on those digests and the parsed manifest, so a bundle of
any size costs one read of its bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bundler.bundle.manifest import FORMAT, FORMAT_VERSION
from bundler.bundle.manifest import MANIFEST_NAME as MANIFEST
from bundler.bundle.manifest import PLAYER_NAME as PLAYER
from bundler.bundle.manifest import SUMS_NAME as SUMS
from bundler.bundle.reader import Found, Reading, is_safe_path, load_manifest
from bundler.bundle.verify_graph import UUID, GraphChecks, Listed
from bundler.errors import BundleUnreadableError
from bundler.player import embedded_manifest
from bundler.problems import Problem

_HEX64 = re.compile(r"[0-9a-f]{64}")
# sha256sum lines: "<hash>  <name>" (or " *<name>"); a leading backslash marks an escaped name
_SUMS_LINE = re.compile(r"(\\?)([0-9a-fA-F]{64}) [ *](.+)")
_UTC_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")


@dataclass(frozen=True, slots=True)
class VerifyStats:
    files: int
    bytes: int
    scenelets: int

    def to_json(self) -> dict[str, int]:
        return {"files": self.files, "bytes": self.bytes, "scenelets": self.scenelets}


@dataclass(frozen=True, slots=True)
class VerifyReport:
    bundle: Path | str  # a folder or archive, or an s3:// URL
    problems: tuple[Problem, ...]
    stats: VerifyStats

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "bundlePath": str(self.bundle),
            "problems": [p.to_json() for p in self.problems],
            "stats": self.stats.to_json(),
        }


class Readable(Protocol):
    """What ``verify`` needs of a bundle: ``storage.ports.BundleReader`` (a folder, an archive, a bucket)."""

    def scan(self, reading: Reading) -> Found: ...

    def where(self) -> Path | str: ...


def verify_bundle(bundle: Readable, reading: Reading | None = None) -> VerifyReport:
    """Check a bundle read through ``bundle``; raises ``BundleUnreadableError`` if it cannot be read at all.

    ``reading`` sets hashing threads, progress, and ``quick`` (sizes and completeness only: no
    file but manifest.json and SHA256SUMS is hashed, so changed bytes of the same size pass).
    """
    try:
        found = bundle.scan(reading or Reading())
        manifest = load_manifest(found.files[MANIFEST].content)
    except BundleUnreadableError as exc:
        raise BundleUnreadableError(f"Cannot verify {bundle.where()}: {exc}.") from None
    checks = _Checks(found.files)
    checks.problems.extend(found.problems)
    checks.run(manifest)
    stats = VerifyStats(
        files=len(found.files),
        bytes=sum(d.size for d in found.files.values()),
        scenelets=checks.scenelet_count,
    )
    problems = sorted(checks.problems, key=lambda p: (p.path or "", p.code, p.message))
    return VerifyReport(bundle.where(), tuple(problems), stats)


# --- checks ----------------------------------------------------------------------------------


class _Checks(GraphChecks):
    """Every check of a read bundle: the files here, the story graph in ``verify_graph``."""

    def run(self, manifest: dict[str, Any]) -> None:
        self.check_format(manifest)
        self.check_file_list(manifest.get("files"))
        self.check_files_present()
        self.check_sums()
        scenelets = self.check_scenelets(manifest.get("scenelets"))
        self.check_root_and_reachability(manifest.get("rootSceneletId"), scenelets)
        self.check_music(manifest.get("music"), scenelets)
        self.check_player_manifest(manifest)

    # format and file list ----------------------------------------------------------------

    def check_player_manifest(self, manifest: Mapping[str, Any]) -> None:
        """The player plays what it embeds: that must be ``manifest.json`` (``files`` may be left out)."""
        player = self.files.get(PLAYER)
        if player is None or player.content is None:
            return  # a missing index.html is reported by the file checks
        embedded = embedded_manifest(player.content)
        if not isinstance(embedded, dict):
            self.problem("player-manifest-mismatch", "index.html embeds no readable manifest", path=PLAYER)
            return
        differing = sorted(
            key for key in (set(embedded) | set(manifest)) - {"files"} if embedded.get(key) != manifest.get(key)
        )
        if differing:
            keys = ", ".join(differing)
            self.problem(
                "player-manifest-mismatch",
                f"the manifest in index.html differs from manifest.json in: {keys}",
                path=PLAYER,
            )

    def check_format(self, manifest: Mapping[str, Any]) -> None:
        if manifest.get("format") != FORMAT or manifest.get("formatVersion") != FORMAT_VERSION:
            self.problem(
                "unsupported-format",
                f"format is {manifest.get('format')!r} version {manifest.get('formatVersion')!r}, "
                f"expected {FORMAT!r} version {FORMAT_VERSION}",
            )
        self.exact_keys(manifest, "manifest")
        generator = manifest.get("generator")
        if not isinstance(generator, str) or not generator.startswith("bundler "):
            self.problem("invalid-manifest", "generator is not 'bundler <version>'")
        metadata = manifest.get("metadata")
        self.exact_keys(metadata, "metadata")
        if not isinstance(metadata, dict) or not all(
            isinstance(metadata.get(key), str) for key in ("storyId", "title", "exportedAt")
        ):
            self.problem("invalid-manifest", "metadata needs storyId, title and exportedAt strings")
        elif not (
            UUID.fullmatch(metadata["storyId"]) and metadata["title"] and _UTC_TIME.fullmatch(metadata["exportedAt"])
        ):
            self.problem("invalid-manifest", "metadata needs a UUID storyId, a title and an ISO 8601 UTC exportedAt")

    def check_file_list(self, entries: Any) -> None:
        if not isinstance(entries, list):
            self.problem("invalid-manifest", "files is not a list")
            return
        paths: list[str] = []
        for position, entry in enumerate(entries):
            path = entry.get("path") if isinstance(entry, dict) else None
            if not isinstance(path, str):
                self.problem("invalid-manifest", f"files[{position}] has no path")
                continue
            paths.append(path)
            self.exact_keys(entry, "files entry", path)
            if not is_safe_path(path):
                self.problem("unsafe-path", "listed path is not a safe relative path", path)
                continue
            if path in (MANIFEST, SUMS):
                self.problem("invalid-manifest", f"files must not list {path}", path)
                continue
            if path in self.listed:
                self.problem("invalid-manifest", "listed twice in files", path)
                continue
            size, sha, media_type = entry.get("bytes"), entry.get("sha256"), entry.get("mediaType")
            size_ok = isinstance(size, int) and not isinstance(size, bool) and size >= 0
            sha_ok = isinstance(sha, str) and _HEX64.fullmatch(sha) is not None
            if not (size_ok and sha_ok and isinstance(media_type, str) and media_type):
                self.problem("invalid-manifest", "files entry needs bytes, a lowercase sha256 and mediaType", path)
            self.listed[path] = Listed(size if size_ok else None, sha if sha_ok else None)
        if paths != sorted(paths):
            self.problem("invalid-manifest", "files are not sorted by path")

    def check_files_present(self) -> None:
        for path, listed in self.listed.items():
            found = self.files.get(path)
            if found is None:
                self.problem("missing-file", "listed in manifest.json but not in the bundle", path)
            elif listed.bytes is not None and found.size != listed.bytes:
                # a different size implies a different checksum: one problem is enough
                self.problem("size-mismatch", f"is {found.size} bytes, manifest.json says {listed.bytes}", path)
            elif None not in (listed.sha256, found.sha256) and found.sha256 != listed.sha256:
                self.problem("checksum-mismatch", "SHA-256 differs from manifest.json", path)
        for path in self.files:
            if path not in self.listed and path not in (MANIFEST, SUMS):
                self.problem("extra-file", "is in the bundle but not listed in manifest.json", path)

    def check_sums(self) -> None:
        """SHA256SUMS must list exactly manifest.json plus the manifest's files, with their hashes.

        Hashes of listed files were already compared with the files themselves,
        so comparing SHA256SUMS with the manifest closes the loop.
        """
        digest = self.files.get(SUMS)
        if digest is None:
            self.problem("missing-file", "the checksum list is missing", SUMS)
            return
        sums = self._parse_sums(digest.content or b"")
        expected = {path: listed.sha256 for path, listed in self.listed.items()}
        expected[MANIFEST] = self.files[MANIFEST].sha256
        for path, sha in sums.items():
            if path not in expected:
                what = "itself" if path == SUMS else "a file manifest.json does not list"
                self.problem("sha256sums-mismatch", f"SHA256SUMS lists {what}", path)
            elif path == MANIFEST and sha != expected[path]:
                self.problem("checksum-mismatch", "SHA-256 differs from SHA256SUMS", path)
            elif expected[path] is not None and sha != expected[path]:
                self.problem("sha256sums-mismatch", "SHA256SUMS and manifest.json disagree", path)
        for path in expected:
            if path not in sums:
                self.problem("sha256sums-mismatch", "missing from SHA256SUMS", path)

    def _parse_sums(self, content: bytes) -> dict[str, str]:
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            self.problem("sha256sums-invalid", "is not UTF-8 text", SUMS)
            return {}
        sums: dict[str, str] = {}
        names: list[str] = []
        for number, line in enumerate(text.removesuffix("\n").split("\n"), start=1):
            match = _SUMS_LINE.fullmatch(line)
            if match is None:
                self.problem("sha256sums-invalid", f"line {number} is not in sha256sum format", SUMS)
                continue
            escaped, sha, name = match.groups()
            if escaped:
                name = re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m[1], m[1]), name)
            if name in sums:
                self.problem("sha256sums-invalid", f"line {number} lists {name} again", SUMS)
                continue
            sums[name] = sha.lower()
            names.append(name)
        if names != sorted(names):
            self.problem("sha256sums-invalid", "lines are not sorted by path", SUMS)
        return sums
