"""bundler: assemble interactive stories from PostgreSQL into offline-playable bundles."""

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "story-bundler"  # the name on the package index; the import package stays `bundler`

try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
