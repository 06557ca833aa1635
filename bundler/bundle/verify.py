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
from typing import Any, NamedTuple, Protocol

from bundler.bundle.manifest import FORMAT, FORMAT_VERSION
from bundler.bundle.manifest import MANIFEST_NAME as MANIFEST
from bundler.bundle.manifest import PLAYER_NAME as PLAYER
from bundler.bundle.manifest import SUMS_NAME as SUMS
from bundler.bundle.reader import Digest, Found, Reading, is_safe_path, load_manifest
from bundler.errors import BundleUnreadableError
from bundler.media.structure import FORMAT_NAMES, MediaKind, bundled_kind, sniff
from bundler.player import embedded_manifest
from bundler.problems import Problem, error

_HEX64 = re.compile(r"[0-9a-f]{64}")
# sha256sum lines: "<hash>  <name>" (or " *<name>"); a leading backslash marks an escaped name
_SUMS_LINE = re.compile(r"(\\?)([0-9a-fA-F]{64}) [ *](.+)")
_NEXT_KEYS = {
    "terminal": {"type"},
    "incomplete": {"type"},
    "linear": {"type", "sceneletId"},
    "branch": {"type", "choicePrompt", "choices"},
}
_SHOT_KEYS = {"shotIndex", "imagePath", "audioPath", "lines"}
# the exact keys of each object of the format (`bundler schema manifest`)
_OBJECT_KEYS = {
    "manifest": {"format", "formatVersion", "generator", "metadata", "rootSceneletId", "scenelets", "music", "files"},
    "metadata": {"storyId", "title", "exportedAt"},
    "scenelet": {"id", "label", "description", "shots", "next", "branchAudioPath"},
    "music": {"cues", "sceneletCueMap"},
    "files entry": {"path", "bytes", "sha256", "mediaType"},
    "music cue": {"cueName", "sceneletIds", "audioPath"},
}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_UTC_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")
_LABEL = re.compile(r"scenelet-[1-9][0-9]*")


def _valid_lines(lines: Any) -> bool:
    return isinstance(lines, list) and all(
        isinstance(line, dict)
        and set(line) == {"speaker", "text"}
        and isinstance(line["speaker"], str)
        and isinstance(line["text"], str)
        for line in lines
    )


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


class _Listed(NamedTuple):
    bytes: int | None
    sha256: str | None


