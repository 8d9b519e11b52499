"""Promotion by approval: a challenger that has beaten live by a sound margin is proposed as the new
live strategy; a person approves (its model is activated and/or its parameters become live's,
audited), rejects (it stays in shadow) or lets the request expire (no).

Reuses the approvals registry (`trading.risk.approvals.ApprovalRegistry`: owner, expiry in wall
time, first answer wins). Pending requests and the challengers already answered are kept in
`promotions.json` beside the challengers, and parameters approved for live in `live_params.json`,
which the app applies at every start (the startup notes say so), so a restart neither forgets a
request nor undoes a promotion. Each challenger is proposed once: after a "no" it stays in shadow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from trading.events import Event, EventBus, EventKind
from trading.risk.approvals import Approval, ApprovalError, ApprovalRegistry, ApprovalStatus, RiskChange
from trading.shadow import LIVE_MODEL, params_from_dict, params_to_dict
from trading.shadow_stats import PromotionRule, promotion_reason
from trading.shadow_store import read_json, write_json_atomic
from trading.timezones import utc_now

log = logging.getLogger(__name__)
PROMOTIONS = "promotions.json"
LIVE_PARAMS = "live_params.json"
KIND = "promote"


def _approval_to_json(a: Approval) -> dict[str, Any]:
    d = asdict(a)
    d["status"] = a.status.value
    for key in ("created", "expires", "resolved_at"):
        d[key] = d[key].isoformat() if d.get(key) else None
    return d


def _approval_from_json(d: dict[str, Any]) -> Approval:
    values = dict(d)
    values["change"] = RiskChange(**d["change"])
    values["status"] = ApprovalStatus(d["status"])
    for key in ("created", "expires", "resolved_at"):
        values[key] = datetime.fromisoformat(d[key]) if d.get(key) else None
    return Approval(**values)


class Promotions:
    def __init__(
        self,
        service: Any,
        rule: PromotionRule,
        *,
        ttl: timedelta = timedelta(hours=24),
        bus: EventBus | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.service = service
        self.rule = rule
        self.bus = bus
        self.clock = clock  # wall time: a person answers
        self.approvals = ApprovalRegistry(ttl)
        self.answered: set[int] = set()  # challengers proposed once and answered (or expired)
        self._load()

    @property
    def path(self) -> Path:
        return Path(self.service.root) / PROMOTIONS

    def _load(self) -> None:
        saved = read_json(self.path) or {}
        self.answered = {int(n) for n in saved.get("answered", [])}
        self.approvals.restore([_approval_from_json(a) for a in saved.get("pending", [])])

    def _save(self) -> None:
        pending = self.approvals.pending(self.clock())
        write_json_atomic(
            self.path, {"answered": sorted(self.answered), "pending": [_approval_to_json(a) for a in pending]}
        )

    def pending(self) -> list[Approval]:
        return self.approvals.pending(self.clock())

    def expire(self) -> list[Approval]:
        gone = self.approvals.expire(self.clock())
        for a in gone:
            self.answered.add(int(a.change.params["number"]))
        if gone:
            self._save()
        return gone

    async def check(self) -> list[Approval]:
        """Propose every challenger that has earned it and was not proposed before."""
        self.expire()
        view = await self.service.view()
        waiting = {int(a.change.params["number"]) for a in self.pending()}
        made = []
        for line in view.lines[1:]:
            if line.number in self.answered or line.number in waiting or line.vs_live is None:
                continue
            reason = promotion_reason(line.stats, line.vs_live, self.rule)
            if reason is None:
                continue
            # a kind per challenger: the registry keeps one open request per kind
            change = RiskChange(
                f"{KIND}-{line.number}",
                f"make challenger #{line.number} ({line.label}) the live strategy",
                {"number": line.number},
            )
            approval = self.approvals.create(change, "shadow", reason, self.clock())
            made.append(approval)
            if self.bus is not None:
                self.bus.publish(
                    Event(
                        EventKind.INFO,
                        self.clock(),
                        {"approval_id": approval.id},
                        f"🏁 Challenger #{line.number} ({line.label}) beats live: {reason}. "
                        "Send /shadow to approve or reject the swap.",
                    )
                )
        if made:
            self._save()
        return made

    async def resolve(self, approval_id: str, approve: bool, by: str) -> Approval:
        """ApprovalError when unknown, answered or expired. Approve: activate, then drop it from shadow."""
        self.expire()
        current = self.approvals.get(approval_id)
        if current is None or not current.change.kind.startswith(KIND):
            raise ApprovalError(f"unknown promotion {approval_id}")
        number = int(current.change.params["number"])
        runner = self.service.book.runners.get(number)
        if approve and runner is None:
            raise ApprovalError(f"challenger #{number} no longer runs: nothing to promote")
        approval = self.approvals.resolve(approval_id, approve, by, self.clock())
        self.answered.add(number)
        if approval.status is ApprovalStatus.APPROVED and runner is not None:
            await self._promote(runner.spec, by)
        self._save()
        return approval

    async def _promote(self, spec: Any, by: str) -> None:
        svc = self.service
        if spec.model_version != LIVE_MODEL:
            from models.registry import load_version

            svc.registry.activate(spec.model_version, by=by)
            svc.live_slot.swap(load_version(svc.registry, spec.model_version))
        if spec.params_name or params_to_dict(svc.engine.params) != spec.params:
            svc.engine.params = params_from_dict(spec.params)
            write_json_atomic(
                Path(svc.root) / LIVE_PARAMS,
                {"name": spec.params_name, "by": by, "time": self.clock().isoformat(), "params": spec.params},
            )
        svc.record("promote", spec, by)
        await svc.book.drop(spec.number)


def live_params_override(root: Path) -> tuple[Any, str] | None:
    """(StrategyParams, note) when a promotion made other parameters live, else None."""
    saved = read_json(Path(root) / LIVE_PARAMS)
    if not isinstance(saved, dict) or not isinstance(saved.get("params"), dict):
        return None
    try:
        params = params_from_dict(saved["params"])
    except (TypeError, ValueError) as exc:
        log.error("promoted live parameters unreadable, the settings' are used: %s", exc)
        return None
    name = saved.get("name") or "a challenger's"
    return params, (
        f"live parameters: the set {name!r} promoted from shadow by {saved.get('by', '?')} "
        f"({Path(root) / LIVE_PARAMS}); delete that file to go back to the settings'"
    )
