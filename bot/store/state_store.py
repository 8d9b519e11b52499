"""What the bot restores on start from the journal: its key/value state (the risk mode among it),
pending approvals and the paper broker's account."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.store import convert
from bot.store.database import JournalDatabase
from bot.store.schema import ApprovalRow, BotStateRow, PaperAccountRow
from trading.risk.approvals import Approval, ApprovalStatus
from trading.risk.modes import RiskState, risk_state_from_dict, risk_state_to_dict

RISK_STATE_KEY = "risk_state"


class StateStore(JournalDatabase):
    """Bot state, approvals and the paper account: what survives a restart."""

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

    # --- paper broker account ---------------------------------------------------------------------

    async def save_paper_state(self, state: Mapping[str, Any], *, now: datetime | None = None) -> None:
        blob = convert.checked_json(dict(state), "paper account state")
        async with self._write() as s:
            await s.merge(PaperAccountRow(id=1, state=blob, updated_at=convert.aware(now, "now")))

    async def load_paper_state(self) -> dict[str, Any] | None:
        async with self._read() as s:
            row = await s.get(PaperAccountRow, 1)
            return dict(row.state) if row else None
