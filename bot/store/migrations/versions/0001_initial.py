"""Initial journal schema: trades, SL/TP history, decisions, equity, state, approvals, models, audit,
daily summaries and the paper account.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Timestamps are stored as naive UTC DATETIME (the app's UTCDateTime type adds and checks the zone);
revisions use plain sa.DateTime so history never depends on application code.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _utc(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        _utc("bar_time"),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=True),
        sa.Column("p_up", sa.Float(), nullable=True),
        sa.Column("regime", sa.String(length=32), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("gates", sa.JSON(), nullable=False),
        sa.Column("lot", sa.Float(), nullable=True),
        _utc("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_decisions"),
    )
    op.create_index("ix_decisions_bar_time", "decisions", ["bar_time"])

    op.create_table(
        "trades",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("volume", sa.Float(), nullable=False),
        _utc("open_time"),
        sa.Column("open_price", sa.Float(), nullable=False),
        sa.Column("sl", sa.Float(), nullable=False),
        sa.Column("tp", sa.Float(), nullable=False),
        _utc("close_time", nullable=True),
        sa.Column("close_price", sa.Float(), nullable=True),
        sa.Column("exit_reason", sa.String(length=64), nullable=True),
        sa.Column("profit", sa.Float(), nullable=True),
        sa.Column("commission", sa.Float(), nullable=False),
        sa.Column("swap", sa.Float(), nullable=False),
        sa.Column("pips", sa.Float(), nullable=True),
        sa.Column("magic", sa.BigInteger(), nullable=False),
        sa.Column("comment", sa.String(length=128), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=6), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        _utc("updated_at"),
        sa.CheckConstraint("side IN ('BUY', 'SELL')", name="ck_trades_side"),
        sa.CheckConstraint("status IN ('open', 'closed')", name="ck_trades_status"),
        sa.ForeignKeyConstraint(["decision_id"], ["decisions.id"], name="fk_trades_decision_id_decisions"),
        sa.PrimaryKeyConstraint("id", name="pk_trades"),
        sa.UniqueConstraint("ticket", name="uq_trades_ticket"),
    )
    op.create_index("ix_trades_decision_id", "trades", ["decision_id"])
    op.create_index("ix_trades_open_time", "trades", ["open_time"])
    op.create_index("ix_trades_status_close_time", "trades", ["status", "close_time"])

    op.create_table(
        "sl_tp_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket", sa.BigInteger(), nullable=False),
        _utc("time"),
        sa.Column("sl", sa.Float(), nullable=False),
        sa.Column("tp", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["ticket"], ["trades.ticket"], name="fk_sl_tp_history_ticket_trades"),
        sa.PrimaryKeyConstraint("id", name="pk_sl_tp_history"),
    )
    op.create_index("ix_sl_tp_history_ticket", "sl_tp_history", ["ticket"])

    op.create_table(
        "equity_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        _utc("time"),
        sa.Column("balance", sa.Float(), nullable=False),
        sa.Column("equity", sa.Float(), nullable=False),
        sa.Column("floating", sa.Float(), nullable=False),
        sa.Column("open_positions", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_equity_snapshots"),
    )
    op.create_index("ix_equity_snapshots_time", "equity_snapshots", ["time"])

    op.create_table(
        "bot_state",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        _utc("updated_at"),
        sa.PrimaryKeyConstraint("key", name="pk_bot_state"),
    )

    op.create_table(
        "approvals",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        _utc("created_at"),
        _utc("expires_at"),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("resolved_by", sa.String(length=64), nullable=False),
        _utc("resolved_at", nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected', 'expired')", name="ck_approvals_status"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_approvals"),
    )
    op.create_index("ix_approvals_status", "approvals", ["status"])

    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        _utc("created_at"),
        _utc("activated_at", nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
        sa.UniqueConstraint("version", name="uq_model_versions_version"),
    )
    op.create_index("ix_model_versions_kind", "model_versions", ["kind"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        _utc("time"),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("command", sa.String(length=64), nullable=False),
        sa.Column("args", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_time", "audit_log", ["time"])

    op.create_table(
        "daily_summaries",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("trades", sa.Integer(), nullable=False),
        sa.Column("wins", sa.Integer(), nullable=False),
        sa.Column("losses", sa.Integer(), nullable=False),
        sa.Column("profit", sa.Float(), nullable=False),
        sa.Column("start_balance", sa.Float(), nullable=False),
        sa.Column("end_balance", sa.Float(), nullable=False),
        _utc("updated_at"),
        sa.PrimaryKeyConstraint("day", name="pk_daily_summaries"),
    )

    op.create_table(
        "paper_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        _utc("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_paper_account"),
    )


def downgrade() -> None:
    for table in (
        "paper_account",
        "daily_summaries",
        "audit_log",
        "model_versions",
        "approvals",
        "bot_state",
        "equity_snapshots",
        "sl_tp_history",
        "trades",
        "decisions",
    ):
        op.drop_table(table)
