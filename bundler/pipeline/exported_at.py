"""``exportedAt``: ``--exported-at``, else ``SOURCE_DATE_EPOCH``, else the newest row timestamp,
so the same database state always gives a byte-identical bundle (docs/design.md §3)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from bundler.errors import UsageError
from bundler.pipeline.plan.analysis import default_exported_at, format_timestamp
from bundler.records import StorySnapshot


def resolve_exported_at(value: str | None, snapshot: StorySnapshot) -> str:
    if value:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise UsageError(f"--exported-at {value!r} is not an ISO 8601 timestamp.") from None
        return format_timestamp(moment)
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:
        return format_timestamp(_source_date_epoch(epoch))
    return default_exported_at(snapshot)


def _source_date_epoch(text: str) -> datetime:
    if not text.isascii() or not text.lstrip("-").isdigit():
        raise UsageError(f"SOURCE_DATE_EPOCH={text!r} is invalid: it must be a whole number of seconds.")
    try:
        return datetime.fromtimestamp(int(text), UTC)
    except (ValueError, OverflowError, OSError):
        raise UsageError(f"SOURCE_DATE_EPOCH={text!r} is invalid: out of the range of dates.") from None
