"""Where media comes from, where bundles go and how they are read back: a local folder or an
S3 bucket prefix, behind the ports of ``storage.ports``."""

from __future__ import annotations

from pathlib import Path

from bundler.storage.ports import (
    BundleDestination,
    BundleReader,
    MediaSource,
    Published,
    Staged,
    assets_root_setting,
    is_s3_url,
)

__all__ = [
    "BundleDestination",
    "BundleReader",
    "MediaSource",
    "Published",
    "Staged",
    "is_s3_url",
    "open_destination",
    "open_reader",
    "open_source",
]

# The S3 backend is imported only when a URL asks for it: obstore is an optional extra.


def open_source(value: str | Path | None) -> MediaSource:
    """``--assets-root`` (or its default) as a media source."""
    from bundler.storage.local.source import LocalSource

    raw = assets_root_setting(value)
    if is_s3_url(raw):
        from bundler.storage.s3.source import S3Source

        return S3Source.open(raw)
    return LocalSource.open(raw)


def open_destination(value: str | Path, jobs: int) -> BundleDestination:
    """``--out`` as a bundle destination; ``jobs`` bounds parallel uploads."""
    from bundler.storage.local.destination import LocalDestination

    if is_s3_url(value):
        from bundler.storage.s3.destination import S3Destination

        return S3Destination.open(str(value), jobs)
    return LocalDestination.open(Path(value))


def open_reader(value: str | Path) -> BundleReader:
    """A bundle folder, ``.zip``/``.tar.gz`` or ``s3://`` URL to read back."""
    from bundler.storage.local.reader import LocalBundleReader

    if is_s3_url(value):
        from bundler.storage.s3.reader import S3BundleReader

        return S3BundleReader(str(value))
    return LocalBundleReader(Path(value))
