"""Every problem code the bundler reports: severity, meaning, usual fix.

The one source of ``docs/problems.md`` (``python -m bundler.problem_catalogue``
writes it) and of ``bundler check --explain CODE``. tests/test_problem_catalogue.py
fails when the code emits a code missing here, or this lists one never emitted.

Long: a table of about fifty entries, one per code; split, it would only be harder to scan.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Entry:
    code: str
    severity: str  # "error", "warning", or both with the command that reports each
    reported_by: str
    meaning: str
    fix: str

    def markdown(self) -> str:
        return (
            f"### `{self.code}`\n\n"
            f"**Severity:** {self.severity} · **Reported by:** {self.reported_by}\n\n"
            f"{self.meaning}\n\n**Usual fix:** {self.fix}\n"
        )

    def text(self) -> str:
        return (
            f"{self.code} ({self.severity}; reported by {self.reported_by})\n\n"
            f"{self.meaning}\n\nUsual fix: {self.fix}\n"
        )


_STORY = "assemble, check"
_VERIFY = "verify"

_ENTRIES = (
    Entry(
        "story-not-found",
        "error",
        _STORY,
        "No story has this id in the database the command read.",
        "Check the id (`bundler stories` lists them) and `--database-url`/`DATABASE_URL`.",
    ),
    Entry(
        "json-too-deep",
        "error",
        "assemble, check, export",
        "A JSON value stored for the story nests thousands of levels deep, too deeply to read: the story's "
        "`audio_design_document` (which bundling reads), or, for `export`, a scenelet's `content` or a shot's "
        "`storyboard_payload`. PostgreSQL accepts such values. The message names the column and, for a "
        "scenelet or shot, its UUID, label and shot index.",
        "Rewrite the value in the database (regenerate it, or set it to null), then run again.",
    ),
    # --- the story tree (assemble, check) ------------------------------------------------
    Entry(
        "no-scenelets",
        "error",
        _STORY,
        "The story row exists but has no scenelets, so there is nothing to play.",
        "Generate the story's scenelets first, or check that the story id is the one you meant.",
    ),
    Entry(
        "no-root",
        "error",
        _STORY,
        "Every scenelet has a parent, so the tree has no start (a cycle with nothing hanging off a root).",
        "Set `parent_id` to null on the story's first scenelet.",
    ),
    Entry(
        "multiple-roots",
        "error",
        _STORY,
        "More than one scenelet has no parent; a story has exactly one start.",
        "Give every scenelet but the first one its parent; `bundler export` lists the roots.",
    ),
    Entry(
        "parent-cycle",
        "error",
        _STORY,
        "Scenelets point at each other as parents in a loop; they and everything below them are unreachable.",
        "Fix the `parent_id` of one scenelet of the cycle so that the chain leads back to the root.",
    ),
    Entry(
        "foreign-parent",
        "error",
        _STORY,
        "A scenelet's parent is a scenelet of another story (or no scenelet at all).",
        "Point `parent_id` at a scenelet of the same story.",
    ),
    Entry(
        "foreign-shot",
        "error",
        _STORY,
        "Shots of this story reference a scenelet (`scenelet_ref`) that belongs to another story.",
        "Re-create those shots with the `scenelet_ref` of this story's scenelet.",
    ),
    Entry(
        "duplicate-shot-index",
        "error",
        _STORY,
        "Two shots of one scenelet have one `shot_index` (under different labels); the message names both rows.",
        "Give each shot of the scenelet its own `shot_index`, or delete the stray row.",
    ),
    Entry(
        "root-not-playable",
        "error",
        _STORY,
        "The first scenelet has no shot with a usable key frame or narration, so the player cannot start.",
        "Generate the root scenelet's key frames or narration, or fix their stored paths (`bundler check` "
        "lists each missing file).",
    ),
    Entry(
        "unplayable-scenelet",
        "warning (assemble, check); error (verify)",
        f"{_STORY}, {_VERIFY}",
        "assemble/check: a scenelet has no shot with usable media, so it and the scenelets below it are left "
        "out of the bundle. verify: a bundled scenelet has no shots.",
        "Generate the scenelet's media; under `--strict` this fails the run. A bundle that fails verify this "
        "way was edited by hand: assemble it again.",
    ),
    Entry(
        "multiple-children",
        "error",
        _STORY,
        "A scenelet that is not a branch point has more than one playable child; the player would not know "
        "which to play.",
        "Mark it as a branch point (with a choice prompt and choice labels) or remove the extra child.",
    ),
    Entry(
        "incomplete-path",
        "warning",
        _STORY,
        "A non-terminal scenelet has no (playable) child yet; the path ends there and the player says it is "
        "still being written.",
        "Generate the rest of the path, or mark the scenelet terminal if the story ends there.",
    ),
    Entry(
        "terminal-with-children",
        "warning",
        _STORY,
        "A scenelet marked terminal has children; they are not bundled.",
        "Clear `is_terminal_node`, or delete the children if the story really ends there.",
    ),
    Entry(
        "blank-choice-prompt",
        "error",
        _STORY,
        "A branch point offered to the viewer has no choice prompt (the question on the choice overlay).",
        "Fill `choice_prompt` of the branch point.",
    ),
    Entry(
        "blank-choice-label",
        "error",
        _STORY,
        "A choice offered at a branch has no label (the button text).",
        "Fill `choice_label_from_parent` of the child scenelet.",
    ),
    Entry(
        "missing-description",
        "warning",
        _STORY,
        "A scenelet's content has no description; the player shows it when a shot has no narration lines.",
        "Add `description` to the scenelet's content.",
    ),
    Entry(
        "label-drift",
        "warning",
        _STORY,
        "The label/sequence stored on a scenelet's shots (`scenelet_id`, `scenelet_sequence`) differs from the "
        "one recomputed from the tree. Harmless for bundles (grouping is by UUID) but confusing for people.",
        "Re-run the pipeline step that stores shots, or update the shots' `scenelet_id`/`scenelet_sequence`.",
    ),
    # --- media (assemble, check) ---------------------------------------------------------
    Entry(
        "unsafe-asset-path",
        "error",
        _STORY,
        "A stored media path is absolute, contains `..`, or resolves (symlinks included) outside the assets "
        "root. It is refused, never followed.",
        "Store paths relative to the assets root (a leading `generated/` is fine) and keep symlinks inside it.",
    ),
    Entry(
        "missing-media",
        "warning",
        _STORY,
        "A stored key frame, narration or branch narration file is not under the assets root (or cannot be "
        "read). The shot plays without it.",
        "Check `--assets-root`/`BUNDLER_ASSETS_ROOT`, or generate the file. Under `--strict` this fails the run.",
    ),
    Entry(
        "wrong-media-format",
        "error",
        f"{_STORY}, {_VERIFY}",
        "A media file's content is not what its kind needs: key frames PNG, narration WAV (RIFF/WAVE), music "
        "MP4/M4A. Checked by structure: PNG signature, a complete IHDR and IEND at the end; RIFF/WAVE with "
        "`fmt ` and `data` chunks inside a RIFF size that fits the file; an `ftyp` box with an audio brand "
        "and a `moov` box. Empty and truncated files count.",
        "Regenerate or re-encode the file; the message says what it actually is.",
    ),
    Entry(
        "media-changed",
        "error",
        "assemble",
        "A media file was removed, changed size or format, or was replaced by something that is not a regular "
        "file (a FIFO, device, folder or symlink) between the check and the copy (the pipeline was still "
        "writing it). Nothing was written; an existing bundle is kept.",
        "Run again once the pipeline has finished writing the story's media.",
    ),
    # --- music (assemble, check) ---------------------------------------------------------
    Entry(
        "invalid-audio-design",
        "warning",
        _STORY,
        "The story's `audio_design_document` is not valid JSON, not an object, or its cues are not a list; "
        "the bundle has no music.",
        'Fix the document: `{"audio_design_document": {"music_and_ambience_cues": [...]}}`.',
    ),
    Entry(
        "invalid-music-cue",
        "warning",
        _STORY,
        "A music cue is not an object, has no `cue_name`, or names no scenelets; it is ignored.",
        "Give the cue a `cue_name` and `associated_scenelet_ids`.",
    ),
    Entry(
        "unknown-music-scenelet",
        "warning",
        _STORY,
        "A music cue names a scenelet label that no shot of the story carries.",
        "Use labels of this story's scenelets (`scenelet-N`, as `bundler export` shows them).",
    ),
    Entry(
        "music-cue-conflict",
        "warning",
        _STORY,
        "Two cues claim the same scenelet; the first cue keeps it.",
        "Remove the scenelet from one of the cues.",
    ),
    # --- reading a bundle back (verify) --------------------------------------------------
    Entry(
        "unsupported-format",
        "error",
        _VERIFY,
        "manifest.json is not `format: story-bundle`, `formatVersion: 1`.",
        "Verify with the bundler version that wrote the bundle, or assemble it again.",
    ),
    Entry(
        "invalid-manifest",
        "error",
        _VERIFY,
        "manifest.json does not have the shape of the format (`bundler schema manifest`): a missing or "
        "mistyped field, unsorted files, a shot or step with extra keys, a branch with a blank prompt.",
        "Assemble the bundle again; never edit manifest.json by hand.",
    ),
    Entry(
        "unsafe-path",
        "error",
        _VERIFY,
        "A path in the manifest or an archive entry is absolute, has a `..` segment, or contains control "
        "characters, `#`, `%`, `?` or `\\`.",
        "Assemble the bundle again; do not trust the archive if it came from elsewhere.",
    ),
    Entry(
        "missing-file",
        "error",
        _VERIFY,
        "A file listed in manifest.json, or SHA256SUMS itself, is not in the bundle.",
        "Copy the whole bundle folder (or archive), or assemble it again.",
    ),
    Entry(
        "extra-file",
        "error",
        _VERIFY,
        "A file is in the bundle but not listed in manifest.json (or outside the archive's bundle folder).",
        "Remove the file; bundles are exactly what the manifest lists.",
    ),
    Entry(
        "size-mismatch",
        "error",
        _VERIFY,
        "A file's size differs from the size manifest.json records (truncated or replaced).",
        "Copy the bundle again, or assemble it again.",
    ),
    Entry(
        "checksum-mismatch",
        "error",
        _VERIFY,
        "A file's SHA-256 differs from manifest.json or SHA256SUMS: it changed after the bundle was written.",
        "Copy the bundle again, or assemble it again.",
    ),
    Entry(
        "sha256sums-mismatch",
        "error",
        _VERIFY,
        "SHA256SUMS and the bundle disagree: a file missing from the list, listed but absent, or a different "
        "hash than manifest.json.",
        "Assemble the bundle again.",
    ),
    Entry(
        "sha256sums-invalid",
        "error",
        _VERIFY,
        "SHA256SUMS is not UTF-8, has a line not in `sha256sum` format, lists a file twice or is not sorted.",
        "Assemble the bundle again.",
    ),
    Entry(
        "dangling-reference",
        "error",
        _VERIFY,
        "A path in the manifest (shot, branch narration, music) names a file that `files` does not list.",
        "Assemble the bundle again.",
    ),
    Entry(
        "player-manifest-mismatch",
        "error",
        _VERIFY,
        "The manifest embedded in `index.html` is not `manifest.json` (its `files` list aside), so the player "
        "would play something other than what the bundle declares.",
        "Assemble the bundle again; never edit `index.html` or `manifest.json` by hand.",
    ),
    Entry(
        "pointer-mismatch",
        "error",
        _VERIFY,
        "A bucket's `current.json` names a manifest SHA-256 that the version's `manifest.json` does not have: "
        "the version was changed after it was published, or the pointer was edited.",
        "Publish the story again (`bundler assemble ... --out s3://... --overwrite`), or roll back to a complete "
        "version (`bundler rollback`).",
    ),
    Entry(
        "duplicate-scenelet",
        "error",
        _VERIFY,
        "A scenelet id appears twice in `scenelets`.",
        "Assemble the bundle again.",
    ),
    Entry(
        "unknown-scenelet",
        "error",
        _VERIFY,
        "`rootSceneletId`, a `next` step or a music cue names a scenelet that is not in the bundle.",
        "Assemble the bundle again.",
    ),
    Entry(
        "unreachable-scenelet",
        "error",
        _VERIFY,
        "A bundled scenelet cannot be reached from the root through `next` steps.",
        "Assemble the bundle again.",
    ),
    Entry(
        "unknown-cue",
        "error",
        _VERIFY,
        "`music.sceneletCueMap` names a cue that `music.cues` does not have.",
        "Assemble the bundle again.",
    ),
    Entry(
        "duplicate-entry",
        "error",
        _VERIFY,
        "An archive holds the same path twice, so what gets unpacked depends on the tool.",
        "Create the archive again with `bundler assemble --archive`.",
    ),
    Entry(
        "not-a-regular-file",
        "error",
        f"{_STORY}, {_VERIFY}",
        "A stored media path names a folder, FIFO, socket or device under the assets root (never opened, so "
        "never waited on); or a bundle entry is a symbolic link, device, FIFO or socket. Media and bundles "
        "hold regular files only.",
        "Store the path of the media file itself; for a bundle, replace the link with the file or assemble again.",
    ),
    Entry(
        "unreadable-file",
        "error",
        _VERIFY,
        "A file or folder of the bundle cannot be read (permissions, or a damaged archive member).",
        "Fix the permissions, or copy the bundle again.",
    ),
)

CATALOGUE: dict[str, Entry] = {entry.code: entry for entry in _ENTRIES}


def explain(code: str) -> Entry | None:
    return CATALOGUE.get(code.strip().lower())


def markdown() -> str:
    """docs/problems.md."""
    head = (
        "# Problem codes\n\n"
        "Every problem the bundler reports has a stable kebab-case `code` and a `severity` (`error` stops the\n"
        "bundle; a `warning` does not, unless `--strict`). `bundler check --explain CODE` prints one entry.\n"
        "This file is generated from `bundler/problem_catalogue.py` "
        "(`python -m bundler.problem_catalogue > docs/problems.md`).\n\n"
        "| code | severity | reported by |\n|---|---|---|\n"
    )
    table = "".join(f"| [`{e.code}`](#{e.code}) | {e.severity} | {e.reported_by} |\n" for e in _ENTRIES)
    return head + table + "\n" + "\n".join(entry.markdown() for entry in _ENTRIES)


if __name__ == "__main__":
    import sys

    sys.stdout.write(markdown())
