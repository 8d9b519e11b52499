"""Pending approvals for changes that raise risk.

An approval has an id, what it would change, who asked, and an expiry. The first answer wins;
a second tap does nothing; expiry means no; only an authorised user may answer (the controller
checks identity, this registry checks state). Tightening never comes here: it applies at once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class RiskChange:
    """A requested change: kind is one of mode / limits / resume_stopped / reset_total."""

    kind: str
    summary: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Approval:
    id: str
    change: RiskChange
    requested_by: str
    reason: str
    created: datetime
    expires: datetime
    status: ApprovalStatus = ApprovalStatus.PENDING
    resolved_by: str = ""
    resolved_at: datetime | None = None

    def is_open(self, now: datetime) -> bool:
        return self.status is ApprovalStatus.PENDING and now < self.expires


class ApprovalError(Exception):
    """Why an answer to an approval did nothing."""


class ApprovalRegistry:
    def __init__(self, ttl: timedelta = timedelta(minutes=10)) -> None:
        self.ttl = ttl
        self._items: dict[str, Approval] = {}

    def create(self, change: RiskChange, requested_by: str, reason: str, now: datetime) -> Approval:
        # one open request per kind: a newer request replaces (expires) the older one
        for a in self.pending(now):
            if a.change.kind == change.kind:
                self._items[a.id] = replace(
                    a, status=ApprovalStatus.EXPIRED, resolved_at=now, resolved_by="superseded"
                )
        approval = Approval(
            id=secrets.token_hex(4),
            change=change,
            requested_by=requested_by,
            reason=reason,
            created=now,
            expires=now + self.ttl,
        )
        self._items[approval.id] = approval
        return approval

    def get(self, approval_id: str) -> Approval | None:
        return self._items.get(approval_id)

    def has_pending(self) -> bool:
        """Whether any approval still waits for an answer (or for `expire()`), whatever the time."""
        return any(a.status is ApprovalStatus.PENDING for a in self._items.values())

    def pending(self, now: datetime) -> list[Approval]:
        return [a for a in self._items.values() if a.is_open(now)]

    def resolve(self, approval_id: str, approve: bool, by: str, now: datetime) -> Approval:
        """First answer wins. Raises ApprovalError when the approval is unknown, answered or expired."""
        a = self._items.get(approval_id)
        if a is None:
            raise ApprovalError("unknown approval")
        if a.status is not ApprovalStatus.PENDING:
            raise ApprovalError(f"already {a.status.value}")
        if now >= a.expires:
            self._items[a.id] = replace(a, status=ApprovalStatus.EXPIRED, resolved_at=now)
            raise ApprovalError("expired")
        status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
        resolved = replace(a, status=status, resolved_by=by, resolved_at=now)
        self._items[a.id] = resolved
        return resolved

    def expire(self, now: datetime) -> list[Approval]:
        """Mark every overdue pending approval expired; return them (to edit their messages)."""
        out = []
        for a in list(self._items.values()):
            if a.status is ApprovalStatus.PENDING and now >= a.expires:
                expired = replace(a, status=ApprovalStatus.EXPIRED, resolved_at=now)
                self._items[a.id] = expired
                out.append(expired)
        return out

    def restore(self, approvals: list[Approval]) -> None:
        for a in approvals:
            self._items[a.id] = a
