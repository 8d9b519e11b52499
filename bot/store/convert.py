"""ORM row -> frozen record conversions (kept inside bot.store) and input checks for JSON columns."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any

from bot.store.records import (
    AuditEntry,
    DailySummary,
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
    DailySummaryRow,
    DecisionRow,
    EquitySnapshotRow,
    ModelVersionRow,
    SlTpHistoryRow,
    TradeRow,
)
from trading.domain import Side
from trading.risk.approvals import Approval, ApprovalStatus, RiskChange
from trading.timezones import utc_now


def checked_json(value: Any, what: str) -> Any:
    """Return value unchanged if it is plain JSON (no NaN); otherwise raise naming `what`."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not JSON-serialisable: {exc}") from exc
    return value


def jsonable(value: Any) -> Any:
    """A lenient copy for informational blobs (trade extras, model metrics): datetimes and enums
    become strings, NaN/inf become None, unknown objects their str(). Losing a trade row over an
    odd extra would be worse than a stringified value."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return jsonable(value.value)
    if hasattr(value, "item"):  # numpy scalars
        return jsonable(value.item())
    return str(value)


def aware(value: datetime | None, what: str) -> datetime:
    """Now (UTC) for None; the value if it is a timezone-aware datetime; otherwise a clear error."""
    if value is None:
        return utc_now()
    if not isinstance(value, datetime):
        raise ValueError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{what}: naive datetime {value.isoformat()}; the journal takes UTC-aware times only"
        )
    return value


def finite(value: float, what: str) -> float:
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return float(value)


SKIPPED_PREFIX = "skipped: "  # how rows written before the flag kept a skipped gate: passed, reason prefixed


def gate_to_json(g: GateResult) -> dict[str, Any]:
    """The journal's representation: name, passed, reason; `skipped` only on a skipped gate."""
    out: dict[str, Any] = {"name": g.name, "passed": g.passed, "reason": g.reason}
    if g.skipped:
        out["skipped"] = True
    return out


def gate_from_json(d: Mapping[str, Any]) -> GateResult:
    reason, passed = str(d.get("reason", "")), bool(d["passed"])
    if d.get("skipped"):
        return GateResult(str(d["name"]), passed, reason, skipped=True)
    if passed and reason.startswith(SKIPPED_PREFIX):  # a row from before the flag
        return GateResult(str(d["name"]), False, reason.removeprefix(SKIPPED_PREFIX), skipped=True)
    return GateResult(str(d["name"]), passed, reason)


def gates_to_json(gates: Iterable[GateResult | Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, g in enumerate(gates):
        if isinstance(g, GateResult):
            out.append(gate_to_json(g))
        elif isinstance(g, Mapping) and "name" in g and "passed" in g:
            out.append(gate_to_json(gate_from_json(g)))
        else:
            raise ValueError(f"gate #{i} must be a GateResult or a mapping with name and passed, got {g!r}")
    return out


def trade(row: TradeRow) -> TradeRecord:
    return TradeRecord(
        id=row.id,
        ticket=row.ticket,
        symbol=row.symbol,
        side=Side(row.side),
        volume=row.volume,
        open_time=row.open_time,
        open_price=row.open_price,
        sl=row.sl,
        tp=row.tp,
        close_time=row.close_time,
        close_price=row.close_price,
        exit_reason=row.exit_reason,
        profit=row.profit,
        commission=row.commission,
        swap=row.swap,
        pips=row.pips,
        magic=row.magic,
        comment=row.comment,
        decision_id=row.decision_id,
        status=row.status,
        extra=dict(row.extra or {}),
    )


def decision(row: DecisionRow) -> DecisionRecord:
    return DecisionRecord(
        id=row.id,
        bar_time=row.bar_time,
        action=row.action,
        side=Side(row.side) if row.side else None,
        p_up=row.p_up,
        regime=row.regime,
        confidence=row.confidence,
        threshold=row.threshold,
        reason=row.reason,
        gates=tuple(gate_from_json(g) for g in row.gates),
        lot=row.lot,
        created_at=row.created_at,
        setup=row.setup or "",
        features=dict(row.features or {}),
    )


def sl_tp(row: SlTpHistoryRow) -> SlTpChange:
    return SlTpChange(ticket=row.ticket, time=row.time, sl=row.sl, tp=row.tp, reason=row.reason)


def equity(row: EquitySnapshotRow) -> EquitySnapshot:
    return EquitySnapshot(
        time=row.time,
        balance=row.balance,
        equity=row.equity,
        floating=row.floating,
        open_positions=row.open_positions,
    )


def approval(row: ApprovalRow) -> Approval:
    return Approval(
        id=row.id,
        change=RiskChange(kind=row.kind, summary=row.summary, params=dict(row.payload)),
        requested_by=row.created_by,
        reason=row.reason,
        created=row.created_at,
        expires=row.expires_at,
        status=ApprovalStatus(row.status),
        resolved_by=row.resolved_by,
        resolved_at=row.resolved_at,
    )


def model_version(row: ModelVersionRow) -> ModelVersionRecord:
    return ModelVersionRecord(
        version=row.version,
        kind=row.kind,
        metrics=dict(row.metrics),
        path=row.path,
        created_at=row.created_at,
        activated_at=row.activated_at,
        active=row.active,
    )


def audit(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        time=row.time,
        user_id=row.user_id,
        chat_id=row.chat_id,
        command=row.command,
        args=row.args,
        result=row.result,
        allowed=row.allowed,
    )


def daily_summary(row: DailySummaryRow) -> DailySummary:
    return DailySummary(
        day=row.day,
        trades=row.trades,
        wins=row.wins,
        losses=row.losses,
        profit=row.profit,
        start_balance=row.start_balance,
        end_balance=row.end_balance,
    )
