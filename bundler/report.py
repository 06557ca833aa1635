"""What ``check`` and ``assemble`` say about one story: the ``--json`` report's shape."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bundler.problems import Problem


@dataclass(frozen=True)
class StoryReport:
    story_id: str
    ok: bool
    problems: tuple[Problem, ...]
    stats: Mapping[str, Any] = field(default_factory=dict)
    bundle_path: Path | str | None = None  # a folder, or the s3:// URL of a published version
    archive_path: Path | str | None = None
    title: str | None = None
    error: str | None = None  # why the story could not be processed at all
    error_exit_code: int | None = None

    @property
    def exit_code(self) -> int:
        if self.error_exit_code is not None:
            return self.error_exit_code
        return 0 if self.ok else 1

    @classmethod
    def failure(cls, story_id: str, message: str, exit_code: int) -> StoryReport:
        return cls(story_id, False, (), {}, error=message, error_exit_code=exit_code)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "ok": self.ok,
            "storyId": self.story_id,
            "bundlePath": str(self.bundle_path) if self.bundle_path else None,
            "problems": [p.to_json() for p in self.problems],
            "stats": dict(self.stats),
        }
        if self.archive_path:
            document["archivePath"] = str(self.archive_path)
        if self.error:
            document["error"] = {"exitCode": self.exit_code, "message": self.error}
        return document
