"""Alembic environment and revisions of the journal schema."""
