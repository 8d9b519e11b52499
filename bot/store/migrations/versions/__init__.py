"""Alembic revisions, one file each, written by hand."""
