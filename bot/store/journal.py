"""The journal: every trade, decision, state change and command, in SQLite (WAL) via SQLAlchemy async.

Write before you report: each write method commits its own transaction before it returns, so a
message about a trade can only go out after the row is on disk (`bot.store.database`). The trades
are in `bot.store.trade_log`, what the bot restores on start in `bot.store.state_store`; here the
decisions, equity snapshots, model versions, the audit log and the daily summaries.
Records in and out are domain dataclasses or the frozen records of bot.store.records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update

from bot.store import convert
from bot.store.database import XAU_PIP, JournalClosedError
from bot.store.health import JournalWriteError
from bot.store.records import (
    AuditEntry,
    DailySummary,
    DecisionRecord,
    EquitySnapshot,
    GateResult,
    ModelVersionRecord,
)
from bot.store.schema import AuditRow, DailySummaryRow, DecisionRow, EquitySnapshotRow, ModelVersionRow
from bot.store.state_store import RISK_STATE_KEY, StateStore
from bot.store.trade_log import TradeLog, wib_day_bounds
from trading.domain import Side


class Journal(TradeLog, StateStore):
    # --- decisions --------------------------------------------------------------------------------

    async def record_decision(
        self,
        bar_time: datetime,
        action: str,
        *,
        side: Side | None = None,
        p_up: float | None = None,
        regime: str | None = None,
        confidence: float | None = None,
        threshold: float | None = None,
        reason: str = "",
        gates: Iterable[GateResult | Mapping[str, Any]] = (),
        lot: float | None = None,
        now: datetime | None = None,
        setup: str = "",
        features: Mapping[str, Any] | None = None,
    ) -> int:
        """Store one closed bar's verdict; returns its id (link it to the trade it opened)."""
        if not action:
            raise ValueError("decision action must not be empty")
        convert.aware(bar_time, "decision bar_time")
        row = DecisionRow(
            bar_time=bar_time,
            action=action,
            side=Side(side).value if side is not None else None,
            p_up=p_up,
            regime=regime,
            confidence=confidence,
            threshold=threshold,
            reason=reason,
            gates=convert.gates_to_json(gates),
            lot=lot,
            created_at=convert.aware(now, "now"),
            setup=setup or None,
            features=convert.jsonable(dict(features)) if features else None,
        )
        async with self._write() as s:
            s.add(row)
            await s.flush()
            return row.id

    async def update_decision(self, decision_id: int, *, action: str, reason: str) -> bool:
        """Change a stored decision's outcome (an entry the broker refused). False if unknown."""
        if not action:
            raise ValueError("decision action must not be empty")
        async with self._write() as s:
            row = await s.get(DecisionRow, decision_id)
            if row is None:
                return False
            row.action, row.reason = action, reason
        return True

    async def decision(self, decision_id: int) -> DecisionRecord | None:
        async with self._read() as s:
            row = await s.get(DecisionRow, decision_id)
            return convert.decision(row) if row else None

    async def decisions(
        self, since: datetime | None = None, limit: int | None = None
    ) -> list[DecisionRecord]:
        """Newest bar first."""
        q = select(DecisionRow).order_by(DecisionRow.bar_time.desc(), DecisionRow.id.desc())
        if since is not None:
            q = q.where(DecisionRow.bar_time >= since)
        if limit is not None:
            q = q.limit(limit)
        async with self._read() as s:
            return [convert.decision(r) for r in (await s.scalars(q)).all()]

    # --- equity -----------------------------------------------------------------------------------

    async def record_equity(
        self,
        when: datetime,
        balance: float,
        equity: float,
        open_positions: int,
        floating: float | None = None,
    ) -> None:
        convert.aware(when, "equity snapshot time")
        convert.finite(balance, "balance")
        convert.finite(equity, "equity")
        if open_positions < 0:
            raise ValueError(f"open_positions must be >= 0, got {open_positions}")
        row = EquitySnapshotRow(
            time=when,
            balance=balance,
            equity=equity,
            floating=equity - balance if floating is None else floating,
            open_positions=open_positions,
        )
        async with self._write() as s:
            s.add(row)

    async def equity_snapshots(
        self, since: datetime | None = None, limit: int | None = None
    ) -> list[EquitySnapshot]:
        """Oldest first (ready to plot); limit keeps the newest `limit` snapshots."""
        q = select(EquitySnapshotRow).order_by(EquitySnapshotRow.time.desc(), EquitySnapshotRow.id.desc())
        if since is not None:
            q = q.where(EquitySnapshotRow.time >= since)
        if limit is not None:
            q = q.limit(limit)
        async with self._read() as s:
            return [convert.equity(r) for r in reversed((await s.scalars(q)).all())]

    # --- model versions ---------------------------------------------------------------------------

    async def record_model_version(
        self,
        version: str,
        kind: str,
        metrics: Mapping[str, Any],
        *,
        path: str = "",
        now: datetime | None = None,
    ) -> bool:
        """Register a trained model (inactive). False if the version is already registered."""
        if not version or not kind:
            raise ValueError("model version and kind must not be empty")
        metrics = convert.jsonable(dict(metrics))
        async with self._write() as s:
            exists = await s.scalar(select(ModelVersionRow.id).where(ModelVersionRow.version == version))
            if exists is not None:
                return False
            s.add(
                ModelVersionRow(
                    version=version,
                    kind=kind,
                    metrics=metrics,
                    path=path,
                    created_at=convert.aware(now, "now"),
                    active=False,
                )
            )
        return True

    async def activate_model_version(
        self, version: str, *, now: datetime | None = None
    ) -> ModelVersionRecord:
        """Make `version` the one active model of its kind. Raises KeyError if unknown."""
        now = convert.aware(now, "now")
        async with self._write() as s:
            row = await s.scalar(select(ModelVersionRow).where(ModelVersionRow.version == version))
            if row is None:
                raise KeyError(f"model version {version!r} is not registered")
            await s.execute(
                update(ModelVersionRow)
                .where(ModelVersionRow.kind == row.kind, ModelVersionRow.version != version)
                .values(active=False)
            )
            row.active = True
            row.activated_at = now
            await s.flush()
            return convert.model_version(row)

    async def active_model_version(self, kind: str) -> ModelVersionRecord | None:
        q = select(ModelVersionRow).where(ModelVersionRow.kind == kind, ModelVersionRow.active.is_(True))
        async with self._read() as s:
            row = await s.scalar(q)
            return convert.model_version(row) if row else None

    async def model_versions(self, kind: str | None = None) -> list[ModelVersionRecord]:
        """Newest first."""
        q = select(ModelVersionRow).order_by(ModelVersionRow.created_at.desc(), ModelVersionRow.id.desc())
        if kind is not None:
            q = q.where(ModelVersionRow.kind == kind)
        async with self._read() as s:
            return [convert.model_version(r) for r in (await s.scalars(q)).all()]

    # --- audit log --------------------------------------------------------------------------------

    async def audit(
        self,
        command: str,
        *,
        user_id: int | None,
        chat_id: int | None,
        allowed: bool,
        args: str = "",
        result: str = "",
        when: datetime | None = None,
    ) -> int:
        """Log who ran which command and what came of it; returns the entry id."""
        if not command:
            raise ValueError("audit command must not be empty")
        row = AuditRow(
            time=convert.aware(when, "when"),
            user_id=user_id,
            chat_id=chat_id,
            command=command,
            args=args,
            result=result,
            allowed=allowed,
        )
        async with self._write() as s:
            s.add(row)
            await s.flush()
            return row.id

    async def audit_entries(self, limit: int = 50, user_id: int | None = None) -> list[AuditEntry]:
        """Newest first."""
        q = select(AuditRow).order_by(AuditRow.time.desc(), AuditRow.id.desc()).limit(limit)
        if user_id is not None:
            q = q.where(AuditRow.user_id == user_id)
        async with self._read() as s:
            return [convert.audit(r) for r in (await s.scalars(q)).all()]

    # --- daily summaries --------------------------------------------------------------------------

    async def record_daily_summary(self, summary: DailySummary, *, now: datetime | None = None) -> None:
        """Insert or replace the summary of a WIB day."""
        for name in ("profit", "start_balance", "end_balance"):
            convert.finite(getattr(summary, name), name)
        values = {f.name: getattr(summary, f.name) for f in fields(DailySummary)}
        async with self._write() as s:
            await s.merge(DailySummaryRow(**values, updated_at=convert.aware(now, "now")))

    async def daily_summary(self, day: date) -> DailySummary | None:
        async with self._read() as s:
            row = await s.get(DailySummaryRow, day)
            return convert.daily_summary(row) if row else None

    async def daily_summaries(self, since: date | None = None) -> list[DailySummary]:
        """Oldest day first."""
        q = select(DailySummaryRow).order_by(DailySummaryRow.day)
        if since is not None:
            q = q.where(DailySummaryRow.day >= since)
        async with self._read() as s:
            return [convert.daily_summary(r) for r in (await s.scalars(q)).all()]


__all__ = [
    "RISK_STATE_KEY",
    "XAU_PIP",
    "Journal",
    "JournalClosedError",
    "JournalWriteError",
    "wib_day_bounds",
]
