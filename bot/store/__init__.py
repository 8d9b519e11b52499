"""Persistent store: the SQLite journal (trades, decisions, state, approvals, audit) and its migrations."""

from bot.store.journal import Journal
from bot.store.migrate import upgrade_database
from bot.store.records import (
    AuditEntry,
    DailySummary,
    DayStats,
    DecisionRecord,
    EquitySnapshot,
    GateResult,
    ModelVersionRecord,
    SlTpChange,
    TradeRecord,
)

__all__ = [
    "AuditEntry",
    "DailySummary",
    "DayStats",
    "DecisionRecord",
    "EquitySnapshot",
    "GateResult",
    "Journal",
    "ModelVersionRecord",
    "SlTpChange",
    "TradeRecord",
    "upgrade_database",
]
