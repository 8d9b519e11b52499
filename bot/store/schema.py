"""ORM tables of the journal (SQLAlchemy 2 declarative). Nothing outside bot.store sees these classes.

Every timestamp column is UTC (`UTCDateTime`); `daily_summaries.day` is a WIB calendar date.
The Alembic revision 0001 creates exactly this schema; a test checks they never drift apart.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.store.types import UTCDateTime

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[dict[str, Any]]: JSON(),
    }


class DecisionRow(Base):
    """One closed bar's verdict: the signal, the regime and every gate in the order it ran."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bar_time: Mapped[datetime] = mapped_column(index=True)
    action: Mapped[str] = mapped_column(String(16))
    side: Mapped[str | None] = mapped_column(String(4))
    p_up: Mapped[float | None] = mapped_column(Float)
    regime: Mapped[str | None] = mapped_column(String(32))
    confidence: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text, default="")
    gates: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    lot: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime]
    setup: Mapped[str | None] = mapped_column(Text)  # revision 0002: the SMC setup's reason
    features: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # revision 0002: what the decision saw


class TradeRow(Base):
    """One row per position, open to close. `profit` is net (commission and swap included)."""

    __tablename__ = "trades"
    __table_args__ = (
        CheckConstraint("side IN ('BUY', 'SELL')", name="side"),
        CheckConstraint("status IN ('open', 'closed')", name="status"),
        Index(None, "status", "close_time"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket: Mapped[int] = mapped_column(BigInteger, unique=True)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    volume: Mapped[float] = mapped_column(Float)
    open_time: Mapped[datetime] = mapped_column(index=True)
    open_price: Mapped[float] = mapped_column(Float)
    sl: Mapped[float] = mapped_column(Float, default=0.0)
    tp: Mapped[float] = mapped_column(Float, default=0.0)
    close_time: Mapped[datetime | None]
    close_price: Mapped[float | None] = mapped_column(Float)
    exit_reason: Mapped[str | None] = mapped_column(String(64))
    profit: Mapped[float | None] = mapped_column(Float)
    commission: Mapped[float] = mapped_column(Float, default=0.0)
    swap: Mapped[float] = mapped_column(Float, default=0.0)
    pips: Mapped[float | None] = mapped_column(Float)
    magic: Mapped[int] = mapped_column(BigInteger, default=0)
    comment: Mapped[str] = mapped_column(String(128), default="")
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id"), index=True)
    status: Mapped[str] = mapped_column(String(6))
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime]


class SlTpHistoryRow(Base):
    __tablename__ = "sl_tp_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket: Mapped[int] = mapped_column(BigInteger, ForeignKey("trades.ticket"), index=True)
    time: Mapped[datetime]
    sl: Mapped[float] = mapped_column(Float)
    tp: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(64), default="")


class EquitySnapshotRow(Base):
    __tablename__ = "equity_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(index=True)
    balance: Mapped[float] = mapped_column(Float)
    equity: Mapped[float] = mapped_column(Float)
    floating: Mapped[float] = mapped_column(Float)
    open_positions: Mapped[int] = mapped_column(Integer)


class BotStateRow(Base):
    """Key/value state that survives restarts: paused, risk mode, the RiskState counters..."""

    __tablename__ = "bot_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class ApprovalRow(Base):
    __tablename__ = "approvals"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'approved', 'rejected', 'expired')", name="status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    summary: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(10), index=True)
    resolved_by: Mapped[str] = mapped_column(String(64), default="")
    resolved_at: Mapped[datetime | None]


class ModelVersionRow(Base):
    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    path: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    activated_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditRow(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(index=True)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    command: Mapped[str] = mapped_column(String(64))
    args: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[str] = mapped_column(Text, default="")
    allowed: Mapped[bool] = mapped_column(Boolean)


class DailySummaryRow(Base):
    __tablename__ = "daily_summaries"

    day: Mapped[date] = mapped_column(Date, primary_key=True)  # WIB calendar day
    trades: Mapped[int] = mapped_column(Integer)
    wins: Mapped[int] = mapped_column(Integer)
    losses: Mapped[int] = mapped_column(Integer)
    profit: Mapped[float] = mapped_column(Float)
    start_balance: Mapped[float] = mapped_column(Float)
    end_balance: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime]


class PaperAccountRow(Base):
    """A single row (id 1): the paper broker's account as a JSON blob."""

    __tablename__ = "paper_account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class OutboxRow(Base):
    """A must-deliver chat message (trade, limit, approval, error, start/stop), kept until Telegram took it.

    Written before the first send attempt (revision 0003); bot.store.outbox reads and updates it."""

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sent', 'summarised', 'failed')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    html: Mapped[str] = mapped_column(Text)
    silent: Mapped[bool] = mapped_column(Boolean, default=False)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # tickets and P/L, for a summary
    created_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(10), index=True)
    parts_sent: Mapped[int] = mapped_column(Integer, default=0)  # of a long message split in parts
    error: Mapped[str] = mapped_column(Text, default="")
    done_at: Mapped[datetime | None]
