"""bundler: assemble interactive stories from PostgreSQL into offline-playable bundles."""

__version__ = "0.1.0"
