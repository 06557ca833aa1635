"""What a ``--web`` bundle saves its viewers, for the report's ``stats.web``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bundler.pipeline.plan.types import BundlePlan

if TYPE_CHECKING:
    from bundler.pipeline.build import Built


def web_stats(plan: BundlePlan, built: Built) -> dict[str, Any]:
    """Media bytes of the master profile (the sources) and of this bundle, their ratio, and how
    many files were encoded anew or reused from the previous bundle. Music counts in both."""
    media = {copy.target for copy in plan.files()}
    master = sum(copy.source.size for copy in plan.files())
    web = sum(entry.bytes for entry in built.files if entry.path in media)
    tally = built.web
    return {
        "settings": plan.web.key() if plan.web else None,
        "masterBytes": master,
        "webBytes": web,
        "ratio": round(web / master, 4) if master else 0.0,
        "encoded": tally.encoded if tally else 0,
        "reused": tally.reused if tally else 0,
    }
