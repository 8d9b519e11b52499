"""The outbox table: must-deliver chat messages, written before the first send, kept until delivered.

Rows live in the journal's database (revision 0003) and go through the journal's own transactions,
so an outbox write commits like any other journal write. A row is `pending` until Telegram accepts
it (`sent`), or it went out inside a catch-up summary (`summarised`), or Telegram refused it for good
(`failed`, with the error). Pending rows are what a restart resends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import CursorResult, delete, func, select, update

from bot.store.schema import OutboxRow
from trading.timezones import utc_now

if TYPE_CHECKING:
    from bot.store.journal import Journal

PENDING, SENT, SUMMARISED, FAILED = "pending", "sent", "summarised", "failed"


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: int
    chat_id: int
    kind: str
    html: str
    silent: bool
    created_at: datetime
    meta: dict[str, Any] = field(default_factory=dict)
    parts_sent: int = 0


class OutboxStore:
    """Reads and writes the outbox through an open `Journal` (its session factory and write lock)."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    async def add(
        self,
        chat_id: int,
        kind: str,
        html: str,
        *,
        silent: bool = False,
        meta: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> int:
        row = OutboxRow(
            chat_id=chat_id,
            kind=kind,
            html=html,
            silent=silent,
            meta=dict(meta or {}),
            created_at=now or utc_now(),
            status=PENDING,
            parts_sent=0,
            error="",
        )
        async with self.journal._write() as s:
            s.add(row)
            await s.flush()
            return row.id

    async def pending(self, chat_id: int) -> list[OutboxEntry]:
        """This chat's undelivered messages, oldest first."""
        query = select(OutboxRow).where(OutboxRow.chat_id == chat_id, OutboxRow.status == PENDING)
        async with self.journal._read() as s:
            rows = (await s.execute(query.order_by(OutboxRow.id))).scalars().all()
        return [
            OutboxEntry(
                r.id, r.chat_id, r.kind, r.html, r.silent, r.created_at, dict(r.meta or {}), r.parts_sent
            )
            for r in rows
        ]

    async def progress(self, row_id: int, parts_sent: int) -> None:
        """Parts of a long message already accepted (a retry resumes after them)."""
        async with self.journal._write() as s:
            await s.execute(update(OutboxRow).where(OutboxRow.id == row_id).values(parts_sent=parts_sent))

    async def done(
        self, ids: Iterable[int], status: str = SENT, error: str = "", now: datetime | None = None
    ) -> None:
        """Close rows: sent, summarised or failed (with the error)."""
        if status not in (SENT, SUMMARISED, FAILED):
            raise ValueError(f"outbox status {status!r}: use sent, summarised or failed")
        ids = list(ids)
        if not ids:
            return
        async with self.journal._write() as s:
            await s.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(ids))
                .values(status=status, error=error, done_at=now or utc_now())
            )

    async def prune(self, before: datetime) -> int:
        """Delete closed rows (sent, summarised, failed) closed before `before`; pending rows stay."""
        async with self.journal._write() as s:
            result = await s.execute(
                delete(OutboxRow).where(OutboxRow.status != PENDING, OutboxRow.done_at < before)
            )
        assert isinstance(result, CursorResult)  # a DELETE's result counts its rows
        return int(result.rowcount or 0)

    async def counts(self) -> dict[str, int]:
        async with self.journal._read() as s:
            rows = (await s.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status))).all()
        return {status: int(n) for status, n in rows}


__all__ = ["FAILED", "PENDING", "SENT", "SUMMARISED", "OutboxEntry", "OutboxStore"]
