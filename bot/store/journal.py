"""The journal: every trade, decision, state change and command, in SQLite (WAL) via SQLAlchemy async.

Write before you report: each write method commits its own transaction before it returns, so a
message about a trade can only go out after the row is on disk. Writes are serialised by one
asyncio lock (SQLite has one writer anyway); reads run concurrently under WAL.
Records in and out are domain dataclasses or the frozen records of bot.store.records.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import fields
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import case, event, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from bot.store import convert
from bot.store.health import JournalHealth, JournalWriteError, write_failure
from bot.store.migrate import upgrade_database
from bot.store.records import (
    TRADE_CSV_COLUMNS,
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
from bot.store.schema import (
    ApprovalRow,
    AuditRow,
    BotStateRow,
    DailySummaryRow,
    DecisionRow,
    EquitySnapshotRow,
    ModelVersionRow,
    PaperAccountRow,
    SlTpHistoryRow,
    TradeRow,
)
from trading.domain import ClosedTrade, Position, Side
from trading.risk.approvals import Approval, ApprovalStatus
from trading.risk.modes import RiskState, risk_state_from_dict, risk_state_to_dict
from trading.timezones import WIB

RISK_STATE_KEY = "risk_state"
XAU_PIP = 0.1  # gold pip as the original bot counts it: $0.10 per ounce


class JournalClosedError(RuntimeError):
    """The journal was used before open() or after close()."""


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def wib_day_bounds(day: date) -> tuple[datetime, datetime]:
    """[00:00 WIB, next 00:00 WIB) of a WIB calendar day, in UTC."""
    start = datetime.combine(day, time(0), tzinfo=WIB).astimezone(UTC)
    return start, start + timedelta(days=1)


class Journal:
    def __init__(self, path: str | Path, *, pip_size: float = XAU_PIP) -> None:
        if str(path) in {"", ":memory:"}:
            raise ValueError(
                "the journal needs a database file path (an in-memory database cannot be migrated)"
            )
        if pip_size <= 0:
            raise ValueError(f"pip_size must be > 0, got {pip_size}")
        self.path = Path(path)
        self.url = f"sqlite+aiosqlite:///{self.path}"
        self.pip_size = pip_size
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._write_lock = asyncio.Lock()
        self.health = JournalHealth(str(self.path))

    # --- lifecycle --------------------------------------------------------------------------------

    async def open(self, *, migrate: bool = True) -> Journal:
        """Create the file if needed, bring the schema to head, connect with WAL on."""
        if self._engine is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if migrate:
            await upgrade_database(self.url)
        engine = create_async_engine(self.url)
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock()  # bound to the loop that opened us
        return self

    async def close(self, grace: float = 5.0) -> None:
        """Dispose of the pool last: a write in progress (another task's) commits first, up to `grace`
        seconds, so its connection is not closed under it."""
        if self._engine is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._write_lock.acquire(), grace)
                self._write_lock.release()
            await self._engine.dispose()
        self._engine = None
        self._sessions = None

    @property
    def is_open(self) -> bool:
        return self._engine is not None

    async def __aenter__(self) -> Journal:
        return await self.open()

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def _maker(self) -> async_sessionmaker[AsyncSession]:
        if self._sessions is None:
            raise JournalClosedError("journal is not open (call await journal.open())")
        return self._sessions

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncSession]:
        """One transaction, committed before the caller's method returns; rolled back on error. A write
        the database cannot take (read-only, disk full...) raises JournalWriteError and recycles the pool."""
        maker = self._maker()
        async with self._write_lock:
            try:
                async with maker() as session, session.begin():
                    yield session
            except Exception as exc:
                error = write_failure(exc)
                if error is None:
                    raise
                self.health.failed(exc, error)
                if self._engine is not None:  # SQLite keeps a connection opened during the fault read-only
                    await self._engine.dispose()
                raise JournalWriteError(str(self.path), error) from exc
            self.health.succeeded()

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncSession]:
        async with self._maker()() as session:
            yield session

    async def sqlite_settings(self) -> dict[str, Any]:
        """journal_mode, synchronous and foreign_keys as a connection of this journal sees them."""
        async with self._read() as s:
            mode = (await s.execute(text("PRAGMA journal_mode"))).scalar_one()
            sync = (await s.execute(text("PRAGMA synchronous"))).scalar_one()
            fks = (await s.execute(text("PRAGMA foreign_keys"))).scalar_one()
        return {"journal_mode": str(mode).lower(), "synchronous": int(sync), "foreign_keys": bool(fks)}

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

    # --- trades -----------------------------------------------------------------------------------

    async def record_trade_open(
        self, position: Position, *, decision_id: int | None = None, now: datetime | None = None
    ) -> bool:
        """Insert the open trade and its first SL/TP. False (nothing written) if the ticket is known."""
        _check_position(position)
        now = convert.aware(now, "now")
        async with self._write() as s:
            if await _trade_row(s, position.ticket) is not None:
                return False
            if decision_id is not None and await s.get(DecisionRow, decision_id) is None:
                raise ValueError(f"decision {decision_id} is not in the journal")
            s.add(
                TradeRow(
                    ticket=position.ticket,
                    symbol=position.symbol,
                    side=Side(position.side).value,
                    volume=position.volume,
                    open_time=position.open_time,
                    open_price=position.open_price,
                    sl=position.sl,
                    tp=position.tp,
                    magic=position.magic,
                    comment=position.comment,
                    decision_id=decision_id,
                    status="open",
                    commission=0.0,
                    swap=0.0,
                    extra={},
                    updated_at=now,
                )
            )
            await s.flush()
            s.add(
                SlTpHistoryRow(
                    ticket=position.ticket,
                    time=position.open_time,
                    sl=position.sl,
                    tp=position.tp,
                    reason="open",
                )
            )
        return True

    async def record_trade_update_sl_tp(
        self, ticket: int, sl: float, tp: float, *, reason: str = "", when: datetime | None = None
    ) -> bool:
        """Move SL/TP of an open trade and log the change. False if closed or nothing changed.

        Raises KeyError for a ticket the journal does not know.
        """
        convert.finite(sl, "sl")
        convert.finite(tp, "tp")
        when = convert.aware(when, "when")
        async with self._write() as s:
            row = await _trade_row(s, ticket)
            if row is None:
                raise KeyError(f"trade {ticket} is not in the journal")
            if row.status != "open" or (row.sl == sl and row.tp == tp):
                return False
            row.sl, row.tp, row.updated_at = sl, tp, when
            s.add(SlTpHistoryRow(ticket=ticket, time=when, sl=sl, tp=tp, reason=reason))
        return True

    async def record_trade_close(
        self,
        trade: ClosedTrade,
        *,
        commission: float | None = None,
        swap: float | None = None,
        magic: int = 0,
        comment: str = "",
        now: datetime | None = None,
    ) -> bool:
        """Close the trade row (profit is net). True when written; False if it was already closed.

        A close for a ticket never opened in the journal (opened while the bot was down) inserts a
        complete closed row. commission/swap default to trade.extra["commission"/"swap"] or 0.
        """
        _check_closed(trade)
        extra = convert.jsonable(dict(trade.extra))
        commission = float(commission if commission is not None else extra.get("commission", 0.0))  # type: ignore[arg-type]
        swap = float(swap if swap is not None else extra.get("swap", 0.0))  # type: ignore[arg-type]
        pips = trade.price_move / self.pip_size
        now = convert.aware(now, "now")
        values = {
            "close_time": trade.close_time,
            "close_price": trade.close_price,
            "exit_reason": trade.reason,
            "profit": trade.profit,
            "commission": commission,
            "swap": swap,
            "pips": round(pips, 4),
            "status": "closed",
            "extra": extra,
            "updated_at": now,
        }
        async with self._write() as s:
            row = await _trade_row(s, trade.ticket)
            if row is not None and row.status == "closed":
                return False
            if row is None:
                s.add(
                    TradeRow(
                        ticket=trade.ticket,
                        symbol=trade.symbol,
                        side=Side(trade.side).value,
                        volume=trade.volume,
                        open_time=trade.open_time,
                        open_price=trade.open_price,
                        sl=trade.sl,
                        tp=trade.tp,
                        magic=magic,
                        comment=comment,
                        **values,
                    )
                )
            else:
                for key, value in values.items():
                    setattr(row, key, value)
        return True

    async def correct_trade_close(
        self, trade: ClosedTrade, *, why: str = "broker deals", now: datetime | None = None
    ) -> float | None:
        """Rewrite a closed trade with the broker's own booking of it (price, time, net P/L, charges)
        and log the correction in the audit log (command "reconcile"), in one transaction.

        Returns the P/L that was stored before; None when the trade is not closed in the journal or
        already says the same to the cent (nothing written).
        """
        _check_closed(trade)
        extra = convert.jsonable(dict(trade.extra))
        commission = round(float(extra.get("commission", 0.0)), 2)  # type: ignore[arg-type]
        swap = round(float(extra.get("swap", 0.0)), 2)  # type: ignore[arg-type]
        now = convert.aware(now, "now")
        async with self._write() as s:
            row = await _trade_row(s, trade.ticket)
            if row is None or row.status != "closed":
                return None
            old = float(row.profit or 0.0)
            same = (
                round(old, 2) == round(trade.profit, 2)
                and row.close_price == trade.close_price
                and round(row.commission, 2) == commission
                and round(row.swap, 2) == swap
                and (row.extra or {}).get("pl_source") == extra.get("pl_source")
            )
            if same:
                return None
            merged = {**(row.extra or {}), **extra, "booked_profit": old}
            row.close_time, row.close_price = trade.close_time, trade.close_price
            row.profit, row.commission, row.swap = trade.profit, commission, swap
            row.pips = round(trade.price_move / self.pip_size, 4)
            row.exit_reason = (
                trade.reason if row.exit_reason in (None, "broker", "missing_at_broker") else row.exit_reason
            )
            row.extra, row.updated_at = merged, now
            s.add(
                AuditRow(
                    time=now,
                    user_id=None,
                    chat_id=None,
                    command="reconcile",
                    args=f"#{trade.ticket}",
                    result=f"P/L {old:+.2f} -> {trade.profit:+.2f} ({why})",
                    allowed=True,
                )
            )
        return old

    async def trade_by_ticket(self, ticket: int) -> TradeRecord | None:
        async with self._read() as s:
            row = await _trade_row(s, ticket)
            return convert.trade(row) if row else None

    async def open_trades(self) -> list[TradeRecord]:
        """Oldest first."""
        q = select(TradeRow).where(TradeRow.status == "open").order_by(TradeRow.open_time, TradeRow.id)
        async with self._read() as s:
            return [convert.trade(r) for r in (await s.scalars(q)).all()]

    async def trades(self, since: datetime | None = None, limit: int | None = None) -> list[TradeRecord]:
        """All trades, open and closed, newest open time first; since filters open_time."""
        q = select(TradeRow).order_by(TradeRow.open_time.desc(), TradeRow.id.desc())
        if since is not None:
            q = q.where(TradeRow.open_time >= since)
        if limit is not None:
            q = q.limit(limit)
        async with self._read() as s:
            return [convert.trade(r) for r in (await s.scalars(q)).all()]

    async def closed_trades(
        self, since: datetime | None = None, limit: int | None = None
    ) -> list[TradeRecord]:
        """Closed trades, newest close first; since filters close_time."""
        q = (
            select(TradeRow)
            .where(TradeRow.status == "closed")
            .order_by(TradeRow.close_time.desc(), TradeRow.id.desc())
        )
        if since is not None:
            q = q.where(TradeRow.close_time >= since)
        if limit is not None:
            q = q.limit(limit)
        async with self._read() as s:
            return [convert.trade(r) for r in (await s.scalars(q)).all()]

    async def sl_tp_history(self, ticket: int) -> list[SlTpChange]:
        q = select(SlTpHistoryRow).where(SlTpHistoryRow.ticket == ticket).order_by(SlTpHistoryRow.id)
        async with self._read() as s:
            return [convert.sl_tp(r) for r in (await s.scalars(q)).all()]

    async def stats_for_day(self, day: date) -> DayStats:
        """Closed trades whose close time falls in the WIB day."""
        start, end = wib_day_bounds(day)
        q = select(
            func.count(TradeRow.id),
            func.coalesce(func.sum(case((TradeRow.profit > 0, 1), else_=0)), 0),
            func.coalesce(func.sum(case((TradeRow.profit < 0, 1), else_=0)), 0),
            func.coalesce(func.sum(TradeRow.profit), 0.0),
        ).where(TradeRow.status == "closed", TradeRow.close_time >= start, TradeRow.close_time < end)
        async with self._read() as s:
            n, wins, losses, profit = (await s.execute(q)).one()
        return DayStats(day=day, trades=int(n), wins=int(wins), losses=int(losses), profit=float(profit))

    async def export_trades_csv(self, path: str | Path | None = None, since: datetime | None = None) -> str:
        """All trades (oldest first) as CSV text; also written atomically to `path` when given."""
        rows = list(reversed(await self.trades(since=since)))
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(TRADE_CSV_COLUMNS)
        for r in rows:
            writer.writerow([_csv_cell(getattr(r, name)) for name in TRADE_CSV_COLUMNS])
        text = buf.getvalue()
        if path is not None:
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, target)
        return text

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

    # --- bot state --------------------------------------------------------------------------------

    async def save_state(self, values: Mapping[str, Any], *, now: datetime | None = None) -> None:
        """Merge keys into the stored state (one transaction; a bad value writes nothing)."""
        checked = {}
        for key, value in values.items():
            if not isinstance(key, str) or not key or len(key) > 64:
                raise ValueError(f"state key {key!r} must be a non-empty string of at most 64 characters")
            checked[key] = convert.checked_json(value, f"state[{key!r}]")
        now = convert.aware(now, "now")
        async with self._write() as s:
            for key, value in checked.items():
                await s.merge(BotStateRow(key=key, value=value, updated_at=now))

    async def load_state(self) -> dict[str, Any]:
        async with self._read() as s:
            return {r.key: r.value for r in (await s.scalars(select(BotStateRow))).all()}

    async def save_risk_state(self, state: RiskState, *, now: datetime | None = None) -> None:
        await self.save_state({RISK_STATE_KEY: risk_state_to_dict(state)}, now=now)

    async def load_risk_state(self) -> RiskState | None:
        async with self._read() as s:
            row = await s.get(BotStateRow, RISK_STATE_KEY)
            return risk_state_from_dict(row.value) if row else None

    # --- approvals --------------------------------------------------------------------------------

    async def save_approval(self, approval: Approval) -> bool:
        """Insert a new approval; False if its id is already stored."""
        payload = convert.checked_json(dict(approval.change.params), f"params of approval {approval.id}")
        convert.aware(approval.created, "approval created")
        convert.aware(approval.expires, "approval expires")
        async with self._write() as s:
            if await s.get(ApprovalRow, approval.id) is not None:
                return False
            s.add(
                ApprovalRow(
                    id=approval.id,
                    kind=approval.change.kind,
                    summary=approval.change.summary,
                    payload=payload,
                    reason=approval.reason,
                    created_by=approval.requested_by,
                    created_at=approval.created,
                    expires_at=approval.expires,
                    status=ApprovalStatus(approval.status).value,
                    resolved_by=approval.resolved_by,
                    resolved_at=approval.resolved_at,
                )
            )
        return True

    async def update_approval(self, approval: Approval) -> bool:
        """Store the answer (status, by, at). First answer wins: False if the stored one is not pending.

        Raises KeyError for an unknown id.
        """
        async with self._write() as s:
            row = await s.get(ApprovalRow, approval.id)
            if row is None:
                raise KeyError(f"approval {approval.id} is not in the journal")
            if row.status != ApprovalStatus.PENDING.value:
                return False
            row.status = ApprovalStatus(approval.status).value
            row.resolved_by = approval.resolved_by
            row.resolved_at = approval.resolved_at
        return True

    async def approval(self, approval_id: str) -> Approval | None:
        async with self._read() as s:
            row = await s.get(ApprovalRow, approval_id)
            return convert.approval(row) if row else None

    async def pending_approvals(self, now: datetime | None = None) -> list[Approval]:
        """Pending and not yet expired at `now`, oldest first (feed to ApprovalRegistry.restore)."""
        now = convert.aware(now, "now")
        q = (
            select(ApprovalRow)
            .where(ApprovalRow.status == ApprovalStatus.PENDING.value, ApprovalRow.expires_at > now)
            .order_by(ApprovalRow.created_at)
        )
        async with self._read() as s:
            return [convert.approval(r) for r in (await s.scalars(q)).all()]

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

    # --- paper broker account ---------------------------------------------------------------------

    async def save_paper_state(self, state: Mapping[str, Any], *, now: datetime | None = None) -> None:
        blob = convert.checked_json(dict(state), "paper account state")
        async with self._write() as s:
            await s.merge(PaperAccountRow(id=1, state=blob, updated_at=convert.aware(now, "now")))

    async def load_paper_state(self) -> dict[str, Any] | None:
        async with self._read() as s:
            row = await s.get(PaperAccountRow, 1)
            return dict(row.state) if row else None


# --- helpers --------------------------------------------------------------------------------------


async def _trade_row(s: AsyncSession, ticket: int) -> TradeRow | None:
    return await s.scalar(select(TradeRow).where(TradeRow.ticket == ticket))


def _check_position(p: Position) -> None:
    if p.ticket <= 0:
        raise ValueError(f"position ticket must be > 0, got {p.ticket}")
    if not isinstance(p.side, Side):
        raise ValueError(f"position {p.ticket}: side must be a Side, got {p.side!r}")
    if convert.finite(p.volume, f"position {p.ticket} volume") <= 0:
        raise ValueError(f"position {p.ticket}: volume must be > 0, got {p.volume}")
    if convert.finite(p.open_price, f"position {p.ticket} open_price") <= 0:
        raise ValueError(f"position {p.ticket}: open_price must be > 0, got {p.open_price}")
    convert.finite(p.sl, f"position {p.ticket} sl")
    convert.aware(p.open_time, f"position {p.ticket} open_time")
    convert.finite(p.tp, f"position {p.ticket} tp")


def _check_closed(t: ClosedTrade) -> None:
    if t.ticket <= 0:
        raise ValueError(f"trade ticket must be > 0, got {t.ticket}")
    if not isinstance(t.side, Side):
        raise ValueError(f"trade {t.ticket}: side must be a Side, got {t.side!r}")
    for name in ("volume", "open_price", "close_price", "profit", "sl", "tp"):
        convert.finite(getattr(t, name), f"trade {t.ticket} {name}")
    if t.volume <= 0:
        raise ValueError(f"trade {t.ticket}: volume must be > 0, got {t.volume}")
    convert.aware(t.open_time, f"trade {t.ticket} open_time")
    convert.aware(t.close_time, f"trade {t.ticket} close_time")
    if t.close_time < t.open_time:
        raise ValueError(f"trade {t.ticket}: close time {t.close_time} is before open time {t.open_time}")


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Side):
        return value.value
    return value


__all__ = [
    "RISK_STATE_KEY",
    "XAU_PIP",
    "Journal",
    "JournalClosedError",
    "JournalWriteError",
    "wib_day_bounds",
]
