"""Decisions keep the setup and the features they saw (for /why TICKET).

Revision ID: 0002_decision_features
Revises: 0001
Create Date: 2026-12-02

Both columns are nullable: decisions stored before this revision have neither.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_decision_features"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("setup", sa.Text(), nullable=True))
        batch.add_column(sa.Column("features", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("features")
        batch.drop_column("setup")
