"""Media sources and bundle destinations: a local folder or an S3 bucket prefix."""

from __future__ import annotations

import os
from pathlib import Path

from bundler.storage.ports import BundleDestination, MediaSource, Published, is_s3_url

__all__ = ["BundleDestination", "MediaSource", "Published", "is_s3_url", "open_destination", "open_source"]


def open_source(value: str | Path | None) -> MediaSource:
    """``--assets-root``, else ``BUNDLER_ASSETS_ROOT``, else ``./generated``, as a media source."""
    from bundler.media.paths import DEFAULT_ASSETS_ROOT
    from bundler.storage.local.backend import LocalSource

    raw = str(value) if value else os.environ.get("BUNDLER_ASSETS_ROOT") or DEFAULT_ASSETS_ROOT
    if is_s3_url(raw):
        from bundler.storage.s3.backend import S3Source

        return S3Source.open(raw)
    return LocalSource.open(raw)


def open_destination(value: str | Path, jobs: int) -> BundleDestination:
    """``--out`` as a bundle destination; ``jobs`` bounds parallel uploads."""
    from bundler.storage.local.backend import LocalDestination

    if is_s3_url(value):
        from bundler.storage.s3.backend import S3Destination

        return S3Destination.open(str(value), jobs)
    return LocalDestination.open(Path(value))
