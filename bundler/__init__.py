"""bundler: assemble interactive stories from PostgreSQL into offline-playable bundles."""

from __future__ import annotations

from functools import cache

DISTRIBUTION = "story-bundler"  # the name on the package index; the import package stays `bundler`


@cache
def _installed_version() -> str:
    # importlib.metadata costs tens of milliseconds to import: only when the version is asked for
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> str:
    if name == "__version__":  # the one version source: the installed distribution's metadata
        return _installed_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
