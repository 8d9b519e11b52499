"""The engine's state as saved between runs (pause, risk state, limits, recent results, the open
positions) and how it is restored.

`SavedState` is a part of `TradingEngine` (a mixin: it reads and sets the engine's own state, which
`trading.engine_host.EngineHost` declares).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from trading.domain import Position, Side
from trading.engine_host import EngineHost
from trading.risk.approvals import Approval
from trading.risk.modes import RiskLimits, risk_limits_to_dict, risk_state_from_dict, risk_state_to_dict


class SavedState(EngineHost):
    """Saving and restoring `TradingEngine`'s state."""

    def restore(self, saved: dict[str, Any]) -> None:
        if "risk" in saved:
            self.state = risk_state_from_dict(saved["risk"])
        self.paused = bool(saved.get("paused", False))
        self.paused_by = str(saved.get("paused_by", ""))
        if "limits" in saved:
            self.limits = RiskLimits(**saved["limits"])
        self.recent_profits.extend(float(x) for x in saved.get("recent_profits", []))
        self._restored_positions = [_position_from_dict(p) for p in saved.get("positions", [])]

    def restore_approvals(self, approvals: list[Approval]) -> None:
        """Pending approvals saved before a restart; a restored reset request is not proposed again."""
        self.approvals.restore(approvals)
        if any(a.change.kind == "reset_total" for a in approvals):
            self._proposed_reset = True

    def state_dict(self) -> dict[str, Any]:
        assert self.state is not None
        return {
            "paused": self.paused,
            "paused_by": self.paused_by,
            "risk": risk_state_to_dict(self.state),
            "limits": risk_limits_to_dict(self.limits),
            "recent_profits": list(self.recent_profits),
            "positions": [_position_to_dict(p) for p in self.positions.values()],
        }

    async def _save_state(self) -> None:
        await self.recorder.save_state(self.state_dict())


def _position_to_dict(p: Position) -> dict[str, Any]:
    return {
        "ticket": p.ticket,
        "symbol": p.symbol,
        "side": str(p.side),
        "volume": p.volume,
        "open_price": p.open_price,
        "open_time": p.open_time.isoformat(),
        "sl": p.sl,
        "tp": p.tp,
        "magic": p.magic,
        "comment": p.comment,
    }


def _position_from_dict(d: dict[str, Any]) -> Position:
    return Position(
        ticket=int(d["ticket"]),
        symbol=str(d["symbol"]),
        side=Side(d["side"]),
        volume=float(d["volume"]),
        open_price=float(d["open_price"]),
        open_time=datetime.fromisoformat(d["open_time"]),
        sl=float(d.get("sl", 0.0)),
        tp=float(d.get("tp", 0.0)),
        magic=int(d.get("magic", 0)),
        comment=str(d.get("comment", "")),
    )
