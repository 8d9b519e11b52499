"""How the paper broker's simulated account and market behave (`PaperConfig`), its XAUUSD contract, and
the MT5 trade-server return codes it reports."""

from __future__ import annotations

import math
from dataclasses import dataclass

from trading.domain import SymbolSpec

# MT5 trade-server return codes the paper broker reports (same meaning as on a real server)
RETCODE_INVALID = 10013
RETCODE_MARKET_CLOSED = 10018
RETCODE_NO_MONEY = 10019


@dataclass(frozen=True, slots=True)
class PaperConfig:
    """How the simulated account and market behave. Every number is configurable."""

    balance: float = 10_000.0  # starting balance (USD) of a new account
    leverage: int = 100
    commission_per_lot: float = 0.0  # USD per lot per deal (charged on entry and on exit)
    slippage_points: int = (
        0  # adverse slippage on market orders, closes, stop losses and stop-outs (not on TPs)
    )
    spread_points: int = 20  # used when a bar carries no spread
    stops_level: int = 0  # minimum SL/TP distance from the price, in points
    volume_max: float = 50.0
    stop_out_level: float = 50.0  # margin level % at which the worst position is closed; 0 = never
    timeframe_minutes: int = 15
    login: int = 1

    def __post_init__(self) -> None:
        checks = [
            (self.balance >= 0 and math.isfinite(self.balance), "balance must be a finite number >= 0"),
            (self.leverage >= 1, "leverage must be at least 1"),
            (self.commission_per_lot >= 0, "commission_per_lot must be >= 0"),
            (self.slippage_points >= 0, "slippage_points must be >= 0"),
            (self.spread_points >= 0, "spread_points must be >= 0"),
            (self.stops_level >= 0, "stops_level must be >= 0"),
            (self.volume_max > 0, "volume_max must be positive"),
            (self.stop_out_level >= 0, "stop_out_level must be >= 0"),
            (self.timeframe_minutes >= 1, "timeframe_minutes must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"paper broker config: {message}")


def xauusd_spec(symbol: str = "XAUUSD", volume_max: float = 50.0, stops_level: int = 0) -> SymbolSpec:
    """The XAUUSD contract: 100 oz per lot, point 0.01, 2 digits, lots 0.01 step 0.01."""
    return SymbolSpec(
        name=symbol,
        contract_size=100.0,
        point=0.01,
        digits=2,
        tick_size=0.01,
        tick_value=1.0,
        volume_min=0.01,
        volume_step=0.01,
        volume_max=volume_max,
        stops_level=stops_level,
    )
