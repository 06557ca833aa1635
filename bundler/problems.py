"""Diagnostics: every problem a story has, with a stable code (docs/design.md §2)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    severity: Severity
    code: str
    message: str
    scenelet_ref: str | None = None
    scenelet_label: str | None = None
    shot_index: int | None = None
    path: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {
            "severity": data["severity"],
            "code": data["code"],
            "message": data["message"],
            "sceneletId": data["scenelet_ref"],
            "sceneletLabel": data["scenelet_label"],
            "shotIndex": data["shot_index"],
            "path": data["path"],
        }

    def one_line(self) -> str:
        """``severity code scenelet-label (uuid) shot N path: message``."""
        parts = [self.severity, self.code]
        if self.scenelet_label or self.scenelet_ref:
            label = self.scenelet_label or "?"
            parts.append(f"{label} ({self.scenelet_ref})" if self.scenelet_ref else label)
        if self.shot_index is not None:
            parts.append(f"shot {self.shot_index}")
        if self.path:
            parts.append(self.path)
        return " ".join(parts) + ": " + self.message


def error(code: str, message: str, **where: Any) -> Problem:
    return Problem("error", code, message, **where)


def warning(code: str, message: str, **where: Any) -> Problem:
    return Problem("warning", code, message, **where)
