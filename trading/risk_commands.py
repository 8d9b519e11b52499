"""What a person asks of the engine: pause, resume, close, and risk changes (tightening at once,
loosening through an approval that expires); and the risk-mode changes the engine publishes.

`RiskCommands` is a part of `TradingEngine` (a mixin: it reads and sets the engine's own state, which
`trading.engine_host.EngineHost` declares).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from trading.domain import ClosedTrade
from trading.engine_host import EngineHost
from trading.events import EventKind
from trading.risk.approvals import Approval, ApprovalError, ApprovalStatus, RiskChange
from trading.risk.modes import RiskMode, approved_reset, limit_use
from trading.timezones import wib_date


@dataclass(frozen=True, slots=True)
class ChangeResult:
    applied: bool
    message: str
    approval: Approval | None = None


class RiskCommands(EngineHost):
    """The commands and approvals of `TradingEngine`."""

    async def _check_mode_change(self) -> None:
        new = self.mode()
        if new.mode is not self._mode.mode:
            old, self._mode = self._mode, new
            kind = EventKind.LIMIT_HIT if new.mode is RiskMode.STOPPED else EventKind.RISK_MODE_CHANGED
            self._publish(
                kind,
                f"risk mode {old.mode} → {new.mode}: {new.reason}",
                old=str(old.mode),
                new=str(new.mode),
                reason=new.reason,
            )
        assert self.state is not None
        if self.state.total_stop and not self._proposed_reset:
            self._proposed_reset = True
            change = RiskChange("reset_total", "reset the total-loss reference and resume trading", {})
            approval = self.approvals.create(change, "engine", new.reason, self.approval_clock())
            self._publish(EventKind.RISK_CHANGE_PROPOSED, f"proposal: {change.summary}", approval=approval)

    async def pause(self, by: str) -> ChangeResult:
        if self.paused:
            return ChangeResult(False, f"already paused by {self.paused_by}")
        self.paused, self.paused_by = True, by
        await self._save_state()
        self._publish(EventKind.PAUSED, f"paused by {by}", by=by)
        return ChangeResult(True, "paused: no new entries; open positions are still managed")

    async def resume(self, by: str) -> ChangeResult:
        mode = self.mode()
        if mode.mode is RiskMode.STOPPED:
            assert self.state is not None
            kind = "reset_total" if self.state.total_stop else "resume_stopped"
            return await self.request_risk_change(RiskChange(kind, f"leave STOPPED ({mode.reason})", {}), by)
        if not self.paused:
            return ChangeResult(False, "not paused")
        self.paused, self.paused_by = False, ""
        await self._save_state()
        self._publish(EventKind.RESUMED, f"resumed by {by}", by=by)
        return ChangeResult(True, "resumed")

    async def close(self, ticket: int, by: str) -> ClosedTrade | None:
        pos = self.positions.get(ticket)
        if pos is None:
            raise KeyError(f"no open position #{ticket}")
        return await self._close(pos, "manual", f"closed by {by}", by=by)

    async def close_all(self, by: str, reason: str = "close all") -> int:
        closed = 0
        for pos in list(self.positions.values()):
            if await self._close(
                pos, "close_all" if by != "flash_crash_guard" else "flash_crash", reason, by=by
            ):
                closed += 1
        return closed

    def is_loosening(self, change: RiskChange) -> bool:
        assert self.state is not None
        if change.kind == "mode":
            return RiskMode(change.params["mode"]).safety < self.state.manual_floor.safety
        if change.kind == "limits":
            return bool(replace(self.limits, **change.params).riskier_than(self.limits))
        return change.kind in ("resume_stopped", "reset_total")

    async def request_risk_change(self, change: RiskChange, by: str) -> ChangeResult:
        """Tightening applies at once; loosening returns a pending approval. Bad values raise ValueError."""
        if change.kind == "mode":
            RiskMode(str(change.params.get("mode", "")).upper())  # raises ValueError on a bad name
            change = RiskChange("mode", change.summary, {"mode": str(change.params["mode"]).upper()})
        elif change.kind == "limits":
            try:
                replace(self.limits, **change.params)  # validates the values
            except TypeError as exc:  # an unknown field or a value of the wrong type
                raise ValueError(f"bad limits change {change.params!r}: {exc}") from exc
        elif change.kind not in ("resume_stopped", "reset_total"):
            raise ValueError(f"unknown change kind {change.kind!r}")
        if self.is_loosening(change):
            approval = self.approvals.create(change, by, f"requested by {by}", self.approval_clock())
            self._publish(
                EventKind.RISK_CHANGE_PROPOSED, f"approval needed: {change.summary}", approval=approval
            )
            return ChangeResult(False, f"needs approval: {change.summary}", approval)
        await self._apply(change, by)
        return ChangeResult(True, f"applied: {change.summary}")

    async def resolve_approval(self, approval_id: str, approve: bool, by: str) -> Approval:
        """Raises ApprovalError when unknown, already answered or expired (a second tap does nothing)."""
        approval = self.approvals.resolve(approval_id, approve, by, self.approval_clock())
        if approval.status is ApprovalStatus.APPROVED:
            await self._apply(approval.change, by)
        self._publish(
            EventKind.APPROVAL_RESOLVED,
            f"{approval.change.summary}: {approval.status.value} by {by}",
            approval=approval,
        )
        return approval

    async def _apply(self, change: RiskChange, by: str) -> None:
        assert self.state is not None and self.account is not None
        now = self.clock()
        if change.kind == "mode":
            self.state = replace(self.state, manual_floor=RiskMode(change.params["mode"]))
        elif change.kind == "limits":
            self.limits = replace(self.limits, **change.params)
        elif change.kind == "resume_stopped":
            # override only a daily stop that holds now: an approval answered after the WIB day rolled
            # must not switch off the new day's limit; a STOPPED floor the user set is lifted too
            state = self.state
            if state.daily_stop or limit_use(state, self.limits, self.account.balance).daily_fraction >= 1:
                state = replace(state, stop_override_day=wib_date(now))
            if state.manual_floor is RiskMode.STOPPED:
                state = replace(state, manual_floor=RiskMode.NORMAL)
            self.state = state
        elif change.kind == "reset_total":
            self.state = approved_reset(self.state, self.account.balance, now)
            if self.state.manual_floor is RiskMode.STOPPED:
                self.state = replace(self.state, manual_floor=RiskMode.NORMAL)
            self._proposed_reset = False
        else:
            raise ApprovalError(f"unknown change kind {change.kind!r}")
        await self._save_state()
        self._publish(EventKind.RISK_CHANGE_APPLIED, f"{change.summary} (by {by})", change=change, by=by)
        await self._check_mode_change()