class _Checks:
    """Every check of a read bundle; problems accumulate so one run reports them all."""

    def __init__(self, files: Mapping[str, Digest]) -> None:
        self.files = files
        self.listed: dict[str, _Listed] = {}
        self.problems: list[Problem] = []
        self.scenelet_count = 0

    def problem(self, code: str, message: str, path: str = MANIFEST, **where: Any) -> None:
        self.problems.append(error(code, message, path=path, **where))

    def exact_keys(self, value: Any, kind: str, path: str = MANIFEST, **where: Any) -> None:
        """An object of the format carries exactly its keys: a missing or unknown one is a malformed manifest."""
        if not isinstance(value, dict):
            return
        expected = _OBJECT_KEYS[kind]
        missing, unknown = sorted(expected - set(value)), sorted(set(value) - expected)
        if missing or unknown:
            parts = [f"missing {', '.join(missing)}"] if missing else []
            parts += [f"unknown {', '.join(map(str, unknown))}"] if unknown else []
            self.problem("invalid-manifest", f"{kind} has {'; '.join(parts)}", path, **where)

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
            _UUID.fullmatch(metadata["storyId"]) and metadata["title"] and _UTC_TIME.fullmatch(metadata["exportedAt"])
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
            self.listed[path] = _Listed(size if size_ok else None, sha if sha_ok else None)
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

    # graph -----------------------------------------------------------------------------------

    def reference(self, value: Any, kind: MediaKind, what: str, **where: Any) -> None:
        """A media path the manifest points at: safe, listed, and of the right format."""
        if value is None:
            return
        if not isinstance(value, str):
            self.problem("invalid-manifest", f"{what} is not a string or null", **where)
        elif not is_safe_path(value):
            self.problem("unsafe-path", f"{what} is not a safe relative path", value, **where)
        elif value not in self.listed:
            self.problem("dangling-reference", f"{what} is not a file listed in the bundle", value, **where)
        elif value in self.files and not sniff(self.files[value].head, kind := bundled_kind(value, kind)):
            self.problem("wrong-media-format", f"{what} is not {FORMAT_NAMES[kind]}", value, **where)

    def check_scenelets(self, scenelets: Any) -> dict[str, dict[str, Any]]:
        """Well-formed scenelets by id (first occurrence wins); checks each one's own fields."""
        if not isinstance(scenelets, list):
            self.problem("invalid-manifest", "scenelets is not a list")
            return {}
        by_id: dict[str, dict[str, Any]] = {}
        for position, scenelet in enumerate(scenelets):
            uid = scenelet.get("id") if isinstance(scenelet, dict) else None
            if not isinstance(uid, str) or not _UUID.fullmatch(uid):
                self.problem("invalid-manifest", f"scenelets[{position}] has no UUID id")
            elif uid in by_id:
                self.problem("duplicate-scenelet", "appears twice in scenelets", scenelet_ref=uid)
            else:
                by_id[uid] = scenelet
        self.scenelet_count = len(by_id)
        for uid, scenelet in by_id.items():
            label = scenelet.get("label")
            where: dict[str, Any] = {"scenelet_ref": uid, "scenelet_label": label if isinstance(label, str) else None}
            self.exact_keys(scenelet, "scenelet", **where)
            if (
                not isinstance(label, str)
                or not _LABEL.fullmatch(label)
                or not isinstance(scenelet.get("description"), str)
            ):
                self.problem("invalid-manifest", "scenelet needs a label scenelet-N and a description string", **where)
            self.check_shots(scenelet.get("shots"), where)
            next_type = self.check_next(scenelet.get("next"), by_id, where)
            branch_audio = scenelet.get("branchAudioPath")
            if branch_audio is not None and next_type != "branch":
                self.problem("invalid-manifest", "branch narration on a scenelet that is not a branch", **where)
            self.reference(branch_audio, "audio", "branchAudioPath", **where)
        return by_id

    def check_shots(self, shots: Any, where: dict[str, Any]) -> None:
        if not isinstance(shots, list) or not shots:
            self.problem("unplayable-scenelet", "has no shots", **where)
            return
        previous = 0
        for shot in shots:
            if not isinstance(shot, dict) or set(shot) != _SHOT_KEYS:
                self.problem("invalid-manifest", "shot needs exactly shotIndex, imagePath, audioPath, lines", **where)
                continue
            index = shot["shotIndex"]
            if not isinstance(index, int) or isinstance(index, bool) or index <= previous:
                self.problem("invalid-manifest", f"shotIndex {index!r} is not increasing", **where)
            else:
                previous = index
            at = {**where, "shot_index": index if isinstance(index, int) else None}
            if shot["imagePath"] is None and shot["audioPath"] is None:
                self.problem("invalid-manifest", "shot has neither imagePath nor audioPath", **at)
            self.reference(shot["imagePath"], "image", "imagePath", **at)
            self.reference(shot["audioPath"], "audio", "audioPath", **at)
            if not _valid_lines(shot["lines"]):
                self.problem("invalid-manifest", "lines must be a list of {speaker, text} strings", **at)

    def check_next(self, step: Any, by_id: Mapping[str, Any], where: dict[str, Any]) -> str | None:
        kind = step.get("type") if isinstance(step, dict) else None
        if not isinstance(kind, str) or kind not in _NEXT_KEYS or set(step) != _NEXT_KEYS[kind]:
            self.problem("invalid-manifest", f"next is not a valid step (type {kind!r})", **where)
            return None
        if kind == "linear":
            self.target(step["sceneletId"], by_id, "next.sceneletId", where)
        elif kind == "branch":
            prompt, choices = step["choicePrompt"], step["choices"]
            if not isinstance(prompt, str) or not prompt.strip():
                self.problem("invalid-manifest", "branch has a blank choicePrompt", **where)
            if not isinstance(choices, list) or len(choices) < 2:
                self.problem("invalid-manifest", "branch offers fewer than two choices", **where)
                return str(kind)
            for choice in choices:
                if not isinstance(choice, dict) or set(choice) != {"sceneletId", "label"}:
                    self.problem("invalid-manifest", "choice needs exactly sceneletId and label", **where)
                    continue
                if not isinstance(choice["label"], str) or not choice["label"].strip():
                    self.problem("invalid-manifest", "choice has a blank label", **where)
                self.target(choice["sceneletId"], by_id, "choice sceneletId", where)
        return str(kind)

    def target(self, uid: Any, by_id: Mapping[str, Any], what: str, where: dict[str, Any]) -> None:
        if not isinstance(uid, str) or uid not in by_id:
            self.problem("unknown-scenelet", f"{what} {uid!r} is not a bundled scenelet", **where)

    def check_root_and_reachability(self, root: Any, by_id: Mapping[str, dict[str, Any]]) -> None:
        if not isinstance(root, str) or root not in by_id:
            self.problem("unknown-scenelet", f"rootSceneletId {root!r} is not a bundled scenelet")
            return
        seen = {root}
        pending = [root]  # iterative: a line of thousands of scenelets must not recurse
        while pending:
            for target in _targets(by_id[pending.pop()].get("next")):
                if isinstance(target, str) and target in by_id and target not in seen:
                    seen.add(target)
                    pending.append(target)
        for uid in by_id:
            if uid not in seen:
                self.problem("unreachable-scenelet", "cannot be reached from the root", scenelet_ref=uid)

    def check_music(self, music: Any, by_id: Mapping[str, Any]) -> None:
        if not isinstance(music, dict):
            self.problem("invalid-manifest", "music is not an object")
            return
        self.exact_keys(music, "music")
        cues, cue_map = music.get("cues"), music.get("sceneletCueMap")
        names: set[str] = set()
        for position, cue in enumerate(cues if isinstance(cues, list) else ()):
            self.exact_keys(cue, "music cue")
            name = cue.get("cueName") if isinstance(cue, dict) else None
            ids = cue.get("sceneletIds") if isinstance(cue, dict) else None
            if not isinstance(name, str) or not name.strip() or not isinstance(ids, list):
                self.problem("invalid-manifest", f"music cue {position} needs cueName and sceneletIds")
                continue
            names.add(name)
            for uid in ids:
                self.target(uid, by_id, f"music cue {name!r} sceneletId", {})
            if cue.get("audioPath") is None:
                self.problem("invalid-manifest", f"music cue {name!r} has no audioPath")
            self.reference(cue.get("audioPath"), "music", f"audioPath of music cue {name!r}")
        if not isinstance(cues, list) or not isinstance(cue_map, dict):
            self.problem("invalid-manifest", "music needs a cues list and a sceneletCueMap object")
            return
        for uid, name in cue_map.items():
            self.target(uid, by_id, "sceneletCueMap key", {})
            if not isinstance(name, str) or name not in names:
                self.problem("unknown-cue", f"sceneletCueMap names unknown cue {name!r}", scenelet_ref=uid)


def _targets(step: Any) -> list[Any]:
    if not isinstance(step, dict):
        return []
    if step.get("type") == "linear":
        return [step.get("sceneletId")]
    if step.get("type") == "branch" and isinstance(step.get("choices"), list):
        return [c.get("sceneletId") for c in step["choices"] if isinstance(c, dict)]
    return []
