"""Database access: connection resolution, schema, repository, seed and export."""
